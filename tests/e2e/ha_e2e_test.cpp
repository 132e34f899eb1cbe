// Several coordinators on one PostgreSQL database (docs/ha.md): three real
// `fabu-coordinator serve` processes, the second and third made by
// `fabu-coordinator join`, real agents that know all three, the real CLI.
// Only where the tests' stores are in PostgreSQL (FABU_TEST_STORE, the
// PostgreSQL pass of scripts/test); skipped on SQLite, where one coordinator
// is all there can be.
#include <signal.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "coordinator/cmdb/connectors.hpp"
#include "tests/e2e/fleet.hpp"
#include "tests/support/coordinator_process.hpp"
#include "tests/support/http_receiver.hpp"
#include "tests/support/run_command.hpp"
#include "tests/support/test_store.hpp"

namespace fabu::e2e {
namespace {

using namespace std::chrono_literals;
using fabu::testing::LastLine;
using fabu::testing::ReadFile;
using fabu::testing::RunCommand;
using fabu::testing::WriteFile;
using Clock = std::chrono::steady_clock;

class HaTest : public Fleet {
 protected:
  void SetUp() override {
    if (!fabu::testing::TestStoreIsPostgresql()) {
      GTEST_SKIP() << "several coordinators share a PostgreSQL store; FABU_TEST_STORE is not set";
    }
    ASSERT_NO_FATAL_FAILURE(Fleet::SetUp());
    // The installation delivers its upgrade records to a CMDB webhook (the
    // holder of the lease sends them); the receiver counts each key. Set
    // before the others join: `join` copies config.json and the secret file
    // it names.
    ASSERT_EQ(StopCoordinator(), 0);
    WriteFile(CoordinatorDir() / "hook.secret", "k3y-for-hmac\n");
    json config = json::parse(ReadFile(CoordinatorDir() / "config.json"));
    config["cmdb"] = {{"connectors",
                       {{{"name", "ops"},
                         {"type", "webhook"},
                         {"url", receiver_.url("/cmdb")},
                         {"secret_file", "hook.secret"}}}},
                      {"retry", {{"initial_seconds", 1}, {"max_seconds", 2}}}};
    config["webhook_allow"] = json::array({receiver_.url("/")});
    WriteFile(CoordinatorDir() / "config.json", config.dump(2));
    ASSERT_NO_FATAL_FAILURE(StartCoordinator());
    for (const char* name : {"coordinator-b", "coordinator-c"}) {
      const fs::path data = dir_ / name;
      auto joined =
          RunCommand({fabu::testing::CoordinatorBinary(), "join", "--data", data.string(), "--from",
                      CoordinatorDir().string(), "--hostname", std::string(name) + ".example"});
      ASSERT_EQ(joined.exit_code, 0) << joined.out << joined.err;
      Peer peer;
      peer.data = data;
      peer.process = Serve(data, 0, peer.port);
      ASSERT_NE(peer.port, 0);
      cli_servers_.push_back(peer.url());
      peers_.push_back(std::move(peer));
    }
  }

  void TearDown() override {
    for (Peer& peer : peers_) {
      if (peer.process && peer.process->Running()) {
        EXPECT_EQ(peer.process->Terminate(), 0) << peer.data << " on SIGTERM";
      }
      if (HasFailure()) {
        std::cerr << "--- " << peer.data.filename().string() << " log (tail) ---\n"
                  << Tail(ReadIfExists(peer.data / "serve.log")) << "\n";
      }
    }
    Fleet::TearDown();
  }

  struct Peer {
    fs::path data;
    int port = 0;
    std::unique_ptr<Process> process;
    std::string url() const { return "https://127.0.0.1:" + std::to_string(port); }
  };

  static std::string ReadIfExists(const fs::path& path) {
    std::error_code ec;
    return fs::exists(path, ec) ? ReadFile(path) : std::string();
  }
  static std::string Tail(const std::string& text) {
    return text.size() > 4000 ? text.substr(text.size() - 4000) : text;
  }

  // The engine lease's row: holder ("HOST:PID:ID") and token.
  std::pair<std::string, long long> LeaseRow() {
    auto rows = QueryStore("SELECT holder, token FROM leases WHERE name = 'engine'");
    if (rows.empty()) return {"", 0};
    return {rows[0][0], std::stoll(rows[0][1])};
  }
  // The pid in a holder name.
  static pid_t PidOf(const std::string& holder) {
    const auto first = holder.find(':');
    const auto second = holder.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) return -1;
    return static_cast<pid_t>(std::stol(holder.substr(first + 1, second - first - 1)));
  }

