#include "coordinator/release/workflow.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "coordinator/release/digest.hpp"

namespace fabu::coordinator::release {
namespace {

using nlohmann::json;
using S = ReleaseState;

constexpr std::string_view kEmergencyCategory = "emergency";

const std::vector<ReleaseState> kBeforeDeploying = {S::kDraft,   S::kInReview, S::kApproved,
                                                    S::kTesting, S::kAccepted, S::kScheduled};

bool IsBlank(std::string_view text) {
  return text.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

template <typename T>
bool Contains(const std::vector<T>& items, const T& item) {
  return std::find(items.begin(), items.end(), item) != items.end();
}

// "approver", "release_manager or admin", "a, b or c".
std::string RoleList(const std::vector<Role>& roles) {
  std::string out;
  for (std::size_t i = 0; i < roles.size(); ++i) {
    if (i > 0) out += (i + 1 == roles.size()) ? " or " : ", ";
    out += RoleName(roles[i]);
  }
  return out;
}

std::string StateList(const std::vector<ReleaseState>& states) {
  std::string out;
  for (std::size_t i = 0; i < states.size(); ++i) {
    if (i > 0) out += (i + 1 == states.size()) ? " or " : ", ";
    out += ReleaseStateName(states[i]);
  }
  return out;
}

// What must happen next, said from the state a release is in.
std::string_view NextStepHint(ReleaseState state) {
  switch (state) {
    case S::kDraft:
      return "submit it first";
    case S::kInReview:
      return "it is in review: every listed reviewer must approve it first";
    case S::kApproved:
      return "a tester must file a test report first";
    case S::kTesting:
      return "an approver must accept it first";
    case S::kAccepted:
      return "it must be scheduled first";
    case S::kScheduled:
      return "it is already scheduled";
    case S::kDeploying:
      return "it is deploying";
    case S::kPaused:
      return "its rollout is paused";
    case S::kDeployed:
      return "it is deployed";
    case S::kFailed:
      return "its rollout failed";
    case S::kRollingBack:
      return "it is rolling back";
    case S::kRolledBack:
      return "it was rolled back";
    case S::kClosed:
      return "it is closed";
    case S::kCancelled:
      return "it was cancelled";
  }
  return "";
}

std::size_t StateOrder(ReleaseState state) {
  const auto& all = AllReleaseStates();
  return static_cast<std::size_t>(std::find(all.begin(), all.end(), state) - all.begin());
}

Result<void> CheckRole(Action action, const Actor& actor) {
  const TransitionRule& rule = RuleFor(action);
  if (Contains(rule.roles, actor.role)) return {};
  return Fail(ErrorCode::kPermissionDenied,
              fmt::format("{} needs role {} (you are {})", ActionName(action), RoleList(rule.roles),
                          RoleName(actor.role)));
}

Result<void> CheckState(Action action, const Release& release) {
  const TransitionRule& rule = RuleFor(action);
  if (Contains(rule.from, release.state)) return {};
  std::string hint;
  const bool main_line = StateOrder(release.state) <= StateOrder(S::kScheduled);
  std::size_t latest_from = 0;
  for (ReleaseState from : rule.from) latest_from = std::max(latest_from, StateOrder(from));
  if (main_line && StateOrder(release.state) > latest_from) {
    hint = "that step is already behind it";
  } else {
    hint = std::string(NextStepHint(release.state));
  }
  return Fail(ErrorCode::kConflict,
              fmt::format("cannot {} release {} in state {}: {} ({} applies in {})",
                          ActionName(action), release.id, ReleaseStateName(release.state), hint,
                          ActionName(action), StateList(rule.from)));
}

// Role, then state: the two checks every operation starts with.
Result<void> CheckAllowed(Action action, const Release& release, const Actor& actor) {
  if (auto role = CheckRole(action, actor); !role) return role;
  return CheckState(action, release);
}

Result<void> CheckOwnerOrAdmin(Action action, const Release& release, const Actor& actor) {
  if (actor.name == release.owner || actor.role == Role::kAdmin) return {};
  return Fail(ErrorCode::kPermissionDenied,
              fmt::format("only the owner of release {} ({}) or an admin can {} it", release.id,
                          release.owner, ActionName(action)));
}

Result<void> CheckNotOwner(Action action, const Release& release, const Actor& actor) {
  if (actor.name != release.owner) return {};
  return Fail(ErrorCode::kPermissionDenied,
              fmt::format("the owner of a release cannot {} it (§6.1.2)", ActionName(action)));
}

Result<void> CheckListedReviewer(Action action, const Release& release, const Actor& actor) {
  if (Contains(release.plan.reviewers, actor.name)) return {};
  std::string names;
  for (const auto& name : release.plan.reviewers) names += (names.empty() ? "" : ", ") + name;
  return Fail(ErrorCode::kPermissionDenied,
              fmt::format("{} is not a listed reviewer of release {} and cannot {} it "
                          "(reviewers: {})",
                          actor.name, release.id, ActionName(action), names));
}

// Appends a history entry and moves the release to `to`.
void Record(Release& release, Action action, const Actor& actor, UnixSeconds at, ReleaseState to,
            std::string note = {}) {
  release.history.push_back(
      HistoryEntry{action, actor.name, actor.role, at, release.state, to, std::move(note)});
  release.state = to;
  release.updated_at = at;
}

// Everything a review decided is void once the content changes (§1.1).
void ClearApprovals(Release& release) {
  release.approvals.clear();
  release.acceptance.reset();
  release.frozen_content_digest.clear();
  release.golive_approved = false;
  release.approved_golive_digest.clear();
  release.golive_approval.reset();
}

const TestReport* LatestReportOfRound(const Release& release) {
  for (auto it = release.test_reports.rbegin(); it != release.test_reports.rend(); ++it) {
    if (it->round == release.review_round) return &*it;
  }
  return nullptr;
}

}  // namespace

// ---- names ------------------------------------------------------------------

std::string_view ReleaseStateName(ReleaseState state) {
  switch (state) {
    case S::kDraft:
      return "draft";
    case S::kInReview:
      return "in_review";
    case S::kApproved:
      return "approved";
    case S::kTesting:
      return "testing";
    case S::kAccepted:
      return "accepted";
    case S::kScheduled:
      return "scheduled";
    case S::kDeploying:
      return "deploying";
    case S::kPaused:
      return "paused";
    case S::kDeployed:
      return "deployed";
    case S::kFailed:
      return "failed";
    case S::kRollingBack:
      return "rolling_back";
    case S::kRolledBack:
      return "rolled_back";
    case S::kClosed:
      return "closed";
    case S::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

const std::vector<ReleaseState>& AllReleaseStates() {
  static const std::vector<ReleaseState> kAll = {
      S::kDraft,       S::kInReview,   S::kApproved, S::kTesting,  S::kAccepted,
      S::kScheduled,   S::kDeploying,  S::kPaused,   S::kDeployed, S::kFailed,
      S::kRollingBack, S::kRolledBack, S::kClosed,   S::kCancelled};
  return kAll;
}

Result<ReleaseState> ParseReleaseState(std::string_view text) {
  for (ReleaseState state : AllReleaseStates()) {
    if (ReleaseStateName(state) == text) return state;
  }
  return Fail(ErrorCode::kInvalidArgument, fmt::format("unknown release state \"{}\" (one of {})",
                                                       text, StateList(AllReleaseStates())));
}

std::string_view CloseCodeName(CloseCode code) {
  switch (code) {
    case CloseCode::kSuccess:
      return "success";
    case CloseCode::kPartial:
      return "partial";
    case CloseCode::kFailed:
      return "failed";
    case CloseCode::kRolledBack:
      return "rolled_back";
    case CloseCode::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

Result<CloseCode> ParseCloseCode(std::string_view text) {
  for (CloseCode code : {CloseCode::kSuccess, CloseCode::kPartial, CloseCode::kFailed,
                         CloseCode::kRolledBack, CloseCode::kCancelled}) {
    if (CloseCodeName(code) == text) return code;
  }
  return Fail(ErrorCode::kInvalidArgument,
              fmt::format("unknown close code \"{}\" (one of success, partial, failed, "
                          "rolled_back, cancelled)",
                          text));
}

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kAdmin:
      return "admin";
    case Role::kApprover:
      return "approver";
    case Role::kReleaseManager:
      return "release_manager";
    case Role::kTester:
      return "tester";
    case Role::kViewer:
      return "viewer";
  }
  return "unknown";
}

Result<Role> ParseRole(std::string_view text) {
  for (Role role :
       {Role::kAdmin, Role::kApprover, Role::kReleaseManager, Role::kTester, Role::kViewer}) {
    if (RoleName(role) == text) return role;
  }
  return Fail(ErrorCode::kInvalidArgument,
              fmt::format("unknown role \"{}\" (one of admin, approver, release_manager, tester, "
                          "viewer)",
                          text));
}

std::string_view ActionName(Action action) {
  switch (action) {
    case Action::kCreate:
      return "create";
    case Action::kUpdate:
      return "update";
    case Action::kSubmit:
      return "submit";
    case Action::kApprove:
      return "approve";
    case Action::kReject:
      return "reject";
    case Action::kSetGoLive:
      return "set-golive";
    case Action::kApproveGoLive:
      return "approve-golive";
    case Action::kTestReport:
      return "test-report";
    case Action::kAccept:
      return "accept";
    case Action::kSchedule:
      return "schedule";
    case Action::kCancel:
      return "cancel";
    case Action::kTestDeploy:
      return "test-deploy";
    case Action::kStartRollout:
      return "start-rollout";
    case Action::kPause:
      return "pause";
    case Action::kResume:
      return "resume";
    case Action::kFinishRollout:
      return "finish-rollout";
    case Action::kFailRollout:
      return "fail-rollout";
    case Action::kRollback:
      return "rollback";
    case Action::kFinishRollback:
      return "finish-rollback";
    case Action::kClose:
      return "close";
    case Action::kGate:
      return "gate";
    case Action::kAbort:
      return "abort";
    case Action::kReschedule:
      return "reschedule";
    case Action::kOverrideFreeze:
      return "override-freeze";
  }
  return "unknown";
}

std::string_view DecisionName(Decision decision) {
  return decision == Decision::kApproved ? "approved" : "rejected";
}

std::string_view TestResultName(TestResult result) {
  return result == TestResult::kPassed ? "passed" : "failed";
}

Result<TestResult> ParseTestResult(std::string_view text) {
  if (text == "passed") return TestResult::kPassed;
  if (text == "failed") return TestResult::kFailed;
  return Fail(ErrorCode::kInvalidArgument,
              fmt::format("unknown test result \"{}\" (passed or failed)", text));
}

// ---- the table --------------------------------------------------------------

const std::vector<TransitionRule>& TransitionTable() {
  using R = Role;
  static const std::vector<TransitionRule> kTable = {
      {Action::kCreate,
       {},
       S::kDraft,
       {R::kReleaseManager, R::kAdmin},
       "the creator becomes the owner (§6.1.2)"},
      {Action::kUpdate,
       kBeforeDeploying,
       S::kDraft,
       {R::kReleaseManager, R::kAdmin},
       "owner or admin; a change of approved content returns to draft and clears approvals "
       "(§1.1); a change of only the go-live plan keeps the state and needs approve-golive"},
      {Action::kSubmit,
       {S::kDraft},
       S::kInReview,
       {R::kReleaseManager, R::kAdmin},
       "owner or admin; all nine plan sections, >=1 package, targets, >=1 change ref, "
       ">=1 reviewer, the owner not a reviewer; version follows the last released one"},
      {Action::kApprove,
       {S::kInReview},
       S::kApproved,
       {R::kApprover},
       "a listed reviewer, never the owner; approved once every reviewer approved; "
       "freezes the content digest"},
      {Action::kReject,
       {S::kInReview},
       S::kDraft,
       {R::kApprover},
       "a listed reviewer; a comment is required; approvals cleared"},
      {Action::kSetGoLive,
       kBeforeDeploying,
       S::kDraft,
       {R::kReleaseManager, R::kAdmin},
       "owner or admin; as update (after approval the state stays, scheduled goes back to "
       "accepted, and approve-golive is needed)"},
      {Action::kApproveGoLive,
       {S::kApproved, S::kTesting, S::kAccepted},
       S::kAccepted,
       {R::kApprover},
       "never the owner; a go-live plan set after approval and not yet approved (§6.2.5); "
       "the state does not change"},
      {Action::kTestReport,
       {S::kApproved, S::kTesting},
       S::kTesting,
       {R::kTester},
       "result passed or failed, and the report text"},
      {Action::kAccept,
       {S::kApproved, S::kTesting},
       S::kAccepted,
       {R::kApprover},
       "the latest test report of this review round passed (from testing); or, category "
       "emergency only, --waive-test with a reason (flagged forever)"},
      {Action::kSchedule,
       {S::kAccepted},
       S::kScheduled,
       {R::kReleaseManager, R::kAdmin},
       "a go-live plan, approved with the plan or by approve-golive; window not over; content "
       "matches the frozen digest"},
      {Action::kCancel,
       kBeforeDeploying,
       S::kCancelled,
       {R::kReleaseManager, R::kAdmin},
       "close code cancelled"},
      {Action::kTestDeploy,
       {S::kApproved, S::kTesting},
       S::kTesting,
       {R::kReleaseManager, R::kAdmin, R::kTester},
       "targets and a package; content matches the frozen digest; deploys to the targets "
       "labelled env=test"},
      {Action::kStartRollout,
       {S::kScheduled},
       S::kDeploying,
       {R::kReleaseManager, R::kAdmin},
       "accepted; go-live plan approved; inside the go-live window; content matches the "
       "frozen digest; at least one target labelled env=production"},
      {Action::kPause,
       {S::kDeploying},
       S::kPaused,
       {R::kReleaseManager, R::kApprover, R::kAdmin},
       "a person, or the rollout engine when the window closes or a freeze begins; a reason"},
      {Action::kResume,
       {S::kPaused, S::kFailed},
       S::kDeploying,
       {R::kReleaseManager, R::kApprover, R::kAdmin},
       "a person; or the engine when the window reopens or the freeze ends; from failed, the "
       "next wave starts despite the failed one"},
      {Action::kFinishRollout,
       {S::kDeploying},
       S::kDeployed,
       {R::kAdmin},
       "every wave within its max_failures and every host final (rollout engine)"},
      {Action::kFailRollout,
       {S::kDeploying, S::kPaused},
       S::kFailed,
       {R::kAdmin},
       "a wave exceeded max_failures without auto_rollback, or an aborted rollout ended "
       "(rollout engine)"},
      {Action::kRollback,
       {S::kDeploying, S::kPaused, S::kFailed},
       S::kRollingBack,
       {R::kReleaseManager, R::kApprover, R::kAdmin},
       "auto_rollback, or a person after a failure; a reason"},
      {Action::kFinishRollback,
       {S::kRollingBack},
       S::kRolledBack,
       {R::kAdmin},
       "every moved host restored or final (rollout engine)"},
      {Action::kClose,
       {S::kDeployed, S::kFailed, S::kRolledBack},
       S::kClosed,
       {R::kReleaseManager, R::kAdmin},
       "the CMDB update confirmed (or deliveries waived by an approver); success refused when "
       "any host failed; read-only afterwards"},
      {Action::kGate,
       {S::kDeploying},
       S::kDeploying,
       {R::kReleaseManager, R::kApprover, R::kAdmin},
       "the rollout waits at a control point (between_waves: gate, procedure §4.5)"},
      {Action::kAbort,
       {S::kDeploying, S::kPaused},
       S::kDeploying,
       {R::kReleaseManager, R::kApprover, R::kAdmin},
       "a reason; nothing more is assigned, hosts in flight finish, then the rollout fails"},
      {Action::kReschedule,
       {S::kPaused},
       S::kPaused,
       {R::kReleaseManager, R::kApprover, R::kAdmin},
       "a new window that has not ended; the engine goes on when it opens"},
      {Action::kOverrideFreeze,
       {S::kAccepted, S::kScheduled, S::kDeploying, S::kPaused},
       S::kScheduled,
       {R::kApprover},
       "category emergency only; a reason; never the owner; the state does not change"},
  };
  return kTable;
}

const TransitionRule& RuleFor(Action action) {
  for (const TransitionRule& rule : TransitionTable()) {
    if (rule.action == action) return rule;
  }
  // Every Action has a row; the table test checks it.
  return TransitionTable().front();
}

std::string TransitionTableMarkdown() {
  std::string out = "| action | from | to | roles | guard |\n|---|---|---|---|---|\n";
  for (const TransitionRule& rule : TransitionTable()) {
    out += fmt::format("| {} | {} | {} | {} | {} |\n", ActionName(rule.action),
                       rule.from.empty() ? std::string("(new)") : StateList(rule.from),
                       ReleaseStateName(rule.to), RoleList(rule.roles), rule.guard);
  }
  return out;
}

// ---- operations -------------------------------------------------------------

Result<Release> CreateRelease(std::string id, const Actor& actor, UnixSeconds at,
                              ReleasePlan plan) {
  if (auto role = CheckRole(Action::kCreate, actor); !role) return std::unexpected(role.error());
  if (id.empty()) return Fail(ErrorCode::kInvalidArgument, "a release needs an id");
  Release release;
  release.id = std::move(id);
  release.owner = actor.name;
  release.plan = std::move(plan);
  release.created_at = at;
  Record(release, Action::kCreate, actor, at, S::kDraft);
  return release;
}

namespace {

// UpdateRelease and SetGoLive: `action` names the verb in refusals and history.
Result<Release> ReplacePlan(Action action, const Release& release, const Actor& actor,
                            UnixSeconds at, ReleasePlan plan) {
  if (auto ok = CheckAllowed(action, release, actor); !ok) {
    return std::unexpected(ok.error());
  }
  if (auto ok = CheckOwnerOrAdmin(action, release, actor); !ok) {
    return std::unexpected(ok.error());
  }
  if (plan == release.plan) return release;  // nothing changed, nothing to record

  auto old_content = ContentDigest(release.plan);
  if (!old_content) return std::unexpected(old_content.error());
  auto new_content = ContentDigest(plan);
  if (!new_content) return std::unexpected(new_content.error());
  const bool content_changed = *old_content != *new_content;
  const bool reviewed = StateOrder(release.state) >= StateOrder(S::kApproved);

  Release next = release;
  next.plan = std::move(plan);
  if (release.state == S::kDraft) {
    Record(next, action, actor, at, S::kDraft);
    return next;
  }
  if (content_changed || !reviewed) {
    // In review, the go-live plan is part of what the reviewers are looking at.
    ClearApprovals(next);
    Record(next, action, actor, at, S::kDraft,
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
  Record(next, Action::kSetGoLive, actor, at, to,
         next.golive_approved
             ? "go-live plan restored to the approved one"
             : "go-live plan changed after approval: approve-golive needed (§6.2.5)");
  return next;
}

}  // namespace

Result<Release> UpdateRelease(const Release& release, const Actor& actor, UnixSeconds at,
                              ReleasePlan plan) {
  return ReplacePlan(Action::kUpdate, release, actor, at, std::move(plan));
}

Result<Release> SetGoLive(const Release& release, const Actor& actor, UnixSeconds at,
                          GoLivePlan golive) {
  ReleasePlan plan = release.plan;
  plan.golive = std::move(golive);
  return ReplacePlan(Action::kSetGoLive, release, actor, at, std::move(plan));
}

Result<Release> SubmitRelease(const Release& release, const Actor& actor, UnixSeconds at,
                              const std::optional<protocol::Version>& last_released) {
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
  if (!problems.empty()) {
    std::string message = fmt::format("cannot submit release {}: ", release.id);
    for (std::size_t i = 0; i < problems.size(); ++i) message += (i ? "; " : "") + problems[i];
    return Fail(ErrorCode::kFailedPrecondition, std::move(message));
  }
  Release next = release;
  ClearApprovals(next);
  next.review_round = release.review_round + 1;
  Record(next, Action::kSubmit, actor, at, S::kInReview);
  return next;
}

Result<Release> ApproveRelease(const Release& release, const Actor& actor, UnixSeconds at,
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
    Record(next, Action::kApprove, actor, at, S::kInReview, "waiting for " + names);
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
  Record(next, Action::kApprove, actor, at, S::kApproved,
         fmt::format("every reviewer approved; content digest {}", *digest));
  return next;
}

Result<Release> RejectRelease(const Release& release, const Actor& actor, UnixSeconds at,
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
  Record(next, Action::kReject, actor, at, S::kDraft, std::move(comment));
  return next;
}

Result<Release> FileTestReport(const Release& release, const Actor& actor, UnixSeconds at,
                               TestResult result, std::string text) {
  if (auto ok = CheckAllowed(Action::kTestReport, release, actor); !ok) {
    return std::unexpected(ok.error());
  }
  if (IsBlank(text)) {
    return Fail(ErrorCode::kInvalidArgument,
                "a test report needs its text (--file REPORT.md): what was tested and how");
  }
  Release next = release;
  next.test_reports.push_back(
      TestReport{result, actor.name, at, std::move(text), release.review_round});
  Record(next, Action::kTestReport, actor, at, S::kTesting,
         fmt::format("test {}", TestResultName(result)));
  return next;
}

Result<Release> AcceptRelease(const Release& release, const Actor& actor, UnixSeconds at,
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
    Record(next, Action::kAccept, actor, at, S::kAccepted,
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
  next.acceptance = Acceptance{actor.name, at, false, "", options.comment};
  Record(next, Action::kAccept, actor, at, S::kAccepted);
  return next;
}

Result<Release> ApproveGoLive(const Release& release, const Actor& actor, UnixSeconds at,
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
  auto digest = GoLiveDigest(*release.plan.golive);
  if (!digest) return std::unexpected(digest.error());
  Release next = release;
  next.golive_approved = true;
  next.approved_golive_digest = *digest;
  next.golive_approval = GoLiveApproval{actor.name, at, std::move(comment), *digest};
  Record(next, Action::kApproveGoLive, actor, at, release.state,
         fmt::format("go-live digest {}", *digest));
  return next;
}

Result<Release> ScheduleRelease(const Release& release, const Actor& actor, UnixSeconds at) {
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
  Record(next, Action::kSchedule, actor, at, S::kScheduled,
         fmt::format("window {} .. {}", window.start.text, window.end.text));
  return next;
}

Result<Release> CancelRelease(const Release& release, const Actor& actor, UnixSeconds at,
                              std::string reason) {
  // The owner may cancel whatever role they now hold, as long as it is not viewer or tester.
  if (auto ok = CheckAllowed(Action::kCancel, release, actor); !ok) {
    return std::unexpected(ok.error());
  }
  Release next = release;
  next.close_code = CloseCode::kCancelled;
  Record(next, Action::kCancel, actor, at, S::kCancelled, std::move(reason));
  return next;
}

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

Result<Release> StartTestDeployment(const Release& release, const Actor& actor, UnixSeconds at,
                                    std::size_t host_count) {
  if (auto ok = CheckAllowed(Action::kTestDeploy, release, actor); !ok) {
    return std::unexpected(ok.error());
  }
  if (auto ok = CheckDeployable(Action::kTestDeploy, release, host_count, "test"); !ok) {
    return std::unexpected(ok.error());
  }
  Release next = release;
  Record(next, Action::kTestDeploy, actor, at, S::kTesting,
         fmt::format("deploying to {} test host(s)", host_count));
  return next;
}

Result<Release> StartRollout(const Release& release, const Actor& actor, UnixSeconds at,
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
  Record(next, Action::kStartRollout, actor, at, S::kDeploying,
         fmt::format("deploying to {} production host(s)", host_count));
  return next;
}

Result<Release> FinishRollout(const Release& release, const Actor& actor, UnixSeconds at,
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
  Record(next, action, actor, at, RuleFor(action).to, std::move(note));
  return next;
}

namespace {

Result<void> NeedReason(Action action, std::string_view reason) {
  if (!IsBlank(reason)) return {};
  return Fail(ErrorCode::kInvalidArgument,
              fmt::format("{} needs a reason (--reason)", ActionName(action)));
}

}  // namespace

Result<Release> PauseRollout(const Release& release, const Actor& actor, UnixSeconds at,
                             std::string reason) {
  if (auto ok = CheckAllowed(Action::kPause, release, actor); !ok) {
    return std::unexpected(ok.error());
  }
  if (auto ok = NeedReason(Action::kPause, reason); !ok) return std::unexpected(ok.error());
  Release next = release;
  Record(next, Action::kPause, actor, at, S::kPaused, std::move(reason));
  return next;
}

Result<Release> ResumeRollout(const Release& release, const Actor& actor, UnixSeconds at,
                              std::string comment) {
  if (auto ok = CheckAllowed(Action::kResume, release, actor); !ok) {
    return std::unexpected(ok.error());
  }
  Release next = release;
  Record(next, Action::kResume, actor, at, S::kDeploying, std::move(comment));
  return next;
}

Result<Release> ConfirmGate(const Release& release, const Actor& actor, UnixSeconds at,
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
  Record(next, Action::kGate, actor, at, S::kDeploying, std::move(comment));
  return next;
}

Result<Release> AbortRollout(const Release& release, const Actor& actor, UnixSeconds at,
                             std::string reason) {
  if (auto ok = CheckAllowed(Action::kAbort, release, actor); !ok) {
    return std::unexpected(ok.error());
  }
  if (auto ok = NeedReason(Action::kAbort, reason); !ok) return std::unexpected(ok.error());
  Release next = release;
  Record(next, Action::kAbort, actor, at, S::kDeploying, std::move(reason));
  return next;
}

Result<Release> StartRollback(const Release& release, const Actor& actor, UnixSeconds at,
                              std::string reason) {
  if (auto ok = CheckAllowed(Action::kRollback, release, actor); !ok) {
    return std::unexpected(ok.error());
  }
  if (auto ok = NeedReason(Action::kRollback, reason); !ok) return std::unexpected(ok.error());
  Release next = release;
  Record(next, Action::kRollback, actor, at, S::kRollingBack, std::move(reason));
  return next;
}

Result<Release> FinishRollback(const Release& release, const Actor& actor, UnixSeconds at,
                               std::string note) {
  if (auto ok = CheckAllowed(Action::kFinishRollback, release, actor); !ok) {
    return std::unexpected(ok.error());
  }
  Release next = release;
  next.rollout_finished_at = at;
  Record(next, Action::kFinishRollback, actor, at, S::kRolledBack, std::move(note));
  return next;
}

Result<Release> RescheduleWindow(const Release& release, const Actor& actor, UnixSeconds at,
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
  Record(next, Action::kReschedule, actor, at, S::kPaused, std::move(note));
  return next;
}

Result<Release> OverrideFreeze(const Release& release, const Actor& actor, UnixSeconds at,
                               std::string reason) {
  if (auto ok = CheckAllowed(Action::kOverrideFreeze, release, actor); !ok) {
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
  if (auto ok = NeedReason(Action::kOverrideFreeze, reason); !ok) {
    return std::unexpected(ok.error());
  }
  Release next = release;
  next.freeze_override = FreezeOverride{actor.name, at, reason};
  Record(next, Action::kOverrideFreeze, actor, at, release.state, std::move(reason));
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

Result<Release> CloseRelease(const Release& release, const Actor& actor, UnixSeconds at,
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
  const UnixSeconds finished = release.rollout_finished_at > 0 ? release.rollout_finished_at : at;
  closure.finished_in_window =
      release.plan.golive && finished <= release.plan.golive->window.end.seconds;
  next.closure = std::move(closure);
  Record(next, Action::kClose, actor, at, S::kClosed,
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

// ---- JSON -------------------------------------------------------------------

namespace {

json TimeJson(UnixSeconds at) { return json{{"unix", at}, {"utc", FormatRfc3339Utc(at)}}; }

json DecisionJson(const ReviewDecision& decision) {
  return json{{"reviewer", decision.reviewer},
              {"decision", DecisionName(decision.decision)},
              {"at", TimeJson(decision.at)},
              {"comment", decision.comment},
              {"round", decision.round}};
}

}  // namespace

json ReleaseToJson(const Release& release) {
  json approvals = json::array();
  for (const auto& approval : release.approvals) approvals.push_back(DecisionJson(approval));
  json rejections = json::array();
  for (const auto& rejection : release.rejections) rejections.push_back(DecisionJson(rejection));
  json reports = json::array();
  for (const TestReport& report : release.test_reports) {
    reports.push_back(json{{"result", TestResultName(report.result)},
                           {"author", report.author},
                           {"at", TimeJson(report.at)},
                           {"text", report.text},
                           {"round", report.round}});
  }
  json history = json::array();
  for (const HistoryEntry& entry : release.history) {
    history.push_back(json{{"action", ActionName(entry.action)},
                           {"actor", entry.actor},
                           {"role", RoleName(entry.role)},
                           {"at", TimeJson(entry.at)},
                           {"from", ReleaseStateName(entry.from)},
                           {"to", ReleaseStateName(entry.to)},
                           {"note", entry.note}});
  }
  json out = {
      {"id", release.id},
      {"owner", release.owner},
      {"state", ReleaseStateName(release.state)},
      {"close_code", release.close_code ? json(CloseCodeName(*release.close_code)) : json(nullptr)},
      {"plan", ReleasePlanToJson(release.plan)},
      {"created_at", TimeJson(release.created_at)},
      {"updated_at", TimeJson(release.updated_at)},
      {"review_round", release.review_round},
      {"approvals", std::move(approvals)},
      {"rejections", std::move(rejections)},
      {"test_reports", std::move(reports)},
      {"test_waived_ever", release.test_waived_ever},
      {"frozen_content_digest", release.frozen_content_digest},
      {"golive_approved", release.golive_approved},
      {"approved_golive_digest", release.approved_golive_digest},
      {"history", std::move(history)},
  };
  if (release.acceptance) {
    out["acceptance"] = json{{"by", release.acceptance->by},
                             {"at", TimeJson(release.acceptance->at)},
                             {"test_waived", release.acceptance->test_waived},
                             {"waive_reason", release.acceptance->waive_reason},
                             {"comment", release.acceptance->comment}};
  } else {
    out["acceptance"] = nullptr;
  }
  if (release.golive_approval) {
    out["golive_approval"] = json{{"by", release.golive_approval->by},
                                  {"at", TimeJson(release.golive_approval->at)},
                                  {"comment", release.golive_approval->comment},
                                  {"digest", release.golive_approval->digest}};
  } else {
    out["golive_approval"] = nullptr;
  }
  out["rollout_window"] = release.rollout_window
                              ? json{{"start", release.rollout_window->start.text},
                                     {"end", release.rollout_window->end.text}}
                              : json(nullptr);
  out["freeze_override"] = release.freeze_override
                               ? json{{"by", release.freeze_override->by},
                                      {"at", TimeJson(release.freeze_override->at)},
                                      {"reason", release.freeze_override->reason}}
                               : json(nullptr);
  out["rollout_finished_at"] =
      release.rollout_finished_at > 0 ? TimeJson(release.rollout_finished_at) : json(nullptr);
  out["closure"] = release.closure
                       ? json{{"by", release.closure->by},
                              {"at", TimeJson(release.closure->at)},
                              {"notes", release.closure->notes},
                              {"finished_in_window", release.closure->finished_in_window},
                              {"cmdb", release.closure->cmdb}}
                       : json(nullptr);
  return out;
}

}  // namespace fabu::coordinator::release
