// People, roles and bearer tokens (procedure §4.4).
//
// A user has a name, one role and one bearer token. Tokens are 256 random bits
// (hex); the store keeps only their SHA-256, so a token is shown once, when it
// is made. A disabled user's token no longer authenticates.
//
// The store functions take the session or Transaction the caller holds (see
// store.hpp): call them inside Store::Read / Store::Write. Mutations append
// their audit entry in the same transaction. SOCI exceptions propagate to the
// Store boundary.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/release/workflow.hpp"
#include "protocol/error.hpp"

namespace soci {
class session;
}

namespace fabu::coordinator {

class Transaction;

// The roles of the procedure (procedure §4.4): one type, the release
// domain's, for the API, the store and the workflow alike.
using release::ParseRole;
using release::Role;
using release::RoleName;

// "admin, approver, release_manager, tester, viewer"
std::string RoleList();

// The authenticated person behind a request.
struct Principal {
  std::string name;
  Role role = Role::kViewer;
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

  // The public view (never the token hash).
  nlohmann::json ToJson() const;
};

// A new bearer token: 64 hex digits of random bits.
Result<std::string> NewToken();
// What the store keeps of a token: SHA-256 hex.
std::string HashToken(std::string_view token);

// 1-64 of [a-z0-9._-], starting with a letter or digit.
Result<void> CheckUserName(std::string_view name);

// Adds a user with a fresh token; returns the token (shown once).
// kAlreadyExists when the name is taken.
Result<std::string> CreateUser(Transaction& tx, std::string_view name, Role role);

// kNotFound for an unknown name; disabling a disabled user is a no-op that
// still succeeds (and is not audited twice).
Result<User> DisableUser(Transaction& tx, std::string_view name);

Result<User> FindUser(soci::session& sql, std::string_view name);
std::vector<User> ListUsers(soci::session& sql);

// Every user as the audit checkpoints record them (audit/checkpoints.hpp),
// straight from the table: {"name": {"role": R, "disabled": B, "token": T}},
// T the first 16 hex digits of the SHA-256 of the stored token hash, so a
// token swapped by hand shows without the checkpoint giving the hash away.
nlohmann::json UsersRoster(soci::session& sql);

// The enabled user holding `token`, or kUnauthenticated saying why not.
Result<Principal> AuthenticateToken(soci::session& sql, std::string_view token);

}  // namespace fabu::coordinator
