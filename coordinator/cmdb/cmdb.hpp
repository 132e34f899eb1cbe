// The CMDB: what is installed where, the upgrade record table (升级记录表)
// and the outbox feeding outside CMDBs (procedure §6.2.7-§6.2.8, §8;
// docs/coordinator.md "The CMDB").
//
// Configuration items are the enrolled hosts (hosts.hpp): their facts,
// labels and the apps their agents report (`host_apps`). What is installed
// comes only from what agents report, never from a plan.
//
// An upgrade record is one production deployment (install or rollback) of a
// package on a host, written when the deployment becomes final, once per
// deployment id. In the same transaction RecordUpgrades enqueues one outbox
// message per active connector (`cmdb_connectors`, synchronised from
// config.json by SyncConnectors at start): a result and its report to the
// outside are committed together or not at all. The delivery worker
// (delivery.hpp) sends them later, retrying until delivered; only the store
// holds the outbox's state, so a restart loses nothing.
//
// from_version — the version of the app the host ran when the deployment
// was made — is not stored on a deployment. RecordDeploymentEnds takes it,
// in this order, from:
//   1. the release's `before` baseline of the host (TakeBaseline), when taken;
//   2. else the apps of the host's last `host.inventory` audit entry made
//      before the deployment's `deployment.create` entry;
//   3. else `host_apps`, when the host has reported nothing since the
//      deployment was made;
//   4. else it is unknown: from_version "" with from_source "unknown".
// With a source, from_version "" means the app was not installed.
// operator is whoever started the rollout (the latest `start-rollout` entry
// of the release's history; for a rollback deployment the latest `rollback`
// entry when there is one).
//
// Idempotency key of a message: "release/host/package/version/event", where
// version is to_version and event is "<kind>.<result>" (e.g.
// "install.succeeded", "rollback.succeeded", "install.rolled_back"). It is
// UNIQUE per connector: a second identical outcome (a retried host that
// failed the same way again) is reported once.
//
// Functions take the session or Transaction the caller holds; mutations
// audit in the same transaction. SOCI exceptions propagate to the Store
// boundary. Thread safety is the Store's.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "coordinator/deploy/deployments.hpp"
#include "coordinator/release/workflow.hpp"
#include "coordinator/store/store.hpp"

namespace fabu::coordinator {

inline constexpr std::string_view kBaselineBefore = "before";
inline constexpr std::string_view kBaselineAfter = "after";
// At close, the hosts that match the release's targets but were not in its
// rollout (they joined later: deploy/rollout_engine.hpp, HostsNotInRelease).
inline constexpr std::string_view kBaselineOutside = "outside";

inline constexpr std::string_view kOutboxPending = "pending";      // not attempted yet
inline constexpr std::string_view kOutboxFailing = "failing";      // the last attempt failed
inline constexpr std::string_view kOutboxDelivered = "delivered";  // the receiver took it
inline constexpr std::string_view kOutboxWaived = "waived";        // an approver waived it
inline constexpr std::string_view kOutboxGivenUp = "given_up";     // a notice past its time

struct UpgradeRecord {
  std::int64_t id = 0;  // assigned by RecordUpgrades
  std::string deployment_id;
  std::string release_id;
  std::string host;
  std::string package;     // the app name
  std::string package_id;  // SHA-256 of the package file; "" for a rollback
  std::string from_version;
  std::string from_source;  // baseline | inventory | unknown
  std::string to_version;
  UnixSeconds started = 0;
  UnixSeconds finished = 0;
  DeploymentResult result = DeploymentResult::kFailed;
  std::string operator_name;
  std::string kind;  // install | rollback
  std::string recorded;

  // The idempotency key of this record's outward message.
  std::string IdempotencyKey() const;
  // "<kind>.<result>"
  std::string Event() const;
  // The version the host runs after this deployment as far as its result
  // says: to_version when succeeded, else from_version.
  std::string ResultingVersion() const;
  nlohmann::json ToJson() const;
};

// Inserts each record (once per deployment id: one whose deployment has a
// record already is skipped, changing nothing) and one outbox message per
// active connector for each, audited "cmdb.record" on behalf of its origin
// (the transaction's when null), with a few statements for all of them.
// Returns how many were recorded.
std::size_t RecordUpgrades(Transaction& tx,
                           std::span<const std::pair<UpgradeRecord, const AuditOrigin*>> records);

// Queues one outbox message for `connector` unless one with that
// idempotency key is queued already (then false). The caller's transaction
// holds it; RingOutbox() wakes the worker once it may have committed.
bool EnqueueOutboxMessage(Transaction& tx, const std::string& connector, const std::string& key,
                          const std::string& release_id, const std::string& payload);

// One outbox message to queue (EnqueueOutboxMessages).
struct NewOutboxMessage {
  std::string connector;
  std::string key;
  std::string release_id;
  std::string payload;
};

// EnqueueOutboxMessage for each of `messages`, in one statement; returns how
// many were queued for each idempotency key.
std::map<std::string, std::size_t> EnqueueOutboxMessages(
    Transaction& tx, std::span<const NewOutboxMessage> messages);

// Builds the upgrade record of each production deployment that just became
// final (from_version and operator by the rules above) and records them
// (RecordUpgrades); deployments of other environments are passed over. The
// listener of DeploymentsEnded (daemon/listeners.hpp).
void RecordDeploymentEnds(Transaction& tx, std::span<const DeploymentEnd> ends, UnixSeconds now);

// Snapshots host_apps of `hosts` as release `release_id`'s baseline of
// `phase` (kBaselineBefore, kBaselineAfter or kBaselineOutside). A host already in that
// baseline keeps its first snapshot (a resumed engine may call again); a
// host without apps gets one row with app "". Returns the hosts snapshotted
// now. kInvalidArgument for another phase. Audited "cmdb.baseline".
// `reasons`: at close, why a host is not on the release's version
// (deploy/rollout_engine.hpp HostsNotOnVersion), kept with its rows.
Result<std::size_t> TakeBaseline(Transaction& tx, std::string_view release_id,
                                 std::string_view phase, const std::vector<std::string>& hosts,
                                 UnixSeconds now,
                                 const std::map<std::string, std::string>& reasons = {});

struct BaselineRow {
  std::string phase;
  UnixSeconds taken = 0;
  std::string host;
  std::string app;
  std::string version;
  std::string reason;  // at close: why the host is not on the release's version ("" if it is)

