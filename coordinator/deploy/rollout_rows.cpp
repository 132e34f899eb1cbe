#include "coordinator/deploy/rollout_rows.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "coordinator/deploy/rollout_engine.hpp"
#include "coordinator/store/row_query.hpp"

namespace fabu::coordinator {
namespace {

using nlohmann::json;
using protocol::DeploymentKind;

// The rollout row of a release.
struct RolloutRowStatement {
  explicit RolloutRowStatement(soci::session& sql)
      : st((sql.prepare << "SELECT release_id, package_id, wave_sizes, thresholds, current_wave, "
                           "wave_done_at, gates_confirmed, accepted_wave, aborted, pause_kind, "
                           "waiting, started, finished, first_part, assigning FROM rollouts WHERE "
                           "release_id = :r",
            soci::use(key), soci::into(row.release_id), soci::into(row.package_id),
            soci::into(sizes), soci::into(thresholds), soci::into(row.current_wave),
            soci::into(row.wave_done_at), soci::into(row.gates_confirmed),
            soci::into(row.accepted_wave), soci::into(row.aborted), soci::into(row.pause_kind),
            soci::into(row.waiting), soci::into(row.started), soci::into(row.finished),
            soci::into(row.first_part), soci::into(row.assigning))) {}
  std::string key, sizes, thresholds;
  RolloutRow row;
  soci::statement st;
};

std::optional<RolloutRow> ReadRollout(RolloutRowStatement& read, const std::string& release_id) {
  read.key = release_id;
  read.st.execute(true);
  const bool found = read.st.got_data();
  RolloutRow row = read.row;
  const std::string sizes = read.sizes, thresholds = read.thresholds;
  StatementCache::Finish(read.st);
  if (!found) return std::nullopt;
  // Stored as two lists, cumulative sizes and thresholds (rollout_engine.cpp).
  row.waves = rel::WavesOf(json::parse(sizes).get<std::vector<std::uint64_t>>(),
                           json::parse(thresholds).get<std::vector<std::uint64_t>>());
  return row;
}

// Whether a wave has a host whose install is not final: one indexed probe
// (deployments_wave ends with `final`), prepared once.
struct WaveOpenStatement {
  explicit WaveOpenStatement(soci::session& sql)
      : st((sql.prepare << "SELECT COUNT(*) FROM (SELECT 1 FROM deployments WHERE release_id = "
                           ":r AND environment = :e AND kind = :k AND wave = :w AND final = 0 "
                           "LIMIT 1) AS one",
            soci::use(release_id), soci::use(environment), soci::use(kind), soci::use(wave),
            soci::into(open))) {}
  std::string release_id, environment, kind;
  long long wave = 0, open = 0;
  soci::statement st;
};

// A release's state as stored (its column), prepared once: the engine's
// hot path decides from it whether the whole release must be read.
struct ReleaseStateStatement {
  explicit ReleaseStateStatement(soci::session& sql)
      : st((sql.prepare << "SELECT state FROM releases WHERE id = :r", soci::use(release_id),
            soci::into(state))) {}
  std::string release_id, state;
  soci::statement st;
};

}  // namespace

std::optional<RolloutRow> LoadRollout(soci::session& sql, const std::string& release_id) {
  RolloutRowStatement read(sql);
  return ReadRollout(read, release_id);
}

// The same, with the statement prepared once: AdvanceRollout runs on every
// final event of a rollout.
std::optional<RolloutRow> LoadRollout(Transaction& tx, const std::string& release_id) {
  return ReadRollout(tx.Cached<RolloutRowStatement>(), release_id);
}

void SaveRollout(soci::session& sql, const RolloutRow& row) {
  std::string key = row.release_id, pause_kind = row.pause_kind, waiting = row.waiting;
  long long current_wave = row.current_wave, wave_done_at = row.wave_done_at,
            gates = row.gates_confirmed, accepted = row.accepted_wave, aborted = row.aborted,
            finished = row.finished, assigning = row.assigning;
  sql << "UPDATE rollouts SET current_wave = :c, wave_done_at = :d, gates_confirmed = :g, "
         "accepted_wave = :a, aborted = :ab, pause_kind = :p, waiting = :w, finished = :f, "
         "assigning = :as WHERE release_id = :r",
      soci::use(current_wave), soci::use(wave_done_at), soci::use(gates), soci::use(accepted),
      soci::use(aborted), soci::use(pause_kind), soci::use(waiting), soci::use(finished),
      soci::use(assigning), soci::use(key);
}

void SaveWaves(soci::session& sql, const RolloutRow& row) {
  std::vector<std::uint64_t> sizes, thresholds;
  for (const rel::Wave& wave : row.waves) {
    sizes.push_back(wave.through);
    thresholds.push_back(wave.max_failures);
  }
  std::string key = row.release_id, sizes_text = json(sizes).dump(),
              thresholds_text = json(thresholds).dump();
  sql << "UPDATE rollouts SET wave_sizes = :s, thresholds = :t WHERE release_id = :r",
      soci::use(sizes_text), soci::use(thresholds_text), soci::use(key);
}

std::vector<RolloutHost> LoadRolloutHosts(soci::session& sql, const std::string& release_id) {
  std::vector<RolloutHost> hosts;
  std::string key = release_id;
  RolloutHost h;
  soci::statement st = OneShot(sql,
                               "SELECT position, host, wave, joined FROM rollout_hosts WHERE "
                               "release_id = :r ORDER BY wave, position",
                               soci::use(key), soci::into(h.position), soci::into(h.host),
                               soci::into(h.wave), soci::into(h.joined));
  st.execute(false);
  while (st.fetch()) hosts.push_back(h);
  return hosts;
}

namespace {

// Keeps `d` as its host's latest of its kind (deployments come oldest first).
void KeepLatest(HostDeployments& out, DeploymentRecord d) {
  auto& into = d.kind == DeploymentKind::kInstall ? out.install : out.rollback;
  into.insert_or_assign(d.host, std::move(d));
}

}  // namespace

HostDeployments LoadHostDeployments(soci::session& sql, const std::string& release_id) {
  HostDeployments out;
  for (DeploymentRecord& d : ListDeployments(sql, release_id, kProductionEnvironment)) {
    KeepLatest(out, std::move(d));
  }
  return out;
}

HostDeploymentStates LoadHostDeploymentStates(soci::session& sql, const std::string& release_id) {
  HostDeploymentStates out;
  std::string key = release_id, environment(kProductionEnvironment), host, kind, id, step, result;
  long long final = 0;
  soci::statement st =
      OneShot(sql,
              "SELECT host, kind, id, step, final, result FROM deployments WHERE "
              "release_id = :r AND environment = :e ORDER BY host, attempt",
              soci::use(key), soci::use(environment), soci::into(host), soci::into(kind),
              soci::into(id), soci::into(step), soci::into(final), soci::into(result));
  st.execute(false);
  const std::string install(protocol::DeploymentKindName(DeploymentKind::kInstall));
  while (st.fetch()) {
    // Read as DeploymentRecord reads them (deployment_rows.hpp): a value
    // this coordinator did not write is the first step and, if final, failed.
    DeploymentState state{id, protocol::ParseStep(step).value_or(protocol::Step::kAssigned), {}};
    if (final != 0) {
      state.result = ParseDeploymentResult(result).value_or(DeploymentResult::kFailed);
    }
    auto& into = kind == install ? out.install : out.rollback;
    into.insert_or_assign(host, std::move(state));  // by attempt: the latest stays
  }
  return out;
}

HostDeployments LoadHostDeploymentsOf(soci::session& sql, const std::string& release_id,
                                      const std::vector<std::string>& hosts) {
  constexpr std::size_t kOneReadAbove = 300;
  if (hosts.size() > kOneReadAbove) return LoadHostDeployments(sql, release_id);
  HostDeployments out;
  for (const std::string& host : hosts) {
    for (DeploymentRecord& d : ListHostDeployments(sql, release_id, host)) {  // oldest first
      if (d.environment == kProductionEnvironment) KeepLatest(out, std::move(d));
    }
  }
  return out;
}

bool Succeeded(const DeploymentRecord& d) { return d.Succeeded(); }

std::vector<std::string> HostNames(const std::vector<RolloutHost>& hosts) {
  std::vector<std::string> names;
  for (const RolloutHost& h : hosts) names.push_back(h.host);
  return names;
}

rel::RolloutOutcome OutcomeOf(const std::vector<RolloutHost>& hosts,
                              const HostDeployments& deployments) {
  rel::RolloutOutcome outcome;
  for (const RolloutHost& h : hosts) {
    auto it = deployments.install.find(h.host);
    if (it == deployments.install.end()) continue;  // never assigned
    ++outcome.hosts;
    if (!it->second.IsFinal()) continue;
    if (Succeeded(it->second)) {
      ++outcome.succeeded;
    } else {
      ++outcome.failed;
    }
  }
  return outcome;
}

std::string StoredReleaseState(Transaction& tx, const std::string& release_id) {
  ReleaseStateStatement& read = tx.Cached<ReleaseStateStatement>();
  read.release_id = release_id;
  read.state.clear();
  read.st.execute(true);
  std::string state = read.st.got_data() ? read.state : std::string();
  StatementCache::Finish(read.st);
  return state;
}

// "wave 2 of 3: 100 host(s), not all final yet" while the current wave has a
// host whose install is not final; nullopt once all are (or before wave 1).
// Called on every final event of the wave: it must not read the whole wave
// (a count over the wave per event made a wave of N hosts cost N^2; the
// per-wave counts are in RolloutStatus).
std::optional<std::string> WaveStillRunning(Transaction& tx, const RolloutRow& row) {
  if (row.current_wave < 0) return std::nullopt;
  const auto w = static_cast<std::size_t>(row.current_wave);
  const std::uint64_t hosts = row.waves[w].hosts;
  WaveOpenStatement& probe = tx.Cached<WaveOpenStatement>();
  probe.release_id = row.release_id;
  probe.environment = kProductionEnvironment;
  probe.kind = protocol::DeploymentKindName(DeploymentKind::kInstall);
  probe.wave = row.current_wave;
  probe.open = 0;
  probe.st.execute(true);
  const bool open = probe.open > 0;
  StatementCache::Finish(probe.st);
  if (!open) return std::nullopt;
  return fmt::format("wave {} of {}: {} host(s), not all final yet", row.current_wave + 1,
                     row.wave_count(), hosts);
}

WaveHosts WaveOf(const std::vector<RolloutHost>& hosts, const HostDeployments& deployments,
                 long long wave) {
  WaveHosts out;
  for (const RolloutHost& h : hosts) {
    if (h.wave != wave) continue;
    out.hosts.push_back(h.host);
    if (deployments.install.contains(h.host)) out.assigned.insert(h.host);
  }
  return out;
}

// The same read from the store for one wave only: the next part of a wave
// reads its wave, not the whole rollout and every deployment of it.
WaveHosts LoadWaveHosts(soci::session& sql, const std::string& release_id, long long wave) {
  WaveHosts out;
  std::string key = release_id, host;
  long long w = wave;
  {
    soci::statement st = OneShot(sql,
                                 "SELECT host FROM rollout_hosts WHERE release_id = :r "
                                 "AND wave = :w ORDER BY position",
                                 soci::use(key), soci::use(w), soci::into(host));
    st.execute(false);
    while (st.fetch()) out.hosts.push_back(host);
  }
  std::string environment(kProductionEnvironment),
      kind(protocol::DeploymentKindName(DeploymentKind::kInstall));
  soci::statement st = OneShot(
      sql,
      "SELECT host FROM deployments WHERE release_id = :r AND environment = :e "
      "AND kind = :k AND wave = :w",
      soci::use(key), soci::use(environment), soci::use(kind), soci::use(w), soci::into(host));
  st.execute(false);
  while (st.fetch()) out.assigned.insert(host);
  return out;
}

std::vector<std::string> RolloutTargets(soci::session& sql, const std::string& release_id) {
  return HostNames(LoadRolloutHosts(sql, release_id));
}

RolloutTally TallyRollout(soci::session& sql, const std::string& release_id) {
  RolloutTally tally;
  const HostDeployments deployments = LoadHostDeployments(sql, release_id);
  for (const auto& [host, d] : deployments.install) {
    if (!d.IsFinal()) continue;
    if (Succeeded(d)) {
      ++tally.succeeded;
    } else {
      ++tally.failed;
    }
  }
  return tally;
}

std::vector<std::string> ActiveRollouts(soci::session& sql) {
  std::vector<std::string> ids;
  std::string id;
  soci::statement rows =
      OneShot(sql,
              "SELECT r.id FROM releases r JOIN rollouts o ON o.release_id = r.id "
              "WHERE o.finished = 0 AND (r.state IN ('deploying', 'rolling_back') OR "
              "(r.state = 'paused' AND o.pause_kind IN ('window', 'freeze'))) "
              "ORDER BY r.seq",
              soci::into(id));
  rows.execute(false);
  while (rows.fetch()) ids.push_back(id);
  return ids;
}

void SetPauseKind(soci::session& sql, const std::string& release_id, std::string_view kind) {
  std::string key = release_id, value(kind);
  sql << "UPDATE rollouts SET pause_kind = :p WHERE release_id = :r", soci::use(value),
      soci::use(key);
}

void MarkAborted(soci::session& sql, const std::string& release_id) {
  std::string key = release_id;
  sql << "UPDATE rollouts SET aborted = 1, pause_kind = '' WHERE release_id = :r", soci::use(key);
}

void AcceptCurrentWave(soci::session& sql, const std::string& release_id) {
  std::string key = release_id;
  sql << "UPDATE rollouts SET accepted_wave = current_wave, finished = 0, pause_kind = '', "
         "aborted = 0 WHERE release_id = :r",
      soci::use(key);
}

Result<void> PassGate(soci::session& sql, const std::string& release_id) {
  auto row = LoadRollout(sql, release_id);
  if (!row) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("release {} has no rollout", release_id));
  }
  const bool at_gate = row->current_wave >= 0 && row->wave_done_at > 0 &&
                       row->gates_confirmed <= row->current_wave && !row->last_wave_started();
  if (!at_gate) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("release {} is not waiting at a control point ({})", release_id,
                            row->waiting.empty() ? "wave in progress" : row->waiting));
  }
  std::string key = release_id;
  long long gates = row->current_wave + 1;
  sql << "UPDATE rollouts SET gates_confirmed = :g WHERE release_id = :r", soci::use(gates),
      soci::use(key);
  return {};
}

}  // namespace fabu::coordinator
