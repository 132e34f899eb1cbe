// The go-live plan (上线计划, procedure §6.2.4; go-live review §6.2.5): when and how a
// release reaches its target hosts.
//
// Document form (a JSON object, also the `golive` member of a release plan):
//   {"window": {"start": "2026-12-01T01:00:00+08:00", "end": "2026-12-01T05:00:00+08:00"},
//    "waves": ["1", "25%", "100%"], "max_failures": "10%",
//    "between_waves": "5m", "host_timeout": "15m", "auto_rollback": true,
//    "observe": "10m", "observe_interval": "30s"}
// - window: RFC 3339 with offsets; end after start. Required.
// - waves: cumulative sizes, a count ("1", or the number 1) or a percent of the
//   targets ("25%"); strictly increasing within each kind; the last one must be
//   "100%" or a count (which must then cover every target, see WaveSizes).
//   Required, non-empty.
// - max_failures: failures tolerated per wave, a count or a percent of the
//   wave's hosts (rounded down). Required.
// - between_waves: a duration ("5m") or "gate" (a control point, procedure §4.5). Required.
// - host_timeout: a duration > 0. Required. auto_rollback: a boolean. Required.
// - observe, observe_interval: durations, default 0; when observe > 0,
//   observe_interval must be > 0 and not longer than observe.
// - checks: a list of checks on metrics (metric_check.hpp); default none.
// Errors are kInvalidArgument naming the field path ("golive.waves[1]: ...").
//
// Pure value types and functions; thread-safe.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/release/metric_check.hpp"
#include "coordinator/release/timestamp.hpp"
#include "protocol/error.hpp"

namespace fabu::coordinator::release {

// A number of hosts, absolute or relative to a whole.
struct HostAmount {
  enum class Kind { kCount, kPercent };
  Kind kind = Kind::kCount;
  std::uint32_t value = 0;  // hosts, or percent 0..100

  // Of `whole` hosts: a count as is; a percent rounded up (at least ⌈p%⌉).
  std::uint64_t ResolveCeil(std::uint64_t whole) const;
  // Of `whole` hosts: a count as is; a percent rounded down.
  std::uint64_t ResolveFloor(std::uint64_t whole) const;

  std::string ToString() const;  // "3" or "25%"
  friend bool operator==(const HostAmount&, const HostAmount&) = default;
};

// Parses "3" or "25%". `allow_zero` admits "0" and "0%".
Result<HostAmount> ParseHostAmount(std::string_view text, bool allow_zero);

struct MaintenanceWindow {
  Timestamp start;
  Timestamp end;
  friend bool operator==(const MaintenanceWindow&, const MaintenanceWindow&) = default;
};

struct GoLivePlan {
  MaintenanceWindow window;
  std::vector<HostAmount> waves;
  HostAmount max_failures;
  bool gate_between_waves = false;         // between_waves: "gate"
  std::int64_t between_waves_seconds = 0;  // when not a gate
  std::int64_t host_timeout_seconds = 0;
  bool auto_rollback = false;
  std::int64_t observe_seconds = 0;
  std::int64_t observe_interval_seconds = 0;
  // Measured after each wave before the next starts (metric_check.hpp).
  std::vector<MetricCheck> checks;

  friend bool operator==(const GoLivePlan&, const GoLivePlan&) = default;
};

// Validates a go-live document; `path` prefixes field names in errors ("golive").
Result<GoLivePlan> GoLivePlanFromJson(const nlohmann::json& value,
                                      std::string_view path = "golive");

// Canonical JSON (every field present; nlohmann sorts keys).
nlohmann::json GoLivePlanToJson(const GoLivePlan& plan);

// SHA-256 hex of the canonical JSON text: what a go-live approval freezes.
Result<std::string> GoLiveDigest(const GoLivePlan& plan);

// The rollout of `target_count` hosts in waves, as cumulative host counts:
// element i is how many hosts have been assigned once wave i has started.
// - Each wave adds at least one host, so counts strictly increase; a wave that
//   would add none is bumped by one, and waves left with no host to add are
//   dropped (3 hosts with waves 1, 25%, 50%, 100% -> 1, 2, 3).
// - Counts never exceed target_count; the last element equals target_count.
// - The same inputs always give the same answer (hosts are taken in a stable order).
// Fails (kFailedPrecondition) when the last wave is a count below target_count.
// Zero targets give an empty list.
Result<std::vector<std::uint64_t>> WaveSizes(const std::vector<HostAmount>& waves,
                                             std::uint64_t target_count);

// Failures tolerated in each wave (the wave's new hosts), from max_failures:
// a count as is (capped at the wave's size), a percent of the wave rounded
// down. The rollout halts when a wave's failures exceed its threshold.
std::vector<std::uint64_t> FailureThresholds(const std::vector<std::uint64_t>& cumulative_sizes,
                                             const HostAmount& max_failures);

// One wave of a rollout, as fixed when the rollout starts.
struct Wave {
  std::uint64_t through = 0;       // targets assigned once this wave has started (cumulative)
  std::uint64_t hosts = 0;         // this wave's own hosts
  std::uint64_t max_failures = 0;  // failures it tolerates (FailureThresholds)
  friend bool operator==(const Wave&, const Wave&) = default;
};

// The waves of a rollout of `target_count` hosts: WaveSizes and
// FailureThresholds together (and their errors).
Result<std::vector<Wave>> RolloutWaves(const std::vector<HostAmount>& waves,
                                       std::uint64_t target_count, const HostAmount& max_failures);
// The same, from stored cumulative sizes and thresholds (two lists of one length).
std::vector<Wave> WavesOf(const std::vector<std::uint64_t>& cumulative_sizes,
                          const std::vector<std::uint64_t>& thresholds);

// Where a host that joins a rollout late goes (targets.late_joiners,
// docs/plan.md): the next wave not started yet (after `current_wave`, -1
// before the first), or, once every wave has started, a catch-up wave made
// for it after the last. That wave and the later ones grow by one host; the
// thresholds of the waves not started are resolved again from
// `max_failures` for their new size (a started wave keeps its own).
struct LateJoin {
  std::vector<Wave> waves;  // the rollout's waves with the host in
  std::size_t wave = 0;     // the wave it joined (0-based)
  bool catch_up = false;    // a catch-up wave was made for it now
};
LateJoin JoinLate(const std::vector<Wave>& waves, long long current_wave,
                  const HostAmount& max_failures);

}  // namespace fabu::coordinator::release
