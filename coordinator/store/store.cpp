#include "coordinator/store/store.hpp"

#include <soci/sqlite3/soci-sqlite3.h>

#include "coordinator/store/migrations.hpp"

namespace fabu::coordinator {

Result<std::unique_ptr<Store>> Store::Connect(const std::filesystem::path& path) {
  std::unique_ptr<Store> store(new Store());
  try {
    // timeout= sets SQLite's busy timeout (seconds) for other processes
    // holding the lock, e.g. `fabu-coordinator trust add` next to `serve`.
    store->sql_ =
        std::make_unique<soci::session>(soci::sqlite3, "db=\"" + path.string() + "\" timeout=10");
    std::string mode;
    *store->sql_ << "PRAGMA journal_mode=WAL", soci::into(mode);
    if (mode != "wal") {
      return Fail(ErrorCode::kIo, "store " + path.string() +
                                      ": SQLite refused write-ahead logging (journal_mode=" + mode +
                                      ")");
    }
    *store->sql_ << "PRAGMA synchronous=FULL";
    *store->sql_ << "PRAGMA foreign_keys=ON";
  } catch (const std::exception& e) {
    return Fail(ErrorCode::kIo, "opening store " + path.string() + ": " + e.what());
  }
  auto version = Migrate(*store->sql_, AllMigrations());
  if (!version) return std::unexpected(std::move(version.error()).WithContext(path.string()));
  store->schema_version_ = *version;
  store->open_ = true;
  return store;
}

Result<std::unique_ptr<Store>> Store::Create(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    return Fail(ErrorCode::kAlreadyExists, "a store already exists at " + path.string());
  }
  return Connect(path);
}

Result<std::unique_ptr<Store>> Store::Open(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return Fail(ErrorCode::kNotFound,
                "no store at " + path.string() + ": run `fabu-coordinator init` first");
  }
  return Connect(path);
}

void Store::Close() {
  std::lock_guard lock(mutex_);
  if (!open_) return;
  open_ = false;
  try {
    // Fold the WAL into the database so the file alone holds everything.
    *sql_ << "PRAGMA wal_checkpoint(TRUNCATE)";
    sql_->close();
  } catch (const std::exception&) {
    // Closing is best effort; SQLite recovers the WAL on the next open.
  }
  sql_.reset();
}

Store::~Store() { Close(); }

}  // namespace fabu::coordinator
