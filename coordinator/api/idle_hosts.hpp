// Hosts whose agents' last look at the store found nothing to do.
//
// An idle fleet polls the store for nothing: 5,000 agents re-polling every
// half minute are a couple of hundred reads a second, each a round trip on
// PostgreSQL. But nothing a host must do appears unannounced: every
// deployment and pre-flight question made for it, on this coordinator or
// on another, notifies its WakeupHub key after its commit (deployments.hpp,
// Wakeups; a peer's arrive through PeerSignals), and a lost link to the
// peers moves every key's generation (WakeupHub::WakeEveryone). So a long
// poll whose host's last look found nothing, and whose key has not moved
// since that look (the generation read before it), is held without a look;
// were something made meanwhile, the notification that moves the key wakes
// it, and it looks then. A host is looked up at least every `trust_for` all
// the same. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace fabu::coordinator {

class IdleHosts {
 public:
  using Clock = std::chrono::steady_clock;

  explicit IdleHosts(Clock::duration trust_for) : trust_for_(trust_for) {}

  // Whether `host`'s last look, made at `generation` of its key and asking
  // for pre-flight questions if this poll does, found nothing less than
  // `trust_for` ago.
  bool StillIdle(const std::string& host, std::uint64_t generation, bool asks_preflight,
                 Clock::time_point now) {
    std::lock_guard lock(mutex_);
    auto it = looks_.find(host);
    return it != looks_.end() && it->second.generation == generation &&
           (it->second.asked_preflight || !asks_preflight) && now - it->second.at < trust_for_;
  }

  // What a look at `generation` found: nothing (`idle`), or something.
  void Looked(const std::string& host, std::uint64_t generation, bool asked_preflight, bool idle,
              Clock::time_point now) {
    std::lock_guard lock(mutex_);
    if (!idle) {
      looks_.erase(host);
      return;
    }
    looks_.insert_or_assign(host, Look{generation, asked_preflight, now});
    // Now and then, what is too old to be trusted goes (a removed host's).
    if (++looked_ % 4096 == 0) {
      std::erase_if(looks_, [&](const auto& entry) { return now - entry.second.at >= trust_for_; });
    }
  }

 private:
  struct Look {
    std::uint64_t generation = 0;
    bool asked_preflight = false;
    Clock::time_point at;
  };
  const Clock::duration trust_for_;
  std::mutex mutex_;  // guards the two below
  std::unordered_map<std::string, Look> looks_;
  std::uint64_t looked_ = 0;
};

}  // namespace fabu::coordinator
