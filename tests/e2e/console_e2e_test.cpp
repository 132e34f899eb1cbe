// The web console (coordinator/console/, docs/console.md) in a real browser:
// the real coordinator and agents of the fleet, prepared with the fabu CLI,
// then used by headless Chromium through chromedriver as each person would
// (tests/e2e/console_e2e.py, one scenario per test). Screenshots of every
// page go to <build>/console-screenshots/.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/e2e/fleet.hpp"
#include "tests/support/coordinator_process.hpp"
#include "tests/support/run_command.hpp"
#include "tests/support/temp_dir.hpp"

namespace fabu::e2e {
namespace {

using namespace std::chrono_literals;
using fabu::testing::LastLine;
using fabu::testing::RunCommand;
using fabu::testing::WriteFile;

class ConsoleE2eTest : public Fleet {
 protected:
  void SetUp() override {
    for (const char* tool : {"/usr/bin/chromium", "/usr/bin/chromedriver"}) {
      ASSERT_TRUE(fs::exists(tool)) << tool
                                    << " is missing (Debian's chromium and chromium-driver; "
                                       "scripts/bootstrap installs them)";
    }
    ASSERT_NO_FATAL_FAILURE(Fleet::SetUp());
  }

  // A release of `package` created by zhang.rm and submitted, with one
  // reviewer (wang.approver): in review.
  std::string Submitted(const Package& package) {
    const json plan = {{"title", "C3M-VIDEO " + package.version + " console"},
                       {"product", kApp},
                       {"version", package.version},
                       {"category", "minor"},
                       {"change_refs", {"CHG-2026-1205"}},
                       {"plan",
                        {{"purpose", "Ship the console test release."},
                         {"scope", "All c3m-video servers."},
                         {"participants", "zhang.rm, wang.approver"},
                         {"communication", "Notice to support."},
                         {"work_plan", "One wave."},
                         {"follow_up", "Watch errors."},
                         {"rollback_plan", "Automatic rollback on a failed health check."},
                         {"known_issues", "None."},
                         {"baseline", "c3m-video on every host."}}},
                       {"packages", {package.id}},
                       {"targets", {{"selector", "app=c3m-video"}}},
                       {"reviewers", {"wang.approver"}}};
    const fs::path file = dir_ / "console-plan.json";
    WriteFile(file, plan.dump(2));
    auto created = As(rm_, {"release", "create", "--file", file.string()});
    EXPECT_EQ(created.exit_code, 0) << created.err;
    const std::string id = LastLine(created.out);
    auto submitted = As(rm_, {"release", "submit", id});
    EXPECT_EQ(submitted.exit_code, 0) << submitted.err;
    EXPECT_EQ(State(id), "in_review");
    return id;
  }

  // Runs one scenario of console_e2e.py against this fleet's coordinator;
  // its exit code (0: every check held), with its output in the failure message.
  int Browse(const std::string& scenario, const std::string& release) {
    const json users = {{"zhang.rm", rm_},
                        {"wang.approver", wang_},
                        {"li.approver", li_},
                        {"chen.tester", tester_},
                        {"zhao.viewer", viewer_}};
    auto run = RunCommand({"/usr/bin/python3", FABU_CONSOLE_SCRIPT, scenario}, {}, 300s,
                          {"FABU_CONSOLE_URL=" + Url(), "FABU_CONSOLE_USERS=" + users.dump(),
                           "FABU_CONSOLE_RELEASE=" + release,
                           "FABU_CONSOLE_SHOTS=" + std::string(FABU_CONSOLE_SHOTS)});
    output_ = run.out + run.err;
    return run.exit_code;
  }

