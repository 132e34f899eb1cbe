// GET /metrics of a coordinator with real agents, read with Prometheus' own
// parser (Debian's python3-prometheus-client, hence /usr/bin/python3), as a
// scraper would.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/e2e/fleet.hpp"
#include "tests/support/agent_http.hpp"
#include "tests/support/run_command.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_store.hpp"
#include "tests/support/wait.hpp"

namespace fabu::e2e {
namespace {

using nlohmann::json;

// Every sample of an exposition as Prometheus' Python client parses it:
// {"name{label="value",...}": value}, labels sorted. A text it cannot parse
// fails the test.
std::map<std::string, double> ParseExposition(const std::string& text) {
  static const char* kScript = R"(
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join('%s="%s"' % (k, v) for k, v in sorted(s.labels.items()))
        out["%s{%s}" % (s.name, labels)] = s.value
print(json.dumps(out))
)";
  const auto parsed = fabu::testing::RunCommand({"/usr/bin/python3", "-c", kScript}, text);
  EXPECT_EQ(parsed.exit_code, 0) << parsed.err << "\n" << text;
  std::map<std::string, double> samples;
  const json j = json::parse(parsed.out, nullptr, false);
  if (j.is_object()) {
    for (const auto& [key, value] : j.items()) samples[key] = value.get<double>();
  }
  return samples;
}

class MetricsE2eTest : public Fleet {
 protected:
  fabu::testing::HttpReply Scrape(const std::string& token) {
    fabu::testing::AgentHttpClient client(Url(), Ca());
    return client.Request("GET", "/metrics", token);
  }
};

TEST_F(MetricsE2eTest, AScraperReadsRequestsReleasesDeploymentsAndHosts) {
  // Without a token: refused (config.json "metrics_public" is false).
  EXPECT_EQ(Scrape("").status, 401);

  ASSERT_NO_FATAL_FAILURE(AddAgents(2));
  const Package v1 = BuildAndUpload(kV1);
  const std::string id = Release(v1);
  ASSERT_EQ(WaitForFinal(id), "deployed") << HostsOf(id).dump(2);
  fabu::testing::AgentHttpClient other(Url(), Ca());
  EXPECT_EQ(other.Request("GET", "/no/such/route", viewer_).status, 404);

  const auto reply = Scrape(viewer_);
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_NE(reply.headers.find("text/plain; version=0.0.4"), std::string::npos) << reply.headers;
  const auto samples = ParseExposition(reply.body);
  auto value = [&](const std::string& key) {
    auto it = samples.find(key);
    EXPECT_NE(it, samples.end()) << key << " is not in\n" << reply.body;
    return it == samples.end() ? -1.0 : it->second;
  };

  EXPECT_EQ(value("fabu_releases{state=\"deployed\"}"), 1);
  EXPECT_EQ(
      value("fabu_deployments{environment=\"production\",kind=\"install\",result=\"succeeded\","
            "step=\"succeeded\"}"),
      2);
  EXPECT_EQ(value("fabu_hosts_enrolled{}"), 2);
  EXPECT_EQ(value("fabu_hosts_seen_recently{}"), 2);
  // The agents wait for work in long polls (at least one is parked now or soon).
  EXPECT_GE(value("fabu_agent_long_polls{}"), 0);
  EXPECT_EQ(value("fabu_outbox_oldest_undelivered_age_seconds{}"), 0);
  // The server's own figures: this scrape's connection at least; both agents' downloads done.
  EXPECT_GE(value("fabu_connections_open{}"), 1);
  EXPECT_EQ(value("fabu_package_downloads_in_flight{}"), 0);
  EXPECT_EQ(value("fabu_package_downloads_queued{}"), 0);
  EXPECT_GE(value("fabu_package_bytes_sent_total{}"), 2.0 * static_cast<double>(v1.size));
  // Requests by route pattern, never by path: the agents' polls and events...
  EXPECT_GE(value("fabu_http_requests_total{method=\"GET\",route=\"/api/v1/agent/assignment\","
                  "status=\"200\"}"),
            2);
  EXPECT_GE(value("fabu_http_requests_total{method=\"POST\",route=\"/api/v1/agent/events\","
                  "status=\"200\"}"),
            2);
  EXPECT_GE(value("fabu_http_requests_total{method=\"GET\",route=\"/api/v1/releases/{id}\","
                  "status=\"200\"}"),
            1);
  EXPECT_EQ(value("fabu_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"}"),
            1);
  EXPECT_GE(value("fabu_http_request_duration_seconds_count{route=\"/api/v1/agent/events\"}"), 2);
  // The store's group commits: the release's writes went through them.
  EXPECT_GE(value("fabu_store_commit_duration_seconds_count{}"), 10);
  EXPECT_EQ(value("fabu_store_commit_writes_count{}"),
            value("fabu_store_commit_duration_seconds_count{}"));
  EXPECT_GE(value("fabu_store_commit_writes_sum{}"), value("fabu_store_commit_writes_count{}"));
  // Both agents enrolled, and the QA host the fleet passed the release's
  // test deployment on; the refused enrollment below is counted apart.
  EXPECT_EQ(value("fabu_enrollments_total{result=\"enrolled\"}"), 3);
  EXPECT_EQ(value("fabu_enrollments_total{result=\"refused\"}"), 0);
  // The daemon checked the whole audit chain at start.
  EXPECT_EQ(value("fabu_audit_chain_intact{}"), 1);
  EXPECT_GT(value("fabu_audit_chain_last_check_timestamp_seconds{}"), 1.7e9);
  // ...and the build.
  bool build = false;
  for (const auto& [key, v] : samples) {
    if (key.starts_with("fabu_build_info{commit=") && v == 1) build = true;
  }
  EXPECT_TRUE(build) << reply.body;
  // No sample carries a host's or a release's path.
  EXPECT_EQ(reply.body.find("/api/v1/releases/R-"), std::string::npos) << reply.body;

  // An enrollment with a token nobody issued is counted as refused.
  const auto refused =
      other.Request("POST", "/api/v1/agent/enroll", "",
                    R"({"token":"fabu-enroll-nobody-issued-this","name":"web-9"})");
  EXPECT_GE(refused.status, 400) << refused.body;
  const auto after = ParseExposition(Scrape(viewer_).body);
  EXPECT_EQ(after.count("fabu_enrollments_total{result=\"refused\"}"), 1u);
  if (after.count("fabu_enrollments_total{result=\"refused\"}") == 1) {
    EXPECT_EQ(after.at("fabu_enrollments_total{result=\"refused\"}"), 1);
  }
}

// Given an audit entry rewritten in the store while the coordinator was
// stopped, the coordinator's check at start finds it: /metrics says the
// chain is broken (what the shipped alert FabuAuditChainBroken watches) and
// the log names the entry.
TEST_F(MetricsE2eTest, AnAuditEntryRewrittenInTheStoreIsFoundAtStartAndShownAsBroken) {
  ASSERT_NO_FATAL_FAILURE(AddAgents(1));
  ASSERT_EQ(StopCoordinator(), 0);
  const auto rows = QueryStore("SELECT MAX(seq) FROM audit_log");
  ASSERT_EQ(rows.size(), 1u);
  const std::string seq = rows[0][0];
  // As someone with access to the database would (SQLite's file or the
  // PostgreSQL database).
  fabu::testing::StoreExec(CoordinatorDir(),
                           "UPDATE audit_log SET actor = 'mallory' WHERE seq = " + seq);
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());

