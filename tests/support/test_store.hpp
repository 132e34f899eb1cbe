// Where the tests' coordinator stores are: SQLite files in each test's temp
// directory, or, when FABU_TEST_STORE names a PostgreSQL server (a URL to a
// database the role may connect to, e.g. postgresql://fabu@127.0.0.1:PORT/
// postgres, as scripts/pg-cluster prints), a fresh database per store:
// `CREATE DATABASE t_<random>` (collation "C", as the store asks), dropped
// when the test's process exits. FABU_TEST_STORE_PASSWORD_FILE holds the
// role's password.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace fabu::testing {

struct TestDatabase {
  std::string url;            // postgresql://USER@HOST:PORT/t_<random>
  std::string password_file;  // FABU_TEST_STORE_PASSWORD_FILE, or ""
};

// Whether FABU_TEST_STORE is set (the stores are in PostgreSQL).
bool TestStoreIsPostgresql();

// A new empty database on FABU_TEST_STORE's server; nullopt when it is not
// set. Fails the test (and returns nullopt) when the database cannot be made.
std::optional<TestDatabase> NewTestDatabase();

// The arguments of `fabu-coordinator init` that put its store in a new
// database (--store-url, --store-password-file); none for SQLite.
std::vector<std::string> TestStoreInitArgs();

// Runs `statement` on the store of the coordinator data directory `data`
// (its coordinator.db, or the PostgreSQL database its config.json names), as
// someone with access to the database would, beside a running daemon.
// Fails the test when it fails.
void StoreExec(const std::filesystem::path& data, const std::string& statement);
// The same for a query: the first column of its first row as text, "" when
// it has none.
std::string StoreQuery(const std::filesystem::path& data, const std::string& query);

// The same, every row, each value as text ("" for NULL; integers in
// decimal, whatever type the backend gives a COUNT or a SUM).
std::vector<std::vector<std::string>> StoreRows(const std::filesystem::path& data,
                                                const std::string& query);

// Cuts the PostgreSQL database of the coordinator data directory `data` off
// (`down`: no connection may be made to it, and every open one is ended, as
// when the server stops) or lets connections in again. Run on FABU_TEST_STORE's
// server as its superuser. Fails the test when it fails.
void SetStoreDatabaseDown(const std::filesystem::path& data, bool down);

// In a test that reads or writes the SQLite file itself.
#define FABU_SQLITE_ONLY()                                                       \
  do {                                                                           \
    if (::fabu::testing::TestStoreIsPostgresql()) {                              \
      GTEST_SKIP() << "works on the SQLite file itself; FABU_TEST_STORE is set"; \
    }                                                                            \
  } while (0)

}  // namespace fabu::testing
