// The workflow operations that deploy a release: the test deployment, the
// start of the production rollout and its end.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "coordinator/release/workflow.hpp"
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

const Actor kEngine{"fabu-coordinator", Role::kSystem};

Release Must(Result<Release> result) {
  EXPECT_TRUE(result.has_value()) << (result ? "" : result.error().message());
  return result.value_or(Release{});
}

std::string Refusal(const Result<Release>& result) {
  if (result) return "allowed";
  return fmt::format("{}: {}", ErrorCodeName(result.error().code()), result.error().message());
}

Release Approved() {
  Release r = Must(CreateRelease("R-12", kOwner, kT0, FullPlan("minor")));
  r = Must(SubmitRelease(r, kOwner, kT0 + 10, std::nullopt));
  r = Must(ApproveRelease(r, kWang, kT0 + 20, "ok"));
  return Must(ApproveRelease(r, kLi, kT0 + 30, "fine"));
}
Release Scheduled() {
  Release r = Must(FileTestReport(testing::TestDeployed(Approved(), kT0 + 40), kTester, kT0 + 40,
                                  TestResult::kPassed, "green", testing::kTestRunSucceeded));
  r = Must(AcceptRelease(r, kWang, kT0 + 50, {}));
  return Must(ScheduleRelease(r, kOwner, kT0 + 60));
}
UnixSeconds WindowStart(const Release& r) { return r.plan.golive->window.start.seconds; }
UnixSeconds WindowEnd(const Release& r) { return r.plan.golive->window.end.seconds; }

RolloutOutcome Outcome(std::size_t hosts, std::size_t succeeded, std::size_t failed,
                       bool halted = false) {
  RolloutOutcome outcome;
  outcome.hosts = hosts;
  outcome.succeeded = succeeded;
  outcome.failed = failed;
  outcome.halted = halted;
  return outcome;
}

CloseFacts Facts(std::size_t succeeded, std::size_t failed, bool cmdb_confirmed = true) {
  CloseFacts facts;
  facts.hosts_succeeded = succeeded;
  facts.hosts_failed = failed;
  facts.cmdb_confirmed = cmdb_confirmed;
  facts.cmdb_summary = cmdb_confirmed ? "confirmed" : "2 delivery(ies) pending";
  return facts;
}

Release Deploying() {
  const Release scheduled = Scheduled();
  return Must(StartRollout(scheduled, kOwner, WindowStart(scheduled), 3));
}

TEST(TestDeploymentTest, MovesAnApprovedReleaseToTesting) {
  Release r = Must(StartTestDeployment(Approved(), kOwner, kT0 + 35, 2));
  EXPECT_EQ(r.state, ReleaseState::kTesting);
  EXPECT_EQ(r.history.back().action, Action::kTestDeploy);
  EXPECT_EQ(r.history.back().note, "deploying to 2 test host(s)");
  // A second test deployment keeps it in testing; a tester may start one.
  r = Must(StartTestDeployment(r, kTester, kT0 + 36, 1));
  EXPECT_EQ(r.state, ReleaseState::kTesting);
}

TEST(TestDeploymentTest, NeedsTestHostsAndTheRightStateAndRole) {
  EXPECT_EQ(Refusal(StartTestDeployment(Approved(), kOwner, kT0 + 35, 0))
                .rfind("failed_precondition: cannot test-deploy release R-12: no enrolled host", 0),
            0u);
  EXPECT_TRUE(Refusal(StartTestDeployment(Approved(), kOwner, kT0 + 35, 0)).find("env=test") !=
              std::string::npos);
  EXPECT_EQ(
      Refusal(StartTestDeployment(Approved(), kViewer, kT0 + 35, 1)).rfind("permission_denied", 0),
      0u);
  Release draft = Must(CreateRelease("R-13", kOwner, kT0, FullPlan("minor")));
  EXPECT_EQ(Refusal(StartTestDeployment(draft, kOwner, kT0 + 35, 1)).rfind("conflict", 0), 0u);
}

TEST(RolloutTest, StartsInsideTheWindowOnly) {
  const Release scheduled = Scheduled();
  EXPECT_TRUE(Refusal(StartRollout(scheduled, kOwner, WindowStart(scheduled) - 1, 3))
                  .find("window opens") != std::string::npos);
  EXPECT_TRUE(
      Refusal(StartRollout(scheduled, kOwner, WindowEnd(scheduled), 3)).find("window ended") !=
      std::string::npos);
  Release r = Must(StartRollout(scheduled, kOwner, WindowStart(scheduled), 3));
  EXPECT_EQ(r.state, ReleaseState::kDeploying);
  EXPECT_EQ(r.history.back().action, Action::kStartRollout);
}

