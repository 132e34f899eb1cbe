// Leases: what must run on one coordinator at a time, when several serve one
// database (docs/ha.md).
//
// Any coordinator answers any API call and any agent: those writes are
// transactions on the shared store, one writer at a time (dialect.hpp,
// BeginWrite), so it does not matter which coordinator makes them. What runs
// on its own schedule — the deployment sweep, the checks on metrics, the
// outbox and notice deliveries, the daily retention run — must run on one
// coordinator only, or two would time out the same hosts, measure the same
// check and send the same webhook. Those run under a lease: a row of the
// `leases` table naming its holder, a fencing token and an expiry.
//
// Lease::Renew takes the row when it is free or expired (the token grows by
// one), extends it while this coordinator still holds it, and reports who
// holds it otherwise. Times are the database's own clock, so coordinators
// whose clocks disagree still agree on the expiry. The holder renews every
// third of the lease's length; a holder that dies (or is stopped, or cut off
// from the database) stops renewing, and another takes the row over once it
// has expired: within one length and one renewal interval.
//
// Fencing: a write made on behalf of the lease (inside a FenceScope) is
// checked by the store before its callback runs, inside the same transaction
// (Store::CommitGroup): the row must still name this holder and token and
// must not have expired. A former holder that wakes from a pause or a
// partition therefore can no longer write as the holder: its write is refused
// (kFailedPrecondition) and undone, whatever it believed. Because writers go
// one at a time, the check and the write cannot interleave with a takeover.
//
// held() is this process's own belief, from its monotonic clock: it ends a
// margin before the expiry the database holds, so the work stops before a
// takeover can begin; the fence covers whatever still slips through.
// Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "coordinator/store/fence.hpp"
#include "coordinator/store/store.hpp"
#include "protocol/error.hpp"

namespace fabu::coordinator {

// Who holds a lease, as the `leases` row says (for status and tests).
struct LeaseRow {
  std::string name;
  std::string holder;
  std::int64_t token = 0;
  std::int64_t expires_ms = 0;   // database clock
  std::int64_t acquired_ms = 0;  // when this holder took it
  std::int64_t now_ms = 0;       // the database's clock when read
  bool expired() const { return expires_ms <= now_ms; }
};
Result<std::optional<LeaseRow>> ReadLease(Store& store, const std::string& name);

class Lease {
 public:
  // The lease under which the coordinator's own schedule runs (above).
  static constexpr std::string_view kEngine = "engine";

  // `holder` names this coordinator (HolderName); `length` is how long a
  // renewal holds the lease.
  Lease(Store& store, std::string name, std::string holder, std::chrono::milliseconds length);
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

  // Takes, keeps or fails to take the lease (one write). Returns whether this
  // coordinator holds it now. Logs when it is taken and when it is lost.
  Result<bool> Renew();
  // Gives the lease up (at shutdown), so another coordinator takes it at
  // once rather than after the expiry. Only while held.
  void Release();

  // Whether this coordinator may act as the holder now (its own clock).
  bool held() const;
  // The fence for writes as the holder; nullopt when not held.
  std::optional<Fence> fence() const;
  // How often Renew should run: a third of the length.
  std::chrono::milliseconds renew_interval() const { return length_ / 3; }
  const std::string& name() const { return name_; }
  const std::string& holder() const { return holder_; }

  // "HOST:PID:RANDOM" for this process: unique among coordinators, readable
  // in logs and in the leases row.
  static std::string HolderName();

 private:
  Store& store_;
  const std::string name_;
  const std::string holder_;
  const std::chrono::milliseconds length_;
  mutable std::mutex mutex_;
  std::int64_t token_ = 0;  // 0: not held
  std::chrono::steady_clock::time_point valid_until_{};
  std::string last_other_;  // the other holder last logged, to log once
};

}  // namespace fabu::coordinator
