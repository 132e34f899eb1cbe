// The deployment engine in process: real hooks (shell scripts), real files,
// a fake clock. Each test reads "Given …, we should …".
#include "agent/deploy/deployer.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "packaging/growing_file.hpp"
#include "packaging/package.hpp"
#include "packaging/sha256.hpp"
#include "tests/agent/agent_fixture.hpp"
#include "tests/agent/deployer_fixture.hpp"
#include "tests/packaging/forge.hpp"
#include "tests/support/temp_dir.hpp"

namespace fabu::agent::testing {
namespace {

namespace fs = std::filesystem;
using fabu::testing::ReadFile;
using fabu::testing::TempDir;
using fabu::testing::WriteFile;
using protocol::Version;

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// A request with the fields a test cares about.
DeploymentRequest Request(const std::string& deployment, DeploymentKind kind,
                          const fs::path& package = {}, const std::string& sha256 = {},
                          const std::string& app = {}) {
  DeploymentRequest request;
  request.deployment = deployment;
  request.kind = kind;
  request.package = package;
  request.package_sha256 = sha256;
  request.app = app;
  return request;
}

class DeployerTest : public DeployerFixture {
 protected:
  void SetUp() override {
    DeployerFixture::SetUp();
    settings_.health_check_attempts = 2;
    settings_.health_check_delay = std::chrono::milliseconds(1500);
  }

  BuiltPackage Package(const std::string& version,
                       std::map<std::string, std::string> hooks = AllRecordingHooks()) {
    PackageSpec spec;
    spec.version = version;
    spec.files = {{"bin/server", "server " + version + "\n"}, {"etc/app.conf", "port=8080\n"}};
    spec.hooks = std::move(hooks);
    return MakePackage(dir_.path(), spec, *key_);
  }

  DeploymentOutcome Deploy(const BuiltPackage& p, const std::string& id) {
    sink_.events.clear();
    auto outcome = MakeDeployer().Deploy(Request(id, DeploymentKind::kInstall, p.path, p.sha256));
    EXPECT_TRUE(outcome) << outcome.error().message();
    return outcome ? *outcome : DeploymentOutcome{};
  }

  std::vector<std::string> Releases() {
    std::vector<std::string> names;
    const auto releases = InstallLayout(apps_).Releases("c3m-video");
    EXPECT_TRUE(releases);
    if (!releases) return names;
    for (const auto& v : *releases) {
      names.push_back(v.ToString());
    }
    return names;
  }

  std::string HookLog(const std::string& name) {
    const fs::path path = dir_.path() / "hooklog" / name;
    return fs::exists(path) ? ReadFile(path) : std::string();
  }

  void FailHook(const std::string& hook, const std::string& version) {
    WriteFile(apps_ / ("FAIL_" + hook + "_" + version), "");
  }

