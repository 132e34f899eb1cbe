// The steps of a deployment on one host and the events that report them
// (docs/agent.md, docs/api.md).
//
// Reported steps, in order: assigned, downloading, downloaded (networked agent
// only), verified, installing, activating, health_checking, observing (only
// when the assignment asks for an observation period), succeeded; or
// failed (with the step that failed and the reason), then rolling_back and
// rolled_back | rollback_failed. `failed` alone is final when the failure came
// before `activating`: nothing was switched, so nothing is rolled back.
//
// Hook points (pre_install, post_install, activate, health_check, rollback)
// are Steps too, but only the journal records them, to know how far a
// deployment got; they are never reported as events.
//
// Each event carries a sequence number that starts at 1 and grows by one per
// event of the same deployment, so the receiver can store each exactly once
// however often it is re-sent.
//
// These are messages between the agent and the coordinator (both include
// this header; neither includes the other).
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/error.hpp"
#include "protocol/timestamp.hpp"

namespace fabu::protocol {

enum class Step {
  kAssigned,
  kDownloading,
  kDownloaded,
  kVerified,
  kInstalling,
  kPreInstall,   // hook point
  kPostInstall,  // hook point
  kActivating,
  kActivate,  // hook point
  kHealthChecking,
  kHealthCheck,  // hook point
  kObserving,    // the health check re-run for the observation period
  kSucceeded,
  kFailed,
  kRollingBack,
  kRollback,  // hook point
  kRolledBack,
  kRollbackFailed,
};

std::string_view StepName(Step step);
Result<Step> ParseStep(std::string_view name);

// False for the hook points, which are journaled but never reported.
bool IsReportedStep(Step step);
// The reported step a hook point belongs to (pre_install -> installing, ...).
Step ReportedStepOf(Step step);
// True for the steps of an install before `current` is switched.
bool IsBeforeActivating(Step step);

enum class DeploymentKind {
  kInstall,   // install a package (upgrade, first install, reinstall)
  kRollback,  // restore the previous release kept locally (fleet rollback)
};

std::string_view DeploymentKindName(DeploymentKind kind);
Result<DeploymentKind> ParseDeploymentKind(std::string_view name);

struct DeploymentEvent {
  std::string deployment;  // the coordinator's deployment id
  std::uint64_t sequence = 0;
  Step step = Step::kVerified;
  std::optional<Step> failed_step;  // `failed` only: the step that failed
  std::string app;                  // empty when not known (refused package)
  std::string version;              // the version being deployed, when known
  std::string message;              // reason of a failure, or a note
  std::string output;               // hook output tail, <= kHookOutputTail bytes
  UnixSeconds time = 0;

  friend bool operator==(const DeploymentEvent&, const DeploymentEvent&) = default;
};

nlohmann::json EventToJson(const DeploymentEvent& event);
Result<DeploymentEvent> EventFromJson(const nlohmann::json& json);
// One line of JSON (hook output bytes that are not UTF-8 are replaced).
std::string EventToJsonLine(const DeploymentEvent& event);

}  // namespace fabu::protocol
