// Deployments: one release's package on one host
// (docs/coordinator.md "The rollout").
//
// A deployment is made once per (release, host, attempt): the test
// deployment (`fabu release test`) makes one per target host labelled
// env=test, the production rollout (`fabu release start`) one per target
// labelled env=production — all at once here; waves come later. A host never
// gets a second deployment of a release while one is unfinished, and the
// rows are the only state: a coordinator restart serves the same assignments
// and sweeps the same deadlines, duplicating nothing.
//
// The agent reports steps as events (protocol/deployment_event.hpp); each
// (deployment, sequence) is stored once (insert-if-absent on the primary
// key). The event with the highest sequence gives the deployment's step and
// says whether it is final (FinalResultOf). A deployment not final by its
// deadline (creation + the go-live plan's host_timeout) is final with result
// "timeout". Production rollouts move wave by wave: the rollout engine
// (rollout_engine.hpp) is asked to advance whenever one of its deployments
// becomes final and on every sweep.
//
// Functions take the session or Transaction the caller holds; mutations
// audit in the same transaction. SOCI exceptions propagate to the Store
// boundary. FinalResultOf is pure.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/packages/package_store.hpp"
#include "coordinator/release/workflow.hpp"
#include "coordinator/store/store.hpp"
#include "protocol/agent_api.hpp"
#include "protocol/deployment_event.hpp"

namespace fabu::coordinator {

class WakeupHub;

using protocol::UnixSeconds;

// Where a deployment goes: the label env=<name> its hosts carry.
inline constexpr std::string_view kTestEnvironment = "test";
inline constexpr std::string_view kProductionEnvironment = "production";

// Used when a release has no go-live plan (a test deployment before one is set).
inline constexpr std::int64_t kDefaultHostTimeoutSeconds = 30 * 60;

// How a final deployment ended; only kSucceeded counts as success. Its name
// (DeploymentResultName: "succeeded", "failed", "rolled_back",
// "rollback_failed", "timeout", "host_removed") is what the store, the API
// and the CMDB's upgrade records carry.
enum class DeploymentResult {
  kSucceeded,
  kFailed,
  kRolledBack,
  kRollbackFailed,
  kTimeout,      // not final by its deadline
  kHostRemoved,  // its host was removed while it ran
};

std::string_view DeploymentResultName(DeploymentResult result);
Result<DeploymentResult> ParseDeploymentResult(std::string_view name);

// The result a deployment ends with when `step` (with `failed_step` for
// `failed`) is its latest reported step; nullopt while it is not final:
// succeeded, rolled_back and rollback_failed are final; failed is final only
// when it failed before activating (nothing was switched, nothing to roll back).
std::optional<DeploymentResult> FinalResultOf(protocol::Step step,
                                              std::optional<protocol::Step> failed_step);

struct DeploymentRecord {
  std::string id;
  std::string release_id;
  std::string host;
  std::int64_t attempt = 1;
  std::string environment;
  protocol::DeploymentKind kind = protocol::DeploymentKind::kInstall;
  std::string app;
  std::string version;
  std::string package_id;
  std::uint64_t package_size = 0;
  std::string package_url;
  std::int64_t host_timeout_seconds = 0;
  protocol::Step step = protocol::Step::kAssigned;  // the latest reported step
  std::optional<DeploymentResult> result;           // set once final
  std::string message;  // the current step's words; after a failure, the failure's
  std::uint64_t last_sequence = 0;
  UnixSeconds created = 0;
  UnixSeconds started = 0;           // first event received; 0: none yet
  UnixSeconds finished = 0;          // 0: not final
  UnixSeconds deadline = 0;          // 0: no limit
  std::int64_t wave = -1;            // production rollouts: the wave (0-based); -1 otherwise
  std::string from_version;          // what the host had installed of `app` when it was made
  std::int64_t observe_seconds = 0;  // how long the agent keeps re-checking health
  std::int64_t observe_interval_seconds = 0;

