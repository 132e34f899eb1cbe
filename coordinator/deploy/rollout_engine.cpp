#include "coordinator/deploy/rollout_engine.hpp"

#include <fmt/format.h>
#include <soci/soci.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <set>

#include "coordinator/cmdb/cmdb.hpp"
#include "coordinator/common/clock.hpp"
#include "coordinator/hosts/hosts.hpp"
#include "coordinator/notify/notices.hpp"
#include "coordinator/store/release_records.hpp"

namespace fabu::coordinator {
namespace {

using nlohmann::json;
namespace rel = release;
using protocol::DeploymentKind;

// The rollout engine acts as this actor in release histories.
const rel::Actor kEngine{"fabu-coordinator", rel::Role::kAdmin};

struct RolloutRow {
  std::string release_id;
  std::string package_id;
  std::vector<std::uint64_t> sizes;       // cumulative
  std::vector<std::uint64_t> thresholds;  // per wave
  long long current_wave = -1;
  long long wave_done_at = 0;
  long long gates_confirmed = 0;
  long long accepted_wave = -1;
  long long aborted = 0;
  std::string pause_kind;
  std::string waiting;
  long long started = 0;
  long long finished = 0;
  long long first_part = kDefaultFirstWavePart;  // AssignWave
  long long assigning = 0;                       // 1: the current wave has hosts left to assign

