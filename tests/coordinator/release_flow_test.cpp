// A release walks the procedure (procedure §6.2.1-§6.2.5) on the real
// fabu-coordinator, driven by the real fabu CLI as each person would: the
// release manager writes and submits the plan, approvers review it, a tester
// files the report, an approver accepts, the release manager schedules.
#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/support/coordinator_process.hpp"
#include "tests/support/people_fixture.hpp"
#include "tests/support/temp_dir.hpp"

namespace fabu::testing {
namespace {

using nlohmann::json;

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

class ReleaseFlowTest : public fabu::testing::CoordinatorWithPeople {
 protected:
  void SetUp() override {
    CoordinatorWithPeople::SetUp();
    if (HasFatalFailure()) return;
    WriteFile(dir_ / "app/bin/c3m-video", "#!/bin/sh\necho playback\n");
    auto built = Fabu({"pack", "build", "--name", "c3m-video", "--version", "V1.3.0.12", "--from",
                       (dir_ / "app").string(), "--key", (dir_ / "publisher.key").string(), "--out",
                       (dir_ / "c3m.fabu").string()});
    ASSERT_EQ(built.exit_code, 0) << built.err;
    auto uploaded = As(rm_, {"package", "upload", (dir_ / "c3m.fabu").string()});
    ASSERT_EQ(uploaded.exit_code, 0) << uploaded.err;
    package_id_ = LastLine(uploaded.out);
    ASSERT_EQ(package_id_.size(), 64u);
  }

  json Plan(const std::string& category = "minor") const {
    return {{"title", "C3M-VIDEO playback download"},
            {"product", "c3m-video"},
            {"version", "V1.3.0.12"},
            {"category", category},
            {"change_refs", {"CHG-2026-0113"}},
            {"plan",
             {{"purpose", "Users download recorded video."},
              {"scope", "All c3m-video servers."},
              {"participants", "zhang.rm, wang.approver, li.approver, chen.tester"},
              {"communication", "Notice to support two days ahead."},
              {"work_plan", "Upload, test on env=test, production in waves."},
              {"follow_up", "Watch playback errors for a week."},
              {"rollback_plan", "Automatic rollback to V1.2.0.3."},
              {"known_issues", "None."},
              {"baseline", "c3m-video V1.2.0.3 on every host."}}},
            {"packages", {package_id_}},
            {"targets", {{"selector", "app=c3m-video"}}},
            {"reviewers", {"wang.approver", "li.approver"}},
            {"golive",
             {{"window",
               {{"start", "2036-12-01T01:00:00+08:00"}, {"end", "2036-12-01T05:00:00+08:00"}}},
              {"waves", {"1", "25%", "100%"}},
              {"max_failures", "10%"},
              {"between_waves", "5m"},
              {"host_timeout", "15m"},
              {"auto_rollback", true}}}};
  }

  std::string WritePlan(const json& plan, const std::string& name = "plan.json") {
    const auto path = dir_ / name;
    WriteFile(path, plan.dump(2));
    return path.string();
  }

  std::string Create(const json& plan) {
    auto r = As(rm_, {"release", "create", "--file", WritePlan(plan)});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return LastLine(r.out);
  }

