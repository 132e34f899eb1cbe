// The coordinator as its operators and release managers use it: the real
// fabu-coordinator on loopback, driven by the real fabu CLI (and the HTTP
// client, tests/support/agent_http.hpp, where a test needs to send what the
// CLI never would).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>

#include "tests/support/agent_http.hpp"
#include "tests/support/coordinator_process.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_store.hpp"

namespace fabu::testing {
namespace {

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// A coordinator initialized in a temp dir and serving.
class CoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto init = InitCoordinator(data());
    ASSERT_EQ(init.exit_code, 0) << init.err;
    admin_token_ = LastLine(init.out);
    ASSERT_EQ(admin_token_.size(), 64u) << init.out;
    Start();
  }

  std::filesystem::path data() const { return dir_ / "coordinator"; }

  void Start() {
    daemon_ = std::make_unique<CoordinatorProcess>(data());
    ASSERT_TRUE(daemon_->started()) << daemon_->log();
  }
  void Restart() {
    ASSERT_EQ(daemon_->Stop(), 0) << daemon_->log();
    Start();
  }

  CommandResult AsAdmin(const std::vector<std::string>& args) {
    return FabuAs(*daemon_, admin_token_, args);
  }
  std::string AddUser(const std::string& name, const std::string& role) {
    auto r = AsAdmin({"user", "add", name, "--role", role});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return LastLine(r.out);
  }

  // POSTs the body of `body_file` as JSON, byte for byte, with `headers`
  // added (the HTTP client, the CA pinned).
  HttpReply Post(const std::string& path, const std::filesystem::path& body_file,
                 const std::string& token, const std::vector<std::string>& headers = {}) {
    AgentHttpClient client(daemon_->url(), daemon_->ca());
    return client.Request("POST", path, token, ReadFile(body_file), headers);
  }

  TempDir dir_;
  std::string admin_token_;
  std::unique_ptr<CoordinatorProcess> daemon_;
};

TEST(CoordinatorInitTest, InitMakesTheDataDirAndPrintsTheAdminTokenLast) {
  FABU_SQLITE_ONLY();  // looks for the token in coordinator.db
  TempDir dir;
  auto init = InitCoordinator(dir / "c", {"--hostname", "coord.example"});
  ASSERT_EQ(init.exit_code, 0) << init.err;
  const std::string token = LastLine(init.out);
  EXPECT_EQ(token.size(), 64u);
  EXPECT_EQ(token.find_first_not_of("0123456789abcdef"), std::string::npos);
  for (const char* file :
       {"coordinator.db", "config.json", "ca.pem", "ca.key", "server.pem", "server.key"}) {
    EXPECT_TRUE(std::filesystem::exists(dir / "c" / file)) << file;
  }
  const auto key_perms = std::filesystem::status(dir / "c" / "ca.key").permissions();
  EXPECT_EQ(key_perms & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  EXPECT_FALSE(Contains(ReadFile(dir / "c" / "coordinator.db"), token))
      << "the token must be stored hashed";
}

// A new installation asks every agent for its client certificate; a
// coordinator for clients that enroll without one says so at init.
TEST(CoordinatorInitTest, ANewInstallationRequiresAgentsCertificates) {
  TempDir dir;
  std::vector<std::string> plain{CoordinatorBinary(), "init", "--data", (dir / "a").string()};
  for (std::string& arg : TestStoreInitArgs()) plain.push_back(std::move(arg));
  const auto init = RunCommand(plain);
  ASSERT_EQ(init.exit_code, 0) << init.err;
  EXPECT_EQ(nlohmann::json::parse(ReadFile(dir / "a" / "config.json"))["agent_certificates"],
            "required");
  ASSERT_EQ(InitCoordinator(dir / "b", {"--agent-certificates", "optional"}).exit_code, 0);
  EXPECT_EQ(nlohmann::json::parse(ReadFile(dir / "b" / "config.json"))["agent_certificates"],
            "optional");
  auto wrong = InitCoordinator(dir / "c", {"--agent-certificates", "sometimes"});
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_TRUE(Contains(wrong.err, "--agent-certificates")) << wrong.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "c" / "config.json"));
}

