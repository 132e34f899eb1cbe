#include "coordinator/auth/users.hpp"

#include <fmt/format.h>
#include <soci/soci.h>

#include "coordinator/common/clock.hpp"
#include "coordinator/common/digest.hpp"
#include "coordinator/store/store.hpp"

namespace fabu::coordinator {
namespace {

constexpr Role kAllRoles[] = {Role::kAdmin, Role::kApprover, Role::kReleaseManager, Role::kTester,
                              Role::kViewer};

struct UserRow {
  std::string name;
  std::string role;
  int disabled = 0;
  std::string created;
  std::string created_by;

  User ToUser() const {
    User user;
    user.name = name;
    // A role this coordinator does not know (a damaged row), or the
    // coordinator's own, grants the least.
    user.role = ParseRole(role).value_or(Role::kViewer);
    if (user.role == Role::kSystem) user.role = Role::kViewer;
    user.disabled = disabled != 0;
    user.created = created;
    user.created_by = created_by;
    return user;
  }
};

}  // namespace

std::string RoleList() {
  std::string out;
  for (Role role : kAllRoles) {
    if (!out.empty()) out += ", ";
    out += RoleName(role);
  }
  return out;
}

Result<void> RequireRole(const Principal& principal, std::span<const Role> allowed,
                         std::string_view action) {
  for (Role role : allowed) {
    if (role == principal.role) return {};
  }
  std::string needed;
  for (std::size_t i = 0; i < allowed.size(); ++i) {
    if (i > 0) needed += i + 1 == allowed.size() ? " or " : ", ";
    needed += RoleName(allowed[i]);
  }
  return Fail(ErrorCode::kPermissionDenied,
              fmt::format("{} needs role {}; user {} has role {}", action, needed, principal.name,
                          RoleName(principal.role)));
}

nlohmann::json User::ToJson() const {
  return {{"name", name},
          {"role", RoleName(role)},
          {"disabled", disabled},
          {"created", created},
          {"created_by", created_by}};
}

Result<std::string> NewToken() { return RandomHex(32); }

std::string HashToken(std::string_view token) { return Sha256Hex(token); }

Result<void> CheckUserName(std::string_view name) {
  if (name.empty() || name.size() > 64) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("user name \"{}\" must be 1 to 64 characters", name));
  }
  auto is_alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!is_alnum(name.front())) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("user name \"{}\" must start with a lower-case letter or digit", name));
  }
  for (char c : name) {
    if (!is_alnum(c) && c != '.' && c != '_' && c != '-') {
      return Fail(ErrorCode::kInvalidArgument,
                  fmt::format("user name \"{}\" may hold only a-z, 0-9, '.', '_' and '-'", name));
    }
  }
  return {};
}

Result<User> FindUser(soci::session& sql, std::string_view name) {
  UserRow row;
  std::string key(name);
  sql << "SELECT name, role, disabled, created, created_by FROM users WHERE name = :name",
      soci::use(key), soci::into(row.name), soci::into(row.role), soci::into(row.disabled),
      soci::into(row.created), soci::into(row.created_by);
  if (!sql.got_data()) return Fail(ErrorCode::kNotFound, fmt::format("no user \"{}\"", name));
  return row.ToUser();
}

std::vector<User> ListUsers(soci::session& sql) {
  std::vector<User> users;
  UserRow row;
  soci::statement st =
      (sql.prepare << "SELECT name, role, disabled, created, created_by FROM users ORDER BY name",
       soci::into(row.name), soci::into(row.role), soci::into(row.disabled),
       soci::into(row.created), soci::into(row.created_by));
  st.execute(false);
  while (st.fetch()) users.push_back(row.ToUser());
  return users;
}

nlohmann::json UsersRoster(soci::session& sql) {
  nlohmann::json roster = nlohmann::json::object();
  std::string name;
  std::string role;
  std::string token_sha256;
  int disabled = 0;
  soci::statement st =
      (sql.prepare << "SELECT name, role, token_sha256, disabled FROM users ORDER BY name",
       soci::into(name), soci::into(role), soci::into(token_sha256), soci::into(disabled));
  st.execute(false);
  while (st.fetch()) {
    roster[name] = {{"role", role},
                    {"disabled", disabled != 0},
                    {"token", Sha256Hex(token_sha256).substr(0, 16)}};
  }
  return roster;
}

Result<std::string> CreateUser(Transaction& tx, std::string_view name, Role role) {
  if (auto ok = CheckUserName(name); !ok) return std::unexpected(ok.error());
  if (role == Role::kSystem) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("role: system is the coordinator's own role, never a user's; use one "
                            "of {}",
                            RoleList()));
  }
  if (FindUser(tx.sql(), name)) {
    return Fail(ErrorCode::kAlreadyExists, fmt::format("user \"{}\" already exists", name));
  }
  auto token = NewToken();
  if (!token) return std::unexpected(token.error());
  User user;
  user.name = std::string(name);
  user.role = role;
  user.created = tx.clock().Utc();
  user.created_by = tx.origin().actor;
  std::string role_name(RoleName(role));
  std::string token_hash = HashToken(*token);
  int disabled = 0;
  tx.sql() << "INSERT INTO users (name, role, token_sha256, disabled, created, created_by) "
              "VALUES (:name, :role, :token, :disabled, :created, :created_by)",
      soci::use(user.name), soci::use(role_name), soci::use(token_hash), soci::use(disabled),
      soci::use(user.created), soci::use(user.created_by);
  AuditEvent event("user.create", "user", user.name);
  event.after = user.ToJson();
  event.detail = {{"role", role_name}};
  tx.Audit(event);
  return *token;
}

Result<User> DisableUser(Transaction& tx, std::string_view name) {
  auto user = FindUser(tx.sql(), name);
  if (!user) return user;
  if (user->disabled) return user;
  User after = *user;
  after.disabled = true;
  std::string key(name);
  tx.sql() << "UPDATE users SET disabled = 1 WHERE name = :name", soci::use(key);
  AuditEvent event("user.disable", "user", key);
  event.before = user->ToJson();
  event.after = after.ToJson();
  tx.Audit(event);
  return after;
}

Result<Principal> AuthenticateToken(soci::session& sql, std::string_view token) {
  if (token.empty()) {
    return Fail(ErrorCode::kUnauthenticated,
                "missing bearer token: send \"Authorization: Bearer <token>\" (fabu: --token or "
                "FABU_TOKEN)");
  }
  std::string hash = HashToken(token);
  UserRow row;
  sql << "SELECT name, role, disabled, created, created_by FROM users WHERE token_sha256 = :hash",
      soci::use(hash), soci::into(row.name), soci::into(row.role), soci::into(row.disabled),
      soci::into(row.created), soci::into(row.created_by);
  if (!sql.got_data()) return Fail(ErrorCode::kUnauthenticated, "unknown bearer token");
  if (row.disabled != 0) {
    return Fail(ErrorCode::kUnauthenticated,
                fmt::format("user \"{}\" is disabled; ask an admin for a new account", row.name));
  }
  auto role = ParseRole(row.role);
  if (!role) return Fail(ErrorCode::kInternal, "user " + row.name + " has an unknown role");
  return Principal{row.name, *role};
}

}  // namespace fabu::coordinator