  std::map<std::string, double> samples;
  const bool seen = fabu::testing::WaitUntil(
      [&] {
        samples = ParseExposition(Scrape(viewer_).body);
        return samples.count("fabu_audit_chain_intact{}") == 1;
      },
      std::chrono::seconds(20), std::chrono::milliseconds(250));
  ASSERT_TRUE(seen) << "no audit check within 20 s of the start";
  EXPECT_EQ(samples["fabu_audit_chain_intact{}"], 0);
  EXPECT_EQ(samples["fabu_audit_chain_verified_seq{}"], std::stod(seq) - 1);
  // The same finding as the console's audit page shows it, without a check
  // of the whole chain.
  fabu::testing::AgentHttpClient api(Url(), Ca());
  const auto watch_reply = api.Request("GET", "/api/v1/audit/watch", viewer_);
  ASSERT_EQ(watch_reply.status, 200) << watch_reply.body;
  const json watch = json::parse(watch_reply.body);
  EXPECT_EQ(watch.value("checked", false), true) << watch.dump();
  EXPECT_EQ(watch.value("intact", true), false) << watch.dump();
  EXPECT_EQ(watch.value("verified_seq", 0), std::stoll(seq) - 1) << watch.dump();
  EXPECT_NE(watch.value("reason", "").find("entry " + seq), std::string::npos) << watch.dump();
  EXPECT_EQ(watch.value("every_seconds", 0), 60) << watch.dump();
  const std::string log = CoordinatorLog();
  EXPECT_NE(log.find("the audit chain is broken: entry " + seq + ": its content does not match"),
            std::string::npos)
      << log;
}

