// Recovery: after a crash, the journal's last entry says which step a
// deployment was in, and Recover finishes it (deployer.hpp, docs/agent.md).
#include <fmt/format.h>

#include "agent/common/log.hpp"
#include "agent/deploy/deployer.hpp"
#include "agent/deploy/deployer_context.hpp"
#include "packaging/package.hpp"

namespace fabu::agent {

using protocol::Version;

Result<std::optional<DeploymentOutcome>> Deployer::Recover() {
  if (!journal_.in_flight()) return std::optional<DeploymentOutcome>();
  const InFlightDeployment d = *journal_.in_flight();
  Context ctx;
  ctx.deployment = d.deployment;
  ctx.kind = d.kind;
  ctx.package = d.package;
  ctx.package_sha256 = d.package_sha256;
  ctx.app = d.app;
  ctx.next_sequence = d.next_sequence;
  auto damaged = [&](const Error& e) {
    return Error(ErrorCode::kIntegrity,
                 fmt::format("journal {}: in_flight: {}", journal_.path().string(), e.message()));
  };
  auto version = Version::Parse(d.version);
  if (!version) return std::unexpected(damaged(version.error()));
  ctx.version = *version;
  if (d.previous_version) {
    auto previous = Version::Parse(*d.previous_version);
    if (!previous) return std::unexpected(damaged(previous.error()));
    ctx.previous = *previous;
  }
  log::Warn("recovering deployment {} of {} {} interrupted at {}", d.deployment, d.app, d.version,
            StepName(d.step));
  const std::string reason = fmt::format("agent restarted during {}", StepName(d.step));

  Result<DeploymentOutcome> outcome = Fail(ErrorCode::kInternal, "unreachable");
  switch (d.step) {
    case Step::kSucceeded:
      outcome = Succeed(ctx, /*announce=*/false);  // `succeeded` was reported
      break;
    case Step::kRolledBack:
    case Step::kRollbackFailed:
      outcome = Finish(ctx, d.step, std::string(StepName(d.step)));
      break;
    case Step::kFailed:
      if (d.failed_step && IsBeforeActivating(*d.failed_step)) {
        outcome = CleanUpBeforeActivating(ctx);
      } else if (ctx.kind == DeploymentKind::kRollback) {
        outcome = RestoreKept(ctx, /*announce=*/true);
      } else {
        outcome = RollBackInstall(ctx, /*announce=*/true);
      }
      break;
    case Step::kRollingBack:
    case Step::kRollback:
      outcome = ctx.kind == DeploymentKind::kRollback ? RestoreKept(ctx, /*announce=*/false)
                                                      : RollBackInstall(ctx, /*announce=*/false);
      break;
    default:
      if (ctx.kind == DeploymentKind::kRollback) {
        // Restoring a kept release is idempotent: do it again.
        outcome = RestoreKept(ctx, /*announce=*/true);
      } else {
        outcome = HandleFailure(ctx, StepFailure{ReportedStepOf(d.step), reason, {}});
      }
      break;
  }
  if (!outcome) return std::unexpected(outcome.error());
  return std::optional<DeploymentOutcome>(std::move(*outcome));
}

}  // namespace fabu::agent
