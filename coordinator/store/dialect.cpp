#include "coordinator/store/dialect.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>
#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>
#include <soci/sqlite3/soci-sqlite3.h>

#include <cctype>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <utility>

namespace fabu::coordinator {
namespace {

// The key of the advisory lock every PostgreSQL write transaction takes
// ("fabu" in ASCII): one writer at a time per database, as in SQLite.
constexpr long long kWriterLock = 0x66616275;

// A value in libpq's keyword=value form: quoted, with \ and ' escaped.
std::string Quoted(std::string_view value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\\' || c == '\'') out += '\\';
    out += c;
  }
  return out + "'";
}

std::string SqliteConnect(const std::filesystem::path& path) {
  // timeout= sets SQLite's busy timeout (seconds) for other processes
  // holding the lock, e.g. `fabu-coordinator trust add` next to `serve`.
  return "db=\"" + path.string() + "\" timeout=10";
}

}  // namespace

StoreTarget StoreTarget::Sqlite(const std::filesystem::path& path) {
  StoreTarget target;
  target.backend = StoreBackend::kSqlite;
  target.path = path;
  target.description = path.string();
  return target;
}

Result<StoreTarget> StoreTarget::Postgresql(const std::string& url,
                                            const std::string& password_file,
                                            const std::string& sslmode) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(url.c_str(), &error);
  if (options == nullptr) {
    std::string reason = error != nullptr ? error : "out of memory";
    PQfreemem(error);
    while (!reason.empty() && std::isspace(static_cast<unsigned char>(reason.back()))) {
      reason.pop_back();
    }
    return Fail(ErrorCode::kInvalidArgument, fmt::format("store url: {}", reason));
  }
  StoreTarget target;
  target.backend = StoreBackend::kPostgresql;
  target.description = url;
  bool has_password = false;
  bool has_timeout = false;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    const std::string_view keyword = o->keyword;
    if (keyword == "password") {
      has_password = true;
      continue;
    }
    if (keyword == "sslmode" && !sslmode.empty()) continue;
    if (keyword == "connect_timeout") has_timeout = true;
    target.connect += fmt::format("{}={} ", keyword, Quoted(o->val));
  }
  PQconninfoFree(options);
  if (has_password) {
    return Fail(ErrorCode::kInvalidArgument,
                "store url: it carries a password; config.json must not: put it in the file "
                "named by store.password_file (or in PGPASSFILE)");
  }
  if (!sslmode.empty()) target.connect += fmt::format("sslmode={} ", Quoted(sslmode));
  if (!has_timeout) target.connect += "connect_timeout=10 ";
  target.connect += "application_name='fabu-coordinator'";
  if (!password_file.empty()) {
    std::ifstream in(password_file, std::ios::binary);
    if (!in) {
      return Fail(ErrorCode::kNotFound,
                  fmt::format("store.password_file: cannot read {}", password_file));
    }
    std::string password;
    std::getline(in, password);
    while (!password.empty() && (password.back() == '\r' || password.back() == ' ')) {
      password.pop_back();
    }
    if (password.empty()) {
      return Fail(ErrorCode::kInvalidArgument,
                  fmt::format("store.password_file: {} holds no password", password_file));
    }
    target.connect += fmt::format(" password={}", Quoted(password));
  }
  return target;
}

StoreBackend BackendOf(soci::session& sql) {
  return sql.get_backend_name() == "postgresql" ? StoreBackend::kPostgresql : StoreBackend::kSqlite;
}

bool ConnectionBroken(soci::session& sql) {
  if (BackendOf(sql) != StoreBackend::kPostgresql) return false;
  auto* backend = static_cast<soci::postgresql_session_backend*>(sql.get_backend());
  return backend == nullptr || backend->conn_ == nullptr ||
         PQstatus(backend->conn_) != CONNECTION_OK;
}