  // {"phase", "taken" (RFC 3339), "host", "app", "version", "reason"}
  nlohmann::json ToJson() const;
};
std::vector<BaselineRow> ListBaseline(soci::session& sql, std::string_view release_id);

// Whether the CMDB update of a release is confirmed (procedure §6.2.8): the
// built-in records are committed for every final production deployment
// and every outward delivery is delivered or waived.
struct CmdbConfirmation {
  std::string release_id;
  std::int64_t records = 0;
  std::int64_t unrecorded = 0;  // final production deployments without a record
  std::int64_t pending = 0;
  std::int64_t failing = 0;
  std::int64_t delivered = 0;
  std::int64_t waived = 0;
  bool confirmed = false;
  nlohmann::json ToJson() const;
};
CmdbConfirmation ConfirmationOf(soci::session& sql, std::string_view release_id);

// Waives the release's pending and failing deliveries (approver only, with
// a reason). kPermissionDenied for another role, kInvalidArgument for an
// empty reason, kFailedPrecondition when nothing is outstanding. Returns
// how many were waived. Audited "cmdb.waive".
Result<std::int64_t> WaiveDeliveries(Transaction& tx, std::string_view release_id,
                                     const release::Actor& actor, std::string_view reason);

struct UpgradeFilter {
  std::optional<std::string> release_id;
  std::optional<std::string> host;
  std::optional<std::string> package;
  std::int64_t limit = 1000;
};
// Newest first, except for a release: in the order they were recorded.
std::vector<UpgradeRecord> ListUpgradeRecords(soci::session& sql, const UpgradeFilter& filter);

// The outbox carries the messages of two kinds of connector: a CMDB
// connector's by its name, and a notice subscription's as "notify:<id>"
// (notify/notices.hpp). Notices are delivered each on its own; a CMDB
// connector's messages in order (delivery.hpp).
inline constexpr std::string_view kNoticeConnectorPrefix = "notify:";

struct OutboxMessage {
  std::int64_t id = 0;
  std::string connector;  // a CMDB connector's name, or kNoticeConnectorPrefix + id
  std::string idempotency_key;
  std::string release_id;
  std::string payload;  // the exact JSON body sent
  std::string state;
  std::int64_t attempts = 0;
  UnixSeconds next_attempt = 0;
  std::string last_error;
  std::string created;
  std::string delivered;
  nlohmann::json ToJson() const;
};

struct OutboxFilter {
  std::optional<std::string> release_id;
  std::optional<std::string> state;
  std::int64_t limit = 1000;
};
std::vector<OutboxMessage> ListOutbox(soci::session& sql, const OutboxFilter& filter);

// What delivery may try next: for each CMDB connector, its oldest
// undelivered (pending or failing) message, so that its order is kept; and
// every undelivered release notice, since notices keep no order.
std::vector<OutboxMessage> OutboxHeads(soci::session& sql);

// Marks a message delivered (audited "cmdb.deliver") or failed with
// `error`, to be retried at `next_attempt`.
void MarkDelivered(Transaction& tx, std::int64_t id, const std::string& when);
void MarkFailed(Transaction& tx, std::int64_t id, const std::string& error,
                UnixSeconds next_attempt);
// Gives a release notice up after its last failed attempt (`error`),
// audited "notify.give-up" (delivery.hpp).
void MarkGivenUp(Transaction& tx, std::int64_t id, const std::string& error);

// Makes `cmdb_connectors` hold exactly the configured connectors as active
// (name, type); others stay as inactive rows (their queued messages wait
// until the connector is configured again or waived).
struct ConnectorName {
  std::string name;
  std::string type;
};
void SyncConnectors(Transaction& tx, const std::vector<ConnectorName>& connectors);

}  // namespace fabu::coordinator
