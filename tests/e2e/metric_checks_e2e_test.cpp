// Waves gated on metrics, end to end: a real Prometheus (Debian's, on
// 127.0.0.1 with a one-second scrape) scraping a test service whose error
// rate per host the test sets (tests/e2e/check_exporter.py), the real
// coordinator measuring the go-live plan's checks against it, real agents
// deploying and rolling back. A wave whose error rate rises is rolled back
// within one interval plus 10 s; a series that is missing pauses the
// rollout for a person; a dry run records and changes nothing; an http check
// reads the service's JSON, and goes only where config.json allows (a
// rollout whose check could not be measured does not start).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "platform/http/http_client.hpp"
#include "tests/e2e/fleet.hpp"

namespace fabu::e2e {
namespace {

using namespace std::chrono_literals;
using fabu::testing::ReadFile;
using fabu::testing::WriteFile;

int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof(address);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) == 0) {
    port = ntohs(address.sin_port);
  }
  ::close(fd);
  return port;
}

class MetricChecksE2eTest : public Fleet {
 protected:
  void SetUp() override {
    Fleet::SetUp();
    ASSERT_TRUE(fs::exists("/usr/bin/prometheus"))
        << "Debian's prometheus is not installed (scripts/bootstrap installs it)";
    SetRatios(json::object());
    exporter_ = std::make_unique<Process>(
        std::vector<std::string>{
            "/usr/bin/python3", std::string(FABU_SOURCE_DIR) + "/tests/e2e/check_exporter.py",
            (dir_.path() / "ratios.json").string(), (dir_.path() / "exporter.port").string()},
        dir_.path() / "exporter.out", dir_.path() / "exporter.err");
    ASSERT_TRUE(WaitFor([&] { return fs::exists(dir_.path() / "exporter.port"); }, 20s))
        << ReadFile(dir_.path() / "exporter.err");
    exporter_port_ = std::stoi(ReadFile(dir_.path() / "exporter.port"));

    prometheus_port_ = FreePort();
    WriteFile(dir_.path() / "prometheus.yml",
              json{{"global", {{"scrape_interval", "1s"}}},
                   {"scrape_configs",
                    {{{"job_name", "service"},
                      {"static_configs",
                       {{{"targets", {fmt::format("127.0.0.1:{}", exporter_port_)}}}}}}}}}
                  .dump());
    prometheus_ = std::make_unique<Process>(
        std::vector<std::string>{
            "/usr/bin/prometheus", "--config.file=" + (dir_.path() / "prometheus.yml").string(),
            "--storage.tsdb.path=" + (dir_.path() / "tsdb").string(),
            fmt::format("--web.listen-address=127.0.0.1:{}", prometheus_port_)},
        dir_.path() / "prometheus.out", dir_.path() / "prometheus.log");
    // Ready once it has scraped the service.
    platform::HttpClientOptions options;
    options.allow_plain_http = true;
    auto probe = platform::HttpClient::Create(options);
    ASSERT_TRUE(probe) << probe.error().message();
    platform::HttpRequest up;
    up.url = fmt::format("http://127.0.0.1:{}/api/v1/query?query=up", prometheus_port_);
    up.timeout = 5s;
    ASSERT_TRUE(WaitFor(
        [&] {
          auto reply = probe->Send(up);
          return reply && reply->status == 200 && reply->body.find("\"1\"") != std::string::npos;
        },
        60s))
        << ReadFile(dir_.path() / "prometheus.log");
    Configure({{"checks",
                {{"prometheus_url", fmt::format("http://127.0.0.1:{}/", prometheus_port_)},
                 {"allow", {fmt::format("http://127.0.0.1:{}/", exporter_port_)}}}}});
  }

  void TearDown() override {
    prometheus_.reset();
    exporter_.reset();
    Fleet::TearDown();
  }

  // Restarts the coordinator with `changes` merged into its config.json.
  void Configure(const json& changes) {
    ASSERT_EQ(StopCoordinator(), 0);
    const fs::path config = CoordinatorDir() / "config.json";
    json j = json::parse(ReadFile(config));
    j.merge_patch(changes);
    WriteFile(config, j.dump(2));
    ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  }

