// `fabu-coordinator migrate`: an installation with history on SQLite moves
// to a PostgreSQL database and runs there with everything it had, its audit
// chain verifying. Needs a PostgreSQL server (FABU_TEST_STORE, as
// scripts/test's PostgreSQL pass sets it: scripts/pg-cluster); without one
// the test is skipped, saying so.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "tests/support/coordinator_process.hpp"
#include "tests/support/run_command.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_store.hpp"

namespace fabu::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

class MigrateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!TestStoreIsPostgresql()) {
      GTEST_SKIP() << "needs a PostgreSQL server: FABU_TEST_STORE is not set (scripts/test sets "
                      "it in its PostgreSQL pass)";
    }
    // An installation on SQLite, whatever FABU_TEST_STORE says.
    const auto init = RunCommand({CoordinatorBinary(), "init", "--data", data().string()});
    ASSERT_EQ(init.exit_code, 0) << init.err;
    admin_ = LastLine(init.out);
    CoordinatorProcess daemon(data());
    ASSERT_TRUE(daemon.started()) << daemon.log();
    for (const char* name : {"zhang.rm", "wang.approver", "zhao.viewer"}) {
      const std::string role = Contains(name, ".rm")        ? "release_manager"
                               : Contains(name, "approver") ? "approver"
                                                            : "viewer";
      const auto added = FabuAs(daemon, admin_, {"user", "add", name, "--role", role});
      ASSERT_EQ(added.exit_code, 0) << added.err;
      tokens_.push_back(LastLine(added.out));
    }
    const auto disabled = FabuAs(daemon, admin_, {"user", "disable", "zhao.viewer"});
    ASSERT_EQ(disabled.exit_code, 0) << disabled.err;
    // A stored package (its bytes must reach the database too).
    const auto trusted = TrustNewPublisher(dir_.path(), data());
    ASSERT_EQ(trusted.exit_code, 0) << trusted.out << trusted.err;
    // Random bytes, so the package spans several chunks.
    std::string bytes(std::size_t{5} << 19, '\0');
    std::mt19937_64 random(7);
    for (char& c : bytes) c = static_cast<char>(random());
    WriteFile(dir_ / "src/app/bin/tool", bytes);
    const fs::path package = dir_ / "tool.fabu";
    const auto built =
        Fabu({"pack", "build", "--name", "tool", "--version", "V1.0.0.1", "--from",
              (dir_ / "src/app").string(), "--key", (dir_ / "publisher.key").string(),
              "--compression", "zstd", "--out", package.string()});
    ASSERT_EQ(built.exit_code, 0) << built.err;
    const auto uploaded = FabuAs(daemon, tokens_[0], {"package", "upload", package.string()});
    ASSERT_EQ(uploaded.exit_code, 0) << uploaded.err;
    package_id_ = LastLine(uploaded.out);
    const auto audit = FabuAs(daemon, admin_, {"audit", "list", "--json"});
    ASSERT_EQ(audit.exit_code, 0) << audit.err;
    entries_before_ = json::parse(audit.out).size();
    ASSERT_EQ(daemon.Stop(), 0);
  }

  fs::path data() const { return dir_ / "coordinator"; }

  CommandResult Migrate(const TestDatabase& database) {
    std::vector<std::string> argv{CoordinatorBinary(), "migrate", "--data",
                                  data().string(),     "--to",    database.url};
    if (!database.password_file.empty()) {
      argv.insert(argv.end(), {"--password-file", database.password_file});
    }
    return RunCommand(argv);
  }

  TempDir dir_;
  std::string admin_;
  std::vector<std::string> tokens_;
  std::size_t entries_before_ = 0;
  std::string package_id_;
};

