// The real `fabu-agent` killed at every journal step of an upgrade V1 -> V2,
// then restarted with `recover`: the host ends exactly on V1 or V2, that
// release's files match its manifest, no scratch is left, and the journal's
// final event agrees with the disk.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "agent/deploy/fault_injection.hpp"
#include "packaging/manifest.hpp"
#include "packaging/sha256.hpp"
#include "tests/agent/agent_fixture.hpp"
#include "tests/support/run_command.hpp"
#include "tests/support/temp_dir.hpp"

namespace fabu::agent::testing {
namespace {

namespace fs = std::filesystem;
using fabu::testing::CommandResult;
using fabu::testing::Fabu;
using fabu::testing::ReadFile;
using fabu::testing::RunCommand;
using fabu::testing::TempDir;
using fabu::testing::WriteFile;

constexpr char kApp[] = "c3m-video";
constexpr char kV1[] = "V1.0.0.0";
constexpr char kV2[] = "V1.1.0.0";

class AgentProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto r = Fabu({"keygen", "--out", (dir_ / "publisher").string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    v1_ = Build(kV1);
    v2_ = Build(kV2);
  }

  struct Package {
    std::string path;
    std::string sha256;
  };

  Package Build(const std::string& version) {
    const fs::path src = dir_ / ("src-" + version);
    WriteFile(src / "app/bin/server", "#!/bin/sh\necho serving " + version + "\n");
    fs::permissions(src / "app/bin/server", fs::perms(0755));
    WriteFile(src / "app/etc/app.conf", "version=" + version + "\n");
    fs::create_directories(src / "app/var/empty");
    for (const auto& [name, script] : AllRecordingHooks()) {
      WriteFile(src / "hooks" / name, script);
      fs::permissions(src / "hooks" / name, fs::perms(0755));
    }
    const std::string out = (dir_ / (std::string(kApp) + "-" + version + ".fabu")).string();
    auto r = Fabu({"pack", "build", "--name", kApp, "--version", version, "--from",
                   (src / "app").string(), "--hooks", (src / "hooks").string(), "--key",
                   (dir_ / "publisher.key").string(), "--out", out});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return {out, *packaging::Sha256::OfFile(out)};
  }

  CommandResult Agent(std::vector<std::string> args, std::vector<std::string> env = {}) {
    args.insert(args.begin(), AgentBinary());
    for (const std::string flag : {"--data", "--apps-root"}) {
      args.push_back(flag);
      args.push_back((dir_ / (flag == std::string("--data") ? "data" : "apps")).string());
    }
    return RunCommand(args, {}, std::chrono::seconds(120), env);
  }

  CommandResult Install(const Package& p, const std::string& id, std::vector<std::string> env = {},
                        std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"install", "--trust", (dir_ / "publisher.pub").string()};
    for (const std::string& arg :
         {std::string("--package"), p.path, std::string("--sha256"), p.sha256,
          std::string("--deployment"), id, std::string("--health-attempts"), std::string("1")}) {
      args.push_back(arg);
    }
    args.insert(args.end(), extra.begin(), extra.end());
    return Agent(std::move(args), std::move(env));
  }

  CommandResult Recover(std::vector<std::string> env = {}) {
    return Agent({"recover", "--health-attempts", "1"}, std::move(env));
  }

  nlohmann::json Journal() {
    return nlohmann::json::parse(ReadFile(dir_ / "data" / "journal.json"));
  }

  fs::path AppDir() { return dir_ / "apps" / kApp; }

