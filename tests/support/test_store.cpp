#include "tests/support/test_store.hpp"

#include <gtest/gtest.h>
#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>
#include <soci/sqlite3/soci-sqlite3.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>

namespace fabu::testing {
namespace {

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

// libpq's connection string for `url` with the password of
// FABU_TEST_STORE_PASSWORD_FILE.
std::string AdminConnect() {
  std::string connect = Env("FABU_TEST_STORE");
  const std::string file = Env("FABU_TEST_STORE_PASSWORD_FILE");
  if (file.empty()) return connect;
  std::ifstream in(file);
  std::string password;
  std::getline(in, password);
  // A URI takes further parameters after '?' (or '&').
  connect += connect.find('?') == std::string::npos ? "?" : "&";
  return connect + "password=" + password;
}

// The URL with its database name (the path after host[:port]) replaced.
std::string WithDatabase(const std::string& url, const std::string& database) {
  const std::size_t authority = url.find("://");
  const std::size_t slash = url.find('/', authority == std::string::npos ? 0 : authority + 3);
  const std::size_t query = url.find('?');
  std::string out = slash == std::string::npos ? url.substr(0, query) : url.substr(0, slash);
  out += "/" + database;
  if (query != std::string::npos) out += url.substr(query);
  return out;
}

// Drops the databases this process made, when it exits (after the test's
// coordinators were stopped; WITH (FORCE) ends any session left).
class Databases {
 public:
  void Add(std::string name) {
    std::lock_guard lock(mutex_);
    names_.push_back(std::move(name));
  }
  ~Databases() {
    if (names_.empty()) return;
    try {
      soci::session admin(soci::postgresql, AdminConnect());
      for (const std::string& name : names_) {
        admin << "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)";
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "test_store: dropping the test databases: %s\n", e.what());
    }
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> names_;
};

Databases& Made() {
  static Databases databases;
  return databases;
}

// A session on the store of the data directory `data`.
std::unique_ptr<soci::session> StoreSession(const std::filesystem::path& data) {
  std::ifstream in(data / "config.json");
  const auto config = nlohmann::json::parse(in, nullptr, false);
  if (config.is_object() && config.contains("store") &&
      config["store"].value("backend", "") == "postgresql") {
    std::string connect = config["store"].value("url", "");
    const std::string file = config["store"].value("password_file", "");
    if (!file.empty()) {
      std::ifstream password_in(file);
      std::string password;
      std::getline(password_in, password);
      connect += connect.find('?') == std::string::npos ? "?" : "&";
      connect += "password=" + password;
    }
    return std::make_unique<soci::session>(soci::postgresql, connect);
  }
  return std::make_unique<soci::session>(
      soci::sqlite3, "db=\"" + (data / "coordinator.db").string() + "\" timeout=10");
}

}  // namespace

void StoreExec(const std::filesystem::path& data, const std::string& statement) {
  try {
    auto sql = StoreSession(data);
    *sql << statement;
  } catch (const std::exception& e) {
    ADD_FAILURE() << statement << ": " << e.what();
  }
}

std::string StoreQuery(const std::filesystem::path& data, const std::string& query) {
  try {
    auto sql = StoreSession(data);
    std::string value;
    soci::indicator ind = soci::i_null;
    *sql << query, soci::into(value, ind);
    return sql->got_data() && ind == soci::i_ok ? value : "";
  } catch (const std::exception& e) {
    ADD_FAILURE() << query << ": " << e.what();
    return "";
  }
}

std::vector<std::vector<std::string>> StoreRows(const std::filesystem::path& data,
                                                const std::string& query) {
  std::vector<std::vector<std::string>> rows;
  try {
    auto sql = StoreSession(data);
    soci::rowset<soci::row> all = (sql->prepare << query);
    for (const soci::row& row : all) {
      std::vector<std::string> values;
      for (std::size_t i = 0; i < row.size(); ++i) {
        if (row.get_indicator(i) == soci::i_null) {
          values.emplace_back();
          continue;
        }
        switch (row.get_properties(i).get_data_type()) {
          case soci::dt_integer:
            values.push_back(std::to_string(row.get<int>(i)));
            break;
          case soci::dt_long_long:
            values.push_back(std::to_string(row.get<long long>(i)));
            break;
          case soci::dt_unsigned_long_long:
            values.push_back(std::to_string(row.get<unsigned long long>(i)));
            break;
          case soci::dt_double: {
            const double value = row.get<double>(i);
            const auto whole = static_cast<long long>(value);
            values.push_back(static_cast<double>(whole) == value ? std::to_string(whole)
                                                                 : std::to_string(value));
            break;
          }
          default:
            values.push_back(row.get<std::string>(i));
        }
      }
      rows.push_back(std::move(values));
    }
  } catch (const std::exception& e) {
    ADD_FAILURE() << query << ": " << e.what();
  }
  return rows;
}

bool TestStoreIsPostgresql() { return !Env("FABU_TEST_STORE").empty(); }

std::optional<TestDatabase> NewTestDatabase() {
  if (!TestStoreIsPostgresql()) return std::nullopt;
  std::random_device random;
  std::string name = "t_";
  for (int i = 0; i < 16; ++i) name += "0123456789abcdef"[random() % 16];
  try {
    soci::session admin(soci::postgresql, AdminConnect());
    admin << "CREATE DATABASE " + name +
                 " TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'";
  } catch (const std::exception& e) {
    ADD_FAILURE() << "making a test database on FABU_TEST_STORE: " << e.what();
    return std::nullopt;
  }
  Made().Add(name);
  return TestDatabase{WithDatabase(Env("FABU_TEST_STORE"), name),
                      Env("FABU_TEST_STORE_PASSWORD_FILE")};
}

std::vector<std::string> TestStoreInitArgs() {
  auto db = NewTestDatabase();
  if (!db) return {};
  std::vector<std::string> args{"--store-url", db->url};
  if (!db->password_file.empty()) {
    args.push_back("--store-password-file");
    args.push_back(db->password_file);
  }
  return args;
}

void SetStoreDatabaseDown(const std::filesystem::path& data, bool down) {
  std::ifstream in(data / "config.json");
  const auto config = nlohmann::json::parse(in, nullptr, false);
  ASSERT_TRUE(config.is_object() && config.contains("store") &&
              config["store"].value("backend", "") == "postgresql")
      << data << " keeps no store in PostgreSQL";
  const std::string url = config["store"].value("url", "");
  const std::string database = url.substr(url.rfind('/') + 1, url.find('?') - url.rfind('/') - 1);
  try {
    soci::session admin(soci::postgresql, AdminConnect());
    admin << "ALTER DATABASE " + database + " ALLOW_CONNECTIONS " + (down ? "false" : "true");
    if (down) {
      int ended = 0;
      admin << "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '" +
                   database + "'",
          soci::into(ended);
    }
  } catch (const std::exception& e) {
    ADD_FAILURE() << "setting " << database << (down ? " down" : " up") << ": " << e.what();
  }
}

}  // namespace fabu::testing