// Given an installation with users, one of them disabled, and its audit
// trail: after migrate, the coordinator starts on PostgreSQL with the same
// users and tokens, the trail has every entry and the migration's own, and
// `audit verify` with the checkpoint file passes.
TEST_F(MigrateTest, AnInstallationMovesToPostgresqlWithItsUsersAndItsAuditChain) {
  const auto database = NewTestDatabase();
  ASSERT_TRUE(database);
  const auto moved = Migrate(*database);
  ASSERT_EQ(moved.exit_code, 0) << moved.out << moved.err;
  EXPECT_TRUE(Contains(moved.out, "the audit chain verifies there")) << moved.out;
  EXPECT_TRUE(Contains(moved.out, "users")) << moved.out;
  const json config = json::parse(ReadFile(data() / "config.json"));
  EXPECT_EQ(config["store"]["backend"], "postgresql") << config.dump(2);
  EXPECT_EQ(config["store"]["url"], database->url);

  CoordinatorProcess daemon(data());
  ASSERT_TRUE(daemon.started()) << daemon.log();
  EXPECT_TRUE(Contains(daemon.log(), "store postgresql://")) << daemon.log();
  const auto users = FabuAs(daemon, admin_, {"user", "list"});
  ASSERT_EQ(users.exit_code, 0) << users.err;
  EXPECT_TRUE(Contains(users.out, "zhang.rm")) << users.out;
  EXPECT_TRUE(Contains(users.out, "wang.approver")) << users.out;
  // The tokens came with their users: the release manager's still works...
  EXPECT_EQ(FabuAs(daemon, tokens_[0], {"release", "list"}).exit_code, 0);
  // ...and the disabled viewer is still refused.
  const auto refused = FabuAs(daemon, tokens_[2], {"release", "list"});
  EXPECT_NE(refused.exit_code, 0);

  const auto audit = FabuAs(daemon, admin_, {"audit", "list", "--json"});
  ASSERT_EQ(audit.exit_code, 0) << audit.err;
  const json entries = json::parse(audit.out);
  EXPECT_GE(entries.size(), entries_before_ + 1);
  bool migrated = false;
  for (const auto& entry : entries) {
    if (entry.value("action", "") == "store.migrate") migrated = true;
  }
  EXPECT_TRUE(migrated) << audit.out;
  ASSERT_EQ(daemon.Stop(), 0);
  // The package's bytes are in the database, for coordinators that join
  // (docs/ha.md): one chunk per MiB begun, their sizes adding up to the file's.
  const auto chunks = StoreRows(data(),
                                "SELECT COUNT(*), SUM(LENGTH(data)) FROM package_chunks "
                                "WHERE package_id = '" +
                                    package_id_ + "'");
  ASSERT_EQ(chunks.size(), 1u);
  const auto size = fs::file_size(data() / "packages" / (package_id_ + ".fabu"));
  EXPECT_EQ(chunks[0][0], std::to_string((size + (1 << 20) - 1) >> 20));
  EXPECT_EQ(chunks[0][1], std::to_string(size));

  const auto verified =
      RunCommand({CoordinatorBinary(), "audit", "verify", "--data", data().string(), "--checkpoint",
                  (data() / "audit-checkpoints.jsonl").string()});
  EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err;
}

// Given a database that already holds a store, migrate refuses and leaves
// config.json naming SQLite; given a store already on PostgreSQL, it says
// so; given a running coordinator, it refuses to copy under it.
TEST_F(MigrateTest, MigrateRefusesATakenDatabaseARunningCoordinatorAndASecondRun) {
  const auto database = NewTestDatabase();
  ASSERT_TRUE(database);
  const std::string before = ReadFile(data() / "config.json");

  {
    CoordinatorProcess daemon(data());
    ASSERT_TRUE(daemon.started()) << daemon.log();
    const auto running = Migrate(*database);
    EXPECT_NE(running.exit_code, 0);
    EXPECT_TRUE(Contains(running.err, "a coordinator is running")) << running.err;
    EXPECT_EQ(ReadFile(data() / "config.json"), before);
    ASSERT_EQ(daemon.Stop(), 0);
  }

  // Another installation takes the database first.
  TempDir other;
  std::vector<std::string> init{CoordinatorBinary(),    "init",        "--data",
                                (other / "c").string(), "--store-url", database->url};
  if (!database->password_file.empty()) {
    init.insert(init.end(), {"--store-password-file", database->password_file});
  }
  const auto taken = RunCommand(init);
  ASSERT_EQ(taken.exit_code, 0) << taken.err;
  const auto refused = Migrate(*database);
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_TRUE(Contains(refused.err, "already")) << refused.err;
  EXPECT_EQ(ReadFile(data() / "config.json"), before);

  const auto fresh = NewTestDatabase();
  ASSERT_TRUE(fresh);
  ASSERT_EQ(Migrate(*fresh).exit_code, 0);
  const auto again = Migrate(*fresh);
  EXPECT_NE(again.exit_code, 0);
  EXPECT_TRUE(Contains(again.err, "already keeps its store in PostgreSQL")) << again.err;
}

}  // namespace
}  // namespace fabu::testing