  // The CLI against one coordinator alone.
  fabu::testing::CommandResult AsOn(const std::string& url, const std::string& token,
                                    const std::vector<std::string>& args) {
    std::vector<std::string> argv{fabu::testing::FabuCli()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, {}, 60s,
                      {"FABU_SERVER=" + url, "FABU_CA=" + Ca().string(), "FABU_TOKEN=" + token});
  }

  // Waits until the rollout stops at the control point after `wave`.
  bool AtControlPoint(const std::string& id, int wave) {
    return WaitFor(
        [&] {
          return Contains(Status(id).value("waiting", ""),
                          "control point after wave " + std::to_string(wave));
        },
        90s);
  }

  // The long polls a coordinator holds now (GET /healthz).
  int LongPolls(const std::string& url) {
    auto r = RunCommand({"curl", "-sS", "--cacert", Ca().string(), url + "/healthz"});
    const json health = json::parse(r.out, nullptr, false);
    return health.is_object() ? health.value("long_polls", -1) : -1;
  }

  // The outbox's messages not delivered yet, and all of them.
  std::pair<int, int> Undelivered() {
    auto rows = QueryStore(
        "SELECT COALESCE(SUM(CASE WHEN state <> 'delivered' THEN 1 ELSE 0 END), 0), COUNT(*) "
        "FROM cmdb_outbox");
    if (rows.empty()) return {-1, -1};
    return {std::stoi(rows[0][0]), std::stoi(rows[0][1])};
  }

