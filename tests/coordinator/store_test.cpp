// The store: migrations, transactions, the boundary that turns SOCI errors into Errors.
#include "coordinator/store/store.hpp"

#include <gtest/gtest.h>
#include <soci/soci.h>
#include <soci/sqlite3/soci-sqlite3.h>

#include "coordinator/auth/users.hpp"
#include "coordinator/store/migrations.hpp"
#include "tests/support/temp_dir.hpp"

namespace fabu::coordinator {
namespace {

using testing::TempDir;

const AuditOrigin kOrigin{"tester", "admin", "req-1", "127.0.0.1:1"};

int CountRows(Store& store, const std::string& table) {
  auto count = store.Read([&](soci::session& sql) -> Result<int> {
    int n = 0;
    sql << "SELECT COUNT(*) FROM " + table, soci::into(n);
    return n;
  });
  return count.value_or(-1);
}

TEST(StoreTest, CreateAppliesEveryMigration) {
  TempDir dir;
  auto store = Store::Create(dir / "c.db");
  ASSERT_TRUE(store) << store.error().message();
  EXPECT_EQ((*store)->schema_version(), AllMigrations().back().version);
  EXPECT_EQ(CountRows(**store, "schema_migrations"), static_cast<int>(AllMigrations().size()));
  auto mode = (*store)->Read([](soci::session& sql) -> Result<std::string> {
    std::string journal;
    sql << "PRAGMA journal_mode", soci::into(journal);
    return journal;
  });
  EXPECT_EQ(mode.value_or(""), "wal");
}

TEST(StoreTest, CreateRefusesAnExistingFile) {
  TempDir dir;
  ASSERT_TRUE(Store::Create(dir / "c.db"));
  auto again = Store::Create(dir / "c.db");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kAlreadyExists);
}

TEST(StoreTest, OpenWithoutAStoreSaysRunInit) {
  TempDir dir;
  auto store = Store::Open(dir / "missing.db");
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(store.error().message().find("init"), std::string::npos);
}

TEST(StoreTest, OpenAppliesPendingMigrationsToAnOldStore) {
  // Given a store made by a version that knew only migration 1, opening it
  // should bring it to the newest schema and keep its rows.
  TempDir dir;
  const auto path = dir / "old.db";
  {
    soci::session sql(soci::sqlite3, "db=" + path.string());
    auto version = Migrate(sql, std::span(AllMigrations()).first(1));
    ASSERT_TRUE(version) << version.error().message();
    EXPECT_EQ(*version, 1);
    sql << "INSERT INTO users (name, role, token_sha256, disabled, created, created_by) "
           "VALUES ('old', 'viewer', 'x', 0, 't', 'me')";
  }
  auto store = Store::Open(path);
  ASSERT_TRUE(store) << store.error().message();
  EXPECT_EQ((*store)->schema_version(), AllMigrations().back().version);
  EXPECT_EQ(CountRows(**store, "users"), 1);
  EXPECT_EQ(CountRows(**store, "packages"), 0);
}

TEST(StoreTest, RefusesAStoreNewerThanThisProgram) {
  TempDir dir;
  const auto path = dir / "new.db";
  ASSERT_TRUE(Store::Create(path));
  {
    soci::session sql(soci::sqlite3, "db=" + path.string());
    sql << "INSERT INTO schema_migrations (version, name, applied) VALUES (999, 'future', 't')";
  }
  auto store = Store::Open(path);
  ASSERT_FALSE(store);
  EXPECT_NE(store.error().message().find("schema version 999"), std::string::npos)
      << store.error().message();
}

TEST(StoreTest, AFailedWriteLeavesNothing) {
  // Given a transaction that adds a user (and its audit entry) and then
  // fails, neither the user nor the entry should remain.
  TempDir dir;
  auto store = Store::Create(dir / "c.db");
  ASSERT_TRUE(store);
  auto result = (*store)->Write(kOrigin, [](Transaction& tx) -> Result<void> {
    auto token = CreateUser(tx, "carol", Role::kTester);
    if (!token) return std::unexpected(token.error());
    return Fail(ErrorCode::kConflict, "changed my mind");
  });
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), ErrorCode::kConflict);
  EXPECT_EQ(CountRows(**store, "users"), 0);
  EXPECT_EQ(CountRows(**store, "audit_log"), 0);
}

TEST(StoreTest, SqlErrorsBecomeErrorsNotExceptions) {
  TempDir dir;
  auto store = Store::Create(dir / "c.db");
  ASSERT_TRUE(store);
  auto result = (*store)->Write(kOrigin, [](Transaction& tx) -> Result<void> {
    tx.sql() << "INSERT INTO no_such_table VALUES (1)";
    return {};
  });
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), ErrorCode::kIo);
  EXPECT_NE(result.error().message().find("no_such_table"), std::string::npos);
}

TEST(StoreTest, ClosedStoreRefusesWork) {
  TempDir dir;
  auto store = Store::Create(dir / "c.db");
  ASSERT_TRUE(store);
  (*store)->Close();
  EXPECT_EQ(CountRows(**store, "users"), -1);
}

}  // namespace
}  // namespace fabu::coordinator
