// `fabu-coordinator migrate`: moves an installation's store from its SQLite
// file to a PostgreSQL database (docs/coordinator.md, "Moving to
// PostgreSQL").
//
// The coordinator must be stopped. The SQLite store is first brought to this
// version's schema (as `serve` would), the empty PostgreSQL database gets the
// same schema, then every row of every table is copied as it is, in one
// transaction on PostgreSQL that also appends a `store.migrate` entry to the
// audit chain, so either all of it is there or nothing is. Then the copy is
// checked: each table's rows counted on both sides, and the whole audit
// chain verified on PostgreSQL (the entries are copied byte for byte, so
// their hashes hold). Only then is config.json's `store` pointed at
// PostgreSQL; coordinator.db is left as it was, the way back until it is
// removed.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "protocol/error.hpp"

namespace fabu::coordinator {

struct MigrateOptions {
  std::filesystem::path data;  // the data directory, its store in SQLite
  std::string url;             // postgresql://USER@HOST:PORT/DB (no password)
  std::string password_file;   // "": libpq finds it (PGPASSFILE, ~/.pgpass)
  std::string sslmode;         // "": libpq's default
};

struct MigrateSummary {
  struct Table {
    std::string name;
    std::int64_t rows = 0;
  };
  std::vector<Table> tables;       // in the order they were copied
  std::int64_t audit_entries = 0;  // verified on PostgreSQL, the migration's own included
  int schema_version = 0;
  std::string destination;  // the database, without its password
};

// Errors name what is wrong: a store already on PostgreSQL, a running
// coordinator, a database that already holds a store, a count that differs.
// Nothing is changed in DIR unless the copy was checked whole.
Result<MigrateSummary> MigrateToPostgresql(const MigrateOptions& options);

}  // namespace fabu::coordinator
