// The rollout's rows in the store (`rollouts`, `rollout_hosts`) and what the
// engine reads of a rollout's deployments: the store side of the rollout
// engine (rollout_engine.hpp) and of its status (rollout_status.cpp). Internal
// to coordinator/deploy/.
#pragma once

#include <soci/soci.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "coordinator/deploy/deployments.hpp"
#include "coordinator/release/rollout_decision.hpp"
#include "coordinator/store/store.hpp"

namespace fabu::coordinator {

namespace rel = release;

// A row of `rollouts`.
struct RolloutRow {
  std::string release_id;
  std::string package_id;
  std::vector<rel::Wave> waves;
  long long current_wave = -1;
  long long wave_done_at = 0;
  long long gates_confirmed = 0;
  long long accepted_wave = -1;
  long long aborted = 0;
  std::string pause_kind;
  std::string waiting;
  long long started = 0;
  long long finished = 0;
  long long first_part = 0;  // hosts of a wave's first part (AssignWave)
  long long assigning = 0;   // 1: the current wave has hosts left to assign

  std::size_t wave_count() const { return waves.size(); }
  bool last_wave_started() const {
    return current_wave >= 0 && static_cast<std::size_t>(current_wave) + 1 >= waves.size();
  }
};

std::optional<RolloutRow> LoadRollout(soci::session& sql, const std::string& release_id);
// The same, with the statement prepared once: AdvanceRollout runs on every
// final event of a rollout.
std::optional<RolloutRow> LoadRollout(Transaction& tx, const std::string& release_id);
void SaveRollout(soci::session& sql, const RolloutRow& row);
// Saves `row.waves` (sizes and thresholds): a host joined late.
void SaveWaves(soci::session& sql, const RolloutRow& row);

// A row of `rollout_hosts`.
struct RolloutHost {
  long long position = 0;
  std::string host;
  long long wave = 0;
  long long joined = 0;  // when it joined late (JoinLateHost); 0 for a target fixed at start
};
// In wave order (a host joined late comes after its wave's others).
std::vector<RolloutHost> LoadRolloutHosts(soci::session& sql, const std::string& release_id);
std::vector<std::string> HostNames(const std::vector<RolloutHost>& hosts);

// The latest production deployment of each kind per host.
struct HostDeployments {
  std::map<std::string, DeploymentRecord> install;
  std::map<std::string, DeploymentRecord> rollback;
};
HostDeployments LoadHostDeployments(soci::session& sql, const std::string& release_id);

// What the counts of a rollout and the status's filter need of a
// deployment: its id, step and result. Read from six short columns instead of the
// record's twenty-odd (a status of 20,000 hosts spent most of its time
// building whole records only to count them).
struct DeploymentState {
  std::string id;
  protocol::Step step = protocol::Step::kAssigned;
  std::optional<DeploymentResult> result;  // set once final

  bool IsFinal() const { return result.has_value(); }
  bool Succeeded() const { return result == DeploymentResult::kSucceeded; }
};
// The latest production deployment of each kind per host, as states.
struct HostDeploymentStates {
  std::map<std::string, DeploymentState> install;
  std::map<std::string, DeploymentState> rollback;
};
HostDeploymentStates LoadHostDeploymentStates(soci::session& sql, const std::string& release_id);
// The latest production deployments of `hosts` only, whole: what a page of
// the status shows (one indexed query per host; every deployment of the
// release in one read when the page is larger than a few hundred hosts).
HostDeployments LoadHostDeploymentsOf(soci::session& sql, const std::string& release_id,
                                      const std::vector<std::string>& hosts);

bool Succeeded(const DeploymentRecord& d);
// `deployments`: HostDeployments or HostDeploymentStates.
template <typename Deployments>
rel::WaveTally CountWave(const std::vector<RolloutHost>& hosts, const Deployments& deployments,
                         long long wave) {
  rel::WaveTally count;
  for (const RolloutHost& h : hosts) {
    if (h.wave != wave) continue;
    ++count.hosts;
    auto it = deployments.install.find(h.host);
    if (it == deployments.install.end()) continue;
    ++count.assigned;
    if (!it->second.IsFinal()) continue;
    ++count.final;
    if (it->second.Succeeded()) {
      ++count.succeeded;
    } else {
      ++count.failed;
    }
  }
  return count;
}
rel::RolloutOutcome OutcomeOf(const std::vector<RolloutHost>& hosts,
                              const HostDeployments& deployments);

// A release's state as stored (its column), prepared once: the engine's
// hot path decides from it whether the whole release must be read.
std::string StoredReleaseState(Transaction& tx, const std::string& release_id);

// "wave 2 of 3: 100 host(s), not all final yet" while the current wave has a
// host whose install is not final; nullopt once all are (or before wave 1).
// Called on every final event of the wave: it must not read the whole wave
// (a count over the wave per event made a wave of N hosts cost N^2; the
// per-wave counts are in RolloutStatus).
std::optional<std::string> WaveStillRunning(Transaction& tx, const RolloutRow& row);

// A wave's hosts in rollout order, and those of them with an install
// deployment of the release.
struct WaveHosts {
  std::vector<std::string> hosts;
  std::set<std::string> assigned;
};
WaveHosts WaveOf(const std::vector<RolloutHost>& hosts, const HostDeployments& deployments,
                 long long wave);
// The same read from the store for one wave only: the next part of a wave
// reads its wave, not the whole rollout and every deployment of it.
WaveHosts LoadWaveHosts(soci::session& sql, const std::string& release_id, long long wave);

}  // namespace fabu::coordinator
