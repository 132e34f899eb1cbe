#include "coordinator/common/wakeup_hub.hpp"

#include <utility>
#include <vector>

namespace fabu::coordinator {

namespace {

constexpr std::string_view kHostPrefix = "host:";

// Only hosts' long polls count in waiting().
std::size_t Counted(std::string_view key, std::size_t wakers) {
  return key.starts_with(kHostPrefix) ? wakers : 0;
}

}  // namespace

std::string WakeupHub::HostKey(std::string_view host) {
  return std::string(kHostPrefix) + std::string(host);
}

std::string WakeupHub::ReleaseKey(std::string_view id) { return "release:" + std::string(id); }

std::uint64_t WakeupHub::Generation(const std::string& key) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(key);
  return it == entries_.end() ? 0 : it->second.generation;
}

std::optional<std::uint64_t> WakeupHub::Register(const std::string& key, std::uint64_t seen,
                                                 Waker waker) {
  std::lock_guard lock(mutex_);
  Entry& entry = entries_[key];
  if (entry.generation != seen) return std::nullopt;
  const std::uint64_t id = ++next_id_;
  entry.wakers.emplace(id, std::move(waker));
  waiting_ += Counted(key, 1);
  return id;
}

void WakeupHub::Unregister(const std::string& key, std::uint64_t id) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  waiting_ -= Counted(key, it->second.wakers.erase(id));
}

void WakeupHub::Notify(const std::string& key, const Answer& answer) {
  Wake(key, answer);
  if (publisher_ && key != kHoldKey) publisher_(key);
}

void WakeupHub::SetPublisher(std::function<void(const std::string& key)> publisher) {
  publisher_ = std::move(publisher);
}

void WakeupHub::NotifyFromPeer(const std::string& key) { Wake(key, nullptr); }

void WakeupHub::WakeEveryone() {
  std::vector<std::string> keys;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [key, entry] : entries_) keys.push_back(key);
  }
  for (const std::string& key : keys) Wake(key, nullptr);
}

void WakeupHub::Wake(const std::string& key, const Answer& answer) {
  std::vector<Waker> wake;
  {
    std::lock_guard lock(mutex_);
    Entry& entry = entries_[key];
    ++entry.generation;
    for (auto& [id, waker] : entry.wakers) wake.push_back(std::move(waker));
    waiting_ -= Counted(key, entry.wakers.size());
    entry.wakers.clear();
  }
  for (Waker& waker : wake) waker(answer);
}

void WakeupHub::BeginHold() { holds_.fetch_add(1, std::memory_order_acq_rel); }

void WakeupHub::EndHold() {
  if (holds_.fetch_sub(1, std::memory_order_acq_rel) == 1) Notify(std::string(kHoldKey));
}

void WakeupHub::PassHold() {
  // Begun before it can be taken: a taker never ends a hold not begun yet.
  BeginHold();
  std::lock_guard lock(mutex_);
  ++passed_;
}

std::size_t WakeupHub::TakePassedHolds() {
  std::lock_guard lock(mutex_);
  return std::exchange(passed_, 0);
}

std::size_t WakeupHub::waiting() const {
  std::lock_guard lock(mutex_);
  return waiting_;
}

std::size_t WakeupHub::held() const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(kHoldKey);
  return it == entries_.end() ? 0 : it->second.wakers.size();
}

}  // namespace fabu::coordinator
