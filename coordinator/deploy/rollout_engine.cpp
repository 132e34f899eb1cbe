#include "coordinator/deploy/rollout_engine.hpp"

#include <fmt/format.h>
#include <soci/soci.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <set>

#include "coordinator/common/clock.hpp"
#include "coordinator/deploy/rollout_checks.hpp"
#include "coordinator/deploy/rollout_rows.hpp"
#include "coordinator/hosts/hosts.hpp"
#include "coordinator/store/dialect.hpp"
#include "coordinator/store/release_records.hpp"
#include "coordinator/store/row_query.hpp"
#include "platform/log/log.hpp"

namespace fabu::coordinator {
namespace {

using nlohmann::json;
namespace rel = release;
using protocol::DeploymentKind;

// The rollout engine acts as this actor in release histories.
const rel::Actor kEngine{"fabu-coordinator", rel::Role::kSystem};

// Saves a transition the engine made (SaveTransition); a refused one is
// logged (the decision should have prevented it) and changes nothing.
std::optional<rel::Release> CommitTransition(Transaction& tx, const rel::Release& before,
                                             const Result<rel::Release>& after,
                                             json detail = json::object()) {
  if (!after) {
    spdlog::warn("rollout engine: release {}: {}", before.id, after.error().message());
    return std::nullopt;
  }
  SaveTransition(tx, before, *after, std::move(detail));
  return *after;
}

// Starts wave `wave`, or goes on with it: one install deployment for each
// of its next hosts without one (in rollout order). A wave is assigned in
// parts, each its own transaction answered as soon as it commits, so its
// first hosts get their work while the rest is being made: first_part hosts,
// then as many as are assigned already (first_part, 2 * first_part, 4 *, ...).
// (Capped at 2,000, each host waited less for its own part, but the whole
// wave reached its last host a second later: docs/benchmarks-history.md.)
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
    std::string name;
    soci::statement rows =
        OneShot(tx.sql(), "SELECT name FROM hosts WHERE removed <> 0", soci::into(name));
    rows.execute(false);
    while (rows.fetch()) removed.insert(name);
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
    std::string id = release.id, host;
    soci::statement rows = OneShot(tx.sql(),
                                   "SELECT DISTINCT host FROM deployments WHERE final = 0 AND "
                                   "release_id <> :r",
                                   soci::use(id), soci::into(host));
    rows.execute(false);
    while (rows.fetch()) busy.insert(host);
  }
  std::vector<DeploymentEnd> ends;
  for (const DeploymentRecord& d : made) {
    if (removed.contains(d.host)) {
      // A target removed since the rollout began: it counts as failed.
      ends.push_back({&d, DeploymentResult::kHostRemoved,
                      fmt::format("host {} was removed", d.host), nullptr});
      continue;
    }
    if (busy.contains(d.host)) {
      wakeups.hosts.push_back(d.host);
    } else {
      wakeups.assigned.push_back({d.host, d.ToAssignment()});
    }
  }
  FinishDeployments(tx, ends, now);
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

// Restores every host whose install succeeded (DecideRollback); ends the
// rollback once every install and rollback deployment is final.
void AdvanceRollback(Transaction& tx, const rel::Release& release, RolloutRow& row,
                     const std::vector<RolloutHost>& hosts, UnixSeconds now, Wakeups& wakeups) {
  using State = rel::HostRollback::State;
  const HostDeployments deployments = LoadHostDeployments(tx.sql(), release.id);
  std::vector<rel::HostRollback> states;
  states.reserve(hosts.size());
  for (const RolloutHost& h : hosts) {
    rel::HostRollback state{h.host, h.wave, State::kNeverMoved};
    auto install = deployments.install.find(h.host);
    auto rollback = deployments.rollback.find(h.host);
    if (install == deployments.install.end()) {
      state.state = State::kNeverMoved;
    } else if (!install->second.IsFinal()) {
      state.state = State::kInstalling;
    } else if (!Succeeded(install->second)) {
      state.state = State::kNotInstalled;
    } else if (rollback == deployments.rollback.end()) {
      state.state = State::kToRestore;
    } else if (!rollback->second.IsFinal()) {
      state.state = State::kRestoring;
    } else {
      state.state = rollback->second.result == DeploymentResult::kRolledBack
                        ? State::kRestored
                        : State::kRestoreFailed;
    }
    states.push_back(std::move(state));
  }
  const rel::RollbackDecision decision = rel::DecideRollback(states);
  if (!decision.to_restore.empty()) {
    if (auto package = FindPackage(tx.sql(), row.package_id)) {
      std::vector<NewDeployment> to_restore;
      for (const rel::HostRollback* h : decision.to_restore) {
        to_restore.push_back(NewDeployment{h->host, DeploymentKind::kRollback, h->wave});
      }
      for (const DeploymentRecord& d :
           CreateDeployments(tx, release, *package, to_restore, kProductionEnvironment, now)) {
        wakeups.hosts.push_back(d.host);
      }
    }
  }
  if (!decision.done) {
    row.waiting = decision.waiting;
    return;
  }
  if (CommitTransition(
          tx, release, rel::FinishRollback(release, kEngine, now, decision.note),
          {{"restored", decision.restored}, {"restore_failed", decision.restore_failed}})) {
    row.finished = now;
    row.waiting.clear();
  }
}

// What DecideRollout needs, from the rollout's row, its hosts and their
// deployments. The freeze is looked up for the hosts the decision concerns:
// the current wave's while it has hosts left to assign, else every target.
// What a snapshot takes from the release and the rollout's row alone.
rel::RolloutSnapshot SnapshotOf(const rel::Release& release, const RolloutRow& row,
                                UnixSeconds now) {
  rel::RolloutSnapshot s;
  s.release_id = release.id;
  s.state = release.state;
  s.golive = *release.plan.golive;
  s.window = release.ActiveWindow();
  s.freeze_override = release.freeze_override.has_value();
  s.waves = row.waves;
  s.current_wave = row.current_wave;
  s.wave_done_at = row.wave_done_at;
  s.gates_confirmed = row.gates_confirmed;
  s.accepted_wave = row.accepted_wave;
  s.aborted = row.aborted != 0;
  s.pause_kind = row.pause_kind;
  s.now = now;
  return s;
}

rel::RolloutSnapshot Snapshot(soci::session& sql, const rel::Release& release,
                              const RolloutRow& row, const std::vector<RolloutHost>& hosts,
                              const HostDeployments& deployments, UnixSeconds now) {
  rel::RolloutSnapshot s = SnapshotOf(release, row, now);
  s.targets = hosts.size();
  if (row.current_wave >= 0) s.wave = CountWave(hosts, deployments, row.current_wave);
  s.outcome = OutcomeOf(hosts, deployments);
  s.checks = WaveChecks(sql, release.id, s.golive.checks, row.current_wave, row.wave_done_at);
  if (!s.freeze_override) {
    const bool wave_only = s.current_wave >= 0 && s.wave.assigned < s.wave.hosts && !s.aborted;
    std::vector<std::string> concerned;
    for (const RolloutHost& h : hosts) {
      if (!wave_only || h.wave == row.current_wave) concerned.push_back(h.host);
    }
    s.freeze = FreezeOn(sql, concerned, now);
  }
  return s;
}

// Carries out a decision (DecideRollout) on the store. `wave_hosts` gives a
// wave's hosts and those already assigned, for kAssign. Returns the release
// as it now is when the decision resumed it (the caller decides again).
std::optional<rel::Release> Carry(Transaction& tx, const rel::Release& release, RolloutRow& row,
                                  const rel::RolloutDecision& d, const rel::RolloutSnapshot& s,
                                  const std::function<WaveHosts(long long)>& wave_hosts,
                                  const std::vector<RolloutHost>& hosts, UnixSeconds now,
                                  Wakeups& wakeups) {
  using Kind = rel::RolloutDecision::Kind;
  if (d.assigning_over) row.assigning = 0;
  if (d.wave_done) {
    row.wave_done_at = now;
    AuditEvent event("rollout.wave-done", "release", release.id);
    event.release_id = release.id;
    event.detail = {{"wave", row.current_wave + 1},
                    {"succeeded", s.wave.succeeded},
                    {"failed", s.wave.failed},
                    {"threshold", d.threshold}};
    tx.Audit(event);
  }
  const json over_threshold = {
      {"wave", row.current_wave + 1}, {"failed", s.wave.failed}, {"threshold", d.threshold}};
  switch (d.kind) {
    case Kind::kNothing:
      break;
    case Kind::kWait:
      row.waiting = d.waiting;
      break;
    case Kind::kAssign:
      AssignWave(tx, release, row, wave_hosts(d.wave), d.wave, now, wakeups);
      break;
    case Kind::kPause:
      if (CommitTransition(tx, release, rel::PauseRollout(release, kEngine, now, d.reason))) {
        row.pause_kind = d.pause_kind;
      }
      row.waiting = d.waiting;
      break;
    case Kind::kResume:
      if (auto resumed =
              CommitTransition(tx, release, rel::ResumeRollout(release, kEngine, now, d.reason))) {
        row.pause_kind.clear();
        return resumed;
      }
      break;
    case Kind::kHalt:
      if (CommitTransition(tx, release, rel::FinishRollout(release, kEngine, now, d.outcome),
                           over_threshold)) {
        row.waiting = d.waiting;
      }
      break;
    case Kind::kRollBack:
      if (auto rolling = CommitTransition(
              tx, release, rel::StartRollback(release, kEngine, now, d.reason), over_threshold)) {
        AdvanceRollback(tx, *rolling, row, hosts, now, wakeups);
      }
      break;
    case Kind::kFinish:
      if (CommitTransition(tx, release, rel::FinishRollout(release, kEngine, now, d.outcome))) {
        row.finished = now;
        row.waiting.clear();
      }
      break;
  }
  return std::nullopt;
}

// One step of a rollout in state deploying or paused, from everything the
// store holds of it. A resume is followed by the step of the resumed rollout.
void AdvanceFromStore(Transaction& tx, rel::Release release, RolloutRow& row,
                      const std::vector<RolloutHost>& hosts, UnixSeconds now, Wakeups& wakeups) {
  for (int round = 0; round < 2; ++round) {
    const HostDeployments deployments = LoadHostDeployments(tx.sql(), release.id);
    const rel::RolloutSnapshot snapshot = Snapshot(tx.sql(), release, row, hosts, deployments, now);
    const rel::RolloutDecision decision = rel::DecideRollout(snapshot);
    auto wave_hosts = [&](long long wave) { return WaveOf(hosts, deployments, wave); };
    auto resumed = Carry(tx, release, row, decision, snapshot, wave_hosts, hosts, now, wakeups);
    if (!resumed) return;
    release = std::move(*resumed);
  }
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
  auto waves = rel::RolloutWaves(release.plan.golive->waves, hosts.size(),
                                 release.plan.golive->max_failures);
  if (!waves) {
    return std::unexpected(
        waves.error().WithContext(fmt::format("cannot start release {}", release.id)));
  }
  // Stored as two lists (rollout_rows.cpp reads them back).
  std::vector<std::uint64_t> sizes, thresholds;
  for (const rel::Wave& wave : *waves) {
    sizes.push_back(wave.through);
    thresholds.push_back(wave.max_failures);
  }
  std::string key = release.id, package_id = package.id, sizes_text = json(sizes).dump(),
              thresholds_text = json(thresholds).dump(), empty;
  long long started = now, minus_one = -1, zero = 0,
            part = static_cast<long long>(std::max<std::size_t>(first_part, 1));
  // What JoinLateHost needs, fixed with the targets (the plan is frozen by then).
  long long late_joiners = release.plan.late_joiners ? 1 : 0;
  std::string selector = release.plan.targets ? release.plan.targets->ToString() : std::string(),
              max_failures = release.plan.golive->max_failures.ToString();
  tx.sql() << "INSERT INTO rollouts (release_id, package_id, wave_sizes, thresholds, "
              "current_wave, wave_done_at, gates_confirmed, accepted_wave, aborted, pause_kind, "
              "waiting, started, finished, first_part, late_joiners, selector, max_failures) "
              "VALUES (:r, :p, :s, :t, :c, :d, :g, :a, :ab, :pk, :w, :st, :f, :fp, :lj, :sel, "
              ":mf)",
      soci::use(key), soci::use(package_id), soci::use(sizes_text), soci::use(thresholds_text),
      soci::use(minus_one), soci::use(zero), soci::use(zero), soci::use(minus_one), soci::use(zero),
      soci::use(empty), soci::use(empty), soci::use(started), soci::use(zero), soci::use(part),
      soci::use(late_joiners), soci::use(selector), soci::use(max_failures);
  // Every target in one statement, its installed version (none: "") read in
  // the same: a statement per host was a round trip each on PostgreSQL.
  json rows = json::array();
  std::size_t wave = 0;
  for (std::size_t position = 0; position < hosts.size(); ++position) {
    while (position >= (*waves)[wave].through) ++wave;
    rows.push_back({{"p", position}, {"h", hosts[position]}, {"w", wave}});
  }
  static constexpr JsonColumn kRows[] = {{"p", true}, {"h"}, {"w", true}};
  std::string rows_text = rows.dump(), app = package.name;
  tx.sql() << fmt::format(
      "INSERT INTO rollout_hosts (release_id, position, host, wave, from_version) "
      "SELECT :r, t.p, t.h, t.w, COALESCE(a.current_version, '') FROM {} LEFT JOIN "
      "host_apps a ON a.host = t.h AND a.app = :a",
      JsonRowsSql(BackendOf(tx.sql()), "rows", kRows, "t")),
      soci::use(key, "r"), soci::use(rows_text, "rows"), soci::use(app, "a");
  AuditEvent event("rollout.begin", "release", release.id);
  event.release_id = release.id;
  event.detail = {{"hosts", hosts}, {"wave_sizes", sizes}, {"thresholds", thresholds}};
  tx.Audit(event);
  AdvanceRollout(tx, release.id, now, options, wakeups);
  return {};
}

void JoinLateHost(Transaction& tx, const std::string& host, const Labels& labels, UnixSeconds now) {
  struct Candidate {
    std::string release_id, selector, max_failures;
  };
  std::vector<Candidate> candidates;
  {
    // One read, usually of nothing: the rollouts going on that take late joiners.
    Candidate c;
    soci::statement rows =
        OneShot(tx.sql(),
                "SELECT o.release_id, o.selector, o.max_failures FROM rollouts o "
                "JOIN releases r ON r.id = o.release_id WHERE o.late_joiners <> 0 "
                "AND o.finished = 0 AND o.aborted = 0 AND r.state IN ('deploying', "
                "'paused') ORDER BY r.seq",
                soci::into(c.release_id), soci::into(c.selector), soci::into(c.max_failures));
    rows.execute(false);
    while (rows.fetch()) candidates.push_back(c);
  }
  for (const Candidate& c : candidates) {
    const platform::log::Scope scope(platform::log::Fields().Release(c.release_id));
    auto selector = rel::TargetSelector::Parse(c.selector);
    auto max_failures = rel::ParseHostAmount(c.max_failures, true);
    if (!selector || !max_failures) {
      spdlog::error("rollout engine: release {}: cannot read its targets {} or max_failures {}",
                    c.release_id, c.selector, c.max_failures);
      continue;
    }
    // The targets as `release start` chose them (rollout_api.cpp).
    LabelSelector wanted = selector->labels;
    wanted.emplace_back("env", std::string(kProductionEnvironment));
    if (!LabelsMatch(labels, wanted)) continue;
    std::string key = c.release_id, name = host;
    long long in_rollout = 0;
    tx.sql() << "SELECT COUNT(*) FROM rollout_hosts WHERE release_id = :r AND host = :h",
        soci::use(key), soci::use(name), soci::into(in_rollout);
    if (in_rollout > 0) continue;  // a target enrolled again: it is in already
    auto row = LoadRollout(tx.sql(), c.release_id);
    if (!row) continue;
    auto package = FindPackage(tx.sql(), row->package_id);
    if (!package) {
      spdlog::error("rollout engine: release {}: {}", c.release_id, package.error().message());
      continue;
    }
    const rel::LateJoin join = rel::JoinLate(row->waves, row->current_wave, *max_failures);
    row->waves = join.waves;
    SaveWaves(tx.sql(), *row);
    long long position = 0, wave = static_cast<long long>(join.wave), joined = now;
    soci::indicator last = soci::i_null;
    tx.sql() << "SELECT MAX(position) FROM rollout_hosts WHERE release_id = :r", soci::use(key),
        soci::into(position, last);
    position = last == soci::i_ok ? position + 1 : 0;
    std::string app = package->name, from;
    soci::indicator installed = soci::i_null;
    tx.sql() << "SELECT current_version FROM host_apps WHERE host = :h AND app = :a",
        soci::use(name), soci::use(app), soci::into(from, installed);
    if (!tx.sql().got_data() || installed != soci::i_ok) from.clear();
    tx.sql() << "INSERT INTO rollout_hosts (release_id, position, host, wave, from_version, "
                "joined) VALUES (:r, :p, :h, :w, :f, :j)",
        soci::use(key), soci::use(position), soci::use(name), soci::use(wave), soci::use(from),
        soci::use(joined);
    AuditEvent event("rollout.late-join", "release", c.release_id);
    event.release_id = c.release_id;
    event.detail = {{"host", host},
                    {"wave", join.wave + 1},
                    {"of", row->wave_count()},
                    {"catch_up", join.catch_up},
                    {"wave_hosts", row->waves[join.wave].hosts},
                    {"threshold", row->waves[join.wave].max_failures}};
    tx.Audit(event);
    spdlog::info("host {} joined release {} late, in wave {} of {}{}", host, c.release_id,
                 join.wave + 1, row->wave_count(), join.catch_up ? " (a catch-up wave)" : "");
    const std::string& id = c.release_id;
    tx.Raise(ReleaseProgressed{id});
  }
}

Result<std::vector<std::string>> RetryFailedHosts(Transaction& tx, const rel::Release& release,
                                                  const std::vector<std::string>& only,
                                                  UnixSeconds now, Wakeups& wakeups) {
  auto row = LoadRollout(tx, release.id);
  if (!row || row->current_wave < 0) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("release {} has no production rollout to retry", release.id));
  }
  if (row->aborted != 0) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("the rollout of release {} was aborted by a person: `fabu release "
                            "resume {}` takes the abort back and goes on with the wave it stopped",
                            release.id, release.id));
  }
  const long long wave = row->current_wave;
  // A rollout that ended (deployed, its failures within the thresholds):
  // the failed hosts of every wave; one that halted: those of its wave.
  const bool ended = row->finished != 0;
  const HostDeployments deployments = LoadHostDeployments(tx.sql(), release.id);
  std::map<std::string, long long> wave_of;
  std::vector<std::string> failed;
  for (const RolloutHost& h : LoadRolloutHosts(tx.sql(), release.id)) {
    wave_of[h.host] = h.wave;
    if (h.wave != wave && !ended) continue;
    auto it = deployments.install.find(h.host);
    if (it != deployments.install.end() && it->second.IsFinal() && !it->second.Succeeded()) {
      failed.push_back(h.host);
    }
  }
  std::vector<std::string> chosen = failed;
  if (!only.empty()) {
    chosen.clear();
    for (const std::string& host : only) {
      if (std::find(failed.begin(), failed.end(), host) != failed.end()) {
        if (std::find(chosen.begin(), chosen.end(), host) == chosen.end()) chosen.push_back(host);
        continue;
      }
      auto in = wave_of.find(host);
      std::string why;
      if (in == wave_of.end()) {
        why = "is not a target of this rollout";
      } else if (in->second != wave && !ended) {
        why = fmt::format("is in wave {}, not in wave {} that failed", in->second + 1, wave + 1);
      } else {
        auto it = deployments.install.find(host);
        why = it != deployments.install.end() && it->second.Succeeded()
                  ? "succeeded: a host that succeeded is not deployed again"
                  : "has not failed";
      }
      return Fail(ErrorCode::kInvalidArgument, fmt::format("host {} {}", host, why));
    }
  }
  if (chosen.empty()) {
    return Fail(ErrorCode::kFailedPrecondition,
                ended ? fmt::format("release {} has no failed host to deploy again", release.id)
                      : fmt::format("wave {} of release {} has no failed host to deploy again",
                                    wave + 1, release.id));
  }
  auto package = FindPackage(tx.sql(), row->package_id);
  if (!package) return std::unexpected(package.error());
  std::vector<NewDeployment> targets;
  for (const std::string& host : chosen) {
    targets.push_back(NewDeployment{host, DeploymentKind::kInstall, wave_of.at(host)});
  }
  auto made = CreateDeployments(tx, release, *package, targets, kProductionEnvironment, now);
  std::vector<std::string> retried;
  for (const DeploymentRecord& d : made) {
    retried.push_back(d.host);
    wakeups.hosts.push_back(d.host);
  }
  if (retried.size() != chosen.size()) {
    return Fail(ErrorCode::kConflict,
                fmt::format("{} of the {} failed host(s) have an unfinished deployment of release "
                            "{} already",
                            chosen.size() - retried.size(), chosen.size(), release.id));
  }
  // The wave the rollout stands at is judged again (its end counted afresh,
  // its checks measured again) when one of its hosts is retried; after the
  // end, a retry of earlier waves' hosts leaves the last wave's verdict.
  const bool current_retried = std::any_of(
      retried.begin(), retried.end(), [&](const auto& host) { return wave_of.at(host) == wave; });
  if (current_retried) row->wave_done_at = 0;
  row->finished = 0;
  row->pause_kind.clear();
  row->waiting = ended ? fmt::format("{} failed host(s) deployed again after the rollout ended",
                                     retried.size())
                       : fmt::format("wave {} of {}: {} failed host(s) deployed again", wave + 1,
                                     row->wave_count(), retried.size());
  SaveRollout(tx.sql(), *row);
  AuditEvent event("rollout.retry", "release", release.id);
  event.release_id = release.id;
  event.detail = ended ? json{{"hosts", retried}, {"after_end", true}}
                       : json{{"wave", wave + 1}, {"hosts", retried}};
  tx.Audit(event);
  return retried;
}

