// The release workflow: states, roles, and the operations that move a release
// through review, testing, acceptance and scheduling (procedure §4.4, §6.1.2,
// §6.2.1-§6.2.5).
//
// A `Release` is a plain value: the aggregate the store keeps. Every operation
// is a pure function `(release, actor, time, inputs) -> Result<Release>`; it
// never changes its input, so the daemon calls it inside a store transaction
// and writes the result only when it succeeds. A refusal says what is
// missing, with an error code the API maps to a status:
//   kPermissionDenied   the actor's role or person may not do this
//                       ("approve needs role approver (you are tester)",
//                        "the owner of a release cannot approve it (§6.1.2)")
//   kConflict           the release is in the wrong state
//                       ("cannot approve release R-12 in state draft: submit it first")
//   kFailedPrecondition a guard of the procedure is not met (missing plan
//                       sections, no passed test report, go-live not approved)
//   kInvalidArgument    an input is malformed (empty rejection comment)
//
// The transitions are data (`TransitionTable`), so they can be printed and
// tested. Every operation appends a HistoryEntry (action, actor, role, time,
// from, to), including those that keep the state (an approval that is not the
// last one). Times are seconds since the epoch (see timestamp.hpp).
//
// The content a release's reviewers approve (everything in the plan but the
// go-live plan) is frozen by its digest at approval; any change to it sends
// the release back to draft with its approvals, test acceptance and go-live
// approval cleared (procedure §1.1). A go-live plan that was part of the approved
// content needs no further approval; one set or changed after approval needs
// `ApproveGoLive` before `ScheduleRelease` (procedure §6.2.5).
//
// Pure value types and functions; thread-safe.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/release/golive_plan.hpp"
#include "coordinator/release/release_plan.hpp"
#include "coordinator/release/timestamp.hpp"
#include "protocol/error.hpp"
#include "protocol/version.hpp"