TEST(CoordinatorInitTest, InitRefusesADirectoryHoldingAStore) {
  TempDir dir;
  ASSERT_EQ(InitCoordinator(dir / "c").exit_code, 0);
  const std::string config_before = ReadFile(dir / "c" / "config.json");
  auto again = InitCoordinator(dir / "c", {"--listen", "127.0.0.1:9999"});
  EXPECT_NE(again.exit_code, 0);
  EXPECT_TRUE(Contains(again.err, "already holds a coordinator")) << again.err;
  EXPECT_EQ(again.out, "");
  EXPECT_EQ(ReadFile(dir / "c" / "config.json"), config_before);
}

TEST(CoordinatorInitTest, ABadListenAddressIsNamedAndLeavesNothing) {
  TempDir dir;
  auto init = InitCoordinator(dir / "c", {"--listen", "nowhere"});
  EXPECT_NE(init.exit_code, 0);
  EXPECT_TRUE(Contains(init.err, "--listen")) << init.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "c" / "coordinator.db"));
}

TEST(CoordinatorInitTest, InitRefusesPortZeroSoARestartCannotStrandTheAgents) {
  // Given `init --listen 127.0.0.1:0`, the config would pick another port at
  // every start; init refuses it, says why, and creates nothing.
  TempDir dir;
  auto init = InitCoordinator(dir / "c", {"--listen", "127.0.0.1:0"});
  EXPECT_EQ(init.exit_code, 1);
  EXPECT_TRUE(Contains(init.err, "--listen 127.0.0.1:0: port 0 would choose another port"))
      << init.err;
  EXPECT_TRUE(Contains(init.err, "give a fixed port")) << init.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "c"));
}

TEST_F(CoordinatorTest, TheDaemonAnnouncesItsPortInAFileToo) {
  EXPECT_EQ(std::stoi(ReadFile(data() / "coordinator.port")), daemon_->port());
}

