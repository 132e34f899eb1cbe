// Delivers the CMDB outbox (cmdb.hpp) through the connectors
// (connectors.hpp): retried with capped exponential backoff and jitter until
// delivered or waived.
//
// Each CMDB connector's messages go out in the order they were queued: only
// a connector's oldest undelivered message is tried, so a failing message
// holds back the later ones of that connector (an iTop never sees an older
// version after a newer one) and never those of another connector. Release
// notices (connectors "notify:<subscription>") have no such order: each is
// tried on its own, so a notice that fails holds back no other, and one
// still undelivered `notice_give_up` after it was queued is given up
// (state given_up, audited as notify.give-up, shown in `fabu cmdb outbox`
// and in the release report).
// After a failed attempt n (1, 2, ...) the message waits
// min(max, initial * 2^(n-1)) seconds, drawn uniformly from half that to
// all of it. Attempts, the last error and the next attempt are in the store
// only: a restarted coordinator carries on where it stopped, and a message
// sent but not marked delivered before a crash is sent again with the same
// idempotency key (at least once; receivers deduplicate on the key).
//
// DeliverDue is one pass, used by DeliveryWorker and by tests. The network
// I/O runs outside the store lock.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "coordinator/cmdb/cmdb_config.hpp"
#include "coordinator/cmdb/connectors.hpp"
#include "coordinator/store/lease.hpp"
#include "coordinator/store/store.hpp"

namespace fabu::coordinator {

struct RetryPolicy {
  std::chrono::seconds initial{5};
  std::chrono::seconds max{600};
  std::chrono::seconds notice_give_up{6 * 3600};
};

// The wait after failed attempt `attempts` (>= 1), given a uniform draw
// `unit` in [0, 1]: at least 1 s.
std::int64_t RetryDelaySeconds(const RetryPolicy& policy, std::int64_t attempts, double unit);

struct DeliveryPass {
  std::size_t delivered = 0;
  std::size_t failed = 0;
  std::size_t given_up = 0;             // notices given up in this pass
  std::optional<UnixSeconds> next_due;  // the earliest undelivered message not yet due
};

// Delivers every due head message (and the ones behind it while they
// succeed). Stops early when `stop` is set, and before any send when `lease`
// (null: none) is no longer held by this coordinator.
Result<DeliveryPass> DeliverDue(Store& store,
                                const std::vector<std::unique_ptr<Connector>>& connectors,
                                const RetryPolicy& policy, std::function<UnixSeconds()> now,
                                std::mt19937_64& random, const std::atomic<bool>& stop,
                                const Lease* lease = nullptr);

// A thread running DeliverDue when the outbox bell rings (outbox_signal.hpp),
// when the next retry is due, and at least every `poll`. With several
// coordinators, only the holder of `lease` delivers, its writes fenced
// (lease.hpp); the others wait, looking each second whether they hold it.
class DeliveryWorker {
 public:
  DeliveryWorker(Store& store, std::vector<std::unique_ptr<Connector>> connectors,
                 RetryPolicy policy, std::chrono::milliseconds poll = std::chrono::seconds(30),
                 const Lease* lease = nullptr);
  ~DeliveryWorker();  // Stop()
  DeliveryWorker(const DeliveryWorker&) = delete;
  DeliveryWorker& operator=(const DeliveryWorker&) = delete;

  void Start();
  // Ends the thread after the delivery in flight (bounded by its timeout).
  void Stop();

 private:
  void Run();
  Store& store_;
  std::vector<std::unique_ptr<Connector>> connectors_;
  RetryPolicy policy_;
  std::chrono::milliseconds poll_;
  const Lease* lease_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace fabu::coordinator
