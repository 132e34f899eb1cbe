// The coordinator's data directory is its own (docs/coordinator.md, "Files
// and modes"; "Secrets at rest"): the real fabu-coordinator, started from an
// environment with umask 022, keeps its directory 0700 and its files 0600,
// tightens what an older coordinator left open, and stores webhook secrets
// sealed, not in clear.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <memory>

#include "tests/support/coordinator_process.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_store.hpp"

namespace fabu::testing {
namespace {

namespace fs = std::filesystem;

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

mode_t ModeOf(const fs::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

// Every byte of the store as it is on disk: the database, its WAL and SHM.
std::string StoreBytes(const fs::path& data) {
  std::string all;
  for (const char* name : {"coordinator.db", "coordinator.db-wal", "coordinator.db-shm"}) {
    if (fs::exists(data / name)) all += ReadFile(data / name);
  }
  return all;
}

void Sql(const fs::path& db_path, const std::string& statement) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  EXPECT_EQ(sqlite3_exec(db, statement.c_str(), nullptr, nullptr, &error), SQLITE_OK)
      << (error ? error : "");
  sqlite3_free(error);
  sqlite3_close(db);
}

std::string SecretColumn(const fs::path& db_path, const std::string& id) {
  sqlite3* db = nullptr;
  std::string value;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, "SELECT secret FROM notify_subscriptions WHERE id = ?", -1, &st,
                       nullptr);
    sqlite3_bind_text(st, 1, id.c_str(), -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW) {
      value = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return value;
}

class DataDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // As a shell would start it: files 0644, directories 0755.
    previous_umask_ = ::umask(022);
    auto init = InitCoordinator(data());
    ASSERT_EQ(init.exit_code, 0) << init.err;
    admin_token_ = LastLine(init.out);
  }
  void TearDown() override { ::umask(previous_umask_); }

  fs::path data() const { return dir_ / "coordinator"; }

  // Lets webhooks go to https://hooks.example/ (config.json's webhook_allow).
  void AllowHooks() {
    std::string config = ReadFile(data() / "config.json");
    const std::string empty = "\"webhook_allow\": []";
    ASSERT_TRUE(Contains(config, empty)) << config;
    config.replace(config.find(empty), empty.size(),
                   "\"webhook_allow\": [\"https://hooks.example/\"]");
    WriteFile(data() / "config.json", config);
  }

  void Start() {
    daemon_ = std::make_unique<CoordinatorProcess>(data());
    ASSERT_TRUE(daemon_->started()) << daemon_->log();
  }

  // The modes of the directory and of every file the coordinator made.
  void ExpectPrivate() {
    EXPECT_EQ(ModeOf(data()), 0700u);
    for (const char* dir : {"tmp", "packages", "trusted"}) {
      EXPECT_EQ(ModeOf(data() / dir), 0700u) << dir;
    }
    for (const char* file :
         {"coordinator.db", "coordinator.db-wal", "coordinator.db-shm", "config.json", "ca.pem",
          "ca.key", "server.pem", "server.key", "secret.key", "coordinator.port",
          "audit-checkpoint.key", "audit-checkpoint.pub", "audit-checkpoints.jsonl"}) {
      ASSERT_TRUE(fs::exists(data() / file)) << file;
      EXPECT_EQ(ModeOf(data() / file), 0600u) << file;
    }
    EXPECT_EQ(fs::file_size(data() / "secret.key"), 32u);
  }

  TempDir dir_;
  mode_t previous_umask_ = 022;
  std::string admin_token_;
  std::unique_ptr<CoordinatorProcess> daemon_;
};

TEST_F(DataDirTest, EverythingTheCoordinatorMakesIsItsOwnWhateverTheUmask) {
  FABU_SQLITE_ONLY();  // the modes and bytes of the SQLite files
  ASSERT_NO_FATAL_FAILURE(Start());
  ExpectPrivate();
  // A package uploaded and a publisher trusted: owner only too.
  auto trusted = TrustNewPublisher(dir_.path(), data());
  ASSERT_EQ(trusted.exit_code, 0) << trusted.err;
  for (const auto& entry : fs::directory_iterator(data() / "trusted")) {
    EXPECT_EQ(ModeOf(entry.path()) & 077, 0u) << entry.path();
  }
}