  protocol::Assignment ToAssignment() const;
  nlohmann::json ToJson() const;
  // ObjectDigest(ToJson()) without building the json: the after_sha256 of
  // its "deployment.create" audit entry. Must change with ToJson.
  std::string Digest() const;

  bool IsFinal() const { return result.has_value(); }
  // The result's name; "" while not final (as the API and the store carry it).
  std::string_view ResultText() const;
  bool Succeeded() const { return result == DeploymentResult::kSucceeded; }
};

// What the rollout engine and the API must do once the transaction that
// decided it has committed: wake the long-polls of these hosts.
struct Wakeups {
  // Their polls look again.
  std::vector<std::string> hosts;
  // Hosts whose new deployment is the only unfinished one they have at the
  // COMMIT (nothing else committed between the check and it: the store has
  // one writer), so it is what a fresh look would find: their polls are
  // answered with it directly. A host named twice in one transaction is
  // woken to look again instead (WakeHosts).
  struct Assigned {
    std::string host;
    protocol::Assignment assignment;
  };
  std::vector<Assigned> assigned;
  // Releases whose current wave has hosts left to assign (rollout_engine.hpp):
  // the sweep makes the next part at once (WakeHosts wakes it).
  std::vector<std::string> rollouts_to_go_on;
};

// Wakes the long polls `wakeups` names, and the sweep when a wave has parts
// left (WakeupHub::kSweepKey; the hub is then held until the sweep has
// assigned them: WakeupHub::PassHold). Call after its transaction committed.
void WakeHosts(WakeupHub& hub, const Wakeups& wakeups);

// One deployment to make.
struct NewDeployment {
  std::string host;
  protocol::DeploymentKind kind = protocol::DeploymentKind::kInstall;
  std::int64_t wave = -1;
};

// Makes a deployment of `release`'s first package on each of `hosts` that has
// no unfinished one of it; returns those made (audited "deployment.create").
// Install deployments carry the go-live plan's host timeout and, in
// production, its observation; a rollback deployment names no package (the
// agent restores the release it kept before this one). from_version is what
// the host reported installed of the package's app.
std::vector<DeploymentRecord> CreateDeployments(Transaction& tx, const release::Release& release,
                                                const StoredPackage& package,
                                                const std::vector<NewDeployment>& hosts,
                                                std::string_view environment, UnixSeconds now);
// The same, for install deployments outside waves (test deployments).
std::vector<DeploymentRecord> CreateDeployments(Transaction& tx, const release::Release& release,
                                                const StoredPackage& package,
                                                const std::vector<std::string>& hosts,
                                                std::string_view environment, UnixSeconds now);

// Raised (Transaction::Raise) when a deployment became final with `result`;
// the CMDB listens (its upgrade record, docs/architecture.md).
// What a release's rollout status shows changed in this transaction: its
// deployments were made, one of them stored a host's step, or one ended.
// Raised for whoever follows a release live (the console's long poll of its
// status, api/rollout_api.cpp); at most once per release and transaction
// where that is cheap to keep.
struct ReleaseProgressed {
  const std::string& release_id;
};

// A deployment that ended, for FinishDeployments: its record as the caller
// read it, its result and message, and on whose behalf it ended (the
// transaction's origin when null; it must outlive the call).
struct DeploymentEnd {
  const DeploymentRecord* deployment = nullptr;
  DeploymentResult result = DeploymentResult::kFailed;
  std::string message;
  const AuditOrigin* origin = nullptr;
};

// Raised once by FinishDeployments for all the deployments it ended.
struct DeploymentsEnded {
  std::span<const DeploymentEnd> ends;
  UnixSeconds now;
};

// Marks each deployment final with its result and message (audited
// "deployment.finish", on behalf of its origin), with one statement for all
// of them, and raises DeploymentsEnded once and ReleaseProgressed for each
// release.
void FinishDeployments(Transaction& tx, std::span<const DeploymentEnd> ends, UnixSeconds now);

// The same for one deployment, on behalf of the transaction's origin.
void FinishDeployment(Transaction& tx, const DeploymentRecord& d, DeploymentResult result,
                      const std::string& message, UnixSeconds now);

// The host's oldest unfinished deployment: what it must do now.
std::optional<DeploymentRecord> OpenAssignment(soci::session& sql, std::string_view host);
// The same for each of `hosts` (answers in their order), with statements
// prepared once: every long poll runs it, for the polls read together
// (store/read_batcher.hpp). One statement for all of them; a single host's
// is the statement above.
std::vector<std::optional<DeploymentRecord>> OpenAssignments(soci::session& sql,
                                                             StatementCache& statements,
                                                             std::span<const std::string> hosts);

// Every deployment of a release (of one environment, test or production,
// when given), by host and attempt.
std::vector<DeploymentRecord> ListDeployments(soci::session& sql, std::string_view release_id,
                                              std::string_view environment = {});
// Those of one host, oldest first.
std::vector<DeploymentRecord> ListHostDeployments(soci::session& sql, std::string_view release_id,
                                                  std::string_view host);

// True when `host` has (or had) a deployment of package `package_id`.
bool HostHasPackage(soci::session& sql, std::string_view host, std::string_view package_id);

// Stores a batch of `host`'s events, each (deployment, sequence) once;
// kPermissionDenied (storing nothing) when an event names a deployment that
// is not the host's. Updates each deployment's step, message and times, and
// ends the production rollouts this completes.
// A health check that failed while the agent observed the release records an
// incident against the release.
Result<protocol::EventAck> StoreEvents(Transaction& tx, std::string_view host,
                                       const protocol::EventBatch& batch, UnixSeconds now,
                                       const release::PlanParseOptions& options, Wakeups& wakeups);

// One agent's POST of events, for StoreEventPosts: the host it came from and
// the request it was (its audit entries name that request).
struct EventPost {
  std::string host;
  protocol::EventBatch batch;
  AuditOrigin origin;
};

// StoreEvents for several POSTs in one unit of work, with a few statements
// for all of them whatever their number (one INSERT of every event, one
// UPDATE of every deployment that moved, one INSERT of their audit entries):
// agents' events are most of what a coordinator writes, and on PostgreSQL
// every statement is a round trip to the server. Each POST is answered as
// StoreEvents would answer it alone, in order: one naming a deployment that
// is not its host's is refused and nothing of it is stored; the others are
// not affected. A deployment named by several POSTs gets one audit entry for
// all of them (the last one's request). A NUL byte in an event's text is
// dropped (PostgreSQL's text cannot hold one).
std::vector<Result<protocol::EventAck>> StoreEventPosts(Transaction& tx,
                                                        std::span<const EventPost> posts,
                                                        UnixSeconds now,
                                                        const release::PlanParseOptions& options,
                                                        Wakeups& wakeups);

// Ends the host's unfinished deployments with result host_removed, their
// message "host H was removed", or "host H was revoked: <revoked_reason>"
// when `revoked_reason` is not "".
void EndDeploymentsOfHost(Transaction& tx, std::string_view host, UnixSeconds now,
                          const release::PlanParseOptions& options, Wakeups& wakeups,
                          std::string_view revoked_reason = {});

struct Sweep {
  std::size_t timed_out = 0;
  std::size_t transactions = 0;  // the first, and one per further part of a wave
  std::size_t woken = 0;         // hosts woken
};

// Times out deployments past their deadline and advances every rollout in
// progress (rollout_engine.hpp): next waves, windows, freezes, endings; then
// wakes the hosts given work. A wave assigned in parts is assigned whole
// here: each next part is made (committer thread) while the hosts of the
// part before are woken (this thread), the hub held meanwhile. Holds passed
// to it (WakeHosts after a person started a wave) end when it returns.
Result<Sweep> SweepDeployments(Store& store, UnixSeconds now,
                               const release::PlanParseOptions& options, WakeupHub& hub);

}  // namespace fabu::coordinator
