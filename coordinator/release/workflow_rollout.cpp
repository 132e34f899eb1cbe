// The workflow's operations from deployment to close: test deployment,
// rollout, pause, resume, gates, abort, rollback, reschedule, freeze
// override, close (procedure §6.2.7-§6.2.9).
#include <fmt/format.h>

#include <algorithm>

#include "coordinator/release/digest.hpp"
#include "coordinator/release/workflow.hpp"
#include "coordinator/release/workflow_internal.hpp"

namespace fabu::coordinator::release {

using namespace detail;  // the shared checks of workflow_internal.hpp

namespace {

// What both kinds of deployment need from the plan.
Result<void> CheckDeployable(Action action, const Release& release, std::size_t host_count,
                             std::string_view environment) {
  if (!release.plan.targets) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("cannot {} release {}: its plan chooses no targets (targets.selector)",
                            ActionName(action), release.id));
  }
  if (release.plan.packages.empty()) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("cannot {} release {}: its plan has no package", ActionName(action),
                            release.id));
  }
  if (auto frozen = VerifyFrozenContent(release); !frozen) {
    return std::unexpected(
        std::move(frozen.error())
            .WithContext(fmt::format("cannot {} release {}", ActionName(action), release.id)));
  }
  if (host_count == 0) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("cannot {} release {}: no enrolled host matches its targets {} with "
                            "label env={} (see `fabu hosts list --selector {},env={}`)",
                            ActionName(action), release.id, release.plan.targets->ToString(),
                            environment, release.plan.targets->ToString(), environment));
  }
  return {};
}

}  // namespace

Result<Release> StartTestDeployment(const Release& release, const Actor& actor, Instant at,
                                    std::size_t host_count) {
  if (auto ok = CheckAllowed(Action::kTestDeploy, release, actor); !ok) {
    return std::unexpected(ok.error());
  }
  if (auto ok = CheckDeployable(Action::kTestDeploy, release, host_count, "test"); !ok) {
    return std::unexpected(ok.error());
  }
  Release next = release;
  MoveTo(next, Action::kTestDeploy, actor, at, S::kTesting,
         fmt::format("deploying to {} test host(s)", host_count));
  return next;
}

Result<Release> StartRollout(const Release& release, const Actor& actor, Instant at,
                             std::size_t host_count) {
  if (auto ok = CheckAllowed(Action::kStartRollout, release, actor); !ok) {
    return std::unexpected(ok.error());
  }
  if (!release.acceptance) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("cannot start release {}: it was never accepted", release.id));
  }
  if (!release.plan.golive || !release.golive_approved) {
    return Fail(
        ErrorCode::kFailedPrecondition,
        fmt::format("cannot start release {}: its go-live plan is not approved", release.id));
  }
  const MaintenanceWindow& window = release.plan.golive->window;
  if (at < window.start.seconds) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("cannot start release {}: its go-live window opens at {}; nothing "
                            "starts outside the window",
                            release.id, window.start.text));
  }
  if (at >= window.end.seconds) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("cannot start release {}: its go-live window ended at {}; set a new "
                            "window (schedule --file)",
                            release.id, window.end.text));
  }
  if (auto ok = CheckDeployable(Action::kStartRollout, release, host_count, "production"); !ok) {
    return std::unexpected(ok.error());
  }
  Release next = release;
  MoveTo(next, Action::kStartRollout, actor, at, S::kDeploying,
         fmt::format("deploying to {} production host(s)", host_count));
  return next;
}

Result<Release> FinishRollout(const Release& release, const Actor& actor, Instant at,
                              const RolloutOutcome& outcome) {
  const Action action = outcome.halted ? Action::kFailRollout : Action::kFinishRollout;
  if (auto ok = CheckAllowed(action, release, actor); !ok) return std::unexpected(ok.error());
  if (outcome.succeeded + outcome.failed < outcome.hosts) {
    return Fail(
        ErrorCode::kFailedPrecondition,
        fmt::format("cannot finish the rollout of release {}: {} of {} host(s) are not "
                    "final yet",
                    release.id, outcome.hosts - outcome.succeeded - outcome.failed, outcome.hosts));
  }
  Release next = release;
  next.rollout_finished_at = at;
  std::string note = fmt::format("{} of {} host(s) succeeded, {} failed", outcome.succeeded,
                                 outcome.hosts, outcome.failed);
  if (!outcome.reason.empty()) note += "; " + outcome.reason;
  MoveTo(next, action, actor, at, RuleFor(action).to, std::move(note));
  return next;
}