// A data directory as an older coordinator left it (0750, a 0644 store,
// a 0755 tmp/): tightened at start, each with a log line.
TEST_F(DataDirTest, WhatAnOlderCoordinatorLeftOpenIsTightenedAtStart) {
  FABU_SQLITE_ONLY();  // the modes and bytes of the SQLite files
  fs::permissions(data(), fs::perms(0750));
  fs::permissions(data() / "tmp", fs::perms(0755));
  fs::permissions(data() / "coordinator.db", fs::perms(0644));
  fs::permissions(data() / "config.json", fs::perms(0644));
  ASSERT_NO_FATAL_FAILURE(Start());
  ExpectPrivate();
  EXPECT_TRUE(Contains(daemon_->log(), "mode 0750 was open to others; tightened to 0700"))
      << daemon_->log();
  EXPECT_TRUE(Contains(daemon_->log(), "coordinator.db: mode 0644 was open to others"))
      << daemon_->log();
}

// `fabu notify add --secret S`: S is nowhere in the store's files, before
// or after the daemon stops (the webhook's HMAC is checked end to end in
// tests/e2e/notify_e2e_test.cpp).
TEST_F(DataDirTest, AWebhookSecretIsStoredSealed) {
  FABU_SQLITE_ONLY();  // the modes and bytes of the SQLite files
  ASSERT_NO_FATAL_FAILURE(AllowHooks());
  ASSERT_NO_FATAL_FAILURE(Start());
  const std::string secret = "Zq7-webhook-hmac-secret-3f9";
  auto added = FabuAs(*daemon_, admin_token_,
                      {"notify", "add", "--events", "scheduled", "--webhook",
                       "https://hooks.example/fabu", "--secret", secret});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  EXPECT_FALSE(Contains(StoreBytes(data()), secret));
  auto list = FabuAs(*daemon_, admin_token_, {"notify", "list", "--json"});
  EXPECT_TRUE(Contains(list.out, "\"signed\":true") || Contains(list.out, "\"signed\": true"))
      << list.out;
  ASSERT_EQ(daemon_->Stop(), 0) << daemon_->log();
  EXPECT_FALSE(Contains(StoreBytes(data()), secret));
  EXPECT_TRUE(SecretColumn(data() / "coordinator.db", "N-1").starts_with("fabu-sealed:v1:"));
}

// A secret an older coordinator stored in clear is sealed on the first
// start, and gone from the file; a data directory whose key was lost
// refuses to start rather than make a new one.
TEST_F(DataDirTest, ClearSecretsAreSealedOnTheFirstStart) {
  FABU_SQLITE_ONLY();  // the modes and bytes of the SQLite files
  ASSERT_NO_FATAL_FAILURE(AllowHooks());
  ASSERT_NO_FATAL_FAILURE(Start());
  auto added = FabuAs(*daemon_, admin_token_,
                      {"notify", "add", "--events", "scheduled", "--webhook",
                       "https://hooks.example/fabu", "--secret", "placeholder"});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  ASSERT_EQ(daemon_->Stop(), 0) << daemon_->log();
  const std::string secret = "older-coordinator-clear-secret-81c";
  Sql(data() / "coordinator.db",
      "UPDATE notify_subscriptions SET secret = '" + secret + "' WHERE id = 'N-1'");
  ASSERT_TRUE(Contains(StoreBytes(data()), secret));

  ASSERT_NO_FATAL_FAILURE(Start());
  EXPECT_TRUE(Contains(daemon_->log(), "sealed 1 webhook secret(s)")) << daemon_->log();
  ASSERT_EQ(daemon_->Stop(), 0) << daemon_->log();
  EXPECT_TRUE(SecretColumn(data() / "coordinator.db", "N-1").starts_with("fabu-sealed:v1:"));
  EXPECT_FALSE(Contains(StoreBytes(data()), secret));

  fs::remove(data() / "secret.key");
  CoordinatorProcess without_key(data(), std::chrono::seconds(10));
  EXPECT_FALSE(without_key.started());
  EXPECT_TRUE(Contains(without_key.log(), "secret.key is missing")) << without_key.log();
}

}  // namespace
}  // namespace fabu::testing