  json Show(const std::string& id) {
    auto r = As(viewer_, {"release", "show", id, "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(r.out, nullptr, false);
  }

  // Walks a fresh release to `approved`.
  std::string Approved(const json& plan) {
    const std::string id = Create(plan);
    EXPECT_EQ(As(rm_, {"release", "submit", id}).exit_code, 0);
    EXPECT_EQ(As(wang_, {"release", "approve", id}).exit_code, 0);
    EXPECT_EQ(As(li_, {"release", "approve", id}).exit_code, 0);
    return id;
  }

  std::string package_id_;
};

TEST_F(ReleaseFlowTest, WalksFromDraftToScheduled) {
  // Create prints the id alone; the creator is the owner.
  auto created = As(rm_, {"release", "create", "--file", WritePlan(Plan())});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  EXPECT_EQ(created.out, "R-1\n");
  EXPECT_EQ(Show("R-1")["owner"], "zhang.rm");
  EXPECT_EQ(Show("R-1")["state"], "draft");

  auto r = As(rm_, {"release", "submit", "R-1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Show("R-1")["state"], "in_review");

  r = As(wang_, {"release", "approve", "R-1", "--comment", "scope is right"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Show("R-1")["state"], "in_review");  // li has not approved yet
  r = As(li_, {"release", "approve", "R-1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Show("R-1")["state"], "approved");

  WriteFile(dir_ / "REPORT.md", "# Test report\nAll 42 cases passed on env=test.\n");
  r = As(tester_, {"release", "test-report", "R-1", "--result", "passed", "--file",
                   (dir_ / "REPORT.md").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Show("R-1")["state"], "testing");

  r = As(wang_, {"release", "accept", "R-1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Show("R-1")["state"], "accepted");

  r = As(rm_, {"release", "schedule", "R-1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json shown = Show("R-1");
  EXPECT_EQ(shown["state"], "scheduled");
  EXPECT_EQ(shown["history"].size(), 7u);

  // The plan document (发布方案) names its nine sections and every decision.
  auto md = As(viewer_, {"release", "export", "R-1", "--doc", "plan", "--format", "md"});
  ASSERT_EQ(md.exit_code, 0) << md.err;
  for (const char* part : {"CHG-2026-0113", "rollback", "wang.approver", "scope is right",
                           "li.approver", package_id_.c_str()}) {
    EXPECT_TRUE(Contains(md.out, part)) << part << " missing from:\n" << md.out;
  }
  auto html = As(viewer_, {"release", "export", "R-1", "--format", "html"});
  ASSERT_EQ(html.exit_code, 0) << html.err;
  EXPECT_TRUE(Contains(html.out, "<html")) << html.out.substr(0, 200);
  auto exported = As(viewer_, {"release", "export", "R-1", "--format", "json"});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  EXPECT_FALSE(json::parse(exported.out, nullptr, false).is_discarded());

  // Every step is in the audit trail, and the chain is intact.
  auto audit = As(admin_, {"audit", "list", "--release", "R-1", "--json"});
  ASSERT_EQ(audit.exit_code, 0) << audit.err;
  for (const char* action : {"release.create", "release.submit", "release.approve",
                             "release.test-report", "release.accept", "release.schedule"}) {
    EXPECT_TRUE(Contains(audit.out, action)) << action;
  }
  auto verify = As(admin_, {"audit", "verify"});
  EXPECT_EQ(verify.exit_code, 0) << verify.err;

  // A restart keeps everything.
  ASSERT_EQ(daemon_->Stop(), 0) << daemon_->log();
  Start();
  EXPECT_EQ(Show("R-1")["state"], "scheduled");
  EXPECT_EQ(As(admin_, {"audit", "verify"}).exit_code, 0);
}

TEST_F(ReleaseFlowTest, SubmitNamesEveryMissingPart) {
  json plan = Plan();
  plan["plan"].erase("rollback_plan");
  plan["plan"].erase("baseline");
  plan["change_refs"] = json::array();
  const std::string id = Create(plan);
  auto r = As(rm_, {"release", "submit", id});
  EXPECT_NE(r.exit_code, 0);
  for (const char* missing : {"rollback_plan", "baseline", "change"}) {
    EXPECT_TRUE(Contains(r.err, missing)) << missing << " not named in: " << r.err;
  }
  EXPECT_EQ(Show(id)["state"], "draft");
}

TEST_F(ReleaseFlowTest, GuardsRefuseWithTheRuleAndTheRoleNeeded) {
  const std::string id = Create(Plan());
  // Approving a draft: the state is named.
  auto r = As(wang_, {"release", "approve", id});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "draft")) << r.err;
  ASSERT_EQ(As(rm_, {"release", "submit", id}).exit_code, 0);
  // The owner is no approver: the role needed is named.
  r = As(rm_, {"release", "approve", id});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "approver")) << r.err;
  // An approver who is not a listed reviewer.
  r = As(liu_, {"release", "approve", id});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "reviewer")) << r.err;
  // A viewer cannot submit or approve.
  r = As(viewer_, {"release", "submit", id});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "release_manager")) << r.err;
  // Rejection needs a comment and returns the release to draft.
  r = As(wang_, {"release", "reject", id});
  EXPECT_NE(r.exit_code, 0);
  r = As(wang_, {"release", "reject", id, "--comment", "rollback plan too thin"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Show(id)["state"], "draft");
  EXPECT_EQ(Show(id)["rejections"][0]["comment"], "rollback plan too thin");
  // Accept without a passed test report.
  const std::string approved = Approved(Plan());
  r = As(wang_, {"release", "accept", approved});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "test")) << r.err;
  // A tester cannot accept; an approver cannot file the test report.
  r = As(tester_, {"release", "accept", approved});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "approver")) << r.err;
  WriteFile(dir_ / "REPORT.md", "failed: playback stalls\n");
  r = As(wang_, {"release", "test-report", approved, "--result", "failed", "--file",
                 (dir_ / "REPORT.md").string()});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "tester")) << r.err;
  // A failed report does not let it be accepted.
  ASSERT_EQ(As(tester_, {"release", "test-report", approved, "--result", "failed", "--file",
                         (dir_ / "REPORT.md").string()})
                .exit_code,
            0);
  r = As(wang_, {"release", "accept", approved});
  EXPECT_NE(r.exit_code, 0);
  // Scheduling before acceptance names the state.
  r = As(rm_, {"release", "schedule", approved});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "testing")) << r.err;
}

