// People, roles and bearer tokens (procedure §4.4).
//
// A user has a name, one role and one bearer token. Tokens are 256 random bits
// (hex); the store keeps only their SHA-256, so a token is shown once, when it
// is made. A token expires (config.json "user_token_days", 90 by default;
// tokens made before expiry existed never do) and is replaced by rotation:
// the new one works at once, the old one stops in the same transaction. A
// disabled user's token no longer authenticates. Nothing caches a token: every
// request asks the store, so disabling, rotation and expiry bite on the next
// request.
//
// The store functions take the session or Transaction the caller holds (see
// store.hpp): call them inside Store::Read / Store::Write. Mutations append
// their audit entry in the same transaction. SOCI exceptions propagate to the
// Store boundary.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/release/workflow.hpp"
#include "protocol/error.hpp"
#include "protocol/timestamp.hpp"

namespace soci {
class session;
}

namespace fabu::coordinator {

class Transaction;

// The roles of the procedure (procedure §4.4): one type, the release
// domain's, for the API, the store and the workflow alike.
using protocol::UnixSeconds;
using release::ParseRole;
using release::Role;
using release::RoleName;

// "admin, approver, release_manager, tester, viewer"
std::string RoleList();

// The console session a request came with (sessions.hpp).
struct ConsoleSession {
  std::string id_sha256;
  std::string csrf;
  UnixSeconds expires = 0;
};

// The authenticated person behind a request.
struct Principal {
  std::string name;
  Role role = Role::kViewer;
  // Set when the request was authenticated by a console session's cookie
  // rather than a bearer token.
  std::optional<ConsoleSession> session;
};

// kPermissionDenied naming the roles needed, unless `principal` has one of
// `allowed`.
Result<void> RequireRole(const Principal& principal, std::span<const Role> allowed,
                         std::string_view action);

struct User {
  std::string name;
  Role role = Role::kViewer;
  bool disabled = false;
  std::string created;
  std::string created_by;
  UnixSeconds token_expires = 0;  // 0: the token never expires

  // The public view (never the token hash); "token_expires" RFC 3339 UTC,
  // or null when the token never expires.
  nlohmann::json ToJson() const;
};

// A new bearer token: 64 hex digits of random bits.
Result<std::string> NewToken();
// What the store keeps of a token: SHA-256 hex.
std::string HashToken(std::string_view token);

// 1-64 of [a-z0-9._-], starting with a letter or digit.
Result<void> CheckUserName(std::string_view name);

// A new token lives this long unless told otherwise (config.json
// "user_token_days"); at most kMaxTokenDays. 0 days: it never expires.
inline constexpr std::int64_t kDefaultTokenDays = 90;
inline constexpr std::int64_t kMaxTokenDays = 3650;
// kInvalidArgument naming `field` unless 0 <= days <= kMaxTokenDays.
Result<void> CheckTokenDays(std::int64_t days, std::string_view field);

// Adds a user with a fresh token valid `token_days` days from `now` (0:
// without expiry); returns the token (shown once). kAlreadyExists when the
// name is taken.
Result<std::string> CreateUser(Transaction& tx, std::string_view name, Role role,
                               std::int64_t token_days = kDefaultTokenDays, UnixSeconds now = 0);

struct RotatedToken {
  std::string token;  // shown once
  User user;          // with the new expiry
};
// Replaces the token of user `name` by a fresh one valid `token_days` days
// from `now` (0: without expiry): the old token stops at once. Audited
// "user.token-rotate" (expiries before and after, never a token). kNotFound
// for an unknown user, kFailedPrecondition for a disabled one.
Result<RotatedToken> RotateToken(Transaction& tx, std::string_view name, std::int64_t token_days,
                                 UnixSeconds now);

// kNotFound for an unknown name; disabling a disabled user is a no-op that
// still succeeds (and is not audited twice).
Result<User> DisableUser(Transaction& tx, std::string_view name);

Result<User> FindUser(soci::session& sql, std::string_view name);
std::vector<User> ListUsers(soci::session& sql);

// Every user as the audit checkpoints record them (audit/checkpoints.hpp),
// straight from the table: {"name": {"role": R, "disabled": B, "token": T,
// "token_expires": E}} (E Unix seconds, 0: never),
// T the first 16 hex digits of the SHA-256 of the stored token hash, so a
// token swapped by hand shows without the checkpoint giving the hash away.
nlohmann::json UsersRoster(soci::session& sql);

// The message of AuthenticateToken for a token no user holds.
inline constexpr std::string_view kUnknownToken = "unknown bearer token";

// The enabled user holding `token`, unexpired at `now`, or kUnauthenticated
// saying why not. `expires`, when given, receives the token's expiry (0:
// never) when it is accepted.
Result<Principal> AuthenticateToken(soci::session& sql, std::string_view token, UnixSeconds now,
                                    UnixSeconds* expires = nullptr);

}  // namespace fabu::coordinator