Result<Release> PauseRollout(const Release& release, const Actor& actor, Instant at,
                             std::string reason) {
  if (auto ok = CheckRole(Action::kPause, actor); !ok) return std::unexpected(ok.error());
  if (auto ok = NeedReason(Action::kPause, reason); !ok) return std::unexpected(ok.error());
  if (auto ok = CheckState(Action::kPause, release); !ok) return std::unexpected(ok.error());
  Release next = release;
  MoveTo(next, Action::kPause, actor, at, S::kPaused, std::move(reason));
  return next;
}

Result<Release> ResumeRollout(const Release& release, const Actor& actor, Instant at,
                              std::string comment) {
  if (auto ok = CheckAllowed(Action::kResume, release, actor); !ok) {
    return std::unexpected(ok.error());
  }
  Release next = release;
  MoveTo(next, Action::kResume, actor, at, S::kDeploying, std::move(comment));
  return next;
}

Result<Release> RetryRollout(const Release& release, const Actor& actor, Instant at,
                             std::string reason) {
  if (auto ok = CheckRole(Action::kRetry, actor); !ok) return std::unexpected(ok.error());
  if (auto ok = NeedReason(Action::kRetry, reason); !ok) return std::unexpected(ok.error());
  if (auto ok = CheckState(Action::kRetry, release); !ok) return std::unexpected(ok.error());
  Release next = release;
  MoveTo(next, Action::kRetry, actor, at, S::kDeploying, std::move(reason));
  return next;
}

Result<Release> ConfirmGate(const Release& release, const Actor& actor, Instant at,
                            std::string comment) {
  if (auto ok = CheckAllowed(Action::kGate, release, actor); !ok) {
    return std::unexpected(ok.error());
  }
  if (!release.plan.golive || !release.plan.golive->gate_between_waves) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("release {} has no control points: its go-live plan sets "
                            "between_waves to a duration, not \"gate\"",
                            release.id));
  }
  Release next = release;
  MoveTo(next, Action::kGate, actor, at, S::kDeploying, std::move(comment));
  return next;
}

Result<Release> AbortRollout(const Release& release, const Actor& actor, Instant at,
                             std::string reason) {
  if (auto ok = CheckRole(Action::kAbort, actor); !ok) return std::unexpected(ok.error());
  if (auto ok = NeedReason(Action::kAbort, reason); !ok) return std::unexpected(ok.error());
  if (auto ok = CheckState(Action::kAbort, release); !ok) return std::unexpected(ok.error());
  Release next = release;
  MoveTo(next, Action::kAbort, actor, at, S::kDeploying, std::move(reason));
  return next;
}

Result<Release> StartRollback(const Release& release, const Actor& actor, Instant at,
                              std::string reason) {
  if (auto ok = CheckRole(Action::kRollback, actor); !ok) return std::unexpected(ok.error());
  if (auto ok = NeedReason(Action::kRollback, reason); !ok) return std::unexpected(ok.error());
  if (auto ok = CheckState(Action::kRollback, release); !ok) return std::unexpected(ok.error());
  Release next = release;
  MoveTo(next, Action::kRollback, actor, at, S::kRollingBack, std::move(reason));
  return next;
}

Result<Release> FinishRollback(const Release& release, const Actor& actor, Instant at,
                               std::string note) {
  if (auto ok = CheckAllowed(Action::kFinishRollback, release, actor); !ok) {
    return std::unexpected(ok.error());
  }
  Release next = release;
  next.rollout_finished_at = at;
  MoveTo(next, Action::kFinishRollback, actor, at, S::kRolledBack, std::move(note));
  return next;
}

Result<Release> RescheduleWindow(const Release& release, const Actor& actor, Instant at,
                                 MaintenanceWindow window) {
  if (auto ok = CheckAllowed(Action::kReschedule, release, actor); !ok) {
    return std::unexpected(ok.error());
  }
  if (window.end.seconds <= window.start.seconds) {
    return Fail(ErrorCode::kInvalidArgument, fmt::format("window: end {} must be after start {}",
                                                         window.end.text, window.start.text));
  }
  if (window.end.seconds <= at) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("window: end {} has already passed", window.end.text));
  }
  Release next = release;
  std::string note = fmt::format("window {} .. {}", window.start.text, window.end.text);
  next.rollout_window = std::move(window);
  MoveTo(next, Action::kReschedule, actor, at, S::kPaused, std::move(note));
  return next;
}

