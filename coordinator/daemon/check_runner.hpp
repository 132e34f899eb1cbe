// The go-live plans' checks on metrics, measured (release/metric_check.hpp,
// deploy/rollout_checks.hpp): every second the daemon asks which checks of
// the waves that ended are due, measures each outside any transaction (a GET
// of Prometheus's /api/v1/query, or of an http check's URL, bounded by a
// timeout), then records the measurement and lets the rollout engine take
// its next step in one transaction, so a check that fails rolls the wave back
// at once and one that is inconclusive pauses it.
//
// Where a check may go is the operator's choice, never the plan's alone:
// `prometheus` checks only to config.json's checks.prometheus_url, `http`
// checks only under checks.allow. A check that may not go, or cannot be
// reached, is an error measurement naming why (after consecutive_error_limit
// of them the rollout pauses, the reason in its "waiting:" line).
//
// One thread at a time (PeriodicWork runs it so).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "coordinator/common/wakeup_hub.hpp"
#include "coordinator/deploy/rollout_checks.hpp"
#include "coordinator/release/release_plan.hpp"
#include "coordinator/store/store.hpp"

namespace fabu::platform {
class HttpClient;
}

namespace fabu::coordinator {

struct CheckRunnerSettings {
  std::string prometheus_url;      // "" when none is configured
  std::vector<std::string> allow;  // URL prefixes http checks may GET
  // The longest a measurement's request may take (then it is an error).
  std::chrono::seconds timeout{10};
};

class CheckRunner {
 public:
  CheckRunner(Store& store, CheckRunnerSettings settings, release::PlanParseOptions options,
              WakeupHub& wakeups);
  ~CheckRunner();
  CheckRunner(const CheckRunner&) = delete;
  CheckRunner& operator=(const CheckRunner&) = delete;

  // Measures what is due now and records it. Never throws; failures are logged.
  void Tick();

  // One measurement of `due` now (no store): what Tick records.
  release::Measurement Measure(const DueMeasurement& due);

 private:
  Store& store_;
  CheckRunnerSettings settings_;
  release::PlanParseOptions options_;
  WakeupHub& wakeups_;
  std::unique_ptr<platform::HttpClient> http_;
};

}  // namespace fabu::coordinator
