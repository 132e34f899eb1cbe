// A release walks the procedure (procedure §6.2.1-§6.2.5) on the real
// fabu-coordinator, driven by the real fabu CLI as each person would: the
// release manager writes and submits the plan, approvers review it, a tester
// files the report, an approver accepts, the release manager schedules.
#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/support/agent_events.hpp"
#include "tests/support/agent_http.hpp"
#include "tests/support/coordinator_process.hpp"
#include "tests/support/people_fixture.hpp"
#include "tests/support/plan_template_fill.hpp"
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
    qa_ = EnrollHost("qa-1", "env=test,app=c3m-video");
    ASSERT_FALSE(qa_.empty());
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
  std::string qa_;  // the credential of test host qa-1
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

  PassTestDeployment("R-1", {qa_});
  ASSERT_FALSE(HasFatalFailure());
  WriteFile(dir_ / "REPORT.md", "# Test report\nAll 42 cases passed on env=test.\n");
  r = As(tester_, {"release", "test-report", "R-1", "--result", "passed", "--file",
                   (dir_ / "REPORT.md").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Show("R-1")["state"], "testing");
  EXPECT_EQ(Show("R-1")["test_reports"][0]["deployments"].size(), 1u);

  r = As(wang_, {"release", "accept", "R-1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Show("R-1")["state"], "accepted");

  r = As(rm_, {"release", "schedule", "R-1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json shown = Show("R-1");
  EXPECT_EQ(shown["state"], "scheduled");
  EXPECT_EQ(shown["history"].size(), 8u);

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

// What `fabu release template` prints, its placeholders filled in, is a plan
// the coordinator creates and lets be submitted: in each language, normal and
// emergency (docs/plan.md).
TEST_F(ReleaseFlowTest, TheTemplateFilledInIsCreatedAndSubmitted) {
  const std::vector<std::vector<std::string>> variants = {
      {}, {"--lang", "zh-CN"}, {"--emergency"}, {"--emergency", "--lang", "zh-CN"}};
  for (std::size_t i = 0; i < variants.size(); ++i) {
    std::vector<std::string> args = {"release", "template"};
    args.insert(args.end(), variants[i].begin(), variants[i].end());
    SCOPED_TRACE(::testing::PrintToString(args));
    auto printed = Fabu(args);
    ASSERT_EQ(printed.exit_code, 0) << printed.err;
    // Unfilled, it is refused with the field named.
    const std::string raw = (dir_ / ("raw-" + std::to_string(i) + ".yaml")).string();
    WriteFile(raw, printed.out);
    auto refused = As(rm_, {"release", "create", "--file", raw});
    EXPECT_NE(refused.exit_code, 0);
    EXPECT_TRUE(Contains(refused.err, "product")) << refused.err;

    auto filled = FillTemplatePlaceholders(printed.out, TemplateValues(package_id_));
    EXPECT_TRUE(filled.unknown_keys.empty()) << ::testing::PrintToString(filled.unknown_keys);
    const std::string path = (dir_ / ("plan-" + std::to_string(i) + ".yaml")).string();
    WriteFile(path, filled.text);
    auto created = As(rm_, {"release", "create", "--file", path});
    ASSERT_EQ(created.exit_code, 0) << created.err << "\n" << filled.text;
    const std::string id = LastLine(created.out);
    auto submitted = As(rm_, {"release", "submit", id});
    ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
    json shown = Show(id);
    EXPECT_EQ(shown["state"], "in_review");
    EXPECT_EQ(shown["plan"]["packages"][0], package_id_);
    EXPECT_EQ(shown["plan"]["category"], i < 2 ? "minor" : "emergency");
  }
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
  PassTestDeployment(id, {qa_});
  ASSERT_FALSE(HasFatalFailure());
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

// RFC 3339 UTC of now + `offset`.
std::string UtcIn(std::chrono::seconds offset) {
  const std::time_t t =
      std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() + offset);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

TEST_F(ReleaseFlowTest, SubmitRefusesAPackageThatIsNotThePlansProductAndVersion) {
  // A plan declaring V1.4.0.1 that ships the V1.3.0.12 package.
  json plan = Plan();
  plan["version"] = "V1.4.0.1";
  const std::string id = Create(plan);
  auto r = As(rm_, {"release", "submit", id});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "packages[0]: package " + package_id_.substr(0, 12) +
                                  " carries c3m-video V1.3.0.12, but the plan releases c3m-video "
                                  "V1.4.0.1"))
      << r.err;
  EXPECT_EQ(Show(id)["state"], "draft");

  // Each package is checked: the second one is another product.
  WriteFile(dir_ / "web/index.html", "<p>hi</p>\n");
  const std::string web = BuildAndUpload("c3m-web", "V1.3.0.12", dir_ / "web");
  plan = Plan();
  plan["packages"] = {package_id_, web};
  const std::string two = Create(plan);
  r = As(rm_, {"release", "submit", two});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "packages[1]: package " + web.substr(0, 12) +
                                  " carries c3m-web V1.3.0.12, but the plan releases c3m-video "
                                  "V1.3.0.12"))
      << r.err;
  EXPECT_FALSE(Contains(r.err, "packages[0]")) << r.err;

  // The package of the plan's version passes.
  EXPECT_EQ(As(rm_, {"release", "submit", Create(Plan())}).exit_code, 0);
}

TEST_F(ReleaseFlowTest, AcceptanceNeedsATestDeploymentThatSucceededOnEveryTestHost) {
  const std::string id = Approved(Plan());
  WriteFile(dir_ / "REPORT.md", "# Test report\nall green\n");
  const std::vector<std::string> report = {
      "release", "test-report", id, "--result", "passed", "--file", (dir_ / "REPORT.md").string()};
  // No `release test`: a passed report is refused, and so is acceptance.
  auto r = As(tester_, report);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "cannot file a passed test report for release " + id +
                                  ": its approved content was never deployed to the test hosts; "
                                  "run `fabu release test " +
                                  id + "` first"))
      << r.err;
  r = As(wang_, {"release", "accept", id});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(Show(id)["state"], "approved");

  // Deployed, but qa-1 has not finished: still refused, naming the host and its step.
  ASSERT_EQ(As(rm_, {"release", "test", id}).exit_code, 0);
  r = As(tester_, report);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "has not succeeded on every test host (qa-1 (assigned))")) << r.err;
  // The host's install succeeds: the report is filed, names the deployment, and is accepted.
  PassTestDeployment(id, {qa_});
  ASSERT_FALSE(HasFatalFailure());
  r = As(tester_, report);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json shown = Show(id);
  ASSERT_EQ(shown["test_reports"].size(), 1u);
  const json deployments = shown["test_reports"][0]["deployments"];
  ASSERT_EQ(deployments.size(), 1u) << shown["test_reports"];
  auto hosts = As(viewer_, {"release", "hosts", id, "--json"});
  ASSERT_EQ(hosts.exit_code, 0) << hosts.err;
  const json host = json::parse(hosts.out)["hosts"].back();
  EXPECT_EQ(host["deployment"], deployments[0]) << hosts.out;
  EXPECT_EQ(host["result"], "succeeded");
  auto exported = As(viewer_, {"release", "export", id, "--doc", "test-report", "--format", "md"});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  EXPECT_TRUE(Contains(exported.out, deployments[0].get<std::string>())) << exported.out;
  r = As(wang_, {"release", "accept", id});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Show(id)["state"], "accepted");
}