namespace fabu::coordinator::release {

enum class ReleaseState {
  kDraft,
  kInReview,
  kApproved,
  kTesting,
  kAccepted,
  kScheduled,
  kDeploying,
  kPaused,
  kDeployed,
  kFailed,
  kRollingBack,
  kRolledBack,
  kClosed,
  kCancelled,
};
std::string_view ReleaseStateName(ReleaseState state);  // "in_review"
Result<ReleaseState> ParseReleaseState(std::string_view text);
// Every state, in workflow order.
const std::vector<ReleaseState>& AllReleaseStates();

// How a closed release ended (procedure §6.2.9, KPI §4.6).
enum class CloseCode { kSuccess, kPartial, kFailed, kRolledBack, kCancelled };
std::string_view CloseCodeName(CloseCode code);
Result<CloseCode> ParseCloseCode(std::string_view text);

// Roles of procedure §4.4: admin; approver (发布管理负责人, approves plans);
// release_manager (发布负责人, owns releases); tester (发布测试人员); viewer.
// kSystem is the coordinator itself (its rollout engine) in a release's
// history: never a user's role, and the only one of the engine's own moves
// (finish-rollout, fail-rollout, finish-rollback).
enum class Role { kAdmin, kApprover, kReleaseManager, kTester, kViewer, kSystem };
std::string_view RoleName(Role role);
Result<Role> ParseRole(std::string_view text);

struct Actor {
  std::string name;
  Role role = Role::kViewer;
};

// What was done to a release; the names are the CLI's verbs.
enum class Action {
  kCreate,
  kUpdate,
  kSubmit,
  kApprove,
  kReject,
  kSetGoLive,
  kApproveGoLive,
  kTestReport,
  kAccept,
  kSchedule,
  kCancel,
  kTestDeploy,  // deploy to the targets with env=test
  // Carried out by the rollout engine; listed so the table is whole.
  kStartRollout,
  kPause,
  kResume,
  kFinishRollout,
  kFailRollout,
  kRollback,
  kFinishRollback,
  kClose,
  // Added with the rollout engine: kept after the first ones so
  // stored histories keep their names.
  kGate,            // a person confirms a control point between waves
  kAbort,           // assign nothing more; in-flight hosts finish
  kReschedule,      // a new window for a rollout the old window stopped
  kOverrideFreeze,  // an approver lets an emergency release through a freeze
  kRetry,           // the failed hosts of the wave that failed are deployed again
};
std::string_view ActionName(Action action);  // "approve-golive"

// One row of the transition table.
struct TransitionRule {
  Action action;
  std::vector<ReleaseState> from;
  ReleaseState to;
  std::vector<Role> roles;  // any of these may act
  std::string_view guard;   // the conditions beyond state and role, in words
};

// The whole table, one rule per action.
const std::vector<TransitionRule>& TransitionTable();
const TransitionRule& RuleFor(Action action);
// The table as a Markdown table, for docs and `--help`.
std::string TransitionTableMarkdown();

enum class Decision { kApproved, kRejected };
std::string_view DecisionName(Decision decision);

struct ReviewDecision {
  std::string reviewer;
  Decision decision = Decision::kApproved;
  UnixSeconds at = 0;
  std::string comment;
  int round = 0;  // the review round (one per submit)
  friend bool operator==(const ReviewDecision&, const ReviewDecision&) = default;
};

enum class TestResult { kPassed, kFailed };
std::string_view TestResultName(TestResult result);
Result<TestResult> ParseTestResult(std::string_view text);

struct TestReport {
  TestResult result = TestResult::kFailed;
  std::string author;
  UnixSeconds at = 0;
  std::string text;  // the report (Markdown)
  int round = 0;     // the review round the tested content belongs to
  // The test deployment it reports on (procedure §6.2.3): when it was made
  // (its history entry; 0: none) and its deployments, the latest per test host.
  UnixSeconds test_deployed_at = 0;
  std::vector<std::string> deployments;
  friend bool operator==(const TestReport&, const TestReport&) = default;
};

struct Acceptance {
  std::string by;
  UnixSeconds at = 0;
  bool test_waived = false;  // emergency only
  std::string waive_reason;
  std::string comment;
  friend bool operator==(const Acceptance&, const Acceptance&) = default;
};

struct GoLiveApproval {
  std::string by;
  UnixSeconds at = 0;
  std::string comment;
  std::string digest;  // GoLiveDigest of the approved go-live plan
  friend bool operator==(const GoLiveApproval&, const GoLiveApproval&) = default;
};

struct HistoryEntry {
  Action action = Action::kCreate;
  std::string actor;
  Role role = Role::kViewer;
  UnixSeconds at = 0;
  ReleaseState from = ReleaseState::kDraft;
  ReleaseState to = ReleaseState::kDraft;
  std::string note;
  // `at` to the millisecond (0 in a history written before milliseconds were
  // kept: read as `at` * 1000). The report's average times use it.
  std::int64_t at_ms = 0;
  std::int64_t AtMillis() const { return at_ms != 0 ? at_ms : at * 1000; }
  friend bool operator==(const HistoryEntry&, const HistoryEntry&) = default;
};

struct FreezeOverride {
  std::string by;
  UnixSeconds at = 0;
  std::string reason;
  friend bool operator==(const FreezeOverride&, const FreezeOverride&) = default;
};

// How a release was closed (§6.2.9) and what the KPIs need of it (§4.6).
struct Closure {
  std::string by;
  UnixSeconds at = 0;
  std::string notes;
  bool finished_in_window = false;  // the rollout ended before the planned window's end
  std::string cmdb;                 // "confirmed", or "waived by NAME: reason"
  friend bool operator==(const Closure&, const Closure&) = default;
};

struct Release {
  std::string id;
  std::string owner;  // the creator (procedure §6.1.2)
  ReleaseState state = ReleaseState::kDraft;
  std::optional<CloseCode> close_code;
  ReleasePlan plan;
  UnixSeconds created_at = 0;
  UnixSeconds updated_at = 0;

  int review_round = 0;                    // incremented by each submit
  std::vector<ReviewDecision> approvals;   // this round's approvals; cleared on return to draft
  std::vector<ReviewDecision> rejections;  // every rejection, kept forever
  std::vector<TestReport> test_reports;    // every report, kept forever
  std::optional<Acceptance> acceptance;    // cleared on return to draft
  bool test_waived_ever = false;  // an emergency acceptance waived testing: flagged forever

  std::string frozen_content_digest;   // ContentDigest at approval; empty when not approved
  bool golive_approved = false;        // plan.golive may be used for scheduling
  std::string approved_golive_digest;  // GoLiveDigest of the go-live plan approved
  std::optional<GoLiveApproval> golive_approval;  // when approved separately (§6.2.5)

  std::vector<HistoryEntry> history;

  // The rollout.
  std::optional<MaintenanceWindow> rollout_window;  // set by Reschedule; else the plan's
  std::optional<FreezeOverride> freeze_override;    // emergency releases only
  UnixSeconds rollout_finished_at = 0;              // deployed, failed or rolled back
  std::optional<Closure> closure;

  // The window the rollout runs in now: a rescheduled one, else the planned one.
  std::optional<MaintenanceWindow> ActiveWindow() const;