  std::size_t wave_count() const { return sizes.size(); }
  bool last_wave_started() const {
    return current_wave >= 0 && static_cast<std::size_t>(current_wave) + 1 >= sizes.size();
  }
};

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
  row.sizes = json::parse(sizes).get<std::vector<std::uint64_t>>();
  row.thresholds = json::parse(thresholds).get<std::vector<std::uint64_t>>();
  return row;
}

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

struct RolloutHost {
  long long position = 0;
  std::string host;
  long long wave = 0;
};

std::vector<RolloutHost> LoadRolloutHosts(soci::session& sql, const std::string& release_id) {
  std::vector<RolloutHost> hosts;
  std::string key = release_id;
  RolloutHost h;
  soci::statement st =
      (sql.prepare << "SELECT position, host, wave FROM rollout_hosts WHERE "
                      "release_id = :r ORDER BY position",
       soci::use(key), soci::into(h.position), soci::into(h.host), soci::into(h.wave));
  st.execute(false);
  while (st.fetch()) hosts.push_back(h);
  return hosts;
}

// The latest production deployment of each kind per host.
struct HostDeployments {
  std::map<std::string, DeploymentRecord> install;
  std::map<std::string, DeploymentRecord> rollback;
};

HostDeployments LoadHostDeployments(soci::session& sql, const std::string& release_id) {
  HostDeployments out;
  for (DeploymentRecord& d : ListDeployments(sql, release_id)) {  // by host, attempt
    if (d.environment != kProductionEnvironment) continue;
    auto& into = d.kind == DeploymentKind::kInstall ? out.install : out.rollback;
    into.insert_or_assign(d.host, std::move(d));
  }
  return out;
}

bool Succeeded(const DeploymentRecord& d) { return d.final && d.result == kResultSucceeded; }

// Saves a transition the engine (or a person through the API) made, with
// its audit entry; a refused one is logged (the engine's own checks should
// have prevented it) and changes nothing.
std::optional<rel::Release> Apply(Transaction& tx, const rel::Release& before,
                                  const Result<rel::Release>& after, json detail = json::object()) {
  if (!after) {
    spdlog::warn("rollout engine: release {}: {}", before.id, after.error().message());
    return std::nullopt;
  }
  SaveRelease(tx.sql(), *after);
  EnqueueNotices(tx, before, *after);
  AuditEvent event(fmt::format("release.{}", rel::ActionName(after->history.back().action)),
                   "release", before.id);
  event.release_id = before.id;
  event.before = rel::ReleaseToJson(before);
  event.after = rel::ReleaseToJson(*after);
  detail["from"] = rel::ReleaseStateName(before.state);
  detail["to"] = rel::ReleaseStateName(after->state);
  event.detail = std::move(detail);
  tx.Audit(event);
  return *after;
}

std::vector<std::string> HostNames(const std::vector<RolloutHost>& hosts) {
  std::vector<std::string> names;
  for (const RolloutHost& h : hosts) names.push_back(h.host);
  return names;
}

struct WaveCount {
  std::size_t hosts = 0, assigned = 0, final = 0, succeeded = 0, failed = 0;
};

WaveCount CountWave(const std::vector<RolloutHost>& hosts, const HostDeployments& deployments,
                    long long wave) {
  WaveCount count;
  for (const RolloutHost& h : hosts) {
    if (h.wave != wave) continue;
    ++count.hosts;
    auto it = deployments.install.find(h.host);
    if (it == deployments.install.end()) continue;
    ++count.assigned;
    if (!it->second.final) continue;
    ++count.final;
    if (Succeeded(it->second)) {
      ++count.succeeded;
    } else {
      ++count.failed;
    }
  }
  return count;
}

rel::RolloutOutcome OutcomeOf(const std::vector<RolloutHost>& hosts,
                              const HostDeployments& deployments) {
  rel::RolloutOutcome outcome;
  for (const RolloutHost& h : hosts) {
    auto it = deployments.install.find(h.host);
    if (it == deployments.install.end()) continue;  // never assigned
    ++outcome.hosts;
    if (!it->second.final) continue;
    if (Succeeded(it->second)) {
      ++outcome.succeeded;
    } else {
      ++outcome.failed;
    }
  }
  return outcome;
}

// Whether a wave has a host whose install is not final: one indexed probe
// (deployments_wave ends with `final`), prepared once.
struct WaveOpenStatement {
  explicit WaveOpenStatement(soci::session& sql)
      : st((sql.prepare << "SELECT COUNT(*) FROM (SELECT 1 FROM deployments WHERE release_id = "
                           ":r AND environment = :e AND kind = :k AND wave = :w AND final = 0 "
                           "LIMIT 1)",
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
  const std::uint64_t hosts = row.sizes[w] - (w > 0 ? row.sizes[w - 1] : 0);
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

// A wave's hosts in rollout order, and those of them with an install
// deployment of the release.
struct WaveHosts {
  std::vector<std::string> hosts;
  std::set<std::string> assigned;
};

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
    soci::statement st = (sql.prepare << "SELECT host FROM rollout_hosts WHERE release_id = :r "
                                         "AND wave = :w ORDER BY position",
                          soci::use(key), soci::use(w), soci::into(host));
    st.execute(false);
    while (st.fetch()) out.hosts.push_back(host);
  }
  std::string environment(kProductionEnvironment),
      kind(protocol::DeploymentKindName(DeploymentKind::kInstall));
  soci::statement st =
      (sql.prepare << "SELECT host FROM deployments WHERE release_id = :r AND environment = :e "
                      "AND kind = :k AND wave = :w",
       soci::use(key), soci::use(environment), soci::use(kind), soci::use(w), soci::into(host));
  st.execute(false);
  while (st.fetch()) out.assigned.insert(host);
  return out;
}

// Starts wave `wave`, or goes on with it: one install deployment for each
// of its next hosts without one (in rollout order). A wave is assigned in
// parts, each its own transaction answered as soon as it commits, so its
// first hosts get their work while the rest is being made: first_part hosts,
// then as many as are assigned already (first_part, 2 * first_part, 4 *, ...).
// (Capped at 2,000, each host waited less for its own part, but the whole
// wave reached its last host a second later: docs/benchmarks.md.)
// While hosts are left, the release is added to wakeups.rollouts_to_go_on.
// A part decides from the store alone: after a restart the next part is made
// as if nothing happened.
void AssignWave(Transaction& tx, const rel::Release& release, RolloutRow& row, const WaveHosts& in,
                long long wave, UnixSeconds now, Wakeups& wakeups) {
  auto package = FindPackage(tx.sql(), row.package_id);
  if (!package) {
    // The store refuses to delete a package a release names; reaching here
    // means a damaged store. Stop rather than guess.
    row.waiting = fmt::format("cannot start wave {}: {}", wave + 1, package.error().message());
    return;
  }
  const std::size_t in_wave = in.hosts.size();
  std::size_t assigned_before = 0;
  std::vector<const std::string*> left;
  for (const std::string& host : in.hosts) {
    if (in.assigned.contains(host)) {
      ++assigned_before;
    } else {
      left.push_back(&host);
    }
  }
  const std::size_t part =
      std::max(static_cast<std::size_t>(std::max(row.first_part, 1LL)), assigned_before);
  if (left.size() > part) left.resize(part);
  // Hosts removed since (their rows are kept, flagged): one read for the part,
  // not one per host (a part may hold thousands), and usually none.
  std::set<std::string> removed;
  {
    soci::rowset<std::string> rows = (tx.sql().prepare << "SELECT name FROM hosts WHERE "
                                                          "removed <> 0");
    for (const std::string& name : rows) removed.insert(name);
  }
  std::vector<NewDeployment> targets;
  for (const std::string* host : left) {
    targets.push_back(NewDeployment{*host, DeploymentKind::kInstall, wave});
  }
  auto made = CreateDeployments(tx, release, *package, targets, kProductionEnvironment, now);
  // Hosts with an unfinished deployment of another release: their polls look
  // again (and find the oldest). The others' polls get theirs with the wakeup.
  std::set<std::string> busy;
  {
    std::string id = release.id;
    soci::rowset<std::string> rows =
        (tx.sql().prepare << "SELECT DISTINCT host FROM deployments WHERE final = 0 AND "
                             "release_id <> :r",
         soci::use(id));
    for (const std::string& host : rows) busy.insert(host);
  }
  for (const DeploymentRecord& d : made) {
    if (removed.contains(d.host)) {
      // A target removed since the rollout began: it counts as failed.
      FinishDeployment(tx, d, kResultRemoved, fmt::format("host {} was removed", d.host), now);
      continue;
    }
    if (busy.contains(d.host)) {
      wakeups.hosts.push_back(d.host);
    } else {
      wakeups.assigned.push_back({d.host, d.ToAssignment()});
    }
  }
  const std::size_t assigned = assigned_before + made.size();
  const bool starts = row.current_wave != wave;
  row.current_wave = wave;
  row.wave_done_at = 0;
  row.waiting.clear();
  // (A host CreateDeployments refused, one with an unfinished deployment of
  // this release elsewhere, stays unassigned: go on only while parts make
  // something, or such a wave would be retried without end.)
  row.assigning = assigned < in_wave && !made.empty() ? 1 : 0;
  if (row.assigning != 0) {
    wakeups.rollouts_to_go_on.push_back(release.id);
    row.waiting = fmt::format("wave {} of {}: {} of {} host(s) assigned, the rest follow", wave + 1,
                              row.wave_count(), assigned, in_wave);
  }
  AuditEvent event(starts ? "rollout.wave-start" : "rollout.wave-part", "release", release.id);
  event.release_id = release.id;
  event.detail = {{"wave", wave + 1}, {"of", row.wave_count()}};
  // The wave's hosts are named once, when it starts.
  if (starts) event.detail["hosts"] = fmt::format("{}", fmt::join(in.hosts, ", "));
  event.detail["assigned"] = made.size();
  event.detail["assigned_so_far"] = assigned;
  event.detail["wave_hosts"] = in_wave;
  tx.Audit(event);
}

// Tells every host whose install succeeded to restore its previous release;
// ends the rollback once all is final.
void AdvanceRollback(Transaction& tx, const rel::Release& release, RolloutRow& row,
                     const std::vector<RolloutHost>& hosts, UnixSeconds now, Wakeups& wakeups) {
  HostDeployments deployments = LoadHostDeployments(tx.sql(), release.id);
  auto package = FindPackage(tx.sql(), row.package_id);
  std::size_t in_flight = 0, restored = 0, restore_failed = 0;
  std::vector<NewDeployment> to_restore;
  for (const RolloutHost& h : hosts) {
    auto install = deployments.install.find(h.host);
    if (install == deployments.install.end()) continue;  // never moved
    if (!install->second.final) {
      ++in_flight;  // let it finish: it may still succeed and then need restoring
      continue;
    }
    if (!Succeeded(install->second)) continue;  // failed before activating, or rolled back itself
    auto rollback = deployments.rollback.find(h.host);
    if (rollback == deployments.rollback.end()) {
      to_restore.push_back(NewDeployment{h.host, DeploymentKind::kRollback, h.wave});
      ++in_flight;
      continue;
    }
    if (!rollback->second.final) {
      ++in_flight;
    } else if (rollback->second.result == kResultRolledBack) {
      ++restored;
    } else {
      ++restore_failed;
    }
  }
  if (!to_restore.empty() && package) {
    for (const DeploymentRecord& d :
         CreateDeployments(tx, release, *package, to_restore, kProductionEnvironment, now)) {
      wakeups.hosts.push_back(d.host);
    }
  }
  if (in_flight > 0) {
    row.waiting = fmt::format("rolling back: {} host(s) not final yet", in_flight);
    return;
  }
  std::string note = fmt::format("{} host(s) restored to their previous release", restored);
  if (restore_failed > 0) note += fmt::format(", {} failed to restore", restore_failed);
  if (Apply(tx, release, rel::FinishRollback(release, kEngine, now, note),
            {{"restored", restored}, {"restore_failed", restore_failed}})) {
    row.finished = now;
    row.waiting.clear();
  }
}

std::string WindowText(const rel::MaintenanceWindow& window) {
  return fmt::format("{} .. {}", window.start.text, window.end.text);
}

// Why the rollout may not start a wave now ("" when it may): the window and
// freezes. Sets `pause_kind` when the reason should pause it.
std::string Blocker(soci::session& sql, const rel::Release& release,
                    const std::vector<std::string>& hosts, UnixSeconds now,
                    std::string& pause_kind) {
  pause_kind.clear();
  const auto window = release.ActiveWindow();
  if (window && now >= window->end.seconds) {
    pause_kind = kPausedByWindow;
    return fmt::format(
        "the go-live window {} closed; schedule a new one with `fabu release "
        "reschedule {} --start T --end T`",
        WindowText(*window), release.id);
  }
  if (window && now < window->start.seconds) {
    return fmt::format("waiting for the go-live window to open at {}", window->start.text);
  }
  if (!release.freeze_override) {
    if (auto freeze = FreezeCovering(sql, hosts, now)) {
      pause_kind = kPausedByFreeze;
      return fmt::format("freeze {} ({}) until {}", freeze->id, freeze->reason, freeze->to.text);
    }
  }
  return "";
}

// Pauses the rollout when Blocker said it must (its window closed or a
// freeze applies); whether it did.
bool PauseFor(Transaction& tx, const rel::Release& release, RolloutRow& row,
              const std::string& blocker, const std::string& pause_kind, UnixSeconds now) {
  if (pause_kind.empty()) return false;
  if (Apply(tx, release, rel::PauseRollout(release, kEngine, now, blocker))) {
    row.pause_kind = pause_kind;
  }
  row.waiting = blocker;
  return true;
}

// The current wave's next part (AssignWave), unless its window closed or a
// freeze on its hosts began since the part before: then the rollout pauses.
void AssignNextPart(Transaction& tx, const rel::Release& release, RolloutRow& row,
                    const WaveHosts& wave, UnixSeconds now, Wakeups& wakeups) {
  std::string pause_kind;
  const std::string blocker = Blocker(tx.sql(), release, wave.hosts, now, pause_kind);
  if (!PauseFor(tx, release, row, blocker, pause_kind, now)) {
    AssignWave(tx, release, row, wave, row.current_wave, now, wakeups);
  }
}

void AdvanceDeploying(Transaction& tx, const rel::Release& release, RolloutRow& row,
                      const std::vector<RolloutHost>& hosts, UnixSeconds now, Wakeups& wakeups) {
  const rel::GoLivePlan& golive = *release.plan.golive;
  HostDeployments deployments = LoadHostDeployments(tx.sql(), release.id);
  if (row.current_wave >= 0) {
    const WaveCount count = CountWave(hosts, deployments, row.current_wave);
    if (count.assigned < count.hosts && row.aborted == 0) {
      AssignNextPart(tx, release, row, WaveOf(hosts, deployments, row.current_wave), now, wakeups);
      return;
    }
    row.assigning = 0;  // all assigned, or aborted: the rest never goes
    if (count.final < count.assigned) {
      row.waiting = fmt::format("wave {} of {}: {} of {} host(s) final", row.current_wave + 1,
                                row.wave_count(), count.final, count.hosts);
      return;
    }
    const std::uint64_t threshold = row.thresholds[static_cast<std::size_t>(row.current_wave)];
    if (count.failed > threshold && row.accepted_wave < row.current_wave) {
      const std::string reason = fmt::format(
          "wave {} of {}: {} of {} host(s) failed, over max_failures {} ({} "
          "tolerated in this wave)",
          row.current_wave + 1, row.wave_count(), count.failed, count.hosts,
          golive.max_failures.ToString(), threshold);
      const json detail = {
          {"wave", row.current_wave + 1}, {"failed", count.failed}, {"threshold", threshold}};
      if (golive.auto_rollback) {
        auto rolling =
            Apply(tx, release,
                  rel::StartRollback(release, kEngine, now, reason + "; auto_rollback"), detail);
        if (rolling) AdvanceRollback(tx, *rolling, row, hosts, now, wakeups);
        return;
      }
      rel::RolloutOutcome outcome = OutcomeOf(hosts, deployments);
      outcome.halted = true;
      outcome.reason = reason + "; waiting for `fabu release rollback` or `fabu release resume`";
      if (Apply(tx, release, rel::FinishRollout(release, kEngine, now, outcome), detail)) {
        row.waiting = outcome.reason;
      }
      return;
    }
    if (row.wave_done_at == 0) {
      row.wave_done_at = now;
      AuditEvent event("rollout.wave-done", "release", release.id);
      event.release_id = release.id;
      event.detail = {{"wave", row.current_wave + 1},
                      {"succeeded", count.succeeded},
                      {"failed", count.failed},
                      {"threshold", threshold}};
      tx.Audit(event);
    }
  }
  if (row.aborted != 0 || row.last_wave_started()) {
    rel::RolloutOutcome outcome = OutcomeOf(hosts, deployments);
    if (row.aborted != 0 && outcome.hosts < hosts.size()) {
      outcome.halted = true;
      outcome.reason =
          fmt::format("aborted: {} host(s) never assigned", hosts.size() - outcome.hosts);
    }
    if (Apply(tx, release, rel::FinishRollout(release, kEngine, now, outcome))) {
      row.finished = now;
      row.waiting.clear();
    }
    return;
  }
  const long long next = row.current_wave + 1;
  // A closed window or a freeze pauses the rollout at once, even between
  // waves: nothing more may start until it is lifted.
  std::string pause_kind;
  const std::string blocker = Blocker(tx.sql(), release, HostNames(hosts), now, pause_kind);
  if (PauseFor(tx, release, row, blocker, pause_kind, now)) return;
  if (row.current_wave >= 0) {
    if (golive.gate_between_waves) {
      if (row.gates_confirmed <= row.current_wave) {
        row.waiting =
            fmt::format("control point after wave {}: waiting for `fabu release gate {} --confirm`",
                        row.current_wave + 1, release.id);
        return;
      }
    } else if (now < row.wave_done_at + golive.between_waves_seconds) {
      row.waiting =
          fmt::format("wave {} starts at {} ({} after wave {})", next + 1,
                      protocol::FormatRfc3339Utc(row.wave_done_at + golive.between_waves_seconds),
                      protocol::FormatDuration(golive.between_waves_seconds), row.current_wave + 1);
      return;
    }
  }
  if (!blocker.empty()) {  // the window has not opened yet
    row.waiting = blocker;
    return;
  }
  AssignWave(tx, release, row, WaveOf(hosts, deployments, next), next, now, wakeups);
}

// A rollout paused by its window or a freeze goes on once neither holds.
void AdvancePaused(Transaction& tx, const rel::Release& release, RolloutRow& row,
                   const std::vector<RolloutHost>& hosts, UnixSeconds now, Wakeups& wakeups) {
  if (row.pause_kind != kPausedByWindow && row.pause_kind != kPausedByFreeze) return;
  std::string pause_kind;
  const std::string blocker = Blocker(tx.sql(), release, HostNames(hosts), now, pause_kind);
  if (!blocker.empty()) {
    row.waiting = blocker;
    return;
  }
  const std::string why = row.pause_kind == kPausedByWindow ? "the go-live window is open"
                                                            : "no freeze applies any more";
  auto resumed = Apply(tx, release, rel::ResumeRollout(release, kEngine, now, why));
  if (!resumed) return;
  row.pause_kind.clear();
  AdvanceDeploying(tx, *resumed, row, hosts, now, wakeups);
}

}  // namespace

Result<void> BeginRollout(Transaction& tx, const rel::Release& release,
                          const StoredPackage& package, std::vector<std::string> hosts,
                          UnixSeconds now, const rel::PlanParseOptions& options, Wakeups& wakeups,
                          std::size_t first_part) {
  if (!release.plan.golive) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("release {} has no go-live plan", release.id));
  }
  std::sort(hosts.begin(), hosts.end());
  hosts.erase(std::unique(hosts.begin(), hosts.end()), hosts.end());
  if (!release.freeze_override) {
    if (auto freeze = FreezeCovering(tx.sql(), hosts, now)) {
      return Fail(ErrorCode::kFailedPrecondition,
                  fmt::format("cannot start release {}: freeze {} ({}) is in force until {} on "
                              "its targets; only an emergency release with an approver's "
                              "override (release override-freeze) may start",
                              release.id, freeze->id, freeze->reason, freeze->to.text));
    }
  }
  auto sizes = rel::WaveSizes(release.plan.golive->waves, hosts.size());
  if (!sizes) {
    return std::unexpected(
        sizes.error().WithContext(fmt::format("cannot start release {}", release.id)));
  }
  const auto thresholds = rel::FailureThresholds(*sizes, release.plan.golive->max_failures);
  std::string key = release.id, package_id = package.id, sizes_text = json(*sizes).dump(),
              thresholds_text = json(thresholds).dump(), empty;
  long long started = now, minus_one = -1, zero = 0,
            part = static_cast<long long>(std::max<std::size_t>(first_part, 1));
  tx.sql() << "INSERT INTO rollouts (release_id, package_id, wave_sizes, thresholds, "
              "current_wave, wave_done_at, gates_confirmed, accepted_wave, aborted, pause_kind, "
              "waiting, started, finished, first_part) VALUES (:r, :p, :s, :t, :c, :d, :g, :a, "
              ":ab, :pk, :w, :st, :f, :fp)",
      soci::use(key), soci::use(package_id), soci::use(sizes_text), soci::use(thresholds_text),
      soci::use(minus_one), soci::use(zero), soci::use(zero), soci::use(minus_one), soci::use(zero),
      soci::use(empty), soci::use(empty), soci::use(started), soci::use(zero), soci::use(part);
  // Two statements prepared once for every target (each parsed anew per
  // host was a second of `release start` at 20,000 hosts).
  std::string host, app = package.name, from;
  soci::indicator ind = soci::i_null;
  long long pos = 0, w = 0;
  soci::statement installed =
      (tx.sql().prepare << "SELECT current_version FROM host_apps WHERE host = :h AND app = :a",
       soci::use(host), soci::use(app), soci::into(from, ind));
  soci::statement insert =
      (tx.sql().prepare << "INSERT INTO rollout_hosts (release_id, position, host, wave, "
                           "from_version) VALUES (:r, :p, :h, :w, :f)",
       soci::use(key), soci::use(pos), soci::use(host), soci::use(w), soci::use(from));
  std::size_t wave = 0;
  for (std::size_t position = 0; position < hosts.size(); ++position) {
    while (position >= (*sizes)[wave]) ++wave;
    pos = static_cast<long long>(position);
    w = static_cast<long long>(wave);
    host = hosts[position];
    // No row, or a NULL: no version installed (`from` may hold the last host's).
    if (!installed.execute(true) || ind != soci::i_ok) from.clear();
    insert.execute(true);
  }
  // The CMDB's baseline of every target's software before anything moves.
  if (auto taken = TakeBaseline(tx, release.id, kBaselineBefore, hosts, now); !taken) {
    return std::unexpected(taken.error());
  }
  AuditEvent event("rollout.begin", "release", release.id);
  event.release_id = release.id;
  event.detail = {{"hosts", hosts}, {"wave_sizes", *sizes}, {"thresholds", thresholds}};
  tx.Audit(event);
  AdvanceRollout(tx, release.id, now, options, wakeups);
  return {};
}

