// End to end: the real coordinator, real agents in their own
// temp roots, packages with hooks, releases walked by the real CLI.

#include <algorithm>
#include <cctype>
#include <fstream>
#include <limits>
#include <map>
#include <regex>
#include <tuple>

#include "tests/e2e/fleet.hpp"
#include "tests/support/agent_http.hpp"
#include "tests/support/closed_port.hpp"
#include "tests/support/test_store.hpp"

namespace fabu::e2e {
namespace {

using fabu::testing::ReadFile;
using fabu::testing::RunCommand;
using fabu::testing::WriteFile;
using Clock = std::chrono::steady_clock;

// The deployment row of `host` in `release hosts --json`.
json HostRow(const json& hosts, const std::string& host) {
  for (const auto& row : hosts) {
    if (row.value("host", "") == host) return row;
  }
  return json::object();
}

// `hosts list --json`: the current version of c3m-video on `host` ("" if none).
std::string InstalledOn(const json& hosts, const std::string& host) {
  for (const auto& h : hosts) {
    if (h.value("name", "") != host) continue;
    for (const auto& app : h.value("apps", json::array())) {
      if (app.value("name", "") == "c3m-video") return app.value("current", "");
    }
  }
  return "";
}

// Flips one byte in the middle of the payload member of the package tar,
// keeping its size; the file stays read-only as the coordinator left it.
void CorruptPayload(const fs::path& path) {
  const auto mode = fs::status(path).permissions();
  fs::permissions(path, mode | fs::perms::owner_write);
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(file) << path;
  const auto size = fs::file_size(path);
  std::uintmax_t at = 0;
  bool flipped = false;
  while (at + 512 <= size && !flipped) {
    char header[512];
    file.seekg(static_cast<std::streamoff>(at));
    file.read(header, sizeof header);
    const std::string name(header, strnlen(header, 100));
    if (name.empty()) break;
    const std::uintmax_t member = std::stoull(std::string(header + 124, 12), nullptr, 8);
    if (name.starts_with("payload.tar")) {
      const auto target = static_cast<std::streamoff>(at + 512 + member / 2);
      char byte = 0;
      file.seekg(target);
      file.read(&byte, 1);
      byte = static_cast<char>(byte ^ 0x5a);
      file.seekp(target);
      file.write(&byte, 1);
      flipped = true;
    }
    at += 512 + (member + 511) / 512 * 512;
  }
  file.close();
  fs::permissions(path, mode);
  ASSERT_TRUE(flipped) << "no payload member in " << path;
  ASSERT_EQ(fs::file_size(path), size);
}

// Rows of three columns (text, text, integer) read from the coordinator's
// database, read-only.
struct EventRows {
  std::vector<std::tuple<std::string, std::string, long long>> rows;
};

// By default (deployment, sequence, count) of every stored event.
EventRows StoredEvents(const fs::path& data,
                       const std::string& query =
                           "SELECT deployment, sequence, COUNT(*) FROM deployment_events "
                           "GROUP BY deployment, sequence ORDER BY deployment, sequence") {
  EventRows result;
  for (const auto& row : fabu::testing::StoreRows(data, query)) {
    EXPECT_EQ(row.size(), 3u) << query;
    if (row.size() != 3) continue;
    result.rows.emplace_back(row[0], row[1], std::atoll(row[2].c_str()));
  }
  return result;
}

class DeploymentE2eTest : public Fleet {};

// Given three agents and a package with hooks, `release start` should install
// it everywhere, switch `current`, run the hooks, and end the release deployed.
TEST_F(DeploymentE2eTest, APackageWithHooksGoesToAllThree) {
  ASSERT_NO_FATAL_FAILURE(AddAgents(3));
  const Package v1 = BuildAndUpload(kV1);
  const std::string id = Release(v1);
  ASSERT_EQ(WaitForFinal(id), "deployed") << HostsOf(id).dump(2);

  const json hosts = HostsOf(id);
  ASSERT_EQ(hosts.size(), 3u) << hosts.dump(2);
  for (const auto& agent : agents_) {
    const json row = HostRow(hosts, agent.name);
    EXPECT_EQ(row.value("step", ""), "succeeded") << row.dump(2);
    EXPECT_EQ(row.value("result", ""), "succeeded") << row.dump(2);
    EXPECT_EQ(Current(agent), fs::path("releases") / kV1) << agent.name;
    EXPECT_EQ(ReadFile(agent.app() / "current/etc/c3m-video.conf"),
              std::string("version=") + kV1 + "\n");
    EXPECT_EQ(ReadFile(agent.root / "activated"), std::string(kV1) + "\n") << agent.name;
    EXPECT_FALSE(fs::exists(agent.root / "rolled_back")) << agent.name;
    // The tree was written while the package was still arriving.
    EXPECT_TRUE(Contains(ReadFile(agent.log()),
                         "the tree was extracted into a private staging directory while the "
                         "package downloaded; nothing is activated before the signature"))
        << agent.name;
  }
  // Each agent reports its inventory after the deployment.
  json listed;
  EXPECT_TRUE(WaitFor([&] {
    listed = HostsList();
    return std::ranges::all_of(agents_,
                               [&](const Agent& a) { return InstalledOn(listed, a.name) == kV1; });
  })) << listed.dump(2);
}

// Given V1.0.0.1 on three hosts and V1.0.0.2 whose health check fails on
// web-2, we should see web-2 roll back to V1.0.0.1 and say so, the others on
// V1.0.0.2, and the release failed.
TEST_F(DeploymentE2eTest, AFailedHealthCheckRollsThatHostBack) {
  ASSERT_NO_FATAL_FAILURE(AddAgents(3));
  const Package v1 = BuildAndUpload(kV1);
  const Package v2 = BuildAndUpload(kV2);
  ASSERT_NO_FATAL_FAILURE(Deploy(v1));

  const Agent& sick = agents_[1];
  WriteFile(sick.apps() / "FAIL_HEALTH", std::string(kV2) + "\n");
  const std::string id = Release(v2);
  ASSERT_EQ(WaitForFinal(id), "failed") << HostsOf(id).dump(2);

  const json hosts = HostsOf(id);
  ASSERT_EQ(hosts.size(), 3u) << hosts.dump(2);
  for (const auto& agent : agents_) {
    const json row = HostRow(hosts, agent.name);
    if (agent.name == sick.name) {
      EXPECT_EQ(row.value("result", ""), "rolled_back") << row.dump(2);
      EXPECT_EQ(Current(agent), fs::path("releases") / kV1);
      // V1.0.0.1's rollback hook ran, leaving V1.0.0.2.
      EXPECT_EQ(ReadFile(agent.root / "rolled_back"), std::string(kV1) + " " + kV2 + "\n");
      // It said why: its failed step was the health check.
      const EventRows failed = StoredEvents(
          CoordinatorDir(),
          "SELECT message, failed_step, 1 FROM deployment_events WHERE deployment = '" +
              row.value("deployment", "") + "' AND step = 'failed'");
      ASSERT_EQ(failed.rows.size(), 1u);
      EXPECT_EQ(std::get<1>(failed.rows[0]), "health_checking");
      EXPECT_TRUE(Contains(std::get<0>(failed.rows[0]), "health_check"))
          << std::get<0>(failed.rows[0]);
      // What the health check printed is shown where people look: beside
      // the host in `release hosts` and `release status`, whole in
      // `release host R HOST`, and in the release report.
      constexpr char kReason[] = "database unreachable: db-1:5432 refused the connection";
      EXPECT_TRUE(Contains(row.value("output", ""), kReason)) << row.dump(2);
      auto table = As(viewer_, {"release", "hosts", id});
      ASSERT_EQ(table.exit_code, 0) << table.err;
      EXPECT_TRUE(Contains(table.out, std::string("output: connecting to db-1:5432 ... | ") +
                                          kReason + " | health check of " + kV2 +
                                          " failed: FAIL_HEALTH"))
          << table.out;
      auto status = As(viewer_, {"release", "status", id});
      ASSERT_EQ(status.exit_code, 0) << status.err;
      EXPECT_TRUE(Contains(status.out, std::string("output: ")) && Contains(status.out, kReason))
          << status.out;
      auto timeline = As(viewer_, {"release", "host", id, sick.name, "--json"});
      ASSERT_EQ(timeline.exit_code, 0) << timeline.err;
      const json t = json::parse(timeline.out);
      EXPECT_EQ(t.value("host", ""), sick.name);
      std::vector<std::string> steps;
      std::string failed_output;
      for (const auto& d : t["deployments"]) {
        if (d.value("environment", "") != "production" || d.value("kind", "") != "install") {
          continue;
        }
        for (const auto& e : d["events"]) {
          steps.push_back(e.value("step", ""));
          if (e.value("step", "") == "failed") failed_output = e.value("output", "");
        }
      }
      EXPECT_TRUE(Contains(failed_output, kReason)) << timeline.out;
      EXPECT_NE(std::ranges::find(steps, "health_checking"), steps.end()) << timeline.out;
      EXPECT_EQ(steps.back(), "rolled_back") << timeline.out;
      auto text = As(viewer_, {"release", "host", id, sick.name});
      ASSERT_EQ(text.exit_code, 0) << text.err;
      EXPECT_TRUE(Contains(text.out, std::string("      | ") + kReason)) << text.out;
      auto report = As(viewer_, {"release", "export", id, "--doc", "release-report"});
      ASSERT_EQ(report.exit_code, 0) << report.err;
      EXPECT_TRUE(Contains(report.out, "Hook output")) << report.out;
      EXPECT_TRUE(Contains(report.out, kReason)) << report.out;
      auto zh =
          As(viewer_, {"release", "export", id, "--doc", "release-report", "--lang", "zh-CN"});
      ASSERT_EQ(zh.exit_code, 0) << zh.err;
      EXPECT_TRUE(Contains(zh.out, "脚本输出")) << zh.out;
      auto unknown = As(viewer_, {"release", "host", id, "no-such-host"});
      EXPECT_NE(unknown.exit_code, 0);
      EXPECT_TRUE(Contains(unknown.err, "host no-such-host has no deployment of release " + id))
          << unknown.err;
    } else {
      EXPECT_EQ(row.value("result", ""), "succeeded") << row.dump(2);
      EXPECT_EQ(Current(agent), fs::path("releases") / kV2) << agent.name;
      EXPECT_FALSE(fs::exists(agent.root / "rolled_back")) << agent.name;
    }
  }
  json listed;
  EXPECT_TRUE(WaitFor([&] {
    listed = HostsList();
    return InstalledOn(listed, sick.name) == kV1 && InstalledOn(listed, agents_[0].name) == kV2 &&
           InstalledOn(listed, agents_[2].name) == kV2;
  })) << listed.dump(2);
}

// Given a package blob altered on the coordinator's disk after upload, every
// agent should refuse it before installing anything and stay on V1.0.0.1.
TEST_F(DeploymentE2eTest, AnAlteredBlobIsRefusedAtVerifyEverywhere) {
  ASSERT_NO_FATAL_FAILURE(AddAgents(3));
  const Package v1 = BuildAndUpload(kV1);
  const Package v2 = BuildAndUpload(kV2);
  ASSERT_NO_FATAL_FAILURE(Deploy(v1));

  const fs::path blob = CoordinatorDir() / "packages" / (v2.id + ".fabu");
  ASSERT_TRUE(fs::exists(blob)) << blob;
  ASSERT_NO_FATAL_FAILURE(CorruptPayload(blob));
  const std::string id = Release(v2);
  ASSERT_EQ(WaitForFinal(id), "failed") << HostsOf(id).dump(2);

  const json hosts = HostsOf(id);
  ASSERT_EQ(hosts.size(), 3u) << hosts.dump(2);
  for (const auto& agent : agents_) {
    const json row = HostRow(hosts, agent.name);
    EXPECT_EQ(row.value("result", ""), "failed") << row.dump(2);
    const std::string message = Lower(row.value("message", ""));
    EXPECT_TRUE(Contains(message, "sha-256") || Contains(message, "digest") ||
                Contains(message, "signature"))
        << row.dump(2);
    // Refused before installing: the failed step is the download's or the verify's.
    const EventRows failed =
        StoredEvents(CoordinatorDir(),
                     "SELECT failed_step, message, 1 FROM deployment_events WHERE deployment = '" +
                         row.value("deployment", "") + "' AND step = 'failed'");
    ASSERT_EQ(failed.rows.size(), 1u) << row.dump(2);
    const std::string failed_step = std::get<0>(failed.rows[0]);
    EXPECT_TRUE(failed_step == "verified" || failed_step == "downloading") << failed_step;
    RecordProperty(agent.name + "_refusal", failed_step + ": " + std::get<1>(failed.rows[0]));
    EXPECT_EQ(Current(agent), fs::path("releases") / kV1) << agent.name;
    EXPECT_FALSE(fs::exists(agent.app() / "releases" / kV2)) << agent.name;
    for (const auto& entry : fs::recursive_directory_iterator(agent.apps())) {
      EXPECT_FALSE(entry.path().filename().string().starts_with(".staging-")) << entry.path();
    }
    EXPECT_EQ(ReadFile(agent.root / "activated"), std::string(kV1) + "\n") << agent.name;
  }
}

// Given the coordinator killed while every agent is inside its activate hook
// and brought back on the same port 10 s later, the deployment should
// complete, and every event be stored once, numbered without a gap.
TEST_F(DeploymentE2eTest, ACoordinatorDownForTenSecondsLosesAndDuplicatesNothing) {
  constexpr auto kOutage = std::chrono::seconds(10);
  ASSERT_NO_FATAL_FAILURE(AddAgents(3));
  const Package v1 = BuildAndUpload(kV1);
  HoldEveryAgent();
  const std::string id = Release(v1);
  ASSERT_TRUE(AllHeld()) << AllAgentLogs();

  const int port = Port();
  ASSERT_NO_FATAL_FAILURE(KillCoordinator());
  const auto killed = Clock::now();
  for (const auto& agent : agents_) WriteFile(agent.apps() / "GO", "");
  // The agents finish on their own meanwhile (journaling what they cannot send).
  EXPECT_TRUE(WaitFor([&] {
    return std::ranges::all_of(
        agents_, [](const Agent& a) { return Contains(ReadFile(a.log()), ": succeeded"); });
  })) << AllAgentLogs();
  // The outage lasts its length, however fast the agents were.
  WaitFor([&] { return Clock::now() - killed >= kOutage; }, kOutage + std::chrono::seconds(1));

  ASSERT_NO_FATAL_FAILURE(StartCoordinator(port));
  ASSERT_EQ(WaitForFinal(id), "deployed") << HostsOf(id).dump(2);
  const json hosts = HostsOf(id);
  for (const auto& agent : agents_) {
    EXPECT_EQ(HostRow(hosts, agent.name).value("result", ""), "succeeded") << hosts.dump(2);
    EXPECT_EQ(Current(agent), fs::path("releases") / kV1) << agent.name;
  }

  // The production deployments' events (the test deployment's host reported once, by the test
  // host).
  const EventRows events = StoredEvents(
      CoordinatorDir(),
      "SELECT e.deployment, e.sequence, COUNT(*) FROM deployment_events e JOIN deployments d ON "
      "d.id = e.deployment WHERE d.environment = 'production' GROUP BY e.deployment, e.sequence "
      "ORDER BY e.deployment, e.sequence");
  std::map<std::string, std::vector<long long>> sequences;
  for (const auto& [deployment, sequence, count] : events.rows) {
    EXPECT_EQ(count, 1) << deployment << " #" << sequence << " stored " << count << " times";
    sequences[deployment].push_back(std::stoll(sequence));
  }
  ASSERT_EQ(sequences.size(), 3u);
  for (const auto& [deployment, numbers] : sequences) {
    for (std::size_t i = 0; i < numbers.size(); ++i) {
      EXPECT_EQ(numbers[i], static_cast<long long>(i + 1)) << deployment;
    }
  }
}

// Given a download cut halfway (the agent killed with a partial file), the
// restarted agent should resume it, fetching well under 1.5 × the package.
TEST_F(DeploymentE2eTest, ADownloadCutHalfwayResumes) {
  constexpr std::size_t kBlob = 32u << 20;
  ASSERT_NO_FATAL_FAILURE(AddAgents(1, "env=production,app=c3m-video", /*start=*/false));
  Agent& agent = agents_[0];
  // The agent talks to the coordinator through a relay that stops passing
  // the coordinator's bytes after 12 MiB: the download stalls part way.
  ThrottledRelay relay(Port());
  relay.SetBudget(12u << 20);
  ASSERT_NO_FATAL_FAILURE(
      EditConfig(agent, {{"server", "https://127.0.0.1:" + std::to_string(relay.port())}}));
  ASSERT_NO_FATAL_FAILURE(StartAgent(agent));
  const Package big = BuildAndUpload(kV1, kBlob);
  ASSERT_GT(big.size, kBlob);
  const std::string id = Release(big);

  const fs::path part = agent.data() / "downloads" / (big.id + ".part");
  std::uintmax_t have = 0;
  ASSERT_TRUE(WaitFor([&] {
    std::error_code ec;
    have = fs::file_size(part, ec);
    return !ec && have >= (4u << 20);
  })) << AllAgentLogs();
  agent.process->Kill();
  have = fs::file_size(part);
  ASSERT_GT(have, 0u);
  ASSERT_LT(have, big.size);

  relay.SetBudget(std::numeric_limits<std::uint64_t>::max());
  ASSERT_NO_FATAL_FAILURE(StartAgent(agent));
  ASSERT_EQ(WaitForFinal(id), "deployed") << HostsOf(id).dump(2);
  EXPECT_EQ(Current(agent), fs::path("releases") / kV1);
  EXPECT_FALSE(fs::exists(part));

  const std::string log = ReadFile(agent.log());
  std::smatch match;
  ASSERT_TRUE(std::regex_search(log, match, std::regex("resuming at byte ([0-9]+)"))) << log;
  EXPECT_EQ(std::stoull(match[1]), have);
  // The restarted agent extracted as the rest arrived, after clearing what
  // the killed one had begun.
  EXPECT_TRUE(Contains(log, "staging directory while the package downloaded")) << log;
  for (const auto& entry : fs::directory_iterator(agent.app())) {
    EXPECT_FALSE(entry.path().filename().string().starts_with(".")) << entry.path();
  }
  RecordProperty("package_bytes", std::to_string(big.size));
  RecordProperty("resumed_at", std::to_string(have));
  RecordProperty("served_bytes", std::to_string(relay.served()));
  EXPECT_LT(static_cast<double>(relay.served()), 1.5 * static_cast<double>(big.size))
      << relay.served() << " bytes served for a package of " << big.size;
}

// Given two coordinator URLs of which the first is a closed port (a
// coordinator that is down), `enroll` should enroll through the second and
// keep both; the running agent should move to the second and install the
// release it is given.
TEST_F(DeploymentE2eTest, AnAgentWhoseFirstCoordinatorIsDownEnrollsAndDeploysThroughTheNext) {
  const std::string dead = "https://127.0.0.1:" + std::to_string(fabu::testing::ClosedPort());
  enroll_servers_ = {dead};
  ASSERT_NO_FATAL_FAILURE(AddAgents(1));
  const Agent& agent = agents_[0];
  const json config = json::parse(ReadFile(agent.data() / "agent.json"));
  EXPECT_EQ(config["servers"], json::array({dead, Url()})) << config.dump(2);

  const Package v1 = BuildAndUpload(kV1);
  ASSERT_NO_FATAL_FAILURE(Deploy(v1));
  EXPECT_EQ(Current(agent), fs::path("releases") / kV1);
  EXPECT_EQ(ReadFile(agent.root / "activated"), std::string(kV1) + "\n");
  const std::string log = ReadFile(agent.log());
  EXPECT_TRUE(Contains(log, "coordinator " + dead + " unreachable (")) << log;
  EXPECT_TRUE(Contains(log, "moving to " + Url())) << log;
}

// Given an agent whose first coordinator URL is an address that goes away
// (a relay in front of the coordinator, closed with its connections while
// the agent long-polls) and whose second is the coordinator's own, the
// agent should move to the second and take the next release there.
TEST_F(DeploymentE2eTest, WhenTheCoordinatorAnAgentTalksToGoesAwayItMovesToTheNext) {
  ASSERT_NO_FATAL_FAILURE(AddAgents(1, "env=production,app=c3m-video", /*start=*/false));
  Agent& agent = agents_[0];
  auto relay = std::make_unique<ThrottledRelay>(Port());
  const std::string first = "https://127.0.0.1:" + std::to_string(relay->port());
  ASSERT_NO_FATAL_FAILURE(
      EditConfig(agent, {{"server", nullptr}, {"servers", json::array({first, Url()})}}));
  ASSERT_NO_FATAL_FAILURE(StartAgent(agent));
  const Package v1 = BuildAndUpload(kV1);
  ASSERT_NO_FATAL_FAILURE(Deploy(v1));
  EXPECT_FALSE(Contains(ReadFile(agent.log()), "moving to")) << ReadFile(agent.log());
  ASSERT_GT(relay->served(), 0u);  // v1 came through the first address

  relay.reset();  // the first address is gone, its connections closed
  const auto gone = Clock::now();
  ASSERT_TRUE(WaitFor([&] { return Contains(ReadFile(agent.log()), "moving to " + Url()); }))
      << ReadFile(agent.log());
  // Within the backoff (1 s here) and the time to notice, not a long-poll's.
  EXPECT_LT(Clock::now() - gone, std::chrono::seconds(5));
  const Package v2 = BuildAndUpload(kV2);
  ASSERT_NO_FATAL_FAILURE(Deploy(v2));
  EXPECT_EQ(Current(agent), fs::path("releases") / kV2);
  EXPECT_TRUE(Contains(ReadFile(agent.log()), "coordinator " + first + " unreachable ("))
      << ReadFile(agent.log());
}

// Given agent X (a test host of another app, never assigned anything) and
// agent Y deploying a package, X's credential should be refused (403) on Y's
// package and on Y's deployment's events.
TEST_F(DeploymentE2eTest, OneAgentsCredentialIsRefusedForAnother) {
  ASSERT_NO_FATAL_FAILURE(AddAgents(1));
  ASSERT_NO_FATAL_FAILURE(AddAgents(1, "env=test,app=c3m-web", /*start=*/true, "test-"));
  const Agent& y = agents_[0];
  const Agent& x = agents_[1];
  const Package v1 = BuildAndUpload(kV1);
  const std::string id = Release(v1);
  std::string deployment;
  ASSERT_TRUE(WaitFor([&] {
    deployment = HostRow(HostsOf(id), y.name).value("deployment", "");
    return !deployment.empty();
  }));

  // Each as the agent itself: its own certificate and credential.
  fabu::testing::AgentHttpClient as_x(Url(), Ca(), x.data() / "client.pem");
  fabu::testing::AgentHttpClient as_y(Url(), Ca(), y.data() / "client.pem");
  auto http = [&](const Agent& as, const std::string& method, const std::string& path,
                  const std::string& body = "") {
    return (&as == &x ? as_x : as_y).Request(method, path, Credential(as), body).status;
  };
  const std::string package_path = "/api/v1/agent/packages/" + v1.id;
  EXPECT_EQ(http(x, "GET", package_path), 403);
  EXPECT_EQ(http(y, "GET", package_path), 200);
  const json event = {{"events",
                       {{{"deployment", deployment},
                         {"sequence", 99},
                         {"step", "failed"},
                         {"failed_step", "downloading"},
                         {"app", kApp},
                         {"version", kV1},
                         {"message", "forged"},
                         {"output", ""},
                         {"time", "2026-11-20T00:00:00Z"}}}}};
  EXPECT_EQ(http(x, "POST", "/api/v1/agent/events", event.dump()), 403);

  // Y's deployment is untouched by the attempt and completes.
  ASSERT_EQ(WaitForFinal(id), "deployed") << HostsOf(id).dump(2);
  EXPECT_EQ(Current(y), fs::path("releases") / kV1);
  EXPECT_FALSE(fs::exists(x.app() / "current"));
}

}  // namespace
}  // namespace fabu::e2e