TEST_F(ReleaseFlowTest, AReportMustCoverTheLatestTestDeployment) {
  const std::string id = Approved(Plan());
  PassTestDeployment(id, {qa_});
  ASSERT_FALSE(HasFatalFailure());
  WriteFile(dir_ / "REPORT.md", "all green\n");
  ASSERT_EQ(As(tester_, {"release", "test-report", id, "--result", "passed", "--file",
                         (dir_ / "REPORT.md").string()})
                .exit_code,
            0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // a later second
  PassTestDeployment(id, {qa_});                                 // deployed again after the report
  ASSERT_FALSE(HasFatalFailure());
  auto r = As(wang_, {"release", "accept", id});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "it was deployed to the test hosts again at")) << r.err;
  EXPECT_TRUE(Contains(r.err, "a tester must report on the new one")) << r.err;
}

TEST_F(ReleaseFlowTest, AGoLiveWindowThatEndedIsRefusedWhereItIsSet) {
  json plan = Plan();
  plan["golive"]["window"] = {{"start", "2020-01-01T01:00:00Z"}, {"end", "2020-01-01T05:00:00Z"}};
  auto r = As(rm_, {"release", "create", "--file", WritePlan(plan)});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "its go-live window ended at 2020-01-01T05:00:00Z (now 20")) << r.err;
  EXPECT_TRUE(Contains(r.err, "set a window that has not ended")) << r.err;

  const std::string id = Create(Plan());
  r = As(rm_, {"release", "update", id, "--file", WritePlan(plan, "late.json")});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "cannot update release " + id +
                                  ": its go-live window ended at 2020-01-01T05:00:00Z (now "))
      << r.err;

  // Set on an accepted release (schedule --file), and approved too late.
  const std::string accepted = Approved(Plan());
  PassTestDeployment(accepted, {qa_});
  ASSERT_FALSE(HasFatalFailure());
  WriteFile(dir_ / "REPORT.md", "ok\n");
  ASSERT_EQ(As(tester_, {"release", "test-report", accepted, "--result", "passed", "--file",
                         (dir_ / "REPORT.md").string()})
                .exit_code,
            0);
  ASSERT_EQ(As(wang_, {"release", "accept", accepted}).exit_code, 0);
  WriteFile(dir_ / "ended.json", plan["golive"].dump());
  r = As(rm_, {"release", "schedule", accepted, "--file", (dir_ / "ended.json").string()});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "cannot set the go-live plan of release " + accepted +
                                  ": its go-live window ended at 2020-01-01T05:00:00Z"))
      << r.err;
  // A window that ends a few seconds from now: set while it is open, then
  // approved once it has ended. On a slow machine (sanitizers, load) the
  // set may come too late for a short window: then a longer one is tried.
  json soon = Plan()["golive"];
  std::chrono::system_clock::time_point ends;
  for (const int seconds : {3, 15, 60}) {
    ends = std::chrono::system_clock::now() + std::chrono::seconds(seconds);
    soon["window"] = {{"start", UtcIn(std::chrono::seconds(-60))},
                      {"end", UtcIn(std::chrono::seconds(seconds))}};
    WriteFile(dir_ / "soon.json", soon.dump());
    r = As(rm_, {"release", "schedule", accepted, "--file", (dir_ / "soon.json").string()});
    if (!Contains(r.err, "its go-live window ended")) break;
  }
  EXPECT_NE(r.exit_code, 0);  // set, but it needs approve-golive
  EXPECT_TRUE(Contains(r.err, "approve-golive")) << r.err;
  std::this_thread::sleep_until(ends + std::chrono::seconds(1));
  r = As(wang_, {"release", "approve-golive", accepted});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "cannot approve the go-live plan of release " + accepted +
                                  ": its go-live window ended at " +
                                  soon["window"]["end"].get<std::string>() + " (now "))
      << r.err;
}

