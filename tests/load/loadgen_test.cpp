// fabu-loadgen against a real fabu-coordinator on loopback, in
// the end-to-end tests' fleet (tests/e2e/fleet.hpp: the coordinator, its
// people, signed packages, releases walked by the real CLI): a small fleet
// enrolls, comes back with its saved credentials and long-polls; a fleet that
// does not trust the coordinator's CA reports why it could not connect; and a
// fleet takes a release, downloading the package for real, some of its agents
// failing. The scale itself is scripts/bench scale's.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "coordinator/common/data_dir.hpp"
#include "coordinator/tls/certificates.hpp"
#include "tests/e2e/fleet.hpp"
#include "tests/support/closed_port.hpp"
#include "tests/support/coordinator_process.hpp"
#include "tests/support/run_command.hpp"

namespace fabu::load {
namespace {

using fabu::testing::LastLine;
using fabu::testing::RunCommand;
using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr int kAgents = 6;

class LoadgenTest : public fabu::e2e::Fleet {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(Fleet::SetUp());
    auto token = As(admin_, {"enroll-token", "create", "--labels", "env=production,app=c3m-video",
                             "--uses", std::to_string(kAgents)});
    ASSERT_EQ(token.exit_code, 0) << token.err;
    enroll_token_ = LastLine(token.out);
  }

  // fabu-loadgen's command line: the fleet's common flags, then `more`.
  std::vector<std::string> Argv(const std::string& ca, const std::vector<std::string>& more) const {
    std::vector<std::string> argv = {FABU_LOADGEN_PATH,
                                     "--server",
                                     Url(),
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
                                     ReportPath().string()};
    argv.insert(argv.end(), more.begin(), more.end());
    return argv;
  }
  fs::path ReportPath() const { return dir_.path() / "report.json"; }
  json Report() const {
    std::ifstream in(ReportPath());
    std::stringstream text;
    text << in.rdbuf();
    return json::parse(text.str(), nullptr, false);
  }
  // Runs fabu-loadgen to its end; its report (JSON) in `report`.
  fabu::testing::CommandResult Loadgen(const std::string& ca, const std::vector<std::string>& more,
                                       json& report) {
    auto result = RunCommand(Argv(ca, more), {}, std::chrono::seconds(90));
    report = Report();
    return result;
  }
  // The names `fabu hosts list` shows, sorted.
  std::vector<std::string> HostNames() {
    std::vector<std::string> names;
    for (const json& h : HostsList()) names.push_back(h.value("name", ""));
    std::sort(names.begin(), names.end());
    return names;
  }

