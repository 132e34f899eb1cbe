// The workflow's operations from a plan to its schedule: create, update,
// go-live plan, submit, review, test report, acceptance, go-live approval,
// schedule, cancel (procedure §6.2.1-§6.2.5).
#include <fmt/format.h>

#include <algorithm>

#include "coordinator/release/digest.hpp"
#include "coordinator/release/workflow.hpp"
#include "coordinator/release/workflow_internal.hpp"

namespace fabu::coordinator::release {

using namespace detail;  // the shared checks of workflow_internal.hpp

// ---- operations -------------------------------------------------------------

Result<Release> CreateRelease(std::string id, const Actor& actor, Instant at, ReleasePlan plan) {
  if (auto role = CheckRole(Action::kCreate, actor); !role) return std::unexpected(role.error());
  if (id.empty()) return Fail(ErrorCode::kInvalidArgument, "a release needs an id");
  if (plan.golive) {
    if (auto ok =
            CheckWindowNotEnded(fmt::format("create release {}", id), plan.golive->window, at);
        !ok) {
      return std::unexpected(ok.error());
    }
  }
  Release release;
  release.id = std::move(id);
  release.owner = actor.name;
  release.plan = std::move(plan);
  release.created_at = at;
  MoveTo(release, Action::kCreate, actor, at, S::kDraft);
  return release;
}

namespace {

// UpdateRelease and SetGoLive: `action` names the verb in refusals and history.
Result<Release> ReplacePlan(Action action, const Release& release, const Actor& actor, Instant at,
                            ReleasePlan plan) {
  if (auto ok = CheckAllowed(action, release, actor); !ok) {
    return std::unexpected(ok.error());
  }
  if (auto ok = CheckOwnerOrAdmin(action, release, actor); !ok) {
    return std::unexpected(ok.error());
  }
  if (plan == release.plan) return release;  // nothing changed, nothing to record
  if (plan.golive) {
    const std::string verb = action == Action::kSetGoLive
                                 ? fmt::format("set the go-live plan of release {}", release.id)
                                 : fmt::format("update release {}", release.id);
    if (auto ok = CheckWindowNotEnded(verb, plan.golive->window, at); !ok) {
      return std::unexpected(ok.error());
    }
  }

  auto old_content = ContentDigest(release.plan);
  if (!old_content) return std::unexpected(old_content.error());
  auto new_content = ContentDigest(plan);
  if (!new_content) return std::unexpected(new_content.error());
  const bool content_changed = *old_content != *new_content;
  const bool reviewed = StateOrder(release.state) >= StateOrder(S::kApproved);

  Release next = release;
  next.plan = std::move(plan);
  if (release.state == S::kDraft) {
    MoveTo(next, action, actor, at, S::kDraft);
    return next;
  }
  if (content_changed || !reviewed) {
    // In review, the go-live plan is part of what the reviewers are looking at.
    ClearApprovals(next);
    MoveTo(next, action, actor, at, S::kDraft,
           fmt::format("content changed in state {}: back to draft, approvals cleared (§1.1)",
                       ReleaseStateName(release.state)));
    return next;
  }
  // Only the go-live plan changed after approval (§6.2.5).
  next.golive_approval.reset();
  next.golive_approved = false;
  if (next.plan.golive) {
    auto digest = GoLiveDigest(*next.plan.golive);
    if (!digest) return std::unexpected(digest.error());
    next.golive_approved =
        !release.approved_golive_digest.empty() && *digest == release.approved_golive_digest;
    if (next.golive_approved) next.golive_approval = release.golive_approval;
  }
  const ReleaseState to = release.state == S::kScheduled ? S::kAccepted : release.state;
  MoveTo(next, Action::kSetGoLive, actor, at, to,
         next.golive_approved
             ? "go-live plan restored to the approved one"
             : "go-live plan changed after approval: approve-golive needed (§6.2.5)");
  return next;
}

}  // namespace

Result<void> CheckWindowNotEnded(std::string_view verb, const MaintenanceWindow& window,
                                 Instant at) {
  if (at < window.end.seconds) return {};
  return Fail(ErrorCode::kFailedPrecondition,
              fmt::format("cannot {}: its go-live window ended at {} (now {}); set a window that "
                          "has not ended (procedure §6.2.4)",
                          verb, window.end.text, FormatRfc3339Utc(at)));
}

std::vector<std::string> PackageMismatches(const ReleasePlan& plan,
                                           const std::vector<PackageIdentity>& packages) {
  std::vector<std::string> problems;
  const std::string wanted = plan.version.ToString();
  for (std::size_t i = 0; i < packages.size(); ++i) {
    const PackageIdentity& p = packages[i];
    if (p.name == plan.product && p.version == wanted) continue;
    problems.push_back(
        fmt::format("packages[{}]: package {} carries {} {}, but the plan releases {} {}", i,
                    p.id.substr(0, 12), p.name, p.version, plan.product, wanted));
  }
  return problems;
}

Result<Release> UpdateRelease(const Release& release, const Actor& actor, Instant at,
                              ReleasePlan plan) {
  return ReplacePlan(Action::kUpdate, release, actor, at, std::move(plan));
}

Result<Release> SetGoLive(const Release& release, const Actor& actor, Instant at,
                          GoLivePlan golive) {
  ReleasePlan plan = release.plan;
  plan.golive = std::move(golive);
  return ReplacePlan(Action::kSetGoLive, release, actor, at, std::move(plan));
}

Result<Release> SubmitRelease(const Release& release, const Actor& actor, Instant at,
                              const std::optional<protocol::Version>& last_released,
                              const std::vector<PackageIdentity>& packages) {
  if (auto ok = CheckAllowed(Action::kSubmit, release, actor); !ok) {
    return std::unexpected(ok.error());
  }
  if (auto ok = CheckOwnerOrAdmin(Action::kSubmit, release, actor); !ok) {
    return std::unexpected(ok.error());
  }
  std::vector<std::string> problems;
  if (auto complete = CheckSubmittable(release.plan); !complete) {
    problems.push_back(complete.error().message());
  }
  if (Contains(release.plan.reviewers, release.owner)) {
    problems.push_back(fmt::format(
        "reviewers: the owner {} cannot review their own release (§6.1.2)", release.owner));
  }
  if (last_released) {
    if (auto follows = protocol::CheckSuccession(*last_released, release.plan.version); !follows) {
      problems.push_back(fmt::format("version: {} (last released {} version: {})",
                                     follows.error().message(), release.plan.product,
                                     last_released->ToString()));
    }
  }
  for (std::string& problem : PackageMismatches(release.plan, packages)) {
    problems.push_back(std::move(problem));
  }
  if (!problems.empty()) {
    std::string message = fmt::format("cannot submit release {}: ", release.id);
    for (std::size_t i = 0; i < problems.size(); ++i) message += (i ? "; " : "") + problems[i];
    return Fail(ErrorCode::kFailedPrecondition, std::move(message));
  }
  Release next = release;
  ClearApprovals(next);
  next.review_round = release.review_round + 1;
  MoveTo(next, Action::kSubmit, actor, at, S::kInReview);
  return next;
}

Result<Release> ApproveRelease(const Release& release, const Actor& actor, Instant at,
                               std::string comment) {
  if (auto ok = CheckRole(Action::kApprove, actor); !ok) return std::unexpected(ok.error());
  if (auto ok = CheckNotOwner(Action::kApprove, release, actor); !ok) {
    return std::unexpected(ok.error());
  }
  if (auto ok = CheckState(Action::kApprove, release); !ok) return std::unexpected(ok.error());
  if (auto ok = CheckListedReviewer(Action::kApprove, release, actor); !ok) {
    return std::unexpected(ok.error());
  }
  for (const ReviewDecision& approval : release.approvals) {
    if (approval.reviewer == actor.name) {
      return Fail(
          ErrorCode::kConflict,
          fmt::format("{} has already approved release {} in this review", actor.name, release.id));
    }
  }
  Release next = release;
  next.approvals.push_back(ReviewDecision{actor.name, Decision::kApproved, at, std::move(comment),
                                          release.review_round});
  std::vector<std::string> waiting;
  for (const std::string& reviewer : next.plan.reviewers) {
    const bool approved =
        std::any_of(next.approvals.begin(), next.approvals.end(),
                    [&](const ReviewDecision& d) { return d.reviewer == reviewer; });
    if (!approved) waiting.push_back(reviewer);
  }
  if (!waiting.empty()) {
    std::string names;
    for (const auto& name : waiting) names += (names.empty() ? "" : ", ") + name;
    MoveTo(next, Action::kApprove, actor, at, S::kInReview, "waiting for " + names);
    return next;
  }
  auto digest = ContentDigest(next.plan);
  if (!digest) return std::unexpected(digest.error());
  next.frozen_content_digest = *digest;
  if (next.plan.golive) {
    auto golive_digest = GoLiveDigest(*next.plan.golive);
    if (!golive_digest) return std::unexpected(golive_digest.error());
    next.golive_approved = true;
    next.approved_golive_digest = *golive_digest;
  }
  MoveTo(next, Action::kApprove, actor, at, S::kApproved,
         fmt::format("every reviewer approved; content digest {}", *digest));
  return next;
}

Result<Release> RejectRelease(const Release& release, const Actor& actor, Instant at,
                              std::string comment) {
  if (auto ok = CheckRole(Action::kReject, actor); !ok) return std::unexpected(ok.error());
  if (auto ok = CheckState(Action::kReject, release); !ok) return std::unexpected(ok.error());
  if (auto ok = CheckListedReviewer(Action::kReject, release, actor); !ok) {
    return std::unexpected(ok.error());
  }
  if (IsBlank(comment)) {
    return Fail(ErrorCode::kInvalidArgument,
                "reject needs a comment saying what must change (--comment)");
  }
  Release next = release;
  ClearApprovals(next);
  next.rejections.push_back(
      ReviewDecision{actor.name, Decision::kRejected, at, comment, release.review_round});
  MoveTo(next, Action::kReject, actor, at, S::kDraft, std::move(comment));
  return next;
}

UnixSeconds ReviewRoundStart(const Release& release) {
  for (auto it = release.history.rbegin(); it != release.history.rend(); ++it) {
    if (it->action == Action::kSubmit) return it->at;
  }
  return 0;
}

std::optional<UnixSeconds> LatestTestDeployment(const Release& release) {
  for (auto it = release.history.rbegin(); it != release.history.rend(); ++it) {
    if (it->action == Action::kSubmit) return std::nullopt;
    if (it->action == Action::kTestDeploy) return it->at;
  }
  return std::nullopt;
}

Result<Release> FileTestReport(const Release& release, const Actor& actor, Instant at,
                               TestResult result, std::string text, const TestRun& run) {
  if (auto ok = CheckAllowed(Action::kTestReport, release, actor); !ok) {
    return std::unexpected(ok.error());
  }
  if (IsBlank(text)) {
    return Fail(ErrorCode::kInvalidArgument,
                "a test report needs its text (--file REPORT.md): what was tested and how");
  }
  const std::optional<UnixSeconds> deployed = LatestTestDeployment(release);
  const bool tested = deployed.has_value() && !run.deployments.empty();
  if (result == TestResult::kPassed && !tested) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("cannot file a passed test report for release {}: its approved "
                            "content was never deployed to the test hosts; run `fabu release "
                            "test {}` first (procedure §6.2.3)",
                            release.id, release.id));
  }
  if (result == TestResult::kPassed && !run.not_succeeded.empty()) {
    std::string hosts;
    for (const std::string& h : run.not_succeeded) hosts += (hosts.empty() ? "" : ", ") + h;
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("cannot file a passed test report for release {}: the test "
                            "deployment of {} has not succeeded on every test host ({}); wait "
                            "for it, deploy again, or file a failed report",
                            release.id, FormatRfc3339Utc(*deployed), hosts));
  }
  Release next = release;
  TestReport report{result, actor.name, at, std::move(text), release.review_round, 0, {}};
  std::string note = fmt::format("test {}", TestResultName(result));
  if (tested) {
    report.test_deployed_at = *deployed;
    report.deployments = run.deployments;
    std::string ids;
    for (const std::string& d : run.deployments) ids += (ids.empty() ? "" : ", ") + d;
    note += fmt::format(" (test deployment of {}: {})", FormatRfc3339Utc(*deployed), ids);
  }
  next.test_reports.push_back(std::move(report));
  MoveTo(next, Action::kTestReport, actor, at, S::kTesting, std::move(note));
  return next;
}