  // Waits until Prometheus has scraped a series for `host` (a change of
  // the ratios reaches a query only after the next scrape).
  void WaitForSeries(const std::string& host) {
    platform::HttpClientOptions options;
    options.allow_plain_http = true;
    auto client = platform::HttpClient::Create(options);
    ASSERT_TRUE(client) << client.error().message();
    platform::HttpRequest query;
    query.url = fmt::format(
        "http://127.0.0.1:{}/api/v1/query?query=fabu_test_error_ratio%7Bhost%3D%22{}%22%7D",
        prometheus_port_, host);
    query.timeout = 5s;
    ASSERT_TRUE(WaitFor(
        [&] {
          auto reply = client->Send(query);
          return reply && reply->status == 200 &&
                 reply->body.find("\"" + host + "\"") != std::string::npos;
        },
        30s))
        << "Prometheus has no series for " << host;
  }

  void SetRatios(const json& ratios) {
    WriteFile(dir_.path() / "ratios.json.tmp", ratios.dump());
    fs::rename(dir_.path() / "ratios.json.tmp", dir_.path() / "ratios.json");
  }

  // The error ratio of each of the wave's hosts, checked every second, 3 times.
  static json ErrorRatioCheck() {
    return {{"name", "error-ratio"},
            {"type", "prometheus"},
            {"query", "fabu_test_error_ratio{host=~\"$WAVE_HOSTS\"}"},
            {"condition", "< 0.05"},
            {"interval", "1s"},
            {"count", 3}};
  }

  json Measurements(const std::string& id, const std::string& check) {
    json out = json::array();
    for (const auto& m : Status(id).value("measurements", json::array())) {
      if (m.value("check", "") == check) out.push_back(m);
    }
    return out;
  }

  std::unique_ptr<Process> exporter_, prometheus_;
  int exporter_port_ = 0, prometheus_port_ = 0;
};

