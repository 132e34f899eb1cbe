// The rollout engine: a production release reaches its targets wave by wave
// (procedure §4.5, §6.2.4, §6.2.7).
//
// `fabu release start` fixes the targets in a stable order (by host name)
// and the waves' sizes (release::WaveSizes) and thresholds
// (release::FailureThresholds) in the `rollouts` and `rollout_hosts` rows,
// then asks the engine to advance. Advancing is a pure decision over the
// store, taken inside the caller's transaction, so it is safe to call at any
// moment and as often as one likes: on every final deployment, on every
// sweep (once a second), after every person's verb. A coordinator killed at
// any instant resumes from exactly what was committed, and no host is ever
// assigned twice (CreateDeployments refuses a second unfinished deployment).
// A big wave is assigned in parts (kDefaultFirstWavePart), each a
// transaction of its own that decides from the store which hosts of the
// wave have no deployment yet: a restart between two parts goes on with the
// next one.
//
// What one step does is decided by DecideRollout (release/rollout_decision.hpp),
// a pure function of a snapshot of the rollout that this engine loads; the
// engine carries the decision out in the same transaction.
//
// The engine acts as "fabu-coordinator" (role system) in release histories;
// each of its transitions is audited like a person's.
#pragma once

#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/deploy/deployments.hpp"
#include "coordinator/deploy/freezes.hpp"
#include "coordinator/deploy/incidents.hpp"
#include "coordinator/hosts/hosts.hpp"
#include "coordinator/packages/package_store.hpp"
#include "coordinator/release/rollout_decision.hpp"
#include "coordinator/release/workflow.hpp"
#include "coordinator/store/store.hpp"