TEST(RolloutTest, NeedsProductionHostsAScheduleAndARole) {
  const Release scheduled = Scheduled();
  EXPECT_TRUE(
      Refusal(StartRollout(scheduled, kOwner, WindowStart(scheduled), 0)).find("env=production") !=
      std::string::npos);
  EXPECT_EQ(Refusal(StartRollout(scheduled, kTester, WindowStart(scheduled), 1))
                .rfind("permission_denied", 0),
            0u);
  EXPECT_EQ(
      Refusal(StartRollout(Approved(), kOwner, WindowStart(scheduled), 1)).rfind("conflict", 0),
      0u);
}

TEST(RolloutTest, EndsDeployedWhenEveryHostSucceeded) {
  const Release scheduled = Scheduled();
  Release r = Must(StartRollout(scheduled, kOwner, WindowStart(scheduled), 3));
  r = Must(FinishRollout(r, kEngine, WindowStart(scheduled) + 60, Outcome(3, 3, 0)));
  EXPECT_EQ(r.state, ReleaseState::kDeployed);
  EXPECT_EQ(r.history.back().action, Action::kFinishRollout);
  EXPECT_EQ(r.history.back().note, "3 of 3 host(s) succeeded, 0 failed");
}

TEST(RolloutTest, EndsDeployedWhenFailuresStayedWithinTheThresholds) {
  const Release scheduled = Scheduled();
  Release r = Must(StartRollout(scheduled, kOwner, WindowStart(scheduled), 3));
  r = Must(FinishRollout(r, kEngine, WindowStart(scheduled) + 60, Outcome(3, 2, 1)));
  EXPECT_EQ(r.state, ReleaseState::kDeployed);
  EXPECT_EQ(r.rollout_finished_at, WindowStart(scheduled) + 60);
}

TEST(RolloutTest, EndsFailedWhenHalted) {
  const Release scheduled = Scheduled();
  Release r = Must(StartRollout(scheduled, kOwner, WindowStart(scheduled), 3));
  RolloutOutcome outcome = Outcome(2, 1, 1, /*halted=*/true);
  outcome.reason = "wave 1 of 2: 1 of 2 host(s) failed";
  r = Must(FinishRollout(r, kEngine, WindowStart(scheduled) + 60, outcome));
  EXPECT_EQ(r.state, ReleaseState::kFailed);
  EXPECT_EQ(r.history.back().action, Action::kFailRollout);
  EXPECT_EQ(r.history.back().note,
            "1 of 2 host(s) succeeded, 1 failed; wave 1 of 2: 1 of 2 host(s) failed");
}

TEST(RolloutSteeringTest, PauseNeedsAReasonAndResumeGoesBackToDeploying) {
  Release r = Deploying();
  EXPECT_EQ(Refusal(PauseRollout(r, kOwner, kT0 + 100, " ")).rfind("invalid_argument", 0), 0u);
  EXPECT_EQ(Refusal(PauseRollout(r, kTester, kT0 + 100, "x")).rfind("permission_denied", 0), 0u);
  r = Must(PauseRollout(r, kWang, kT0 + 100, "customer asked to wait"));
  EXPECT_EQ(r.state, ReleaseState::kPaused);
  EXPECT_EQ(r.history.back().note, "customer asked to wait");
  r = Must(ResumeRollout(r, kOwner, kT0 + 110, "go"));
  EXPECT_EQ(r.state, ReleaseState::kDeploying);
}

TEST(RolloutSteeringTest, AGateIsConfirmedOnlyWhenThePlanHasGates) {
  Release r = Deploying();
  // The test plan sets between_waves to a duration.
  EXPECT_TRUE(Refusal(ConfirmGate(r, kWang, kT0 + 100, "")).find("no control points") !=
              std::string::npos);
  r.plan.golive->gate_between_waves = true;
  r = Must(ConfirmGate(r, kWang, kT0 + 100, "checked the dashboards"));
  EXPECT_EQ(r.state, ReleaseState::kDeploying);
  EXPECT_EQ(r.history.back().action, Action::kGate);
  EXPECT_EQ(r.history.back().actor, kWang.name);
}

