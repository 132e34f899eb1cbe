// `fabu-agent enroll` and `run` against the real fabu-coordinator
// (docs/agent.md).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <future>
#include <regex>
#include <thread>

#include "agent/config/agent_config.hpp"
#include "tests/agent/agent_fixture.hpp"
#include "tests/support/closed_port.hpp"
#include "tests/support/coordinator_process.hpp"
#include "tests/support/run_command.hpp"
#include "tests/support/temp_dir.hpp"

namespace fabu::agent::testing {
namespace {

namespace fs = std::filesystem;
using fabu::testing::ClosedPort;
using fabu::testing::CoordinatorProcess;
using fabu::testing::FabuAs;
using fabu::testing::InitCoordinator;
using fabu::testing::LastLine;
using fabu::testing::RunCommand;
using fabu::testing::TempDir;

class AgentCoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto init = InitCoordinator(dir_ / "coordinator");
    ASSERT_EQ(init.exit_code, 0) << init.err;
    admin_ = LastLine(init.out);
    daemon_ = std::make_unique<CoordinatorProcess>(dir_ / "coordinator");
    ASSERT_TRUE(daemon_->started()) << daemon_->log();
    ASSERT_EQ(Fabu({"keygen", "--out", (dir_ / "publisher").string()}).exit_code, 0);
  }

  static fabu::testing::CommandResult Fabu(const std::vector<std::string>& args) {
    return fabu::testing::Fabu(args);
  }