  friend bool operator==(const Release&, const Release&) = default;
};

// Creates a draft owned by `actor` (release_manager or admin).
Result<Release> CreateRelease(std::string id, const Actor& actor, Instant at, ReleasePlan plan);

// Replaces the plan (owner or admin). From in_review, approved, testing,
// accepted or scheduled, a change of the frozen content returns the release
// to draft and clears its approvals and acceptance. A change of only the
// go-live plan after approval keeps the state (scheduled goes back to
// accepted) and needs ApproveGoLive. An identical plan changes nothing.
Result<Release> UpdateRelease(const Release& release, const Actor& actor, Instant at,
                              ReleasePlan plan);

// Sets or replaces the go-live plan; the rules of UpdateRelease apply.
Result<Release> SetGoLive(const Release& release, const Actor& actor, Instant at,
                          GoLivePlan golive);

// What a stored package carries, as its signed manifest says.
struct PackageIdentity {
  std::string id;  // SHA-256 hex
  std::string name;
  std::string version;
};

// draft -> in_review (owner or admin). Guards: CheckSubmittable; the owner is
// not a reviewer; the version follows `last_released` (the last released
// version of the same product, if any) by the version policy; every package
// in `packages` (those the plan names, in its order) carries the plan's
// product as its name and the plan's version (procedure §1.1, §6.1.3).
Result<Release> SubmitRelease(const Release& release, const Actor& actor, Instant at,
                              const std::optional<protocol::Version>& last_released,
                              const std::vector<PackageIdentity>& packages = {});

// The packages of `packages` that do not carry `plan`'s product and version,
// one problem each ("packages[i]: ..."); empty when all do.
std::vector<std::string> PackageMismatches(const ReleasePlan& plan,
                                           const std::vector<PackageIdentity>& packages);

// Refuses a go-live window that has already ended at `at` (procedure §6.2.4):
// `verb` says what was refused ("set the go-live plan of release R-1").
Result<void> CheckWindowNotEnded(std::string_view verb, const MaintenanceWindow& window,
                                 Instant at);

// A listed reviewer with role approver, never the owner, approves in
// in_review. The last approval moves it to approved and freezes the content digest.
Result<Release> ApproveRelease(const Release& release, const Actor& actor, Instant at,
                               std::string comment);

// A listed reviewer with role approver sends it back to draft with a comment.
Result<Release> RejectRelease(const Release& release, const Actor& actor, Instant at,
                              std::string comment);

// The test deployment of the approved content a tester reports on, as the
// store saw it: the latest deployment of each test host made in this review
// round (procedure §6.2.3).
struct TestRun {
  std::vector<std::string> deployments;    // ids, one per test host
  std::vector<std::string> not_succeeded;  // "host (step)" of each host not final and succeeded
};

// When this review round began (its submit), and when its latest test
// deployment was made; nullopt when it had none.
UnixSeconds ReviewRoundStart(const Release& release);
std::optional<UnixSeconds> LatestTestDeployment(const Release& release);

// A tester files a report: approved|testing -> testing. A passed report
// needs `run`, a test deployment of this review round that succeeded on
// every test host; the report records it.
Result<Release> FileTestReport(const Release& release, const Actor& actor, Instant at,
                               TestResult result, std::string text, const TestRun& run = {});

struct AcceptOptions {
  bool waive_test = false;  // category emergency only, with a reason
  std::string reason;
  std::string comment;
};

// An approver accepts: testing -> accepted with the latest report of this
// review round passed and reporting on the latest test deployment; or, waiving the test,
// approved|testing -> accepted for category emergency.
Result<Release> AcceptRelease(const Release& release, const Actor& actor, Instant at,
                              const AcceptOptions& options);

// An approver (never the owner) approves a go-live plan set after approval.
Result<Release> ApproveGoLive(const Release& release, const Actor& actor, Instant at,
                              std::string comment);

// accepted -> scheduled (release_manager or admin). Guards: a go-live plan,
// approved, whose window has not ended at `at`; the content still matches the
// frozen digest.
Result<Release> ScheduleRelease(const Release& release, const Actor& actor, Instant at);

// Any state before deploying -> cancelled, close code cancelled (owner, a
// release_manager or an admin). The reason is required and kept as the
// history note.
Result<Release> CancelRelease(const Release& release, const Actor& actor, Instant at,
                              std::string reason);

// Deploys an approved release to its test hosts: approved|testing -> testing
// (release_manager, admin or tester). Guards: targets chosen, at least one
// package, the content still matches the frozen digest. The history note
// names the hosts deployed to.
Result<Release> StartTestDeployment(const Release& release, const Actor& actor, Instant at,
                                    std::size_t host_count);

// Starts the production rollout: scheduled -> deploying (release_manager or
// admin). Guards: accepted, a go-live plan approved, `at` inside its window,
// the content still matches the frozen digest, at least one target host.
Result<Release> StartRollout(const Release& release, const Actor& actor, Instant at,
                             std::size_t host_count);

// How the hosts of a production rollout ended.
struct RolloutOutcome {
  std::size_t hosts = 0;
  std::size_t succeeded = 0;
  std::size_t failed = 0;  // failed, rolled back, rollback failed or timed out
  // A wave went over max_failures, or a person aborted before every target
  // was assigned: the rollout did not complete.
  bool halted = false;
  std::string reason;  // why it halted
};

// Ends a rollout once every assigned host is final: deploying -> deployed when
// it completed (every wave within its failure threshold), else
// deploying|paused -> failed (the engine acts as admin). kFailedPrecondition
// while some host is not final.
Result<Release> FinishRollout(const Release& release, const Actor& actor, Instant at,
                              const RolloutOutcome& outcome);

// deploying -> paused: by a person (release_manager, approver, admin) or by
// the engine when the window closes or a freeze begins; `reason` says which.
Result<Release> PauseRollout(const Release& release, const Actor& actor, Instant at,
                             std::string reason);

// failed|deployed -> deploying: after a wave went over its threshold
// without auto_rollback and a person decided not to roll back, the wave's
// failed hosts are deployed again (the rollout engine makes the
// deployments, deploy/rollout_engine.hpp RetryFailedHosts) and the wave is
// judged on their new results; after a rollout that ended deployed with
// failed hosts within the thresholds (a close would be "partial"), the
// failed hosts of every wave. `reason` says what was fixed; required.
Result<Release> RetryRollout(const Release& release, const Actor& actor, Instant at,
                             std::string reason);

// paused|failed -> deploying. From failed (a wave over its threshold without
// auto_rollback) a person decides to go on with the next wave.
Result<Release> ResumeRollout(const Release& release, const Actor& actor, Instant at,
                              std::string comment);

// A control point between waves confirmed (release_manager or approver, seed
// §4.5); the state stays deploying.
Result<Release> ConfirmGate(const Release& release, const Actor& actor, Instant at,
                            std::string comment);

// deploying|paused -> deploying: nothing more is assigned; the engine ends the
// rollout once the hosts in flight are final.
Result<Release> AbortRollout(const Release& release, const Actor& actor, Instant at,
                             std::string reason);

// deploying|paused|failed -> rolling_back: every host that moved is told to
// restore its previous release (auto_rollback, or a person after a failure).
Result<Release> StartRollback(const Release& release, const Actor& actor, Instant at,
                              std::string reason);

// rolling_back -> rolled_back once every moved host is final (the engine).
Result<Release> FinishRollback(const Release& release, const Actor& actor, Instant at,
                               std::string note);

// A new window for a paused rollout (release_manager, approver or admin):
// the engine goes on when it opens. The planned window stays what
// timeliness is measured against.
Result<Release> RescheduleWindow(const Release& release, const Actor& actor, Instant at,
                                 MaintenanceWindow window);

// An approver records that an emergency release may start or continue inside
// a freeze period (§6.1.1(8)); kFailedPrecondition for other categories.
Result<Release> OverrideFreeze(const Release& release, const Actor& actor, Instant at,
                               std::string reason);

// What closing needs to know beyond the release itself.
struct CloseFacts {
  std::size_t hosts_succeeded = 0;
  std::size_t hosts_failed = 0;  // any final result but succeeded (install deployments)
  bool cmdb_confirmed = false;   // built-in records committed, deliveries done or waived
  std::string cmdb_summary;      // "confirmed", "waived by ...", or what is still pending
};

// The close code the outcome says: deployed with no failed host -> success,
// deployed with some -> partial; failed -> partial when some host succeeded,
// else failed; rolled_back -> rolled_back.
Result<CloseCode> DefaultCloseCode(const Release& release, const CloseFacts& facts);

// deployed|failed|rolled_back -> closed (release_manager or admin). Guards:
// the CMDB update confirmed; `success` refused when any host failed; the
// code must not claim more than the outcome (success/partial need a host
// that succeeded). Records whether the rollout finished inside the planned
// window. A closed release is read-only: no operation accepts it.
Result<Release> CloseRelease(const Release& release, const Actor& actor, Instant at,
                             std::optional<CloseCode> code, std::string notes,
                             const CloseFacts& facts);

// Succeeds when the release's content still has the digest frozen at
// approval (kIntegrity otherwise, kFailedPrecondition when never approved).
Result<void> VerifyFrozenContent(const Release& release);

// The release as JSON: plan, state, decisions, reports, history (times in
// seconds and as RFC 3339 UTC). Used by the API and the JSON export.
nlohmann::json ReleaseToJson(const Release& release);

// The inverse of ReleaseToJson, for records the store wrote. kIntegrity when a
// field is missing or mistyped (a damaged record).
Result<Release> ReleaseFromJson(const nlohmann::json& value, const PlanParseOptions& options = {});

}  // namespace fabu::coordinator::release