namespace fabu::coordinator {

using protocol::Timestamp;

// Why a rollout is paused (rollouts.pause_kind).
using release::kPausedByFreeze;
using release::kPausedByPerson;
using release::kPausedByWindow;

// A wave's hosts are assigned in parts, each its own transaction answered as
// soon as it commits: this many hosts, as many again, then twice as many, and
// so on (a wave of 17,910 in 7). Its first hosts get their work while the
// rest is being made, instead of all waiting for one long transaction.
inline constexpr std::size_t kDefaultFirstWavePart = 500;

// Fixes the rollout of `release` (just moved to deploying) to `hosts`, in
// name order, and starts its first wave, its parts of `first_part` hosts
// and up. kFailedPrecondition when the waves cannot cover the targets (a
// last wave that is a count below them).
Result<void> BeginRollout(Transaction& tx, const release::Release& release,
                          const StoredPackage& package, std::vector<std::string> hosts,
                          UnixSeconds now, const release::PlanParseOptions& options,
                          Wakeups& wakeups, std::size_t first_part = kDefaultFirstWavePart);

// One step of the engine for `release_id` (see above); nothing when it has no
// rollout or the rollout is over. Hosts given work are added to `wakeups`;
// when a wave's next part is due, the release is added to
// wakeups.rollouts_to_go_on (its caller then runs the sweep at once).
// `next_part`: whether this step may assign the current wave's next part.
// A host's final event leaves it to the sweep, woken when the part before
// committed (each final event of a wave being assigned would otherwise read
// the whole rollout: N hosts, N reads); the sweep and people's steps make it.
enum class NextPart { kAssignWhenDue, kLeaveToTheSweep };
void AdvanceRollout(Transaction& tx, const std::string& release_id, UnixSeconds now,
                    const release::PlanParseOptions& options, Wakeups& wakeups,
                    NextPart next_part = NextPart::kAssignWhenDue);

// A host just enrolled with `labels` (HostEnrolled, hosts.hpp): every
// rollout still going on (deploying or paused, not aborted) whose plan says
// targets.late_joiners and whose production targets it matches, and which it
// is not in, takes it into its next wave not started yet, or into a catch-up
// wave made after the last once every wave has started (release::JoinLate:
// the same threshold rule, the same pause or gate before it). Its wave
// deploys it when it starts. Audited "rollout.late-join" (host, wave, whether
// a catch-up wave was made); the release's status shows it as joined late.
void JoinLateHost(Transaction& tx, const std::string& host, const Labels& labels, UnixSeconds now);

// The targets of a release's rollout, in wave order; empty without one.
std::vector<std::string> RolloutTargets(soci::session& sql, const std::string& release_id);

// How the hosts of a release's production rollout ended (their latest
// install deployment; hosts never assigned count in neither).
struct RolloutTally {
  std::size_t succeeded = 0;
  std::size_t failed = 0;
};
RolloutTally TallyRollout(soci::session& sql, const std::string& release_id);

// Releases whose rollout the engine must look at: deploying, rolling_back,
// or paused by a window or a freeze.
std::vector<std::string> ActiveRollouts(soci::session& sql);

// Records why a rollout is paused (kPausedBy*) or clears it ("").
void SetPauseKind(soci::session& sql, const std::string& release_id, std::string_view kind);
// Marks the rollout aborted: the engine assigns nothing more.
void MarkAborted(soci::session& sql, const std::string& release_id);
// A person resumed a halted rollout past its failed wave; an abort is taken
// back (the hosts of the wave it stopped that were never assigned are).
void AcceptCurrentWave(soci::session& sql, const std::string& release_id);

// A person's retry of the wave that failed (release::RetryRollout, made by
// the caller in the same transaction): a new install deployment (the next
// attempt) for each failed host of the rollout's current wave, or for those
// of `only` (each must be one of them: kInvalidArgument naming a host that
// succeeded, is in another wave, or is not a target). When the rollout had
// ended (every wave done within its threshold: the release was deployed
// with failed hosts), the failed hosts of every wave may be retried, and
// the rollout ends again once they are final. Hosts that succeeded are
// never touched. The wave is then judged again on the new results (its end
// is counted afresh). Audited "rollout.retry" with the hosts.
// kFailedPrecondition when the rollout was aborted (a resume takes an abort
// back) or has no failed host to retry. Returns the hosts deployed again;
// their polls are in `wakeups`.
Result<std::vector<std::string>> RetryFailedHosts(Transaction& tx, const release::Release& release,
                                                  const std::vector<std::string>& only,
                                                  UnixSeconds now, Wakeups& wakeups);
// One more control point passed. kFailedPrecondition when the rollout does
// not wait at a gate now.
Result<void> PassGate(soci::session& sql, const std::string& release_id);

// The enrolled hosts that match `release`'s production targets now but are
// not in its rollout (none without a rollout), by name, each with why.
struct RolloutHost;  // rollout_rows.hpp

struct HostNotInRelease {
  std::string host;
  std::string enrolled;  // RFC 3339 UTC
  std::string reason;
};
std::vector<HostNotInRelease> HostsNotInRelease(soci::session& sql,
                                                const release::Release& release);

// At close: the hosts of the rollout that do not run the release's version
// (never deployed, joined late and not deployed, failed, rolled back), and
// those HostsNotInRelease names, each with why in words, by name. The CMDB's
// baseline at close keeps it (api/rollout_api.cpp).
std::map<std::string, std::string> HostsNotOnVersion(soci::session& sql,
                                                     const release::Release& release);

// Which of a rollout's hosts RolloutStatus lists: those in `filter`, from
// the `offset`-th, at most `limit` (the waves count them all whatever the
// page, so a page of a 20,000-host release still shows every wave's figures).
struct StatusHostPage {
  // "" every host; "pending" (nothing assigned yet), "active" (assigned, not
  // final, or rolling back), "succeeded" (installed and kept), "failed"
  // (failed, timed out, removed, or rolled back).
  std::string filter;
  std::size_t offset = 0;
  std::size_t limit = std::numeric_limits<std::size_t>::max();
};
// kInvalidArgument naming the filter unless it is one of the above.
Result<void> CheckStatusFilter(std::string_view filter);

// Where the rollout stands: waves (size, threshold, state, counts), hosts
// (wave, step, result, message, "joined_late" when the host joined after the
// start; the `page` of them, with "hosts_total" and
// "hosts_matching" counting all and those of the filter) and why it waits,
// if it does; and "not_in_release": the enrolled hosts that match the
// release's production targets now but were not among them when it started
// (enrolled since, or matching since), each with why, so that nobody
// believes they are covered.
Result<nlohmann::json> RolloutStatus(soci::session& sql, const release::Release& release,
                                     UnixSeconds now, const StatusHostPage& page = {});

}  // namespace fabu::coordinator