TEST_F(ReleaseFlowTest, VerbsThatEndOrReverseNeedAReasonShownInTheRecords) {
  const std::string id = Create(Plan());
  // Missing: fabu refuses before asking the coordinator.
  auto r = As(rm_, {"release", "cancel", id});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "--reason")) << r.err;
  // Blank: the coordinator refuses, for every such verb, whatever the state.
  const std::string why = " needs a reason: say why (\"reason\" in the API, --reason in fabu)";
  r = As(rm_, {"release", "cancel", id, "--reason", "  "});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "cancel" + why)) << r.err;
  for (const char* verb : {"pause", "abort", "rollback"}) {
    r = As(rm_, {"release", verb, id, "--reason", " "});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_TRUE(Contains(r.err, verb + why)) << r.err;
  }
  r = As(wang_, {"release", "override-freeze", id, "--reason", ""});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "override-freeze" + why)) << r.err;
  r = As(wang_, {"cmdb", "waive", id, "--reason", " "});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "reason: say why the outside CMDB will not get these results"))
      << r.err;
  EXPECT_EQ(Show(id)["state"], "draft");

  // Given: recorded in the audit trail and shown in the release report.
  r = As(rm_, {"release", "cancel", id, "--reason", "superseded by V1.3.0.13"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto audit = As(viewer_, {"audit", "list", "--release", id, "--json"});
  ASSERT_EQ(audit.exit_code, 0) << audit.err;
  EXPECT_TRUE(Contains(audit.out, "superseded by V1.3.0.13")) << audit.out;
  auto report = As(viewer_, {"release", "export", id, "--doc", "release-report", "--format", "md"});
  ASSERT_EQ(report.exit_code, 0) << report.err;
  EXPECT_TRUE(Contains(report.out, "superseded by V1.3.0.13")) << report.out;
}

TEST_F(ReleaseFlowTest, AnEmailSubscriptionNeedsAnSmtpServer) {
  // This coordinator's config.json has no "smtp": the notices could never be sent.
  auto r = As(rm_, {"notify", "add", "--events", "scheduled", "--email", "ops@example.com"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err,
                       "email: this coordinator has no SMTP server to send e-mail through; set "
                       "\"smtp\" (at least smtp.url and smtp.from) in config.json and restart "
                       "it, or subscribe a webhook"))
      << r.err;
  auto list = As(viewer_, {"notify", "list", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_TRUE(json::parse(list.out)["subscriptions"].empty()) << list.out;
}

}  // namespace
}  // namespace fabu::testing

namespace fabu::testing {
namespace {

// A long poll of a release's status (the web console's live view): it
// answers when a host reports a step, not at its deadline, with a new
// revision; without a change it answers at its deadline with the same one.
TEST_F(ReleaseFlowTest, AStatusLongPollAnswersWhenAHostReportsAStep) {
  const std::string id = Approved(Plan());
  ASSERT_EQ(As(rm_, {"release", "test", id}).exit_code, 0);
  fabu::testing::AgentHttpClient person(daemon_->url(), daemon_->ca());
  const std::string path = "/api/v1/releases/" + id + "/status";
  auto first = person.Request("GET", path, viewer_);
  ASSERT_EQ(first.status, 200) << first.body;
  const auto revision = first.Json()["revision"].get<std::uint64_t>();

  const auto quiet_start = std::chrono::steady_clock::now();
  auto quiet =
      person.Request("GET", path + "?wait=1&revision=" + std::to_string(revision), viewer_);
  ASSERT_EQ(quiet.status, 200) << quiet.body;
  EXPECT_EQ(quiet.Json()["revision"], revision);
  EXPECT_GE(std::chrono::steady_clock::now() - quiet_start, std::chrono::milliseconds(900));

  auto poll = std::async(std::launch::async, [&] {
    fabu::testing::AgentHttpClient watcher(daemon_->url(), daemon_->ca());
    const auto start = std::chrono::steady_clock::now();
    auto reply =
        watcher.Request("GET", path + "?wait=25&revision=" + std::to_string(revision), viewer_);
    return std::make_pair(reply, std::chrono::steady_clock::now() - start);
  });
  // Time for the poll to be waiting; were it late, it would answer at once,
  // which this test also accepts.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto [got, assignment] = AgentHttp("GET", "/api/v1/agent/assignment?wait=5", qa_, "");
  ASSERT_EQ(got, 200) << assignment;
  const json job = json::parse(assignment)["assignment"];
  ASSERT_TRUE(job.is_object()) << assignment;
  auto [posted, ack] =
      AgentHttp("POST", "/api/v1/agent/events", qa_, fabu::testing::SucceededEvents(job).dump());
  ASSERT_EQ(posted, 200) << ack;

  ASSERT_EQ(poll.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  auto [reply, took] = poll.get();
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_GT(reply.Json()["revision"].get<std::uint64_t>(), revision) << reply.body;
  EXPECT_LT(took, std::chrono::seconds(20)) << "answered at its deadline, not at the change";
  EXPECT_EQ(person.Request("GET", path + "?wait=31", viewer_).status, 400);
}

}  // namespace
}  // namespace fabu::testing