TEST_F(ReleaseFlowTest, AChangeAfterApprovalReturnsTheReleaseToDraft) {
  const std::string id = Approved(Plan());
  EXPECT_EQ(Show(id)["state"], "approved");
  json changed = Plan();
  changed["plan"]["scope"] = "Only the Guangzhou site.";
  auto r = As(rm_, {"release", "update", id, "--file", WritePlan(changed, "changed.json")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json shown = Show(id);
  EXPECT_EQ(shown["state"], "draft");
  EXPECT_TRUE(shown["approvals"].empty());
}

TEST_F(ReleaseFlowTest, AGoLivePlanSetAfterApprovalNeedsItsOwnApproval) {
  const std::string id = Approved(Plan());
  WriteFile(dir_ / "REPORT.md", "ok\n");
  ASSERT_EQ(As(tester_, {"release", "test-report", id, "--result", "passed", "--file",
                         (dir_ / "REPORT.md").string()})
                .exit_code,
            0);
  ASSERT_EQ(As(wang_, {"release", "accept", id}).exit_code, 0);
  json golive = Plan()["golive"];
  golive["waves"] = {"10%", "100%"};
  WriteFile(dir_ / "golive.json", golive.dump());
  auto r = As(rm_, {"release", "schedule", id, "--file", (dir_ / "golive.json").string()});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "approve-golive")) << r.err;
  r = As(wang_, {"release", "approve-golive", id, "--comment", "smaller first wave is fine"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = As(rm_, {"release", "schedule", id});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Show(id)["state"], "scheduled");
}

TEST_F(ReleaseFlowTest, EmergencyMayWaiveTheTestWithAReasonAndIsFlagged) {
  const std::string id = Approved(Plan("emergency"));
  auto r = As(wang_, {"release", "accept", id, "--waive-test"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "reason")) << r.err;
  r = As(wang_, {"release", "accept", id, "--waive-test", "--reason", "CVE fix, outage risk"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json shown = Show(id);
  EXPECT_EQ(shown["state"], "accepted");
  EXPECT_EQ(shown["test_waived_ever"], true);
  auto text = As(viewer_, {"release", "show", id});
  EXPECT_TRUE(Contains(text.out, "TEST WAIVED")) << text.out;

  // Not for a minor release.
  const std::string minor = Approved(Plan());
  r = As(wang_, {"release", "accept", minor, "--waive-test", "--reason", "hurry"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "emergency")) << r.err;
}

TEST_F(ReleaseFlowTest, TwoApproversAtTheSameInstantLoseNothing) {
  for (int round = 0; round < 3; ++round) {
    const std::string id = Create(Plan());
    ASSERT_EQ(As(rm_, {"release", "submit", id}).exit_code, 0);
    CommandResult a, b;
    std::thread first([&] { a = As(wang_, {"release", "approve", id, "--comment", "w"}); });
    std::thread second([&] { b = As(li_, {"release", "approve", id, "--comment", "l"}); });
    first.join();
    second.join();
    EXPECT_EQ(a.exit_code, 0) << a.err;
    EXPECT_EQ(b.exit_code, 0) << b.err;
    json shown = Show(id);
    EXPECT_EQ(shown["state"], "approved");
    EXPECT_EQ(shown["approvals"].size(), 2u);
  }
  EXPECT_EQ(As(admin_, {"audit", "verify"}).exit_code, 0);
}

TEST_F(ReleaseFlowTest, BadPlansAreRefusedNamingTheField) {
  json plan = Plan();
  plan["colour"] = "blue";
  auto r = As(rm_, {"release", "create", "--file", WritePlan(plan)});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "colour")) << r.err;
  EXPECT_EQ(r.out, "");

  plan = Plan();
  plan["version"] = "V1.3";
  r = As(rm_, {"release", "create", "--file", WritePlan(plan)});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "four parts")) << r.err;

  plan = Plan();
  plan["packages"] = {std::string(64, 'f')};
  r = As(rm_, {"release", "create", "--file", WritePlan(plan)});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "package upload")) << r.err;

  plan = Plan();
  plan["category"] = "whenever";
  r = As(rm_, {"release", "create", "--file", WritePlan(plan)});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "category")) << r.err;

  // YAML is accepted too.
  WriteFile(dir_ / "plan.yaml",
            "title: YAML plan\nproduct: c3m-video\nversion: V1.3.0.12\n"
            "category: patch\n");
  r = As(rm_, {"release", "create", "--file", (dir_ / "plan.yaml").string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;

  auto list = As(viewer_, {"release", "list", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(json::parse(list.out).size(), 1u) << "refused plans must leave nothing";
}

TEST_F(ReleaseFlowTest, ListFiltersByStateAndChange) {
  const std::string a = Create(Plan());
  json other = Plan();
  other["change_refs"] = {"CHG-2026-0200"};
  const std::string b = Create(other);
  ASSERT_EQ(As(rm_, {"release", "submit", b}).exit_code, 0);
  auto by_state = As(viewer_, {"release", "list", "--state", "in_review", "--json"});
  ASSERT_EQ(by_state.exit_code, 0) << by_state.err;
  json items = json::parse(by_state.out);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0]["id"], b);
  auto by_change = As(viewer_, {"release", "list", "--change", "CHG-2026-0113", "--json"});
  items = json::parse(by_change.out);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0]["id"], a);
  auto bad = As(viewer_, {"release", "list", "--state", "nowhere"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_TRUE(Contains(bad.err, "nowhere")) << bad.err;
}

TEST_F(ReleaseFlowTest, CancelBeforeDeployment) {
  const std::string id = Create(Plan());
  auto r = As(rm_, {"release", "cancel", id, "--reason", "superseded by V1.3.0.13"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json shown = Show(id);
  EXPECT_EQ(shown["state"], "cancelled");
  EXPECT_EQ(shown["close_code"], "cancelled");
  r = As(rm_, {"release", "submit", id});
  EXPECT_NE(r.exit_code, 0);
}

}  // namespace
}  // namespace fabu::testing