Result<Release> OverrideFreeze(const Release& release, const Actor& actor, Instant at,
                               std::string reason) {
  if (auto ok = CheckRole(Action::kOverrideFreeze, actor); !ok) return std::unexpected(ok.error());
  if (auto ok = NeedReason(Action::kOverrideFreeze, reason); !ok) {
    return std::unexpected(ok.error());
  }
  if (auto ok = CheckState(Action::kOverrideFreeze, release); !ok) {
    return std::unexpected(ok.error());
  }
  if (auto ok = CheckNotOwner(Action::kOverrideFreeze, release, actor); !ok) {
    return std::unexpected(ok.error());
  }
  if (release.plan.category != kEmergencyCategory) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("only an emergency release may run inside a freeze; release {} is "
                            "category {}",
                            release.id, release.plan.category));
  }
  Release next = release;
  next.freeze_override = FreezeOverride{actor.name, at, reason};
  MoveTo(next, Action::kOverrideFreeze, actor, at, release.state, std::move(reason));
  return next;
}

Result<CloseCode> DefaultCloseCode(const Release& release, const CloseFacts& facts) {
  switch (release.state) {
    case S::kDeployed:
      return facts.hosts_failed == 0 ? CloseCode::kSuccess : CloseCode::kPartial;
    case S::kFailed:
      return facts.hosts_succeeded > 0 ? CloseCode::kPartial : CloseCode::kFailed;
    case S::kRolledBack:
      return CloseCode::kRolledBack;
    default:
      return Fail(ErrorCode::kConflict,
                  fmt::format("release {} in state {} has no outcome to close with", release.id,
                              ReleaseStateName(release.state)));
  }
}

Result<Release> CloseRelease(const Release& release, const Actor& actor, Instant at,
                             std::optional<CloseCode> code, std::string notes,
                             const CloseFacts& facts) {
  if (auto ok = CheckAllowed(Action::kClose, release, actor); !ok) {
    return std::unexpected(ok.error());
  }
  auto outcome = DefaultCloseCode(release, facts);
  if (!outcome) return std::unexpected(outcome.error());
  const CloseCode chosen = code.value_or(*outcome);
  if (chosen == CloseCode::kSuccess && facts.hosts_failed > 0) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("cannot close release {} as success: {} host(s) failed (the "
                            "outcome says {})",
                            release.id, facts.hosts_failed, CloseCodeName(*outcome)));
  }
  if ((chosen == CloseCode::kSuccess || chosen == CloseCode::kPartial) &&
      (facts.hosts_succeeded == 0 || release.state == S::kRolledBack)) {
    return Fail(
        ErrorCode::kFailedPrecondition,
        fmt::format("cannot close release {} as {}: {} (the outcome says {})", release.id,
                    CloseCodeName(chosen),
                    release.state == S::kRolledBack ? "it was rolled back" : "no host succeeded",
                    CloseCodeName(*outcome)));
  }
  if (chosen == CloseCode::kCancelled) {
    return Fail(ErrorCode::kInvalidArgument,
                "close code cancelled is for releases cancelled before deploying (release "
                "cancel)");
  }
  if (!facts.cmdb_confirmed) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("cannot close release {}: the CMDB update is not confirmed ({}); wait "
                            "for the deliveries (fabu cmdb outbox) or have an approver waive "
                            "them (fabu cmdb waive {} --reason ...)",
                            release.id, facts.cmdb_summary, release.id));
  }
  Release next = release;
  next.close_code = chosen;
  Closure closure;
  closure.by = actor.name;
  closure.at = at;
  closure.notes = notes;
  closure.cmdb = facts.cmdb_summary;
  const UnixSeconds finished =
      release.rollout_finished_at > 0 ? release.rollout_finished_at : UnixSeconds{at};
  closure.finished_in_window =
      release.plan.golive && finished <= release.plan.golive->window.end.seconds;
  next.closure = std::move(closure);
  MoveTo(next, Action::kClose, actor, at, S::kClosed,
         notes.empty() ? std::string(CloseCodeName(chosen))
                       : fmt::format("{}: {}", CloseCodeName(chosen), notes));
  return next;
}

std::optional<MaintenanceWindow> Release::ActiveWindow() const {
  if (rollout_window) return rollout_window;
  if (plan.golive) return plan.golive->window;
  return std::nullopt;
}

Result<void> VerifyFrozenContent(const Release& release) {
  if (release.frozen_content_digest.empty()) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("release {} has no approved content", release.id));
  }
  auto digest = ContentDigest(release.plan);
  if (!digest) return std::unexpected(digest.error());
  if (*digest != release.frozen_content_digest) {
    return Fail(ErrorCode::kIntegrity,
                fmt::format("content digest {} differs from the one approved ({})", *digest,
                            release.frozen_content_digest));
  }
  return {};
}

}  // namespace fabu::coordinator::release