  // Asserts the host is exactly on `version` and everything agrees with it.
  void ExpectHostOn(const std::string& version, const std::string& final_step,
                    const std::string& deployment = "d2") {
    ASSERT_EQ(fs::read_symlink(AppDir() / "current"), fs::path("releases") / version);
    const auto manifest =
        packaging::Manifest::Parse(ReadFile(AppDir() / "manifests" / (version + ".json")));
    ASSERT_TRUE(manifest) << manifest.error().message();
    const auto problems = CompareWithManifest(AppDir() / "releases" / version, *manifest);
    EXPECT_TRUE(problems.empty()) << ::testing::PrintToString(problems);
    EXPECT_EQ(ReadFile(AppDir() / "current/etc/app.conf"), "version=" + version + "\n");
    EXPECT_TRUE(EntriesStartingWith(AppDir(), ".").empty())
        << ::testing::PrintToString(EntriesStartingWith(AppDir(), "."));
    EXPECT_TRUE(EntriesStartingWith(AppDir(), "current.tmp-").empty());

    const auto journal = Journal();
    EXPECT_FALSE(journal.contains("in_flight")) << journal.dump(2);
    EXPECT_EQ(journal["last"]["deployment"], deployment);
    EXPECT_EQ(journal["last"]["outcome"], final_step);
    EXPECT_EQ(journal["last"]["current_version"], version);
    // The deployment's events: numbered 1..n without a gap, the last one the
    // outcome.
    std::vector<nlohmann::json> events;
    for (const auto& e : journal["events"]) {
      if (e["deployment"] == deployment) events.push_back(e);
    }
    ASSERT_FALSE(events.empty());
    for (std::size_t i = 0; i < events.size(); ++i) EXPECT_EQ(events[i]["sequence"], i + 1);
    EXPECT_EQ(events.back()["step"], final_step) << journal.dump(2);
  }

