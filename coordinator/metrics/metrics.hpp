// The coordinator's metrics in the Prometheus text format (GET /metrics),
// made with prometheus-cpp (Debian's prometheus-cpp-dev): its registry,
// families and text serializer; nothing of the format is written here.
//
// Two kinds of figures (docs/coordinator.md, "Metrics", lists each):
//   - counted as things happen: requests by route, method and status with a
//     latency histogram (ObserveRequest, called by the HTTP server for every
//     answer);
//   - read at scrape time from the store, the one truth, so they never drift
//     from it and cost nothing between scrapes: releases by state,
//     deployments by step and result, each running rollout's wave progress,
//     the CMDB and notice outbox by state and its oldest undelivered message,
//     hosts enrolled and seen recently; and from the server (ServerLoad):
//     long polls held, connections, downloads and their queue, bytes sent.
//
// Names follow Prometheus' conventions: the `fabu_` prefix, base units
// (seconds, bytes), `_total` for counters. Labels are bounded: a request's
// route is its pattern ("/api/v1/releases/{id}"), never its path.
//
// Thread-safe: every Observe, Count and Set may be called from any thread (prometheus-cpp's
// metrics are atomic, its families locked); Expose runs on a worker.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/common/server_load.hpp"
#include "coordinator/release/release_plan.hpp"
#include "protocol/error.hpp"
#include "protocol/timestamp.hpp"

namespace soci {
class session;
}

namespace fabu::coordinator {

// What the store says now (ReadStoreFigures).
struct StoreFigures {
  std::map<std::string, std::int64_t> releases_by_state;
  // Deployments by environment, kind, step and result ("" while unfinished).
  struct DeploymentCount {
    std::string environment, kind, step, result;
    std::int64_t count = 0;
  };
  std::vector<DeploymentCount> deployments;
  // Per release deploying (or paused) and wave: hosts by progress.
  struct WaveProgress {
    std::string release;
    std::int64_t wave = 0;  // 1-based
    std::int64_t hosts = 0, succeeded = 0, failed = 0, in_progress = 0;
  };
  std::vector<WaveProgress> waves;
  // Per release deploying (or paused): the end of its go-live window (Unix
  // seconds), the one in force (a rescheduled window replaces the plan's).
  std::map<std::string, std::int64_t> window_end;
  std::map<std::string, std::int64_t> outbox_by_state;  // CMDB deliveries and notices
  double outbox_oldest_undelivered_seconds = 0;         // 0 when none waits
  std::int64_t hosts_enrolled = 0;
  std::int64_t hosts_seen_recently = 0;  // within kSeenRecentlySeconds
};

inline constexpr std::int64_t kSeenRecentlySeconds = 300;

// `plan`: how the releases' plans are read (the configured categories).
Result<StoreFigures> ReadStoreFigures(soci::session& sql, protocol::UnixSeconds now,
                                      const release::PlanParseOptions& plan);

class CoordinatorMetrics {
 public:
  // `version` and `commit`: fabu_build_info's labels.
  CoordinatorMetrics(const std::string& version, const std::string& commit);
  CoordinatorMetrics(const CoordinatorMetrics&) = delete;
  CoordinatorMetrics& operator=(const CoordinatorMetrics&) = delete;

  // One answered request: the pattern of its route ("" when none matched),
  // its method, status and time from its first byte to its last.
  void ObserveRequest(std::string_view route, std::string_view method, int status, double seconds);

  // One group commit of the store (Store::ObserveCommits): its time and the
  // writes it held.
  void ObserveCommit(double seconds, std::size_t writes);

  // One enrollment answered: a host enrolled, or refused (any reason).
  void CountEnrollment(bool enrolled);

  // What the daemon's last check of the audit chain found (AuditWatch):
  // whole or not, the last entry found whole, and when (Unix seconds).
  void SetAuditCheck(bool intact, std::int64_t verified_seq, double at);

  // The text exposition of everything above, with `store`, the server's
  // `long_polls` and `held_requests` as they are now, and its `load` (may
  // be null).
  std::string Expose(const StoreFigures& store, std::size_t long_polls, std::size_t held_requests,
                     const ServerLoad* load) const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& latency_;
  prometheus::Histogram& commit_seconds_;
  prometheus::Histogram& commit_writes_;
  prometheus::Family<prometheus::Counter>& enrollments_;
  prometheus::Counter& enrolled_;
  prometheus::Counter& enroll_refused_;
  // Families without a child until the first check, so that no figure
  // claims a check that has not run.
  prometheus::Family<prometheus::Gauge>& audit_intact_;
  prometheus::Family<prometheus::Gauge>& audit_verified_;
  prometheus::Family<prometheus::Gauge>& audit_checked_;
};

}  // namespace fabu::coordinator