// Given waves 1, 100% and a check on the wave's error ratio, the first
// wave's ratio rises after its first good measurement: the wave is rolled
// back within one interval plus 10 s, the second wave never starts, and the
// status, the audit trail and the release's history say which check and why.
TEST_F(MetricChecksE2eTest, AWaveWhoseErrorRateRisesIsRolledBack) {
  ASSERT_NO_FATAL_FAILURE(AddAgents(3));
  const Package v1 = BuildAndUpload(kV1);
  const Package v2 = BuildAndUpload(kV2);
  ASSERT_NO_FATAL_FAILURE(Deploy(v1));
  SetRatios({{"web-1", 0.01}, {"web-2", 0.01}, {"web-3", 0.01}});
  ASSERT_NO_FATAL_FAILURE(WaitForSeries("web-1"));
  // Measured 30 times a second apart: the wave is still being measured
  // when the ratio rises, however slow this machine is today.
  json check = ErrorRatioCheck();
  check["count"] = 30;
  golive_changes_ = {{"waves", {"1", "100%"}},
                     {"between_waves", "0"},
                     {"auto_rollback", true},
                     {"checks", {check}}};
  const std::string id = Release(v2);
  ASSERT_TRUE(WaitFor([&] { return !Measurements(id, "error-ratio").empty(); }))
      << Status(id).dump(2);
  EXPECT_EQ(Measurements(id, "error-ratio")[0].value("outcome", ""), "pass") << Status(id).dump(2);
  EXPECT_NE(Status(id).value("waiting", "").find("wave 1 of 2: check error-ratio"),
            std::string::npos)
      << Status(id).dump(2);

  const auto rose = std::chrono::system_clock::now();
  SetRatios({{"web-1", 0.4}, {"web-2", 0.01}, {"web-3", 0.01}});
  ASSERT_EQ(WaitForState(id, {"rolled_back", "failed", "deployed"}), "rolled_back")
      << Status(id).dump(2);
  const auto first_rollback = QueryStore(
      "SELECT MIN(created) FROM deployments WHERE kind = 'rollback' AND release_id = '" + id + "'");
  ASSERT_EQ(first_rollback.size(), 1u);
  const auto rose_seconds =
      std::chrono::duration_cast<std::chrono::seconds>(rose.time_since_epoch()).count();
  const long long decided = std::stoll(first_rollback[0][0]);
  EXPECT_LE(decided - rose_seconds, 1 + 10) << "interval 1 s + 10 s";
  RecordProperty("rise_to_rollback_seconds", std::to_string(decided - rose_seconds));

  const json status = Status(id);
  EXPECT_EQ(Current(agents_[0]), fs::path("releases") / kV1);  // web-1 restored
  EXPECT_EQ(Current(agents_[1]), fs::path("releases") / kV1);  // wave 2 never started
  const json taken = Measurements(id, "error-ratio");
  ASSERT_FALSE(taken.empty());
  EXPECT_EQ(taken.back().value("outcome", ""), "fail") << taken.dump(2);
  EXPECT_DOUBLE_EQ(taken.back()["value"].get<double>(), 0.4) << taken.dump(2);
  EXPECT_NE(taken.back().value("detail", "").find("host=\"web-1\""), std::string::npos)
      << taken.dump(2);
  // The history's rollback names the check; the audit trail has its verdict.
  EXPECT_NE(Show(id).dump().find("check error-ratio failed"), std::string::npos)
      << Show(id).dump(2);
  const auto audited = QueryStore(
      "SELECT detail FROM audit_log WHERE action = 'rollout.check' AND object_id = '" + id + "'");
  ASSERT_EQ(audited.size(), 1u);
  EXPECT_NE(audited[0][0].find("\"verdict\":\"failed\""), std::string::npos) << audited[0][0];
  // The CLI shows the check and its values.
  auto shown = As(viewer_, {"release", "status", id});
  EXPECT_NE(shown.out.find("error-ratio"), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("0.4(fail)"), std::string::npos) << shown.out;
  // The release report charts every measurement (HTML) and lists them.
  auto html = As(viewer_, {"release", "export", id, "--doc", "release-report", "--format", "html"});
  ASSERT_EQ(html.exit_code, 0) << html.err;
  EXPECT_NE(html.out.find("id=\"chart-check-error-ratio\""), std::string::npos);
  EXPECT_NE(html.out.find(fmt::format("data-points=\"{}\"", taken.size())), std::string::npos)
      << html.out;
  auto md = As(viewer_, {"release", "export", id, "--doc", "release-report", "--format", "md"});
  ASSERT_EQ(md.exit_code, 0) << md.err;
  EXPECT_NE(md.out.find("## Checks on metrics"), std::string::npos) << md.out;
  EXPECT_NE(md.out.find("does not meet < 0.05"), std::string::npos) << md.out;
}

