// The coordinator's store: one SQLite database through SOCI (DESIGN.md §6).
//
// Store owns one SOCI session. Every use goes through Read (a query) or Write
// (one transaction that commits when the callback succeeds and rolls back
// when it fails or throws). Both serialize on one mutex, so concurrent
// requests never interleave inside a transaction: two approvers acting at the
// same instant are applied one after the other and lose nothing. Calls block
// (SQLite, fsync): run them on a worker pool, never on an I/O thread.
//
// Write hands the callback a Transaction, whose Audit() appends a hash-chained
// audit entry (audit_log.hpp) in the same transaction: a mutation and its
// audit entry are committed together or not at all.
//
// SOCI throws; Read and Write catch at this boundary and return an Error
// (kIo for database failures, kInternal for anything else). The SQL used
// here and in callers should stay portable to PostgreSQL: plain TEXT /
// INTEGER / BIGINT columns, no AUTOINCREMENT, no INSERT OR REPLACE.
//
// The database opens with journal_mode=WAL, synchronous=FULL and a busy
// timeout, and is migrated to the newest schema (migrations.hpp).
#pragma once

#include <soci/soci.h>

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>

#include "coordinator/audit/audit_log.hpp"
#include "protocol/error.hpp"

namespace fabu::coordinator {

// One write transaction in progress. Only valid inside Store::Write's callback.
class Transaction {
 public:
  soci::session& sql() { return sql_; }
  const AuditOrigin& origin() const { return origin_; }
  // Appends an audit entry for `event`, committed with this transaction.
  AuditEntry Audit(const AuditEvent& event) { return AppendAudit(sql_, origin_, event); }

 private:
  friend class Store;
  Transaction(soci::session& sql, const AuditOrigin& origin) : sql_(sql), origin_(origin) {}
  soci::session& sql_;
  const AuditOrigin& origin_;
};

class Store {
 public:
  // Creates a new database at `path` and applies every migration. Refuses
  // (kAlreadyExists) when the file exists.
  static Result<std::unique_ptr<Store>> Create(const std::filesystem::path& path);
  // Opens an existing database and applies pending migrations. kNotFound when
  // there is none.
  static Result<std::unique_ptr<Store>> Open(const std::filesystem::path& path);

  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // The schema version after migrations.
  int schema_version() const { return schema_version_; }

  // Runs `f(soci::session&)` -> Result<T> under the store lock.
  template <typename F>
  auto Read(F&& f) -> std::invoke_result_t<F, soci::session&> {
    std::lock_guard lock(mutex_);
    if (!open_) return Fail(ErrorCode::kUnavailable, "the store is closed");
    try {
      return std::forward<F>(f)(*sql_);
    } catch (const std::exception& e) {
      return Fail(ErrorCode::kIo, std::string("store: ") + e.what());
    }
  }

  // Runs `f(Transaction&)` -> Result<T> in one transaction; commits when it
  // returns a value, rolls back when it returns an error or throws.
  template <typename F>
  auto Write(const AuditOrigin& origin, F&& f) -> std::invoke_result_t<F, Transaction&> {
    std::lock_guard lock(mutex_);
    if (!open_) return Fail(ErrorCode::kUnavailable, "the store is closed");
    try {
      soci::transaction transaction(*sql_);
      Transaction tx(*sql_, origin);
      auto result = std::forward<F>(f)(tx);
      if (result) {
        transaction.commit();
      } else {
        transaction.rollback();
      }
      return result;
    } catch (const std::exception& e) {
      return Fail(ErrorCode::kIo, std::string("store: ") + e.what());
    }
  }

  // Checkpoints the WAL and closes the session; later calls fail kUnavailable.
  void Close();

 private:
  Store() = default;
  static Result<std::unique_ptr<Store>> Connect(const std::filesystem::path& path);

  std::mutex mutex_;
  std::unique_ptr<soci::session> sql_;
  bool open_ = false;
  int schema_version_ = 0;
};

}  // namespace fabu::coordinator