TEST_F(CoordinatorTest, TheAdminTokenWorks) {
  auto r = AsAdmin({"user", "list"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Contains(r.out, "admin")) << r.out;
}

TEST_F(CoordinatorTest, UsersAreAddedListedAndDisabled) {
  const std::string token = AddUser("wang.approver", "approver");
  EXPECT_EQ(token.size(), 64u);

  auto list = AsAdmin({"user", "list", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_TRUE(Contains(list.out, R"("name": "wang.approver")")) << list.out;
  EXPECT_TRUE(Contains(list.out, R"("role": "approver")")) << list.out;

  // The new user's own token works...
  auto own = FabuAs(*daemon_, token, {"user", "list"});
  EXPECT_EQ(own.exit_code, 0) << own.err;

  // ...until an admin disables the user.
  auto disable = AsAdmin({"user", "disable", "wang.approver"});
  ASSERT_EQ(disable.exit_code, 0) << disable.err;
  auto after = FabuAs(*daemon_, token, {"user", "list"});
  EXPECT_NE(after.exit_code, 0);
  EXPECT_TRUE(Contains(after.err, "disabled")) << after.err;
  EXPECT_TRUE(Contains(after.err, "401")) << after.err;
  auto table = AsAdmin({"user", "list"});
  EXPECT_TRUE(Contains(table.out, "disabled")) << table.out;
}

TEST_F(CoordinatorTest, DuplicateAndMalformedUsersAreRefusedWithTheReason) {
  AddUser("ann", "tester");
  auto again = AsAdmin({"user", "add", "ann", "--role", "viewer"});
  EXPECT_NE(again.exit_code, 0);
  EXPECT_TRUE(Contains(again.err, "already exists")) << again.err;
  auto role = AsAdmin({"user", "add", "bob", "--role", "owner"});
  EXPECT_NE(role.exit_code, 0);
  EXPECT_TRUE(Contains(role.err, "unknown role \"owner\"")) << role.err;
  auto system = AsAdmin({"user", "add", "bot", "--role", "system"});
  EXPECT_NE(system.exit_code, 0);
  EXPECT_TRUE(Contains(system.err, "system is the coordinator's own role, never a user's"))
      << system.err;
  auto missing = AsAdmin({"user", "disable", "nobody"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_TRUE(Contains(missing.err, "404")) << missing.err;
}

TEST_F(CoordinatorTest, AWrongOrMissingTokenGets401) {
  auto wrong = FabuAs(*daemon_, std::string(64, '0'), {"user", "list"});
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_TRUE(Contains(wrong.err, "unknown bearer token")) << wrong.err;
  EXPECT_TRUE(Contains(wrong.err, "401")) << wrong.err;
  auto missing = FabuAs(*daemon_, "", {"user", "list"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_TRUE(Contains(missing.err, "missing bearer token")) << missing.err;
}

TEST_F(CoordinatorTest, AViewerGets403NamingTheRoleNeeded) {
  const std::string viewer = AddUser("vic", "viewer");
  auto r = FabuAs(*daemon_, viewer, {"user", "add", "eve", "--role", "admin"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "needs role admin")) << r.err;
  EXPECT_TRUE(Contains(r.err, "403")) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST_F(CoordinatorTest, AUserRotatesTheirOwnTokenAndTheOldOneStopsAtOnce) {
  auto added = AsAdmin({"user", "add", "ann", "--role", "tester", "--token-days", "30"});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  const std::string old_token = LastLine(added.out);
  EXPECT_TRUE(Contains(added.err, "the token above is shown once and works until 20")) << added.err;

  auto rotated = FabuAs(*daemon_, old_token, {"user", "token", "rotate", "ann"});
  ASSERT_EQ(rotated.exit_code, 0) << rotated.err;
  const std::string new_token = LastLine(rotated.out);
  EXPECT_EQ(new_token.size(), 64u);
  EXPECT_NE(new_token, old_token);
  EXPECT_TRUE(Contains(rotated.err, "the old token no longer works")) << rotated.err;

  auto old_refused = FabuAs(*daemon_, old_token, {"user", "list"});
  EXPECT_NE(old_refused.exit_code, 0);
  EXPECT_TRUE(Contains(old_refused.err, "unknown bearer token")) << old_refused.err;
  auto works = FabuAs(*daemon_, new_token, {"user", "list"});
  ASSERT_EQ(works.exit_code, 0) << works.err;
  EXPECT_TRUE(Contains(works.out, "TOKEN EXPIRES")) << works.out;

  // Another's token is an admin's to rotate; a token without expiry is asked for.
  auto denied = FabuAs(*daemon_, new_token, {"user", "token", "rotate", "admin"});
  EXPECT_NE(denied.exit_code, 0);
  EXPECT_TRUE(Contains(denied.err, "needs role admin")) << denied.err;
  EXPECT_TRUE(Contains(denied.err, "403")) << denied.err;
  auto by_admin = AsAdmin({"user", "token", "rotate", "ann", "--token-days", "0"});
  ASSERT_EQ(by_admin.exit_code, 0) << by_admin.err;
  EXPECT_TRUE(Contains(by_admin.err, "works without expiry")) << by_admin.err;
  EXPECT_NE(FabuAs(*daemon_, new_token, {"user", "list"}).exit_code, 0);
  auto too_long = AsAdmin({"user", "token", "rotate", "ann", "--token-days", "4000"});
  EXPECT_NE(too_long.exit_code, 0);
  EXPECT_TRUE(Contains(too_long.err, "token_days: a token lives 0 (no expiry) to 3650 days"))
      << too_long.err;

  auto audit = AsAdmin({"audit", "list", "--json"});
  ASSERT_EQ(audit.exit_code, 0) << audit.err;
  EXPECT_TRUE(Contains(audit.out, "user.token-rotate")) << audit.out;
  EXPECT_FALSE(Contains(audit.out, new_token));
}

TEST_F(CoordinatorTest, ABodyOverTheLimitGets413) {
  const auto big = dir_ / "big.json";
  WriteFile(big, "{\"name\": \"" + std::string(2 << 20, 'x') + "\"}");
  auto r = Post("/api/v1/users", big, admin_token_);
  EXPECT_EQ(r.status, 413) << r.body;
  EXPECT_TRUE(Contains(r.body, "over the limit of 1048576 bytes")) << r.body;
  // The same without "Expect: 100-continue": the body arrives anyway.
  auto pushed = Post("/api/v1/users", big, admin_token_, {"Expect:"});
  EXPECT_EQ(pushed.status, 413) << pushed.body;
}

TEST_F(CoordinatorTest, MalformedJsonGets400NamingTheField) {
  const auto body = dir_ / "body.json";
  WriteFile(body, R"({"name": "bob", "role": 7})");
  auto wrong_type = Post("/api/v1/users", body, admin_token_);
  EXPECT_EQ(wrong_type.status, 400) << wrong_type.body;
  EXPECT_TRUE(Contains(wrong_type.body, "role: expected a string")) << wrong_type.body;

  WriteFile(body, R"({"name": "bob", "role": "viewer", "admin": true})");
  auto unknown = Post("/api/v1/users", body, admin_token_);
  EXPECT_EQ(unknown.status, 400) << unknown.body;
  EXPECT_TRUE(Contains(unknown.body, "admin: unknown field")) << unknown.body;

  WriteFile(body, R"({"name": "bob", )");
  auto broken = Post("/api/v1/users", body, admin_token_);
  EXPECT_EQ(broken.status, 400) << broken.body;
  EXPECT_TRUE(Contains(broken.body, "not valid JSON")) << broken.body;
  EXPECT_TRUE(Contains(broken.body, R"("code":"invalid_argument")")) << broken.body;
}

TEST_F(CoordinatorTest, EveryAnswerCarriesARequestIdThatTheAuditRecords) {
  AddUser("ann", "viewer");
  auto audit = AsAdmin({"audit", "list", "--json"});
  ASSERT_EQ(audit.exit_code, 0) << audit.err;
  EXPECT_TRUE(Contains(audit.out, R"("action": "user.create")")) << audit.out;
  EXPECT_TRUE(Contains(audit.out, R"("source": "127.0.0.1:)")) << audit.out;
  const auto body = dir_ / "empty.json";
  WriteFile(body, "{}");
  auto r = Post("/api/v1/users/ann/disable", body, admin_token_);
  const auto at = r.headers.find("X-Request-Id: ");
  ASSERT_NE(at, std::string::npos) << r.headers;
  const std::string id = r.headers.substr(at + 14, 16);
  EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << r.headers;
  auto after = AsAdmin({"audit", "list", "--json"});
  EXPECT_TRUE(Contains(after.out, "\"request_id\": \"" + id + "\"")) << after.out;
  // Each request has its own id.
  auto again = Post("/api/v1/users/ann/disable", body, admin_token_);
  const auto next = again.headers.find("X-Request-Id: ");
  ASSERT_NE(next, std::string::npos) << again.headers;
  EXPECT_NE(again.headers.substr(next + 14, 16), id) << again.headers;
}

TEST_F(CoordinatorTest, PlainHttpGetsNoService) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(daemon_->port()));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  const std::string request = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  ASSERT_EQ(write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  std::string reply;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  char buffer[1024];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    ASSERT_GT(left.count(), 0) << "the server kept a plain-HTTP connection open";
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    const ssize_t n = read(fd, buffer, sizeof buffer);
    if (n <= 0) break;
    reply.append(buffer, static_cast<std::size_t>(n));
  }
  close(fd);
  EXPECT_FALSE(Contains(reply, "HTTP/")) << reply;
  EXPECT_FALSE(Contains(reply, "ok"));
}

TEST_F(CoordinatorTest, TheCliRefusesPlainHttpUrls) {
  auto r = RunCommand({FabuCli(), "user", "list"}, {}, std::chrono::seconds(60),
                      {"FABU_SERVER=http://127.0.0.1:" + std::to_string(daemon_->port()),
                       "FABU_CA=" + daemon_->ca().string(), "FABU_TOKEN=" + admin_token_});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "HTTPS only")) << r.err;
}

TEST_F(CoordinatorTest, ARestartKeepsEverything) {
  const std::string token = AddUser("li.ops-head", "approver");
  AddUser("gone", "viewer");
  ASSERT_EQ(AsAdmin({"user", "disable", "gone"}).exit_code, 0);
  auto before = AsAdmin({"audit", "verify"});
  ASSERT_EQ(before.exit_code, 0) << before.err;

  Restart();

  auto list = AsAdmin({"user", "list", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_TRUE(Contains(list.out, "li.ops-head")) << list.out;
  EXPECT_TRUE(Contains(list.out, R"("disabled": true)")) << list.out;
  EXPECT_EQ(FabuAs(*daemon_, token, {"user", "list"}).exit_code, 0);
  auto after = AsAdmin({"audit", "verify"});
  EXPECT_EQ(after.exit_code, 0) << after.err;
  EXPECT_EQ(after.out, before.out);
}

// Runs one SQL statement on the store, as someone with access to it would.
void TamperWith(const std::filesystem::path& db, const std::string& statement) {
  StoreExec(db.parent_path(), statement);
}

TEST_F(CoordinatorTest, AuditVerifyPassesThenNamesAChangedRow) {
  AddUser("ann", "viewer");
  AddUser("bob", "tester");
  auto ok = AsAdmin({"audit", "verify"});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ok.out, "audit trail intact: 4 entries\n");

  ASSERT_EQ(daemon_->Stop(), 0);
  TamperWith(data() / "coordinator.db",
             "UPDATE audit_log SET detail = '{\"role\":\"admin\"}' WHERE seq = 3");
  Start();

  auto broken = AsAdmin({"audit", "verify"});
  EXPECT_NE(broken.exit_code, 0);
  EXPECT_TRUE(Contains(broken.err, "broken at entry 3")) << broken.err;
}

TEST_F(CoordinatorTest, AuditVerifyNamesADeletedRow) {
  AddUser("ann", "viewer");
  AddUser("bob", "tester");
  // Tampering while the daemon runs: SQLite's locking lets another process in.
  TamperWith(data() / "coordinator.db", "DELETE FROM audit_log WHERE seq = 2");
  auto broken = AsAdmin({"audit", "verify", "--json"});
  EXPECT_NE(broken.exit_code, 0);
  EXPECT_TRUE(Contains(broken.out, R"("broken_seq": 2)")) << broken.out;
  EXPECT_TRUE(Contains(broken.err, "entry 2 is missing")) << broken.err;
}

// `fabu-coordinator audit verify` against the data directory and its
// checkpoint file, as an operator runs it.
CommandResult VerifyWithCheckpoints(const std::filesystem::path& data) {
  return RunCommand({CoordinatorBinary(), "audit", "verify", "--data", data.string(),
                     "--checkpoint", (data / "audit-checkpoints.jsonl").string()});
}

TEST_F(CoordinatorTest, CheckpointsAreWrittenAtStartAndShutdownAndVerifyWhenUntouched) {
  AddUser("ann", "viewer");
  AddUser("bob", "tester");
  ASSERT_EQ(daemon_->Stop(), 0) << daemon_->log();
  EXPECT_TRUE(Contains(daemon_->log(), "audit checkpoint {")) << daemon_->log();
  const auto file = data() / "audit-checkpoints.jsonl";
  ASSERT_TRUE(std::filesystem::exists(file));
  EXPECT_EQ(std::filesystem::status(file).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  EXPECT_TRUE(std::filesystem::exists(data() / "audit-checkpoint.key"));
  const std::string lines = ReadFile(file);
  EXPECT_TRUE(Contains(lines, R"("reason":"start")")) << lines;
  EXPECT_TRUE(Contains(lines, R"("reason":"shutdown","seq":4)")) << lines;

  auto ok = VerifyWithCheckpoints(data());
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_TRUE(Contains(ok.out, "audit trail intact: 4 entries")) << ok.out;
  EXPECT_TRUE(Contains(ok.out, "2 checkpoint(s) match the chain")) << ok.out;
  EXPECT_TRUE(Contains(ok.out, "users and roles match")) << ok.out;
}

TEST_F(CoordinatorTest, ATailCutWithItsHeadRewrittenIsNamedByTheCheckpoint) {
  AddUser("ann", "viewer");
  AddUser("bob", "tester");
  ASSERT_EQ(daemon_->Stop(), 0) << daemon_->log();  // checkpoint: entry 4
  // Cut entries 3 and 4 and point audit_head at entry 2, in one statement
  // each, as someone holding the database file would.
  TamperWith(data() / "coordinator.db", "DELETE FROM audit_log WHERE seq > 2");
  TamperWith(data() / "coordinator.db",
             "UPDATE audit_head SET seq = 2, hash = (SELECT hash FROM audit_log WHERE seq = 2)");
  Start();
  // The chain alone cannot tell.
  auto chain_only = AsAdmin({"audit", "verify"});
  EXPECT_EQ(chain_only.exit_code, 0) << chain_only.err;
  ASSERT_EQ(daemon_->Stop(), 0) << daemon_->log();

  auto cut = VerifyWithCheckpoints(data());
  EXPECT_EQ(cut.exit_code, 1) << cut.out;
  EXPECT_TRUE(Contains(cut.err, "checkpoint on line 2")) << cut.err;
  EXPECT_TRUE(Contains(cut.err, "shutdown, entry 4) no longer matches: the trail ends at entry 2"))
      << cut.err;
  EXPECT_TRUE(Contains(cut.err, "the trail was cut or rewritten after entry 2")) << cut.err;
}

TEST_F(CoordinatorTest, ARoleChangedBySqlIsNamedByTheCheckpoint) {
  AddUser("ann", "viewer");
  ASSERT_EQ(daemon_->Stop(), 0) << daemon_->log();
  TamperWith(data() / "coordinator.db", "UPDATE users SET role = 'admin' WHERE name = 'ann'");

  auto changed = VerifyWithCheckpoints(data());
  EXPECT_EQ(changed.exit_code, 1) << changed.out;
  EXPECT_TRUE(Contains(changed.err, "the audit trail does not record it: ann: viewer -> admin"))
      << changed.err;
}

TEST_F(CoordinatorTest, AnAlteredCheckpointLineIsRefused) {
  ASSERT_EQ(daemon_->Stop(), 0) << daemon_->log();
  const auto file = data() / "audit-checkpoints.jsonl";
  std::string lines = ReadFile(file);
  const auto at = lines.find(R"("seq":2)");
  ASSERT_NE(at, std::string::npos) << lines;
  lines.replace(at, 7, R"("seq":1)");
  WriteFile(file, lines);
  auto forged = VerifyWithCheckpoints(data());
  EXPECT_EQ(forged.exit_code, 1) << forged.out;
  EXPECT_TRUE(Contains(forged.err, "signature does not match its content")) << forged.err;
}

TEST_F(CoordinatorTest, SigtermExitsCleanly) {
  AddUser("ann", "viewer");
  EXPECT_EQ(daemon_->Stop(), 0) << daemon_->log();
  EXPECT_TRUE(Contains(daemon_->log(), "stopped")) << daemon_->log();
  EXPECT_FALSE(std::filesystem::exists(data() / "coordinator.port"));
  // The store was closed cleanly: the WAL was folded into the database.
  EXPECT_FALSE(std::filesystem::exists(data() / "coordinator.db-wal") &&
               std::filesystem::file_size(data() / "coordinator.db-wal") > 0);
}

}  // namespace
}  // namespace fabu::testing