// Given a check whose series does not exist for the wave's hosts, the
// rollout pauses with the reason; a person's resume goes on past it.
TEST_F(MetricChecksE2eTest, AMissingSeriesPausesTheRolloutForAPerson) {
  ASSERT_NO_FATAL_FAILURE(AddAgents(2));
  const Package v1 = BuildAndUpload(kV1);
  SetRatios({{"other-host", 0.01}});
  golive_changes_ = {
      {"waves", {"1", "100%"}}, {"between_waves", "0"}, {"checks", {ErrorRatioCheck()}}};
  const std::string id = Release(v1);
  ASSERT_EQ(WaitForState(id, {"paused"}), "paused") << Status(id).dump(2);
  json status = Status(id);
  const std::string waiting = status.value("waiting", "");
  EXPECT_NE(waiting.find("check error-ratio inconclusive"), std::string::npos) << waiting;
  EXPECT_NE(waiting.find("no data"), std::string::npos) << waiting;
  EXPECT_EQ(status["rollout"].value("pause_kind", ""), "check") << status.dump(2);
  EXPECT_FALSE(fs::exists(agents_[1].app() / "current"));  // wave 2 did not start
  // It stays paused: the engine does not go on by itself.
  std::this_thread::sleep_for(2s);
  EXPECT_EQ(State(id), "paused");
  // The next wave's checks are measured again: here the series is there
  // (and scraped before the person resumes).
  SetRatios({{"web-1", 0.01}, {"web-2", 0.01}});
  ASSERT_NO_FATAL_FAILURE(WaitForSeries("web-2"));
  auto resumed = As(rm_, {"release", "resume", id, "--comment", "metric not exported yet"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  ASSERT_EQ(WaitForFinal(id), "deployed") << Status(id).dump(2);
  EXPECT_EQ(Current(agents_[1]), fs::path("releases") / kV1);
}

// Given a dry-run check whose condition fails, the release deploys as if
// it were not there, and its measurements and verdict are recorded.
TEST_F(MetricChecksE2eTest, ADryRunCheckRecordsAndChangesNothing) {
  ASSERT_NO_FATAL_FAILURE(AddAgents(2));
  const Package v1 = BuildAndUpload(kV1);
  SetRatios({{"web-1", 0.5}, {"web-2", 0.5}});
  ASSERT_NO_FATAL_FAILURE(WaitForSeries("web-1"));
  json check = ErrorRatioCheck();
  check["dry_run"] = true;
  check["count"] = 1;
  golive_changes_ = {{"waves", {"1", "100%"}},
                     {"between_waves", "3s"},
                     {"auto_rollback", true},
                     {"checks", {check}}};
  const std::string id = Release(v1);
  ASSERT_EQ(WaitForFinal(id), "deployed") << Status(id).dump(2);
  const json taken = Measurements(id, "error-ratio");
  ASSERT_GE(taken.size(), 1u) << Status(id).dump(2);
  EXPECT_EQ(taken[0].value("outcome", ""), "fail") << taken.dump(2);
  const auto audited = QueryStore(
      "SELECT detail FROM audit_log WHERE action = 'rollout.check' AND object_id = '" + id + "'");
  ASSERT_GE(audited.size(), 1u);
  EXPECT_NE(audited[0][0].find("\"dry_run\":true"), std::string::npos) << audited[0][0];
}

// Given an http check of the service's JSON (allowed by checks.allow), the
// release goes on while it holds; a rollout with a check to a URL not
// allowed does not start, naming checks.allow.
TEST_F(MetricChecksE2eTest, AnHttpCheckReadsJsonAndGoesOnlyWhereAllowed) {
  ASSERT_NO_FATAL_FAILURE(AddAgents(2));
  const Package v1 = BuildAndUpload(kV1);
  const Package v2 = BuildAndUpload(kV2);
  SetRatios({{"web-1", 0.01}, {"web-2", 0.02}});
  golive_changes_ = {
      {"waves", {"1", "100%"}},
      {"between_waves", "0"},
      {"checks",
       {{{"name", "stats"},
         {"type", "http"},
         {"url", fmt::format("http://127.0.0.1:{}/stats?release=$RELEASE", exporter_port_)},
         {"select", "$.errors.ratio"},
         {"condition", "<= 0.02"},
         {"interval", "1s"},
         {"count", 2}}}}};
  const std::string id = Release(v1);
  ASSERT_EQ(WaitForFinal(id), "deployed") << Status(id).dump(2);
  json taken = json::array();  // a request that failed (an error) is measured again
  for (const auto& m : Measurements(id, "stats")) {
    if (m.value("outcome", "") != "error") taken.push_back(m);
  }
  ASSERT_EQ(taken.size(), 4u) << taken.dump(2);  // 2 per wave
  EXPECT_EQ(taken[3].value("outcome", ""), "pass") << taken.dump(2);
  EXPECT_DOUBLE_EQ(taken[3]["value"].get<double>(), 0.02) << taken.dump(2);

  // A check to a URL config.json does not allow: the rollout does not start.
  golive_changes_["checks"][0]["url"] = fmt::format("http://127.0.0.1:{}/stats", prometheus_port_);
  const std::string refused = Scheduled(v2);
  auto started = As(rm_, {"release", "start", refused});
  EXPECT_NE(started.exit_code, 0);
  EXPECT_NE(started.err.find("check stats goes to http://127.0.0.1:"), std::string::npos)
      << started.err;
  EXPECT_NE(started.err.find("not under checks.allow in config.json"), std::string::npos)
      << started.err;
  EXPECT_EQ(State(refused), "scheduled");
}

}  // namespace
}  // namespace fabu::e2e
