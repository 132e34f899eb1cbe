// The coordinator's side of the agent: enrollment tokens,
// hosts, the agent API and deployments, on the real fabu-coordinator. People
// use the real fabu CLI; the agent is played by the HTTP client
// (tests/support/agent_http.hpp: real HTTPS with the pinned CA), since the
// real agent is built beside this.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

#include "tests/support/agent_http.hpp"
#include "tests/support/coordinator_process.hpp"
#include "tests/support/people_fixture.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_store.hpp"
#include "tests/support/wait.hpp"

namespace fabu::testing {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string ReadAll(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// RFC 3339 UTC of now + `offset`.
std::string UtcIn(std::chrono::seconds offset) {
  const std::time_t t =
      std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() + offset);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

class AgentApiTest : public fabu::testing::CoordinatorWithPeople {
 protected:
  void SetUp() override {
    CoordinatorWithPeople::SetUp();
    if (HasFatalFailure()) return;
    // Enough bytes that a range is a real part of the file.
    std::string payload;
    for (int i = 0; i < 20000; ++i) payload += std::to_string(i * 7919) + "\n";
    WriteFile(dir_ / "app/bin/c3m-video", "#!/bin/sh\necho playback\n");
    WriteFile(dir_ / "app/share/data.txt", payload);
    // And 4 MiB that do not compress, so the upload and the downloads run
    // through many TLS records and many 256 KiB file chunks.
    std::string blob(std::size_t{4} << 20, '\0');
    std::uint32_t x = 7919;
    for (char& c : blob) {
      x = x * 1664525u + 1013904223u;
      c = static_cast<char>(x >> 24);
    }
    WriteFile(dir_ / "app/share/blob.bin", blob);
    auto built = Fabu({"pack", "build", "--name", "c3m-video", "--version", "V1.3.0.12", "--from",
                       (dir_ / "app").string(), "--key", (dir_ / "publisher.key").string(), "--out",
                       (dir_ / "c3m.fabu").string()});
    ASSERT_EQ(built.exit_code, 0) << built.err;
    auto uploaded = As(rm_, {"package", "upload", (dir_ / "c3m.fabu").string()});
    ASSERT_EQ(uploaded.exit_code, 0) << uploaded.err;
    package_id_ = LastLine(uploaded.out);
    ASSERT_EQ(package_id_.size(), 64u);
  }

  // One HTTPS request as an agent (the coordinator's CA pinned), on a
  // connection of its own: a long poll may be waiting on another thread.
  HttpReply Http(const std::string& method, const std::string& path, const std::string& token,
                 const std::optional<json>& body = std::nullopt,
                 const std::vector<std::string>& headers = {}) {
    AgentHttpClient agent(daemon_->url(), daemon_->ca());
    return agent.Request(method, path, token, body ? body->dump() : "", headers);
  }

  // One HTTPS request whose body is `raw`, sent byte for byte.
  HttpReply HttpRaw(const std::string& method, const std::string& path, const std::string& token,
                    const std::string& raw) {
    AgentHttpClient agent(daemon_->url(), daemon_->ca());
    return agent.Request(method, path, token, raw);
  }

  // `count` enrollment POSTs by one client over one kept-alive connection,
  // the bodies taken in turn from `bodies`; the statuses answered.
  std::vector<int> EnrollFlood(const std::vector<std::string>& bodies, int count) {
    AgentHttpClient agent(daemon_->url(), daemon_->ca());
    std::vector<int> statuses;
    for (int i = 0; i < count; ++i) {
      statuses.push_back(
          agent.Request("POST", "/api/v1/agent/enroll", "", bodies[i % bodies.size()]).status);
    }
    return statuses;
  }

  // Bytes of the store: the database with its WAL and shared memory (or
  // the PostgreSQL database's size).
  std::uintmax_t StoreBytes() {
    if (TestStoreIsPostgresql()) {
      const std::string size =
          StoreQuery(dir_ / "coordinator", "SELECT pg_database_size(current_database())");
      return std::strtoull(size.c_str(), nullptr, 10);
    }
    std::uintmax_t total = 0;
    for (const char* name : {"coordinator.db", "coordinator.db-wal", "coordinator.db-shm"}) {
      std::error_code ec;
      const auto size = std::filesystem::file_size(dir_ / "coordinator" / name, ec);
      if (!ec) total += size;
    }
    return total;
  }

  std::string NewToken(const std::vector<std::string>& args = {}) {
    std::vector<std::string> argv{"enroll-token", "create"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = As(rm_, argv);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return LastLine(r.out);
  }

  json EnrollRequest(const std::string& token, const std::string& name, const json& labels) {
    return {
        {"token", token},
        {"name", name},
        {"labels", labels},
        {"inventory",
         {{"hostname", name},
          {"os", "linux"},
          {"kernel", "6.1.0"},
          {"arch", "x86_64"},
          {"cpus", 4},
          {"memory_bytes", 8589934592ull},
          {"agent_version", "0.1.0"},
          {"apps",
           json::array(
               {{{"name", "c3m-video"}, {"current", "V1.2.0.3"}, {"releases", {"V1.2.0.3"}}}})}}}};
  }

  // Enrolls `name` with a fresh token carrying `token_labels`; the credential.
  std::string Enroll(const std::string& name, const std::string& token_labels,
                     const json& labels = json::object()) {
    const std::string token = NewToken({"--labels", token_labels});
    auto r = Http("POST", "/api/v1/agent/enroll", "", EnrollRequest(token, name, labels));
    EXPECT_EQ(r.status, 201) << r.body;
    return r.Json().value("credential", "");
  }

  HttpReply Poll(const std::string& credential, int wait = 0) {
    return Http("GET", "/api/v1/agent/assignment?wait=" + std::to_string(wait), credential);
  }

  // A long poll waiting in the background: its reply and when it came, once
  // joined.
  struct HeldPoll {
    HttpReply reply;
    Clock::time_point answered;
    std::thread thread;
  };
  // Starts `credential`'s poll of `wait` seconds and returns once the
  // coordinator holds it (/healthz: one long poll).
  std::unique_ptr<HeldPoll> HoldPoll(const std::string& credential, int wait) {
    auto held = std::make_unique<HeldPoll>();
    held->thread = std::thread([this, &held = *held, credential, wait] {
      held.reply = Poll(credential, wait);
      held.answered = Clock::now();
    });
    fabu::testing::WaitUntil([&] { return Http("GET", "/healthz", "").Json()["long_polls"] == 1; },
                             std::chrono::seconds(20), std::chrono::milliseconds(10));
    return held;
  }

  json Event(const std::string& deployment, int sequence, const std::string& step,
             const std::string& message = "", const std::string& failed_step = "") {
    json e = {{"deployment", deployment},
              {"sequence", sequence},
              {"step", step},
              {"app", "c3m-video"},
              {"version", "V1.3.0.12"},
              {"message", message},
              {"output", ""},
              {"time", "2026-11-20T00:00:00Z"}};
    if (!failed_step.empty()) e["failed_step"] = failed_step;
    return e;
  }

  HttpReply Post(const std::string& credential, const json& events) {
    return Http("POST", "/api/v1/agent/events", credential, json{{"events", events}});
  }

  // Reports every step to success.
  void Succeed(const std::string& credential, const std::string& deployment) {
    json events = json::array();
    int seq = 0;
    for (const char* step : {"assigned", "downloading", "downloaded", "verified", "installing",
                             "activating", "health_checking", "succeeded"}) {
      events.push_back(Event(deployment, ++seq, step));
    }
    auto r = Post(credential, events);
    EXPECT_EQ(r.status, 200) << r.body;
  }

  json Plan(const std::string& host_timeout = "15m") const {
    json plan = {
        {"title", "C3M-VIDEO playback download"},
        {"product", "c3m-video"},
        {"version", "V1.3.0.12"},
        {"category", "minor"},
        {"change_refs", {"CHG-2026-0113"}},
        {"plan",
         {{"purpose", "p"},
          {"scope", "s"},
          {"participants", "zhang.rm"},
          {"communication", "c"},
          {"work_plan", "w"},
          {"follow_up", "f"},
          {"rollback_plan", "r"},
          {"known_issues", "k"},
          {"baseline", "b"}}},
        {"packages", {package_id_}},
        {"targets", {{"selector", "app=c3m-video"}}},
        {"reviewers", {"wang.approver", "li.approver"}},
        {"golive",
         {{"window",
           {{"start", UtcIn(std::chrono::hours(-1))}, {"end", UtcIn(std::chrono::hours(24))}}},
          {"waves", {"100%"}},
          {"max_failures", "0"},
          {"between_waves", "5m"},
          {"host_timeout", host_timeout},
          {"auto_rollback", false}}}};
    plan["golive"].merge_patch(golive_changes_);
    return plan;
  }

  std::string Approved(const std::string& host_timeout = "15m") {
    WriteFile(dir_ / "plan.json", Plan(host_timeout).dump());
    auto created = As(rm_, {"release", "create", "--file", (dir_ / "plan.json").string()});
    EXPECT_EQ(created.exit_code, 0) << created.err;
    const std::string id = LastLine(created.out);
    EXPECT_EQ(As(rm_, {"release", "submit", id}).exit_code, 0);
    EXPECT_EQ(As(wang_, {"release", "approve", id}).exit_code, 0);
    EXPECT_EQ(As(li_, {"release", "approve", id}).exit_code, 0);
    return id;
  }

  std::string Scheduled(const std::string& host_timeout = "15m") {
    const std::string id = Approved(host_timeout);
    // A test deployment that succeeded (procedure §6.2.3), on a test host of its own.
    std::string name = "qa-" + id;
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const std::string qa = Enroll(name, "env=test,app=c3m-video");
    EXPECT_EQ(As(rm_, {"release", "test", id}).exit_code, 0);
    const json assignment = Poll(qa, 5).Json()["assignment"];
    EXPECT_TRUE(assignment.is_object()) << assignment;
    if (assignment.is_object()) Succeed(qa, assignment["deployment"]);
    WriteFile(dir_ / "REPORT.md", "all green\n");
    EXPECT_EQ(As(tester_, {"release", "test-report", id, "--result", "passed", "--file",
                           (dir_ / "REPORT.md").string()})
                  .exit_code,
              0);
    EXPECT_EQ(As(wang_, {"release", "accept", id}).exit_code, 0);
    auto scheduled = As(rm_, {"release", "schedule", id});
    EXPECT_EQ(scheduled.exit_code, 0) << scheduled.err;
    return id;
  }

  std::string State(const std::string& id) {
    auto r = As(viewer_, {"release", "show", id, "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(r.out, nullptr, false).value("state", "");
  }

  // The release's deployments in `environment` (production: Scheduled's
  // test deployment left out).
  json Hosts(const std::string& id, const std::string& environment = "production") {
    auto r = As(viewer_, {"release", "hosts", id, "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const json parsed = json::parse(r.out, nullptr, false);
    json hosts = json::array();
    for (const json& h : parsed["hosts"]) {
      if (h.value("environment", "") == environment) hosts.push_back(h);
    }
    return hosts;
  }

  // Polls `release show` until the release is in `state` or `deadline` passes.
  bool WaitForState(const std::string& id, const std::string& state,
                    std::chrono::seconds deadline) {
    return fabu::testing::WaitUntil([&] { return State(id) == state; }, deadline);
  }

  long long CountRows(const std::string& query) {
    const std::string count = StoreQuery(dir_ / "coordinator", query);
    return count.empty() ? -1 : std::atoll(count.c_str());
  }

  std::string package_id_;
  json golive_changes_ = json::object();  // merged into Plan()'s go-live plan
};

TEST_F(AgentApiTest, EnrollmentTokensAreSingleUseExpireAndAreAudited) {
  const std::string token = NewToken({"--labels", "env=production,app=c3m-video"});
  ASSERT_EQ(token.size(), 64u);
  auto enrolled = Http("POST", "/api/v1/agent/enroll", "",
                       EnrollRequest(token, "web-1", {{"site", "gz"}, {"env", "test"}}));
  ASSERT_EQ(enrolled.status, 201) << enrolled.body;
  EXPECT_EQ(enrolled.Json()["credential"].get<std::string>().size(), 64u);
  // The token's labels win over the agent's.
  EXPECT_EQ(enrolled.Json()["labels"],
            json({{"env", "production"}, {"app", "c3m-video"}, {"site", "gz"}}));

  auto again = Http("POST", "/api/v1/agent/enroll", "", EnrollRequest(token, "web-2", {}));
  EXPECT_EQ(again.status, 403) << again.body;
  EXPECT_TRUE(Contains(again.body, "already used")) << again.body;

  auto unknown =
      Http("POST", "/api/v1/agent/enroll", "", EnrollRequest(std::string(64, 'a'), "web-3", {}));
  EXPECT_EQ(unknown.status, 401) << unknown.body;
  EXPECT_TRUE(Contains(unknown.body, "unknown enrollment token")) << unknown.body;

  const std::string expired = NewToken({"--ttl", "0s"});
  auto late = Http("POST", "/api/v1/agent/enroll", "", EnrollRequest(expired, "web-4", {}));
  EXPECT_EQ(late.status, 403) << late.body;
  EXPECT_TRUE(Contains(late.body, "expired")) << late.body;

  // Two uses when asked for.
  const std::string twice = NewToken({"--uses", "2", "--labels", "env=test"});
  EXPECT_EQ(Http("POST", "/api/v1/agent/enroll", "", EnrollRequest(twice, "t-1", {})).status, 201);
  EXPECT_EQ(Http("POST", "/api/v1/agent/enroll", "", EnrollRequest(twice, "t-2", {})).status, 201);
  EXPECT_EQ(Http("POST", "/api/v1/agent/enroll", "", EnrollRequest(twice, "t-3", {})).status, 403);

  // Only admins and release managers make tokens.
  auto refused = As(viewer_, {"enroll-token", "create"});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_TRUE(Contains(refused.err, "release_manager")) << refused.err;

  // Hosts, their labels and what is installed.
  auto listed = As(viewer_, {"hosts", "list", "--json"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  json hosts = json::parse(listed.out);
  ASSERT_EQ(hosts.size(), 3u);
  EXPECT_EQ(hosts[0]["name"], "t-1");
  EXPECT_EQ(hosts[2]["name"], "web-1");
  EXPECT_EQ(hosts[2]["agent_version"], "0.1.0");
  EXPECT_EQ(hosts[2]["apps"][0]["current"], "V1.2.0.3");
  auto selected = As(viewer_, {"hosts", "list", "--selector", "env=production", "--json"});
  ASSERT_EQ(selected.exit_code, 0) << selected.err;
  EXPECT_EQ(json::parse(selected.out).size(), 1u);
  auto table = As(viewer_, {"hosts", "list"});
  EXPECT_TRUE(Contains(table.out, "c3m-video@V1.2.0.3")) << table.out;
  // One page of those whose name holds "t-" (the console's view of a large fleet).
  const json page = Http("GET", "/api/v1/hosts?name=t-&offset=1&limit=5", viewer_).Json();
  ASSERT_EQ(page["hosts"].size(), 1u) << page;
  EXPECT_EQ(page["hosts"][0]["name"], "t-2");
  EXPECT_EQ(page["total"], 2);

  // Refusals are in the audit trail, and the chain holds.
  auto audit = As(admin_, {"audit", "list", "--json"});
  ASSERT_EQ(audit.exit_code, 0) << audit.err;
  EXPECT_TRUE(Contains(audit.out, "host.enroll-refused")) << audit.out.substr(0, 500);
  EXPECT_TRUE(Contains(audit.out, "enroll-token.create"));
  EXPECT_FALSE(Contains(audit.out, token)) << "the token itself must never be recorded";
  EXPECT_EQ(As(admin_, {"audit", "verify"}).exit_code, 0);
}

// Given tokens made, used and revoked, `enroll-token list` should show each
// by its id and state (never the token), and a revoked token should enroll
// no host while the hosts enrolled with it stay.
TEST_F(AgentApiTest, EnrollmentTokensAreListedByIdAndARevokedOneEnrollsNoHost) {
  const std::string used = NewToken({"--labels", "env=production"});
  ASSERT_EQ(Http("POST", "/api/v1/agent/enroll", "", EnrollRequest(used, "web-1", {})).status, 201);
  const std::string leaked = NewToken({"--uses", "3", "--labels", "env=test"});
  ASSERT_EQ(Http("POST", "/api/v1/agent/enroll", "", EnrollRequest(leaked, "t-1", {})).status, 201);

  auto listed = As(rm_, {"enroll-token", "list", "--json"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_FALSE(Contains(listed.out, used)) << "a token itself must never be shown again";
  EXPECT_FALSE(Contains(listed.out, leaked));
  const json tokens = json::parse(listed.out);
  ASSERT_EQ(tokens.size(), 2u) << listed.out;
  std::map<std::string, json> by_state;
  for (const auto& t : tokens) by_state[t.value("state", "")] = t;
  ASSERT_TRUE(by_state.contains("used")) << listed.out;
  ASSERT_TRUE(by_state.contains("active")) << listed.out;
  const std::string id = by_state["active"].value("id", "");
  ASSERT_EQ(id.size(), 12u);
  EXPECT_EQ(by_state["active"].value("uses", 0), 1);
  EXPECT_EQ(by_state["active"].value("uses_allowed", 0), 3);
  EXPECT_EQ(by_state["active"]["labels"], json({{"env", "test"}}));

  // A revocation needs its reason; then the token enrolls no one.
  auto no_reason = As(rm_, {"enroll-token", "revoke", id});
  EXPECT_EQ(no_reason.exit_code, 2) << no_reason.err;
  EXPECT_TRUE(Contains(no_reason.err, "--reason")) << no_reason.err;
  auto revoked = As(rm_, {"enroll-token", "revoke", id, "--reason", "posted in a chat room"});
  ASSERT_EQ(revoked.exit_code, 0) << revoked.err;
  EXPECT_TRUE(Contains(revoked.out, "enrollment token " + id + " revoked")) << revoked.out;
  auto refused = Http("POST", "/api/v1/agent/enroll", "", EnrollRequest(leaked, "t-2", {}));
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_TRUE(Contains(refused.body, "the enrollment token was revoked at")) << refused.body;
  auto twice = As(rm_, {"enroll-token", "revoke", id, "--reason", "again"});
  EXPECT_NE(twice.exit_code, 0);
  EXPECT_TRUE(Contains(twice.err, "was revoked already")) << twice.err;
  auto unknown = As(rm_, {"enroll-token", "revoke", "0123456789ab", "--reason", "r"});
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_TRUE(Contains(unknown.err, "no enrollment token has the id 0123456789ab")) << unknown.err;
  auto garbage = As(rm_, {"enroll-token", "revoke", "../x", "--reason", "r"});
  EXPECT_NE(garbage.exit_code, 0);
  EXPECT_TRUE(Contains(garbage.err, "is not a token id")) << garbage.err;

  // The host enrolled with it stays; the table names who revoked it.
  auto hosts = As(viewer_, {"hosts", "list", "--json"});
  ASSERT_EQ(hosts.exit_code, 0) << hosts.err;
  EXPECT_TRUE(Contains(hosts.out, "\"t-1\"")) << hosts.out;
  auto table = As(rm_, {"enroll-token", "list"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_TRUE(Contains(table.out, id + "  revoked by")) << table.out;

  // Only admins and release managers see or revoke tokens; all is audited.
  auto viewer = As(viewer_, {"enroll-token", "list"});
  EXPECT_NE(viewer.exit_code, 0);
  auto audit = As(admin_, {"audit", "list", "--json"});
  ASSERT_EQ(audit.exit_code, 0) << audit.err;
  EXPECT_TRUE(Contains(audit.out, "enroll-token.revoke"));
  EXPECT_TRUE(Contains(audit.out, "posted in a chat room"));
  EXPECT_EQ(As(admin_, {"audit", "verify"}).exit_code, 0);
}

// Enrollment is public: a flood of refused enrollments (bad tokens, long
// names) must not fill the disk through the audit trail.
TEST_F(AgentApiTest, AFloodOfRefusedEnrollmentsGrowsTheStoreByLittle) {
  // Measured after a stop both times (the WAL checkpointed into the database).
  ASSERT_EQ(daemon_->Stop(), 0);
  const std::uintmax_t before = StoreBytes();
  Start();
  json long_name = EnrollRequest(std::string(64, 'b'), std::string(250, 'x'), {});
  json bad_token = EnrollRequest(std::string(64, 'c'), "web-9", {});
  json huge = EnrollRequest(std::string(64, 'd'), std::string(200000, 'y'), {});
  huge["inventory"]["hostname"] = "web-9";
  long_name["inventory"]["hostname"] = "web-9";
  const std::vector<std::string> bodies{long_name.dump(), bad_token.dump(), huge.dump()};
  constexpr int kRequests = 10000;
  const auto started = Clock::now();
  const std::vector<int> statuses = EnrollFlood(bodies, kRequests);
  const auto seconds =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count() /
      1000.0;
  ASSERT_EQ(statuses.size(), static_cast<std::size_t>(kRequests));
  for (int i = 0; i < kRequests; ++i) {
    const int want = i % 3 == 1 ? 401 : 400;
    ASSERT_EQ(statuses[i], want) << "request " << i;
  }
  // One summary entry per address and minute, written at shutdown at the latest.
  ASSERT_EQ(daemon_->Stop(), 0);
  const std::uintmax_t after = StoreBytes();
  std::cout << "store: " << before << " bytes before " << kRequests << " refused enrollments, "
            << after << " after (" << seconds << " s)\n";
  EXPECT_LT(after, before + 1024 * 1024) << "the store grew by " << (after - before) << " bytes";
  Start();

  auto audit = As(admin_, {"audit", "list", "--json"});
  ASSERT_EQ(audit.exit_code, 0) << audit.err;
  const json entries = json::parse(audit.out);
  int refused = 0;
  std::int64_t summarized = 0;
  for (const json& entry : entries) {
    const std::string text = entry.dump();
    EXPECT_EQ(text.find(std::string(100, 'x')), std::string::npos) << text.substr(0, 300);
    if (entry["action"] == "host.enroll-refused") ++refused;
    if (entry["action"] == "host.enroll-refused-summary") {
      summarized += entry["detail"]["count"].get<std::int64_t>();
    }
  }
  // Parse-level refusals (the 200,000-byte name) are answered and not
  // recorded; of the rest, a few are audited one by one, the others counted.
  const int recorded_kind = kRequests - kRequests / 3;
  // At most 10 a minute one by one: as many minutes as the flood lasted (a
  // slow build, ASan on a busy machine, takes several), and the minutes it
  // began and ended in.
  const int minutes = static_cast<int>(seconds / 60) + 2;
  EXPECT_LE(refused, 10 * minutes) << "refusals audited one by one in " << seconds << " s";
  EXPECT_GE(refused, 10);
  EXPECT_EQ(refused + summarized, recorded_kind);
  EXPECT_EQ(As(admin_, {"audit", "verify"}).exit_code, 0);
}

// An enrollment whose answer was lost may be retried and gets the same answer.
TEST_F(AgentApiTest, ARetriedEnrollmentGetsTheSameAnswer) {
  const std::string token = NewToken({"--labels", "env=production"});
  json request = EnrollRequest(token, "web-1", {{"site", "gz"}});
  request["enroll_key"] = std::string(60, 'a') + "0001";
  auto first = Http("POST", "/api/v1/agent/enroll", "", request);
  ASSERT_EQ(first.status, 201) << first.body;
  auto again = Http("POST", "/api/v1/agent/enroll", "", request);
  ASSERT_EQ(again.status, 201) << again.body;
  EXPECT_EQ(again.Json(), first.Json());
  EXPECT_EQ(Poll(again.Json()["credential"].get<std::string>()).status, 200);

  // Anything else with the used token is still refused.
  json other_name = request;
  other_name["name"] = "web-2";
  EXPECT_EQ(Http("POST", "/api/v1/agent/enroll", "", other_name).status, 403);
  json other_key = request;
  other_key["enroll_key"] = std::string(60, 'a') + "0002";
  auto stolen = Http("POST", "/api/v1/agent/enroll", "", other_key);
  EXPECT_EQ(stolen.status, 403) << stolen.body;
  EXPECT_FALSE(Contains(stolen.body, first.Json()["credential"].get<std::string>()));
  json no_key = request;
  no_key.erase("enroll_key");
  EXPECT_EQ(Http("POST", "/api/v1/agent/enroll", "", no_key).status, 403);
  // A token with uses left: another key for the enrolled name is a conflict.
  const std::string twice = NewToken({"--uses", "2"});
  json a = EnrollRequest(twice, "db-1", {});
  a["enroll_key"] = std::string(64, 'b');
  ASSERT_EQ(Http("POST", "/api/v1/agent/enroll", "", a).status, 201);
  json b = a;
  b["enroll_key"] = std::string(64, 'c');
  EXPECT_EQ(Http("POST", "/api/v1/agent/enroll", "", b).status, 409);
  EXPECT_EQ(Http("POST", "/api/v1/agent/enroll", "", a).status, 201);

  // Once the host is removed, the retry no longer answers the old credential.
  ASSERT_EQ(As(admin_, {"host", "remove", "web-1"}).exit_code, 0);
  EXPECT_EQ(Http("POST", "/api/v1/agent/enroll", "", request).status, 403);
  auto audit = As(admin_, {"audit", "list", "--json"});
  EXPECT_TRUE(Contains(audit.out, "host.enroll-repeated"));
}

// Bytes that are not UTF-8, numbers past any range, durations past any
// sense: 400 naming the field, with an answer that is itself valid JSON.
TEST_F(AgentApiTest, MalformedInputGets400NamingTheField) {
  auto utf8 = HttpRaw("POST", "/api/v1/agent/enroll", "",
                      "{\"token\": \"x\", \"name\": \"web\xff\xfe-1\"}");
  EXPECT_EQ(utf8.status, 400) << utf8.body;
  ASSERT_FALSE(utf8.Json().is_discarded()) << utf8.body;
  EXPECT_TRUE(Contains(utf8.Json()["error"]["message"].get<std::string>(), "name")) << utf8.body;

  auto overflow = HttpRaw("POST", "/api/v1/enroll-tokens", rm_, R"({"uses": 1e400})");
  EXPECT_EQ(overflow.status, 400) << overflow.body;
  EXPECT_TRUE(Contains(overflow.body, "uses")) << overflow.body;
  auto wraps = HttpRaw("POST", "/api/v1/enroll-tokens", rm_, R"({"uses": 18446744073709551615})");
  EXPECT_EQ(wraps.status, 400) << wraps.body;
  EXPECT_TRUE(Contains(wraps.body, "uses")) << wraps.body;
  auto nested = HttpRaw("POST", "/api/v1/agent/enroll", "",
                        R"({"inventory": {"apps": [{"name": "a"}, {"cpus": -1e999}]}})");
  EXPECT_EQ(nested.status, 400) << nested.body;
  EXPECT_TRUE(Contains(nested.body, "inventory.apps[1].cpus")) << nested.body;

  for (const char* ttl : {"99999999999d", "400d"}) {
    auto r = As(rm_, {"enroll-token", "create", "--ttl", ttl});
    EXPECT_NE(r.exit_code, 0) << ttl << ": " << r.out;
    EXPECT_TRUE(Contains(r.err, "ttl")) << r.err;
    EXPECT_TRUE(Contains(r.err, "400")) << r.err;
  }
  auto year = As(rm_, {"enroll-token", "create", "--ttl", "365d"});
  EXPECT_EQ(year.exit_code, 0) << year.err;
}

// The listener offers AEAD suites only under TLS 1.2.
TEST_F(AgentApiTest, TlsTwelveOffersOnlyAeadSuites) {
  const std::string target = "127.0.0.1:" + std::to_string(daemon_->port());
  auto gcm = RunCommand({"openssl", "s_client", "-connect", target, "-tls1_2", "-cipher",
                         "ECDHE-ECDSA-AES128-GCM-SHA256"},
                        "Q\n");
  EXPECT_EQ(gcm.exit_code, 0) << gcm.err;
  EXPECT_TRUE(Contains(gcm.out, "ECDHE-ECDSA-AES128-GCM-SHA256")) << gcm.out.substr(0, 2000);
  for (const char* cbc :
       {"ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-SHA", "ECDHE-ECDSA-AES128-SHA"}) {
    auto r =
        RunCommand({"openssl", "s_client", "-connect", target, "-tls1_2", "-cipher", cbc}, "Q\n");
    EXPECT_NE(r.exit_code, 0) << cbc << " was accepted: " << r.out.substr(0, 2000);
  }
}

TEST_F(AgentApiTest, ARemovedHostMayEnrollAgainAndItsOldCredentialDies) {
  const std::string credential = Enroll("web-1", "env=production");
  EXPECT_EQ(Poll(credential).status, 200);
  const std::string token = NewToken();
  auto taken = Http("POST", "/api/v1/agent/enroll", "", EnrollRequest(token, "web-1", {}));
  EXPECT_EQ(taken.status, 409) << taken.body;
  EXPECT_TRUE(Contains(taken.body, "fabu host remove web-1")) << taken.body;

  auto not_admin = As(rm_, {"host", "remove", "web-1"});
  EXPECT_NE(not_admin.exit_code, 0);
  EXPECT_TRUE(Contains(not_admin.err, "admin")) << not_admin.err;
  auto removed = As(admin_, {"host", "remove", "web-1"});
  ASSERT_EQ(removed.exit_code, 0) << removed.err;
  auto dead = Poll(credential);
  EXPECT_EQ(dead.status, 401) << dead.body;
  EXPECT_TRUE(Contains(dead.body, "removed")) << dead.body;

  // The refused attempt did not use the token up.
  auto back = Http("POST", "/api/v1/agent/enroll", "", EnrollRequest(token, "web-1", {}));
  ASSERT_EQ(back.status, 201) << back.body;
  EXPECT_NE(back.Json().value("credential", ""), credential);
  EXPECT_EQ(Poll(back.Json().value("credential", "")).status, 200);
}

TEST_F(AgentApiTest, ARevokedHostIsRefusedAtOnceItsDeploymentEndsAndOnlyANewTokenBringsItBack) {
  // A token for two hosts: the second use must not bring the revoked host back.
  const std::string token = NewToken({"--labels", "env=production,app=c3m-video", "--uses", "2"});
  auto enrolled = Http("POST", "/api/v1/agent/enroll", "", EnrollRequest(token, "web-1", {}));
  ASSERT_EQ(enrolled.status, 201) << enrolled.body;
  const std::string web1 = enrolled.Json().value("credential", "");
  const std::string id = Scheduled();
  ASSERT_EQ(As(rm_, {"release", "start", id}).exit_code, 0);
  const json assignment = Poll(web1).Json()["assignment"];
  ASSERT_TRUE(assignment.is_object()) << assignment;
  const std::string deployment = assignment["deployment"];

  auto not_admin = As(rm_, {"host", "revoke", "web-1", "--reason", "stolen"});
  EXPECT_NE(not_admin.exit_code, 0);
  EXPECT_TRUE(Contains(not_admin.err, "revoking a host needs role admin")) << not_admin.err;
  auto blank = As(admin_, {"host", "revoke", "web-1", "--reason", " "});
  EXPECT_NE(blank.exit_code, 0);
  EXPECT_TRUE(Contains(blank.err, "reason: say why the host is revoked")) << blank.err;

  // A host waiting in a long poll when it is revoked gets its answer at once.
  const std::string db1 = Enroll("db-1", "env=production,app=postgres");
  HttpReply polled;
  Clock::time_point answered;
  std::thread idle([&] {
    polled = Poll(db1, 30);
    answered = Clock::now();
  });
  const bool parked = fabu::testing::WaitUntil(
      [&] { return Http("GET", "/healthz", "").Json()["long_polls"] == 1; },
      std::chrono::seconds(20), std::chrono::milliseconds(10));
  auto idle_revoked = As(admin_, {"host", "revoke", "db-1", "--reason", "decommissioned"});
  const auto idle_revoke_done = Clock::now();
  idle.join();
  ASSERT_TRUE(parked);
  ASSERT_EQ(idle_revoked.exit_code, 0) << idle_revoked.err;
  EXPECT_LT(answered - idle_revoke_done, std::chrono::milliseconds(1000));
  EXPECT_EQ(polled.status, 401) << polled.body;
  EXPECT_TRUE(Contains(polled.body, "host db-1 was revoked by an admin (decommissioned)"))
      << polled.body;
  EXPECT_EQ(Poll(db1).status, 401);

  auto revoked = As(admin_, {"host", "revoke", "web-1", "--reason", "disk image copied off-site"});
  ASSERT_EQ(revoked.exit_code, 0) << revoked.err;
  EXPECT_TRUE(Contains(revoked.out, "host web-1 revoked at 20")) << revoked.out;
  // Its next request is refused, naming the revocation and its reason.
  auto refused = Poll(web1);
  EXPECT_EQ(refused.status, 401) << refused.body;
  EXPECT_TRUE(Contains(refused.body,
                       "host web-1 was revoked by an admin (disk image copied "
                       "off-site); it enrolls again only with a new enrollment "
                       "token"))
      << refused.body;
  EXPECT_EQ(Post(web1, json::array({Event(deployment, 1, "downloading")})).status, 401);
  auto again = As(admin_, {"host", "revoke", "web-1", "--reason", "twice"});
  EXPECT_NE(again.exit_code, 0);
  EXPECT_TRUE(Contains(again.err, "host web-1 was already revoked")) << again.err;

  // Its deployment ended, with the reason; the CMDB's record and the audit trail keep it.
  const json hosts = Http("GET", "/api/v1/releases/" + id + "/hosts", rm_).Json();
  bool seen = false;
  for (const json& d : hosts["hosts"]) {
    if (d.value("host", "") != "web-1") continue;
    seen = true;
    EXPECT_EQ(d["result"], "host_removed") << d;
    EXPECT_EQ(d["message"], "host web-1 was revoked: disk image copied off-site") << d;
  }
  EXPECT_TRUE(seen) << hosts.dump(2);
  const json record = Http("GET", "/api/v1/cmdb/hosts/web-1", viewer_).Json();
  EXPECT_EQ(record["removed"], true) << record;
  EXPECT_EQ(record["revoked"], true) << record;
  EXPECT_EQ(record["revoked_reason"], "disk image copied off-site") << record;
  auto audit = As(admin_, {"audit", "list", "--json"});
  ASSERT_EQ(audit.exit_code, 0) << audit.err;
  EXPECT_TRUE(Contains(audit.out, "\"host.revoke\"")) << audit.out;
  EXPECT_TRUE(Contains(audit.out, "disk image copied off-site")) << audit.out;

  // The token it enrolled with does not bring it back; a new one does.
  auto reused = Http("POST", "/api/v1/agent/enroll", "", EnrollRequest(token, "web-1", {}));
  EXPECT_EQ(reused.status, 403) << reused.body;
  EXPECT_TRUE(Contains(reused.body, "only with a new enrollment token")) << reused.body;
  auto back = Http("POST", "/api/v1/agent/enroll", "",
                   EnrollRequest(NewToken({"--labels", "env=production"}), "web-1", {}));
  ASSERT_EQ(back.status, 201) << back.body;
  EXPECT_EQ(Poll(back.Json().value("credential", "")).status, 200);
  EXPECT_EQ(Http("GET", "/api/v1/cmdb/hosts/web-1", viewer_).Json()["removed"], false);
}

TEST_F(AgentApiTest, AHostThatJoinsAfterTheStartIsListedAsNotInTheRelease) {
  const std::string web1 = Enroll("web-1", "env=production,app=c3m-video");
  const std::string id = Scheduled();
  ASSERT_EQ(As(rm_, {"release", "start", id}).exit_code, 0);
  const std::string web9 = Enroll("web-9", "env=production,app=c3m-video");  // after the start
  Enroll("db-1", "env=production,app=postgres");                             // does not match them

  auto status = As(viewer_, {"release", "status", id, "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  const json late = json::parse(status.out, nullptr, false)["not_in_release"];
  ASSERT_EQ(late.size(), 1u) << status.out;
  EXPECT_EQ(late[0]["host"], "web-9");
  EXPECT_TRUE(Contains(late[0].value("reason", ""), "after the rollout started")) << late;
  auto text = As(viewer_, {"release", "status", id});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_TRUE(Contains(text.out, "not in this release (1 host(s) matching its targets now"))
      << text.out;
  EXPECT_TRUE(Contains(text.out, "web-9")) << text.out;
  EXPECT_FALSE(Contains(text.out, "db-1")) << text.out;
  // It gets nothing: the release covers the hosts it started with.
  EXPECT_TRUE(Poll(web1).Json()["assignment"].is_object());
  EXPECT_TRUE(Poll(web9).Json()["assignment"].is_null());
}

TEST_F(AgentApiTest, UserTokensAndAgentCredentialsAreNotInterchangeable) {
  const std::string credential = Enroll("web-1", "env=production");
  EXPECT_EQ(Poll(admin_).status, 401);
  EXPECT_EQ(Http("GET", "/api/v1/releases", credential).status, 401);
  EXPECT_EQ(Http("GET", "/api/v1/agent/assignment", "").status, 401);
  EXPECT_EQ(Poll("nonsense").status, 401);
  EXPECT_EQ(Poll(credential, 0).Json(), json({{"assignment", nullptr}}));
  EXPECT_EQ(Http("GET", "/api/v1/agent/assignment?wait=soon", credential).status, 400);
}

// A poll with nothing to do is answered in the last quarter of its wait, at
// a point of its own: agents that polled together come back apart.
TEST_F(AgentApiTest, IdlePollsThatCameTogetherAreAnsweredApartWithinTheirWait) {
  constexpr int kHosts = 8;
  std::vector<std::string> credentials;
  for (int i = 1; i <= kHosts; ++i) {
    credentials.push_back(Enroll("web-" + std::to_string(i), "env=production"));
  }
  std::vector<HttpReply> replies(kHosts);
  std::vector<Clock::duration> took(kHosts);
  std::vector<std::thread> agents;
  for (int i = 0; i < kHosts; ++i) {
    agents.emplace_back([&, i] {
      const auto asked = Clock::now();
      replies[i] = Poll(credentials[i], 2);
      took[i] = Clock::now() - asked;
    });
  }
  for (std::thread& agent : agents) agent.join();
  for (int i = 0; i < kHosts; ++i) {
    ASSERT_EQ(replies[i].status, 200) << replies[i].body;
    EXPECT_TRUE(replies[i].Json()["assignment"].is_null()) << replies[i].body;
    EXPECT_GE(took[i], std::chrono::milliseconds(1490)) << "answered before 3/4 of its wait";
    EXPECT_LT(took[i], std::chrono::milliseconds(3500)) << "held well past its wait";
  }
  const auto [first, last] = std::minmax_element(took.begin(), took.end());
  EXPECT_GE(*last - *first, std::chrono::milliseconds(25))
      << "eight polls of 2 s asked at once were all answered within 25 ms of each other";
}

// A host that had nothing at its last poll is held without another look at
// the store (api/idle_hosts.hpp); what is assigned meanwhile still reaches it.
TEST_F(AgentApiTest, AnIdleHostsNextPollIsHeldWithoutALookAndStillWakesForItsAssignment) {
  const std::string web1 = Enroll("web-1", "env=production,app=c3m-video");
  const std::string web2 = Enroll("web-2", "env=production,app=c3m-video");
  const std::string id = Scheduled();
  ASSERT_TRUE(Poll(web1, 1).Json()["assignment"].is_null());
  ASSERT_TRUE(Poll(web2, 1).Json()["assignment"].is_null());
  auto held = HoldPoll(web1, 30);
  auto started = As(rm_, {"release", "start", id});
  const auto start_done = Clock::now();
  held->thread.join();
  ASSERT_EQ(started.exit_code, 0) << started.err;
  EXPECT_LT(held->answered - start_done, std::chrono::milliseconds(1000));
  ASSERT_EQ(held->reply.status, 200) << held->reply.body;
  EXPECT_EQ(held->reply.Json()["assignment"]["release"], id) << held->reply.body;
  // Its next poll looks, and finds the same unfinished deployment.
  EXPECT_EQ(Poll(web1, 30).Json(), held->reply.Json());
  // web-2 was not polling when its deployment was made: its next poll looks
  // and is answered at once.
  const auto asked = Clock::now();
  const json second = Poll(web2, 30).Json();
  EXPECT_LT(Clock::now() - asked, std::chrono::seconds(5));
  EXPECT_EQ(second["assignment"]["release"], id) << second;
}

TEST_F(AgentApiTest, AStartedRolloutReachesAnIdleAgentAtOnceAndEndsDeployed) {
  const std::string web1 = Enroll("web-1", "env=production,app=c3m-video");
  const std::string web2 = Enroll("web-2", "env=production,app=c3m-video");
  const std::string other = Enroll("db-1", "env=production,app=postgres");
  const std::string id = Scheduled();

  // web-1 waits in a long poll; the test knows it is parked from /healthz.
  auto held = HoldPoll(web1, 30);
  const auto health = Http("GET", "/healthz", "").Json();
  ASSERT_EQ(health["long_polls"], 1);
  EXPECT_EQ(health["wave_hold"], false);  // no wave is being assigned in parts
  EXPECT_EQ(health["held_requests"], 0);
  // Each request leaves an access line (at info, the daemon's default).
  EXPECT_TRUE(Contains(daemon_->log(), " GET /healthz -> 200 ")) << daemon_->log();
  auto started = As(rm_, {"release", "start", id});
  const auto start_done = Clock::now();
  held->thread.join();
  ASSERT_EQ(started.exit_code, 0) << started.err;
  EXPECT_TRUE(Contains(started.out, "2 host(s) assigned")) << started.out;
  EXPECT_LT(held->answered - start_done, std::chrono::milliseconds(1000))
      << "the assignment must reach a waiting agent in well under a second";
  ASSERT_EQ(held->reply.status, 200) << held->reply.body;
  const json assignment = held->reply.Json()["assignment"];
  ASSERT_TRUE(assignment.is_object()) << held->reply.body;
  EXPECT_EQ(assignment["release"], id);
  EXPECT_EQ(assignment["kind"], "install");
  EXPECT_EQ(assignment["app"], "c3m-video");
  EXPECT_EQ(assignment["version"], "V1.3.0.12");
  EXPECT_EQ(assignment["package_id"], package_id_);
  EXPECT_EQ(assignment["package_url"], "/api/v1/agent/packages/" + package_id_);
  EXPECT_EQ(assignment["host_timeout_seconds"], 900);
  const std::string d1 = assignment["deployment"];
  // The waiting poll was answered with what the wave's wakeup handed over: it
  // is exactly what a fresh look finds.
  EXPECT_EQ(held->reply.Json(), Poll(web1).Json());
  EXPECT_EQ(State(id), "deploying");
  // A host outside the targets gets nothing.
  EXPECT_EQ(Poll(other).Json()["assignment"], nullptr);

  // The package: whole, with its ETag, and resumed from an offset.
  const std::string file = ReadAll(dir_ / "c3m.fabu");
  auto whole = Http("GET", "/api/v1/agent/packages/" + package_id_, web1);
  EXPECT_EQ(whole.status, 200);
  EXPECT_EQ(whole.body, file);
  EXPECT_TRUE(Contains(whole.headers, "\"" + package_id_ + "\"")) << whole.headers;
  auto rest = Http("GET", "/api/v1/agent/packages/" + package_id_, web1, std::nullopt,
                   {"Range: bytes=1000-"});
  EXPECT_EQ(rest.status, 206) << rest.headers;
  EXPECT_EQ(rest.body, file.substr(1000));
  EXPECT_TRUE(Contains(rest.headers, "bytes 1000-" + std::to_string(file.size() - 1) + "/" +
                                         std::to_string(file.size())))
      << rest.headers;
  auto past = Http("GET", "/api/v1/agent/packages/" + package_id_, web1, std::nullopt,
                   {"Range: bytes=" + std::to_string(file.size()) + "-"});
  EXPECT_EQ(past.status, 416);
  // A host without that package assigned may not fetch it.
  EXPECT_EQ(Http("GET", "/api/v1/agent/packages/" + package_id_, other).status, 403);

  // The assignment is repeated until a final step; events are stored once.
  json first = {Event(d1, 1, "assigned"), Event(d1, 2, "downloading")};
  auto ack = Post(web1, first);
  ASSERT_EQ(ack.status, 200) << ack.body;
  EXPECT_EQ(ack.Json()["acknowledged"][d1], 2);
  ack = Post(web1, first);
  EXPECT_EQ(ack.Json()["acknowledged"][d1], 2);
  EXPECT_EQ(CountRows("SELECT COUNT(*) FROM deployment_events WHERE deployment = '" + d1 + "'"), 2);
  EXPECT_EQ(Poll(web1).Json()["assignment"]["deployment"], d1);
  // web-2's credential on web-1's deployment.
  EXPECT_EQ(Post(web2, json::array({Event(d1, 3, "downloaded")})).status, 403);
  EXPECT_EQ(Post(other, json::array({Event(d1, 3, "downloaded")})).status, 403);

  // A restart serves the same assignment, duplicating nothing.
  ASSERT_EQ(daemon_->Stop(), 0) << daemon_->log();
  Start();
  EXPECT_EQ(Poll(web1).Json()["assignment"]["deployment"], d1);
  const std::string d2 = Poll(web2).Json()["assignment"]["deployment"];
  EXPECT_NE(d2, d1);
  EXPECT_EQ(CountRows("SELECT COUNT(*) FROM deployments WHERE environment = 'production'"), 2);
  EXPECT_NE(As(rm_, {"release", "start", id}).exit_code, 0);

  Succeed(web1, d1);
  Succeed(web1, d1);  // all of it again: nothing new
  EXPECT_EQ(CountRows("SELECT COUNT(*) FROM deployment_events WHERE deployment = '" + d1 + "'"), 8);
  EXPECT_EQ(Poll(web1).Json()["assignment"], nullptr);
  EXPECT_EQ(State(id), "deploying");
  Succeed(web2, d2);
  EXPECT_EQ(State(id), "deployed");

  json hosts = Hosts(id);
  ASSERT_EQ(hosts.size(), 2u);
  EXPECT_EQ(hosts[0]["host"], "web-1");
  EXPECT_EQ(hosts[0]["step"], "succeeded");
  EXPECT_EQ(hosts[0]["result"], "succeeded");
  EXPECT_TRUE(hosts[0]["started"].is_string());
  EXPECT_TRUE(hosts[0]["finished"].is_string());
  auto table = As(viewer_, {"release", "hosts", id});
  EXPECT_TRUE(Contains(table.out, "web-2")) << table.out;
  EXPECT_TRUE(Contains(table.out, "deployed")) << table.out;

  // Inventory after the deployment.
  auto inventory =
      Http("POST", "/api/v1/agent/inventory", web1, EnrollRequest("", "web-1", {})["inventory"]);
  EXPECT_EQ(inventory.status, 200) << inventory.body;

  auto audit = As(admin_, {"audit", "list", "--release", id, "--json"});
  for (const char* action : {"release.start-rollout", "deployment.create", "deployment.events",
                             "deployment.finish", "release.finish-rollout"}) {
    EXPECT_TRUE(Contains(audit.out, action)) << action;
  }
  EXPECT_EQ(As(admin_, {"audit", "verify"}).exit_code, 0);
}

// Given a coordinator that assigns a wave one host first, a wave of three
// that a person starts goes out in parts: the first in the start's own
// transaction, the rest by the sweep; the hold passed on with the first
// part ends once the sweep has assigned them.
TEST_F(AgentApiTest, AWaveAPersonStartsInPartsReachesEveryHostAndItsHoldEnds) {
  daemon_.reset();
  const auto config_path = dir_ / "coordinator" / "config.json";
  json config = json::parse(ReadFile(config_path));
  config["limits"]["wave_first_part"] = 1;
  WriteFile(config_path, config.dump());
  Start();
  const std::vector<std::string> hosts{Enroll("web-1", "env=production,app=c3m-video"),
                                       Enroll("web-2", "env=production,app=c3m-video"),
                                       Enroll("web-3", "env=production,app=c3m-video")};
  const std::string id = Scheduled();
  auto started = As(rm_, {"release", "start", id});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  EXPECT_TRUE(Contains(started.out, "1 host(s) assigned")) << started.out;
  for (const std::string& host : hosts) {
    const json polled = Poll(host, 10).Json();
    EXPECT_TRUE(polled["assignment"].is_object()) << polled.dump();
  }
  const auto until = Clock::now() + std::chrono::seconds(10);
  json health = Http("GET", "/healthz", "").Json();
  while (Clock::now() < until && health["wave_hold"] != false) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    health = Http("GET", "/healthz", "").Json();
  }
  EXPECT_EQ(health["wave_hold"], false) << health.dump() << daemon_->log();
  EXPECT_EQ(CountRows("SELECT COUNT(*) FROM deployments WHERE release_id = '" + id +
                      "' AND environment = 'production'"),
            3);
}

TEST_F(AgentApiTest, OneFailedHostFailsTheRollout) {
  const std::string web1 = Enroll("web-1", "env=production,app=c3m-video");
  const std::string web2 = Enroll("web-2", "env=production,app=c3m-video");
  const std::string id = Scheduled();
  ASSERT_EQ(As(rm_, {"release", "start", id}).exit_code, 0);
  const std::string d1 = Poll(web1).Json()["assignment"]["deployment"];
  const std::string d2 = Poll(web2).Json()["assignment"]["deployment"];
  Succeed(web1, d1);
  // A failure from activating on is not final until the rollback is reported.
  ASSERT_EQ(Post(web2, {Event(d2, 1, "assigned"), Event(d2, 2, "activating"),
                        Event(d2, 3, "failed", "health check failed", "health_checking")})
                .status,
            200);
  EXPECT_EQ(State(id), "deploying");
  EXPECT_EQ(Poll(web2).Json()["assignment"]["deployment"], d2);
  ASSERT_EQ(Post(web2, {Event(d2, 4, "rolling_back"), Event(d2, 5, "rolled_back")}).status, 200);
  EXPECT_EQ(State(id), "failed");
  json hosts = Hosts(id);
  ASSERT_EQ(hosts.size(), 2u);
  EXPECT_EQ(hosts[1]["result"], "rolled_back");
  EXPECT_EQ(hosts[1]["message"], "health check failed");
}

// After a wave failed its threshold and nobody rolled back, a person deploys
// its failed hosts again: hosts that succeeded are never touched, and the
// wave is judged on the new results (procedure §6.1.1(4), docs/coordinator.md).
TEST_F(AgentApiTest, ARetryDeploysOnlyTheFailedHostsAgainAndJudgesTheWaveOnTheirNewResults) {
  const std::string web1 = Enroll("web-1", "env=production,app=c3m-video");
  const std::string web2 = Enroll("web-2", "env=production,app=c3m-video");
  const std::string web3 = Enroll("web-3", "env=production,app=c3m-video");
  const std::string id = Scheduled();
  ASSERT_EQ(As(rm_, {"release", "start", id}).exit_code, 0);
  const std::string d1 = Poll(web1).Json()["assignment"]["deployment"];
  const std::string d2 = Poll(web2).Json()["assignment"]["deployment"];
  const std::string d3 = Poll(web3).Json()["assignment"]["deployment"];
  Succeed(web1, d1);
  for (const auto& [credential, d] : {std::pair{web2, d2}, std::pair{web3, d3}}) {
    ASSERT_EQ(Post(credential, {Event(d, 1, "assigned"),
                                Event(d, 2, "failed", "signature by an unknown key", "verified")})
                  .status,
              200);
  }
  ASSERT_EQ(State(id), "failed");

  // Refusals name what is wrong and change nothing.
  auto succeeded = As(rm_, {"release", "retry", id, "--failed", "--hosts", "web-1", "--reason",
                            "publisher key added"});
  EXPECT_NE(succeeded.exit_code, 0);
  EXPECT_NE(succeeded.err.find("web-1 succeeded"), std::string::npos) << succeeded.err;
  auto viewer = As(viewer_, {"release", "retry", id, "--failed", "--reason", "x"});
  EXPECT_NE(viewer.exit_code, 0);
  EXPECT_NE(viewer.err.find("viewer"), std::string::npos) << viewer.err;
  auto no_reason = Http("POST", "/api/v1/releases/" + id + "/retry", rm_, json::object());
  EXPECT_EQ(no_reason.status, 400) << no_reason.body;
  EXPECT_EQ(State(id), "failed");

  // web-2 only: a new attempt for it, nothing for the others.
  auto retried = As(rm_, {"release", "retry", id, "--failed", "--hosts", "web-2", "--reason",
                          "publisher key added on web-2", "--json"});
  ASSERT_EQ(retried.exit_code, 0) << retried.err;
  EXPECT_EQ(json::parse(retried.out)["retried"], json::array({"web-2"})) << retried.out;
  EXPECT_EQ(State(id), "deploying");
  EXPECT_TRUE(Poll(web1).Json()["assignment"].is_null());
  EXPECT_TRUE(Poll(web3).Json()["assignment"].is_null());
  const json again = Poll(web2).Json()["assignment"];
  ASSERT_TRUE(again.is_object());
  EXPECT_NE(again["deployment"], d2);
  Succeed(web2, again["deployment"]);
  // web-3 still failed: over the threshold of 0 again.
  EXPECT_EQ(State(id), "failed");

  // Every failed host (web-3 now the only one), then the wave is within it.
  auto all = As(rm_, {"release", "retry", id, "--failed", "--reason", "key added everywhere"});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  const json third = Poll(web3).Json()["assignment"];
  ASSERT_TRUE(third.is_object());
  EXPECT_TRUE(Poll(web2).Json()["assignment"].is_null());
  Succeed(web3, third["deployment"]);
  EXPECT_EQ(State(id), "deployed");

  // Both attempts of web-2 and web-3 are in the records; web-1 was touched once.
  const json records =
      Http("GET", "/api/v1/releases/" + id + "/upgrade-records", viewer_).Json()["records"];
  std::map<std::string, int> per_host;
  for (const auto& r : records) ++per_host[r.value("host", "")];
  EXPECT_EQ(per_host["web-1"], 1) << records;
  EXPECT_EQ(per_host["web-2"], 2) << records;
  EXPECT_EQ(per_host["web-3"], 2) << records;
  auto audit = As(admin_, {"audit", "list", "--release", id, "--json"});
  std::size_t retries = 0;
  for (const auto& e : json::parse(audit.out)) retries += e.value("action", "") == "rollout.retry";
  EXPECT_EQ(retries, 2u) << audit.out;
}

// A rollout that ended deployed with failed hosts within the thresholds (a
// close would be "partial"): the failed hosts of every wave are deployed
// again, the release ends again once they are final, and a close may then
// be a success.
TEST_F(AgentApiTest, ARetryAfterADeployedRolloutDeploysTheFailedHostsOfEveryWaveAgain) {
  const std::string web1 = Enroll("web-1", "env=production,app=c3m-video");
  const std::string web2 = Enroll("web-2", "env=production,app=c3m-video");
  const std::string web3 = Enroll("web-3", "env=production,app=c3m-video");
  const std::string web4 = Enroll("web-4", "env=production,app=c3m-video");
  golive_changes_ = {{"waves", {"2", "100%"}}, {"max_failures", "1"}, {"between_waves", "0"}};
  const std::string id = Scheduled();
  ASSERT_EQ(As(rm_, {"release", "start", id}).exit_code, 0);
  const auto fail = [&](const std::string& credential, const std::string& d) {
    ASSERT_EQ(Post(credential,
                   {Event(d, 1, "assigned"), Event(d, 2, "failed", "disk full", "downloading")})
                  .status,
              200);
  };
  Succeed(web1, Poll(web1).Json()["assignment"]["deployment"]);
  const std::string d2 = Poll(web2).Json()["assignment"]["deployment"];
  ASSERT_NO_FATAL_FAILURE(fail(web2, d2));
  // Wave 1 within its threshold of 1: wave 2 starts.
  const json a3 = Poll(web3, 10).Json()["assignment"];
  ASSERT_TRUE(a3.is_object()) << State(id);
  Succeed(web3, a3["deployment"]);
  const std::string d4 = Poll(web4, 10).Json()["assignment"]["deployment"];
  ASSERT_NO_FATAL_FAILURE(fail(web4, d4));
  ASSERT_TRUE(WaitForState(id, "deployed", std::chrono::seconds(10))) << State(id);

  auto succeeded = As(
      rm_, {"release", "retry", id, "--failed", "--hosts", "web-3", "--reason", "disks cleaned"});
  EXPECT_NE(succeeded.exit_code, 0);
  EXPECT_NE(succeeded.err.find("web-3 succeeded"), std::string::npos) << succeeded.err;
  auto retried =
      As(rm_, {"release", "retry", id, "--failed", "--reason", "disks cleaned", "--json"});
  ASSERT_EQ(retried.exit_code, 0) << retried.err;
  EXPECT_EQ(json::parse(retried.out)["retried"], json::array({"web-2", "web-4"})) << retried.out;
  EXPECT_EQ(State(id), "deploying");
  EXPECT_TRUE(Poll(web1).Json()["assignment"].is_null());
  EXPECT_TRUE(Poll(web3).Json()["assignment"].is_null());
  const json again2 = Poll(web2).Json()["assignment"];
  const json again4 = Poll(web4).Json()["assignment"];
  ASSERT_TRUE(again2.is_object() && again4.is_object());
  Succeed(web2, again2["deployment"]);
  // web-4 (wave 2) is not final yet: the rollout does not end without it.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(State(id), "deploying");
  Succeed(web4, again4["deployment"]);
  ASSERT_TRUE(WaitForState(id, "deployed", std::chrono::seconds(10))) << State(id);
  // Every host's latest attempt succeeded; web-2 and web-4 have two.
  std::map<std::string, json> latest;
  for (const json& h : Hosts(id)) {
    const std::string host = h.value("host", "");
    if (!latest.contains(host) || latest[host].value("attempt", 0) < h.value("attempt", 0)) {
      latest[host] = h;
    }
  }
  ASSERT_EQ(latest.size(), 4u);
  for (const auto& [host, h] : latest) EXPECT_EQ(h.value("result", ""), "succeeded") << h;
  EXPECT_EQ(latest["web-2"].value("attempt", 0), 2);
  EXPECT_EQ(latest["web-4"].value("attempt", 0), 2);
  EXPECT_EQ(latest["web-1"].value("attempt", 0), 1);
}

// A person aborted a rollout in its first wave; once the cause is fixed, a
// resume takes the abort back and the rollout goes on where it stopped (a
// retry refuses, naming the resume).
TEST_F(AgentApiTest, AResumeTakesAnAbortBackAndGoesOnWhereTheRolloutStopped) {
  const std::string web1 = Enroll("web-1", "env=production,app=c3m-video");
  const std::string web2 = Enroll("web-2", "env=production,app=c3m-video");
  const std::string web3 = Enroll("web-3", "env=production,app=c3m-video");
  golive_changes_ = {{"waves", {"1", "100%"}}, {"between_waves", "0"}};
  const std::string id = Scheduled();
  ASSERT_EQ(As(rm_, {"release", "start", id}).exit_code, 0);
  const std::string d1 = Poll(web1).Json()["assignment"]["deployment"];
  ASSERT_EQ(As(rm_, {"release", "abort", id, "--reason", "wrong config in the package's hooks"})
                .exit_code,
            0);
  Succeed(web1, d1);
  ASSERT_TRUE(WaitForState(id, "failed", std::chrono::seconds(10))) << State(id);
  EXPECT_TRUE(Poll(web2).Json()["assignment"].is_null());

  auto retry = As(rm_, {"release", "retry", id, "--failed", "--reason", "x"});
  EXPECT_NE(retry.exit_code, 0);
  EXPECT_NE(retry.err.find("fabu release resume"), std::string::npos) << retry.err;

  auto resumed = As(rm_, {"release", "resume", id, "--comment", "hooks fixed on the hosts"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  const json a2 = Poll(web2, 10).Json()["assignment"];
  const json a3 = Poll(web3, 10).Json()["assignment"];
  ASSERT_TRUE(a2.is_object() && a3.is_object()) << State(id);
  Succeed(web2, a2["deployment"]);
  Succeed(web3, a3["deployment"]);
  ASSERT_TRUE(WaitForState(id, "deployed", std::chrono::seconds(10))) << State(id);
}

// The console's view of a large release: a page of its hosts, or only those
// in one state, while the waves still count every host.
TEST_F(AgentApiTest, TheStatusListsAPageOfHostsOrThoseInOneState) {
  const std::string web1 = Enroll("web-1", "env=production,app=c3m-video");
  const std::string web2 = Enroll("web-2", "env=production,app=c3m-video");
  const std::string web3 = Enroll("web-3", "env=production,app=c3m-video");
  const std::string id = Scheduled();
  ASSERT_EQ(As(rm_, {"release", "start", id}).exit_code, 0);
  const std::string d1 = Poll(web1).Json()["assignment"]["deployment"];
  const std::string d2 = Poll(web2).Json()["assignment"]["deployment"];
  const std::string d3 = Poll(web3).Json()["assignment"]["deployment"];
  Succeed(web1, d1);
  ASSERT_EQ(Post(web2, {Event(d2, 1, "assigned"), Event(d2, 2, "downloading")}).status, 200);
  ASSERT_EQ(Post(web3, {Event(d3, 1, "assigned"),
                        Event(d3, 2, "failed", "signature by an unknown key", "verified")})
                .status,
            200);
  const std::string status = "/api/v1/releases/" + id + "/status";
  auto names = [](const json& reply) {
    std::vector<std::string> out;
    for (const auto& h : reply["hosts"]) out.push_back(h["host"]);
    return out;
  };

  const json page = Http("GET", status + "?host_offset=1&host_limit=1", viewer_).Json();
  EXPECT_EQ(names(page), std::vector<std::string>{"web-2"}) << page;
  EXPECT_EQ(page["hosts_total"], 3);
  EXPECT_EQ(page["hosts_matching"], 3);
  ASSERT_EQ(page["waves"].size(), 1u);
  EXPECT_EQ(page["waves"][0]["hosts"], 3);
  EXPECT_EQ(page["waves"][0]["succeeded"], 1);
  EXPECT_EQ(page["waves"][0]["failed"], 1);

  EXPECT_EQ(names(Http("GET", status + "?hosts=succeeded", viewer_).Json()),
            std::vector<std::string>{"web-1"});
  EXPECT_EQ(names(Http("GET", status + "?hosts=active", viewer_).Json()),
            std::vector<std::string>{"web-2"});
  const json failed = Http("GET", status + "?hosts=failed", viewer_).Json();
  EXPECT_EQ(names(failed), std::vector<std::string>{"web-3"}) << failed;
  EXPECT_EQ(failed["hosts_matching"], 1);
  EXPECT_EQ(failed["hosts"][0]["message"], "signature by an unknown key");
  // One wave of every host: none waits for a later one.
  const json pending = Http("GET", status + "?hosts=pending", viewer_).Json();
  EXPECT_TRUE(pending["hosts"].empty()) << pending;
  EXPECT_EQ(pending["hosts_matching"], 0);
  const HttpReply bad = Http("GET", status + "?hosts=broken", viewer_);
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("broken"), std::string::npos) << bad.body;
}

TEST_F(AgentApiTest, AFailureBeforeActivatingIsFinal) {
  const std::string web1 = Enroll("web-1", "env=production,app=c3m-video");
  const std::string id = Scheduled();
  ASSERT_EQ(As(rm_, {"release", "start", id}).exit_code, 0);
  const std::string d1 = Poll(web1).Json()["assignment"]["deployment"];
  ASSERT_EQ(Post(web1, {Event(d1, 1, "assigned"),
                        Event(d1, 2, "failed", "signature by an unknown key", "verified")})
                .status,
            200);
  EXPECT_EQ(State(id), "failed");
  EXPECT_EQ(Hosts(id)[0]["result"], "failed");
}

TEST_F(AgentApiTest, AHostThatDoesNotFinishInTimeCountsAsFailed) {
  const std::string web1 = Enroll("web-1", "env=production,app=c3m-video");
  // 3 s: under the sanitizers and a parallel ctest, start and the first poll
  // took over 1 s, and the poll found the deployment already timed out.
  const std::string id = Scheduled("3s");
  ASSERT_EQ(As(rm_, {"release", "start", id}).exit_code, 0);
  const json assignment = Poll(web1).Json()["assignment"];
  ASSERT_TRUE(assignment.is_object()) << assignment << daemon_->log();
  const std::string d1 = assignment["deployment"];
  ASSERT_EQ(Post(web1, json::array({Event(d1, 1, "assigned")})).status, 200);
  ASSERT_TRUE(WaitForState(id, "failed", std::chrono::seconds(20))) << daemon_->log();
  json hosts = Hosts(id);
  EXPECT_EQ(hosts[0]["result"], "timeout");
  EXPECT_TRUE(Contains(hosts[0]["message"], "timeout")) << hosts[0];
  EXPECT_EQ(Poll(web1).Json()["assignment"], nullptr);
}

TEST_F(AgentApiTest, ATestDeploymentGoesToTheTestHostsOnly) {
  const std::string test1 = Enroll("test-1", "env=test,app=c3m-video");
  const std::string web1 = Enroll("web-1", "env=production,app=c3m-video");
  const std::string id = Approved();
  auto viewer = As(viewer_, {"release", "test", id});
  EXPECT_NE(viewer.exit_code, 0);
  auto tested = As(rm_, {"release", "test", id});
  ASSERT_EQ(tested.exit_code, 0) << tested.err;
  EXPECT_EQ(State(id), "testing");
  const json assignment = Poll(test1).Json()["assignment"];
  ASSERT_TRUE(assignment.is_object());
  EXPECT_EQ(Poll(web1).Json()["assignment"], nullptr);
  // Testing again while test-1 is busy makes no second deployment.
  auto again = As(tester_, {"release", "test", id, "--json"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_TRUE(json::parse(again.out)["deployments"].empty());
  Succeed(test1, assignment["deployment"]);
  EXPECT_EQ(State(id), "testing");  // the tester's report decides, not the deployment
  EXPECT_EQ(Hosts(id, "test")[0]["result"], "succeeded");
  // Starting production before acceptance names the state.
  auto early = As(rm_, {"release", "start", id});
  EXPECT_NE(early.exit_code, 0);
  EXPECT_TRUE(Contains(early.err, "testing")) << early.err;
}

TEST_F(AgentApiTest, NoTargetHostsRefusesTheStart) {
  const std::string id = Scheduled();  // with a test host only
  auto r = As(rm_, {"release", "start", id});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "env=production")) << r.err;
  EXPECT_EQ(State(id), "scheduled");
}

}  // namespace
}  // namespace fabu::testing
