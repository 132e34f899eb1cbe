// A fleet for end-to-end tests: the real fabu-coordinator, real
// fabu-agent processes each in its own temp root (data dir + apps root), the
// people of the release procedure, signed packages of `c3m-video` with hooks,
// and releases walked by the real fabu CLI from create to `release start`.
//
// Every daemon runs in the background with stdout and stderr to files (no
// pipe a test could wait on); it is stopped with SIGTERM by pid, and killed by
// the destructor when still running. Waits poll a condition until a deadline.
//
// The packages' hooks (see HookScripts):
//   health_check fails when $FABU_APPS_ROOT/FAIL_HEALTH exists and names the
//     version being checked (so the rollback's check of the old one passes);
//   activate appends its version to <root>/activated and, while
//     $FABU_APPS_ROOT/HOLD exists, touches $FABU_APPS_ROOT/HELD and waits for
//     $FABU_APPS_ROOT/GO (at most 60 s);
//   rollback appends "<version> <previous>" to <root>/rolled_back.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/run_command.hpp"
#include "tests/support/temp_dir.hpp"

namespace fabu::e2e {

namespace fs = std::filesystem;
using nlohmann::json;

std::string AgentBinary();

// Whether `text` holds `part`.
inline bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}
// `text` in lower case (ASCII).
std::string Lower(std::string text);

// RFC 3339 UTC of now + `offset`.
std::string UtcIn(std::chrono::seconds offset);

// Polls `condition` every 50 ms until it holds or `deadline` passes; returns
// whether it held.
bool WaitFor(const std::function<bool()>& condition,
             std::chrono::milliseconds deadline = std::chrono::seconds(60));

// A program in the background: stdin /dev/null, stdout and stderr appended
// to files. The destructor kills (SIGKILL) and reaps it when still running.
class Process {
 public:
  Process(const std::vector<std::string>& argv, const fs::path& out, const fs::path& err);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  bool Running();
  // SIGTERM, then waits up to `deadline` (SIGKILL after it); the exit code,
  // or -1 when it died by a signal or had to be killed.
  int Terminate(std::chrono::seconds deadline = std::chrono::seconds(20));
  // SIGKILL and reap.
  void Kill();

 private:
  int Reap(bool block);
  pid_t pid_ = -1;
  int status_ = -1;
};

// A TCP relay on 127.0.0.1 in front of `target_port` that forwards bytes from
// the server to its clients only up to a budget, then stalls (a download "cut
// halfway" without racing the network), and counts every byte it forwarded
// from the server.
class ThrottledRelay {
 public:
  explicit ThrottledRelay(int target_port);
  ~ThrottledRelay();
  ThrottledRelay(const ThrottledRelay&) = delete;
  ThrottledRelay& operator=(const ThrottledRelay&) = delete;

  int port() const { return port_; }
  void SetBudget(std::uint64_t bytes);  // from now on; UINT64_MAX: unlimited
  std::uint64_t served() const { return served_; }

 private:
  void Run();
  int target_port_;
  int port_ = 0;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  std::atomic<std::uint64_t> budget_;
  std::atomic<std::uint64_t> served_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

struct Agent {
  std::string name;
  fs::path root;  // data/, apps/, and the hooks' markers
  fs::path data() const { return root / "data"; }
  fs::path apps() const { return root / "apps"; }
  fs::path app() const { return apps() / "c3m-video"; }
  fs::path log() const { return root / "agent.log"; }
  std::unique_ptr<Process> process;
};

struct Package {
  std::string version;
  fs::path path;
  std::string id;  // its SHA-256, as the coordinator names it
  std::uintmax_t size = 0;
};

class Fleet : public ::testing::Test {
 protected:
  static constexpr char kApp[] = "c3m-video";
  static constexpr char kV1[] = "V1.0.0.1";
  static constexpr char kV2[] = "V1.0.0.2";

  // Coordinator with a trusted publisher key and the people; no agents yet.
  void SetUp() override;
  void TearDown() override;

