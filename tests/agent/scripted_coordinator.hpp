// Pieces of the tests that run the real `fabu-agent run` against a scripted
// HTTPS coordinator on loopback (TlsTestServer): the agent as a background
// process, a hand-made enrollment, and a coordinator following the agent API
// for one assignment.
#pragma once

#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "agent/config/agent_config.hpp"
#include "agent/deploy/deployment_event.hpp"
#include "packaging/sha256.hpp"
#include "protocol/agent_api.hpp"
#include "tests/agent/agent_fixture.hpp"
#include "tests/agent/tls_test_server.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/wait.hpp"

extern char** environ;

namespace fabu::agent::testing {

// `fabu-agent run --data DIR` in the background, stderr to DIR/../agent.log.
class AgentDaemon {
 public:
  // `fabu-agent run --data DATA ARGS...`, its stderr in `log`.
  AgentDaemon(const std::filesystem::path& data, const std::filesystem::path& log,
              const std::vector<std::string>& run_args = {})
      : log_(log) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    const std::string binary = AgentBinary();
    std::vector<std::string> args = {binary, "run", "--data", data.string()};
    args.insert(args.end(), run_args.begin(), run_args.end());
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
  std::string log() const {
    return std::filesystem::exists(log_) ? fabu::testing::ReadFile(log_) : "";
  }

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
  std::filesystem::path log_;
  pid_t pid_ = -1;
};

// Polls `condition` until it holds or `deadline` passes (paced, tests/support/wait.hpp).
inline bool Eventually(const std::function<bool()>& condition,
                       std::chrono::seconds deadline = std::chrono::seconds(30)) {
  return fabu::testing::WaitUntil(condition, deadline, std::chrono::milliseconds(20));
}

inline std::size_t Count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
  return n;
}

inline const std::string kCredential(64, 'c');

// Writes what `fabu-agent enroll` would have left in `data`.
inline void EnrollByHand(const std::filesystem::path& data, const std::string& server,
                         const std::filesystem::path& ca, const std::filesystem::path& apps,
                         const std::vector<std::string>& trusted = {}) {
  std::filesystem::create_directories(data);
  AgentConfig config;
  config.servers = {server};
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

inline std::string Json(const nlohmann::json& j) { return TlsTestServer::Response(200, j.dump()); }

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
inline std::unique_ptr<TlsTestServer> ServeAssignment(
    const std::filesystem::path& dir, const std::filesystem::path& package,
    ScriptedCoordinator& coordinator, const std::string& deployment, const std::string& release,
    const std::function<void(protocol::Assignment&)>& edit = {}) {
  coordinator.package = fabu::testing::ReadFile(package);
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
  std::filesystem::create_directories(dir / "data/trusted");
  std::filesystem::copy_file(dir / "publisher.pub", dir / "data/trusted/0-publisher.pub");
  EnrollByHand(dir / "data", server->url(), server->ca(), dir / "apps",
               {"trusted/0-publisher.pub"});
  return server;
}

}  // namespace fabu::agent::testing