  fs::path ReleaseDir(const std::string& version) {
    return apps_ / "c3m-video" / "releases" / version;
  }
};

TEST_F(DeployerTest, FirstInstallReportsEveryStepAndActivatesTheRelease) {
  auto v1 = Package("V1.0.0.0");
  auto outcome = Deploy(v1, "d1");
  EXPECT_EQ(outcome.final_step, Step::kSucceeded) << outcome.message;
  EXPECT_EQ(sink_.Steps(), (std::vector<std::string>{"verified", "installing", "activating",
                                                     "health_checking", "succeeded"}));
  for (std::size_t i = 0; i < sink_.events.size(); ++i) {
    EXPECT_EQ(sink_.events[i].sequence, i + 1);
    EXPECT_EQ(sink_.events[i].deployment, "d1");
    EXPECT_EQ(sink_.events[i].time, clock_.now);
  }
  EXPECT_EQ(Current(), Version::Parse("V1.0.0.0").value());
  EXPECT_EQ(fs::read_symlink(apps_ / "c3m-video/current"), "releases/V1.0.0.0");
  EXPECT_TRUE(CompareWithManifest(ReleaseDir("V1.0.0.0"), v1.manifest).empty());
  EXPECT_TRUE(EntriesStartingWith(apps_ / "c3m-video", ".").empty());
  EXPECT_EQ(HookLog("order"),
            "pre_install V1.0.0.0\npost_install V1.0.0.0\nactivate V1.0.0.0\n"
            "health_check V1.0.0.0\n");
  EXPECT_TRUE(Contains(HookLog("activate-V1.0.0.0.env"), "FABU_PREVIOUS_VERSION=\n"));
  EXPECT_TRUE(Contains(HookLog("activate-V1.0.0.0.env"), "FABU_PREVIOUS_DIR=\n"));
  EXPECT_TRUE(Contains(sink_.events.back().output, "health_check of V1.0.0.0 says hello"));
  // The journal holds the events until acknowledged and nothing in flight.
  EXPECT_FALSE(journal_->in_flight());
  EXPECT_EQ(journal_->pending_events(), sink_.events);
  ASSERT_TRUE(journal_->last());
  EXPECT_EQ(journal_->last()->outcome, Step::kSucceeded);
  EXPECT_EQ(journal_->last()->current_version, "V1.0.0.0");
}

TEST_F(DeployerTest, UpgradeRunsEveryHookWithTheNewAndPreviousRelease) {
  Deploy(Package("V1.0.0.0"), "d1");
  auto outcome = Deploy(Package("V1.1.0.0"), "d2");
  ASSERT_EQ(outcome.final_step, Step::kSucceeded) << outcome.message;
  EXPECT_EQ(Current(), Version::Parse("V1.1.0.0").value());

  const std::string root = fs::absolute(apps_).lexically_normal().string();
  const std::string v2_dir = root + "/c3m-video/releases/V1.1.0.0";
  const std::string v1_dir = root + "/c3m-video/releases/V1.0.0.0";
  for (const std::string hook : {"pre_install", "post_install", "activate", "health_check"}) {
    SCOPED_TRACE(hook);
    const std::string env = HookLog(hook + "-V1.1.0.0.env");
    EXPECT_TRUE(Contains(env, "FABU_APP=c3m-video\n")) << env;
    EXPECT_TRUE(Contains(env, "FABU_VERSION=V1.1.0.0\n")) << env;
    EXPECT_TRUE(Contains(env, "FABU_RELEASE_DIR=" + v2_dir + "\n")) << env;
    EXPECT_TRUE(Contains(env, "FABU_PREVIOUS_VERSION=V1.0.0.0\n")) << env;
    EXPECT_TRUE(Contains(env, "FABU_PREVIOUS_DIR=" + v1_dir + "\n")) << env;
    EXPECT_TRUE(Contains(env, "FABU_APPS_ROOT=" + root + "\n")) << env;
  }
  // pre_install runs before the tree is placed, from staging.
  EXPECT_TRUE(Contains(HookLog("pre_install-V1.1.0.0.env"),
                       "FABU_STAGING_DIR=" + root + "/c3m-video/.staging-V1.1.0.0\n"));
  EXPECT_FALSE(Contains(HookLog("activate-V1.1.0.0.env"), "FABU_STAGING_DIR"));
  EXPECT_EQ(Releases(), (std::vector<std::string>{"V1.0.0.0", "V1.1.0.0"}));
}

TEST_F(DeployerTest, KeepsTheLastThreeReleases) {
  for (int i = 0; i < 5; ++i) {
    auto outcome = Deploy(Package(fmt::format("V1.{}.0.0", i)), fmt::format("d{}", i));
    ASSERT_EQ(outcome.final_step, Step::kSucceeded) << outcome.message;
  }
  EXPECT_EQ(Releases(), (std::vector<std::string>{"V1.2.0.0", "V1.3.0.0", "V1.4.0.0"}));
  EXPECT_FALSE(fs::exists(apps_ / "c3m-video/manifests/V1.0.0.0.json"));
  EXPECT_TRUE(fs::exists(apps_ / "c3m-video/manifests/V1.2.0.0.json"));
}

TEST_F(DeployerTest, FailingHealthCheckRollsBackToThePreviousRelease) {
  auto v1 = Package("V1.0.0.0");
  Deploy(v1, "d1");
  FailHook("health_check", "V1.1.0.0");
  auto outcome = Deploy(Package("V1.1.0.0"), "d2");
  EXPECT_EQ(outcome.final_step, Step::kRolledBack) << outcome.message;
  EXPECT_EQ(sink_.Steps(),
            (std::vector<std::string>{"verified", "installing", "activating", "health_checking",
                                      "failed", "rolling_back", "rolled_back"}));
  const DeploymentEvent& failed = sink_.events[4];
  EXPECT_EQ(failed.failed_step, Step::kHealthChecking);
  EXPECT_TRUE(Contains(failed.message, "health_check hook exited with status 1 (attempt 2 of 2)"))
      << failed.message;
  EXPECT_TRUE(Contains(failed.output, "health_check failing on purpose")) << failed.output;
  // Retried once, after the configured delay.
  EXPECT_EQ(clock_.slept, settings_.health_check_delay);

  EXPECT_EQ(Current(), Version::Parse("V1.0.0.0").value());
  EXPECT_TRUE(CompareWithManifest(ReleaseDir("V1.0.0.0"), v1.manifest).empty());
  EXPECT_EQ(Releases(), (std::vector<std::string>{"V1.0.0.0"}));
  EXPECT_TRUE(EntriesStartingWith(apps_ / "c3m-video", ".").empty());
  // V1's rollback hook ran, told which release was left, then V1's health check.
  const std::string rollback_env = HookLog("rollback-V1.0.0.0.env");
  EXPECT_TRUE(Contains(rollback_env, "FABU_VERSION=V1.0.0.0\n")) << rollback_env;
  EXPECT_TRUE(Contains(rollback_env, "FABU_PREVIOUS_VERSION=V1.1.0.0\n")) << rollback_env;
  EXPECT_TRUE(Contains(HookLog("order"),
                       "health_check V1.1.0.0\nhealth_check V1.1.0.0\nrollback V1.0.0.0\n"
                       "health_check V1.0.0.0\n"));
  EXPECT_EQ(journal_->last()->outcome, Step::kRolledBack);
  EXPECT_EQ(journal_->last()->current_version, "V1.0.0.0");
}

TEST_F(DeployerTest, RollbackWhosePreviousReleaseIsUnhealthyReportsRollbackFailed) {
  Deploy(Package("V1.0.0.0"), "d1");
  FailHook("health_check", "V1.1.0.0");
  FailHook("health_check", "V1.0.0.0");
  auto outcome = Deploy(Package("V1.1.0.0"), "d2");
  EXPECT_EQ(outcome.final_step, Step::kRollbackFailed);
  EXPECT_EQ(sink_.Steps().back(), "rollback_failed");
  EXPECT_TRUE(Contains(sink_.events.back().message, "health_check hook exited with status 1"));
  EXPECT_EQ(Current(), Version::Parse("V1.0.0.0").value());
}

TEST_F(DeployerTest, FailingPreInstallLeavesCurrentUntouchedAndNoStaging) {
  Deploy(Package("V1.0.0.0"), "d1");
  FailHook("pre_install", "V1.1.0.0");
  const auto before = Snapshot(apps_ / "c3m-video");
  auto outcome = Deploy(Package("V1.1.0.0"), "d2");
  EXPECT_EQ(outcome.final_step, Step::kFailed);
  EXPECT_EQ(sink_.Steps(), (std::vector<std::string>{"verified", "installing", "failed"}));
  EXPECT_EQ(sink_.events.back().failed_step, Step::kInstalling);
  EXPECT_TRUE(Contains(sink_.events.back().message, "pre_install hook exited with status 1"));
  EXPECT_EQ(Snapshot(apps_ / "c3m-video"), before);
  EXPECT_FALSE(journal_->in_flight());
  EXPECT_EQ(journal_->last()->outcome, Step::kFailed);
}

TEST_F(DeployerTest, FailingPostInstallRemovesThePlacedRelease) {
  Deploy(Package("V1.0.0.0"), "d1");
  FailHook("post_install", "V1.1.0.0");
  const auto before = Snapshot(apps_ / "c3m-video");
  EXPECT_EQ(Deploy(Package("V1.1.0.0"), "d2").final_step, Step::kFailed);
  EXPECT_EQ(Snapshot(apps_ / "c3m-video"), before);
}

TEST_F(DeployerTest, FirstInstallFailingAfterActivatingLeavesNothingInstalled) {
  FailHook("activate", "V1.0.0.0");
  auto outcome = Deploy(Package("V1.0.0.0"), "d1");
  EXPECT_EQ(outcome.final_step, Step::kRolledBack);
  EXPECT_TRUE(Contains(sink_.events.back().message, "nothing is installed"));
  EXPECT_FALSE(fs::exists(apps_ / "c3m-video"));
  EXPECT_EQ(outcome.current, std::nullopt);
}

TEST_F(DeployerTest, LowerVersionIsRefusedAtVerify) {
  Deploy(Package("V1.0.0.0"), "d1");
  Deploy(Package("V1.1.0.0"), "d2");
  const auto before = Snapshot(apps_);
  auto outcome = Deploy(Package("V1.0.0.0"), "d3");
  EXPECT_EQ(outcome.final_step, Step::kFailed);
  ASSERT_EQ(sink_.Steps(), (std::vector<std::string>{"failed"}));
  EXPECT_EQ(sink_.events[0].failed_step, Step::kVerified);
  EXPECT_TRUE(Contains(outcome.message, "anti-downgrade")) << outcome.message;
  EXPECT_EQ(Snapshot(apps_), before);
}

TEST_F(DeployerTest, SameVersionAgainSucceedsWithoutRunningHooks) {
  auto v1 = Package("V1.0.0.0");
  Deploy(v1, "d1");
  const std::string order = HookLog("order");
  const auto before = Snapshot(apps_);
  auto outcome = Deploy(v1, "d2");
  EXPECT_EQ(outcome.final_step, Step::kSucceeded);
  EXPECT_EQ(sink_.Steps(), (std::vector<std::string>{"verified", "succeeded"}));
  EXPECT_TRUE(Contains(outcome.message, "already current"));
  EXPECT_EQ(HookLog("order"), order);
  EXPECT_EQ(Snapshot(apps_), before);
}

TEST_F(DeployerTest, RepeatedDeploymentIdNeverReusesASequenceNumber) {
  FailHook("pre_install", "V1.0.0.0");
  auto v1 = Package("V1.0.0.0");
  Deploy(v1, "d1");
  fs::remove(apps_ / "FAIL_pre_install_V1.0.0.0");
  Deploy(v1, "d1");
  ASSERT_FALSE(sink_.events.empty());
  EXPECT_EQ(sink_.events.front().sequence, 4u);  // after verified, installing, failed
}

TEST_F(DeployerTest, HookOutputInAnEventIsTheLastFourKiB) {
  auto hooks = AllRecordingHooks();
  hooks["health_check"] = "#!/bin/sh\nhead -c 10000 /dev/zero | tr '\\0' x\necho END\nexit 1\n";
  Deploy(Package("V1.0.0.0", hooks), "d1");
  auto failed = std::ranges::find(sink_.events, Step::kFailed, &DeploymentEvent::step);
  ASSERT_NE(failed, sink_.events.end());
  EXPECT_EQ(failed->output.size(), kHookOutputTail);
  EXPECT_TRUE(failed->output.ends_with("xxxEND\n"));
}

TEST_F(DeployerTest, HungHookFailsTheStepAfterItsTimeout) {
  settings_.hook_timeout = std::chrono::milliseconds(300);
  auto hooks = AllRecordingHooks();
  hooks["post_install"] = "#!/bin/sh\nsleep 300\n";
  Deploy(Package("V1.0.0.0"), "d1");
  auto outcome = Deploy(Package("V1.1.0.0", hooks), "d2");
  EXPECT_EQ(outcome.final_step, Step::kFailed);
  EXPECT_TRUE(Contains(outcome.message, "post_install hook timed out after 300ms"))
      << outcome.message;
  EXPECT_EQ(Current(), Version::Parse("V1.0.0.0").value());
}

struct Refusal {
  std::string name;
  std::string expected;  // part of the reason
};

class DeployerRefusalTest : public DeployerTest, public ::testing::WithParamInterface<Refusal> {};

TEST_P(DeployerRefusalTest, RefusedAtVerifyAndNothingChanges) {
  Deploy(Package("V1.0.0.0"), "d1");
  const auto before = Snapshot(apps_);
  const std::string order = HookLog("order");

  PackageSpec spec;
  spec.version = "V1.1.0.0";
  spec.files = {{"bin/server", "v2\n"}};
  spec.hooks = AllRecordingHooks();
  auto other_key = *packaging::SigningKey::Generate();
  const std::string kind = GetParam().name;
  if (kind == "expired") spec.expires = "2027-01-01T00:00:00Z";  // the clock says 2027-01-15
  if (kind == "wrong_target") spec.targets = {{"os", "plan9"}};
  auto p = MakePackage(dir_.path(), spec, kind == "wrong_key" ? other_key : *key_);
  if (kind == "tampered") {
    // One byte of the signed manifest (the first tar member's data).
    std::fstream f(p.path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(512 + 40);
    f.put('#');
    f.close();
    p.sha256 = *packaging::Sha256::OfFile(p.path);
  }
  if (kind == "wrong_id") p.sha256 = std::string(64, '0');

  auto outcome = Deploy(p, "d2");
  EXPECT_EQ(outcome.final_step, Step::kFailed);
  ASSERT_EQ(sink_.Steps(), (std::vector<std::string>{"failed"}));
  EXPECT_EQ(sink_.events[0].failed_step, Step::kVerified);
  EXPECT_TRUE(Contains(outcome.message, GetParam().expected)) << outcome.message;
  EXPECT_EQ(Snapshot(apps_), before);
  EXPECT_EQ(HookLog("order"), order);
  EXPECT_FALSE(journal_->in_flight());
}

INSTANTIATE_TEST_SUITE_P(
    Refusals, DeployerRefusalTest,
    ::testing::Values(Refusal{"tampered", "manifest"}, Refusal{"wrong_key", "not trusted"},
                      Refusal{"expired", "expired"}, Refusal{"wrong_target", "targets.os"},
                      Refusal{"wrong_id", "differs from the assigned package id"}),
    [](const auto& test_info) { return test_info.param.name; });

TEST_F(DeployerTest, RollbackDeploymentRestoresTheKeptPreviousRelease) {
  Deploy(Package("V1.0.0.0"), "d1");
  Deploy(Package("V1.1.0.0"), "d2");
  sink_.events.clear();
  auto outcome =
      MakeDeployer().Deploy(Request("r1", DeploymentKind::kRollback, {}, {}, "c3m-video"));
  ASSERT_TRUE(outcome) << outcome.error().message();
  EXPECT_EQ(outcome->final_step, Step::kRolledBack) << outcome->message;
  EXPECT_EQ(sink_.Steps(), (std::vector<std::string>{"verified", "rolling_back", "rolled_back"}));
  EXPECT_EQ(Current(), Version::Parse("V1.0.0.0").value());
  // The release left stays kept; the restored one ran its rollback hook.
  EXPECT_EQ(Releases(), (std::vector<std::string>{"V1.0.0.0", "V1.1.0.0"}));
  EXPECT_TRUE(Contains(HookLog("rollback-V1.0.0.0.env"), "FABU_PREVIOUS_VERSION=V1.1.0.0\n"));
  // A second rollback has nothing older to restore.
  sink_.events.clear();
  auto again = MakeDeployer().Deploy(Request("r2", DeploymentKind::kRollback, {}, {}, "c3m-video"));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->final_step, Step::kFailed);
  EXPECT_TRUE(Contains(again->message, "nothing to restore")) << again->message;
}

TEST_F(DeployerTest, RollbackWithAPackageRestoresOnlyAKeptVersion) {
  auto v1 = Package("V1.0.0.0");
  Deploy(v1, "d1");
  Deploy(Package("V1.1.0.0"), "d2");
  auto outcome =
      MakeDeployer().Deploy(Request("r1", DeploymentKind::kRollback, v1.path, v1.sha256));
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->final_step, Step::kRolledBack) << outcome->message;
  EXPECT_EQ(Current(), Version::Parse("V1.0.0.0").value());
}

// Observation: the health check keeps running after it passed.
TEST_F(DeployerTest, ObservationRerunsTheHealthCheckEachIntervalThenSucceeds) {
  auto hooks = AllRecordingHooks();
  hooks["health_check"] = CountingHealthCheck(0);
  auto v1 = Package("V1.0.0.0", hooks);
  sink_.events.clear();
  DeploymentRequest request = Request("d1", DeploymentKind::kInstall, v1.path, v1.sha256);
  request.observe = std::chrono::seconds(3);
  request.observe_interval = std::chrono::seconds(1);
  auto outcome = MakeDeployer().Deploy(request);
  ASSERT_TRUE(outcome) << outcome.error().message();
  EXPECT_EQ(outcome->final_step, Step::kSucceeded) << outcome->message;
  EXPECT_EQ(sink_.Steps(), (std::vector<std::string>{"verified", "installing", "activating",
                                                     "health_checking", "observing", "succeeded"}));
  EXPECT_TRUE(Contains(sink_.events[4].message, "every 1 s for 3 s")) << sink_.events[4].message;
  // The health check once, then once a second for three seconds.
  EXPECT_EQ(HookLog("checks-V1.0.0.0"), "4\n");
  EXPECT_EQ(clock_.slept, std::chrono::seconds(3));
  EXPECT_TRUE(Contains(sink_.events.back().output, "healthy on check 4"));
  EXPECT_EQ(Current(), Version::Parse("V1.0.0.0").value());
}

TEST_F(DeployerTest, HealthCheckFailingWhileObservedFailsAndRollsBack) {
  auto v1 = Package("V1.0.0.0");
  Deploy(v1, "d1");
  auto hooks = AllRecordingHooks();
  hooks["health_check"] = CountingHealthCheck(3);
  auto v2 = Package("V1.1.0.0", hooks);
  sink_.events.clear();
  DeploymentRequest request = Request("d2", DeploymentKind::kInstall, v2.path, v2.sha256);
  request.observe = std::chrono::seconds(5);
  request.observe_interval = std::chrono::seconds(2);
  auto outcome = MakeDeployer().Deploy(request);
  ASSERT_TRUE(outcome) << outcome.error().message();
  EXPECT_EQ(outcome->final_step, Step::kRolledBack) << outcome->message;
  EXPECT_EQ(sink_.Steps(),
            (std::vector<std::string>{"verified", "installing", "activating", "health_checking",
                                      "observing", "failed", "rolling_back", "rolled_back"}));
  const DeploymentEvent& failed = sink_.events[5];
  EXPECT_EQ(failed.failed_step, Step::kObserving);
  EXPECT_TRUE(Contains(failed.message, "health_check hook exited with status 1")) << failed.message;
  EXPECT_TRUE(Contains(failed.message, "observation check 2, after 4 s of 5 s")) << failed.message;
  EXPECT_TRUE(Contains(failed.output, "unhealthy on check 3")) << failed.output;
  // A failure while observed is not retried: checks 1 (health_checking), 2, 3.
  EXPECT_EQ(HookLog("checks-V1.1.0.0"), "3\n");
  EXPECT_EQ(Current(), Version::Parse("V1.0.0.0").value());
  EXPECT_TRUE(CompareWithManifest(ReleaseDir("V1.0.0.0"), v1.manifest).empty());
  EXPECT_EQ(Releases(), (std::vector<std::string>{"V1.0.0.0"}));
  EXPECT_TRUE(Contains(HookLog("order"), "rollback V1.0.0.0\nhealth_check V1.0.0.0\n"));
  EXPECT_EQ(journal_->last()->outcome, Step::kRolledBack);
}

// An install prepared by `deployer` while a thread writes `package` into
// `part` as a download would (see fabu::testing::WriteGrowing).
struct Downloading {
  fs::path part;
  std::jthread writer;
  std::unique_ptr<PreparedInstall> prepared;
};
Downloading PrepareWhileWriting(Deployer& deployer, const fs::path& package, fs::path part,
                                std::size_t chunk, std::size_t stop_after = SIZE_MAX,
                                std::optional<Error> abandon = std::nullopt) {
  auto growing = std::make_shared<packaging::GrowingFile>();
  Downloading d{
      part,
      fabu::testing::WriteGrowing(package, part, *growing, chunk, stop_after, std::move(abandon)),
      nullptr};
  d.prepared = deployer.PrepareInstall(part, std::move(growing));
  return d;
}

// Waits up to 20 s for `path` to exist.
bool AppearsSoon(const fs::path& path) {
  for (int i = 0; i < 2000 && !fs::exists(path); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return fs::exists(path);
}

TEST_F(DeployerTest, TreeExtractedWhileThePackageDownloadsIsTheOneActivated) {
  Deploy(Package("V1.0.0.0"), "d1");
  auto v2 = Package("V1.1.0.0");
  Deployer deployer = MakeDeployer();
  auto download = PrepareWhileWriting(deployer, v2.path, dir_.path() / "v2.part", 512);
  // The tree is complete before the deployment starts: it was written while
  // the package was still arriving.
  const fs::path staging = apps_ / "c3m-video" / ".staging-V1.1.0.0";
  ASSERT_TRUE(AppearsSoon(staging));
  download.writer.join();
  // Proof that Deploy activates that tree rather than extracting again.
  WriteFile(staging / "extracted-during-download", "");

  sink_.events.clear();
  DeploymentRequest request = Request("d2", DeploymentKind::kInstall, download.part, v2.sha256);
  request.prepared = download.prepared.get();
  auto outcome = deployer.Deploy(request);
  ASSERT_TRUE(outcome) << outcome.error().message();
  EXPECT_EQ(outcome->final_step, Step::kSucceeded) << outcome->message;
  EXPECT_EQ(sink_.Steps(), (std::vector<std::string>{"verified", "installing", "activating",
                                                     "health_checking", "succeeded"}));
  EXPECT_EQ(Current(), Version::Parse("V1.1.0.0").value());
  EXPECT_TRUE(fs::exists(ReleaseDir("V1.1.0.0") / "extracted-during-download"));
  EXPECT_EQ(ReadFile(ReleaseDir("V1.1.0.0") / "bin/server"), "server V1.1.0.0\n");
  EXPECT_EQ(HookLog("order"),
            "pre_install V1.0.0.0\npost_install V1.0.0.0\nactivate V1.0.0.0\n"
            "health_check V1.0.0.0\npre_install V1.1.0.0\npost_install V1.1.0.0\n"
            "activate V1.1.0.0\nhealth_check V1.1.0.0\n");
  download.prepared.reset();
  EXPECT_TRUE(EntriesStartingWith(apps_ / "c3m-video", ".").empty());
}

TEST_F(DeployerTest, PreparedTreeOfAnotherPackageIsNotUsed) {
  // The download brought a validly signed package, but not the assigned one:
  // Deploy refuses it at verify, and the tree prepared from it is removed.
  Deploy(Package("V1.0.0.0"), "d1");
  auto v2 = Package("V1.1.0.0");
  auto v3 = Package("V1.2.0.0");
  Deployer deployer = MakeDeployer();
  auto download = PrepareWhileWriting(deployer, v3.path, dir_.path() / "v3.part", 4096);
  download.writer.join();
  ASSERT_TRUE(AppearsSoon(apps_ / "c3m-video" / ".staging-V1.2.0.0"));

  DeploymentRequest request = Request("d2", DeploymentKind::kInstall, download.part, v2.sha256);
  request.prepared = download.prepared.get();
  auto outcome = deployer.Deploy(request);
  ASSERT_TRUE(outcome) << outcome.error().message();
  EXPECT_EQ(outcome->final_step, Step::kFailed);
  EXPECT_TRUE(Contains(outcome->message, "differs from the assigned package id"))
      << outcome->message;
  download.prepared.reset();
  EXPECT_EQ(Current(), Version::Parse("V1.0.0.0").value());
  EXPECT_EQ(Releases(), (std::vector<std::string>{"V1.0.0.0"}));
  EXPECT_TRUE(EntriesStartingWith(apps_ / "c3m-video", ".").empty());
}

TEST_F(DeployerTest, NothingIsExtractedWhileDownloadingWhatAnInstallWouldRefuse) {
  Deploy(Package("V1.1.0.0"), "d1");
  const auto before = Snapshot(apps_);
  for (const char* version : {"V1.0.0.0", "V1.1.0.0"}) {
    SCOPED_TRACE(version);
    auto package = Package(version);
    Deployer deployer = MakeDeployer();
    auto download = PrepareWhileWriting(deployer, package.path, dir_.path() / "refused.part", 4096);
    download.writer.join();
    download.prepared.reset();  // waits for the thread
    EXPECT_EQ(Snapshot(apps_), before);
  }
}

TEST_F(DeployerTest, DownloadBrokenOffLeavesNothingOfAFirstInstall) {
  auto v1 = Package("V1.0.0.0");
  Deployer deployer = MakeDeployer();
  auto download =
      PrepareWhileWriting(deployer, v1.path, dir_.path() / "v1.part", 1024,
                          fs::file_size(v1.path) / 2, Error(ErrorCode::kUnavailable, "reset"));
  download.writer.join();
  download.prepared.reset();
  EXPECT_FALSE(fs::exists(apps_ / "c3m-video"));
  EXPECT_TRUE(fs::is_empty(apps_));
}

// What a hook prints is foreign bytes: neither random bytes nor a multi-byte
// character cut by the 4 KiB tail may stop the agent from reporting it.
TEST_F(DeployerTest, HookOutputThatIsNotUtf8IsReportedReadably) {
  auto hooks = AllRecordingHooks();
  // Random bytes, then Chinese text long enough that the tail starts inside
  // it, at an offset that is no character boundary.
  hooks["health_check"] =
      "#!/bin/sh\nhead -c 3000 /dev/urandom\nprintf '\\377\\376\\300\\200 '\n"
      "i=0; while [ $i -lt 700 ]; do printf '\\344\\270\\255\\346\\226\\207'; i=$((i+1)); done\n"
      "printf 'xy\\n\\344\\270'\nexit 1\n";
  auto outcome = Deploy(Package("V1.0.0.0", hooks), "d1");
  EXPECT_EQ(outcome.final_step, Step::kRolledBack) << outcome.message;
  auto failed = std::ranges::find(sink_.events, Step::kFailed, &DeploymentEvent::step);
  ASSERT_NE(failed, sink_.events.end());
  EXPECT_LE(failed->output.size(), kHookOutputTail);
  // Valid UTF-8 (a strict dump throws otherwise), starting on a character.
  for (const auto& e : sink_.events) EXPECT_NO_THROW((void)EventToJson(e).dump()) << e.message;
  EXPECT_TRUE(failed->output.starts_with("\xE4\xB8\xAD\xE6\x96\x87") ||
              failed->output.starts_with("\xE6\x96\x87"))
      << "the tail must start on a character boundary";
  // The character cut at the end is replaced, not dropped silently.
  EXPECT_TRUE(failed->output.ends_with("xy\n\xEF\xBF\xBD")) << failed->output.size();
  EXPECT_TRUE(Contains(failed->message, "health_check hook exited with status 1"))
      << failed->message;
}

// One name and version, two contents: the agent compares package ids and
// never reports success for content it does not run.
TEST_F(DeployerTest, SameVersionWithAnotherPackageIdIsRefusedNamingBoth) {
  auto v1 = Package("V1.0.0.0");
  Deploy(v1, "d1");
  PackageSpec other;
  other.version = "V1.0.0.0";
  other.files = {{"bin/server", "other content\n"}};
  other.hooks = AllRecordingHooks();
  auto impostor = MakePackage(dir_.path() / "other", other, *key_);
  ASSERT_NE(impostor.sha256, v1.sha256);
  const std::string order = HookLog("order");
  const auto before = Snapshot(apps_);
  auto outcome = Deploy(impostor, "d2");
  EXPECT_EQ(outcome.final_step, Step::kFailed);
  ASSERT_EQ(sink_.Steps(), (std::vector<std::string>{"failed"}));
  EXPECT_EQ(sink_.events[0].failed_step, Step::kVerified);
  EXPECT_TRUE(Contains(outcome.message, v1.sha256)) << outcome.message;
  EXPECT_TRUE(Contains(outcome.message, impostor.sha256)) << outcome.message;
  EXPECT_TRUE(Contains(outcome.message, "same name and version")) << outcome.message;
  EXPECT_EQ(HookLog("order"), order);
  EXPECT_EQ(Snapshot(apps_), before);
  EXPECT_EQ(ReadFile(ReleaseDir("V1.0.0.0") / "bin/server"), "server V1.0.0.0\n");
  // The package really installed is still "already current".
  EXPECT_EQ(Deploy(v1, "d3").final_step, Step::kSucceeded);
}

// A release installed before package ids were recorded is compared by its
// kept signed manifest, which holds every file's digest.
TEST_F(DeployerTest, SameVersionWithoutARecordedIdIsComparedByItsSignedManifest) {
  auto v1 = Package("V1.0.0.0");
  Deploy(v1, "d1");
  ASSERT_TRUE(fs::remove(apps_ / "c3m-video/manifests/V1.0.0.0.id"));
  EXPECT_EQ(Deploy(v1, "d2").final_step, Step::kSucceeded);
  PackageSpec other;
  other.version = "V1.0.0.0";
  other.files = {{"bin/server", "other content\n"}};
  auto impostor = MakePackage(dir_.path() / "other", other, *key_);
  auto outcome = Deploy(impostor, "d3");
  EXPECT_EQ(outcome.final_step, Step::kFailed);
  EXPECT_TRUE(Contains(outcome.message, impostor.sha256)) << outcome.message;
  EXPECT_TRUE(Contains(outcome.message, "another signed manifest")) << outcome.message;
}

TEST_F(DeployerTest, RollbackToAKeptVersionWithAnotherPackageIdIsRefused) {
  auto v1 = Package("V1.0.0.0");
  Deploy(v1, "d1");
  Deploy(Package("V1.1.0.0"), "d2");
  PackageSpec other;
  other.version = "V1.0.0.0";
  other.files = {{"bin/server", "other content\n"}};
  auto impostor = MakePackage(dir_.path() / "other", other, *key_);
  const auto before = Snapshot(apps_);
  sink_.events.clear();
  auto outcome = MakeDeployer().Deploy(
      Request("r1", DeploymentKind::kRollback, impostor.path, impostor.sha256));
  ASSERT_TRUE(outcome) << outcome.error().message();
  EXPECT_EQ(outcome->final_step, Step::kFailed);
  EXPECT_TRUE(Contains(outcome->message, v1.sha256)) << outcome->message;
  EXPECT_TRUE(Contains(outcome->message, impostor.sha256)) << outcome->message;
  EXPECT_EQ(Current(), Version::Parse("V1.1.0.0").value());
  EXPECT_EQ(Snapshot(apps_), before);
}

TEST_F(DeployerTest, AnInstallOfAnotherAppThanTheAssignedOneIsRefused) {
  auto v1 = Package("V1.0.0.0");
  auto request = Request("d1", DeploymentKind::kInstall, v1.path, v1.sha256, "billing");
  auto outcome = MakeDeployer().Deploy(request);
  ASSERT_TRUE(outcome) << outcome.error().message();
  EXPECT_EQ(outcome->final_step, Step::kFailed);
  EXPECT_TRUE(Contains(outcome->message, "not the assigned app \"billing\"")) << outcome->message;
  EXPECT_FALSE(fs::exists(apps_ / "c3m-video"));
}

// A tree outside the apps root that looks like an app the agent made, with a
// rollback hook that would leave a mark: what `../..` in an app once reached.
void PlantApp(const fs::path& app_dir, const fs::path& mark, bool with_manifests) {
  for (const char* v : {"V1.0.0.0", "V2.0.0.0"}) {
    const fs::path hook = app_dir / "releases" / v / "hooks/rollback";
    WriteFile(hook, "#!/bin/sh\ntouch " + mark.string() + "\n");
    fs::permissions(hook, fs::perms(0755));
    if (with_manifests) {
      WriteFile(app_dir / "manifests" / (std::string(v) + ".json"),
                fmt::format(R"({{"format": 1, "name": "c3m-video", "version": "{}",)"
                            R"( "hooks": {{"rollback": "hooks/rollback"}}}})",
                            v));
    }
  }
  fs::create_directory_symlink("releases/V2.0.0.0", app_dir / "current");
}

TEST_F(DeployerTest, RollbackOfAnAppThatIsNoPackageNameTouchesNothing) {
  const fs::path outside = dir_.path() / "outside";
  const fs::path mark = dir_.path() / "hook-ran";
  PlantApp(outside / "victim", mark, /*with_manifests=*/true);
  const auto before = Snapshot(outside);
  for (const std::string& app : std::vector<std::string>{
           "../outside/victim", (outside / "victim").string(), "c3m-video/../../outside/victim",
           "..", ".", "C3M", std::string("a\nb"), std::string("\xff\xfe")}) {
    sink_.events.clear();
    auto outcome = MakeDeployer().Deploy(Request("r1", DeploymentKind::kRollback, {}, {}, app));
    ASSERT_TRUE(outcome) << app << ": " << outcome.error().message();
    EXPECT_EQ(outcome->final_step, Step::kFailed) << app;
    EXPECT_TRUE(Contains(outcome->message, "package name")) << outcome->message;
    ASSERT_EQ(sink_.Steps(), (std::vector<std::string>{"failed"})) << app;
    EXPECT_EQ(sink_.events[0].app, "") << "a refused name is not reported as the app";
    EXPECT_NO_THROW((void)EventToJson(sink_.events[0]).dump());
  }
  EXPECT_FALSE(fs::exists(mark));
  EXPECT_EQ(Snapshot(outside), before);
  EXPECT_TRUE(fs::is_empty(apps_));
}

// Releases the agent did not install (no signed manifest kept) are never
// restored, and their files are never run as hooks.
TEST_F(DeployerTest, RollbackRestoresOnlyAReleaseThisAgentInstalled) {
  const fs::path mark = dir_.path() / "hook-ran";
  PlantApp(apps_ / "c3m-video", mark, /*with_manifests=*/false);
  const auto before = Snapshot(apps_);
  auto outcome =
      MakeDeployer().Deploy(Request("r1", DeploymentKind::kRollback, {}, {}, "c3m-video"));
  ASSERT_TRUE(outcome) << outcome.error().message();
  EXPECT_EQ(outcome->final_step, Step::kFailed);
  EXPECT_TRUE(Contains(outcome->message, "installed and verified itself")) << outcome->message;
  EXPECT_FALSE(fs::exists(mark));
  EXPECT_EQ(Snapshot(apps_), before);
}

TEST_F(DeployerTest, DeploymentIdWithControlCharactersIsRefused) {
  auto v1 = Package("V1.0.0.0");
  auto outcome =
      MakeDeployer().Deploy(Request("d1\n\x1b[31m", DeploymentKind::kInstall, v1.path, v1.sha256));
  ASSERT_FALSE(outcome);
  EXPECT_TRUE(Contains(outcome.error().message(), "is not an id")) << outcome.error().message();
  EXPECT_TRUE(sink_.events.empty());
  EXPECT_TRUE(fs::is_empty(apps_));
}

TEST_F(DeployerTest, RecoverWithNothingInFlightDoesNothing) {
  auto recovered = MakeDeployer().Recover();
  ASSERT_TRUE(recovered);
  EXPECT_FALSE(*recovered);
  EXPECT_TRUE(sink_.events.empty());
}

TEST_F(DeployerTest, NewDeploymentIsRefusedWhileOneIsInFlight) {
  InFlightDeployment d{
      "d0",         DeploymentKind::kInstall, "x.fabu",     "ab", "c3m-video", "V1.0.0.0",
      std::nullopt, Step::kInstalling,        std::nullopt, 1};
  DeploymentEvent e{"d0", 1, Step::kVerified, std::nullopt, "c3m-video", "V1.0.0.0", "", "", 0};
  ASSERT_TRUE(journal_->Begin(d, e));
  auto outcome = MakeDeployer().Deploy(
      Request("d1", DeploymentKind::kInstall, Package("V1.0.0.0").path, "ab"));
  ASSERT_FALSE(outcome);
  EXPECT_TRUE(Contains(outcome.error().message(), "d0 is still in flight"));
}

}  // namespace
}  // namespace fabu::agent::testing