void AdvanceRollout(Transaction& tx, const std::string& release_id, UnixSeconds now,
                    const rel::PlanParseOptions& options, Wakeups& wakeups, AdvanceBy by) {
  auto row = LoadRollout(tx, release_id);
  if (!row || row->finished != 0) return;
  // The sweep is making the current wave's next part (it was woken).
  if (row->assigning != 0 && by == AdvanceBy::kFinalEvent) return;
  const RolloutRow before = *row;
  if (row->assigning != 0 && row->aborted == 0 &&
      StoredReleaseState(tx, release_id) == rel::ReleaseStateName(rel::ReleaseState::kDeploying)) {
    // The current wave's next part: read that wave only, not the whole
    // rollout and every deployment of it.
    auto release = LoadRelease(tx.sql(), release_id, options);
    if (!release) {
      spdlog::error("rollout engine: {}", release.error().message());
      return;
    }
    AssignNextPart(tx, *release, *row, LoadWaveHosts(tx.sql(), release_id, row->current_wave), now,
                   wakeups);
    SaveRollout(tx.sql(), *row);
    return;
  }
  if (row->assigning == 0 &&
      StoredReleaseState(tx, release_id) == rel::ReleaseStateName(rel::ReleaseState::kDeploying)) {
    // Most calls come from one host's final event while its wave is still
    // running: answer those from one indexed probe, not from every row of
    // the rollout (which would make a wave of N hosts cost N^2), and without
    // reading (parsing) the whole release. (Not for a wave aborted while it
    // was assigned in parts: AdvanceDeploying clears `assigning`.)
    if (auto waiting = WaveStillRunning(tx, *row)) {
      row->waiting = std::move(*waiting);
      if (row->waiting != before.waiting) SaveRollout(tx.sql(), *row);
      return;
    }
  }
  auto release = LoadRelease(tx.sql(), release_id, options);
  if (!release) {
    spdlog::error("rollout engine: {}", release.error().message());
    return;
  }
  if (!release->plan.golive) return;
  const std::vector<RolloutHost> hosts = LoadRolloutHosts(tx.sql(), release_id);
  switch (release->state) {
    case rel::ReleaseState::kDeploying:
      AdvanceDeploying(tx, *release, *row, hosts, now, wakeups);
      break;
    case rel::ReleaseState::kPaused:
      AdvancePaused(tx, *release, *row, hosts, now, wakeups);
      break;
    case rel::ReleaseState::kRollingBack:
      AdvanceRollback(tx, *release, *row, hosts, now, wakeups);
      break;
    default:
      return;  // failed: waits for a person; over: nothing to do
  }
  const bool changed = row->current_wave != before.current_wave ||
                       row->wave_done_at != before.wave_done_at ||
                       row->pause_kind != before.pause_kind || row->waiting != before.waiting ||
                       row->finished != before.finished || row->assigning != before.assigning;
  if (changed) SaveRollout(tx.sql(), *row);
}