// Debian's Prometheus scrapes the coordinator as an operator would set it
// up (TLS with the coordinator's CA, a viewer's token), with the shipped
// alert rules loaded, while a release waits at a control point; every rule
// evaluates without error and every expression of the rules and the shipped
// Grafana dashboard is one Prometheus accepts and names only metrics the
// coordinator exposes (tests/e2e/prometheus_check.py).
TEST_F(MetricsE2eTest, PrometheusScrapesTheCoordinatorAndEveryShippedRuleAndPanelEvaluates) {
  ASSERT_TRUE(fs::exists("/usr/bin/prometheus") && fs::exists("/usr/bin/promtool"))
      << "Debian's prometheus is not installed (scripts/bootstrap installs it)";
  ASSERT_NO_FATAL_FAILURE(AddAgents(2));
  const Package v1 = BuildAndUpload(kV1);
  golive_changes_ = {{"waves", {"1", "100%"}}, {"between_waves", "gate"}};
  const std::string id = Release(v1);
  json status;
  ASSERT_TRUE(WaitFor([&] {
    status = Status(id);
    return status.value("waiting", "").find("control point after wave 1") != std::string::npos;
  })) << status.dump(2);

  fabu::testing::TempDir work;
  const std::string source = FABU_SOURCE_DIR;
  const auto run = fabu::testing::RunCommand(
      {"/usr/bin/python3", source + "/tests/e2e/prometheus_check.py", "--target",
       Url().substr(std::string("https://").size()), "--ca", Ca().string(), "--token", viewer_,
       "--rules", source + "/docs/ops/prometheus-alerts.yml", "--dashboard",
       source + "/docs/ops/grafana-dashboard.json", "--workdir", work.path().string(), "--release",
       id},
      {}, std::chrono::seconds(240));
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err << "\n"
                              << (fs::exists(work.path() / "prometheus.log")
                                      ? fabu::testing::ReadFile(work.path() / "prometheus.log")
                                      : std::string());
  EXPECT_NE(run.out.find("ok: "), std::string::npos) << run.out;
}

TEST_F(MetricsE2eTest, AnAgentWritesItsStateForNodeExportersTextfileCollector) {
  ASSERT_NO_FATAL_FAILURE(AddAgents(1));
  const std::string id = Release(BuildAndUpload(kV1));
  ASSERT_EQ(WaitForFinal(id), "deployed") << HostsOf(id).dump(2);
  const Agent& agent = agents_.front();
  const auto status =
      fabu::testing::RunCommand({AgentBinary(), "status", "--data", agent.data().string(),
                                 "--apps-root", agent.apps().string(), "--prometheus"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  const auto samples = ParseExposition(status.out);
  auto value = [&](const std::string& key) {
    auto it = samples.find(key);
    EXPECT_NE(it, samples.end()) << key << " is not in\n" << status.out;
    return it == samples.end() ? -1.0 : it->second;
  };
  EXPECT_EQ(value("fabu_agent_app_installed_info{app=\"c3m-video\",version=\"V1.0.0.1\"}"), 1);
  EXPECT_EQ(value("fabu_agent_app_releases_kept{app=\"c3m-video\"}"), 1);
  bool last = false;
  for (const auto& [key, v] : samples) {
    if (key.starts_with("fabu_agent_last_deployment_info{app=\"c3m-video\"") &&
        key.find("kind=\"install\",outcome=\"succeeded\",version=\"V1.0.0.1\"") !=
            std::string::npos &&
        v == 1) {
      last = true;
    }
  }
  EXPECT_TRUE(last) << status.out;
  EXPECT_GE(value("fabu_agent_events_unreported{}"), 0);
  EXPECT_GT(value("fabu_agent_journal_updated_timestamp_seconds{}"), 1.7e9);
}

}  // namespace
}  // namespace fabu::e2e