  std::string EnrollToken(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"enroll-token", "create", "--labels", "env=test"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = FabuAs(*daemon_, admin_, args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return LastLine(r.out);
  }

  fabu::testing::CommandResult Enroll(const std::string& token, const std::string& name,
                                      const fs::path& data) {
    return RunCommand({AgentBinary(), "enroll", "--server", daemon_->url(), "--ca",
                       daemon_->ca().string(), "--token", token, "--data", data.string(), "--name",
                       name, "--apps-root", (dir_ / name / "apps").string(), "--trust",
                       (dir_ / "publisher.pub").string()});
  }

  TempDir dir_;
  std::string admin_;
  std::unique_ptr<CoordinatorProcess> daemon_;
};

TEST_F(AgentCoordinatorTest, EnrollStoresTheCredentialPrivatelyAndTheConfig) {
  const fs::path data = dir_ / "web-1/data";
  auto r = Enroll(EnrollToken(), "web-1", data);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("enrolled as web-1"), std::string::npos) << r.out;
  struct stat st {};
  ASSERT_EQ(::stat((data / "credential").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE(fs::exists(data / "agent.json"));
  EXPECT_TRUE(fs::exists(data / "ca.pem"));
  EXPECT_TRUE(fs::exists(data / "trusted/0-publisher.pub"));
}

TEST_F(AgentCoordinatorTest, AUsedTokenIsRefusedWithTheCoordinatorsMessage) {
  const std::string token = EnrollToken();
  ASSERT_EQ(Enroll(token, "web-1", dir_ / "web-1/data").exit_code, 0);
  auto again = Enroll(token, "web-2", dir_ / "web-2/data");
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_NE(again.err.find("the coordinator refused the enrollment"), std::string::npos)
      << again.err;
  EXPECT_FALSE(fs::exists(dir_ / "web-2/data/credential"));
}

TEST_F(AgentCoordinatorTest, AnEnrollmentWhoseAnswerWasLostIsRetriedWithItsKeptKey) {
  // Given an enrollment that committed but whose answer never reached the
  // agent (played here by sending the agent's kept enroll key ourselves and
  // dropping the answer), running `enroll` again with the same token should
  // get the same credential, not "already enrolled", and leave no key behind.
  const std::string token = EnrollToken();
  const fs::path data = dir_ / "web-3/data";
  fs::create_directories(data);
  const std::string key(64, 'e');
  { std::ofstream(data / "enroll.key") << key << "\n"; }
  const std::string body =
      R"({"token":")" + token + R"(","name":"web-3","labels":{},"inventory":{"hostname":"web-3",)" +
      R"("os":"linux","kernel":"6.1.0","arch":"x86_64","cpus":2,"memory_bytes":1073741824,)" +
      R"("agent_version":"0.1.0","apps":[]},"enroll_key":")" + key + R"("})";
  auto lost = RunCommand({"curl", "-sS", "--cacert", daemon_->ca().string(), "-H",
                          "Content-Type: application/json", "--data-binary", body,
                          daemon_->url() + "/api/v1/agent/enroll"});
  ASSERT_EQ(lost.exit_code, 0) << lost.err;
  const auto at = lost.out.find("\"credential\":\"");
  ASSERT_NE(at, std::string::npos) << lost.out;
  const std::string credential = lost.out.substr(at + 14, lost.out.find('"', at + 14) - at - 14);

  auto r = Enroll(token, "web-3", data);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("enrolled as web-3"), std::string::npos) << r.out;
  std::ifstream in(data / "credential");
  std::string kept;
  std::getline(in, kept);
  EXPECT_EQ(kept, credential);
  EXPECT_FALSE(fs::exists(data / "enroll.key"));
}

TEST_F(AgentCoordinatorTest, AnUnreachableCoordinatorKeepsTheEnrollKeyForTheRetry) {
  // Given a coordinator that is down, `enroll` should say so, keep only its
  // enroll key, and succeed when run again once the coordinator is back.
  const std::string token = EnrollToken();
  const fs::path data = dir_ / "web-4/data";
  daemon_->Stop();
  auto down = Enroll(token, "web-4", data);
  EXPECT_NE(down.exit_code, 0);
  EXPECT_NE(down.err.find("run the same command again"), std::string::npos) << down.err;
  EXPECT_TRUE(fs::exists(data / "enroll.key"));
  EXPECT_FALSE(fs::exists(data / "credential"));
  daemon_ = std::make_unique<CoordinatorProcess>(dir_ / "coordinator");
  ASSERT_TRUE(daemon_->started()) << daemon_->log();
  auto up = Enroll(token, "web-4", data);
  ASSERT_EQ(up.exit_code, 0) << up.err;
  EXPECT_FALSE(fs::exists(data / "enroll.key"));
}

// Given two coordinator URLs of which the first is a closed port, `enroll`
// should enroll with the second, write both (in order) to agent.json, and
// the agent it starts should report to the one that answers.
TEST_F(AgentCoordinatorTest, EnrollAndRunGoOnToTheNextServerWhenTheFirstIsDown) {
  const fs::path data = dir_ / "web-1/data";
  const std::string dead = "https://127.0.0.1:" + std::to_string(ClosedPort());
  auto r =
      RunCommand({AgentBinary(), "enroll", "--server", dead, "--server", daemon_->url(), "--ca",
                  daemon_->ca().string(), "--token", EnrollToken(), "--data", data.string(),
                  "--name", "web-1", "--apps-root", (dir_ / "web-1/apps").string(), "--trust",
                  (dir_ / "publisher.pub").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("enrolled as web-1"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find(dead), std::string::npos) << r.err;  // said it moved on
  auto config = ReadAgentConfig(data);
  ASSERT_TRUE(config) << config.error().message();
  EXPECT_EQ(config->servers, (std::vector<std::string>{dead, daemon_->url()}));

  auto agent = std::async(std::launch::async, [&] {
    return RunCommand({AgentBinary(), "run", "--data", data.string()}, {},
                      std::chrono::seconds(30));
  });
  bool seen = false;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!seen && std::chrono::steady_clock::now() < until) {
    auto hosts = FabuAs(*daemon_, admin_, {"hosts", "list", "--json"});
    seen = hosts.exit_code == 0 && hosts.out.find("agent_version") != std::string::npos;
    if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(seen);
  // Stopped by removing the host (exit 77), so the log can be read whole.
  ASSERT_EQ(FabuAs(*daemon_, admin_, {"host", "remove", "web-1"}).exit_code, 0);
  const auto run = agent.get();
  EXPECT_NE(run.err.find("coordinator " + dead + " unreachable ("), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("moving to " + daemon_->url()), std::string::npos) << run.err;
}

// Given no coordinator that answers, `enroll` should name each it tried.
TEST_F(AgentCoordinatorTest, AnEnrollmentNoServerAnsweredNamesThemAll) {
  const int port = ClosedPort();
  int other = ClosedPort();
  while (other == port) other = ClosedPort();
  const std::string dead1 = "https://127.0.0.1:" + std::to_string(port);
  const std::string dead2 = "https://127.0.0.1:" + std::to_string(other);
  auto r = RunCommand({AgentBinary(), "enroll", "--server", dead1, "--server", dead2, "--ca",
                       daemon_->ca().string(), "--token", EnrollToken(), "--data",
                       (dir_ / "d").string(), "--name", "web-1"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("cannot reach any of the coordinators (" + dead1 + ", " + dead2 + ")"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("run the same command again"), std::string::npos) << r.err;
}

TEST_F(AgentCoordinatorTest, AWrongCaIsAClearError) {
  auto r = RunCommand({AgentBinary(), "enroll", "--server", daemon_->url(), "--ca",
                       (dir_ / "publisher.pub").string(), "--token", "x", "--data",
                       (dir_ / "d").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--ca"), std::string::npos) << r.err;
}

TEST_F(AgentCoordinatorTest, ARunningAgentReportsItsInventory) {
  const fs::path data = dir_ / "web-1/data";
  ASSERT_EQ(Enroll(EnrollToken(), "web-1", data).exit_code, 0);
  // `fabu-agent run` in the background until the host shows up as seen.
  const std::string log = (dir_ / "agent.log").string();
  auto start =
      RunCommand({"sh", "-c", "\"$0\" run --data \"$1\" </dev/null >/dev/null 2>\"$2\" & echo $!",
                  AgentBinary(), data.string(), log});
  ASSERT_EQ(start.exit_code, 0);
  const std::string pid = LastLine(start.out);
  bool seen = false;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!seen && std::chrono::steady_clock::now() < until) {
    auto hosts = FabuAs(*daemon_, admin_, {"hosts", "list", "--json"});
    seen = hosts.exit_code == 0 && hosts.out.find("web-1") != std::string::npos &&
           hosts.out.find("agent_version") != std::string::npos;
    if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  RunCommand({"kill", "-TERM", pid});
  EXPECT_TRUE(seen) << fabu::testing::ReadFile(log);
}

TEST_F(AgentCoordinatorTest, ARemovedHostsAgentExits77AndSaysToEnrollAgain) {
  // Given a running agent whose host an admin removes, `fabu-agent run`
  // should exit 77, the status fabu-agent.service does not restart
  // (RestartPreventExitStatus=77), saying so and how to enroll again.
  const fs::path data = dir_ / "web-1/data";
  ASSERT_EQ(Enroll(EnrollToken(), "web-1", data).exit_code, 0);
  // A 1 s long poll, so the agent asks again soon after the removal.
  const std::string config = fabu::testing::ReadFile(data / "agent.json");
  fabu::testing::WriteFile(data / "agent.json",
                           std::regex_replace(config, std::regex(R"("poll_wait_seconds": *[0-9]+)"),
                                              R"("poll_wait_seconds": 1)"));
  auto agent = std::async(std::launch::async, [&] {
    return RunCommand({AgentBinary(), "run", "--data", data.string()}, {},
                      std::chrono::seconds(60));
  });
  // Removed while the agent runs (normally in its long poll by then; at its
  // first request the answer is the same).
  std::this_thread::sleep_for(std::chrono::seconds(1));
  auto removed = FabuAs(*daemon_, admin_, {"host", "remove", "web-1"});
  ASSERT_EQ(removed.exit_code, 0) << removed.err;
  const auto run = agent.get();
  EXPECT_EQ(run.exit_code, 77) << run.err;
  EXPECT_NE(run.err.find("will not be restarted"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("RestartPreventExitStatus=77"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("fabu-agent enroll"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find(data.string()), std::string::npos) << run.err;
}

}  // namespace
}  // namespace fabu::agent::testing