  TempDir dir_;
  Package v1_;
  Package v2_;
};

struct CrashCase {
  std::string crash_at;   // FABU_AGENT_CRASH_AT
  std::string fail_hook;  // a hook of V2 made to fail, or ""
  std::string ends_on;    // the release the host ends on
  std::string outcome;    // the journal's final step for d2
  bool observe = false;   // install V2 with a 1 s observation period
};

std::ostream& operator<<(std::ostream& os, const CrashCase& c) {
  return os << c.crash_at << (c.fail_hook.empty() ? "" : "+fail_" + c.fail_hook);
}

class AgentCrashTest : public AgentProcessTest, public ::testing::WithParamInterface<CrashCase> {};

TEST_P(AgentCrashTest, RecoveryEndsOnTheOldOrTheNewReleaseNeverBetween) {
  if (!FaultInjectionCompiledIn()) GTEST_SKIP() << "built with FABU_FAULT_INJECTION=OFF";
  const CrashCase& c = GetParam();
  auto first = Install(v1_, "d1");
  ASSERT_EQ(first.exit_code, 0) << first.err;
  if (!c.fail_hook.empty()) WriteFile(dir_ / "apps" / ("FAIL_" + c.fail_hook + "_" + kV2), "");

  std::vector<std::string> extra;
  if (c.observe) extra = {"--observe", "1s", "--observe-interval", "1s"};
  auto crashed = Install(v2_, "d2", {"FABU_AGENT_CRASH_AT=" + c.crash_at}, extra);
  ASSERT_EQ(crashed.exit_code, kInjectedCrashExitCode) << crashed.out << crashed.err;
  // The journal recorded the step the process died at.
  const auto journal = Journal();
  ASSERT_TRUE(journal.contains("in_flight")) << journal.dump(2);
  EXPECT_EQ(journal["in_flight"]["step"], c.crash_at);

  auto recovered = Recover();
  ASSERT_EQ(recovered.exit_code, 0) << recovered.err;
  ExpectHostOn(c.ends_on, c.outcome);
  // A failed V2 is not kept; a successful one is kept beside V1.
  std::vector<std::string> releases;
  for (const auto& e : fs::directory_iterator(AppDir() / "releases")) {
    releases.push_back(e.path().filename().string());
  }
  std::ranges::sort(releases);
  const std::vector<std::string> kept =
      c.ends_on == kV2 ? std::vector<std::string>{kV1, kV2} : std::vector<std::string>{kV1};
  EXPECT_EQ(releases, kept);
  // Recovering again finds nothing to do.
  auto again = Recover();
  EXPECT_EQ(again.exit_code, 0);
  EXPECT_EQ(again.out, "");
}

INSTANTIATE_TEST_SUITE_P(
    EveryStep, AgentCrashTest,
    ::testing::Values(CrashCase{"verified", "", kV1, "failed"},
                      CrashCase{"installing", "", kV1, "failed"},
                      CrashCase{"pre_install", "", kV1, "failed"},
                      CrashCase{"post_install", "", kV1, "failed"},
                      CrashCase{"activating", "", kV1, "rolled_back"},
                      CrashCase{"activate", "", kV1, "rolled_back"},
                      CrashCase{"health_checking", "", kV1, "rolled_back"},
                      CrashCase{"health_check", "", kV1, "rolled_back"},
                      CrashCase{"observing", "", kV1, "rolled_back", true},
                      CrashCase{"succeeded", "", kV2, "succeeded", true},
                      CrashCase{"failed", "pre_install", kV1, "failed"},
                      CrashCase{"failed", "health_check", kV1, "rolled_back"},
                      CrashCase{"rolling_back", "health_check", kV1, "rolled_back"},
                      CrashCase{"rollback", "health_check", kV1, "rolled_back"},
                      CrashCase{"rolled_back", "health_check", kV1, "rolled_back"}),
    [](const auto& test_info) {
      const CrashCase& c = test_info.param;
      return c.crash_at + (c.fail_hook.empty() ? "" : "_" + c.fail_hook);
    });

// A rollback deployment (the fleet rollback) from V2 back to V1,
// killed at each of its steps: recovery finishes restoring V1, idempotently.
struct RollbackCrashCase {
  std::string crash_at;  // FABU_AGENT_CRASH_AT
  bool unhealthy_v1;     // V1's health check fails: the rollback cannot succeed
  std::string outcome;   // the journal's final step for r1
};

std::ostream& operator<<(std::ostream& os, const RollbackCrashCase& c) {
  return os << c.crash_at << (c.unhealthy_v1 ? "+unhealthy_v1" : "");
}

class AgentRollbackCrashTest : public AgentProcessTest,
                               public ::testing::WithParamInterface<RollbackCrashCase> {};

TEST_P(AgentRollbackCrashTest, RecoveryEndsOnTheOldOrTheNewReleaseNeverBetween) {
  if (!FaultInjectionCompiledIn()) GTEST_SKIP() << "built with FABU_FAULT_INJECTION=OFF";
  const RollbackCrashCase& c = GetParam();
  ASSERT_EQ(Install(v1_, "d1").exit_code, 0);
  ASSERT_EQ(Install(v2_, "d2").exit_code, 0);
  if (c.unhealthy_v1) WriteFile(dir_ / "apps" / (std::string("FAIL_health_check_") + kV1), "");

  auto crashed = Agent({"rollback", "--app", kApp, "--deployment", "r1", "--health-attempts", "1"},
                       {"FABU_AGENT_CRASH_AT=" + c.crash_at});
  ASSERT_EQ(crashed.exit_code, kInjectedCrashExitCode) << crashed.out << crashed.err;
  const auto journal = Journal();
  ASSERT_TRUE(journal.contains("in_flight")) << journal.dump(2);
  EXPECT_EQ(journal["in_flight"]["kind"], "rollback");
  EXPECT_EQ(journal["in_flight"]["step"], c.crash_at);
  // Killed before the switch, `current` is still exactly V2; after it, exactly
  // V1.
  const auto current = fs::read_symlink(AppDir() / "current");
  EXPECT_TRUE(current == fs::path("releases") / kV1 || current == fs::path("releases") / kV2)
      << current;

  auto recovered = Recover();
  ASSERT_EQ(recovered.exit_code, 0) << recovered.err;
  // A rollback switches to V1 even when V1 then fails its check
  // (rollback_failed says so); the release left stays kept.
  ExpectHostOn(kV1, c.outcome, "r1");
  std::vector<std::string> releases;
  for (const auto& e : fs::directory_iterator(AppDir() / "releases")) {
    releases.push_back(e.path().filename().string());
  }
  std::ranges::sort(releases);
  EXPECT_EQ(releases, (std::vector<std::string>{kV1, kV2}));
  auto again = Recover();
  EXPECT_EQ(again.exit_code, 0);
  EXPECT_EQ(again.out, "");
}

INSTANTIATE_TEST_SUITE_P(EveryStep, AgentRollbackCrashTest,
                         ::testing::Values(RollbackCrashCase{"verified", false, "rolled_back"},
                                           RollbackCrashCase{"rolling_back", false, "rolled_back"},
                                           RollbackCrashCase{"rollback", false, "rolled_back"},
                                           RollbackCrashCase{"rolled_back", false, "rolled_back"},
                                           RollbackCrashCase{"verified", true, "rollback_failed"},
                                           RollbackCrashCase{"rollback", true, "rollback_failed"},
                                           RollbackCrashCase{"rollback_failed", true,
                                                             "rollback_failed"}),
                         [](const auto& test_info) {
                           const RollbackCrashCase& c = test_info.param;
                           return c.crash_at + (c.unhealthy_v1 ? "_unhealthy_v1" : "");
                         });

TEST_F(AgentProcessTest, CrashDuringRecoveryIsRecoveredToo) {
  if (!FaultInjectionCompiledIn()) GTEST_SKIP() << "built with FABU_FAULT_INJECTION=OFF";
  ASSERT_EQ(Install(v1_, "d1").exit_code, 0);
  ASSERT_EQ(Install(v2_, "d2", {"FABU_AGENT_CRASH_AT=health_check"}).exit_code,
            kInjectedCrashExitCode);
  ASSERT_EQ(Recover({"FABU_AGENT_CRASH_AT=rollback"}).exit_code, kInjectedCrashExitCode);
  auto recovered = Recover();
  ASSERT_EQ(recovered.exit_code, 0) << recovered.err;
  ExpectHostOn(kV1, "rolled_back");
}

TEST_F(AgentProcessTest, InstallPrintsEveryEventAsAJsonLine) {
  auto r = Install(v1_, "d1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> steps;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    steps.push_back(nlohmann::json::parse(line)["step"]);
  }
  EXPECT_EQ(steps, (std::vector<std::string>{"verified", "installing", "activating",
                                             "health_checking", "succeeded"}));
  auto status = Agent({"status"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  const auto json = nlohmann::json::parse(status.out);
  EXPECT_EQ(json["apps"][0]["name"], kApp);
  EXPECT_EQ(json["apps"][0]["current"], kV1);
  // Acknowledged events leave the journal.
  ASSERT_EQ(RunCommand({AgentBinary(), "ack", "--data", (dir_ / "data").string(), "--deployment",
                        "d1", "--through", "5"})
                .exit_code,
            0);
  EXPECT_TRUE(Journal()["events"].empty());
}

TEST_F(AgentProcessTest, RefusedPackageExitsOneWithTheReason) {
  auto r = Agent({"install", "--trust", (dir_ / "publisher.pub").string(), "--package", v1_.path,
                  "--sha256", std::string(64, 'f')});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("differs from the assigned package id"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("\"step\":\"failed\""), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(AppDir()));
}

TEST_F(AgentProcessTest, MissingTrustFileIsAnErrorNamingIt) {
  auto r = Agent({"install", "--trust", (dir_ / "nope.pub").string(), "--package", v1_.path,
                  "--sha256", v1_.sha256});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("nope.pub"), std::string::npos) << r.err;
}

TEST_F(AgentProcessTest, RollbackSubcommandRestoresThePreviousRelease) {
  ASSERT_EQ(Install(v1_, "d1").exit_code, 0);
  ASSERT_EQ(Install(v2_, "d2").exit_code, 0);
  auto r = Agent({"rollback", "--app", kApp, "--deployment", "r1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(fs::read_symlink(AppDir() / "current"), fs::path("releases") / kV1);
}

}  // namespace
}  // namespace fabu::agent::testing
