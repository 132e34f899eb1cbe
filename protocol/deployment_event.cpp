#include "protocol/deployment_event.hpp"

#include <fmt/format.h>

#include <array>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>

namespace fabu::protocol {

namespace {

constexpr std::array<std::pair<Step, std::string_view>, 18> kStepNames = {{
    {Step::kAssigned, "assigned"},
    {Step::kDownloading, "downloading"},
    {Step::kDownloaded, "downloaded"},
    {Step::kVerified, "verified"},
    {Step::kInstalling, "installing"},
    {Step::kPreInstall, "pre_install"},
    {Step::kPostInstall, "post_install"},
    {Step::kActivating, "activating"},
    {Step::kActivate, "activate"},
    {Step::kHealthChecking, "health_checking"},
    {Step::kHealthCheck, "health_check"},
    {Step::kObserving, "observing"},
    {Step::kSucceeded, "succeeded"},
    {Step::kFailed, "failed"},
    {Step::kRollingBack, "rolling_back"},
    {Step::kRollback, "rollback"},
    {Step::kRolledBack, "rolled_back"},
    {Step::kRollbackFailed, "rollback_failed"},
}};

}  // namespace

std::string_view StepName(Step step) {
  for (const auto& [s, name] : kStepNames) {
    if (s == step) return name;
  }
  return "unknown";
}

Result<Step> ParseStep(std::string_view name) {
  for (const auto& [s, n] : kStepNames) {
    if (n == name) return s;
  }
  return Fail(ErrorCode::kInvalidArgument, fmt::format("unknown deployment step \"{}\"", name));
}

bool IsReportedStep(Step step) {
  switch (step) {
    case Step::kPreInstall:
    case Step::kPostInstall:
    case Step::kActivate:
    case Step::kHealthCheck:
    case Step::kRollback:
      return false;
    default:
      return true;
  }
}

Step ReportedStepOf(Step step) {
  switch (step) {
    case Step::kPreInstall:
    case Step::kPostInstall:
      return Step::kInstalling;
    case Step::kActivate:
      return Step::kActivating;
    case Step::kHealthCheck:
      return Step::kHealthChecking;
    case Step::kRollback:
      return Step::kRollingBack;
    default:
      return step;
  }
}

bool IsBeforeActivating(Step step) {
  switch (step) {
    case Step::kAssigned:
    case Step::kDownloading:
    case Step::kDownloaded:
    case Step::kVerified:
    case Step::kInstalling:
    case Step::kPreInstall:
    case Step::kPostInstall:
      return true;
    default:
      return false;
  }
}

std::string_view DeploymentKindName(DeploymentKind kind) {
  return kind == DeploymentKind::kInstall ? "install" : "rollback";
}

Result<DeploymentKind> ParseDeploymentKind(std::string_view name) {
  if (name == "install") return DeploymentKind::kInstall;
  if (name == "rollback") return DeploymentKind::kRollback;
  return Fail(ErrorCode::kInvalidArgument,
              fmt::format("unknown deployment kind \"{}\" (install or rollback)", name));
}

nlohmann::json EventToJson(const DeploymentEvent& event) {
  nlohmann::json json = {
      {"deployment", event.deployment},
      {"sequence", event.sequence},
      {"step", StepName(event.step)},
      {"time", FormatRfc3339Utc(event.time)},
  };
  if (event.failed_step) json["failed_step"] = StepName(*event.failed_step);
  if (!event.app.empty()) json["app"] = event.app;
  if (!event.version.empty()) json["version"] = event.version;
  if (!event.message.empty()) json["message"] = event.message;
  if (!event.output.empty()) json["output"] = event.output;
  return json;
}

Result<DeploymentEvent> EventFromJson(const nlohmann::json& json) {
  try {
    DeploymentEvent event;
    event.deployment = json.at("deployment").get<std::string>();
    // Not get<std::uint64_t>() on any number: a fraction, a negative
    // number or one past 2^64 would be cast, or worse, not refused.
    const nlohmann::json& sequence = json.at("sequence");
    if (!sequence.is_number_unsigned()) {
      return Fail(ErrorCode::kInvalidArgument,
                  fmt::format("sequence: must be a whole number from 0 to {}, not {}",
                              std::numeric_limits<std::uint64_t>::max(), sequence.dump()));
    }
    event.sequence = sequence.get<std::uint64_t>();
    auto step = ParseStep(json.at("step").get<std::string>());
    if (!step) return std::unexpected(step.error().WithContext("step"));
    event.step = *step;
    if (json.contains("failed_step")) {
      auto failed = ParseStep(json.at("failed_step").get<std::string>());
      if (!failed) return std::unexpected(failed.error().WithContext("failed_step"));
      event.failed_step = *failed;
    }
    auto time = ParseRfc3339(json.at("time").get<std::string>());
    if (!time) return std::unexpected(time.error().WithContext("time"));
    event.time = time->seconds;
    event.app = json.value("app", "");
    event.version = json.value("version", "");
    event.message = json.value("message", "");
    event.output = json.value("output", "");
    return event;
  } catch (const nlohmann::json::exception& e) {
    return std::unexpected(ErrorFromException(e, ErrorCode::kInvalidArgument, "event"));
  }
}

std::string EventToJsonLine(const DeploymentEvent& event) {
  return EventToJson(event).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace fabu::protocol
