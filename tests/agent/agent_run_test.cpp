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
#include "packaging/sha256.hpp"
#include "protocol/agent_api.hpp"
#include "tests/agent/agent_fixture.hpp"
#include "tests/agent/tls_test_server.hpp"
#include "tests/support/run_command.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/wait.hpp"

extern char** environ;

namespace fabu::agent::testing {
namespace {

namespace fs = std::filesystem;
using fabu::testing::Fabu;
using fabu::testing::ReadFile;
using fabu::testing::TempDir;
using fabu::testing::WriteFile;

// `fabu-agent run --data DIR` in the background, stderr to DIR/../agent.log.
class AgentDaemon {
 public:
  AgentDaemon(const fs::path& data, const fs::path& log) : log_(log) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    const std::string binary = AgentBinary();
    std::vector<std::string> args = {binary, "run", "--data", data.string()};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
  }
  ~AgentDaemon() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  std::string log() const { return fs::exists(log_) ? ReadFile(log_) : ""; }

  // SIGTERM, then the exit status (-1: killed or still running at the deadline).
  int Stop(std::chrono::seconds deadline = std::chrono::seconds(20)) {
    ::kill(pid_, SIGTERM);
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (std::chrono::steady_clock::now() < until) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }

 private:
  fs::path log_;
  pid_t pid_ = -1;
};

// Polls `condition` until it holds or `deadline` passes (paced, tests/support/wait.hpp).
bool Eventually(const std::function<bool()>& condition,
                std::chrono::seconds deadline = std::chrono::seconds(30)) {
  return fabu::testing::WaitUntil(condition, deadline, std::chrono::milliseconds(20));
}

std::size_t Count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
  return n;
}

const std::string kCredential(64, 'c');

// Writes what `fabu-agent enroll` would have left in `data`.
void EnrollByHand(const fs::path& data, const std::string& server, const fs::path& ca,
                  const fs::path& apps, const std::vector<std::string>& trusted = {}) {
  fs::create_directories(data);
  AgentConfig config;
  config.server = server;
  config.name = "web-1";
  config.ca = ca.string();
  config.apps_root = apps.string();
  config.trusted_keys = trusted;
  config.backoff_initial_seconds = 1;
  config.backoff_cap_seconds = 1;
  config.health_check_attempts = 1;
  config.health_check_delay_seconds = 0;
  ASSERT_TRUE(WriteAgentConfig(data, config));
  ASSERT_TRUE(WriteCredential(data / "credential", kCredential));
}

std::string Json(const nlohmann::json& j) { return TlsTestServer::Response(200, j.dump()); }

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
  EXPECT_EQ(Count(log, "coordinator unreachable"), 1u) << log;
  EXPECT_NE(log.find("maintenance (HTTP 503)"), std::string::npos) << log;
  EXPECT_EQ(Count(log, "coordinator reachable again"), 1u) << log;
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

// A coordinator following the contract for one assignment: serves it until
// a final event is stored, the package with Range, stores events once per
// (deployment, sequence) and acknowledges the highest stored.
struct ScriptedCoordinator {
  protocol::Assignment assignment;
  std::string package;
  std::mutex mutex;
  std::map<std::uint64_t, protocol::DeploymentEvent> stored;
  std::size_t event_posts = 0;
  bool final_stored = false;
  std::vector<protocol::Inventory> inventories;

  std::string Answer(const TestRequest& r) {
    std::lock_guard lock(mutex);
    if (r.target.starts_with(protocol::kAssignmentPath)) {
      if (final_stored) return Json(protocol::AssignmentResponseToJson(std::nullopt));
      return Json(protocol::AssignmentResponseToJson(assignment));
    }
    if (r.target.starts_with(protocol::kAgentPackagesPath)) {
      std::size_t from = 0;
      if (auto it = r.headers.find("range"); it != r.headers.end())
        from = std::stoul(it->second.substr(6));
      const std::string body = package.substr(from);
      return from == 0
                 ? TlsTestServer::Response(200, body)
                 : TlsTestServer::Response(206, body,
                                           fmt::format("Content-Range: bytes {}-{}/{}\r\n", from,
                                                       package.size() - 1, package.size()));
    }
    if (r.target == protocol::kEventsPath) {
      ++event_posts;
      auto batch = protocol::EventBatchFromJson(nlohmann::json::parse(r.body));
      if (!batch) return TlsTestServer::Response(400, "{}");
      protocol::EventAck ack;
      for (const auto& e : batch->events) {
        stored.emplace(e.sequence, e);
        ack.through[e.deployment] = stored.rbegin()->first;
        if (e.step == Step::kSucceeded || e.step == Step::kRolledBack ||
            e.step == Step::kRollbackFailed) {
          final_stored = true;
        }
      }
      return Json(protocol::EventAckToJson(ack));
    }
    if (r.target == protocol::kInventoryPath) {
      auto inventory = protocol::InventoryFromJson(nlohmann::json::parse(r.body));
      if (inventory) inventories.push_back(*inventory);
      return Json(nlohmann::json::object());
    }
    return TlsTestServer::Response(404, "{}");
  }
};

// Makes `package` (c3m-video V1.0.0.0) `coordinator`'s assignment
// `deployment` of `release` (`edit` may change more of it), serves it over
// TLS and enrolls an agent under dir/data that trusts dir/publisher.pub.
std::unique_ptr<TlsTestServer> ServeAssignment(
    const fs::path& dir, const fs::path& package, ScriptedCoordinator& coordinator,
    const std::string& deployment, const std::string& release,
    const std::function<void(protocol::Assignment&)>& edit = {}) {
  coordinator.package = ReadFile(package);
  protocol::Assignment& a = coordinator.assignment;
  a.deployment = deployment;
  a.release = release;
  a.app = "c3m-video";
  a.version = "V1.0.0.0";
  a.package_id = *packaging::Sha256::OfFile(package);
  a.package_size = coordinator.package.size();
  a.package_url = std::string(protocol::kAgentPackagesPath) + a.package_id;
  if (edit) edit(a);
  auto server = std::make_unique<TlsTestServer>(
      dir / "tls", [&coordinator](const TestRequest& r) { return coordinator.Answer(r); });
  if (!server->started()) return server;
  fs::create_directories(dir / "data/trusted");
  fs::copy_file(dir / "publisher.pub", dir / "data/trusted/0-publisher.pub");
  EnrollByHand(dir / "data", server->url(), server->ca(), dir / "apps",
               {"trusted/0-publisher.pub"});
  return server;
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

}  // namespace
}  // namespace fabu::agent::testing