TEST(RolloutSteeringTest, RollbackFromFailedThenTheEngineFinishesIt) {
  Release r = Deploying();
  r = Must(FinishRollout(r, kEngine, kT0 + 100, Outcome(1, 0, 1, true)));
  EXPECT_EQ(Refusal(StartRollback(r, kOwner, kT0 + 110, "")).rfind("invalid_argument", 0), 0u);
  r = Must(StartRollback(r, kOwner, kT0 + 110, "health check red"));
  EXPECT_EQ(r.state, ReleaseState::kRollingBack);
  EXPECT_EQ(Refusal(FinishRollback(r, kOwner, kT0 + 120, "")).rfind("permission_denied", 0), 0u);
  r = Must(FinishRollback(r, kEngine, kT0 + 120, "1 host(s) restored"));
  EXPECT_EQ(r.state, ReleaseState::kRolledBack);
  EXPECT_EQ(r.rollout_finished_at, kT0 + 120);
}

TEST(RolloutSteeringTest, AbortKeepsDeployingAndRescheduleNeedsAPausedRollout) {
  Release r = Deploying();
  r = Must(AbortRollout(r, kOwner, kT0 + 100, "wrong build"));
  EXPECT_EQ(r.state, ReleaseState::kDeploying);
  const MaintenanceWindow next{*ParseRfc3339("2030-01-01T01:00:00+08:00"),
                               *ParseRfc3339("2030-01-01T03:00:00+08:00")};
  EXPECT_EQ(Refusal(RescheduleWindow(r, kOwner, kT0 + 100, next)).rfind("conflict", 0), 0u);
  r = Must(PauseRollout(r, kEngine, kT0 + 100, "window closed"));
  const MaintenanceWindow backwards{next.end, next.start};
  EXPECT_EQ(Refusal(RescheduleWindow(r, kOwner, kT0 + 100, backwards)).rfind("invalid_argument", 0),
            0u);
  r = Must(RescheduleWindow(r, kOwner, kT0 + 100, next));
  EXPECT_EQ(r.state, ReleaseState::kPaused);
  EXPECT_EQ(r.ActiveWindow(), next);
  // Timeliness is still measured against the planned window.
  EXPECT_NE(r.plan.golive->window, next);
}

TEST(RolloutSteeringTest, OnlyAnApproverOverridesAFreezeAndOnlyForAnEmergency) {
  Release r = Deploying();
  EXPECT_TRUE(Refusal(OverrideFreeze(r, kWang, kT0 + 100, "outage fix")).find("emergency") !=
              std::string::npos);
  r.plan.category = "emergency";
  EXPECT_EQ(Refusal(OverrideFreeze(r, kOwner, kT0 + 100, "x")).rfind("permission_denied", 0), 0u);
  EXPECT_EQ(Refusal(OverrideFreeze(r, kWang, kT0 + 100, "")).rfind("invalid_argument", 0), 0u);
  r = Must(OverrideFreeze(r, kWang, kT0 + 100, "outage fix"));
  ASSERT_TRUE(r.freeze_override);
  EXPECT_EQ(r.freeze_override->by, kWang.name);
  EXPECT_EQ(r.state, ReleaseState::kDeploying);
}

TEST(RolloutTest, OnlyTheCoordinatorEndsARolloutNoPersonEvenAnAdmin) {
  const Actor admin{"root.admin", Role::kAdmin};
  EXPECT_EQ(Refusal(FinishRollout(Deploying(), admin, kT0 + 100, Outcome(3, 3, 0))).substr(0, 18),
            "permission_denied:")
      << Refusal(FinishRollout(Deploying(), admin, kT0 + 100, Outcome(3, 3, 0)));
  const Release r = Must(FinishRollout(Deploying(), kEngine, kT0 + 100, Outcome(3, 3, 0)));
  EXPECT_EQ(r.history.back().role, Role::kSystem);
  EXPECT_EQ(r.history.back().actor, "fabu-coordinator");
}