std::vector<std::string> RolloutTargets(soci::session& sql, const std::string& release_id) {
  return HostNames(LoadRolloutHosts(sql, release_id));
}

RolloutTally TallyRollout(soci::session& sql, const std::string& release_id) {
  RolloutTally tally;
  const HostDeployments deployments = LoadHostDeployments(sql, release_id);
  for (const auto& [host, d] : deployments.install) {
    if (!d.final) continue;
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
  soci::rowset<std::string> rows =
      (sql.prepare << "SELECT r.id FROM releases r JOIN rollouts o ON o.release_id = r.id "
                      "WHERE o.finished = 0 AND (r.state IN ('deploying', 'rolling_back') OR "
                      "(r.state = 'paused' AND o.pause_kind IN ('window', 'freeze'))) "
                      "ORDER BY r.seq");
  for (const std::string& id : rows) ids.push_back(id);
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
  sql << "UPDATE rollouts SET accepted_wave = current_wave, finished = 0, pause_kind = '' "
         "WHERE release_id = :r",
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

Result<json> RolloutStatus(soci::session& sql, const rel::Release& release, UnixSeconds now) {
  json out = {{"release", release.id},
              {"state", rel::ReleaseStateName(release.state)},
              {"now", protocol::FormatRfc3339Utc(now)}};
  auto row = LoadRollout(sql, release.id);
  if (!row) {
    out["rollout"] = nullptr;
    out["waiting"] = "";
    return out;
  }
  const auto hosts = LoadRolloutHosts(sql, release.id);
  const HostDeployments deployments = LoadHostDeployments(sql, release.id);
  json waves = json::array();
  for (std::size_t w = 0; w < row->wave_count(); ++w) {
    const long long wave = static_cast<long long>(w);
    const WaveCount count = CountWave(hosts, deployments, wave);
    std::string state;
    if (wave > row->current_wave) {
      state = "pending";
    } else if (count.final < count.hosts) {
      state = "running";
    } else if (count.failed > row->thresholds[w] && row->accepted_wave < wave) {
      state = "failed";
    } else {
      state = count.failed > row->thresholds[w] ? "accepted" : "succeeded";
    }
    waves.push_back({{"wave", w + 1},
                     {"hosts", count.hosts},
                     {"threshold", row->thresholds[w]},
                     {"state", state},
                     {"final", count.final},
                     {"succeeded", count.succeeded},
                     {"failed", count.failed}});
  }
  json host_rows = json::array();
  for (const RolloutHost& h : hosts) {
    json entry = {{"host", h.host}, {"wave", h.wave + 1}};
    auto install = deployments.install.find(h.host);
    if (install == deployments.install.end()) {
      entry["step"] = "pending";
      entry["result"] = "";
      entry["message"] = "";
    } else {
      entry["step"] = install->second.step;
      entry["result"] = install->second.result;
      entry["message"] = install->second.message;
      entry["from_version"] = install->second.from_version;
      entry["deployment"] = install->second.id;
    }
    auto rollback = deployments.rollback.find(h.host);
    if (rollback != deployments.rollback.end()) {
      entry["rollback"] = {{"deployment", rollback->second.id},
                           {"step", rollback->second.step},
                           {"result", rollback->second.result},
                           {"message", rollback->second.message}};
    }
    host_rows.push_back(std::move(entry));
  }
  out["rollout"] = {{"waves_planned", row->wave_count()},
                    {"current_wave", row->current_wave + 1},
                    {"aborted", row->aborted != 0},
                    {"pause_kind", row->pause_kind},
                    {"started", protocol::FormatRfc3339Utc(row->started)},
                    {"finished", row->finished > 0 ? json(protocol::FormatRfc3339Utc(row->finished))
                                                   : json(nullptr)}};
  out["waves"] = std::move(waves);
  out["hosts"] = std::move(host_rows);
  std::string waiting = row->waiting;
  if (release.state == rel::ReleaseState::kPaused && row->pause_kind == kPausedByPerson) {
    for (auto it = release.history.rbegin(); it != release.history.rend(); ++it) {
      if (it->action == rel::Action::kPause) {
        waiting = fmt::format("paused by {}: {}; `fabu release resume {}` goes on", it->actor,
                              it->note, release.id);
        break;
      }
    }
  }
  out["waiting"] = waiting;
  return out;
}

std::string RecordIncident(Transaction& tx, const std::string& release_id, const std::string& host,
                           std::string_view severity, const std::string& summary,
                           std::string_view source, UnixSeconds now) {
  long long seq = 0;
  soci::indicator ind = soci::i_null;
  tx.sql() << "SELECT MAX(seq) FROM incidents", soci::into(seq, ind);
  seq = ind == soci::i_ok ? seq + 1 : 1;
  std::string id = fmt::format("I-{}", seq), r = release_id, h = host, sev(severity),
              text = summary, src(source), state = "open", by = tx.origin().actor, empty;
  long long created = now, zero = 0;
  tx.sql() << "INSERT INTO incidents (id, seq, release_id, host, severity, summary, source, "
              "state, created, created_by, closed, closed_by) VALUES (:id, :seq, :r, :h, :sev, "
              ":sum, :src, :st, :c, :by, :z, :cb)",
      soci::use(id), soci::use(seq), soci::use(r), soci::use(h), soci::use(sev), soci::use(text),
      soci::use(src), soci::use(state), soci::use(created), soci::use(by), soci::use(zero),
      soci::use(empty);
  AuditEvent event("incident.create", "incident", id);
  event.release_id = release_id;
  event.detail = {{"host", host}, {"severity", sev}, {"summary", text}, {"source", src}};
  tx.Audit(event);
  return id;
}

// ---- freezes ----------------------------------------------------------------

json Freeze::ToJson() const {
  return {{"id", id},
          {"from", from.text},
          {"to", to.text},
          {"reason", reason},
          {"selector", selector},
          {"created", created},
          {"created_by", created_by}};
}

namespace {

std::vector<Freeze> QueryFreezes(soci::session& sql, UnixSeconds active_at) {
  std::vector<Freeze> out;
  std::string id, from_text, to_text, reason, selector, created, created_by;
  long long starts = 0, ends = 0, at = active_at;
  soci::statement st =
      (sql.prepare << "SELECT id, starts, ends, start_text, end_text, reason, selector, created, "
                      "created_by FROM freezes WHERE removed = 0 AND (:a = 0 OR (starts <= :a2 "
                      "AND ends > :a3)) ORDER BY starts, seq",
       soci::use(at), soci::use(at), soci::use(at), soci::into(id), soci::into(starts),
       soci::into(ends), soci::into(from_text), soci::into(to_text), soci::into(reason),
       soci::into(selector), soci::into(created), soci::into(created_by));
  st.execute(false);
  while (st.fetch()) {
    out.push_back(Freeze{id, Timestamp{starts, from_text}, Timestamp{ends, to_text}, reason,
                         selector, created, created_by});
  }
  return out;
}

}  // namespace

Result<Freeze> AddFreeze(Transaction& tx, Timestamp from, Timestamp to, std::string reason,
                         std::string selector) {
  if (reason.find_first_not_of(" \t\r\n") == std::string::npos) {
    return Fail(ErrorCode::kInvalidArgument, "a freeze needs a reason (--reason)");
  }
  if (to.seconds <= from.seconds) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("--to {} must be after --from {}", to.text, from.text));
  }
  if (!selector.empty()) {
    auto parsed = rel::TargetSelector::Parse(selector);
    if (!parsed) return std::unexpected(parsed.error().WithContext("--selector"));
    selector = parsed->ToString();
  }
  long long seq = 0;
  soci::indicator ind = soci::i_null;
  tx.sql() << "SELECT MAX(seq) FROM freezes", soci::into(seq, ind);
  seq = ind == soci::i_ok ? seq + 1 : 1;
  Freeze freeze{fmt::format("F-{}", seq), std::move(from), std::move(to),    std::move(reason),
                std::move(selector),      NowUtc(),        tx.origin().actor};
  long long starts = freeze.from.seconds, ends = freeze.to.seconds, zero = 0;
  std::string empty;
  tx.sql() << "INSERT INTO freezes (id, seq, starts, ends, start_text, end_text, reason, "
              "selector, created, created_by, removed, removed_by, removed_at) VALUES (:id, "
              ":seq, :s, :e, :st, :et, :r, :sel, :c, :by, :z, :rb, :ra)",
      soci::use(freeze.id), soci::use(seq), soci::use(starts), soci::use(ends),
      soci::use(freeze.from.text), soci::use(freeze.to.text), soci::use(freeze.reason),
      soci::use(freeze.selector), soci::use(freeze.created), soci::use(freeze.created_by),
      soci::use(zero), soci::use(empty), soci::use(empty);
  AuditEvent event("freeze.add", "freeze", freeze.id);
  event.after = freeze.ToJson();
  tx.Audit(event);
  return freeze;
}