Result<Release> AcceptRelease(const Release& release, const Actor& actor, Instant at,
                              const AcceptOptions& options) {
  if (auto ok = CheckAllowed(Action::kAccept, release, actor); !ok) {
    return std::unexpected(ok.error());
  }
  Release next = release;
  if (options.waive_test) {
    if (release.plan.category != kEmergencyCategory) {
      return Fail(ErrorCode::kFailedPrecondition,
                  fmt::format("--waive-test is only for category emergency (release {} is {}): "
                              "file a passed test report instead",
                              release.id, release.plan.category));
    }
    if (IsBlank(options.reason)) {
      return Fail(ErrorCode::kInvalidArgument,
                  "--waive-test needs --reason: why testing is skipped");
    }
    next.acceptance = Acceptance{actor.name, at, true, options.reason, options.comment};
    next.test_waived_ever = true;
    MoveTo(next, Action::kAccept, actor, at, S::kAccepted,
           "test waived (emergency): " + options.reason);
    return next;
  }
  const TestReport* latest = LatestReportOfRound(release);
  if (release.state != S::kTesting || latest == nullptr) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("cannot accept release {}: no test report has been filed for the "
                            "approved content; a tester must file a passed one first",
                            release.id));
  }
  if (latest->result != TestResult::kPassed) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("cannot accept release {}: the latest test report (by {} at {}) "
                            "failed; a tester must file a passed one first",
                            release.id, latest->author, FormatRfc3339Utc(latest->at)));
  }
  if (latest->deployments.empty()) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("cannot accept release {}: the passed test report (by {} at {}) "
                            "names no test deployment of the approved content; run `fabu release "
                            "test {}`, then a tester reports on it (procedure §6.2.3)",
                            release.id, latest->author, FormatRfc3339Utc(latest->at), release.id));
  }
  if (const auto deployed = LatestTestDeployment(release);
      deployed && *deployed != latest->test_deployed_at) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("cannot accept release {}: it was deployed to the test hosts again at "
                            "{}, after the test deployment the latest report covers ({}); a "
                            "tester must report on the new one",
                            release.id, FormatRfc3339Utc(*deployed),
                            FormatRfc3339Utc(latest->test_deployed_at)));
  }
  next.acceptance = Acceptance{actor.name, at, false, "", options.comment};
  MoveTo(next, Action::kAccept, actor, at, S::kAccepted);
  return next;
}

