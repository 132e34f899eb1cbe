// Secrets the store has accepted, kept in memory so that a request bearing
// one is authenticated without a store read: agents' credentials
// (hosts/credential_cache.hpp) and users' bearer tokens (auth/token_cache.hpp).
//
// Keyed by the secret's SHA-256 (the store's key too): the secret itself is
// not kept. Only secrets the store accepted are remembered, with what the
// store said of them (`Value`). Whatever makes a remembered secret wrong (a
// host removed, a token rotated, a user disabled) calls ForgetAll once its
// change is committed. A lookup that raced the change cannot put the secret
// back: Remember takes the Generation read before the store was asked, and
// ForgetAll moves the generation on. With several coordinators, ForgetAll on
// one reaches the others' caches through the hook (daemon.cpp sends it as a
// peer signal, store/peer_signals.hpp) within milliseconds of its commit.
//
// An entry may also be given a longest life (`max_age`): past it the store
// is asked again, which bounds how long a change made without ForgetAll (by
// hand in the database) goes unseen.
//
// Thread-safe; Find takes a shared lock only.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "coordinator/auth/users.hpp"

namespace fabu::coordinator {

template <typename Value>
class SecretCache {
 public:
  using Clock = std::chrono::steady_clock;

  // At most `capacity` secrets are kept; past it the cache starts over.
  // `max_age` zero: an entry lives until ForgetAll.
  explicit SecretCache(std::size_t capacity = 1 << 20, Clock::duration max_age = {})
      : capacity_(capacity), max_age_(max_age) {}

  // What the store said of `secret`, when it accepted it, nothing was
  // forgotten since and the entry is not older than max_age.
  std::optional<Value> FindValue(std::string_view secret) const {
    const std::string hash = HashToken(secret);
    std::shared_lock lock(mutex_);
    auto it = entries_.find(hash);
    if (it == entries_.end()) return std::nullopt;
    if (max_age_ != Clock::duration::zero() && Clock::now() - it->second.since >= max_age_) {
      return std::nullopt;
    }
    return it->second.value;
  }
  // Read before asking the store; hand it to Remember.
  std::uint64_t Generation() const {
    std::shared_lock lock(mutex_);
    return generation_;
  }
  // Remembers that the store accepted `secret` with `value`, unless
  // ForgetAll ran since `generation` was read.
  void Remember(std::string_view secret, Value value, std::uint64_t generation) {
    std::string hash = HashToken(secret);
    std::unique_lock lock(mutex_);
    if (generation != generation_) return;
    if (entries_.size() >= capacity_) entries_.clear();
    entries_.insert_or_assign(std::move(hash), Entry{std::move(value), Clock::now()});
  }
  // Drops every secret, and tells the other coordinators through the hook,
  // if one is set.
  void ForgetAll() {
    ForgetAllFromPeer();
    if (on_forget_all_) on_forget_all_();
  }
  // The same, told by another coordinator (the hook is not called).
  void ForgetAllFromPeer() {
    std::unique_lock lock(mutex_);
    ++generation_;
    entries_.clear();
  }
  // Called by every ForgetAll (several coordinators: docs/ha.md); set once,
  // before the daemon serves. Must be quick and thread-safe.
  void SetOnForgetAll(std::function<void()> hook) { on_forget_all_ = std::move(hook); }
  std::size_t size() const {
    std::shared_lock lock(mutex_);
    return entries_.size();
  }

 private:
  struct Entry {
    Value value;
    Clock::time_point since;
  };
  const std::size_t capacity_;
  const Clock::duration max_age_;
  mutable std::shared_mutex mutex_;
  std::uint64_t generation_ = 0;
  std::unordered_map<std::string, Entry> entries_;  // SHA-256 (hex) -> value
  std::function<void()> on_forget_all_;
};

}  // namespace fabu::coordinator