  std::string enroll_token_;
};

TEST_F(LoadgenTest, AFleetEnrollsThenComesBackWithItsCredentialsAndLongPolls) {
  // Given a fresh fleet, every agent should enroll over TLS without an
  // error; the coordinator should then list its hosts.
  json report;
  auto first = Loadgen(Ca().string(), {"--until", "enrolled", "--run-seconds", "60"}, report);
  ASSERT_EQ(first.exit_code, 0) << first.err << first.out;
  ASSERT_TRUE(report.is_object()) << first.out;
  EXPECT_EQ(report["enrolled"], kAgents) << first.out;
  EXPECT_EQ(report["handshakes_full"], kAgents) << first.out;
  EXPECT_EQ(report["connect_failed"], 0) << first.out;
  EXPECT_EQ(report["handshake_failed"], 0) << first.out;
  EXPECT_TRUE(report["errors"].empty()) << first.out;
  EXPECT_NE(first.out.find("errors: none"), std::string::npos) << first.out;
  const std::vector<std::string> names = HostNames();
  ASSERT_EQ(names.size(), static_cast<std::size_t>(kAgents));
  EXPECT_EQ(names.front(), "load-00001");
  EXPECT_EQ(names.back(), "load-00006");

  // Given the saved credentials and a 1 s long poll, the same fleet should
  // come back without enrolling again, send its inventories and poll, with
  // every connection held and no error, for the 3 s it runs.
  auto second = Loadgen(Ca().string(),
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
  EXPECT_EQ(HostNames(), names);
}

TEST_F(LoadgenTest, AFleetSpreadOverTwoCoordinatorsMovesOffTheOneThatIsDown) {
  // Given two coordinator URLs of which the first is a closed port, the
  // agents that start there (every other one) should move to the second
  // after their first failed connect, and the whole fleet enroll.
  const std::string dead = "https://127.0.0.1:" + std::to_string(fabu::testing::ClosedPort());
  std::vector<std::string> argv = Argv(
      Ca().string(), {"--until", "enrolled", "--run-seconds", "60", "--backoff-initial", "0.1"});
  ASSERT_EQ(argv[1], "--server");
  argv[2] = dead + "," + Url();
  auto run = RunCommand(argv, {}, std::chrono::seconds(90));
  const json report = Report();
  ASSERT_EQ(run.exit_code, 0) << run.err << run.out;
  ASSERT_TRUE(report.is_object()) << run.out;
  EXPECT_EQ(report["enrolled"], kAgents) << run.out;
  EXPECT_EQ(report["connect_failed"], kAgents / 2) << run.out;
  EXPECT_EQ(report["server_moves"], kAgents / 2) << run.out;
  EXPECT_EQ(report["handshakes_full"], kAgents) << run.out;
  EXPECT_NE(run.out.find("moves to the next coordinator 3"), std::string::npos) << run.out;
  EXPECT_EQ(HostNames().size(), static_cast<std::size_t>(kAgents));
}

TEST_F(LoadgenTest, AFleetThatDoesNotTrustTheCoordinatorsCaReportsTheFailedHandshakes) {
  // Given another CA than the coordinator's, no agent should get through,
  // and the report should count the TLS handshakes that failed and say why.
  const fs::path other = dir_.path() / "other";
  fs::create_directories(other);
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
  EXPECT_TRUE(HostNames().empty());
}

TEST_F(LoadgenTest, AFleetTakesAReleaseDownloadingThePackageWithSomeAgentsFailing) {
  // Given an enrolled fleet long-polling, half of it set to fail at
  // `installing`, and a release of a 256 KiB package to it: every agent
  // should get its assignment, download the whole package over TLS and
  // report its steps; the failures should fail the release (max_failures 0),
  // and the hosts the loadgen counted as failed should be the release's.
  json report;
  auto enrolled = Loadgen(Ca().string(), {"--until", "enrolled", "--run-seconds", "60"}, report);
  ASSERT_EQ(enrolled.exit_code, 0) << enrolled.err << enrolled.out;
  const fs::path out = dir_.path() / "loadgen.out", err = dir_.path() / "loadgen.err";
  const fs::path assignments = dir_.path() / "assignments.txt";
  const fs::path status = dir_.path() / "loadgen.status";
  fabu::e2e::Process fleet(
      Argv(Ca().string(), {"--until", "done", "--run-seconds", "90", "--poll-wait", "5",
                           "--fail-fraction", "0.5", "--seed", "7", "--assignments-out",
                           assignments.string(), "--status-file", status.string()}),
      out, err);
  ASSERT_TRUE(fleet.started());
  // Every agent in its long poll (the loadgen's status file says so) before
  // the release starts.
  ASSERT_TRUE(fabu::e2e::WaitFor([&] {
    std::ifstream in(status);
    std::string word;
    while (in >> word) {
      if (word == "polling") {
        int polling = 0;
        in >> polling;
        return polling == kAgents;
      }
    }
    return false;
  })) << "not every agent polls";
  const fabu::e2e::Package package = BuildAndUpload(kV1, 256 * 1024);
  const std::string release = Release(package);
  ASSERT_TRUE(fabu::e2e::WaitFor([&] { return !fleet.Running(); }, std::chrono::seconds(90)))
      << "fabu-loadgen did not finish";
  EXPECT_EQ(fleet.Terminate(), 0);
  report = Report();
  ASSERT_TRUE(report.is_object());
  EXPECT_EQ(report["assigned"], kAgents) << report.dump(2);
  EXPECT_TRUE(report["errors"].empty()) << report.dump(2);
  const int failed = report["failed"].get<int>(), succeeded = report["succeeded"].get<int>();
  EXPECT_EQ(failed + succeeded, kAgents) << report.dump(2);
  EXPECT_GE(failed, 1) << report.dump(2);
  EXPECT_GE(succeeded, 1) << report.dump(2);
  EXPECT_EQ(report["latency"]["download"]["count"], kAgents) << report.dump(2);
  EXPECT_EQ(WaitForFinal(release), "failed");
  // Each agent answered the pre-flight questions of the submit and the
  // schedule; the latest round has every host ready.
  EXPECT_GE(report["preflight_answered"].get<int>(), kAgents) << report.dump(2);
  auto preflight = As(rm_, {"release", "preflight", release, "--show", "--json"});
  ASSERT_EQ(preflight.exit_code, 0) << preflight.err;
  const json round = json::parse(preflight.out, nullptr, false);
  ASSERT_TRUE(round.is_object()) << preflight.out;
  EXPECT_EQ(round["preflight"].value("ready", 0), kAgents) << preflight.out;

  // The loadgen's per-agent results against the coordinator's deployments.
  std::ifstream lines(assignments);
  std::string name, deployment, result;
  long long assigned_ms = 0, final_ms = 0;
  int lines_read = 0;
  while (lines >> name >> deployment >> assigned_ms >> final_ms >> result) {
    ++lines_read;
    const auto rows =
        QueryStore("SELECT host, result FROM deployments WHERE id = '" + deployment + "'");
    ASSERT_EQ(rows.size(), 1u) << deployment;
    EXPECT_EQ(rows[0][0], name);
    EXPECT_EQ(rows[0][1], result == "succeeded" ? "succeeded" : "failed") << name;
  }
  EXPECT_EQ(lines_read, kAgents);
  EXPECT_EQ(
      QueryStore("SELECT COUNT(*) FROM deployment_events e JOIN deployments d ON "
                 "d.id = e.deployment WHERE d.release_id = '" +
                 release + "' AND d.environment = 'production' AND e.step = 'downloaded'")[0][0],
      std::to_string(kAgents));
}

}  // namespace
}  // namespace fabu::load
