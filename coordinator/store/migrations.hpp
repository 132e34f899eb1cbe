// Versioned schema migrations of the coordinator's store.
//
// Migrations are numbered from 1 and applied in order, each in its own
// transaction that also records it in `schema_migrations` (version, name,
// applied). A database is never migrated down: a store newer than this
// program is refused. To change the schema, append a Migration to the list in
// migrations.cpp; never edit one that has shipped. Keep statements portable
// to PostgreSQL (TEXT, INTEGER, BIGINT; no AUTOINCREMENT).
#pragma once

#include <span>
#include <string_view>
#include <vector>

#include "coordinator/common/clock.hpp"
#include "protocol/error.hpp"

namespace soci {
class session;
}

namespace fabu::coordinator {

struct Migration {
  int version;
  std::string_view name;
  std::vector<std::string_view> statements;
};

// Every migration, in order.
const std::vector<Migration>& AllMigrations();

// Applies the pending migrations of `migrations` to `sql`; returns the
// resulting schema version. Throws nothing; SOCI errors become kIo.
Result<int> Migrate(soci::session& sql, std::span<const Migration> migrations, const Clock& clock);

}  // namespace fabu::coordinator
