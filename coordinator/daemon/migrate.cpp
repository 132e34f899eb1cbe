#include "coordinator/daemon/migrate.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <soci/soci.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <set>

#include "coordinator/audit/audit_log.hpp"
#include "coordinator/common/data_dir.hpp"
#include "coordinator/common/digest.hpp"
#include "coordinator/config/config.hpp"
#include "coordinator/packages/package_store.hpp"
#include "coordinator/store/store.hpp"
#include "platform/fs/files.hpp"

namespace fabu::coordinator {
namespace {

// Rows inserted per statement.
constexpr std::size_t kBatch = 500;

struct Column {
  std::string name;
  bool integer = false;  // INTEGER/BIGINT; every other column is TEXT
};

struct Table {
  std::string name;
  std::vector<Column> columns;
  std::set<std::string> references;  // tables its foreign keys name
};

std::string Quoted(const std::string& identifier) { return "\"" + identifier + "\""; }

// The store's tables as the SQLite file has them, each after the tables its
// foreign keys name (so PostgreSQL, which checks them at once, accepts each
// row when it is inserted).
std::vector<Table> ReadTables(soci::session& sql) {
  std::vector<std::string> names;
  {
    std::string name;
    soci::statement st = (sql.prepare << "SELECT name FROM sqlite_master WHERE type = 'table' "
                                         "AND name NOT LIKE 'sqlite_%' ORDER BY name",
                          soci::into(name));
    st.execute(false);
    while (st.fetch()) names.push_back(name);
  }
  std::map<std::string, Table> tables;
  for (const std::string& name : names) {
    Table table{name, {}, {}};
    soci::rowset<soci::row> columns = (sql.prepare << "PRAGMA table_info(" + Quoted(name) + ")");
    for (const soci::row& row : columns) {
      std::string type = row.get<std::string>(2, "");
      std::transform(type.begin(), type.end(), type.begin(),
                     [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
      table.columns.push_back({row.get<std::string>(1), type.find("INT") != std::string::npos});
    }
    soci::rowset<soci::row> keys = (sql.prepare << "PRAGMA foreign_key_list(" + Quoted(name) + ")");
    for (const soci::row& row : keys) {
      const std::string target = row.get<std::string>(2);
      if (target != name) table.references.insert(target);
    }
    tables.emplace(name, std::move(table));
  }
  std::vector<Table> ordered;
  std::set<std::string> placed;
  while (ordered.size() < tables.size()) {
    const std::size_t before = ordered.size();
    for (auto& [name, table] : tables) {
      if (placed.contains(name)) continue;
      const bool ready = std::all_of(
          table.references.begin(), table.references.end(),
          [&](const std::string& r) { return placed.contains(r) || !tables.contains(r); });
      if (!ready) continue;
      ordered.push_back(table);
      placed.insert(name);
    }
    if (ordered.size() == before) {
      throw std::runtime_error("the store's foreign keys form a cycle: cannot order its tables");
    }
  }
  return ordered;
}

long long IntegerOf(const soci::row& row, std::size_t i) {
  switch (row.get_properties(i).get_data_type()) {
    case soci::dt_integer:
      return row.get<int>(i);
    case soci::dt_long_long:
      return row.get<long long>(i);
    case soci::dt_unsigned_long_long:
      return static_cast<long long>(row.get<unsigned long long>(i));
    case soci::dt_double:
      return static_cast<long long>(row.get<double>(i));
    default:
      return std::atoll(row.get<std::string>(i).c_str());
  }
}

std::string TextOf(const soci::row& row, std::size_t i) {
  switch (row.get_properties(i).get_data_type()) {
    case soci::dt_integer:
      return std::to_string(row.get<int>(i));
    case soci::dt_long_long:
      return std::to_string(row.get<long long>(i));
    case soci::dt_unsigned_long_long:
      return std::to_string(row.get<unsigned long long>(i));
    default:
      return row.get<std::string>(i);
  }
}

// One batch of a table's rows, a vector per column, bound in bulk.
struct Batch {
  explicit Batch(const Table& table)
      : table_(table),
        integers_(table.columns.size()),
        texts_(table.columns.size()),
        nulls_(table.columns.size()) {}
  void Add(const soci::row& row) {
    for (std::size_t i = 0; i < table_.columns.size(); ++i) {
      const bool null = row.get_indicator(i) == soci::i_null;
      nulls_[i].push_back(null ? soci::i_null : soci::i_ok);
      if (table_.columns[i].integer) {
        integers_[i].push_back(null ? 0 : IntegerOf(row, i));
      } else {
        texts_[i].push_back(null ? std::string() : TextOf(row, i));
      }
    }
    ++size_;
  }
  std::size_t size() const { return size_; }
  void Insert(soci::session& sql) {
    if (size_ == 0) return;
    std::string names, values;
    for (std::size_t i = 0; i < table_.columns.size(); ++i) {
      names += (i ? ", " : "") + Quoted(table_.columns[i].name);
      values += fmt::format("{}:c{}", i ? ", " : "", i);
    }
    soci::statement st(sql);
    for (std::size_t i = 0; i < table_.columns.size(); ++i) {
      if (table_.columns[i].integer) {
        st.exchange(soci::use(integers_[i], nulls_[i], fmt::format("c{}", i)));
      } else {
        st.exchange(soci::use(texts_[i], nulls_[i], fmt::format("c{}", i)));
      }
    }
    st.alloc();
    st.prepare(fmt::format("INSERT INTO {} ({}) VALUES ({})", Quoted(table_.name), names, values));
    st.define_and_bind();
    st.execute(true);
    for (std::size_t i = 0; i < table_.columns.size(); ++i) {
      integers_[i].clear();
      texts_[i].clear();
      nulls_[i].clear();
    }
    size_ = 0;
  }

 private:
  const Table& table_;
  std::deque<std::vector<long long>> integers_;
  std::deque<std::vector<std::string>> texts_;
  std::deque<std::vector<soci::indicator>> nulls_;
  std::size_t size_ = 0;
};

std::int64_t CountRows(soci::session& sql, const std::string& table) {
  long long n = 0;
  sql << "SELECT COUNT(*) FROM " + Quoted(table), soci::into(n);
  return n;
}

// Whether something answers on the port a running coordinator wrote.
bool CoordinatorAnswers(const DataDir& data) {
  auto text = platform::ReadWholeFile(data.port_file());
  if (!text) return false;
  const int port = std::atoi(text->c_str());
  if (port <= 0 || port > 65535) return false;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool answered =
      ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0;
  ::close(fd);
  return answered;
}

}  // namespace

Result<MigrateSummary> MigrateToPostgresql(const MigrateOptions& options) {
  const DataDir data{options.data};
  auto config = CoordinatorConfig::Load(data.config());
  if (!config) return std::unexpected(config.error());
  if (config->store.postgresql()) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("{} already keeps its store in PostgreSQL ({})", data.config().string(),
                            config->store.url));
  }
  if (CoordinatorAnswers(data)) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("a coordinator is running on {} (it answers on the port in {}): stop "
                            "it first, so that nothing is written to the SQLite store after the "
                            "copy",
                            data.root.string(), data.port_file().string()));
  }
  StoreConfig destination_config;
  destination_config.backend = "postgresql";
  destination_config.url = options.url;
  destination_config.password_file = options.password_file;
  destination_config.sslmode = options.sslmode;
  auto destination_target =
      StoreTarget::Postgresql(options.url, options.password_file, options.sslmode);
  if (!destination_target) return std::unexpected(destination_target.error());

  // The SQLite store at this version's schema, as `serve` would leave it.
  auto source = Store::Open(StoreTarget::Sqlite(data.store()));
  if (!source) return std::unexpected(source.error().WithContext("the SQLite store"));
  auto destination = Store::Create(*destination_target);
  if (!destination) {
    return std::unexpected(destination.error().WithContext(destination_target->description));
  }
  if ((*source)->schema_version() != (*destination)->schema_version()) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("the SQLite store is at schema version {} and the new one at {}",
                            (*source)->schema_version(), (*destination)->schema_version()));
  }

  MigrateSummary summary;
  summary.schema_version = (*destination)->schema_version();
  summary.destination = destination_target->description;
  auto read_tables = (*source)->Read(
      [](soci::session& sql) -> Result<std::vector<Table>> { return ReadTables(sql); });
  if (!read_tables) return std::unexpected(read_tables.error());
  const std::vector<Table> tables = std::move(*read_tables);
  const auto id = RandomHex(8);
  const AuditOrigin origin{"fabu-coordinator", "system", fmt::format("migrate-{}", id ? *id : "0"),
                           "local"};
  auto copied = (*destination)->Write(origin, [&](Transaction& tx) -> Result<std::int64_t> {
    return (*source)->Read([&](soci::session& from) -> Result<std::int64_t> {
      soci::transaction snapshot(from);
      soci::session& to = tx.sql();
      // What creating the schema wrote (its migrations' own rows) goes: the
      // copy brings the installation's.
      for (auto it = tables.rbegin(); it != tables.rend(); ++it) {
        to << "DELETE FROM " + Quoted(it->name);
      }
      std::int64_t rows = 0;
      for (const Table& table : tables) {
        std::string names;
        for (std::size_t i = 0; i < table.columns.size(); ++i) {
          names += (i ? ", " : "") + Quoted(table.columns[i].name);
        }
        Batch batch(table);
        soci::rowset<soci::row> all =
            (from.prepare << fmt::format("SELECT {} FROM {}", names, Quoted(table.name)));
        std::int64_t n = 0;
        for (const soci::row& row : all) {
          batch.Add(row);
          ++n;
          if (batch.size() == kBatch) batch.Insert(to);
        }
        batch.Insert(to);
        summary.tables.push_back({table.name, n});
        rows += n;
      }
      AuditEvent event("store.migrate", "store", "postgresql");
      event.detail = {{"from", data.store().string()},
                      {"to", destination_target->description},
                      {"tables", tables.size()},
                      {"rows", rows}};
      tx.Audit(event);
      return rows;
    });
  });

  // Checked whole before config.json names the new store: every table's
  // rows (the audit log has the migration's entry more), and the chain.
  auto checked = [&]() -> Result<void> {
    if (!copied) return std::unexpected(copied.error());
    for (const auto& table : summary.tables) {
      auto counted = (*destination)->Read([&](soci::session& sql) -> Result<std::int64_t> {
        return CountRows(sql, table.name);
      });
      if (!counted) return std::unexpected(counted.error());
      const std::int64_t expected = table.rows + (table.name == "audit_log" ? 1 : 0);
      if (*counted != expected) {
        return Fail(ErrorCode::kIntegrity,
                    fmt::format("table {}: {} rows in SQLite, {} in PostgreSQL after the copy",
                                table.name, table.rows, *counted));
      }
    }
    // Each package's bytes go into the database too, so every coordinator
    // that joins can serve it (packages/package_store.hpp).
    auto packages =
        (*destination)->Read([](soci::session& sql) -> Result<std::vector<StoredPackage>> {
          return ListPackages(sql);
        });
    if (!packages) return std::unexpected(packages.error());
    for (const StoredPackage& package : *packages) {
      const std::filesystem::path file = data.packages() / (package.id + ".fabu");
      if (auto ok = StorePackageChunks(**destination, origin, package.id, file); !ok) {
        return std::unexpected(ok.error().WithContext("package " + package.id));
      }
    }
    auto verified = (*destination)->Read([](soci::session& sql) -> Result<AuditVerification> {
      return VerifyAudit(sql);
    });
    if (!verified) return std::unexpected(verified.error());
    if (!verified->intact) {
      return Fail(
          ErrorCode::kIntegrity,
          fmt::format("the audit chain does not verify on PostgreSQL: {}", verified->reason));
    }
    summary.audit_entries = verified->last_seq;
    return {};
  }();
  if (!checked) {
    // Nothing half-done: the new database goes back to empty.
    auto dropped = (*destination)->Write(origin, [&](Transaction& tx) -> Result<void> {
      for (auto it = tables.rbegin(); it != tables.rend(); ++it) {
        tx.sql() << "DROP TABLE IF EXISTS " + Quoted(it->name) + " CASCADE";
      }
      tx.sql() << "DROP TABLE IF EXISTS schema_migrations CASCADE";
      return {};
    });
    std::string message =
        fmt::format("copying the store to {}: {}; config.json still names the SQLite store",
                    destination_target->description, checked.error().message());
    if (!dropped) {
      message += fmt::format(
          " (emptying the new database again failed: {}; drop and create it "
          "before trying again)",
          dropped.error().message());
    }
    return Fail(checked.error().code(), message);
  }
  (*destination)->Close();
  (*source)->Close();

  auto document = platform::ReadWholeFile(data.config());
  if (!document) return std::unexpected(document.error());
  nlohmann::json edited = nlohmann::json::parse(*document, nullptr, false);
  if (!edited.is_object()) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("{} is not a JSON object", data.config().string()));
  }
  edited["store"] = destination_config.ToJson();
  if (auto ok = platform::WriteFileDurably(data.config(), edited.dump(2) + "\n", 0600); !ok) {
    return std::unexpected(ok.error().WithContext(
        fmt::format("the store was copied to {} but {} still names the SQLite store",
                    destination_target->description, data.config().string())));
  }
  return summary;
}

}  // namespace fabu::coordinator
