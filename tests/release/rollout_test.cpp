// The workflow operations that deploy a release: the test deployment, the
// start of the production rollout and its end (issue 4 §5).
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

const Actor kEngine{"fabu-coordinator", Role::kAdmin};

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
  Release r = Must(FileTestReport(Approved(), kTester, kT0 + 40, TestResult::kPassed, "green"));
  r = Must(AcceptRelease(r, kWang, kT0 + 50, {}));
  return Must(ScheduleRelease(r, kOwner, kT0 + 60));
}
UnixSeconds WindowStart(const Release& r) { return r.plan.golive->window.start.seconds; }
UnixSeconds WindowEnd(const Release& r) { return r.plan.golive->window.end.seconds; }

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
  r = Must(FinishRollout(r, kEngine, WindowStart(scheduled) + 60, {3, 3, 0}));
  EXPECT_EQ(r.state, ReleaseState::kDeployed);
  EXPECT_EQ(r.history.back().action, Action::kFinishRollout);
  EXPECT_EQ(r.history.back().note, "3 of 3 host(s) succeeded, 0 failed");
}

TEST(RolloutTest, EndsFailedWhenAHostFailed) {
  const Release scheduled = Scheduled();
  Release r = Must(StartRollout(scheduled, kOwner, WindowStart(scheduled), 3));
  r = Must(FinishRollout(r, kEngine, WindowStart(scheduled) + 60, {3, 2, 1}));
  EXPECT_EQ(r.state, ReleaseState::kFailed);
  EXPECT_EQ(r.history.back().action, Action::kFailRollout);
}

TEST(RolloutTest, DoesNotEndWhileAHostIsNotFinal) {
  const Release scheduled = Scheduled();
  Release r = Must(StartRollout(scheduled, kOwner, WindowStart(scheduled), 3));
  EXPECT_TRUE(Refusal(FinishRollout(r, kEngine, WindowStart(scheduled) + 60, {3, 1, 1}))
                  .find("1 of 3 host(s) are not final") != std::string::npos);
  // Only the engine (admin) ends a rollout, and only a deploying one.
  EXPECT_EQ(Refusal(FinishRollout(r, kOwner, WindowStart(scheduled) + 60, {3, 3, 0}))
                .rfind("permission_denied", 0),
            0u);
  EXPECT_EQ(Refusal(FinishRollout(scheduled, kAdmin, WindowStart(scheduled), {3, 3, 0}))
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
