// Hosts and their enrollment.
//
// An admin or release manager makes an enrollment token: 256 random bits,
// single use and valid 1 h unless told otherwise, stored as its SHA-256 with
// the labels it gives. An agent enrolls once with the token and its host
// name; the coordinator answers with the host's credential (256 random bits,
// shown once, stored as its SHA-256). The host's labels are the token's plus
// those the agent asked for (the token's win on a clash: they were chosen by
// a person). A name already enrolled is refused until an admin removes that
// host; removal keeps the row (history) and makes the credential useless.
//
// Per host the store keeps labels, the last inventory (facts and installed
// apps, the CMDB's configuration item), the agent version and when it was
// last seen.
//
// Functions take the session or Transaction the caller holds (inside
// Store::Read / Store::Write); mutations audit in the same transaction. SOCI
// exceptions propagate to the Store boundary. EnrollHost is the exception: it
// takes the Store, because a refused enrollment must still be audited.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "coordinator/hosts/agent_certificates.hpp"
#include "coordinator/hosts/enroll_refusals.hpp"
#include "coordinator/store/store.hpp"
#include "protocol/agent_api.hpp"
#include "protocol/error.hpp"
#include "protocol/timestamp.hpp"

namespace fabu::coordinator {

using Labels = std::map<std::string, std::string>;
using LabelSelector = std::vector<std::pair<std::string, std::string>>;
using protocol::UnixSeconds;

inline constexpr std::int64_t kDefaultEnrollTtlSeconds = 3600;
// An enrollment token lives at most a year and serves at most this many hosts.
inline constexpr std::int64_t kMaxEnrollTtlSeconds = std::int64_t{365} * 86400;
inline constexpr std::int64_t kMaxEnrollUses = 1000000;

// 1-64 of [a-z0-9.-], starting with a letter or digit, and a DNS name (no
// empty label, none over 63). The error quotes at most 64 bytes of `name`.
Result<void> CheckHostName(std::string_view name);
// Every key and value as a target selector allows; `path` names the field.
Result<void> CheckLabels(const Labels& labels, std::string_view path);
// True when `labels` has every key=value of `selector`.
bool LabelsMatch(const Labels& labels, const LabelSelector& selector);

struct EnrollTokenSpec {
  Labels labels;
  std::int64_t uses = 1;
  std::int64_t ttl_seconds = kDefaultEnrollTtlSeconds;
};

struct IssuedEnrollToken {
  std::string token;  // shown once
  UnixSeconds expires = 0;
  std::int64_t uses = 1;
  Labels labels;
  nlohmann::json ToJson() const;
};

// kInvalidArgument for uses outside 1..kMaxEnrollUses, a ttl outside
// 0..kMaxEnrollTtlSeconds or bad labels.
Result<IssuedEnrollToken> CreateEnrollToken(Transaction& tx, const EnrollTokenSpec& spec,
                                            UnixSeconds now);

// An enrollment token as the store knows it: never the token itself, only
// its id, the first 12 hex digits of its SHA-256 (as the audit trail names
// it).
struct EnrollTokenInfo {
  std::string id;
  Labels labels;
  std::int64_t uses = 0;
  std::int64_t uses_allowed = 1;
  UnixSeconds expires = 0;
  std::string created;
  std::string created_by;
  std::string revoked;  // RFC 3339; "" while not revoked
  std::string revoked_by;
  // "active", "used" (no use left), "expired" or "revoked" at `now`.
  std::string_view StateAt(UnixSeconds now) const;
  nlohmann::json ToJson(UnixSeconds now) const;
};

// Every token, newest first.
std::vector<EnrollTokenInfo> ListEnrollTokens(soci::session& sql);

// Revokes the token whose id is `id` (the 12 digits `ListEnrollTokens`
// shows, or more of its SHA-256): no host enrolls with it any more, while
// hosts enrolled with it stay (a lost enrollment answer is still repeated
// to its agent). Audited "enroll-token.revoke" with `reason`. kNotFound for
// no such token, kInvalidArgument for an id that names several or a blank
// reason, kConflict when it is revoked already.
Result<EnrollTokenInfo> RevokeEnrollToken(Transaction& tx, std::string_view id,
                                          const std::string& reason, UnixSeconds now);

// Enrolls a host. Refusals (each audited as "host.enroll-refused"):
// kUnauthenticated for an unknown token, kPermissionDenied for a used or
// expired one, kAlreadyExists for a name enrolled and not removed,
// kInvalidArgument for a bad name or labels. Refusals record only short
// excerpts of what was sent; with `refusals`, an address's refusals past its
// quota are counted into summary entries instead (enroll_refusals.hpp).
// A request repeating an enrollment that committed (same token, name and
// enroll_key; host not removed since) gets the same answer again, audited as
// "host.enroll-repeated"; without an enroll_key there is no such repeat.
//
// Client certificates (agent_certificates.hpp): with `certificates`, a
// request with a CSR gets a certificate signed by `certificates->sign` (a
// CSR it refuses is refused as kInvalidArgument, audited), recorded as the
// host's; kRequired refuses a request without a CSR. Without
// `certificates` a CSR is refused.
struct HostCertificate {
  std::string pem;
  std::string serial;
  std::int64_t not_after = 0;
};
using CertificateSigner =
    std::function<Result<HostCertificate>(std::string_view csr_pem, std::string_view host)>;
struct EnrollCertificates {
  AgentCertificateMode mode = AgentCertificateMode::kOptional;
  CertificateSigner sign;
};

// Raised (Transaction::Raise) by EnrollHost once a host is enrolled, in its
// transaction: a rollout that takes late joiners may add it
// (deploy/rollout_engine.hpp JoinLateHost, wired in daemon/listeners.cpp).
struct HostEnrolled {
  const std::string& host;
  const Labels& labels;
  UnixSeconds now;
};

Result<protocol::EnrollResponse> EnrollHost(Store& store, const AuditOrigin& origin,
                                            const protocol::EnrollRequest& request, UnixSeconds now,
                                            EnrollRefusals* refusals = nullptr,
                                            const EnrollCertificates* certificates = nullptr);

// The name of the host holding `credential`, or kUnauthenticated saying why not.
Result<std::string> AuthenticateAgent(soci::session& sql, std::string_view credential);
// The same with a statement prepared once (every agent request runs it).
Result<std::string> AuthenticateAgent(soci::session& sql, StatementCache& statements,
                                      std::string_view credential);

// kUnauthenticated, as AuthenticateAgent says it, when host `name` was
// removed or revoked since its request was authenticated (a long poll woken
// by the removal must not go on waiting).
Result<void> CheckHostEnrolled(soci::session& sql, std::string_view name);

struct InstalledAppRecord {
  std::string name;
  std::string current;
  std::vector<std::string> releases;
};

struct HostRecord {
  std::string name;
  Labels labels;
  nlohmann::json inventory;  // the last Inventory as JSON
  std::string agent_version;
  std::string enrolled;
  UnixSeconds last_seen = 0;
  bool removed = false;
  std::string removed_at;
  std::string removed_by;
  std::string revoked_reason;  // not "": the removal was a revocation
  std::string cert_serial;     // "" when the host has no client certificate
  UnixSeconds cert_not_after = 0;
  std::string cert_previous_serial;  // during a renewal's overlap
  std::vector<InstalledAppRecord> apps;

