// Signals between coordinators that share one PostgreSQL database
// (docs/ha.md): PostgreSQL's LISTEN/NOTIFY on the channel "fabu_wake".
//
// A coordinator tells its peers of a key (a host's assignment, a release's
// status, the sweep, the outbox: common/wakeup_hub.hpp) after the
// transaction that made it committed; each peer's signal thread receives it
// within milliseconds and wakes its own waiters, which look at the store
// again. So a long poll held by coordinator A wakes when coordinator B
// assigns its host, without A polling the table.
//
// Send only queues: one thread per coordinator holds its own libpq
// connection (not a store session), sends what is queued in batches (one
// statement for up to kBatch keys) and waits on the connection's socket for
// the peers' notifications. Its own notifications come back to it and are
// dropped (by the sending backend's pid). When the connection drops (the
// database restarts), the thread reconnects with a capped backoff, and then
// calls `on_reconnect`, since notifications sent meanwhile were lost; keys
// queued while it is down are dropped for the same reason (the waiters look
// again after on_reconnect). Nothing of this exists on SQLite: one
// coordinator, no peers.
//
// A key is at most kMaxKey bytes (PostgreSQL's payload limit is 8000); longer
// ones are not sent. Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "coordinator/store/dialect.hpp"

namespace fabu::coordinator {

class PeerSignals {
 public:
  using OnKey = std::function<void(const std::string& key)>;
  static constexpr std::size_t kBatch = 1000;
  static constexpr std::size_t kMaxKey = 4000;
  // The channel; one per database.
  static constexpr const char* kChannel = "fabu_wake";

  // Starts the signal thread for `target` (PostgreSQL), which calls `on_key`
  // for every key a peer sends and `on_reconnect` after a lost connection
  // came back. Both run on the signal thread and must be quick.
  PeerSignals(StoreTarget target, OnKey on_key, std::function<void()> on_reconnect);
  ~PeerSignals();  // stops the thread
  PeerSignals(const PeerSignals&) = delete;
  PeerSignals& operator=(const PeerSignals&) = delete;

  // Queues `key` for the peers.
  void Send(const std::string& key);

  // Whether the thread is connected and listening (for /healthz and tests).
  bool listening() const { return listening_.load(); }
  // Keys received from peers so far (for tests and metrics).
  std::size_t received() const { return received_.load(); }

 private:
  void Run();
  void Interrupt();

  const StoreTarget target_;
  const OnKey on_key_;
  const std::function<void()> on_reconnect_;
  std::mutex mutex_;
  std::vector<std::string> queue_;   // guarded by mutex_
  bool stopping_ = false;            // guarded by mutex_
  std::condition_variable stopped_;  // the backoff's wait
  int wake_fd_ = -1;                 // an eventfd: something queued, or stop
  std::atomic<bool> listening_{false};
  std::atomic<std::size_t> received_{0};
  std::thread thread_;
};

}  // namespace fabu::coordinator