  // --- the coordinator ---
  fs::path CoordinatorDir() const { return dir_ / "coordinator"; }
  // Starts `serve` on 127.0.0.1:port (0: any) and waits for its port.
  void StartCoordinator(int port = 0);
  // `serve --data DATA --listen 127.0.0.1:PORT` in the background, waited
  // for until it listens: its port in `listening_port` (0 when it did not
  // start, a failure of the test then). Its log is DATA/serve.log.
  std::unique_ptr<Process> Serve(const fs::path& data, int port, int& listening_port);
  pid_t CoordinatorPid() const;
  void KillCoordinator();  // SIGKILL by pid
  int StopCoordinator();   // SIGTERM by pid
  std::string Url() const;
  int Port() const { return port_; }
  fs::path Ca() const { return CoordinatorDir() / "ca.pem"; }
  std::string CoordinatorLog() const;

  fabu::testing::CommandResult As(const std::string& token, const std::vector<std::string>& args);

  // --- agents ---
  // Enrolls `count` agents web-1..web-N with one token of `labels`, sets
  // their agent.json for fast tests, and starts them unless `start` is false.
  void AddAgents(int count, const std::string& labels = "env=production,app=c3m-video",
                 bool start = true, const std::string& prefix = "web-");
  void StartAgent(Agent& agent);
  void StopAgents();
  // Changes fields of the agent's agent.json (before it starts); a null
  // value removes the field.
  void EditConfig(const Agent& agent, const json& changes);
  std::string Credential(const Agent& agent) const;
  std::string AllAgentLogs() const;
  // Every agent's activate hook waits while HOLD is in its apps root (it
  // touches HELD when it starts waiting): Hold before the release,
  // AllHeld to wait until each one is inside it.
  void HoldEveryAgent();
  bool AllHeld();

  // --- packages and releases ---
  // Builds c3m-video `version` with the hooks and `extra_bytes` of random
  // data, and uploads it.
  Package BuildAndUpload(const std::string& version, std::size_t extra_bytes = 0);
  // A release of `package` walked create → submit → approve ×2 → test → test-report
  // → accept → schedule (go-live window now-1h .. now+1h, one wave of 100%,
  // max_failures 0, no auto_rollback, unless golive_changes_ says otherwise:
  // it is merged into the go-live plan, as plan_changes_ into the plan); its id.
  std::string Scheduled(const Package& package);
  // `release test` of `release` to a test host played here, which succeeds
  // and is then removed (the fleet's hosts stay the agents').
  void PassTestDeployment(const std::string& release);
  void StartRelease(const std::string& id);
  // Scheduled + started.
  std::string Release(const Package& package);

  json Show(const std::string& release);
  std::string State(const std::string& release);
  json HostsOf(const std::string& release);  // `release hosts R --json`["hosts"]
  json HostsList();                          // `hosts list --json`
  // Waits until the release is in one of the final states (deployed, failed)
  // and returns that state ("" at the deadline).
  std::string WaitForFinal(const std::string& release,
                           std::chrono::seconds deadline = std::chrono::seconds(60));
  // Scheduled + started + deployed on every agent, asserting it.
  void Deploy(const Package& package);

  // `release status R --json`.
  json Status(const std::string& release);
  // Waits until the release is in one of `states`; that state, "" at the deadline.
  std::string WaitForState(const std::string& release, const std::vector<std::string>& states,
                           std::chrono::seconds deadline = std::chrono::seconds(60));
  // Rows of a read-only query of the coordinator's store, as text.
  std::vector<std::vector<std::string>> QueryStore(const std::string& query);

  // current -> releases/<version> of the agent's c3m-video.
  fs::path Current(const Agent& agent) const;

  // Coordinator URLs AddAgents gives `enroll` before the coordinator's own
  // (--server each, in order).
  std::vector<std::string> enroll_servers_;
  // Coordinator URLs the CLI (As) is given after the coordinator's own.
  std::vector<std::string> cli_servers_;
  json golive_changes_ = json::object();
  // Merged into the whole plan by Scheduled (e.g. {"targets": {"late_joiners": true}}).
  json plan_changes_ = json::object();
  fabu::testing::TempDir dir_;
  std::string admin_, rm_, wang_, li_, tester_, viewer_;
  std::vector<Agent> agents_;

 private:
  std::unique_ptr<Process> coordinator_;
  int port_ = 0;
  int coordinator_starts_ = 0;
  int files_ = 0;
};

}  // namespace fabu::e2e
