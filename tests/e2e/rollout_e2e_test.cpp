// End-to-end tests of the rollout engine: the real coordinator,
// real agents each in its own temp root, waves, thresholds, fleet rollback,
// gates, windows, freezes and a coordinator killed mid-wave, all driven by
// the real fabu CLI.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <map>
#include <sstream>
#include <string>

#include "tests/e2e/fleet.hpp"
#include "tests/support/run_command.hpp"

namespace fabu::e2e {
namespace {

using fabu::testing::ReadFile;
using fabu::testing::WriteFile;
using namespace std::chrono_literals;

class RolloutE2eTest : public Fleet {
 protected:
  const json& HostIn(const json& status, const std::string& host) {
    for (const auto& h : status["hosts"]) {
      if (h.value("host", "") == host) return h;
    }
    static const json kNone = json::object();
    return kNone;
  }

  // Install deployments per host of `release`: every host at most once.
  void ExpectNoHostAssignedTwice(const std::string& release) {
    const auto rows =
        QueryStore("SELECT host, COUNT(*) FROM deployments WHERE release_id = '" + release +
                   "' AND kind = 'install' AND environment = 'production' GROUP BY host");
    for (const auto& row : rows) EXPECT_EQ(row[1], "1") << release << " assigned " << row[0];
  }
};

// Given V1.0.0.1 on six hosts and waves 1, 50%, 100% with no failure
// tolerated and auto_rollback, and V1.0.0.2 failing its health check on
// web-2 (wave 2): the rollout halts after wave 2, web-1 and web-3 (which had
// moved) are told to restore V1.0.0.1, web-2 rolled back itself, wave 3 is
// never assigned, and the release ends rolled_back.
TEST_F(RolloutE2eTest, AWaveOverItsThresholdRollsEveryMovedHostBack) {
  ASSERT_NO_FATAL_FAILURE(AddAgents(6));
  const Package v1 = BuildAndUpload(kV1);
  const Package v2 = BuildAndUpload(kV2);
  ASSERT_NO_FATAL_FAILURE(Deploy(v1));

  golive_changes_ = {{"waves", {"1", "50%", "100%"}},
                     {"max_failures", "0"},
                     {"between_waves", "0"},
                     {"auto_rollback", true}};
  WriteFile(agents_[1].apps() / "FAIL_HEALTH", std::string(kV2) + "\n");
  const std::string id = Release(v2);
  ASSERT_EQ(WaitForState(id, {"rolled_back", "failed", "deployed"}, 120s), "rolled_back")
      << Status(id).dump(2);

  const json status = Status(id);
  ASSERT_EQ(status["waves"].size(), 3u) << status.dump(2);
  EXPECT_EQ(status["waves"][0].value("state", ""), "succeeded");
  EXPECT_EQ(status["waves"][1].value("state", ""), "failed");
  EXPECT_EQ(status["waves"][1].value("failed", 0), 1);
  EXPECT_EQ(status["waves"][2].value("state", ""), "pending");
  for (const char* host : {"web-1", "web-3"}) {
    const json& h = HostIn(status, host);
    EXPECT_EQ(h.value("result", ""), "succeeded") << h.dump(2);
    ASSERT_TRUE(h.contains("rollback")) << h.dump(2);
    EXPECT_EQ(h["rollback"].value("result", ""), "rolled_back") << h.dump(2);
  }
  EXPECT_EQ(HostIn(status, "web-2").value("result", ""), "rolled_back");
  EXPECT_FALSE(HostIn(status, "web-2").contains("rollback"));
  for (const char* host : {"web-4", "web-5", "web-6"}) {
    EXPECT_EQ(HostIn(status, host).value("step", ""), "pending") << host;
  }
  // Every host is back on (or never left) V1.0.0.1, and the CMDB's view of
  // the hosts (what the agents report) says so.
  for (const auto& agent : agents_) {
    EXPECT_EQ(Current(agent), fs::path("releases") / kV1) << agent.name;
  }
  // The moved hosts ran V1.0.0.1's rollback hook when leaving V1.0.0.2.
  EXPECT_EQ(ReadFile(agents_[0].root / "rolled_back"), std::string(kV1) + " " + kV2 + "\n");
  // The rollback is the coordinator's own act (role system, never a
  // person's admin), with the rule that fired.
  int rollbacks = 0;
  const json history = Show(id)["history"];
  for (const json& h : history) {
    if (h["action"] != "rollback" && h["action"] != "finish-rollback") continue;
    ++rollbacks;
    EXPECT_EQ(h["actor"], "fabu-coordinator") << h.dump();
    EXPECT_EQ(h["role"], "system") << h.dump();
    if (h["action"] == "rollback") {
      EXPECT_TRUE(Contains(h["note"].get<std::string>(), "auto_rollback")) << h.dump();
    }
  }
  EXPECT_EQ(rollbacks, 2);
  // The release report: a moved host's result and its rollback, each once,
  // in the reader's language.
  auto report_md = As(viewer_, {"release", "export", id, "--doc", "release-report"});
  ASSERT_EQ(report_md.exit_code, 0) << report_md.err;
  EXPECT_TRUE(Contains(report_md.out, "| Succeeded | Rolled back |")) << report_md.out;
  EXPECT_FALSE(Contains(report_md.out, "rolled_back rolled_back")) << report_md.out;
  auto zh = As(viewer_, {"release", "export", id, "--doc", "release-report", "--lang", "zh-CN"});
  ASSERT_EQ(zh.exit_code, 0) << zh.err;
  EXPECT_TRUE(Contains(zh.out, "| 成功 | 已回退 |")) << zh.out;
  json listed;
  EXPECT_TRUE(WaitFor([&] {
    listed = HostsList();
    return std::ranges::all_of(agents_, [&](const Agent& a) {
      for (const auto& h : listed) {
        if (h.value("name", "") != a.name) continue;
        for (const auto& app : h.value("apps", json::array())) {
          if (app.value("name", "") == kApp) return app.value("current", "") == kV1;
        }
      }
      return false;
    });
  })) << listed.dump(2);
  ExpectNoHostAssignedTwice(id);
  // The upgrade record table says what each host went through.
  std::map<std::string, std::string> records;  // host/kind -> from>to:result
  for (const auto& row : QueryStore("SELECT host, kind, from_version, to_version, result FROM "
                                    "upgrade_records WHERE release_id = '" +
                                    id + "'")) {
    records[row[0] + "/" + row[1]] = row[2] + ">" + row[3] + ":" + row[4];
  }
  const std::string up = std::string(kV1) + ">" + kV2;
  const std::string down = std::string(kV2) + ">" + kV1;
  EXPECT_EQ(records["web-1/install"], up + ":succeeded");
  EXPECT_EQ(records["web-1/rollback"], down + ":rolled_back");
  EXPECT_EQ(records["web-2/install"], up + ":rolled_back");
  EXPECT_EQ(records["web-3/rollback"], down + ":rolled_back");
  EXPECT_EQ(records.size(), 5u);  // web-1, web-3: install + rollback; web-2: install
  const json shown = Show(id);
  const json& last = shown["history"].back();
  EXPECT_EQ(last.value("action", ""), "finish-rollback");
  EXPECT_EQ(last.value("note", ""), "2 host(s) restored to their previous release");

  // Closed as rolled back, the release report (发布报告) tells it wave by
  // wave, and the month's report counts the rollback.
  auto closed = As(rm_, {"release", "close", id, "--notes", "health check of V1.0.0.2"});
  ASSERT_EQ(closed.exit_code, 0) << closed.err;
  EXPECT_NE(closed.out.find("closed: rolled_back"), std::string::npos) << closed.out;
  auto report =
      As(viewer_, {"release", "export", id, "--doc", "release-report", "--format", "json"});
  ASSERT_EQ(report.exit_code, 0) << report.err;
  const json doc = json::parse(report.out, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << report.out;
  EXPECT_EQ(doc.value("close_code", ""), "rolled_back") << report.out;
  ASSERT_EQ(doc["waves"].size(), 3u) << report.out;
  EXPECT_EQ(doc["waves"][1].value("failed", 0), 1);
  EXPECT_EQ(doc["hosts"].size(), 6u);
  EXPECT_EQ(doc["cmdb"]["upgrade_records"].size(), 5u);
  auto html = As(viewer_, {"release", "export", id, "--doc", "release-report", "--format", "html"});
  ASSERT_EQ(html.exit_code, 0) << html.err;
  EXPECT_NE(html.out.find("<svg"), std::string::npos);
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  const std::time_t shanghai = now + 8 * 3600;  // Asia/Shanghai has no DST
  gmtime_r(&shanghai, &local);
  char month[8];
  std::strftime(month, sizeof month, "%Y-%m", &local);
  auto kpis = As(viewer_, {"report", "--month", month, "--format", "json"});
  ASSERT_EQ(kpis.exit_code, 0) << kpis.err;
  const json period = json::parse(kpis.out, nullptr, false);
  EXPECT_EQ(period.value("rollbacks", -1), 1) << kpis.out;
}

// Given between_waves "gate", the rollout stops after wave 1 until an
// approver confirms; nobody else is assigned meanwhile.
TEST_F(RolloutE2eTest, AGateHoldsTheNextWaveUntilConfirmed) {
  ASSERT_NO_FATAL_FAILURE(AddAgents(3));
  const Package v1 = BuildAndUpload(kV1);
  golive_changes_ = {{"waves", {"1", "100%"}}, {"between_waves", "gate"}};
  const std::string id = Release(v1);

  // `status --watch` (plain lines: not a terminal here) follows the rollout
  // and stops at the control point, saying so with exit status 4.
  auto watched = As(viewer_, {"release", "status", id, "--watch", "--interval", "0.5"});
  EXPECT_EQ(watched.exit_code, 4) << watched.out << watched.err;
  EXPECT_TRUE(Contains(watched.out, id + " deploying | wave 1 ")) << watched.out;
  EXPECT_TRUE(Contains(watched.out, id + " needs a decision: control point after wave 1"))
      << watched.out;
  EXPECT_FALSE(Contains(watched.out, "\x1b[")) << "no terminal codes when not on a terminal";
  auto both = As(viewer_, {"release", "status", id, "--watch", "--json"});
  EXPECT_EQ(both.exit_code, 2) << both.err;

  json status;
  ASSERT_TRUE(WaitFor([&] {
    status = Status(id);
    return Contains(status.value("waiting", ""), "control point after wave 1");
  })) << status.dump(2);
  EXPECT_EQ(status.value("state", ""), "deploying");
  EXPECT_EQ(status["waves"][1].value("state", ""), "pending");
  EXPECT_EQ(HostIn(status, "web-2").value("step", ""), "pending");
  EXPECT_EQ(Current(agents_[1]), fs::path());

  // A tester may not pass it; the flag is required.
  EXPECT_NE(As(tester_, {"release", "gate", id, "--confirm"}).exit_code, 0);
  EXPECT_NE(As(wang_, {"release", "gate", id}).exit_code, 0);
  auto passed = As(wang_, {"release", "gate", id, "--confirm", "--comment", "dashboards green"});
  ASSERT_EQ(passed.exit_code, 0) << passed.err;
  // Watched again, it ends when the release is deployed: exit status 0.
  auto to_the_end = As(viewer_, {"release", "status", id, "--watch", "--interval", "0.5"});
  EXPECT_EQ(to_the_end.exit_code, 0) << to_the_end.out << to_the_end.err;
  EXPECT_TRUE(Contains(to_the_end.out, id + " is deployed")) << to_the_end.out;
  ASSERT_EQ(WaitForFinal(id), "deployed") << Status(id).dump(2);
  for (const auto& agent : agents_) {
    EXPECT_EQ(Current(agent), fs::path("releases") / kV1) << agent.name;
  }
  bool gated = false;
  const json shown = Show(id);
  for (const auto& h : shown["history"]) {
    gated |= h.value("action", "") == "gate" && h.value("actor", "") == "wang.approver" &&
             h.value("note", "") == "dashboards green";
  }
  EXPECT_TRUE(gated) << shown["history"].dump(2);
  // Passing a gate that is not waiting is refused.
  EXPECT_NE(As(wang_, {"release", "gate", id, "--confirm"}).exit_code, 0);
}

// Given a window that closes while the rollout waits between waves, it
// pauses with that reason; a new window lets it finish.
TEST_F(RolloutE2eTest, AClosedWindowPausesTheRolloutUntilANewOne) {
  ASSERT_NO_FATAL_FAILURE(AddAgents(3));
  const Package v1 = BuildAndUpload(kV1);
  golive_changes_ = {
      {"window", {{"start", UtcIn(-1h)}, {"end", UtcIn(20s)}}},
      {"waves", {"1", "100%"}},
      {"between_waves", "30s"},
  };
  const std::string id = Release(v1);
  ASSERT_EQ(WaitForState(id, {"paused", "deployed", "failed"}, 60s), "paused")
      << Status(id).dump(2);
  const json status = Status(id);
  EXPECT_TRUE(Contains(status.value("waiting", ""), "window")) << status.dump(2);
  EXPECT_EQ(status["waves"][0].value("state", ""), "succeeded");
  EXPECT_EQ(HostIn(status, "web-3").value("step", ""), "pending");

  // Resuming by hand inside no window would start nothing: a new window is needed.
  auto moved = As(rm_, {"release", "reschedule", id, "--start", UtcIn(-1min), "--end", UtcIn(1h)});
  ASSERT_EQ(moved.exit_code, 0) << moved.err;
  ASSERT_EQ(WaitForFinal(id), "deployed") << Status(id).dump(2);
  for (const auto& agent : agents_) {
    EXPECT_EQ(Current(agent), fs::path("releases") / kV1) << agent.name;
  }
}

// Given observe 10s, a host whose health check starts failing while it is
// observed fails (and rolls back), trips the threshold, and leaves an
// incident against the release.
TEST_F(RolloutE2eTest, AFailureWhileObservedFailsTheHostAndRecordsAnIncident) {
  ASSERT_NO_FATAL_FAILURE(AddAgents(2));
  const Package v1 = BuildAndUpload(kV1);
  const Package v2 = BuildAndUpload(kV2);
  ASSERT_NO_FATAL_FAILURE(Deploy(v1));
  golive_changes_ = {{"observe", "10s"}, {"observe_interval", "1s"}};
  const std::string id = Release(v2);
  json status;
  ASSERT_TRUE(WaitFor([&] {
    status = Status(id);
    return HostIn(status, "web-1").value("step", "") == "observing";
  })) << status.dump(2);
  WriteFile(agents_[0].apps() / "FAIL_HEALTH", std::string(kV2) + "\n");
  ASSERT_EQ(WaitForFinal(id), "failed") << Status(id).dump(2);
  status = Status(id);
  EXPECT_EQ(HostIn(status, "web-1").value("result", ""), "rolled_back") << status.dump(2);
  EXPECT_EQ(HostIn(status, "web-2").value("result", ""), "succeeded") << status.dump(2);
  EXPECT_EQ(Current(agents_[0]), fs::path("releases") / kV1);
  const auto incidents =
      QueryStore("SELECT host, severity, source FROM incidents WHERE release_id = '" + id + "'");
  ASSERT_EQ(incidents.size(), 1u);
  EXPECT_EQ(incidents[0], (std::vector<std::string>{"web-1", "P3", "observation"}));
}

// Given a freeze in force on the targets, the rollout does not start; once
// it is removed, it does.
TEST_F(RolloutE2eTest, AFreezeBlocksTheStart) {
  ASSERT_NO_FATAL_FAILURE(AddAgents(3));
  const Package v1 = BuildAndUpload(kV1);
  auto added = As(rm_, {"freeze", "add", "--from", UtcIn(-1min), "--to", UtcIn(1h), "--reason",
                        "year-end freeze", "--selector", "app=c3m-video"});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  EXPECT_EQ(added.out, "F-1\n");
  const std::string id = Scheduled(v1);
  auto refused = As(rm_, {"release", "start", id});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_TRUE(Contains(refused.err, "freeze F-1 (year-end freeze)")) << refused.err;
  EXPECT_EQ(State(id), "scheduled");
  EXPECT_TRUE(QueryStore("SELECT id FROM deployments WHERE release_id = '" + id +
                         "' AND environment = 'production'")
                  .empty());

  auto listed = As(viewer_, {"freeze", "list"});
  EXPECT_TRUE(Contains(listed.out, "year-end freeze")) << listed.out;
  ASSERT_EQ(As(rm_, {"freeze", "remove", "F-1"}).exit_code, 0);
  // A date is the start of that day in the coordinator's zone (Asia/Shanghai
  // by default); a time that is neither form is refused with an example.
  auto dated = As(rm_, {"freeze", "add", "--from", "2030-01-01", "--to", "2030-01-02", "--reason",
                        "new year", "--selector", "app=other"});
  ASSERT_EQ(dated.exit_code, 0) << dated.err;
  EXPECT_EQ(QueryStore("SELECT start_text, starts FROM freezes WHERE reason = 'new year'"),
            (std::vector<std::vector<std::string>>{{"2030-01-01T00:00:00+08:00", "1893427200"}}));
  auto undated = As(rm_, {"freeze", "add", "--from", "tomorrow", "--to", "2030-01-02", "--reason",
                          "typo", "--selector", "app=other"});
  EXPECT_EQ(undated.exit_code, 1);
  EXPECT_TRUE(Contains(undated.err, "\"tomorrow\" is not a time")) << undated.err;
  EXPECT_TRUE(Contains(undated.err, "2026-12-01T20:00:00+08:00")) << undated.err;
  ASSERT_NO_FATAL_FAILURE(StartRelease(id));
  ASSERT_EQ(WaitForFinal(id), "deployed") << Status(id).dump(2);
}

// Given wave 2 in flight (its hosts held in their activate hook), the
// coordinator is killed with SIGKILL and restarted: the rollout completes
// and no host was assigned twice.
TEST_F(RolloutE2eTest, ACoordinatorKilledMidWaveResumesTheRollout) {
  ASSERT_NO_FATAL_FAILURE(AddAgents(6));
  const Package v1 = BuildAndUpload(kV1);
  golive_changes_ = {{"waves", {"1", "50%", "100%"}}, {"between_waves", "0"}};
  for (int i : {1, 2}) WriteFile(agents_[i].apps() / "HOLD", "");
  const std::string id = Release(v1);
  ASSERT_TRUE(WaitFor([&] {
    return fs::exists(agents_[1].apps() / "HELD") && fs::exists(agents_[2].apps() / "HELD");
  })) << Status(id).dump(2);

  const int port = Port();
  KillCoordinator();
  for (int i : {1, 2}) WriteFile(agents_[i].apps() / "GO", "");
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(port));
  ASSERT_EQ(WaitForFinal(id, 120s), "deployed") << Status(id).dump(2);
  for (const auto& agent : agents_) {
    EXPECT_EQ(Current(agent), fs::path("releases") / kV1) << agent.name;
  }
  ExpectNoHostAssignedTwice(id);
  const auto assigned = QueryStore("SELECT COUNT(*) FROM deployments WHERE release_id = '" + id +
                                   "' AND kind = 'install' AND environment = 'production'");
  ASSERT_EQ(assigned.size(), 1u);
  EXPECT_EQ(assigned[0][0], "6");
}

// Given a coordinator that assigns a wave in parts of 2 hosts (the default
// is 500) and one wave of five: the hosts are assigned in three
// transactions of 2, 2 and 1, each audited and each answered when it
// commits; every host is deployed once and the release completes.
TEST_F(RolloutE2eTest, ABigWaveIsAssignedInPartsOneTransactionEach) {
  ASSERT_EQ(StopCoordinator(), 0);
  const fs::path config = CoordinatorDir() / "config.json";
  json edited = json::parse(ReadFile(config));
  edited["limits"]["wave_first_part"] = 2;
  WriteFile(config, edited.dump(2));
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  ASSERT_NO_FATAL_FAILURE(AddAgents(5));
  const Package v1 = BuildAndUpload(kV1);
  // Every install waits: the parts after the first go out while the first
  // part's hosts are still busy, not once they are final.
  HoldEveryAgent();
  const std::string id = Release(v1);
  json status;
  ASSERT_TRUE(WaitFor(
      [&] {
        status = Status(id);
        for (const auto& h : status["hosts"]) {
          if (h.value("step", "pending") == "pending") return false;
        }
        return true;
      },
      20s))
      << status.dump(2);  // (a HOLD ends by itself after 60 s)
  for (const auto& agent : agents_) WriteFile(agent.apps() / "GO", "");
  ASSERT_EQ(WaitForFinal(id), "deployed") << Status(id).dump(2);
  for (const auto& agent : agents_) {
    EXPECT_EQ(Current(agent), fs::path("releases") / kV1) << agent.name;
  }
  ExpectNoHostAssignedTwice(id);

  std::vector<std::string> parts;
  for (const auto& row : QueryStore("SELECT action, detail FROM audit_log WHERE release_id = '" +
                                    id + "' AND action LIKE 'rollout.wave-%' ORDER BY seq")) {
    const json detail = json::parse(row[1]);
    parts.push_back(row[0] + " " + std::to_string(detail.value("assigned", -1)) + "/" +
                    std::to_string(detail.value("assigned_so_far", -1)) + "/" +
                    std::to_string(detail.value("wave_hosts", -1)));
  }
  EXPECT_EQ(parts,
            (std::vector<std::string>{"rollout.wave-start 2/2/5", "rollout.wave-part 2/4/5",
                                      "rollout.wave-part 1/5/5", "rollout.wave-done -1/-1/-1"}));
}

// Given max_downloads 1 and six hosts in one wave fetching an 8 MiB
// package at once: the downloads past the limit wait in the coordinator's
// queue and are served as slots free, so every host installs without a 503
// (which would send it away for retry_after, 10 s) and the log shows
// downloads that waited their turn.
TEST_F(RolloutE2eTest, DownloadsPastTheLimitWaitForASlotInsteadOfA503) {
  ASSERT_EQ(StopCoordinator(), 0);
  const fs::path config = CoordinatorDir() / "config.json";
  json edited = json::parse(ReadFile(config));
  edited["limits"]["max_downloads"] = 1;
  WriteFile(config, edited.dump(2));
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  ASSERT_NO_FATAL_FAILURE(AddAgents(6));
  const Package v1 = BuildAndUpload(kV1, 8 << 20);
  const auto started = std::chrono::steady_clock::now();
  const std::string id = Release(v1);
  ASSERT_EQ(WaitForFinal(id, 60s), "deployed") << Status(id).dump(2);
  const auto took = std::chrono::steady_clock::now() - started;
  for (const auto& agent : agents_) {
    EXPECT_EQ(Current(agent), fs::path("releases") / kV1) << agent.name;
  }
  const std::string log = CoordinatorLog();
  const std::string download = "GET /api/v1/agent/packages/" + v1.id;
  int served = 0;
  int refused = 0;
  int queued = 0;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    if (Contains(line, download) && Contains(line, " -> 200 ")) ++served;
    if (Contains(line, download) && Contains(line, " -> 503 ")) ++refused;
    if (Contains(line, "waited") && Contains(line, "in the queue for its slot")) ++queued;
  }
  EXPECT_EQ(refused, 0) << log;
  EXPECT_EQ(served, 6) << log;
  EXPECT_GE(queued, 1) << "no download overlapped another: the test did not test the queue\n"
                       << log;
  // The agent names a refusal "HTTP 503"; a bare "503" would also match a
  // timestamp such as 01:42:37.503.
  EXPECT_FALSE(Contains(AllAgentLogs(), "HTTP 503")) << AllAgentLogs();
  // No host came back after a Retry-After: the wave took its downloads'
  // time, not 10 s more.
  EXPECT_LT(took, 30s);
}

// Given a plan with targets.late_joiners and waves 1, 100% with a gate: a
// host that enrolls with the targets' labels while wave 1 waits at the gate
// joins wave 2 (audited, shown as joined late) and ends on the version; one
// that enrolls while the last wave runs gets a catch-up wave of its own,
// behind the same gate, and ends on the version too.
TEST_F(RolloutE2eTest, AHostThatEnrollsLateJoinsTheNextWaveOrACatchUpWave) {
  ASSERT_NO_FATAL_FAILURE(AddAgents(2));
  const Package v1 = BuildAndUpload(kV1);
  golive_changes_ = {{"waves", {"1", "100%"}}, {"between_waves", "gate"}};
  plan_changes_ = {{"targets", {{"late_joiners", true}}}};
  const std::string id = Release(v1);
  json status;
  ASSERT_TRUE(WaitFor([&] {
    status = Status(id);
    return Contains(status.value("waiting", ""), "control point after wave 1");
  })) << status.dump(2);

  // late-1 enrolls (and runs) while wave 1 waits at its gate.
  ASSERT_NO_FATAL_FAILURE(AddAgents(1, "env=production,app=c3m-video", true, "late-"));
  status = Status(id);
  ASSERT_EQ(status["waves"].size(), 2u) << status.dump(2);
  EXPECT_EQ(status["waves"][1].value("hosts", 0), 2) << status.dump(2);
  EXPECT_FALSE(status["waves"][1].value("catch_up", true));
  EXPECT_EQ(HostIn(status, "late-1").value("wave", 0), 2) << status.dump(2);
  EXPECT_EQ(HostIn(status, "late-1").value("step", ""), "pending");
  EXPECT_TRUE(HostIn(status, "late-1").contains("joined_late")) << status.dump(2);
  EXPECT_FALSE(HostIn(status, "web-2").contains("joined_late"));
  EXPECT_TRUE(status["not_in_release"].empty()) << status.dump(2);
  auto text = As(viewer_, {"release", "status", id});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_THAT(text.out, ::testing::ContainsRegex("late-1 .*\n    joined late at 20[^\n]*, into "
                                                 "wave 2\n"))
      << text.out;
  auto audit = As(viewer_, {"audit", "list", "--release", id, "--json"});
  ASSERT_EQ(audit.exit_code, 0) << audit.err;
  bool audited = false;
  for (const auto& e : json::parse(audit.out)) {
    audited |= e.value("action", "") == "rollout.late-join" &&
               e["detail"].value("host", "") == "late-1" && e["detail"].value("wave", 0) == 2 &&
               !e["detail"].value("catch_up", true);
  }
  EXPECT_TRUE(audited) << audit.out;

  // Wave 2 is held in its activate hooks; late-2 enrolls meanwhile: every
  // wave has started, so a catch-up wave is made for it.
  for (const Agent& a : agents_) {
    if (a.name == "web-2" || a.name == "late-1") WriteFile(a.apps() / "HOLD", "");
  }
  ASSERT_EQ(As(wang_, {"release", "gate", id, "--confirm", "--comment", "wave 1 green"}).exit_code,
            0);
  ASSERT_TRUE(WaitFor([&] {
    return fs::exists(agents_[1].apps() / "HELD") && fs::exists(agents_[2].apps() / "HELD");
  })) << Status(id).dump(2);
  ASSERT_NO_FATAL_FAILURE(AddAgents(1, "env=production,app=c3m-video", true, "later-"));
  status = Status(id);
  ASSERT_EQ(status["waves"].size(), 3u) << status.dump(2);
  EXPECT_TRUE(status["waves"][2].value("catch_up", false)) << status.dump(2);
  EXPECT_EQ(status["waves"][2].value("hosts", 0), 1);
  EXPECT_EQ(HostIn(status, "later-1").value("wave", 0), 3) << status.dump(2);
  text = As(viewer_, {"release", "status", id});
  EXPECT_TRUE(Contains(text.out, "catch-up wave (hosts joined late)")) << text.out;

  for (const Agent& a : agents_) WriteFile(a.apps() / "GO", "");
  // The catch-up wave waits behind the same control point as any wave.
  ASSERT_TRUE(WaitFor([&] {
    status = Status(id);
    return Contains(status.value("waiting", ""), "control point after wave 2");
  })) << status.dump(2);
  EXPECT_EQ(status.value("state", ""), "deploying");
  EXPECT_EQ(Current(agents_[3]), fs::path());
  ASSERT_EQ(As(wang_, {"release", "gate", id, "--confirm"}).exit_code, 0);
  ASSERT_EQ(WaitForFinal(id), "deployed") << Status(id).dump(2);
  for (const auto& agent : agents_) {
    EXPECT_EQ(Current(agent), fs::path("releases") / kV1) << agent.name;
  }
  ExpectNoHostAssignedTwice(id);
}

// Without targets.late_joiners (the default), a host that enrolls during the
// rollout is not deployed: status lists it as not in this release, and the
// CMDB baseline at close names it, and the host that failed, with why.
TEST_F(RolloutE2eTest, WithoutLateJoinersALateHostIsNamedAsNotInTheReleaseAndAtClose) {
  ASSERT_NO_FATAL_FAILURE(AddAgents(2));
  const Package v1 = BuildAndUpload(kV1);
  golive_changes_ = {{"waves", {"1", "100%"}}, {"between_waves", "gate"}, {"max_failures", "1"}};
  // web-2 (wave 2) fails its health check: within the threshold.
  WriteFile(agents_[1].apps() / "FAIL_HEALTH", kV1);
  const std::string id = Release(v1);
  json status;
  ASSERT_TRUE(WaitFor([&] {
    status = Status(id);
    return Contains(status.value("waiting", ""), "control point after wave 1");
  })) << status.dump(2);
  ASSERT_NO_FATAL_FAILURE(AddAgents(1, "env=production,app=c3m-video", true, "late-"));
  status = Status(id);
  ASSERT_EQ(status["waves"].size(), 2u) << status.dump(2);
  EXPECT_EQ(status["waves"][1].value("hosts", 0), 1);
  EXPECT_TRUE(HostIn(status, "late-1").empty()) << status.dump(2);
  ASSERT_EQ(status["not_in_release"].size(), 1u) << status.dump(2);
  EXPECT_EQ(status["not_in_release"][0].value("host", ""), "late-1");
  EXPECT_TRUE(
      Contains(status["not_in_release"][0].value("reason", ""), "after the rollout started"))
      << status.dump(2);
  auto text = As(viewer_, {"release", "status", id});
  EXPECT_THAT(text.out, ::testing::ContainsRegex("not in this release \\(1 host\\(s\\)[^\n]*\n"
                                                 "  late-1 +enrolled at 20"))
      << text.out;

  ASSERT_EQ(As(wang_, {"release", "gate", id, "--confirm"}).exit_code, 0);
  ASSERT_EQ(WaitForFinal(id), "deployed") << Status(id).dump(2);
  EXPECT_EQ(Current(agents_[0]), fs::path("releases") / kV1);
  EXPECT_EQ(Current(agents_[2]), fs::path()) << "late-1 was not deployed to";
  auto closed = As(rm_, {"release", "close", id, "--notes", "web-2 to be fixed"});
  ASSERT_EQ(closed.exit_code, 0) << closed.err;
  EXPECT_TRUE(Contains(closed.out, "partial")) << closed.out;

  std::map<std::string, std::string> why;  // phase/host -> reason
  for (const auto& row : QueryStore("SELECT phase, host, reason FROM cmdb_baselines WHERE "
                                    "release_id = '" +
                                    id + "'")) {
    why[row[0] + "/" + row[1]] = row[2];
  }
  EXPECT_EQ(why["after/web-1"], "") << "web-1 is on the version";
  // It failed its health check and its agent switched back by itself.
  EXPECT_EQ(why["after/web-2"].rfind("rolled_back at step ", 0), 0u) << why["after/web-2"];
  EXPECT_TRUE(Contains(why["outside/late-1"], "not in this release: enrolled at"))
      << why["outside/late-1"];
  EXPECT_EQ(why["before/web-2"], "");
  auto base = As(viewer_, {"cmdb", "baseline", id});
  ASSERT_EQ(base.exit_code, 0) << base.err;
  EXPECT_THAT(base.out, ::testing::ContainsRegex("not on the release's version at close:\n"
                                                 "late-1 +not in this release: enrolled at 20"
                                                 "[^\n]*after the rollout started\n"
                                                 "web-2 +rolled_back at step "))
      << base.out;
  auto json_base = As(viewer_, {"cmdb", "baseline", id, "--json"});
  ASSERT_EQ(json_base.exit_code, 0) << json_base.err;
  EXPECT_TRUE(Contains(json_base.out, "\"reason\": \"not in this release: enrolled at"))
      << json_base.out;
  auto report = As(viewer_, {"release", "export", id, "--doc", "release-report", "--format", "md"});
  ASSERT_EQ(report.exit_code, 0) << report.err;
  EXPECT_TRUE(Contains(report.out, "not on this release's version at close, and why"))
      << report.out;
  EXPECT_THAT(report.out, ::testing::ContainsRegex("\\| late-1 \\| [^|]* \\| not in this release"))
      << report.out;
}

}  // namespace
}  // namespace fabu::e2e
