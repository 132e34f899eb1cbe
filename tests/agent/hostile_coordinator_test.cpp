// The real `fabu-agent run` against a hostile coordinator: a scripted HTTPS
// server on loopback serving crafted assignments. The agent trusts only its
// own keys, never the coordinator (docs/agent.md, "What the agent checks"):
// each assignment is refused with a message saying why, nothing outside the
// apps root is touched (no link switched, no hook run), and the agent keeps
// running to take the next one.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/agent/agent_fixture.hpp"
#include "tests/agent/scripted_coordinator.hpp"
#include "tests/agent/tls_test_server.hpp"
#include "tests/support/temp_dir.hpp"

namespace fabu::agent::testing {
namespace {

namespace fs = std::filesystem;
using fabu::testing::TempDir;
using fabu::testing::WriteFile;

// Serves `script` one assignment after the other: the next once the agent
// reported a final event for the current one, or, for an assignment the
// agent cannot answer (`silent`), once it polled it three times.
struct HostileCoordinator {
  std::vector<protocol::Assignment> script;
  std::set<std::size_t> silent;
  std::mutex mutex;
  std::size_t current = 0;
  int polls_of_current = 0;
  std::map<std::string, std::map<std::uint64_t, protocol::DeploymentEvent>> stored;
  std::size_t package_requests = 0;
  std::size_t bad_requests = 0;

  bool Done() {
    std::lock_guard lock(mutex);
    return current >= script.size();
  }

  void Advance() {
    ++current;
    polls_of_current = 0;
  }

