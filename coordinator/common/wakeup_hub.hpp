// Wakes long polls (Response::Wait) when what they wait for happens.
//
// A key names something a request waits for: "host:web-1" is "an assignment
// for host web-1". A waiting request registers a waker under its key; code
// that makes the awaited thing (a new assignment) calls Notify(key) after its
// store transaction committed, and every waker of that key is called once and
// dropped.
//
// Lost wakeups are impossible: each key has a generation that Notify bumps.
// A waiter reads Generation(key) before it looks at the store, and Register
// refuses (returns nullopt) when the generation moved since: something
// happened between the look and the registration, so look again.
//
// A notifier that knows what the waiters will find may hand it over with the
// wakeup (Notify(key, answer)): a long poll woken by a new assignment then
// answers with it at once, without another look at the store. Only hand over
// what a fresh look would find (deployments.hpp, Wakeups::assigned).
//
// Holds: while a wave is assigned in parts (SweepDeployments), the sweep
// holds the hub (BeginHold/EndHold; from a wave's first part when a person
// started the wave: PassHold). The server then reads no next request
// from agents' connections until the last hold ends (a Notify of kHoldKey)
// or its hold limit passed, so the wave's answers go out before the progress
// events of the hosts told first.
//
// Wakers run on the thread that calls Notify, outside the hub's lock; they
// must be quick and thread-safe (the server's posts a timer cancel to its I/O
// thread). The hub knows nothing of Asio. Thread-safe.
//
// Several coordinators on one database (docs/ha.md): a waiter held by one
// coordinator must wake when another commits what it waits for. A hub with a
// publisher (SetPublisher) hands every key it is notified of (but kHoldKey,
// which is this process's own) to the publisher, which tells the peers
// (store/peer_signals.hpp); what a peer tells arrives through NotifyFromPeer,
// which wakes the waiters here without publishing again. A peer's waiters
// get no answer handed over: they look at the store again.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace fabu::coordinator {

class WakeupHub {
 public:
  // What a wait ends with, when the notifier knows it (a JSON body, as
  // text); null: look again.
  using Answer = std::shared_ptr<const std::string>;
  using Waker = std::function<void(const Answer&)>;

  // The key under which a host's long poll waits for an assignment.
  static std::string HostKey(std::string_view host);
  // The key notified when release `id`'s rollout status changes (a
  // deployment made, a step stored, a deployment ended, a transition): the
  // console's long poll of the status waits under it.
  static std::string ReleaseKey(std::string_view id);
  // The key under which the coordinator's sweep waits for its next run: a
  // notify runs it at once (a wave with parts left to assign).
  static constexpr std::string_view kSweepKey = "sweep";

  // The key under which an agent's held request waits; notified when the
  // last hold ends.
  static constexpr std::string_view kHoldKey = "hold";

  std::uint64_t Generation(const std::string& key) const;

  // Registers `waker` under `key` unless the key's generation is no longer
  // `seen`; returns the registration id, or nullopt (look again at once).
  std::optional<std::uint64_t> Register(const std::string& key, std::uint64_t seen, Waker waker);

  // Drops a registration (a wait that ended by its deadline). Unknown ids are
  // ignored.
  void Unregister(const std::string& key, std::uint64_t id);

  // Bumps the key's generation and calls (then drops) every waker of it,
  // handing each `answer` (null: the waiters look again).
  void Notify(const std::string& key, const Answer& answer = nullptr);

  // Who is told of every key notified here (kHoldKey excepted); set once,
  // before the server runs. Must be quick and thread-safe (it queues).
  void SetPublisher(std::function<void(const std::string& key)> publisher);
  // Notify(key) for a key another coordinator was notified of: the waiters
  // look again; nothing is published.
  void NotifyFromPeer(const std::string& key);
  // Moves every key's generation and wakes every registered waiter (they
  // look again): after the link to the peers was down, when notifications
  // may have been missed, so what was looked at before may have changed.
  void WakeEveryone();

  // Registered wakers of hosts' long polls (HostKey), for tests and /healthz.
  std::size_t waiting() const;
  // Registered wakers of kHoldKey: agents' requests waiting for a hold to
  // end (a next request not read yet, or a poll past its deadline), for
  // /healthz.
  std::size_t held() const;

  // Holds nest; the end of the last one notifies kHoldKey.
  void BeginHold();
  void EndHold();
  // A hold handed on to the sweep: begun by whoever committed a wave's first
  // part outside the sweep (a person's `release start`, WakeHosts), ended by
  // the next SweepDeployments, which takes it (TakePassedHolds) and ends it
  // once it has assigned the rest of the wave. So a wave a person starts
  // holds agents like one the sweep starts. The sweep is woken at once; each
  // held request still waits at most the server's hold limit.
  void PassHold();
  // The holds passed since the last call (the caller ends each: EndHold).
  std::size_t TakePassedHolds();
  // Whether a hold is on (cheap: read for every agent request).
  bool holding() const { return holds_.load(std::memory_order_acquire) > 0; }

 private:
  struct Entry {
    std::uint64_t generation = 0;
    std::map<std::uint64_t, Waker> wakers;
  };
  mutable std::mutex mutex_;
  std::map<std::string, Entry, std::less<>> entries_;
  std::uint64_t next_id_ = 0;
  std::size_t waiting_ = 0;
  std::atomic<int> holds_{0};
  std::size_t passed_ = 0;  // guarded by mutex_
  // Set before the server runs, read-only after.
  std::function<void(const std::string&)> publisher_;
  void Wake(const std::string& key, const Answer& answer);
};

// Holds the hub for its lifetime (none when constructed with null).
class HubHold {
 public:
  explicit HubHold(WakeupHub* hub) : hub_(hub) {
    if (hub_ != nullptr) hub_->BeginHold();
  }
  ~HubHold() {
    if (hub_ != nullptr) hub_->EndHold();
  }
  HubHold(const HubHold&) = delete;
  HubHold& operator=(const HubHold&) = delete;

 private:
  WakeupHub* hub_;
};

}  // namespace fabu::coordinator