Result<Release> ApproveGoLive(const Release& release, const Actor& actor, Instant at,
                              std::string comment) {
  if (auto ok = CheckRole(Action::kApproveGoLive, actor); !ok) return std::unexpected(ok.error());
  if (auto ok = CheckNotOwner(Action::kApproveGoLive, release, actor); !ok) {
    return std::unexpected(ok.error());
  }
  if (auto ok = CheckState(Action::kApproveGoLive, release); !ok) {
    return std::unexpected(ok.error());
  }
  if (!release.plan.golive) {
    return Fail(
        ErrorCode::kFailedPrecondition,
        fmt::format("release {} has no go-live plan to approve: set one first", release.id));
  }
  if (release.golive_approved) {
    return Fail(ErrorCode::kConflict,
                fmt::format("the go-live plan of release {} is already approved", release.id));
  }
  if (auto ok =
          CheckWindowNotEnded(fmt::format("approve the go-live plan of release {}", release.id),
                              release.plan.golive->window, at);
      !ok) {
    return std::unexpected(ok.error());
  }
  auto digest = GoLiveDigest(*release.plan.golive);
  if (!digest) return std::unexpected(digest.error());
  Release next = release;
  next.golive_approved = true;
  next.approved_golive_digest = *digest;
  next.golive_approval = GoLiveApproval{actor.name, at, std::move(comment), *digest};
  MoveTo(next, Action::kApproveGoLive, actor, at, release.state,
         fmt::format("go-live digest {}", *digest));
  return next;
}

