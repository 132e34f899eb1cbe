// The release workflow: names of states, actions and roles, and the
// transition table (workflow.hpp). The operations are in
// workflow_review.cpp (plan to schedule) and workflow_rollout.cpp (deploy to
// close); the JSON form in release_codec.cpp.
#include "coordinator/release/workflow.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "coordinator/release/digest.hpp"
#include "coordinator/release/workflow_internal.hpp"

namespace fabu::coordinator::release {

using namespace detail;  // the shared checks of workflow_internal.hpp

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
    case Role::kSystem:
      return "system";
  }
  return "unknown";
}

Result<Role> ParseRole(std::string_view text) {
  for (Role role : {Role::kAdmin, Role::kApprover, Role::kReleaseManager, Role::kTester,
                    Role::kViewer, Role::kSystem}) {
    if (RoleName(role) == text) return role;
  }
  return Fail(ErrorCode::kInvalidArgument,
              fmt::format("unknown role \"{}\": use one of admin, approver, release_manager, "
                          "tester, viewer",
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
    case Action::kRetry:
      return "retry";
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
       {R::kReleaseManager, R::kApprover, R::kAdmin, R::kSystem},
       "a person, or the rollout engine when the window closes or a freeze begins; a reason"},
      {Action::kResume,
       {S::kPaused, S::kFailed},
       S::kDeploying,
       {R::kReleaseManager, R::kApprover, R::kAdmin, R::kSystem},
       "a person; or the engine when the window reopens or the freeze ends; from failed, the "
       "next wave starts despite the failed one"},
      {Action::kFinishRollout,
       {S::kDeploying},
       S::kDeployed,
       {R::kSystem},
       "every wave within its max_failures and every host final (rollout engine)"},
      {Action::kFailRollout,
       {S::kDeploying, S::kPaused},
       S::kFailed,
       {R::kSystem},
       "a wave exceeded max_failures without auto_rollback, or an aborted rollout ended "
       "(rollout engine)"},
      {Action::kRollback,
       {S::kDeploying, S::kPaused, S::kFailed},
       S::kRollingBack,
       {R::kReleaseManager, R::kApprover, R::kAdmin, R::kSystem},
       "auto_rollback, or a person after a failure; a reason"},
      {Action::kFinishRollback,
       {S::kRollingBack},
       S::kRolledBack,
       {R::kSystem},
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
      {Action::kRetry,
       {S::kFailed, S::kDeployed},
       S::kDeploying,
       {R::kReleaseManager, R::kApprover, R::kAdmin},
       "a wave went over max_failures and was not rolled back, or the rollout ended with failed "
       "hosts within the thresholds; a reason (what was fixed); the failed hosts are deployed "
       "again, the others never touched, and each wave is judged on their new results"},
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

}  // namespace fabu::coordinator::release
