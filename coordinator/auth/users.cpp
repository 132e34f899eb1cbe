#include "coordinator/auth/users.hpp"

#include <fmt/format.h>
#include <soci/soci.h>

#include "coordinator/auth/sessions.hpp"
#include "coordinator/common/clock.hpp"
#include "coordinator/common/digest.hpp"
#include "coordinator/store/row_query.hpp"
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
  long long token_expires = 0;

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
    user.token_expires = token_expires;
    return user;
  }
};

constexpr const char* kUserColumns = "name, role, disabled, created, created_by, token_expires";

// The row's columns, in kUserColumns' order.
auto IntoRow(UserRow& row) {
  return std::make_tuple(soci::into(row.name), soci::into(row.role), soci::into(row.disabled),
                         soci::into(row.created), soci::into(row.created_by),
                         soci::into(row.token_expires));
}

// When a token made at `now` to live `days` stops working; 0 (never) for 0 days.
UnixSeconds TokenExpiry(std::int64_t days, UnixSeconds now) {
  return days > 0 ? now + days * 86400 : 0;
}

std::string ExpiryText(UnixSeconds expires) {
  return expires == 0 ? std::string("never") : protocol::FormatRfc3339Utc(expires);
}

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
          {"created_by", created_by},
          {"token_expires", token_expires == 0
                                ? nlohmann::json(nullptr)
                                : nlohmann::json(protocol::FormatRfc3339Utc(token_expires))}};
}

Result<void> CheckTokenDays(std::int64_t days, std::string_view field) {
  if (days < 0 || days > kMaxTokenDays) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("{}: a token lives 0 (no expiry) to {} days, not {}", field,
                            kMaxTokenDays, days));
  }
  return {};
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
  auto [n, r, d, c, b, e] = IntoRow(row);
  sql << fmt::format("SELECT {} FROM users WHERE name = :name", kUserColumns), soci::use(key), n, r,
      d, c, b, e;
  if (!sql.got_data()) return Fail(ErrorCode::kNotFound, fmt::format("no user \"{}\"", name));
  return row.ToUser();
}

std::vector<User> ListUsers(soci::session& sql) {
  std::vector<User> users;
  UserRow row;
  auto [n, r, d, c, b, e] = IntoRow(row);
  soci::statement st = OneShot(sql, fmt::format("SELECT {} FROM users ORDER BY name", kUserColumns),
                               n, r, d, c, b, e);
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
  long long token_expires = 0;
  soci::statement st = OneShot(sql,
                               "SELECT name, role, token_sha256, disabled, token_expires "
                               "FROM users ORDER BY name",
                               soci::into(name), soci::into(role), soci::into(token_sha256),
                               soci::into(disabled), soci::into(token_expires));
  st.execute(false);
  while (st.fetch()) {
    roster[name] = {{"role", role},
                    {"disabled", disabled != 0},
                    {"token", Sha256Hex(token_sha256).substr(0, 16)},
                    {"token_expires", token_expires}};
  }
  return roster;
}

Result<std::string> CreateUser(Transaction& tx, std::string_view name, Role role,
                               std::int64_t token_days, UnixSeconds now) {
  if (auto ok = CheckUserName(name); !ok) return std::unexpected(ok.error());
  if (auto ok = CheckTokenDays(token_days, "token_days"); !ok) return std::unexpected(ok.error());
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
  user.token_expires = TokenExpiry(token_days, now != 0 ? now : tx.clock().Seconds());
  std::string role_name(RoleName(role));
  std::string token_hash = HashToken(*token);
  int disabled = 0;
  long long expires = user.token_expires;
  tx.sql() << "INSERT INTO users (name, role, token_sha256, disabled, created, created_by, "
              "token_expires) VALUES (:name, :role, :token, :disabled, :created, :created_by, "
              ":expires)",
      soci::use(user.name), soci::use(role_name), soci::use(token_hash), soci::use(disabled),
      soci::use(user.created), soci::use(user.created_by), soci::use(expires);
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
  EndSessionsOf(tx, name);
  return after;
}

Result<RotatedToken> RotateToken(Transaction& tx, std::string_view name, std::int64_t token_days,
                                 UnixSeconds now) {
  if (auto ok = CheckTokenDays(token_days, "token_days"); !ok) return std::unexpected(ok.error());
  auto user = FindUser(tx.sql(), name);
  if (!user) return std::unexpected(user.error());
  if (user->disabled) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("user \"{}\" is disabled: a disabled user gets no new token", name));
  }
  auto token = NewToken();
  if (!token) return std::unexpected(token.error());
  User after = *user;
  after.token_expires = TokenExpiry(token_days, now);
  std::string key(name);
  std::string token_hash = HashToken(*token);
  long long expires = after.token_expires;
  tx.sql() << "UPDATE users SET token_sha256 = :token, token_expires = :expires WHERE name = :name",
      soci::use(token_hash), soci::use(expires), soci::use(key);
  AuditEvent event("user.token-rotate", "user", key);
  event.before = user->ToJson();
  event.after = after.ToJson();
  event.detail = {{"token_days", token_days}};
  tx.Audit(event);
  // Console sessions signed in with the old token end with it.
  EndSessionsOf(tx, name);
  return RotatedToken{*token, after};
}

Result<Principal> AuthenticateToken(soci::session& sql, std::string_view token, UnixSeconds now,
                                    UnixSeconds* expires) {
  if (token.empty()) {
    return Fail(ErrorCode::kUnauthenticated,
                "missing bearer token: send \"Authorization: Bearer <token>\" (fabu: --token or "
                "FABU_TOKEN)");
  }
  std::string hash = HashToken(token);
  UserRow row;
  auto [n, r, d, c, b, e] = IntoRow(row);
  sql << fmt::format("SELECT {} FROM users WHERE token_sha256 = :hash", kUserColumns),
      soci::use(hash), n, r, d, c, b, e;
  if (!sql.got_data()) return Fail(ErrorCode::kUnauthenticated, std::string(kUnknownToken));
  if (row.disabled != 0) {
    return Fail(ErrorCode::kUnauthenticated,
                fmt::format("user \"{}\" is disabled; ask an admin for a new account", row.name));
  }
  if (row.token_expires != 0 && now >= row.token_expires) {
    return Fail(ErrorCode::kUnauthenticated,
                fmt::format("the token of user \"{}\" expired at {}; an admin makes a new one with "
                            "`fabu user token rotate {}`",
                            row.name, ExpiryText(row.token_expires), row.name));
  }
  auto role = ParseRole(row.role);
  if (!role) return Fail(ErrorCode::kInternal, "user " + row.name + " has an unknown role");
  if (expires != nullptr) *expires = row.token_expires;
  return Principal{row.name, *role, std::nullopt};
}

}  // namespace fabu::coordinator
