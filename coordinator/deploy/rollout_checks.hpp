// The measurements of the go-live plan's checks on metrics (release/metric_check.hpp)
// in the store (`rollout_measurements`), and which are due.
//
// The measuring itself (an HTTP request to Prometheus or to a JSON endpoint)
// happens outside any transaction, in the daemon's check runner
// (daemon/check_runner.hpp): it asks DueMeasurements what to measure, makes
// the requests, then records each result with RecordMeasurement and lets the
// engine take its next step in the same transaction, so a failed check rolls
// the wave back at once.
//
// A wave's measurements count from its end (rollouts.wave_done_at): a wave
// judged again after `fabu release retry` is measured afresh.
#pragma once

#include <soci/soci.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "coordinator/release/metric_check.hpp"
#include "coordinator/release/rollout_decision.hpp"
#include "coordinator/release/workflow.hpp"
#include "coordinator/store/store.hpp"
#include "protocol/timestamp.hpp"

namespace fabu::coordinator {

using protocol::UnixSeconds;

// One measurement to take now.
struct DueMeasurement {
  std::string release_id;
  long long wave = 0;             // 0-based
  release::MetricCheck check;     // as the release's go-live plan says
  release::CheckSubject subject;  // the wave's hosts, the release and its version
};

// The checks due at `now`: of every release deploying whose current wave's
// hosts are all final and not accepted by a person, each check still
// measuring whose next measurement is due (its first `interval` after the
// wave's end).
std::vector<DueMeasurement> DueMeasurements(soci::session& sql, UnixSeconds now,
                                            const release::PlanParseOptions& options);

// Records `measurement` of `due` and, when it settles the check (passed,
// failed, inconclusive), audits "rollout.check" with the verdict and its
// values (dry-run checks too, marked so). The caller then advances the
// rollout in the same transaction. Nothing when the wave has moved on since
// `due` was read (a person acted meanwhile).
void RecordMeasurement(Transaction& tx, const DueMeasurement& due,
                       const release::Measurement& measurement);

// The measurements of `wave` of a release since `since` (the wave's end),
// by check name, oldest first.
std::map<std::string, std::vector<release::Measurement>> WaveMeasurements(
    soci::session& sql, const std::string& release_id, long long wave, UnixSeconds since);

// The checks of `wave` judged on its measurements since its end `done_at`
// (release::JudgeCheck), each with when its next measurement is due; none
// before the wave ended. What the engine decides on, the due list and the
// status show.
std::vector<release::WaveCheck> WaveChecks(soci::session& sql, const std::string& release_id,
                                           const std::vector<release::MetricCheck>& checks,
                                           long long wave, UnixSeconds done_at);

// Every measurement of a release, for its status and its report:
// [{"check", "wave" (1-based), "at" (RFC 3339), "outcome", "value", "detail"}],
// in the order taken.
nlohmann::json ReleaseMeasurements(soci::session& sql, const std::string& release_id);

}  // namespace fabu::coordinator