std::unique_ptr<soci::session> OpenSession(const StoreTarget& target, SessionRole role) {
  if (target.backend == StoreBackend::kSqlite) {
    auto sql = std::make_unique<soci::session>(soci::sqlite3, SqliteConnect(target.path));
    if (role == SessionRole::kReader) {
      // query_only makes a write through Read fail instead of racing the writer.
      *sql << "PRAGMA query_only=ON";
      return sql;
    }
    std::string mode;
    *sql << "PRAGMA journal_mode=WAL", soci::into(mode);
    if (mode != "wal") {
      throw std::runtime_error("SQLite refused write-ahead logging (journal_mode=" + mode + ")");
    }
    *sql << "PRAGMA synchronous=FULL";
    *sql << "PRAGMA foreign_keys=ON";
    // What a write replaces or deletes is zeroed in its page, not left in
    // the file's free space: a secret sealed over its clear form (secret
    // box) is gone from the file. FAST: only where it costs no extra I/O.
    *sql << "PRAGMA secure_delete=FAST";
    return sql;
  }
  auto sql = std::make_unique<soci::session>(soci::postgresql, target.connect);
  // Text sorts bytewise, as in SQLite: lists, cursors and the order the
  // waves take hosts in do not depend on the server's locale.
  std::string collate;
  *sql << "SELECT datcollate FROM pg_database WHERE datname = current_database()",
      soci::into(collate);
  if (collate != "C" && collate != "POSIX" && collate != "C.UTF-8" && collate != "C.utf8") {
    throw std::runtime_error(
        fmt::format("the PostgreSQL database sorts text by the locale \"{}\"; fabu needs it "
                    "bytewise: create the database with LC_COLLATE 'C' (CREATE DATABASE ... "
                    "TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C')",
                    collate));
  }
  *sql << "SET client_min_messages = warning";
  if (role == SessionRole::kReader) {
    // Read-only; and a read that opens a transaction to read several tables
    // as of one instant (VerifyAudit) gets one snapshot, as in SQLite. The
    // writer keeps READ COMMITTED: each statement after the writers' lock
    // sees every commit before it.
    *sql << "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ, "
            "READ ONLY";
  }
  return sql;
}

bool HasSchema(soci::session& sql) {
  int n = 0;
  if (BackendOf(sql) == StoreBackend::kSqlite) {
    sql << "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = "
           "'schema_migrations'",
        soci::into(n);
  } else {
    sql << "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = "
           "current_schema() AND table_name = 'schema_migrations'",
        soci::into(n);
  }
  return n > 0;
}

std::string MigrationSql(StoreBackend backend, std::string_view statement) {
  std::string out(statement);
  if (backend != StoreBackend::kPostgresql) return out;
  // Types as whole words (never inside a name or a literal here).
  auto word_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  for (const auto& [word, replacement] :
       {std::pair<std::string_view, std::string_view>{"INTEGER", "BIGINT"}, {"BLOB", "BYTEA"}}) {
    for (std::size_t at = out.find(word); at != std::string::npos; at = out.find(word, at)) {
      const bool starts = at == 0 || !word_char(out[at - 1]);
      const bool ends = at + word.size() == out.size() || !word_char(out[at + word.size()]);
      if (starts && ends) {
        out.replace(at, word.size(), replacement);
        at += replacement.size();
      } else {
        at += word.size();
      }
    }
  }
  return out;
}

std::string HexToBytesSql(std::string_view param) {
  return fmt::format("decode(:{}, 'hex')", param);
}

std::string BytesToHexSql(std::string_view column) {
  return fmt::format("encode({}, 'hex')", column);
}

std::string JsonRowsOf(std::span<const std::string> values, std::string_view column) {
  nlohmann::json rows = nlohmann::json::array();
  for (const std::string& value : values) rows.push_back({{column, value}});
  return rows.dump();
}

std::string JsonRowsSql(StoreBackend backend, std::string_view param,
                        std::span<const JsonColumn> columns, std::string_view alias) {
  std::string list;
  for (const JsonColumn& column : columns) {
    if (!list.empty()) list += ", ";
    if (backend == StoreBackend::kPostgresql) {
      list += fmt::format("{} {}", column.name, column.number ? "bigint" : "text");
    } else {
      list += fmt::format("json_extract(value, '$.{0}') AS {0}", column.name);
    }
  }
  if (backend == StoreBackend::kPostgresql) {
    return fmt::format("jsonb_to_recordset(CAST(:{} AS jsonb)) AS {}({})", param, alias, list);
  }
  return fmt::format("(SELECT {} FROM json_each(:{})) AS {}", list, param, alias);
}

void BeginWrite(soci::session& sql) {
  if (BackendOf(sql) != StoreBackend::kPostgresql) return;
  long long key = kWriterLock;
  sql << "SELECT pg_advisory_xact_lock(:k)", soci::use(key);
}

std::int64_t DatabaseMillis(soci::session& sql) {
  long long ms = 0;
  if (BackendOf(sql) == StoreBackend::kPostgresql) {
    // clock_timestamp(): the time now, not the transaction's start.
    sql << "SELECT CAST(FLOOR(EXTRACT(EPOCH FROM clock_timestamp()) * 1000) AS BIGINT)",
        soci::into(ms);
  } else {
    sql << "SELECT CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)", soci::into(ms);
  }
  return ms;
}

void BeforeClose(soci::session& sql) {
  if (BackendOf(sql) != StoreBackend::kSqlite) return;
  // Fold the WAL into the database so the file alone holds everything.
  sql << "PRAGMA wal_checkpoint(TRUNCATE)";
}

}  // namespace fabu::coordinator