  fabu::testing::HttpReceiver receiver_;
  std::vector<Peer> peers_;
};

// A host's long poll is held by coordinator A; the release is started on
// coordinator B, which assigns the host in its own transaction. A wakes the
// poll at once (PostgreSQL LISTEN/NOTIFY), not when the poll's 60 s run out.
TEST_F(HaTest, ALongPollHeldByOneCoordinatorWakesWhenAnotherAssignsItsHost) {
  ASSERT_NO_FATAL_FAILURE(AddAgents(2, "env=production,app=c3m-video", false));
  for (Agent& agent : agents_) {
    ASSERT_NO_FATAL_FAILURE(EditConfig(agent, {{"poll_wait_seconds", 60}}));
    StartAgent(agent);
  }
  const Package v1 = BuildAndUpload(kV1);
  const std::string id = Scheduled(v1);
  // Both agents wait in a long poll on A (theirs: the only URL they know).
  ASSERT_TRUE(WaitFor([&] { return LongPolls(Url()) == 2; }, 30s)) << LongPolls(Url());
  const auto started = Clock::now();
  auto start = AsOn(peers_[0].url(), rm_, {"release", "start", id});
  ASSERT_EQ(start.exit_code, 0) << start.out << start.err;
  ASSERT_EQ(WaitForFinal(id, 60s), "deployed") << AllAgentLogs();
  // Far below the 60 s the polls would otherwise have waited.
  EXPECT_LT(Clock::now() - started, 20s);
  for (const Agent& agent : agents_) {
    EXPECT_EQ(Current(agent), fs::path("releases") / kV1) << agent.name;
  }
}

// Three waves with a gate; the coordinator holding the lease is killed
// (SIGKILL) while wave 2 installs. Another coordinator takes the lease over
// within 10 s, the agents that talked to the dead one move to another, the
// gates are confirmed on the survivors, and the rollout completes: every
// host deployed once, one upgrade record each.
TEST_F(HaTest, TheLeaseHolderIsKilledMidRolloutAndAnotherCarriesItToTheEnd) {
  // The coordinator started first holds the lease.
  ASSERT_TRUE(WaitFor([&] { return PidOf(LeaseRow().first) == CoordinatorPid(); }, 15s))
      << LeaseRow().first;
  ASSERT_NO_FATAL_FAILURE(AddAgents(6, "env=production,app=c3m-video", false));
  for (Agent& agent : agents_) {
    // A first (the one that dies), then the two others.
    ASSERT_NO_FATAL_FAILURE(EditConfig(
        agent, {{"server", nullptr}, {"servers", {Url(), peers_[0].url(), peers_[1].url()}}}));
    StartAgent(agent);
  }
  golive_changes_ = {{"waves", {"1", "50%", "100%"}}, {"between_waves", "gate"}};
  const Package v1 = BuildAndUpload(kV1);
  // Wave 2 (web-2, web-3) waits inside its activate hook until GO.
  for (int i : {1, 2}) WriteFile(agents_[i].apps() / "HOLD", "");
  const std::string id = Release(v1);
  ASSERT_TRUE(AtControlPoint(id, 1)) << Status(id).dump(2);
  auto gate = AsOn(peers_[0].url(), wang_, {"release", "gate", id, "--confirm", "--comment", "w1"});
  ASSERT_EQ(gate.exit_code, 0) << gate.out << gate.err;
  ASSERT_TRUE(WaitFor([&] {
    return fs::exists(agents_[1].apps() / "HELD") && fs::exists(agents_[2].apps() / "HELD");
  })) << AllAgentLogs();

  // Wave 1's upgrade record delivered by the holder before it dies: nothing
  // is in flight at the kill (one that was could be sent again: at least
  // once, with its idempotency key; docs/ha.md).
  ASSERT_TRUE(WaitFor(
      [&] {
        return Undelivered() == std::pair{0, 1};
      },
      30s))
      << Undelivered().first << " of " << Undelivered().second;

  const auto killed = Clock::now();
  const std::string before = LeaseRow().first;
  KillCoordinator();
  std::string after;
  ASSERT_TRUE(WaitFor(
      [&] {
        after = LeaseRow().first;
        return !after.empty() && after != before;
      },
      15s))
      << before;
  const auto takeover = Clock::now() - killed;
  EXPECT_LT(takeover, 10s) << "takeover after " << std::chrono::duration<double>(takeover).count()
                           << " s";
  const pid_t holder = PidOf(after);
  EXPECT_TRUE(holder == peers_[0].process->pid() || holder == peers_[1].process->pid()) << after;
  EXPECT_TRUE(
      Contains(ReadIfExists(holder == peers_[0].process->pid() ? peers_[0].data / "serve.log"
                                                               : peers_[1].data / "serve.log"),
               "taken over by this coordinator"));

  for (int i : {1, 2}) WriteFile(agents_[i].apps() / "GO", "");
  ASSERT_TRUE(AtControlPoint(id, 2)) << Status(id).dump(2) << AllAgentLogs();
  gate = AsOn(peers_[1].url(), wang_, {"release", "gate", id, "--confirm", "--comment", "w2"});
  ASSERT_EQ(gate.exit_code, 0) << gate.out << gate.err;
  ASSERT_EQ(WaitForFinal(id, 120s), "deployed") << Status(id).dump(2) << AllAgentLogs();

  for (const Agent& agent : agents_) {
    EXPECT_EQ(Current(agent), fs::path("releases") / kV1) << agent.name;
  }
  // No host assigned twice, every upgrade record written once.
  const auto per_host = QueryStore("SELECT host, COUNT(*) FROM deployments WHERE release_id = '" +
                                   id + "' AND host LIKE 'web-%' GROUP BY host");
  EXPECT_EQ(per_host.size(), 6u);
  for (const auto& row : per_host) EXPECT_EQ(row[1], "1") << row[0];
  const auto records =
      QueryStore("SELECT host, COUNT(*) FROM upgrade_records WHERE release_id = '" + id +
                 "' AND host LIKE 'web-%' GROUP BY host");
  EXPECT_EQ(records.size(), 6u);
  for (const auto& row : records) EXPECT_EQ(row[1], "1") << row[0];
  // The survivors served the package uploaded to the dead one: fetched from
  // the database and kept.
  const std::string file = v1.id + ".fabu";
  EXPECT_TRUE(fs::exists(peers_[0].data / "packages" / file) ||
              fs::exists(peers_[1].data / "packages" / file));
  // The agents of the dead coordinator went on with another.
  EXPECT_TRUE(Contains(AllAgentLogs(), "moving to")) << AllAgentLogs();
  // Every upgrade record reached the CMDB's webhook once, signed: the one
  // from before the kill and the five the new holder sent.
  ASSERT_TRUE(WaitFor(
      [&] {
        return Undelivered() == std::pair{0, 6};
      },
      60s))
      << Undelivered().first << " of " << Undelivered().second;
  std::map<std::string, int> accepted;
  for (const auto& request : receiver_.requests()) {
    EXPECT_EQ(request.headers.at("x-fabu-signature"),
              coordinator::WebhookSignature("k3y-for-hmac", request.body));
    if (request.status == 200) ++accepted[request.headers.at("idempotency-key")];
  }
  EXPECT_EQ(accepted.size(), 6u);
  for (const auto& [key, count] : accepted) EXPECT_EQ(count, 1) << key;
}

// The holder is stopped (SIGSTOP) long enough for another to take over, then
// resumed: it finds it lost the lease and does not act as the holder again;
// it still answers the API.
TEST_F(HaTest, AStoppedHolderFindsOnResumeThatItLostTheLease) {
  ASSERT_TRUE(WaitFor([&] { return PidOf(LeaseRow().first) == CoordinatorPid(); }, 15s))
      << LeaseRow().first;
  const auto [first, first_token] = LeaseRow();
  // Its log from here on (it was restarted once in SetUp, and took the
  // lease again then).
  const std::size_t log_before = CoordinatorLog().size();
  auto log_since = [&] { return CoordinatorLog().substr(log_before); };
  ASSERT_EQ(::kill(CoordinatorPid(), SIGSTOP), 0);
  std::pair<std::string, long long> taken;
  const bool over = WaitFor(
      [&] {
        taken = LeaseRow();
        return taken.first != first;
      },
      15s);
  ASSERT_EQ(::kill(CoordinatorPid(), SIGCONT), 0);
  ASSERT_TRUE(over) << first;
  EXPECT_GT(taken.second, first_token);
  ASSERT_TRUE(WaitFor([&] { return Contains(log_since(), "lost; now held by"); }, 15s))
      << log_since();
  // Some renewals later the lease is still the other's, and the resumed
  // coordinator took it back at no point.
  std::this_thread::sleep_for(4s);
  EXPECT_EQ(LeaseRow().first, taken.first);
  EXPECT_FALSE(Contains(log_since(), "taken over by this coordinator")) << log_since();
  // It serves the API as before.
  auto list = AsOn(Url(), viewer_, {"release", "list"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
}

// Each coordinator answers a bearer token it has accepted from memory
// (auth/token_cache.hpp). A token rotated or a user disabled on one
// coordinator is refused by the others at once, not when their memory of
// it runs out (a minute).
TEST_F(HaTest, ATokenRotatedOrAUserDisabledOnOneCoordinatorIsRefusedByTheOthersAtOnce) {
  // Each of `urls` takes `token` now (and so remembers it).
  const auto taken_by = [&](const std::vector<std::string>& urls, const std::string& token) {
    for (const std::string& url : urls) {
      auto r = AsOn(url, token, {"release", "list"});
      ASSERT_EQ(r.exit_code, 0) << url << ": " << r.err;
    }
  };
  // `url` refuses `token` within 2 s; the refusal's message.
  const auto refusal = [&](const std::string& url, const std::string& token) {
    fabu::testing::CommandResult r;
    const bool refused = WaitFor(
        [&] {
          r = AsOn(url, token, {"release", "list"});
          return r.exit_code != 0;
        },
        2s);
    EXPECT_TRUE(refused) << url << " still takes the token";
    return r.err;
  };
  const std::vector<std::string> b_and_c{peers_[0].url(), peers_[1].url()};
  ASSERT_NO_FATAL_FAILURE(taken_by(b_and_c, viewer_));
  auto rotated = AsOn(Url(), admin_, {"user", "token", "rotate", "zhao.viewer"});
  ASSERT_EQ(rotated.exit_code, 0) << rotated.err;
  const std::string new_token = LastLine(rotated.out);
  ASSERT_EQ(new_token.size(), 64u) << rotated.out;
  for (const std::string& url : b_and_c) {
    const std::string why = refusal(url, viewer_);
    EXPECT_TRUE(Contains(why, "unknown bearer token")) << url << ": " << why;
  }

  // Disabled on the second coordinator: the first and third, which took the
  // new token a moment ago, refuse it.
  const std::vector<std::string> a_and_c{Url(), peers_[1].url()};
  ASSERT_NO_FATAL_FAILURE(taken_by(a_and_c, new_token));
  auto disabled = AsOn(peers_[0].url(), admin_, {"user", "disable", "zhao.viewer"});
  ASSERT_EQ(disabled.exit_code, 0) << disabled.err;
  for (const std::string& url : a_and_c) {
    const std::string why = refusal(url, new_token);
    EXPECT_TRUE(Contains(why, "user \"zhao.viewer\" is disabled")) << url << ": " << why;
  }
}

// The database goes away in the middle of a rollout (no connection can be
// made, every open one ended: what a restart of the server does, for as
// long as it lasts). Meanwhile the coordinators answer 503 with a
// Retry-After, not a hang; the agents keep their steps in their journals.
// When it is back, the coordinators connect again and the rollout completes
// with nothing lost: every host deployed once, every step stored.
TEST_F(HaTest, TheDatabaseGoesAwayMidRolloutAndTheRolloutCompletesWhenItIsBack) {
  ASSERT_NO_FATAL_FAILURE(AddAgents(3, "env=production,app=c3m-video", false));
  for (Agent& agent : agents_) {
    ASSERT_NO_FATAL_FAILURE(EditConfig(
        agent, {{"server", nullptr}, {"servers", {Url(), peers_[0].url(), peers_[1].url()}}}));
    StartAgent(agent);
  }
  const Package v1 = BuildAndUpload(kV1);
  HoldEveryAgent();
  const std::string id = Release(v1);
  ASSERT_TRUE(AllHeld()) << AllAgentLogs();

  ASSERT_NO_FATAL_FAILURE(fabu::testing::SetStoreDatabaseDown(CoordinatorDir(), true));
  struct Up {
    fs::path data;
    ~Up() { fabu::testing::SetStoreDatabaseDown(data, false); }
  } up{CoordinatorDir()};
  // Each coordinator says so, at once, with when to ask again.
  for (const std::string& url : {Url(), peers_[0].url(), peers_[1].url()}) {
    const auto started = Clock::now();
    auto r = RunCommand({"curl", "-sS", "-i", "--cacert", Ca().string(), "-H",
                         "Authorization: Bearer " + viewer_, url + "/api/v1/releases/" + id});
    EXPECT_LT(Clock::now() - started, 10s) << url;
    EXPECT_TRUE(Contains(r.out, "HTTP/1.1 503")) << url << "\n" << r.out;
    EXPECT_TRUE(Contains(Lower(r.out), "retry-after: ")) << r.out;
    EXPECT_TRUE(Contains(r.out, "cannot be reached")) << r.out;
  }
  // The agents finish installing meanwhile; their steps wait in their journals.
  for (const Agent& agent : agents_) WriteFile(agent.apps() / "GO", "");
  ASSERT_TRUE(WaitFor(
      [&] {
        return std::ranges::all_of(
            agents_, [&](const Agent& a) { return Current(a) == fs::path("releases") / kV1; });
      },
      60s))
      << AllAgentLogs();
  std::this_thread::sleep_for(2s);

  fabu::testing::SetStoreDatabaseDown(CoordinatorDir(), false);
  ASSERT_EQ(WaitForFinal(id, 90s), "deployed") << Status(id).dump(2) << AllAgentLogs();
  const auto per_host = QueryStore("SELECT host, COUNT(*) FROM deployments WHERE release_id = '" +
                                   id + "' AND host LIKE 'web-%' GROUP BY host");
  EXPECT_EQ(per_host.size(), 3u);
  for (const auto& row : per_host) EXPECT_EQ(row[1], "1") << row[0];
  // Every step each agent took is stored: its events numbered 1, 2, ... with
  // no gap and none twice, the last one `succeeded`.
  for (const Agent& agent : agents_) {
    const json timeline =
        json::parse(As(viewer_, {"release", "host", id, agent.name, "--json"}).out, nullptr, false);
    ASSERT_TRUE(timeline.is_object() && timeline.contains("deployments")) << agent.name;
    ASSERT_EQ(timeline["deployments"].size(), 1u) << timeline.dump(2);
    const json& events = timeline["deployments"][0]["events"];
    ASSERT_FALSE(events.empty()) << timeline.dump(2);
    for (std::size_t i = 0; i < events.size(); ++i) {
      EXPECT_EQ(events[i].value("sequence", 0), static_cast<int>(i + 1)) << timeline.dump(2);
    }
    EXPECT_EQ(events.back().value("step", ""), "succeeded") << timeline.dump(2);
  }
}

}  // namespace
}  // namespace fabu::e2e