void AdvanceRollout(Transaction& tx, const std::string& release_id, UnixSeconds now,
                    const rel::PlanParseOptions& options, Wakeups& wakeups, NextPart next_part) {
  const platform::log::Scope scope(platform::log::Fields().Release(release_id));
  auto row = LoadRollout(tx, release_id);
  if (!row || row->finished != 0) return;
  // The sweep is making the current wave's next part (it was woken).
  if (row->assigning != 0 && next_part == NextPart::kLeaveToTheSweep) return;
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
    WaveHosts wave = LoadWaveHosts(tx.sql(), release_id, row->current_wave);
    if (wave.assigned.size() < wave.hosts.size()) {
      rel::RolloutSnapshot snapshot = SnapshotOf(*release, *row, now);
      snapshot.wave.hosts = wave.hosts.size();
      snapshot.wave.assigned = wave.assigned.size();
      if (!release->freeze_override) snapshot.freeze = FreezeOn(tx.sql(), wave.hosts, now);
      const rel::RolloutDecision decision = rel::DecideRollout(snapshot);
      Carry(
          tx, *release, *row, decision, snapshot, [&](long long) { return wave; }, {}, now,
          wakeups);
      SaveRollout(tx.sql(), *row);
      return;
    }
  }
  if (row->assigning == 0 &&
      StoredReleaseState(tx, release_id) == rel::ReleaseStateName(rel::ReleaseState::kDeploying)) {
    // Most calls come from one host's final event while its wave is still
    // running: answer those from one indexed probe, not from every row of
    // the rollout (which would make a wave of N hosts cost N^2), and without
    // reading (parsing) the whole release. (Not for a wave aborted while it
    // was assigned in parts: the decision clears `assigning`.)
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
    case rel::ReleaseState::kPaused:
      AdvanceFromStore(tx, *release, *row, hosts, now, wakeups);
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

}  // namespace fabu::coordinator