std::vector<Freeze> ListFreezes(soci::session& sql, UnixSeconds active_at) {
  return QueryFreezes(sql, active_at);
}

Result<Freeze> RemoveFreeze(Transaction& tx, const std::string& id) {
  for (Freeze& freeze : QueryFreezes(tx.sql(), 0)) {
    if (freeze.id != id) continue;
    std::string key = id, by = tx.origin().actor, at = NowUtc();
    tx.sql() << "UPDATE freezes SET removed = 1, removed_by = :b, removed_at = :a WHERE id = :id",
        soci::use(by), soci::use(at), soci::use(key);
    AuditEvent event("freeze.remove", "freeze", id);
    event.before = freeze.ToJson();
    tx.Audit(event);
    return std::move(freeze);
  }
  return Fail(ErrorCode::kNotFound, fmt::format("no freeze {} (see `fabu freeze list`)", id));
}

std::optional<Freeze> FreezeCovering(soci::session& sql, const std::vector<std::string>& hosts,
                                     UnixSeconds now) {
  for (Freeze& freeze : QueryFreezes(sql, now)) {
    if (freeze.selector.empty()) return std::move(freeze);
    auto selector = rel::TargetSelector::Parse(freeze.selector);
    if (!selector) continue;
    for (const HostRecord& host : ListHosts(sql, selector->labels)) {
      if (std::find(hosts.begin(), hosts.end(), host.name) != hosts.end()) {
        return std::move(freeze);
      }
    }
  }
  return std::nullopt;
}

}  // namespace fabu::coordinator