  std::string Answer(const TestRequest& r) {
    std::lock_guard lock(mutex);
    if (r.target.starts_with(protocol::kAssignmentPath)) {
      if (current < script.size() && silent.contains(current) && polls_of_current >= 3) Advance();
      if (current >= script.size()) return Json(protocol::AssignmentResponseToJson(std::nullopt));
      ++polls_of_current;
      return Json(protocol::AssignmentResponseToJson(script[current]));
    }
    if (r.target.starts_with(protocol::kAgentPackagesPath)) {
      ++package_requests;
      return TlsTestServer::Response(404, "{}");
    }
    if (r.target == protocol::kEventsPath) {
      auto body = nlohmann::json::parse(r.body, nullptr, false);
      auto batch = body.is_discarded()
                       ? Result<protocol::EventBatch>(Fail(ErrorCode::kInvalidArgument, "not JSON"))
                       : protocol::EventBatchFromJson(body);
      if (!batch) {
        ++bad_requests;
        return TlsTestServer::Response(400, "{}");
      }
      protocol::EventAck ack;
      for (const auto& e : batch->events) {
        auto& events = stored[e.deployment];
        events.emplace(e.sequence, e);
        ack.through[e.deployment] = events.rbegin()->first;
        const bool final = e.step == Step::kFailed || e.step == Step::kSucceeded ||
                           e.step == Step::kRolledBack || e.step == Step::kRollbackFailed;
        if (final && current < script.size() && e.deployment == script[current].deployment) {
          Advance();
        }
      }
      return Json(protocol::EventAckToJson(ack));
    }
    if (r.target == protocol::kInventoryPath) return Json(nlohmann::json::object());
    ++bad_requests;
    return TlsTestServer::Response(404, "{}");
  }
};

// An app tree the agent did not make, with a rollback hook that leaves
// `mark` when it runs and `current` on the newer of two releases; with
// `manifests`, manifests that look like the agent's.
void PlantApp(const fs::path& app_dir, const fs::path& mark, bool manifests) {
  for (const char* v : {"V1.0.0.0", "V2.0.0.0"}) {
    const fs::path hook = app_dir / "releases" / v / "hooks/rollback";
    WriteFile(hook, "#!/bin/sh\ntouch " + mark.string() + "\n");
    fs::permissions(hook, fs::perms(0755));
    if (manifests) {
      WriteFile(app_dir / "manifests" / (std::string(v) + ".json"),
                fmt::format(R"({{"format": 1, "name": "{}", "version": "{}",)"
                            R"( "hooks": {{"rollback": "hooks/rollback"}}}})",
                            app_dir.filename().string(), v));
    }
  }
  fs::create_directory_symlink("releases/V2.0.0.0", app_dir / "current");
}

protocol::Assignment Rollback(const std::string& deployment, const std::string& app) {
  protocol::Assignment a;
  a.deployment = deployment;
  a.release = "R-9";
  a.kind = DeploymentKind::kRollback;
  a.app = app;
  return a;
}

protocol::Assignment Install(const std::string& deployment, const std::string& version,
                             const std::string& package_id) {
  protocol::Assignment a;
  a.deployment = deployment;
  a.release = "R-9";
  a.kind = DeploymentKind::kInstall;
  a.app = "c3m-video";
  a.version = version;
  a.package_id = package_id;
  a.package_size = 1000;
  a.package_url = std::string(protocol::kAgentPackagesPath) + package_id;
  return a;
}

// With --log-format json every line is a JSON object, and the lines of an
// assignment carry its release and deployment, and the host's name.
TEST(HostileCoordinatorTest, JsonLogLinesCarryTheHostReleaseAndDeployment) {
  TempDir dir;
  HostileCoordinator coordinator;
  coordinator.script.push_back(Rollback("d-1", "c3m-video"));  // never installed: fails
  TlsTestServer server(dir / "tls",
                       [&coordinator](const TestRequest& r) { return coordinator.Answer(r); });
  ASSERT_TRUE(server.started());
  EnrollByHand(dir / "data", server.url(), server.ca(), dir / "apps");
  AgentDaemon agent(dir / "data", dir / "agent.log", {"--log-format", "json"});
  ASSERT_TRUE(Eventually([&] { return coordinator.Done(); }, std::chrono::seconds(60)))
      << agent.log();
  EXPECT_EQ(agent.Stop(), 0) << agent.log();

  std::istringstream lines(agent.log());
  std::string line;
  std::size_t count = 0, of_deployment = 0;
  while (std::getline(lines, line)) {
    const auto parsed = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(parsed.is_object()) << "not a JSON line: " << line;
    ++count;
    EXPECT_EQ(parsed["service"], "fabu-agent");
    EXPECT_EQ(parsed["host"], "web-1") << line;
    if (parsed.value("deployment", "") == "d-1") {
      ++of_deployment;
      EXPECT_EQ(parsed["release"], "R-9") << line;
      if (parsed["level"] == "error") {
        EXPECT_NE(parsed["message"].get<std::string>().find("no current release"),
                  std::string::npos)
            << line;
      }
    }
  }
  EXPECT_GE(count, 3u) << agent.log();
  EXPECT_GE(of_deployment, 2u) << agent.log();
}

TEST(HostileCoordinatorTest, CraftedAssignmentsAreRefusedAndTheAgentKeepsRunning) {
  TempDir dir;
  const fs::path apps = dir / "apps";
  const fs::path victim = dir / "victim";  // outside the apps root
  const fs::path mark = dir / "hook-ran";
  PlantApp(victim, mark, /*manifests=*/true);
  PlantApp(apps / "planted", mark, /*manifests=*/false);

  HostileCoordinator coordinator;
  const std::string hex(64, 'a');
  const std::string injected = "d-7\n2026-01-01 00:00:00.000 info: \x1b[2Jall good";
  // What each refusal must say, by deployment.
  const std::vector<std::pair<protocol::Assignment, std::string>> cases = {
      {Rollback("d-1", "../victim"), "package name"},
      {Rollback("d-2", victim.string()), "package name"},
      {Rollback("d-3", "planted/../../victim"), "package name"},
      {Rollback("d-4", ""), "package name"},
      {Install("d-5", "V1.0.0.0/../../../victim", hex), "version \"V1.0.0.0/../../../victim\""},
      {Install("d-6", "V1.0.0.0", "../../../victim/x"), "package id \"../../../victim/x\""},
      {[&] {
         auto a = Rollback("d-8", "");
         a.package_id = "../../victim";
         a.package_size = 1000;
         a.package_url = std::string(protocol::kAgentPackagesPath) + a.package_id;
         return a;
       }(),
       "is not a SHA-256"},
      {[&] {
         auto a = Rollback("d-9", "c3m-video");
         a.release = "R-9\r\nX-Injected: 1";
         return a;
       }(),
       "release id"},
      {Rollback("d-10", "c3m-video"), "no current release"},  // never installed
      {Rollback("d-11", "planted"), "installed and verified itself"},
      {Rollback(injected, "c3m-video"), ""},  // no usable id: nothing to report
  };
  for (const auto& [a, why] : cases) {
    if (why.empty()) coordinator.silent.insert(coordinator.script.size());
    coordinator.script.push_back(a);
  }
  TlsTestServer server(dir / "tls",
                       [&coordinator](const TestRequest& r) { return coordinator.Answer(r); });
  ASSERT_TRUE(server.started());
  EnrollByHand(dir / "data", server.url(), server.ca(), apps);
  const auto victim_before = Snapshot(victim);
  const auto apps_before = Snapshot(apps);

  AgentDaemon agent(dir / "data", dir / "agent.log");
  ASSERT_TRUE(Eventually([&] { return coordinator.Done(); }, std::chrono::seconds(90)))
      << agent.log();
  // Still running, and still polling, after every one of them.
  const std::size_t requests = server.request_count();
  ASSERT_TRUE(Eventually([&] { return server.request_count() > requests + 1; })) << agent.log();
  EXPECT_EQ(agent.Stop(), 0) << agent.log();
  const std::string log = agent.log();

  std::lock_guard lock(coordinator.mutex);
  for (const auto& [a, why] : cases) {
    if (why.empty()) continue;
    const auto& events = coordinator.stored[a.deployment];
    ASSERT_FALSE(events.empty()) << a.deployment << "\n" << log;
    const auto& last = events.rbegin()->second;
    EXPECT_EQ(last.step, Step::kFailed) << a.deployment;
    EXPECT_NE(last.message.find(why), std::string::npos)
        << a.deployment << ": " << last.message << " (wanted: " << why << ")";
    for (const auto& [seq, e] : events) {
      EXPECT_TRUE(e.step == Step::kAssigned || e.step == Step::kVerified || e.step == Step::kFailed)
          << a.deployment << ": " << StepName(e.step);
      EXPECT_EQ(e.app.find('/'), std::string::npos) << a.deployment << ": " << e.app;
    }
  }
  // The id the agent could not use: never reported, refused in the log once,
  // and the log shows it escaped, not as lines or terminal codes of its own.
  EXPECT_FALSE(coordinator.stored.contains(injected));
  EXPECT_EQ(Count(log, "refusing an assignment: deployment id"), 1u) << log;
  EXPECT_EQ(log.find('\x1b'), std::string::npos) << log;
  EXPECT_EQ(log.find("\n2026-01-01 00:00:00.000 info:"), std::string::npos) << log;
  EXPECT_EQ(log.find("\nX-Injected"), std::string::npos) << log;

  EXPECT_FALSE(std::filesystem::exists(mark)) << "a hook the agent did not install ran";
  EXPECT_EQ(Snapshot(victim), victim_before);
  EXPECT_EQ(Snapshot(apps), apps_before);
  EXPECT_EQ(coordinator.package_requests, 0u);
  EXPECT_EQ(coordinator.bad_requests, 0u);
  // Nothing was written outside the agent's own directories.
  std::set<std::string> top;
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    top.insert(entry.path().filename().string());
  }
  EXPECT_EQ(top, (std::set<std::string>{"agent.log", "apps", "data", "tls", "victim"}));
  EXPECT_FALSE(fs::exists(dir / "data/downloads") && !fs::is_empty(dir / "data/downloads"));
}

}  // namespace
}  // namespace fabu::agent::testing
