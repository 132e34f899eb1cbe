// fabu-loadgen against a real fabu-coordinator on loopback (issue 7 §1): a
// small fleet enrolls, comes back with its saved credentials and long-polls,
// and a fleet that does not trust the coordinator's CA reports why it could
// not connect. The scale itself is scripts/bench scale's.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "coordinator/common/data_dir.hpp"
#include "coordinator/tls/certificates.hpp"
#include "tests/support/coordinator_process.hpp"
#include "tests/support/run_command.hpp"
#include "tests/support/temp_dir.hpp"

namespace fabu::load {
namespace {

using fabu::testing::CoordinatorProcess;
using fabu::testing::FabuAs;
using fabu::testing::LastLine;
using fabu::testing::RunCommand;
using json = nlohmann::json;

constexpr int kAgents = 8;

class LoadgenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto init = fabu::testing::InitCoordinator(dir_.path() / "coordinator");
    ASSERT_EQ(init.exit_code, 0) << init.err;
    admin_ = LastLine(init.out);
    coordinator_ = std::make_unique<CoordinatorProcess>(dir_.path() / "coordinator");
    ASSERT_TRUE(coordinator_->started()) << coordinator_->log();
    auto token = FabuAs(*coordinator_, admin_,
                        {"enroll-token", "create", "--labels", "env=production,app=load", "--uses",
                         std::to_string(kAgents)});
    ASSERT_EQ(token.exit_code, 0) << token.err;
    enroll_token_ = LastLine(token.out);
  }

  // fabu-loadgen with the fleet's common flags and `more`; its report (JSON)
  // in `report`.
  fabu::testing::CommandResult Loadgen(const std::string& ca, const std::vector<std::string>& more,
                                       json& report) {
    const auto json_path = dir_.path() / "report.json";
    std::vector<std::string> argv = {FABU_LOADGEN_PATH,
                                     "--server",
                                     coordinator_->url(),
                                     "--ca",
                                     ca,
                                     "--agents",
                                     std::to_string(kAgents),
                                     "--name-prefix",
                                     "load-",
                                     "--enroll-token",
                                     enroll_token_,
                                     "--credentials",
                                     (dir_.path() / "credentials.txt").string(),
                                     "--report-json",
                                     json_path.string()};
    argv.insert(argv.end(), more.begin(), more.end());
    auto result = RunCommand(argv, {}, std::chrono::seconds(90));
    std::ifstream in(json_path);
    std::stringstream text;
    text << in.rdbuf();
    report = json::parse(text.str(), nullptr, false);
    return result;
  }

  fabu::testing::TempDir dir_;
  std::string admin_, enroll_token_;
  std::unique_ptr<CoordinatorProcess> coordinator_;
};

TEST_F(LoadgenTest, AFleetEnrollsThenComesBackWithItsCredentialsAndLongPolls) {
  // Given a fresh fleet, every agent should enroll over TLS without an
  // error; the coordinator should then list its hosts.
  json report;
  auto first =
      Loadgen(coordinator_->ca().string(), {"--until", "enrolled", "--run-seconds", "60"}, report);
  ASSERT_EQ(first.exit_code, 0) << first.err << first.out;
  ASSERT_TRUE(report.is_object()) << first.out;
  EXPECT_EQ(report["enrolled"], kAgents) << first.out;
  EXPECT_EQ(report["handshakes_full"], kAgents) << first.out;
  EXPECT_EQ(report["connect_failed"], 0) << first.out;
  EXPECT_EQ(report["handshake_failed"], 0) << first.out;
  EXPECT_TRUE(report["errors"].empty()) << first.out;
  EXPECT_NE(first.out.find("errors: none"), std::string::npos) << first.out;

  auto hosts = FabuAs(*coordinator_, admin_, {"hosts", "list", "--json"});
  ASSERT_EQ(hosts.exit_code, 0) << hosts.err;
  const json listed = json::parse(hosts.out, nullptr, false);
  ASSERT_TRUE(listed.is_array()) << hosts.out;
  std::vector<std::string> names;
  for (const json& h : listed) names.push_back(h.value("name", ""));
  std::sort(names.begin(), names.end());
  ASSERT_EQ(names.size(), static_cast<std::size_t>(kAgents)) << hosts.out;
  EXPECT_EQ(names.front(), "load-00001") << hosts.out;

  // Given the saved credentials and a 1 s long poll, the same fleet should
  // come back without enrolling again, send its inventories and poll, with
  // every connection held and no error, for the 3 s it runs.
  auto second = Loadgen(coordinator_->ca().string(),
                        {"--until", "deadline", "--run-seconds", "3", "--poll-wait", "1"}, report);
  ASSERT_EQ(second.exit_code, 0) << second.err << second.out;
  ASSERT_TRUE(report.is_object()) << second.out;
  EXPECT_EQ(report["max_held"], kAgents) << second.out;
  EXPECT_TRUE(report["errors"].empty()) << second.out;
  ASSERT_TRUE(report.contains("latency")) << second.out;
  EXPECT_FALSE(report["latency"].contains("enroll")) << second.out;
  EXPECT_EQ(report["latency"]["inventory"]["count"], kAgents) << second.out;
  // Each agent's polls end every second: at least two each in 3 s.
  EXPECT_GE(report["latency"]["poll"]["count"].get<int>(), 2 * kAgents) << second.out;
  auto again = FabuAs(*coordinator_, admin_, {"hosts", "list", "--json"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(json::parse(again.out, nullptr, false).size(), static_cast<std::size_t>(kAgents))
      << again.out;
}

TEST_F(LoadgenTest, AFleetThatDoesNotTrustTheCoordinatorsCaReportsTheFailedHandshakes) {
  // Given another CA than the coordinator's, no agent should get through,
  // and the report should count the TLS handshakes that failed and say why.
  const auto other = dir_.path() / "other";
  std::filesystem::create_directories(other);
  auto made = coordinator::CreateCertificates(coordinator::DataDir{other}, {});
  ASSERT_TRUE(made) << made.error().message();
  json report;
  auto run =
      Loadgen((other / "ca.pem").string(),
              {"--until", "enrolled", "--run-seconds", "2", "--backoff-initial", "0.2"}, report);
  ASSERT_EQ(run.exit_code, 0) << run.err << run.out;
  ASSERT_TRUE(report.is_object()) << run.out;
  EXPECT_EQ(report["enrolled"], 0) << run.out;
  EXPECT_EQ(report["handshakes_full"], 0) << run.out;
  EXPECT_GE(report["handshake_failed"].get<int>(), kAgents) << run.out;
  EXPECT_EQ(report["connect_failed"], 0) << run.out;
  bool named = false;
  for (const auto& [kind, count] : report["errors"].items()) {
    if (kind.find("tls handshake") != std::string::npos &&
        kind.find("certificate verify failed") != std::string::npos) {
      named = true;
    }
  }
  EXPECT_TRUE(named) << run.out;
}

}  // namespace
}  // namespace fabu::load
