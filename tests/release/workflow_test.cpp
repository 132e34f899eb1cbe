#include "coordinator/release/workflow.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "tests/release/test_plans.hpp"

namespace fabu::coordinator::release {
namespace {

using testing::FullPlan;
using testing::kAdmin;
using testing::kLi;
using testing::kOwner;
using testing::kT0;
using testing::kTester;
using testing::kViewer;
using testing::kWang;

Release Must(Result<Release> result) {
  EXPECT_TRUE(result.has_value()) << (result ? "" : result.error().message());
  return result.value_or(Release{});
}

// The refusal of an operation: "<code>: <message>".
std::string Refusal(const Result<Release>& result) {
  if (result) return "allowed";
  return fmt::format("{}: {}", ErrorCodeName(result.error().code()), result.error().message());
}

Release Draft(std::string_view category = "minor") {
  return Must(CreateRelease("R-12", kOwner, kT0, FullPlan(category)));
}
Release InReview(std::string_view category = "minor") {
  return Must(SubmitRelease(Draft(category), kOwner, kT0 + 10, std::nullopt));
}
Release Approved(std::string_view category = "minor") {
  Release r = Must(ApproveRelease(InReview(category), kWang, kT0 + 20, "ok"));
  return Must(ApproveRelease(r, kLi, kT0 + 30, "fine"));
}
Release Testing(TestResult result = TestResult::kPassed) {
  return Must(FileTestReport(testing::TestDeployed(Approved(), kT0 + 35), kTester, kT0 + 40, result,
                             "# report\nall green", testing::kTestRunSucceeded));
}
Release Accepted() { return Must(AcceptRelease(Testing(), kWang, kT0 + 50, {})); }

TEST(ReleaseWorkflowTest, WalksFromDraftToScheduled) {
  Release r = Draft();
  EXPECT_EQ(r.state, ReleaseState::kDraft);
  EXPECT_EQ(r.owner, "zhang.rm");
  r = Must(SubmitRelease(r, kOwner, kT0 + 10, protocol::Version::Parse("V1.2.0.3").value()));
  EXPECT_EQ(r.state, ReleaseState::kInReview);
  r = Must(ApproveRelease(r, kWang, kT0 + 20, "looks right"));
  EXPECT_EQ(r.state, ReleaseState::kInReview);  // li has not approved yet
  EXPECT_TRUE(r.frozen_content_digest.empty());
  r = Must(ApproveRelease(r, kLi, kT0 + 30, ""));
  EXPECT_EQ(r.state, ReleaseState::kApproved);
  EXPECT_EQ(r.frozen_content_digest, *ContentDigest(r.plan));
  EXPECT_TRUE(r.golive_approved);  // the go-live plan was part of the approved plan
  r = Must(FileTestReport(testing::TestDeployed(r, kT0 + 40), kTester, kT0 + 40,
                          TestResult::kPassed, "all green", testing::kTestRunSucceeded));
  EXPECT_EQ(r.state, ReleaseState::kTesting);
  r = Must(AcceptRelease(r, kWang, kT0 + 50, {}));
  EXPECT_EQ(r.state, ReleaseState::kAccepted);
  r = Must(ScheduleRelease(r, kOwner, kT0 + 60));
  EXPECT_EQ(r.state, ReleaseState::kScheduled);
  EXPECT_TRUE(VerifyFrozenContent(r));

  // Every step is in the history with actor, role, time, from and to.
  ASSERT_EQ(r.history.size(), 8u);
  EXPECT_EQ(r.history[0].action, Action::kCreate);
  EXPECT_EQ(r.history[2].actor, "wang.approver");
  EXPECT_EQ(r.history[2].role, Role::kApprover);
  EXPECT_EQ(r.history[2].at, kT0 + 20);
  EXPECT_EQ(r.history[2].from, ReleaseState::kInReview);
  EXPECT_EQ(r.history[2].to, ReleaseState::kInReview);
  EXPECT_EQ(r.history[3].to, ReleaseState::kApproved);
  EXPECT_EQ(r.history[4].action, Action::kTestDeploy);
  EXPECT_EQ(r.history[5].note, "test passed (test deployment of 2026-11-20T00:00:40Z: D-1)");
  EXPECT_EQ(r.history[7].from, ReleaseState::kAccepted);
  EXPECT_EQ(r.history[7].to, ReleaseState::kScheduled);
}

TEST(ReleaseWorkflowTest, SubmitRefusesAPackageThatIsNotThePlansVersion) {
  const std::vector<PackageIdentity> wrong = {{testing::kPackageId, "c3m-video", "V1.3.0.1"},
                                              {std::string(64, 'b'), "c3m-web", "V1.3.0.12"}};
  EXPECT_EQ(Refusal(SubmitRelease(Draft(), kOwner, kT0 + 10, std::nullopt, wrong)),
            "failed_precondition: cannot submit release R-12: packages[0]: package aaaaaaaaaaaa "
            "carries c3m-video V1.3.0.1, but the plan releases c3m-video V1.3.0.12; packages[1]: "
            "package bbbbbbbbbbbb carries c3m-web V1.3.0.12, but the plan releases c3m-video "
            "V1.3.0.12");
  const std::vector<PackageIdentity> right = {{testing::kPackageId, "c3m-video", "V1.3.0.12"}};
  EXPECT_EQ(Must(SubmitRelease(Draft(), kOwner, kT0 + 10, std::nullopt, right)).state,
            ReleaseState::kInReview);
}

TEST(ReleaseWorkflowTest, APassedReportNeedsASucceededTestDeployment) {
  EXPECT_EQ(Refusal(FileTestReport(Approved(), kTester, kT0 + 40, TestResult::kPassed, "ok")),
            "failed_precondition: cannot file a passed test report for release R-12: its "
            "approved content was never deployed to the test hosts; run `fabu release test "
            "R-12` first (procedure §6.2.3)");
  const Release deployed = testing::TestDeployed(Approved(), kT0 + 35);
  EXPECT_EQ(Refusal(FileTestReport(deployed, kTester, kT0 + 40, TestResult::kPassed, "ok",
                                   {{"D-1", "D-2"}, {"qa-2 (installing)"}})),
            "failed_precondition: cannot file a passed test report for release R-12: the test "
            "deployment of 2026-11-20T00:00:35Z has not succeeded on every test host (qa-2 "
            "(installing)); wait for it, deploy again, or file a failed report");
  // A failed report needs no deployment; it does not let the release be accepted.
  const Release failed =
      Must(FileTestReport(Approved(), kTester, kT0 + 40, TestResult::kFailed, "cannot install"));
  EXPECT_TRUE(failed.test_reports.back().deployments.empty());
  // The report names the deployment it covers.
  const Release passed = Must(
      FileTestReport(deployed, kTester, kT0 + 40, TestResult::kPassed, "ok", {{"D-1", "D-2"}, {}}));
  EXPECT_EQ(passed.test_reports.back().test_deployed_at, kT0 + 35);
  EXPECT_EQ(passed.test_reports.back().deployments, (std::vector<std::string>{"D-1", "D-2"}));
}

TEST(ReleaseWorkflowTest, AcceptNeedsTheReportToCoverTheLatestTestDeployment) {
  // A passed report stored before reports named their deployment.
  Release legacy = Testing();
  legacy.test_reports.back().deployments.clear();
  legacy.test_reports.back().test_deployed_at = 0;
  EXPECT_EQ(Refusal(AcceptRelease(legacy, kWang, kT0 + 50, {})),
            "failed_precondition: cannot accept release R-12: the passed test report (by "
            "chen.tester at 2026-11-20T00:00:40Z) names no test deployment of the approved "
            "content; run `fabu release test R-12`, then a tester reports on it (procedure "
            "§6.2.3)");
  // Deployed again after the report: the report no longer covers what ran last.
  const Release again = testing::TestDeployed(Testing(), kT0 + 45);
  EXPECT_EQ(Refusal(AcceptRelease(again, kWang, kT0 + 50, {})),
            "failed_precondition: cannot accept release R-12: it was deployed to the test hosts "
            "again at 2026-11-20T00:00:45Z, after the test deployment the latest report covers "
            "(2026-11-20T00:00:35Z); a tester must report on the new one");
}

TEST(ReleaseWorkflowTest, AGoLiveWindowThatEndedIsRefusedWhereItIsSet) {
  ReleasePlan plan = FullPlan();
  const UnixSeconds after_end = plan.golive->window.end.seconds + 60;
  EXPECT_EQ(Refusal(CreateRelease("R-12", kOwner, after_end, plan)),
            "failed_precondition: cannot create release R-12: its go-live window ended at "
            "2026-12-01T05:00:00+08:00 (now 2026-11-30T21:01:00Z); set a window that has not "
            "ended (procedure §6.2.4)");
  ReleasePlan changed = plan;
  changed.title = "new title";
  EXPECT_EQ(Refusal(UpdateRelease(Draft(), kOwner, after_end, changed)),
            "failed_precondition: cannot update release R-12: its go-live window ended at "
            "2026-12-01T05:00:00+08:00 (now 2026-11-30T21:01:00Z); set a window that has not "
            "ended (procedure §6.2.4)");
  EXPECT_EQ(Refusal(SetGoLive(Approved(), kOwner, after_end, *plan.golive)),
            "allowed");  // the same go-live plan: nothing is set
  GoLivePlan later = *plan.golive;
  later.waves.pop_back();
  EXPECT_EQ(Refusal(SetGoLive(Approved(), kOwner, after_end, later)),
            "failed_precondition: cannot set the go-live plan of release R-12: its go-live "
            "window ended at 2026-12-01T05:00:00+08:00 (now 2026-11-30T21:01:00Z); set a window "
            "that has not ended (procedure §6.2.4)");
  // Set in time but approved too late.
  Release set = Must(SetGoLive(Accepted(), kOwner, kT0 + 60, later));
  EXPECT_EQ(Refusal(ApproveGoLive(set, kWang, after_end, "")),
            "failed_precondition: cannot approve the go-live plan of release R-12: its go-live "
            "window ended at 2026-12-01T05:00:00+08:00 (now 2026-11-30T21:01:00Z); set a window "
            "that has not ended (procedure §6.2.4)");
  EXPECT_TRUE(ApproveGoLive(set, kWang, kT0 + 61, ""));
}

TEST(ReleaseWorkflowTest, VerbsThatEndOrReverseNeedAReason) {
  const std::string why = " needs a reason: say why (\"reason\" in the API, --reason in fabu)";
  EXPECT_EQ(Refusal(CancelRelease(Draft(), kOwner, kT0, "")), "invalid_argument: cancel" + why);
  EXPECT_EQ(Refusal(CancelRelease(Draft(), kOwner, kT0, " \t")), "invalid_argument: cancel" + why);
  // Refused for the missing reason before the state is looked at.
  EXPECT_EQ(Refusal(PauseRollout(Draft(), kOwner, kT0, "")), "invalid_argument: pause" + why);
  EXPECT_EQ(Refusal(AbortRollout(Draft(), kOwner, kT0, "")), "invalid_argument: abort" + why);
  EXPECT_EQ(Refusal(StartRollback(Draft(), kOwner, kT0, "")), "invalid_argument: rollback" + why);
  EXPECT_EQ(Refusal(OverrideFreeze(Draft(), kWang, kT0, " ")),
            "invalid_argument: override-freeze" + why);
  const Release cancelled = Must(CancelRelease(Draft(), kOwner, kT0, "superseded"));
  EXPECT_EQ(cancelled.history.back().note, "superseded");
}

TEST(ReleaseWorkflowTest, JsonRecordRoundTrips) {
  // Given a release that went through every kind of decision, reading back
  // its stored JSON gives the same release.
  Release r = Must(RejectRelease(InReview(), kWang, kT0 + 15, "scope unclear"));
  r = Must(SubmitRelease(r, kOwner, kT0 + 16, std::nullopt));
  r = Must(ApproveRelease(r, kWang, kT0 + 20, "ok"));
  r = Must(ApproveRelease(r, kLi, kT0 + 30, "fine"));
  r = Must(FileTestReport(testing::TestDeployed(r, kT0 + 40), kTester, kT0 + 40,
                          TestResult::kPassed, "green", testing::kTestRunSucceeded));
  r = Must(AcceptRelease(r, kWang, kT0 + 50, {}));
  auto back = ReleaseFromJson(ReleaseToJson(r));
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(*back, r);
  EXPECT_EQ(ReleaseFromJson(ReleaseToJson(Draft())).value(), Draft());
}

TEST(ReleaseWorkflowTest, DamagedJsonRecordIsAnIntegrityError) {
  nlohmann::json j = ReleaseToJson(Draft());
  j.erase("owner");
  auto back = ReleaseFromJson(j);
  ASSERT_FALSE(back);
  EXPECT_EQ(back.error().code(), ErrorCode::kIntegrity);
  EXPECT_NE(back.error().message().find("owner"), std::string::npos) << back.error().message();
}

TEST(ReleaseWorkflowTest, OperationsDoNotChangeTheirInput) {
  const Release draft = Draft();
  const Release copy = draft;
  (void)SubmitRelease(draft, kOwner, kT0, std::nullopt);
  EXPECT_EQ(draft, copy);
}

TEST(ReleaseWorkflowTest, CreateNeedsReleaseManagerOrAdmin) {
  EXPECT_EQ(Refusal(CreateRelease("R-1", kTester, kT0, FullPlan())),
            "permission_denied: create needs role release_manager or admin (you are tester)");
  EXPECT_EQ(Must(CreateRelease("R-1", kAdmin, kT0, FullPlan())).owner, "root");
}

TEST(ReleaseWorkflowTest, OwnerCannotApprove) {
  // Given an owner who also holds the approver role,
  Release r = InReview();
  const Actor owner_as_approver{"zhang.rm", Role::kApprover};
  // we should refuse their approval of their own release.
  EXPECT_EQ(Refusal(ApproveRelease(r, owner_as_approver, kT0, "")),
            "permission_denied: the owner of a release cannot approve it (§6.1.2)");
}

TEST(ReleaseWorkflowTest, ApproveNeedsRoleApprover) {
  EXPECT_EQ(Refusal(ApproveRelease(InReview(), kTester, kT0, "")),
            "permission_denied: approve needs role approver (you are tester)");
}

TEST(ReleaseWorkflowTest, ApproveInDraftSaysSubmitFirst) {
  EXPECT_EQ(Refusal(ApproveRelease(Draft(), kWang, kT0, "")),
            "conflict: cannot approve release R-12 in state draft: submit it first (approve "
            "applies in in_review)");
}

TEST(ReleaseWorkflowTest, OnlyListedReviewersApprove) {
  const Actor stranger{"sun.approver", Role::kApprover};
  EXPECT_EQ(Refusal(ApproveRelease(InReview(), stranger, kT0, "")),
            "permission_denied: sun.approver is not a listed reviewer of release R-12 and cannot "
            "approve it (reviewers: wang.approver, li.ops-head)");
}

TEST(ReleaseWorkflowTest, ApprovingTwiceIsRefused) {
  Release r = Must(ApproveRelease(InReview(), kWang, kT0, ""));
  EXPECT_EQ(Refusal(ApproveRelease(r, kWang, kT0, "")),
            "conflict: wang.approver has already approved release R-12 in this review");
}

TEST(ReleaseWorkflowTest, ApproveAfterApprovalSaysTheStepIsBehind) {
  EXPECT_EQ(Refusal(ApproveRelease(Approved(), kWang, kT0, "")),
            "conflict: cannot approve release R-12 in state approved: that step is already "
            "behind it (approve applies in in_review)");
}

TEST(ReleaseWorkflowTest, SubmitListsWhatIsMissing) {
  ReleasePlan plan = FullPlan();
  plan.Section(PlanSection::kRollbackPlan).clear();
  plan.packages.clear();
  Release r = Must(CreateRelease("R-12", kOwner, kT0, plan));
  const std::string refusal = Refusal(SubmitRelease(r, kOwner, kT0, std::nullopt));
  EXPECT_EQ(refusal.rfind("failed_precondition: cannot submit release R-12: not ready to submit: "
                          "plan.rollback_plan (发布失败情况下的退回方案",
                          0),
            0u)
      << refusal;
  EXPECT_NE(refusal.find("packages: at least one package is needed"), std::string::npos);
}

TEST(ReleaseWorkflowTest, SubmitRefusesTheOwnerAsReviewer) {
  ReleasePlan plan = FullPlan();
  plan.reviewers.push_back("zhang.rm");
  Release r = Must(CreateRelease("R-12", kOwner, kT0, plan));
  EXPECT_EQ(Refusal(SubmitRelease(r, kOwner, kT0, std::nullopt)),
            "failed_precondition: cannot submit release R-12: reviewers: the owner zhang.rm "
            "cannot review their own release (§6.1.2)");
}

TEST(ReleaseWorkflowTest, SubmitChecksTheVersionPolicy) {
  EXPECT_EQ(
      Refusal(SubmitRelease(Draft(), kOwner, kT0, protocol::Version::Parse("V1.3.0.12").value())),
      "failed_precondition: cannot submit release R-12: version: V1.3.0.12 must be greater "
      "than V1.3.0.12 (last released c3m-video version: V1.3.0.12)");
  EXPECT_NE(
      Refusal(SubmitRelease(Draft(), kOwner, kT0, protocol::Version::Parse("V0.9.0.0").value()))
          .find("when the major number rises"),
      std::string::npos);
}

TEST(ReleaseWorkflowTest, OnlyTheOwnerOrAnAdminSubmitsOrUpdates) {
  const Actor other{"qian.rm", Role::kReleaseManager};
  EXPECT_EQ(Refusal(SubmitRelease(Draft(), other, kT0, std::nullopt)),
            "permission_denied: only the owner of release R-12 (zhang.rm) or an admin can submit "
            "it");
  EXPECT_EQ(Refusal(UpdateRelease(Draft(), other, kT0, FullPlan("patch"))),
            "permission_denied: only the owner of release R-12 (zhang.rm) or an admin can update "
            "it");
  EXPECT_TRUE(SubmitRelease(Draft(), kAdmin, kT0, std::nullopt));
}

TEST(ReleaseWorkflowTest, RejectNeedsACommentAndReturnsToDraft) {
  Release r = Must(ApproveRelease(InReview(), kWang, kT0, ""));
  EXPECT_EQ(Refusal(RejectRelease(r, kLi, kT0, "  ")),
            "invalid_argument: reject needs a comment saying what must change (--comment)");
  r = Must(RejectRelease(r, kLi, kT0 + 5, "rollback plan is too thin"));
  EXPECT_EQ(r.state, ReleaseState::kDraft);
  EXPECT_TRUE(r.approvals.empty());
  ASSERT_EQ(r.rejections.size(), 1u);
  EXPECT_EQ(r.rejections[0].reviewer, "li.ops-head");
  EXPECT_EQ(r.rejections[0].comment, "rollback plan is too thin");
  EXPECT_EQ(r.rejections[0].at, kT0 + 5);
  // A new round starts from nothing: both reviewers must approve again.
  r = Must(SubmitRelease(r, kOwner, kT0 + 6, std::nullopt));
  r = Must(ApproveRelease(r, kLi, kT0 + 7, ""));
  EXPECT_EQ(r.state, ReleaseState::kInReview);
  EXPECT_EQ(r.rejections.size(), 1u);  // kept forever
}

TEST(ReleaseWorkflowTest, RejectNeedsAListedApprover) {
  EXPECT_EQ(Refusal(RejectRelease(InReview(), kTester, kT0, "no")),
            "permission_denied: reject needs role approver (you are tester)");
  EXPECT_EQ(Refusal(RejectRelease(Draft(), kWang, kT0, "no")),
            "conflict: cannot reject release R-12 in state draft: submit it first (reject applies "
            "in in_review)");
}

TEST(ReleaseWorkflowTest, EditAfterApprovalReturnsToDraft) {
  for (const Release& reviewed : {InReview(), Approved(), Testing(), Accepted()}) {
    ReleasePlan plan = reviewed.plan;
    plan.packages[0] = std::string(64, 'c');
    Release r = Must(UpdateRelease(reviewed, kOwner, kT0 + 100, plan));
    EXPECT_EQ(r.state, ReleaseState::kDraft) << ReleaseStateName(reviewed.state);
    EXPECT_TRUE(r.approvals.empty());
    EXPECT_TRUE(r.frozen_content_digest.empty());
    EXPECT_FALSE(r.acceptance);
    EXPECT_FALSE(r.golive_approved);
    EXPECT_NE(r.history.back().note.find("back to draft, approvals cleared"), std::string::npos);
  }
}

TEST(ReleaseWorkflowTest, EditOfAScheduledReleaseReturnsToDraft) {
  Release scheduled = Must(ScheduleRelease(Accepted(), kOwner, kT0 + 60));
  ReleasePlan plan = scheduled.plan;
  plan.change_refs.push_back("CHG-2026-0200");
  EXPECT_EQ(Must(UpdateRelease(scheduled, kOwner, kT0 + 70, plan)).state, ReleaseState::kDraft);
}

TEST(ReleaseWorkflowTest, TestingAfterReturnToDraftMustBeRedone) {
  // A passed report for the old content does not count for the new content.
  Release r = Testing();
  ReleasePlan plan = r.plan;
  plan.Section(PlanSection::kScope) = "wider";
  r = Must(UpdateRelease(r, kOwner, kT0 + 100, plan));
  r = Must(SubmitRelease(r, kOwner, kT0 + 101, std::nullopt));
  r = Must(ApproveRelease(r, kWang, kT0 + 102, ""));
  r = Must(ApproveRelease(r, kLi, kT0 + 103, ""));
  EXPECT_EQ(Refusal(AcceptRelease(r, kWang, kT0 + 104, {})),
            "failed_precondition: cannot accept release R-12: no test report has been filed for "
            "the approved content; a tester must file a passed one first");
}

TEST(ReleaseWorkflowTest, AnIdenticalUpdateChangesNothing) {
  Release approved = Approved();
  EXPECT_EQ(Must(UpdateRelease(approved, kOwner, kT0 + 100, approved.plan)), approved);
}

TEST(ReleaseWorkflowTest, UpdateIsRefusedOnceDeploying) {
  Release r = Must(ScheduleRelease(Accepted(), kOwner, kT0 + 60));
  r.state = ReleaseState::kDeploying;  // the rollout engine's move
  EXPECT_EQ(Refusal(UpdateRelease(r, kOwner, kT0, FullPlan())),
            "conflict: cannot update release R-12 in state deploying: it is deploying (update "
            "applies in draft, in_review, approved, testing, accepted or scheduled)");
}

TEST(ReleaseWorkflowTest, TestReportNeedsATesterAndApprovedContent) {
  EXPECT_EQ(Refusal(FileTestReport(Approved(), kWang, kT0, TestResult::kPassed, "x")),
            "permission_denied: test-report needs role tester (you are approver)");
  EXPECT_EQ(Refusal(FileTestReport(InReview(), kTester, kT0, TestResult::kPassed, "x")),
            "conflict: cannot test-report release R-12 in state in_review: it is in review: every "
            "listed reviewer must approve it first (test-report applies in approved or testing)");
  EXPECT_EQ(Refusal(FileTestReport(testing::TestDeployed(Approved(), kT0), kTester, kT0,
                                   TestResult::kPassed, "", testing::kTestRunSucceeded)),
            "invalid_argument: a test report needs its text (--file REPORT.md): what was tested "
            "and how");
}

TEST(ReleaseWorkflowTest, AcceptNeedsTheLatestReportPassed) {
  Release failed = Testing(TestResult::kFailed);
  EXPECT_EQ(Refusal(AcceptRelease(failed, kWang, kT0 + 60, {})),
            "failed_precondition: cannot accept release R-12: the latest test report (by "
            "chen.tester at 2026-11-20T00:00:40Z) failed; a tester must file a passed one first");
  Release fixed = Must(FileTestReport(testing::TestDeployed(failed, kT0 + 70), kTester, kT0 + 70,
                                      TestResult::kPassed, "retest", testing::kTestRunSucceeded));
  Release accepted = Must(AcceptRelease(fixed, kWang, kT0 + 80, {}));
  EXPECT_EQ(accepted.state, ReleaseState::kAccepted);
  ASSERT_TRUE(accepted.acceptance);
  EXPECT_FALSE(accepted.acceptance->test_waived);
  EXPECT_EQ(accepted.test_reports.size(), 2u);
  // And a passed report followed by a failed one is not enough.
  Release regressed = Must(FileTestReport(fixed, kTester, kT0 + 90, TestResult::kFailed, "oops"));
  EXPECT_FALSE(AcceptRelease(regressed, kWang, kT0 + 91, {}));
}

TEST(ReleaseWorkflowTest, AcceptNeedsAnApproverAndATestReport) {
  EXPECT_EQ(Refusal(AcceptRelease(Testing(), kTester, kT0, {})),
            "permission_denied: accept needs role approver (you are tester)");
  EXPECT_EQ(Refusal(AcceptRelease(Approved(), kWang, kT0, {})),
            "failed_precondition: cannot accept release R-12: no test report has been filed for "
            "the approved content; a tester must file a passed one first");
}

TEST(ReleaseWorkflowTest, EmergencyMayWaiveTestingWithAReason) {
  Release r = Approved("emergency");
  EXPECT_EQ(
      Refusal(AcceptRelease(r, kWang, kT0, {.waive_test = true, .reason = "", .comment = ""})),
      "invalid_argument: --waive-test needs --reason: why testing is skipped");
  r = Must(
      AcceptRelease(r, kWang, kT0 + 60,
                    {.waive_test = true, .reason = "cameras offline in Guangzhou", .comment = ""}));
  EXPECT_EQ(r.state, ReleaseState::kAccepted);
  ASSERT_TRUE(r.acceptance);
  EXPECT_TRUE(r.acceptance->test_waived);
  EXPECT_EQ(r.acceptance->waive_reason, "cameras offline in Guangzhou");
  EXPECT_TRUE(r.test_waived_ever);
  // Flagged forever: even after an edit sends it back to draft.
  ReleasePlan plan = r.plan;
  plan.title = "changed";
  r = Must(UpdateRelease(r, kOwner, kT0 + 70, plan));
  EXPECT_FALSE(r.acceptance);
  EXPECT_TRUE(r.test_waived_ever);
}

TEST(ReleaseWorkflowTest, OnlyEmergencyMayWaiveTesting) {
  EXPECT_EQ(Refusal(AcceptRelease(Approved("minor"), kWang, kT0,
                                  {.waive_test = true, .reason = "hurry", .comment = ""})),
            "failed_precondition: --waive-test is only for category emergency (release R-12 is "
            "minor): file a passed test report instead");
}

TEST(ReleaseWorkflowTest, ScheduleNeedsAGoLivePlan) {
  ReleasePlan plan = FullPlan();
  plan.golive.reset();
  Release r = Must(CreateRelease("R-12", kOwner, kT0, plan));
  r = Must(SubmitRelease(r, kOwner, kT0, std::nullopt));
  r = Must(ApproveRelease(r, kWang, kT0, ""));
  r = Must(ApproveRelease(r, kLi, kT0, ""));
  EXPECT_FALSE(r.golive_approved);
  r = Must(FileTestReport(testing::TestDeployed(r, kT0), kTester, kT0, TestResult::kPassed, "ok",
                          testing::kTestRunSucceeded));
  r = Must(AcceptRelease(r, kWang, kT0, {}));
  EXPECT_EQ(Refusal(ScheduleRelease(r, kOwner, kT0)),
            "failed_precondition: cannot schedule release R-12: it has no go-live plan; give one "
            "(schedule --file GOLIVE.json)");
}

TEST(ReleaseWorkflowTest, GoLiveSetAfterApprovalNeedsApproveGoLive) {
  ReleasePlan plan = FullPlan();
  GoLivePlan golive = *plan.golive;
  plan.golive.reset();
  Release r = Must(CreateRelease("R-12", kOwner, kT0, plan));
  r = Must(SubmitRelease(r, kOwner, kT0, std::nullopt));
  r = Must(ApproveRelease(r, kWang, kT0, ""));
  r = Must(ApproveRelease(r, kLi, kT0, ""));
  r = Must(FileTestReport(testing::TestDeployed(r, kT0), kTester, kT0, TestResult::kPassed, "ok",
                          testing::kTestRunSucceeded));
  r = Must(AcceptRelease(r, kWang, kT0, {}));
  const std::string frozen = r.frozen_content_digest;

  r = Must(SetGoLive(r, kOwner, kT0 + 1, golive));
  EXPECT_EQ(r.state, ReleaseState::kAccepted);  // the approved content did not change
  EXPECT_EQ(r.frozen_content_digest, frozen);
  EXPECT_FALSE(r.golive_approved);
  EXPECT_EQ(Refusal(ScheduleRelease(r, kOwner, kT0 + 2)),
            "failed_precondition: cannot schedule release R-12: its go-live plan was set after "
            "approval and needs an approver's approve-golive first (§6.2.5)");

  EXPECT_EQ(Refusal(ApproveGoLive(r, kTester, kT0, "")),
            "permission_denied: approve-golive needs role approver (you are tester)");
  EXPECT_EQ(Refusal(ApproveGoLive(r, Actor{"zhang.rm", Role::kApprover}, kT0, "")),
            "permission_denied: the owner of a release cannot approve-golive it (§6.1.2)");
  r = Must(ApproveGoLive(r, kLi, kT0 + 3, "window agreed with the customer"));
  EXPECT_TRUE(r.golive_approved);
  ASSERT_TRUE(r.golive_approval);
  EXPECT_EQ(r.golive_approval->by, "li.ops-head");
  EXPECT_EQ(Refusal(ApproveGoLive(r, kWang, kT0, "")),
            "conflict: the go-live plan of release R-12 is already approved");
  r = Must(ScheduleRelease(r, kOwner, kT0 + 4));
  EXPECT_EQ(r.state, ReleaseState::kScheduled);
}

TEST(ReleaseWorkflowTest, GoLiveApprovedWithThePlanNeedsNothingMore) {
  Release r = Accepted();
  EXPECT_TRUE(r.golive_approved);
  EXPECT_FALSE(r.golive_approval);
  EXPECT_EQ(Refusal(ApproveGoLive(r, kLi, kT0, "")),
            "conflict: the go-live plan of release R-12 is already approved");
  EXPECT_TRUE(ScheduleRelease(r, kOwner, kT0 + 60));
}

TEST(ReleaseWorkflowTest, ChangingTheGoLiveOfAScheduledReleaseNeedsItsApprovalAgain) {
  Release r = Must(ScheduleRelease(Accepted(), kOwner, kT0 + 60));
  GoLivePlan golive = *r.plan.golive;
  golive.auto_rollback = false;
  r = Must(SetGoLive(r, kOwner, kT0 + 61, golive));
  EXPECT_EQ(r.state, ReleaseState::kAccepted);
  EXPECT_FALSE(r.golive_approved);
  EXPECT_EQ(r.history.back().action, Action::kSetGoLive);
  // Putting back exactly what was approved restores the approval.
  golive.auto_rollback = true;
  r = Must(SetGoLive(r, kOwner, kT0 + 62, golive));
  EXPECT_TRUE(r.golive_approved);
}

TEST(ReleaseWorkflowTest, ChangingTheGoLiveInReviewReturnsToDraft) {
  Release r = InReview();
  GoLivePlan golive = *r.plan.golive;
  golive.host_timeout_seconds = 60;
  EXPECT_EQ(Must(SetGoLive(r, kOwner, kT0, golive)).state, ReleaseState::kDraft);
}

TEST(ReleaseWorkflowTest, ScheduleIsRefusedAfterTheWindowEnded) {
  const UnixSeconds after_window = ParseRfc3339("2026-12-01T06:00:00+08:00")->seconds;
  EXPECT_EQ(Refusal(ScheduleRelease(Accepted(), kOwner, after_window)),
            "failed_precondition: cannot schedule release R-12: its go-live window ended at "
            "2026-12-01T05:00:00+08:00; set a new window");
}

TEST(ReleaseWorkflowTest, ScheduleNeedsAcceptanceAndARole) {
  EXPECT_EQ(Refusal(ScheduleRelease(Testing(), kOwner, kT0)),
            "conflict: cannot schedule release R-12 in state testing: an approver must accept it "
            "first (schedule applies in accepted)");
  EXPECT_EQ(Refusal(ScheduleRelease(Accepted(), kViewer, kT0)),
            "permission_denied: schedule needs role release_manager or admin (you are viewer)");
}

TEST(ReleaseWorkflowTest, ScheduleDetectsContentChangedBehindTheWorkflow) {
  Release r = Accepted();
  r.plan.packages[0] = std::string(64, 'd');  // not through UpdateRelease
  const std::string refusal = Refusal(ScheduleRelease(r, kOwner, kT0 + 60));
  EXPECT_EQ(refusal.rfind("integrity: cannot schedule release R-12: content digest", 0), 0u)
      << refusal;
}

TEST(ReleaseWorkflowTest, CancelBeforeDeployingOnly) {
  for (const Release& r : {Draft(), InReview(), Approved(), Testing(), Accepted()}) {
    Release cancelled = Must(CancelRelease(r, kOwner, kT0 + 200, "customer postponed"));
    EXPECT_EQ(cancelled.state, ReleaseState::kCancelled);
    EXPECT_EQ(cancelled.close_code, CloseCode::kCancelled);
    EXPECT_EQ(cancelled.history.back().note, "customer postponed");
  }
  Release deploying = Must(ScheduleRelease(Accepted(), kOwner, kT0 + 60));
  deploying.state = ReleaseState::kDeploying;
  EXPECT_EQ(Refusal(CancelRelease(deploying, kOwner, kT0, "too late")),
            "conflict: cannot cancel release R-12 in state deploying: it is deploying (cancel "
            "applies in draft, in_review, approved, testing, accepted or scheduled)");
  EXPECT_EQ(Refusal(CancelRelease(Draft(), kTester, kT0, "")),
            "permission_denied: cancel needs role release_manager or admin (you are tester)");
  EXPECT_TRUE(CancelRelease(Draft(), kAdmin, kT0, "duplicate of R-11"));
}

TEST(TransitionTableTest, HasOneRuleForEveryAction) {
  for (int i = 0; i <= static_cast<int>(Action::kClose); ++i) {
    const auto action = static_cast<Action>(i);
    int rules = 0;
    for (const TransitionRule& rule : TransitionTable()) rules += rule.action == action ? 1 : 0;
    EXPECT_EQ(rules, 1) << ActionName(action);
  }
}

TEST(TransitionTableTest, CancelAppliesToEveryStateBeforeDeploying) {
  const TransitionRule& cancel = RuleFor(Action::kCancel);
  EXPECT_EQ(cancel.to, ReleaseState::kCancelled);
  EXPECT_EQ(cancel.from.size(), 6u);
  for (ReleaseState late :
       {ReleaseState::kDeploying, ReleaseState::kDeployed, ReleaseState::kClosed}) {
    EXPECT_EQ(std::count(cancel.from.begin(), cancel.from.end(), late), 0);
  }
}

TEST(TransitionTableTest, EveryStateIsReachable) {
  for (ReleaseState state : AllReleaseStates()) {
    bool reachable = false;
    for (const TransitionRule& rule : TransitionTable()) reachable = reachable || rule.to == state;
    EXPECT_TRUE(reachable) << ReleaseStateName(state);
  }
}

TEST(TransitionTableTest, PrintsAsMarkdown) {
  const std::string table = TransitionTableMarkdown();
  EXPECT_NE(table.find("| approve | in_review | approved | approver |"), std::string::npos)
      << table;
}

TEST(WorkflowNamesTest, RoundTrip) {
  for (ReleaseState state : AllReleaseStates()) {
    EXPECT_EQ(*ParseReleaseState(ReleaseStateName(state)), state);
  }
  EXPECT_EQ(*ParseRole("release_manager"), Role::kReleaseManager);
  EXPECT_EQ(*ParseCloseCode("rolled_back"), CloseCode::kRolledBack);
  EXPECT_EQ(*ParseTestResult("passed"), TestResult::kPassed);
  EXPECT_FALSE(ParseRole("root"));
  EXPECT_EQ(*ParseRole("system"), Role::kSystem);  // the engine, in histories
  EXPECT_FALSE(ParseReleaseState("done"));
}

}  // namespace
}  // namespace fabu::coordinator::release