Result<Release> ScheduleRelease(const Release& release, const Actor& actor, Instant at) {
  if (auto ok = CheckAllowed(Action::kSchedule, release, actor); !ok) {
    return std::unexpected(ok.error());
  }
  if (!release.plan.golive) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("cannot schedule release {}: it has no go-live plan; give one "
                            "(schedule --file GOLIVE.json)",
                            release.id));
  }
  if (!release.golive_approved) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("cannot schedule release {}: its go-live plan was set after approval "
                            "and needs an approver's approve-golive first (§6.2.5)",
                            release.id));
  }
  if (auto frozen = VerifyFrozenContent(release); !frozen) {
    return std::unexpected(std::move(frozen.error())
                               .WithContext(fmt::format("cannot schedule release {}", release.id)));
  }
  const MaintenanceWindow& window = release.plan.golive->window;
  if (at >= window.end.seconds) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("cannot schedule release {}: its go-live window ended at {}; set a "
                            "new window",
                            release.id, window.end.text));
  }
  Release next = release;
  MoveTo(next, Action::kSchedule, actor, at, S::kScheduled,
         fmt::format("window {} .. {}", window.start.text, window.end.text));
  return next;
}

Result<Release> CancelRelease(const Release& release, const Actor& actor, Instant at,
                              std::string reason) {
  // The owner may cancel whatever role they now hold, as long as it is not viewer or tester.
  if (auto ok = CheckRole(Action::kCancel, actor); !ok) return std::unexpected(ok.error());
  if (auto ok = NeedReason(Action::kCancel, reason); !ok) return std::unexpected(ok.error());
  if (auto ok = CheckState(Action::kCancel, release); !ok) return std::unexpected(ok.error());
  Release next = release;
  next.close_code = CloseCode::kCancelled;
  MoveTo(next, Action::kCancel, actor, at, S::kCancelled, std::move(reason));
  return next;
}

}  // namespace fabu::coordinator::release
