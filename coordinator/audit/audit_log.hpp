// The audit trail: an append-only, hash-chained log of every mutation (seed
// §1.4, §6.1.1(2)).
//
// Each entry records who did what to which object, when, from where and under
// which request, plus the SHA-256 of the object's JSON before and after. Entry
// n holds prev_hash = hash of entry n-1 (64 zeros for the first) and
// hash = SHA-256(prev_hash + CanonicalContent()), where the canonical content
// is the JSON of every other field with sorted keys. A one-row table
// `audit_head` holds the seq and hash of the last entry, so removing the tail
// of the log is detected as well as changing or removing any row — unless
// audit_head is rewritten too: what anchors the chain outside the database
// is the signed checkpoints of audit/checkpoints.hpp (docs/security.md).
//
// These functions work on a SOCI session the caller holds (inside a store
// transaction for AppendAudit: see Store::Write / Transaction::Audit). SOCI
// exceptions propagate; the Store turns them into Errors at its boundary.
// Seq numbers are assigned max+1 inside the writing transaction; the store
// serializes writers.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/error.hpp"

namespace soci {
class session;
}

namespace fabu::coordinator {

// Who is acting, and through which request. Filled by the server from the
// authenticated request (or by a local command such as `init`).
struct AuditOrigin {
  std::string actor;       // user name, or "fabu-coordinator" for local commands
  std::string role;        // the actor's role name, "system" for local commands
  std::string request_id;  // X-Request-Id of the request
  std::string source;      // peer address "ip:port", "local" for local commands
};

// What happened: one mutation of one object.
struct AuditEvent {
  AuditEvent() = default;
  AuditEvent(std::string action_name, std::string type, std::string id)
      : action(std::move(action_name)), object_type(std::move(type)), object_id(std::move(id)) {}

  std::string action;       // dotted verb: "user.create", "release.approve", ...
  std::string object_type;  // "user", "package", "release", ...
  std::string object_id;
  std::string release_id;                // the release this concerns, if any ("" otherwise)
  std::optional<nlohmann::json> before;  // the object before; absent on create
  std::optional<nlohmann::json> after;   // the object after; absent on delete
  nlohmann::json detail = nlohmann::json::object();  // e.g. {"comment": "..."}
  // ObjectDigest of the object before / after, for a caller that computes it
  // without building the json (DeploymentRecord::Digest); used only when
  // `before` / `after` is absent.
  std::optional<std::string> before_sha256;
  std::optional<std::string> after_sha256;
};

struct AuditEntry {
  std::int64_t seq = 0;
  std::string time;
  std::string actor;
  std::string role;
  std::string action;
  std::string object_type;
  std::string object_id;
  std::string release_id;
  std::string request_id;
  std::string source;
  std::string before_sha256;  // "" when there was no object before
  std::string after_sha256;   // "" when there is no object after
  std::string detail;         // compact JSON
  std::string prev_hash;
  std::string hash;

  // The JSON (sorted keys, compact) of every field but prev_hash and hash.
  std::string CanonicalContent() const;
  // SHA-256 hex of prev_hash + CanonicalContent().
  std::string ComputeHash() const;
  nlohmann::json ToJson() const;
};

inline constexpr std::string_view kGenesisHash =
    "0000000000000000000000000000000000000000000000000000000000000000";

// SHA-256 hex of the compact JSON of an object (nlohmann sorts object keys).
std::string ObjectDigest(const nlohmann::json& object);

// AppendAudit's statements, prepared once per store session (kept in the
// store's StatementCache, store.hpp), and the chain's head as the appends of
// the transaction in progress left it: AppendAudit reads audit_head once per
// transaction and keeps the head here instead of writing audit_head for every
// entry; Flush writes it before the COMMIT. The store's group commit (the
// only writer) resets it when a transaction starts or fails, restores it when
// a writer's savepoint is rolled back, and flushes it before each COMMIT.
struct AuditStatements {
  explicit AuditStatements(soci::session& sql);
  ~AuditStatements();
  struct Head {
    long long seq = 0;
    std::string hash;
  };
  // Writes `pending` into audit_head (when set) and clears it.
  void Flush();
  struct Prepared;
  std::unique_ptr<Prepared> prepared;
  std::optional<Head> pending;
};

// Appends one entry made at `time` (RFC 3339 UTC, the store's clock) chained
// to the current head; returns it. With `statements`, runs those instead of
// preparing its statements anew.
AuditEntry AppendAudit(soci::session& sql, const AuditOrigin& origin, const AuditEvent& event,
                       std::string time, AuditStatements* statements = nullptr);

// audit_log's columns, in the order AppendAudits' rows hold them.
struct AuditColumn {
  std::string_view name;
  bool number = false;  // seq; the others are text
};
extern const std::span<const AuditColumn> kAuditColumns;

// Appends one entry per (origin, event) of `items`, in order, all made at
// `time`, chained as AppendAudit chains them, with one INSERT for all of
// them: on PostgreSQL a statement per entry is a round trip to the server
// each. `rows_sql` is the SQL of a table named `r` whose rows are the
// objects of the JSON array bound as `:rows`, with kAuditColumns as its
// columns (the store's dialect makes it: store/dialect.hpp JsonRowsSql);
// the statement is prepared once per `statements`, so `rows_sql` must be the
// same at every call on them. Returns the entries.
std::vector<AuditEntry> AppendAudits(soci::session& sql,
                                     std::span<const std::pair<AuditOrigin, AuditEvent>> items,
                                     std::string time, AuditStatements& statements,
                                     std::string_view rows_sql);

struct AuditFilter {
  std::optional<std::string> release_id;
  std::optional<std::int64_t> after_seq;   // entries with seq > after_seq, oldest first
  std::optional<std::int64_t> before_seq;  // entries with seq < before_seq, newest first
  std::int64_t limit = 1000;
};

std::vector<AuditEntry> ListAudit(soci::session& sql, const AuditFilter& filter);

struct AuditVerification {
  bool intact = true;
  std::int64_t count = 0;                  // entries checked
  std::optional<std::int64_t> broken_seq;  // the first entry found broken
  std::string reason;                      // what is wrong with it
  // The last entry found whole (0 and kGenesisHash when none): where the
  // next VerifyAuditFrom may start.
  std::int64_t last_seq = 0;
  std::string last_hash;
  // False when VerifyAuditFrom stopped at its limit before the end: the
  // head was not checked, and the next check starts at last_seq.
  bool reached_head = true;

  nlohmann::json ToJson() const;
};

// The seq and hash audit_head records (nullopt before the first entry).
std::optional<AuditStatements::Head> ReadAuditHead(soci::session& sql);

// The stored hash of entry `seq`; nullopt when there is no such entry.
std::optional<std::string> AuditHashAt(soci::session& sql, std::int64_t seq);

// Walks the whole chain in seq order and checks seq continuity, prev_hash
// links, each hash, and the head, all in one read transaction (a snapshot:
// writes committed meanwhile are not seen), so `sql` must not be in a
// transaction already. Streams; memory is flat in the log size.
AuditVerification VerifyAudit(soci::session& sql);

// The same from a point verified before (`seq`, `hash`: an entry and the hash
// it had then): checks that the entry still has that hash, then the entries
// after it and the head. `count` is the entries checked after `seq`. For the
// daemon's periodic check, which costs what the chain grew since the last.
// With a `limit` (> 0) it checks at most that many entries, so that a long
// chain is checked in parts without holding the store's reading session.
AuditVerification VerifyAuditFrom(soci::session& sql, std::int64_t seq, std::string_view hash,
                                  std::int64_t limit = 0);

}  // namespace fabu::coordinator
