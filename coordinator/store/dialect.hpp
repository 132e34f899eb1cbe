// Where the store's two database backends differ, in one place.
//
// The coordinator's SQL (migrations.cpp and the domain modules) is written
// once, in the SQL that SQLite and PostgreSQL both run: TEXT, INTEGER and
// BIGINT columns, `INSERT ... ON CONFLICT ... DO NOTHING`, no rowid, no
// AUTOINCREMENT, no date functions (times are Unix seconds or text made by
// the coordinator). What cannot be written once is here:
//
// - opening a session: SQLite's PRAGMAs (WAL, synchronous=FULL,
//   foreign_keys, secure_delete, query_only, a busy timeout); PostgreSQL's
//   read-only reading session (REPEATABLE READ, so a read transaction is one
//   snapshot as in SQLite) and its check that the database sorts text
//   bytewise (collation "C"), as SQLite does, so lists and rollout orders
//   are the same on both;
// - column types: PostgreSQL's INTEGER is 32 bits, SQLite's 64, so a
//   migration's INTEGER is made BIGINT there, and BLOB is BYTEA
//   (MigrationSql);
// - a write transaction: SQLite lets one writer in at a time; on PostgreSQL
//   every group commit takes one transaction-level advisory lock first
//   (BeginWrite), so writers (a `serve` and a `fabu-coordinator user ...` at
//   the same time) still go one after another and the audit chain stays one
//   chain;
// - the database's clock (DatabaseMillis), for leases;
// - closing: SQLite folds its WAL back into the file.
//
// SQLite-only tools (the online backup, `restore`) ask `backend` and refuse
// a PostgreSQL store with a message that says what to use instead.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "protocol/error.hpp"

namespace soci {
class session;
}

namespace fabu::coordinator {

enum class StoreBackend { kSqlite, kPostgresql };

// Where a store is. Made by Sqlite() or Postgresql(); a value type.
struct StoreTarget {
  StoreBackend backend = StoreBackend::kSqlite;
  std::filesystem::path path;  // SQLite: the database file
  std::string connect;         // PostgreSQL: libpq's connection string (holds the password)
  std::string description;     // for messages and logs: the file, or the URL without password

  static StoreTarget Sqlite(const std::filesystem::path& path);
  // `url`: a libpq URI (postgresql://USER@HOST:PORT/DB?param=...); one that
  // carries a password is refused (kInvalidArgument): the password is read
  // from `password_file` (its first line), or found by libpq (PGPASSFILE,
  // ~/.pgpass) when that is empty. `sslmode` ("" leaves the URL's or libpq's)
  // is passed to libpq as it is (verify-full checks the server's name).
  static Result<StoreTarget> Postgresql(const std::string& url, const std::string& password_file,
                                        const std::string& sslmode);
};

// The backend a SOCI session talks to.
StoreBackend BackendOf(soci::session& sql);

// Whether the session's connection is known broken (PostgreSQL: libpq saw
// it end; never on SQLite). Costs no round trip: SOCI's is_connected()
// sends a query to find out, a round trip before every read. A connection
// ended by the server is seen broken only once a statement failed on it.
bool ConnectionBroken(soci::session& sql);

enum class SessionRole {
  kWriter,  // the store's writing session
  kReader,  // the store's reading session: refuses writes
};

// Opens a session on `target` set up for `role` (the PRAGMAs or settings
// above). Throws what SOCI throws; kFailedPrecondition is thrown as
// std::runtime_error when a PostgreSQL database does not sort bytewise.
std::unique_ptr<soci::session> OpenSession(const StoreTarget& target, SessionRole role);

// Whether the store's schema is there (its schema_migrations table). Throws.
bool HasSchema(soci::session& sql);

// A migration's statement as `backend` runs it (INTEGER is BIGINT on
// PostgreSQL).
std::string MigrationSql(StoreBackend backend, std::string_view statement);

// Right after BEGIN of a write transaction: waits until no other writer of
// the same database is in one (PostgreSQL); nothing on SQLite. Throws.
void BeginWrite(soci::session& sql);

// The database's clock, in milliseconds since the Unix epoch: what leases
// (lease.hpp) count in, so coordinators whose clocks disagree still agree on
// an expiry. Throws.
std::int64_t DatabaseMillis(soci::session& sql);

// PostgreSQL only (package chunks, packages/package_store.hpp): the SQL of
// a bytes value from the hex text bound as `:param`, and of a bytes column
// read as lower-case hex text.
std::string HexToBytesSql(std::string_view param);
std::string BytesToHexSql(std::string_view column);

// A column of JsonRowsSql's rows: the member of each object it is read from
// (and its name), and whether it is a whole number (BIGINT) or text.
struct JsonColumn {
  std::string_view name;
  bool number = false;
};

// The SQL of a table named `alias` whose rows are the objects of the JSON
// array bound as text to `:param`, each column read from the member of its
// name: PostgreSQL's jsonb_to_recordset, SQLite's json_each. For many rows
// in one statement (`INSERT ... SELECT ... FROM` it, `UPDATE ... FROM` it,
// `IN (SELECT ... FROM` it`)`), prepared once whatever their number: on
// PostgreSQL every statement is a round trip to the server, where SQLite's
// is a function call. Text values must hold no NUL byte (PostgreSQL's text
// cannot).
std::string JsonRowsSql(StoreBackend backend, std::string_view param,
                        std::span<const JsonColumn> columns, std::string_view alias);

// The text to bind for a JsonRowsSql table of one text column `column`: an
// object {column: value} for each of `values`, in their order.
std::string JsonRowsOf(std::span<const std::string> values, std::string_view column);

// Before the writing session closes: folds the WAL into the file (SQLite).
// Throws.
void BeforeClose(soci::session& sql);

}  // namespace fabu::coordinator
