// The store target of a test that makes a Store itself (test_store.hpp):
// `sqlite_path`, or a fresh PostgreSQL database when FABU_TEST_STORE is set.
// For test targets that link the coordinator's libraries.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>

#include "coordinator/store/dialect.hpp"
#include "tests/support/test_store.hpp"

namespace fabu::testing {

inline coordinator::StoreTarget TestStore(const std::filesystem::path& sqlite_path) {
  auto db = NewTestDatabase();
  if (!db) return coordinator::StoreTarget::Sqlite(sqlite_path);
  auto target = coordinator::StoreTarget::Postgresql(db->url, db->password_file, "");
  if (!target) {
    ADD_FAILURE() << target.error().message();
    return coordinator::StoreTarget::Sqlite(sqlite_path);
  }
  return *target;
}

}  // namespace fabu::testing