  nlohmann::json ToJson() const;
};

Result<HostRecord> FindHost(soci::session& sql, std::string_view name);
// Enrolled, not removed hosts matching `selector` (all when empty), by name,
// each whole (inventory, installed apps: one query more per host; see
// MatchingHosts for names alone).
std::vector<HostRecord> ListHosts(soci::session& sql, const LabelSelector& selector = {});

// The name and enrollment time of each enrolled, not removed host matching
// `selector`, by name: what a release's targets need, read without the
// hosts' inventories (one query; 20,000 hosts' inventories cost far more).
struct MatchingHost {
  std::string name;
  std::string enrolled;
};
// `outside_rollout_of`: only hosts that are not among the targets of that
// release's rollout (the few that joined or changed labels later), found by
// the database rather than by reading every host.
std::vector<MatchingHost> MatchingHosts(soci::session& sql, const LabelSelector& selector,
                                        std::string_view outside_rollout_of = {});

// Marks a host removed (admin): its credential stops working and its name
// may enroll again, with a new enrollment token only (a lost enrollment
// answer is not repeated to it any more). Audited "host.remove", or
// "host.revoke" with `revoked_reason` when that is not "" (`fabu host
// revoke`: the host is no longer trusted; the reason stays in its record).
// kNotFound for an unknown host, kConflict when already removed,
// kInvalidArgument for a reason over kMaxRevokeReasonBytes.
inline constexpr std::size_t kMaxRevokeReasonBytes = 1000;
Result<HostRecord> RemoveHost(Transaction& tx, std::string_view name,
                              const std::string& revoked_reason = {});

// Stores the host's facts and installed apps and marks it seen.
Result<void> StoreInventory(Transaction& tx, std::string_view host,
                            const protocol::Inventory& inventory, UnixSeconds now);

// Marks each of `hosts` seen at `now` when it was last seen before
// `now - every` (so a poll every few seconds does not write every time), in
// one statement. Not audited.
void TouchHosts(Transaction& tx, std::span<const std::string> hosts, UnixSeconds now,
                std::int64_t every);

}  // namespace fabu::coordinator