TEST(CloseTest, TheDefaultCodeFollowsTheOutcome) {
  Release r = Must(FinishRollout(Deploying(), kEngine, kT0 + 100, Outcome(3, 3, 0)));
  EXPECT_EQ(DefaultCloseCode(r, Facts(3, 0)).value(), CloseCode::kSuccess);
  EXPECT_EQ(DefaultCloseCode(r, Facts(2, 1)).value(), CloseCode::kPartial);
  Release failed = Must(FinishRollout(Deploying(), kEngine, kT0 + 100, Outcome(2, 1, 1, true)));
  EXPECT_EQ(DefaultCloseCode(failed, Facts(1, 1)).value(), CloseCode::kPartial);
  EXPECT_EQ(DefaultCloseCode(failed, Facts(0, 2)).value(), CloseCode::kFailed);
  Release rolled = Must(StartRollback(failed, kOwner, kT0 + 110, "red"));
  rolled = Must(FinishRollback(rolled, kEngine, kT0 + 120, ""));
  EXPECT_EQ(DefaultCloseCode(rolled, Facts(1, 1)).value(), CloseCode::kRolledBack);
}

TEST(CloseTest, RefusesSuccessWithAFailedHostAndWaitsForTheCmdb) {
  Release r = Must(FinishRollout(Deploying(), kEngine, kT0 + 100, Outcome(3, 2, 1)));
  EXPECT_TRUE(Refusal(CloseRelease(r, kOwner, kT0 + 200, CloseCode::kSuccess, "", Facts(2, 1)))
                  .find("cannot close release R-12 as success: 1 host(s) failed") !=
              std::string::npos);
  EXPECT_TRUE(Refusal(CloseRelease(r, kOwner, kT0 + 200, std::nullopt, "", Facts(2, 1, false)))
                  .find("the CMDB update is not confirmed") != std::string::npos);
  r = Must(CloseRelease(r, kOwner, kT0 + 200, std::nullopt, "one host left on V1", Facts(2, 1)));
  EXPECT_EQ(r.state, ReleaseState::kClosed);
  EXPECT_EQ(r.close_code, CloseCode::kPartial);
  ASSERT_TRUE(r.closure);
  EXPECT_EQ(r.closure->notes, "one host left on V1");
  EXPECT_EQ(r.closure->cmdb, "confirmed");
  // kT0 + 100 is long before the planned window ends.
  EXPECT_TRUE(r.closure->finished_in_window);
  // Closed is read-only.
  EXPECT_EQ(Refusal(PauseRollout(r, kOwner, kT0 + 300, "x")).rfind("conflict", 0), 0u);
  EXPECT_EQ(Refusal(CloseRelease(r, kOwner, kT0 + 300, std::nullopt, "", Facts(2, 1)))
                .rfind("conflict", 0),
            0u);
}

TEST(CloseTest, RecordsALateFinishAndSurvivesTheRoundTrip) {
  const Release scheduled = Scheduled();
  Release r = Must(StartRollout(scheduled, kOwner, WindowStart(scheduled), 1));
  r = Must(FinishRollout(r, kEngine, WindowEnd(scheduled) + 1, Outcome(1, 1, 0)));
  r = Must(CloseRelease(r, kOwner, WindowEnd(scheduled) + 5, std::nullopt, "", Facts(1, 0)));
  EXPECT_EQ(r.close_code, CloseCode::kSuccess);
  EXPECT_FALSE(r.closure->finished_in_window);
  auto back = ReleaseFromJson(ReleaseToJson(r));
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(*back, r);
}

TEST(RolloutTest, DoesNotEndWhileAHostIsNotFinal) {
  const Release scheduled = Scheduled();
  Release r = Must(StartRollout(scheduled, kOwner, WindowStart(scheduled), 3));
  EXPECT_TRUE(Refusal(FinishRollout(r, kEngine, WindowStart(scheduled) + 60, Outcome(3, 1, 1)))
                  .find("1 of 3 host(s) are not final") != std::string::npos);
  // Only the engine (role system) ends a rollout, and only a deploying one.
  EXPECT_EQ(Refusal(FinishRollout(r, kOwner, WindowStart(scheduled) + 60, Outcome(3, 3, 0)))
                .rfind("permission_denied", 0),
            0u);
  EXPECT_EQ(Refusal(FinishRollout(scheduled, kEngine, WindowStart(scheduled), Outcome(3, 3, 0)))
                .rfind("conflict", 0),
            0u);
}

TEST(RolloutTest, SurvivesTheRecordRoundTrip) {
  const Release scheduled = Scheduled();
  Release r = Must(StartRollout(scheduled, kOwner, WindowStart(scheduled), 3));
  auto back = ReleaseFromJson(ReleaseToJson(r));
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(*back, r);
}

}  // namespace
}  // namespace fabu::coordinator::release
