#include "coordinator/cmdb/outbox_signal.hpp"

#include <condition_variable>
#include <functional>
#include <mutex>

namespace fabu::coordinator {
namespace {

struct Bell {
  std::mutex mutex;
  std::condition_variable rung;
  std::uint64_t rings = 0;
  std::uint64_t wakes = 0;
  std::function<void()> publisher;  // guarded by mutex
};

Bell& TheBell() {
  static Bell bell;
  return bell;
}

}  // namespace

void RingOutbox() {
  RingOutboxFromPeer();
  std::function<void()> publish;
  {
    std::lock_guard lock(TheBell().mutex);
    publish = TheBell().publisher;
  }
  if (publish) publish();
}

void SetOutboxPublisher(std::function<void()> publisher) {
  std::lock_guard lock(TheBell().mutex);
  TheBell().publisher = std::move(publisher);
}

void RingOutboxFromPeer() {
  Bell& bell = TheBell();
  {
    std::lock_guard lock(bell.mutex);
    ++bell.rings;
  }
  bell.rung.notify_all();
}

std::uint64_t OutboxRings() {
  Bell& bell = TheBell();
  std::lock_guard lock(bell.mutex);
  return bell.rings;
}

std::uint64_t WaitForOutbox(std::uint64_t seen, std::chrono::milliseconds timeout) {
  Bell& bell = TheBell();
  std::unique_lock lock(bell.mutex);
  const std::uint64_t wakes = bell.wakes;
  bell.rung.wait_for(lock, timeout, [&] { return bell.rings != seen || bell.wakes != wakes; });
  return bell.rings;
}

void WakeOutboxWaiters() {
  Bell& bell = TheBell();
  {
    std::lock_guard lock(bell.mutex);
    ++bell.wakes;
  }
  bell.rung.notify_all();
}

}  // namespace fabu::coordinator
