// The real `fabu-agent run` against a real HTTPS server on loopback that
// speaks the agent API (protocol/agent_api.hpp) from a script: what the agent
// does when the coordinator is away and comes back, and a whole assignment
// (long poll, download, deploy, events acknowledged, inventory). The same
// flows against the real coordinator are in agent_coordinator_test.cpp.
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "agent/config/agent_config.hpp"
#include "agent/hooks/hook_runner.hpp"
#include "packaging/sha256.hpp"
#include "protocol/agent_api.hpp"
#include "tests/agent/agent_fixture.hpp"
#include "tests/agent/scripted_coordinator.hpp"
#include "tests/agent/tls_test_server.hpp"
#include "tests/support/run_command.hpp"
#include "tests/support/temp_dir.hpp"

extern char** environ;

namespace fabu::agent::testing {
namespace {

namespace fs = std::filesystem;
using fabu::testing::Fabu;
using fabu::testing::ReadFile;
using fabu::testing::TempDir;
using fabu::testing::WriteFile;

TEST(AgentRunTest, CoordinatorAwayIsLoggedOnceAndItsReturnOnce) {
  TempDir dir;
  std::atomic<bool> down{true};
  std::atomic<int> polls_after_return{0};
  TlsTestServer server(dir / "tls", [&](const TestRequest& r) {
    if (down) return TlsTestServer::Response(503, R"({"error":{"message":"maintenance"}})");
    if (r.target.starts_with(protocol::kAssignmentPath)) {
      ++polls_after_return;
      return Json(protocol::AssignmentResponseToJson(std::nullopt));
    }
    return Json(nlohmann::json::object());
  });
  ASSERT_TRUE(server.started());
  EnrollByHand(dir / "data", server.url(), server.ca(), dir / "apps");
  AgentDaemon agent(dir / "data", dir / "agent.log");

  // Given the coordinator failing several tries, we should log it once.
  ASSERT_TRUE(Eventually([&] { return server.request_count() >= 3; })) << agent.log();
  down = false;
  ASSERT_TRUE(Eventually([&] { return polls_after_return >= 2; })) << agent.log();
  EXPECT_EQ(agent.Stop(), 0) << agent.log();

  const std::string log = agent.log();
  EXPECT_EQ(Count(log, "coordinator " + server.url() + " unreachable"), 1u) << log;
  EXPECT_NE(log.find("maintenance (HTTP 503)"), std::string::npos) << log;
  EXPECT_EQ(Count(log, "coordinator " + server.url() + " reachable again"), 1u) << log;
  EXPECT_EQ(Count(log, "moving to"), 0u) << log;  // there is no other
  // Every request carried the credential; the inventory came before the polls.
  const auto requests = server.requests();
  for (const auto& r : requests) EXPECT_EQ(r.headers.at("authorization"), "Bearer " + kCredential);
  auto inventory = std::ranges::find_if(
      requests, [](const TestRequest& r) { return r.target == protocol::kInventoryPath; });
  ASSERT_NE(inventory, requests.end());
  auto parsed = protocol::InventoryFromJson(nlohmann::json::parse(inventory->body));
  ASSERT_TRUE(parsed) << parsed.error().message();
  EXPECT_EQ(parsed->os, "linux");
  EXPECT_FALSE(parsed->hostname.empty());
  EXPECT_GT(parsed->cpus, 0u);
}

// Builds a package of c3m-video V1.0.0.0 with `hooks`, serves it as the one
// assignment of a ScriptedCoordinator (observing as asked), runs the real
// agent until a final event is stored and returns the stored steps.
void RunObservedAssignment(const fs::path& dir, const std::map<std::string, std::string>& hooks,
                           std::int64_t observe, std::int64_t interval,
                           std::vector<protocol::DeploymentEvent>& stored) {
  ASSERT_EQ(Fabu({"keygen", "--out", (dir / "publisher").string()}).exit_code, 0);
  const fs::path src = dir / "src";
  WriteFile(src / "app/bin/server", "#!/bin/sh\necho serving\n");
  for (const auto& [name, script] : hooks) {
    WriteFile(src / "hooks" / name, script);
    fs::permissions(src / "hooks" / name, fs::perms(0755));
  }
  const fs::path package = dir / "c3m-video.fabu";
  auto built = Fabu({"pack", "build", "--name", "c3m-video", "--version", "V1.0.0.0", "--from",
                     (src / "app").string(), "--hooks", (src / "hooks").string(), "--key",
                     (dir / "publisher.key").string(), "--out", package.string()});
  ASSERT_EQ(built.exit_code, 0) << built.err;
  ScriptedCoordinator coordinator;
  auto server =
      ServeAssignment(dir, package, coordinator, "d-obs", "R-1", [&](protocol::Assignment& a) {
        a.observe_seconds = observe;
        a.observe_interval_seconds = interval;
      });
  ASSERT_TRUE(server && server->started());
  AgentDaemon agent(dir / "data", dir / "agent.log");
  auto settled = [&] {
    std::lock_guard lock(coordinator.mutex);
    return coordinator.final_stored;
  };
  ASSERT_TRUE(Eventually(settled, std::chrono::seconds(60))) << agent.log();
  EXPECT_EQ(agent.Stop(), 0) << agent.log();
  std::lock_guard lock(coordinator.mutex);
  for (const auto& [seq, e] : coordinator.stored) stored.push_back(e);
}

std::vector<std::string> StepsOf(const std::vector<protocol::DeploymentEvent>& events) {
  std::vector<std::string> steps;
  for (const auto& e : events) steps.emplace_back(StepName(e.step));
  return steps;
}

TEST(AgentRunTest, AnObservedAssignmentKeepsCheckingThenSucceeds) {
  TempDir dir;
  std::vector<protocol::DeploymentEvent> stored;
  RunObservedAssignment(dir.path(), {{"health_check", CountingHealthCheck(0)}}, 2, 1, stored);
  if (HasFatalFailure()) return;
  EXPECT_EQ(StepsOf(stored), (std::vector<std::string>{
                                 "assigned", "downloading", "downloaded", "verified", "installing",
                                 "activating", "health_checking", "observing", "succeeded"}));
  // Checked when activated, then after 1 s and 2 s.
  EXPECT_EQ(ReadFile(dir.path() / "hooklog/checks-V1.0.0.0"), "3\n");
  EXPECT_EQ(fs::read_symlink(dir.path() / "apps/c3m-video/current"), fs::path("releases/V1.0.0.0"));
}

TEST(AgentRunTest, AHealthCheckFailingWhileObservedIsReportedAndRolledBack) {
  TempDir dir;
  std::vector<protocol::DeploymentEvent> stored;
  RunObservedAssignment(dir.path(), {{"health_check", CountingHealthCheck(2)}}, 3, 1, stored);
  if (HasFatalFailure()) return;
  EXPECT_EQ(StepsOf(stored),
            (std::vector<std::string>{"assigned", "downloading", "downloaded", "verified",
                                      "installing", "activating", "health_checking", "observing",
                                      "failed", "rolling_back", "rolled_back"}));
  const auto failed = std::ranges::find_if(
      stored, [](const protocol::DeploymentEvent& e) { return e.step == Step::kFailed; });
  ASSERT_NE(failed, stored.end());
  EXPECT_EQ(failed->failed_step, Step::kObserving);
  EXPECT_NE(failed->output.find("unhealthy on check 2"), std::string::npos) << failed->output;
  // A first install rolled back leaves nothing installed.
  EXPECT_FALSE(fs::exists(dir.path() / "apps/c3m-video/current"));
}

// What a hook prints goes into an event as JSON: random bytes, or Chinese
// text that the 4 KiB tail cuts inside a character, must not stop the agent
// (it once aborted serializing the event and left the host health_checking).
TEST(AgentRunTest, AHookPrintingBytesThatAreNotUtf8IsReportedAndTheAgentGoesOn) {
  TempDir dir;
  std::vector<protocol::DeploymentEvent> stored;
  const std::string check =
      "#!/bin/sh\nhead -c 5000 /dev/urandom\n"
      "i=0; while [ $i -lt 1000 ]; do printf '\\344\\270\\255\\346\\226\\207'; i=$((i+1)); done\n"
      "printf ' unhealthy\\n\\377'\nexit 1\n";
  RunObservedAssignment(dir.path(), {{"health_check", check}}, 0, 0, stored);
  if (HasFatalFailure()) return;
  EXPECT_EQ(StepsOf(stored),
            (std::vector<std::string>{"assigned", "downloading", "downloaded", "verified",
                                      "installing", "activating", "health_checking", "failed",
                                      "rolling_back", "rolled_back"}));
  const auto failed = std::ranges::find_if(
      stored, [](const protocol::DeploymentEvent& e) { return e.step == Step::kFailed; });
  ASSERT_NE(failed, stored.end());
  EXPECT_EQ(failed->failed_step, Step::kHealthChecking);
  EXPECT_NE(failed->message.find("health_check hook exited with status 1"), std::string::npos)
      << failed->message;
  EXPECT_LE(failed->output.size(), kHookOutputTail);
  EXPECT_TRUE(failed->output.ends_with(" unhealthy\n\xEF\xBF\xBD"));
  EXPECT_TRUE(failed->output.starts_with("\xE4\xB8\xAD") ||
              failed->output.starts_with("\xE6\x96\x87"));
}

TEST(AgentRunTest, StaleDownloadsGoAndTheCurrentPartialOneResumes) {
  TempDir dir;
  ASSERT_EQ(Fabu({"keygen", "--out", (dir / "publisher").string()}).exit_code, 0);
  const fs::path src = dir / "src";
  WriteFile(src / "bin/server", std::string(200'000, 'x'));
  const fs::path package = dir / "c3m-video.fabu";
  auto built =
      Fabu({"pack", "build", "--name", "c3m-video", "--version", "V1.0.0.0", "--from", src.string(),
            "--key", (dir / "publisher.key").string(), "--out", package.string()});
  ASSERT_EQ(built.exit_code, 0) << built.err;

  ScriptedCoordinator coordinator;
  auto server = ServeAssignment(dir.path(), package, coordinator, "d-2", "R-2");
  ASSERT_TRUE(server && server->started());
  // Given leftovers of a cancelled assignment and of another release, and
  // half of the current package from before a restart:
  const fs::path downloads = dir / "data/downloads";
  const std::string cancelled(64, 'a'), other(64, 'b');
  WriteFile(downloads / (cancelled + ".part"), "half of a cancelled package");
  WriteFile(downloads / (other + ".fabu"), "a whole package of another release");
  const std::size_t half = coordinator.package.size() / 2;
  WriteFile(downloads / (coordinator.assignment.package_id + ".part"),
            coordinator.package.substr(0, half));
  AgentDaemon agent(dir / "data", dir / "agent.log");

  auto settled = [&] {
    std::lock_guard lock(coordinator.mutex);
    return coordinator.final_stored;
  };
  ASSERT_TRUE(Eventually(settled, std::chrono::seconds(60))) << agent.log();
  EXPECT_EQ(agent.Stop(), 0) << agent.log();

  // ... we should remove the stale ones and resume the current one by Range.
  EXPECT_FALSE(fs::exists(downloads / (cancelled + ".part"))) << agent.log();
  EXPECT_FALSE(fs::exists(downloads / (other + ".fabu"))) << agent.log();
  std::vector<std::string> ranges;
  for (const auto& r : server->requests()) {
    if (!r.target.starts_with(protocol::kAgentPackagesPath)) continue;
    auto it = r.headers.find("range");
    ranges.push_back(it == r.headers.end() ? "none" : it->second);
  }
  EXPECT_EQ(ranges, (std::vector<std::string>{fmt::format("bytes={}-", half)}));
  EXPECT_EQ(fs::read_symlink(dir / "apps/c3m-video/current"), fs::path("releases/V1.0.0.0"));
  EXPECT_TRUE(fs::is_empty(downloads));
}

TEST(AgentRunTest, WithoutAnAssignmentEveryLeftoverDownloadGoes) {
  TempDir dir;
  std::atomic<int> polls{0};
  TlsTestServer server(dir / "tls", [&](const TestRequest& r) {
    if (r.target.starts_with(protocol::kAssignmentPath)) {
      ++polls;
      return Json(protocol::AssignmentResponseToJson(std::nullopt));
    }
    return Json(nlohmann::json::object());
  });
  ASSERT_TRUE(server.started());
  EnrollByHand(dir / "data", server.url(), server.ca(), dir / "apps");
  const fs::path stale = dir / "data/downloads" / (std::string(64, 'a') + ".part");
  WriteFile(stale, "half of a cancelled package");
  AgentDaemon agent(dir / "data", dir / "agent.log");
  ASSERT_TRUE(Eventually([&] { return polls >= 1 && !fs::exists(stale); })) << agent.log();
  EXPECT_EQ(agent.Stop(), 0) << agent.log();
  EXPECT_NE(agent.log().find("removed stale download"), std::string::npos) << agent.log();
}

TEST(AgentRunTest, AnAssignmentIsDownloadedDeployedAndReportedInOrder) {
  TempDir dir;
  ASSERT_EQ(Fabu({"keygen", "--out", (dir / "publisher").string()}).exit_code, 0);
  const fs::path src = dir / "src";
  WriteFile(src / "bin/server", "#!/bin/sh\necho serving\n");
  fs::permissions(src / "bin/server", fs::perms(0755));
  const fs::path package = dir / "c3m-video.fabu";
  auto built =
      Fabu({"pack", "build", "--name", "c3m-video", "--version", "V1.0.0.0", "--from", src.string(),
            "--key", (dir / "publisher.key").string(), "--out", package.string()});
  ASSERT_EQ(built.exit_code, 0) << built.err;

  ScriptedCoordinator coordinator;
  auto server = ServeAssignment(dir.path(), package, coordinator, "d-1", "R-1");
  ASSERT_TRUE(server && server->started());
  AgentDaemon agent(dir / "data", dir / "agent.log");

  auto settled = [&] {
    std::lock_guard lock(coordinator.mutex);
    return coordinator.final_stored && coordinator.inventories.size() >= 2 &&
           !coordinator.inventories.back().apps.empty();
  };
  ASSERT_TRUE(Eventually(settled, std::chrono::seconds(60))) << agent.log();
  EXPECT_EQ(agent.Stop(), 0) << agent.log();

  EXPECT_EQ(fs::read_symlink(dir / "apps/c3m-video/current"), fs::path("releases/V1.0.0.0"));
  std::vector<std::string> steps;
  std::uint64_t expected = 1;
  for (const auto& [seq, e] : coordinator.stored) {
    EXPECT_EQ(seq, expected++) << "sequence numbers must have no gap";
    steps.push_back(std::string(StepName(e.step)));
  }
  EXPECT_EQ(steps,
            (std::vector<std::string>{"assigned", "downloading", "downloaded", "verified",
                                      "installing", "activating", "health_checking", "succeeded"}));
  const auto& inventory = coordinator.inventories.back();
  ASSERT_EQ(inventory.apps.size(), 1u);
  EXPECT_EQ(inventory.apps[0].current, "V1.0.0.0");
  // The downloaded file is gone; the journal holds nothing unacknowledged.
  EXPECT_TRUE(fs::is_empty(dir / "data/downloads"));
  auto journal = nlohmann::json::parse(ReadFile(dir / "data/journal.json"));
  EXPECT_TRUE(journal["events"].empty()) << journal.dump(2);
}

// ---- Several coordinators -------------------------------------------------

// c3m-video V1.0.0.0 signed by a new dir/publisher key, at dir/c3m-video.fabu.
void BuildPackage(const fs::path& dir) {
  ASSERT_EQ(Fabu({"keygen", "--out", (dir / "publisher").string()}).exit_code, 0);
  const fs::path src = dir / "src";
  WriteFile(src / "bin/server", "#!/bin/sh\necho serving\n");
  fs::permissions(src / "bin/server", fs::perms(0755));
  auto built =
      Fabu({"pack", "build", "--name", "c3m-video", "--version", "V1.0.0.0", "--from", src.string(),
            "--key", (dir / "publisher.key").string(), "--out", (dir / "c3m-video.fabu").string()});
  ASSERT_EQ(built.exit_code, 0) << built.err;
}

// Points the agent enrolled under dir/data at `servers`, in that order.
void UseServers(const fs::path& dir, const std::vector<std::string>& servers) {
  auto config = ReadAgentConfig(dir / "data");
  ASSERT_TRUE(config) << config.error().message();
  config->servers = servers;
  ASSERT_TRUE(WriteAgentConfig(dir / "data", *config));
}

// The steps `coordinator` stored, in sequence order, checking there is no gap.
std::vector<std::string> StoredSteps(ScriptedCoordinator& coordinator) {
  std::lock_guard lock(coordinator.mutex);
  std::vector<std::string> steps;
  std::uint64_t expected = 1;
  for (const auto& [seq, e] : coordinator.stored) {
    EXPECT_EQ(seq, expected++) << "sequence numbers must have no gap";
    steps.emplace_back(StepName(e.step));
  }
  return steps;
}

const std::vector<std::string> kAllSteps = {"assigned",        "downloading", "downloaded",
                                            "verified",        "installing",  "activating",
                                            "health_checking", "succeeded"};

// Given two coordinators of one installation, the first overloaded (503,
// Retry-After: 60 s), the agent should go to the second at once, without
// waiting the minute, install its assignment there, and stay with it.
TEST(AgentRunTest, AnOverloadedCoordinatorIsLeftForTheNextWithoutWaitingItsRetryAfter) {
  TempDir dir;
  ASSERT_NO_FATAL_FAILURE(BuildPackage(dir.path()));
  ScriptedCoordinator coordinator;
  auto second = ServeAssignment(dir.path(), dir / "c3m-video.fabu", coordinator, "d-1", "R-1");
  ASSERT_TRUE(second && second->started());
  TlsTestServer first(dir / "tls", [](const TestRequest&) {
    return TlsTestServer::Response(503, R"({"error":{"message":"overloaded"}})",
                                   "Retry-After: 60\r\n");
  });
  ASSERT_TRUE(first.started());
  ASSERT_NO_FATAL_FAILURE(UseServers(dir.path(), {first.url(), second->url()}));

  const auto started = std::chrono::steady_clock::now();
  AgentDaemon agent(dir / "data", dir / "agent.log");
  auto settled = [&] {
    std::lock_guard lock(coordinator.mutex);
    return coordinator.final_stored && coordinator.inventories.size() >= 2;
  };
  ASSERT_TRUE(Eventually(settled, std::chrono::seconds(45))) << agent.log();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(30));
  EXPECT_EQ(agent.Stop(), 0) << agent.log();

  EXPECT_EQ(fs::read_symlink(dir / "apps/c3m-video/current"), fs::path("releases/V1.0.0.0"));
  EXPECT_EQ(StoredSteps(coordinator), kAllSteps);
  EXPECT_EQ(first.request_count(), 1u) << "the agent came back to the overloaded coordinator";
  const std::string log = agent.log();
  EXPECT_EQ(Count(log, "coordinator " + first.url() + " unreachable ("), 1u) << log;
  EXPECT_NE(log.find("overloaded (HTTP 503)); moving to " + second->url()), std::string::npos)
      << log;
  // The package came from the coordinator the agent was with, credential and all.
  const auto requests = second->requests();
  auto download = std::ranges::find_if(requests, [](const TestRequest& r) {
    return r.target.starts_with(protocol::kAgentPackagesPath);
  });
  ASSERT_NE(download, requests.end());
  EXPECT_EQ(download->headers.at("authorization"), "Bearer " + kCredential);
}

// Given two coordinators of one installation (one state behind both) and
// an agent with the first, when the first dies in the middle of the
// package download (its connections closed from then on), the agent should
// move to the second, fetch the rest of the package there, and finish the
// deployment with every event stored once, in order.
TEST(AgentRunTest, WhenItsCoordinatorDiesMidDownloadTheAgentFinishesWithTheNext) {
  TempDir dir;
  ASSERT_NO_FATAL_FAILURE(BuildPackage(dir.path()));
  ScriptedCoordinator coordinator;
  auto first_slot = ServeAssignment(dir.path(), dir / "c3m-video.fabu", coordinator, "d-1", "R-1");
  ASSERT_TRUE(first_slot && first_slot->started());
  first_slot.reset();  // its port is closed; two servers of the same state instead:
  std::atomic<bool> dead{false};
  TlsTestServer first(dir / "tls", [&](const TestRequest& r) {
    if (dead) return std::string();  // connection closed, nothing answered
    if (r.target.starts_with(protocol::kAgentPackagesPath)) {
      dead = true;  // dies while sending the package: half of it, then gone
      std::lock_guard lock(coordinator.mutex);
      return TlsTestServer::Response(200, coordinator.package)
          .substr(0, coordinator.package.size() / 2);
    }
    return coordinator.Answer(r);
  });
  TlsTestServer second(dir / "tls", [&](const TestRequest& r) { return coordinator.Answer(r); });
  ASSERT_TRUE(first.started() && second.started());
  ASSERT_NO_FATAL_FAILURE(UseServers(dir.path(), {first.url(), second.url()}));

  AgentDaemon agent(dir / "data", dir / "agent.log");
  auto settled = [&] {
    std::lock_guard lock(coordinator.mutex);
    return coordinator.final_stored && coordinator.inventories.size() >= 2;
  };
  ASSERT_TRUE(Eventually(settled, std::chrono::seconds(45))) << agent.log();
  EXPECT_EQ(agent.Stop(), 0) << agent.log();

  EXPECT_TRUE(dead);
  EXPECT_EQ(fs::read_symlink(dir / "apps/c3m-video/current"), fs::path("releases/V1.0.0.0"));
  // `downloading` twice: the start, and the resume on the second coordinator.
  EXPECT_EQ(
      StoredSteps(coordinator),
      (std::vector<std::string>{"assigned", "downloading", "downloading", "downloaded", "verified",
                                "installing", "activating", "health_checking", "succeeded"}));
  {
    std::lock_guard lock(coordinator.mutex);
    EXPECT_TRUE(coordinator.stored.at(3).message.starts_with("resuming at byte "))
        << coordinator.stored.at(3).message;
  }
  const std::string log = agent.log();
  EXPECT_NE(log.find("coordinator " + first.url() + " unreachable ("), std::string::npos) << log;
  EXPECT_NE(log.find("moving to " + second.url()), std::string::npos) << log;
  // The second coordinator served the rest of the package only (a Range
  // resume), and everything after the move.
  const auto requests = second.requests();
  auto download = std::ranges::find_if(requests, [](const TestRequest& r) {
    return r.target.starts_with(protocol::kAgentPackagesPath);
  });
  ASSERT_NE(download, requests.end());
  EXPECT_TRUE(download->headers.contains("range")) << "the download started over";
}

}  // namespace
}  // namespace fabu::agent::testing