  std::string output_;
};

bool HistoryHas(const json& release, const std::string& action, const std::string& actor,
                const std::string& note = "") {
  for (const json& h : release["history"]) {
    if (h.value("action", "") == action && h.value("actor", "") == actor &&
        h.value("note", "").find(note) != std::string::npos) {
      return true;
    }
  }
  return false;
}

// An approver signs in, sees the release in review with its plan, approves
// it with a comment; a request without the session's CSRF token is refused.
TEST_F(ConsoleE2eTest, AnApproverApprovesASubmittedReleaseWithAComment) {
  const Package v1 = BuildAndUpload(kV1);
  const std::string id = Submitted(v1);
  ASSERT_EQ(Browse("approve", id), 0) << output_;
  const json shown = Show(id);
  EXPECT_EQ(shown.value("state", ""), "approved");
  ASSERT_EQ(shown["approvals"].size(), 1u) << shown.dump(2);
  EXPECT_EQ(shown["approvals"][0].value("reviewer", ""), "wang.approver");
  EXPECT_EQ(shown["approvals"][0].value("comment", ""),
            "Plan reviewed: rollback tested on staging.");
  auto audit = As(viewer_, {"audit", "list", "--release", id, "--json"});
  ASSERT_EQ(audit.exit_code, 0) << audit.err;
  EXPECT_NE(audit.out.find("wang.approver"), std::string::npos) << audit.out;
  EXPECT_EQ(audit.out.find("forged"), std::string::npos) << "the forged approve left no trace";
}

// A release manager starts a release whose go-live plan has a control
// point, sees wave 1 finish live, confirms the gate, and sees web-3's
// failed health check (its reason and output) and the automatic rollback.
TEST_F(ConsoleE2eTest, AReleaseManagerFollowsARolloutLiveThroughAGateAndARollback) {
  ASSERT_NO_FATAL_FAILURE(AddAgents(3));
  const Package v1 = BuildAndUpload(kV1);
  const Package v2 = BuildAndUpload(kV2);
  ASSERT_NO_FATAL_FAILURE(Deploy(v1));
  golive_changes_ = {{"waves", {"1", "100%"}},
                     {"between_waves", "gate"},
                     {"max_failures", "0"},
                     {"auto_rollback", true}};
  WriteFile(agents_[2].apps() / "FAIL_HEALTH", std::string(kV2) + "\n");
  const std::string id = Scheduled(v2);
  ASSERT_EQ(Browse("rollout", id), 0) << output_ << "\n" << Status(id).dump(2);
  const json shown = Show(id);
  EXPECT_EQ(shown.value("state", ""), "rolled_back");
  EXPECT_TRUE(HistoryHas(shown, "start-rollout", "zhang.rm")) << shown["history"].dump(2);
  EXPECT_TRUE(HistoryHas(shown, "gate", "zhang.rm", "wave 1 healthy")) << shown["history"].dump(2);
  for (const auto& agent : agents_) {
    EXPECT_EQ(Current(agent), fs::path("releases") / kV1) << agent.name;
  }
}

// An approver reviewing a release sees its pre-flight (a host that does not
// trust the publisher key would fail, named with why; the other is ready)
// and overrides the round with a reason, recorded as theirs.
TEST_F(ConsoleE2eTest, AnApproverSeesThePreflightAndOverridesItWithAReason) {
  ASSERT_NO_FATAL_FAILURE(AddAgents(2, "env=production,app=c3m-video", /*start=*/false));
  ASSERT_NO_FATAL_FAILURE(EditConfig(agents_[1], {{"trusted_keys", json::array()}}));
  for (Agent& agent : agents_) ASSERT_NO_FATAL_FAILURE(StartAgent(agent));
  const Package v1 = BuildAndUpload(kV1);
  const std::string id = Submitted(v1);  // the submit asked a round
  ASSERT_EQ(Browse("preflight", id), 0) << output_;
  auto shown = As(viewer_, {"release", "preflight", id, "--show", "--json"});
  EXPECT_EQ(shown.exit_code, 0) << shown.out << shown.err;  // overridden: nothing blocks
  const json round = json::parse(shown.out, nullptr, false)["preflight"];
  ASSERT_TRUE(round.is_object()) << shown.out;
  EXPECT_EQ(round["override"].value("by", ""), "wang.approver") << round.dump(2);
  EXPECT_EQ(round["override"].value("reason", ""),
            "web-2 gets the key at the window; excluded if not");
}

// A viewer sees every page and no action; a forged POST from the viewer's
// session, with or without the CSRF token, is refused; signing out ends the
// session.
TEST_F(ConsoleE2eTest, AViewerSeesNoActionsCannotForgeOneAndSignsOut) {
  ASSERT_NO_FATAL_FAILURE(AddAgents(1));
  const Package v1 = BuildAndUpload(kV1);
  ASSERT_NO_FATAL_FAILURE(Deploy(v1));
  const Package v2 = BuildAndUpload(kV2);
  const std::string id = Submitted(v2);
  auto freeze = As(rm_, {"freeze", "add", "--from", UtcIn(72h), "--to", UtcIn(120h), "--reason",
                         "year-end change freeze"});
  ASSERT_EQ(freeze.exit_code, 0) << freeze.err;
  ASSERT_EQ(Browse("viewer", id), 0) << output_;
  const json shown = Show(id);
  EXPECT_EQ(shown.value("state", ""), "in_review");
  EXPECT_TRUE(shown["approvals"].empty()) << shown.dump(2);
}

// Chinese: switched on the page, in the procedure's terms, remembered for
// the person in another browser.
TEST_F(ConsoleE2eTest, APersonSwitchesToChineseAndKeepsIt) {
  const Package v1 = BuildAndUpload(kV1);
  const std::string id = Submitted(v1);
  ASSERT_EQ(Browse("zh-CN", id), 0) << output_;
}

}  // namespace
}  // namespace fabu::e2e
