#include "coordinator/deploy/deployments.hpp"

#include <fmt/format.h>
#include <soci/soci.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>
#include <map>
#include <set>
#include <unordered_map>

#include "coordinator/cmdb/cmdb.hpp"
#include "coordinator/common/canonical_json.hpp"
#include "coordinator/common/clock.hpp"
#include "coordinator/common/digest.hpp"
#include "coordinator/deploy/rollout_engine.hpp"
#include "coordinator/server/wakeup_hub.hpp"
#include "coordinator/store/release_records.hpp"

namespace fabu::coordinator {
namespace {

using nlohmann::json;
using protocol::Step;

constexpr const char* kColumns =
    "id, release_id, host, attempt, environment, kind, app, version, package_id, package_size, "
    "package_url, host_timeout, step, final, result, message, last_sequence, created, started, "
    "finished, deadline, wave, from_version, observe, observe_interval";

// SOCI binds plain types; this is one deployments row.
struct Row {
  std::string id, release_id, host, environment, kind, app, version, package_id, package_url, step,
      result, message, from_version;
  long long attempt = 0, package_size = 0, host_timeout = 0, final = 0, last_sequence = 0,
            created = 0, started = 0, finished = 0, deadline = 0, wave = -1, observe = 0,
            observe_interval = 0;

  void Into(soci::statement& st) {
    st.exchange(soci::into(id));
    st.exchange(soci::into(release_id));
    st.exchange(soci::into(host));
    st.exchange(soci::into(attempt));
    st.exchange(soci::into(environment));
    st.exchange(soci::into(kind));
    st.exchange(soci::into(app));
    st.exchange(soci::into(version));
    st.exchange(soci::into(package_id));
    st.exchange(soci::into(package_size));
    st.exchange(soci::into(package_url));
    st.exchange(soci::into(host_timeout));
    st.exchange(soci::into(step));
    st.exchange(soci::into(final));
    st.exchange(soci::into(result));
    st.exchange(soci::into(message));
    st.exchange(soci::into(last_sequence));
    st.exchange(soci::into(created));
    st.exchange(soci::into(started));
    st.exchange(soci::into(finished));
    st.exchange(soci::into(deadline));
    st.exchange(soci::into(wave));
    st.exchange(soci::into(from_version));
    st.exchange(soci::into(observe));
    st.exchange(soci::into(observe_interval));
  }

  DeploymentRecord ToRecord() const {
    DeploymentRecord d;
    d.id = id;
    d.release_id = release_id;
    d.host = host;
    d.attempt = attempt;
    d.environment = environment;
    d.kind = protocol::ParseDeploymentKind(kind).value_or(protocol::DeploymentKind::kInstall);
    d.app = app;
    d.version = version;
    d.package_id = package_id;
    d.package_size = static_cast<std::uint64_t>(package_size);
    d.package_url = package_url;
    d.host_timeout_seconds = host_timeout;
    d.step = step;
    d.final = final != 0;
    d.result = result;
    d.message = message;
    d.last_sequence = static_cast<std::uint64_t>(last_sequence);
    d.created = created;
    d.started = started;
    d.finished = finished;
    d.deadline = deadline;
    d.wave = wave;
    d.from_version = from_version;
    d.observe_seconds = observe;
    d.observe_interval_seconds = observe_interval;
    return d;
  }
};

// Runs `sql_text` (selecting kColumns) with `bind` adding the uses.
template <typename Bind>
std::vector<DeploymentRecord> Query(soci::session& sql, const std::string& sql_text, Bind bind) {
  Row row;
  soci::statement st(sql);
  row.Into(st);
  bind(st);
  st.alloc();
  st.prepare(sql_text);
  st.define_and_bind();
  st.execute(false);
  std::vector<DeploymentRecord> out;
  while (st.fetch()) out.push_back(row.ToRecord());
  return out;
}

// The statements an agent's events and a wave's assignments run per event
// or per host, prepared once per store session (StatementCache).
struct FindStatement {
  explicit FindStatement(soci::session& sql) : st(sql) {
    row.Into(st);
    st.exchange(soci::use(key, "id"));
    st.alloc();
    st.prepare(fmt::format("SELECT {} FROM deployments WHERE id = :id", kColumns));
    st.define_and_bind();
  }
  Row row;
  std::string key;
  soci::statement st;
};

std::optional<DeploymentRecord> FindDeployment(Transaction& tx, const std::string& id) {
  FindStatement& find = tx.Cached<FindStatement>();
  find.key = id;
  find.st.execute(true);
  std::optional<DeploymentRecord> found;
  if (find.st.got_data()) found = find.row.ToRecord();
  StatementCache::Finish(find.st);
  return found;
}

struct InsertEventStatement {
  explicit InsertEventStatement(soci::session& sql)
      : st((sql.prepare << "INSERT INTO deployment_events (deployment, sequence, step, "
                           "failed_step, app, version, message, output, time, received) VALUES "
                           "(:d, :s, :st, :f, :a, :v, :m, :o, :t, :r) "
                           "ON CONFLICT (deployment, sequence) DO NOTHING",
            soci::use(deployment), soci::use(sequence), soci::use(step), soci::use(failed_step),
            soci::use(app), soci::use(version), soci::use(message), soci::use(output),
            soci::use(time), soci::use(received))) {}
  std::string deployment, step, failed_step, app, version, message, output, received;
  long long sequence = 0, time = 0;
  soci::statement st;
};

struct HighestStatement {
  explicit HighestStatement(soci::session& sql)
      : st((sql.prepare << "SELECT MAX(sequence) FROM deployment_events WHERE deployment = :d",
            soci::use(key), soci::into(highest, ind))) {}
  std::string key;
  long long highest = 0;
  soci::indicator ind = soci::i_null;
  soci::statement st;
};

struct LatestEventStatement {
  explicit LatestEventStatement(soci::session& sql)
      : st((sql.prepare << "SELECT step, failed_step, message FROM deployment_events WHERE "
                           "deployment = :d AND sequence = :s",
            soci::use(key), soci::use(sequence), soci::into(step), soci::into(failed_step),
            soci::into(message))) {}
  std::string key, step, failed_step, message;
  long long sequence = 0;
  soci::statement st;
};

// The latest event of a deployment saying something.
struct LatestMessageStatement {
  explicit LatestMessageStatement(soci::session& sql)
      : st((sql.prepare << "SELECT message FROM deployment_events WHERE deployment = :d AND "
                           "message <> '' ORDER BY sequence DESC LIMIT 1",
            soci::use(key), soci::into(message, indicator))) {}
  std::string key, message;
  soci::indicator indicator = soci::i_null;
  soci::statement st;
};

struct UpdateStepStatement {
  explicit UpdateStepStatement(soci::session& sql)
      : st((sql.prepare << "UPDATE deployments SET step = :st, message = :m, last_sequence = :s, "
                           "started = :b WHERE id = :id",
            soci::use(step), soci::use(message), soci::use(sequence), soci::use(started),
            soci::use(key))) {}
  std::string step, message, key;
  long long sequence = 0, started = 0;
  soci::statement st;
};

// How many deployments of a release a host has, and how many are unfinished.
struct AttemptsStatement {
  explicit AttemptsStatement(soci::session& sql)
      : st((sql.prepare << "SELECT COUNT(*), COALESCE(SUM(CASE WHEN final = 0 THEN 1 ELSE 0 END), "
                           "0) FROM deployments WHERE release_id = :r AND host = :h",
            soci::use(release_id), soci::use(host), soci::into(count), soci::into(open))) {}
  std::string release_id, host;
  long long count = 0, open = 0;
  soci::statement st;
};

struct InstalledStatement {
  explicit InstalledStatement(soci::session& sql)
      : st((sql.prepare << "SELECT current_version FROM host_apps WHERE host = :h AND app = :a",
            soci::use(host), soci::use(app), soci::into(version, ind))) {}
  std::string host, app, version;
  soci::indicator ind = soci::i_null;
  soci::statement st;
};

// What CreateDeployments reads of each target before making its deployment:
// its attempts at the release and the version of the app it has installed.
// One read per host for a few targets; for a wave, one read of each for all
// of them (a wave may hold tens of thousands).
class TargetFacts {
 public:
  struct Attempts {
    long long count = 0, open = 0;
  };

  TargetFacts(Transaction& tx, const std::string& release_id, const std::string& app,
              std::size_t targets)
      : tx_(tx), release_id_(release_id), app_(app), all_(targets >= kReadAllFrom) {
    if (!all_) return;
    std::string host, version;
    Attempts a;
    soci::statement attempts =
        (tx.sql().prepare << "SELECT host, COUNT(*), COALESCE(SUM(CASE WHEN final = 0 THEN 1 "
                             "ELSE 0 END), 0) FROM deployments WHERE release_id = :r GROUP BY "
                             "host",
         soci::use(release_id_), soci::into(host), soci::into(a.count), soci::into(a.open));
    attempts.execute(false);
    while (attempts.fetch()) attempts_.emplace(host, a);
    soci::statement installed =
        (tx.sql().prepare << "SELECT host, current_version FROM host_apps WHERE app = :a",
         soci::use(app_), soci::into(host), soci::into(version));
    installed.execute(false);
    while (installed.fetch()) installed_.emplace(host, version);
  }

  Attempts AttemptsOf(const std::string& host) {
    if (all_) {
      auto it = attempts_.find(host);
      return it == attempts_.end() ? Attempts{} : it->second;
    }
    AttemptsStatement& s = tx_.Cached<AttemptsStatement>();
    s.release_id = release_id_;
    s.host = host;
    s.st.execute(true);
    const Attempts a{s.count, s.open};
    StatementCache::Finish(s.st);
    return a;
  }

  // Counts the deployment just made for `host` (a host named twice gets one).
  void Made(const std::string& host) {
    if (!all_) return;
    Attempts& a = attempts_[host];
    ++a.count;
    ++a.open;
  }

  // "" when the host reported no version of the app.
  std::string InstalledOf(const std::string& host) {
    if (all_) {
      auto it = installed_.find(host);
      return it == installed_.end() ? std::string() : it->second;
    }
    InstalledStatement& s = tx_.Cached<InstalledStatement>();
    s.host = host;
    s.app = app_;
    s.ind = soci::i_null;
    s.st.execute(true);
    std::string version = s.st.got_data() && s.ind == soci::i_ok ? s.version : std::string();
    StatementCache::Finish(s.st);
    return version;
  }

 private:
  static constexpr std::size_t kReadAllFrom = 64;
  Transaction& tx_;
  std::string release_id_, app_;
  bool all_;
  std::unordered_map<std::string, Attempts> attempts_;
  std::unordered_map<std::string, std::string> installed_;
};

struct InsertDeploymentStatement {
  explicit InsertDeploymentStatement(soci::session& sql)
      : st((sql.prepare
                << "INSERT INTO deployments (id, release_id, host, attempt, environment, kind, "
                   "app, version, package_id, package_size, package_url, host_timeout, step, "
                   "final, result, message, last_sequence, created, started, finished, deadline, "
                   "wave, from_version, observe, observe_interval) VALUES "
                   "(:id, :r, :h, :a, :e, :k, :app, :v, :p, :s, :u, :t, :step, :z1, :res, :m, "
                   ":z2, :c, :z3, :z4, :d, :w, :fv, :o, :oi)",
            soci::use(id), soci::use(release_id), soci::use(host), soci::use(attempt),
            soci::use(environment), soci::use(kind), soci::use(app), soci::use(version),
            soci::use(package_id), soci::use(size), soci::use(package_url), soci::use(host_timeout),
            soci::use(step), soci::use(zero), soci::use(empty), soci::use(empty), soci::use(zero),
            soci::use(created), soci::use(zero), soci::use(zero), soci::use(deadline),
            soci::use(wave), soci::use(from_version), soci::use(observe),
            soci::use(observe_interval))) {}
  std::string id, release_id, host, environment, kind, app, version, package_id, package_url, step,
      from_version, empty;
  long long attempt = 0, size = 0, host_timeout = 0, created = 0, deadline = 0, zero = 0, wave = 0,
            observe = 0, observe_interval = 0;
  soci::statement st;
};

json TimeOrNull(UnixSeconds at) {
  return at > 0 ? json(protocol::FormatRfc3339Utc(at)) : json(nullptr);
}

}  // namespace

void FinishDeployment(Transaction& tx, const DeploymentRecord& d, std::string_view result,
                      const std::string& message, UnixSeconds now) {
  std::string id = d.id, res(result), msg = message;
  long long finished = now;
  tx.sql() << "UPDATE deployments SET final = 1, result = :r, message = :m, finished = :f "
              "WHERE id = :id",
      soci::use(res), soci::use(msg), soci::use(finished), soci::use(id);
  AuditEvent event("deployment.finish", "deployment", d.id);
  event.release_id = d.release_id;
  event.detail = {{"host", d.host}, {"result", res}, {"message", msg}, {"step", d.step}};
  tx.Audit(event);
  // The upgrade record (and its outbox messages) of a production deployment
  // commit with its end (cmdb.hpp).
  RecordDeploymentEnd(tx, d, result, now);
}

std::optional<std::string_view> FinalResultOf(Step step, std::optional<Step> failed_step) {
  switch (step) {
    case Step::kSucceeded:
      return kResultSucceeded;
    case Step::kRolledBack:
      return kResultRolledBack;
    case Step::kRollbackFailed:
      return kResultRollbackFailed;
    case Step::kFailed:
      // Without the failed step we cannot know nothing was switched: wait
      // for the rollback report (or the timeout).
      if (failed_step && protocol::IsBeforeActivating(*failed_step)) return kResultFailed;
      return std::nullopt;
    case Step::kObserving:
      // Still being watched: the host's health check may yet fail.
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

protocol::Assignment DeploymentRecord::ToAssignment() const {
  protocol::Assignment a;
  a.deployment = id;
  a.release = release_id;
  a.kind = kind;
  a.app = app;
  a.version = version;
  a.package_id = package_id;
  a.package_size = package_size;
  a.package_url = package_url;
  a.host_timeout_seconds = host_timeout_seconds;
  a.observe_seconds = observe_seconds;
  a.observe_interval_seconds = observe_interval_seconds;
  return a;
}

json DeploymentRecord::ToJson() const {
  return {{"deployment", id},
          {"release", release_id},
          {"host", host},
          {"attempt", attempt},
          {"environment", environment},
          {"kind", protocol::DeploymentKindName(kind)},
          {"app", app},
          {"version", version},
          {"package_id", package_id},
          {"step", step},
          {"final", final},
          {"result", result},
          {"message", message},
          {"last_sequence", last_sequence},
          {"created", TimeOrNull(created)},
          {"started", TimeOrNull(started)},
          {"finished", TimeOrNull(finished)},
          {"deadline", TimeOrNull(deadline)},
          {"wave", wave >= 0 ? json(wave + 1) : json(nullptr)},
          {"from_version", from_version},
          {"observe_seconds", observe_seconds}};
}

void WakeHosts(WakeupHub& hub, const Wakeups& wakeups) {
  // A wave with parts left, started outside the sweep: hold the hub before
  // its first part is answered, until the sweep has assigned the rest (the
  // sweep's own calls have taken rollouts_to_go_on out).
  if (!wakeups.rollouts_to_go_on.empty()) hub.PassHold();
  // A host named more than once (two rollouts in one sweep, say) may have
  // several unfinished deployments: it looks again and finds the oldest.
  std::unordered_map<std::string_view, int> named;
  for (const Wakeups::Assigned& a : wakeups.assigned) ++named[a.host];
  for (const std::string& host : wakeups.hosts) ++named[host];
  // Answers are made a chunk at a time, and the chunk's wakeups sent
  // together: they reach the I/O thread at once, which sends them before it
  // reads the next requests (the steps of the hosts answered first), while
  // the next chunk is made. (All answers first delayed the whole wave by the
  // time to make them: 17,910 took 76 ms under perf.)
  constexpr std::size_t kChunk = 256;
  std::vector<std::pair<std::string, WakeupHub::Answer>> chunk;
  chunk.reserve(kChunk);
  auto send = [&] {
    for (const auto& [key, answer] : chunk) hub.Notify(key, answer);
    chunk.clear();
  };
  for (const Wakeups::Assigned& a : wakeups.assigned) {
    WakeupHub::Answer answer;
    if (named[a.host] == 1) {
      answer = std::make_shared<const std::string>(
          protocol::AssignmentResponseToJson(a.assignment).dump());
    }
    chunk.emplace_back(WakeupHub::HostKey(a.host), std::move(answer));
    if (chunk.size() == kChunk) send();
  }
  for (const std::string& host : wakeups.hosts) {
    chunk.emplace_back(WakeupHub::HostKey(host), nullptr);
  }
  if (!wakeups.rollouts_to_go_on.empty()) {
    chunk.emplace_back(std::string(WakeupHub::kSweepKey), nullptr);
  }
  send();
}

namespace {

void WriteTimeOrNull(CanonicalJsonWriter& out, std::string_view key, UnixSeconds at) {
  if (at > 0) {
    out.String(key, protocol::FormatRfc3339Utc(at));
  } else {
    out.Null(key);
  }
}

}  // namespace

// ToJson's keys in nlohmann's (byte) order.
std::string DeploymentRecord::Digest() const {
  // The keys, quotes, colons and commas, numbers, four times, and the strings.
  constexpr std::size_t kFraming = 512;
  CanonicalJsonWriter out(kFraming + id.size() + release_id.size() + host.size() +
                          environment.size() + app.size() + version.size() + package_id.size() +
                          step.size() + result.size() + message.size() + from_version.size());
  out.String("app", app);
  out.Number("attempt", attempt);
  WriteTimeOrNull(out, "created", created);
  WriteTimeOrNull(out, "deadline", deadline);
  out.String("deployment", id);
  out.String("environment", environment);
  out.Bool("final", final);
  WriteTimeOrNull(out, "finished", finished);
  out.String("from_version", from_version);
  out.String("host", host);
  out.String("kind", protocol::DeploymentKindName(kind));
  out.Number("last_sequence", last_sequence);
  out.String("message", message);
  out.Number("observe_seconds", observe_seconds);
  out.String("package_id", package_id);
  out.String("release", release_id);
  out.String("result", result);
  WriteTimeOrNull(out, "started", started);
  out.String("step", step);
  out.String("version", version);
  if (wave >= 0) {
    out.Number("wave", wave + 1);
  } else {
    out.Null("wave");
  }
  return Sha256Hex(out.Finish());
}

std::vector<DeploymentRecord> CreateDeployments(Transaction& tx, const release::Release& release,
                                                const StoredPackage& package,
                                                const std::vector<NewDeployment>& hosts,
                                                std::string_view environment, UnixSeconds now) {
  const std::int64_t timeout =
      release.plan.golive ? release.plan.golive->host_timeout_seconds : kDefaultHostTimeoutSeconds;
  const bool observed = release.plan.golive && environment == kProductionEnvironment;
  std::vector<DeploymentRecord> made;
  TargetFacts facts(tx, release.id, package.name, hosts.size());
  for (const NewDeployment& target : hosts) {
    const TargetFacts::Attempts attempts = facts.AttemptsOf(target.host);
    // Never two unfinished deployments of a release on a host.
    if (attempts.open > 0) continue;
    const bool install = target.kind == protocol::DeploymentKind::kInstall;
    DeploymentRecord d;
    d.attempt = attempts.count + 1;
    // Only [A-Za-z0-9.-]: safe as a file name on the agent. Unambiguous
    // because release ids are R-<digits> and the attempt is digits.
    d.id = fmt::format("{}-{}-{}", release.id, d.attempt, target.host);
    d.release_id = release.id;
    d.host = target.host;
    d.environment = std::string(environment);
    d.kind = target.kind;
    d.app = package.name;
    if (install) {
      d.version = package.version;
      d.package_id = package.id;
      d.package_size = package.size;
      d.package_url = std::string(protocol::kAgentPackagesPath) + package.id;
      if (observed) {
        d.observe_seconds = release.plan.golive->observe_seconds;
        d.observe_interval_seconds = release.plan.golive->observe_interval_seconds;
      }
    }
    d.host_timeout_seconds = timeout;
    d.step = std::string(protocol::StepName(Step::kAssigned));
    d.created = now;
    // The agent observes before it reports success: give it that long too.
    d.deadline = timeout > 0 ? now + timeout + d.observe_seconds : 0;
    d.wave = target.wave;
    d.from_version = facts.InstalledOf(d.host);
    InsertDeploymentStatement& insert = tx.Cached<InsertDeploymentStatement>();
    insert.id = d.id;
    insert.release_id = d.release_id;
    insert.host = d.host;
    insert.attempt = d.attempt;
    insert.environment = d.environment;
    insert.kind = protocol::DeploymentKindName(d.kind);
    insert.app = d.app;
    insert.version = d.version;
    insert.package_id = d.package_id;
    insert.size = static_cast<long long>(d.package_size);
    insert.package_url = d.package_url;
    insert.host_timeout = d.host_timeout_seconds;
    insert.step = d.step;
    insert.created = d.created;
    insert.deadline = d.deadline;
    insert.wave = d.wave;
    insert.from_version = d.from_version;
    insert.observe = d.observe_seconds;
    insert.observe_interval = d.observe_interval_seconds;
    insert.st.execute(true);
    AuditEvent event("deployment.create", "deployment", d.id);
    event.release_id = release.id;
    event.after_sha256 = d.Digest();
    tx.Audit(event);
    facts.Made(d.host);
    made.push_back(std::move(d));
  }
  return made;
}

std::vector<DeploymentRecord> CreateDeployments(Transaction& tx, const release::Release& release,
                                                const StoredPackage& package,
                                                const std::vector<std::string>& hosts,
                                                std::string_view environment, UnixSeconds now) {
  std::vector<NewDeployment> targets;
  for (const std::string& host : hosts) targets.push_back(NewDeployment{host});
  return CreateDeployments(tx, release, package, targets, environment, now);
}

std::optional<DeploymentRecord> OpenAssignment(soci::session& sql, std::string_view host) {
  std::string key(host);
  auto open = Query(sql,
                    fmt::format("SELECT {} FROM deployments WHERE host = :h AND final = 0 "
                                "ORDER BY created, id LIMIT 1",
                                kColumns),
                    [&](soci::statement& st) { st.exchange(soci::use(key, "h")); });
  if (open.empty()) return std::nullopt;
  return open.front();
}

namespace {

struct OpenAssignmentStatement {
  explicit OpenAssignmentStatement(soci::session& sql) : st(sql) {
    row.Into(st);
    st.exchange(soci::use(key, "h"));
    st.alloc();
    st.prepare(
        fmt::format("SELECT {} FROM deployments WHERE host = :h AND final = 0 "
                    "ORDER BY created, id LIMIT 1",
                    kColumns));
    st.define_and_bind();
  }
  Row row;
  std::string key;
  soci::statement st;
};

}  // namespace

std::optional<DeploymentRecord> OpenAssignment(soci::session& sql, StatementCache& statements,
                                               std::string_view host) {
  OpenAssignmentStatement& open = statements.Get<OpenAssignmentStatement>(sql);
  open.key = host;
  open.st.execute(true);
  std::optional<DeploymentRecord> found;
  if (open.st.got_data()) found = open.row.ToRecord();
  StatementCache::Finish(open.st);
  return found;
}

std::vector<DeploymentRecord> ListDeployments(soci::session& sql, std::string_view release_id) {
  std::string key(release_id);
  return Query(sql,
               fmt::format("SELECT {} FROM deployments WHERE release_id = :r ORDER BY host, "
                           "attempt",
                           kColumns),
               [&](soci::statement& st) { st.exchange(soci::use(key, "r")); });
}

bool HostHasPackage(soci::session& sql, std::string_view host, std::string_view package_id) {
  std::string h(host), p(package_id);
  long long count = 0;
  sql << "SELECT COUNT(*) FROM deployments WHERE host = :h AND package_id = :p", soci::use(h),
      soci::use(p), soci::into(count);
  return count > 0;
}

Result<protocol::EventAck> StoreEvents(Transaction& tx, std::string_view host,
                                       const protocol::EventBatch& batch, UnixSeconds now,
                                       const release::PlanParseOptions& options, Wakeups& wakeups) {
  // Every event must be this host's before anything is stored.
  std::map<std::string, DeploymentRecord> deployments;
  for (const protocol::DeploymentEvent& e : batch.events) {
    if (deployments.contains(e.deployment)) continue;
    auto d = FindDeployment(tx, e.deployment);
    if (!d || d->host != host) {
      return Fail(ErrorCode::kPermissionDenied,
                  fmt::format("deployment {} is not assigned to host {}", e.deployment, host));
    }
    deployments.emplace(e.deployment, std::move(*d));
  }
  std::map<std::string, std::size_t> stored;
  const std::string received = NowUtc();
  InsertEventStatement& row = tx.Cached<InsertEventStatement>();
  row.received = received;
  for (const protocol::DeploymentEvent& e : batch.events) {
    row.deployment = e.deployment;
    row.step = protocol::StepName(e.step);
    row.failed_step = e.failed_step ? protocol::StepName(*e.failed_step) : "";
    row.app = e.app;
    row.version = e.version;
    row.message = e.message;
    row.output = e.output;
    row.sequence = static_cast<long long>(e.sequence);
    row.time = e.time;
    row.st.execute(true);
    if (row.st.get_affected_rows() == 0) continue;  // stored before
    ++stored[e.deployment];
    if (e.step == Step::kFailed && e.failed_step && *e.failed_step == Step::kObserving) {
      // A release that passed its health check and then failed while observed
      // is an incident caused by the release (procedure §6.2.10).
      const DeploymentRecord& d = deployments.at(e.deployment);
      RecordIncident(tx, d.release_id, d.host, kObservationSeverity,
                     fmt::format("{} {} failed its health check while observed on {}: {}", d.app,
                                 d.version, d.host, e.message),
                     kIncidentFromObservation, now);
    }
  }

  protocol::EventAck ack;
  std::set<std::string> rollouts_to_check;
  for (auto& [id, d] : deployments) {
    std::string key = id;
    HighestStatement& max = tx.Cached<HighestStatement>();
    max.key = key;
    max.ind = soci::i_null;
    max.st.execute(true);
    const long long highest = max.ind == soci::i_ok ? max.highest : 0;
    StatementCache::Finish(max.st);
    ack.through[id] = static_cast<std::uint64_t>(highest);
    if (!stored.contains(id) || d.final) continue;  // nothing new, or already decided

    LatestEventStatement& latest_event = tx.Cached<LatestEventStatement>();
    latest_event.key = key;
    latest_event.sequence = highest;
    latest_event.st.execute(true);
    std::string step_text = latest_event.step, failed_text = latest_event.failed_step,
                message = latest_event.message;
    StatementCache::Finish(latest_event.st);
    if (message.empty()) {
      // The latest event saying something (a failure reason outlives the
      // rollback steps that follow it).
      LatestMessageStatement& latest = tx.Cached<LatestMessageStatement>();
      latest.key = key;
      latest.indicator = soci::i_null;
      latest.st.execute(true);
      const bool found = latest.st.got_data() && latest.indicator == soci::i_ok;
      message = found ? latest.message : d.message;
      StatementCache::Finish(latest.st);
    }
    auto step = protocol::ParseStep(step_text);
    std::optional<Step> failed_step;
    if (!failed_text.empty()) {
      if (auto parsed = protocol::ParseStep(failed_text)) failed_step = *parsed;
    }
    const auto result = step ? FinalResultOf(*step, failed_step) : std::nullopt;
    UpdateStepStatement& update = tx.Cached<UpdateStepStatement>();
    update.step = step_text;
    update.message = message;
    update.sequence = highest;
    update.started = d.started > 0 ? d.started : now;
    update.key = key;
    update.st.execute(true);
    AuditEvent event("deployment.events", "deployment", id);
    event.release_id = d.release_id;
    event.detail = {{"host", d.host},
                    {"stored", stored[id]},
                    {"through", highest},
                    {"from", d.step},
                    {"to", step_text}};
    tx.Audit(event);
    if (result) {
      d.step = step_text;
      FinishDeployment(tx, d, *result, message, now);
      if (d.environment == kProductionEnvironment) rollouts_to_check.insert(d.release_id);
    }
  }
  for (const std::string& release_id : rollouts_to_check) {
    AdvanceRollout(tx, release_id, now, options, wakeups, AdvanceBy::kFinalEvent);
  }
  return ack;
}

void EndDeploymentsOfHost(Transaction& tx, std::string_view host, UnixSeconds now,
                          const release::PlanParseOptions& options, Wakeups& wakeups) {
  std::string key(host);
  auto open = Query(
      tx.sql(), fmt::format("SELECT {} FROM deployments WHERE host = :h AND final = 0", kColumns),
      [&](soci::statement& st) { st.exchange(soci::use(key, "h")); });
  std::set<std::string> releases;
  for (const DeploymentRecord& d : open) {
    FinishDeployment(tx, d, kResultRemoved, fmt::format("host {} was removed", host), now);
    if (d.environment == kProductionEnvironment) releases.insert(d.release_id);
  }
  for (const std::string& release_id : releases) {
    AdvanceRollout(tx, release_id, now, options, wakeups, AdvanceBy::kFinalEvent);
  }
}

Result<Sweep> SweepDeployments(Store& store, UnixSeconds now,
                               const release::PlanParseOptions& options, WakeupHub& hub) {
  AuditOrigin origin{"fabu-coordinator", "system", "sweep", "local"};
  // Holds passed by those who started a wave (WakeHosts): ended when this
  // sweep returns, after the parts it assigns below (each on return, also on
  // an early one).
  struct PassedHolds {
    WakeupHub& hub;
    std::size_t count;
    ~PassedHolds() {
      for (; count > 0; --count) hub.EndHold();
    }
  } passed{hub, hub.TakePassedHolds()};
  // Most sweeps find nothing: look before taking a write transaction.
  auto work = store.Read([&](soci::session& sql) -> Result<bool> {
    long long overdue = 0, active = 0;
    long long at = now;
    sql << "SELECT COUNT(*) FROM deployments WHERE final = 0 AND deadline > 0 AND deadline <= :n",
        soci::use(at), soci::into(overdue);
    active = static_cast<long long>(ActiveRollouts(sql).size());
    return overdue > 0 || active > 0;
  });
  if (!work) return std::unexpected(work.error());
  if (!*work) return Sweep{};
  Wakeups wakeups;
  auto swept = store.Write(origin, [&](Transaction& tx) -> Result<Sweep> {
    Sweep sweep;
    wakeups = {};
    long long at = now;
    auto overdue = Query(tx.sql(),
                         fmt::format("SELECT {} FROM deployments WHERE final = 0 AND deadline > 0 "
                                     "AND deadline <= :n",
                                     kColumns),
                         [&](soci::statement& st) { st.exchange(soci::use(at, "n")); });
    for (const DeploymentRecord& d : overdue) {
      FinishDeployment(
          tx, d, kResultTimeout,
          fmt::format("timeout: not final within the host timeout of {} (last step {})",
                      protocol::FormatDuration(d.host_timeout_seconds), d.step),
          now);
    }
    sweep.timed_out = overdue.size();
    // Every rollout in progress, not only those just touched: the next wave
    // may be due, a window may have opened, and after a restart the last
    // event may have been stored without the rollout having moved on.
    for (const std::string& release_id : ActiveRollouts(tx.sql())) {
      AdvanceRollout(tx, release_id, now, options, wakeups);
    }
    return sweep;
  });
  if (!swept) return swept;
  swept->transactions = 1;
  // While a part's hosts are woken here, the next part is made on the
  // committer thread, queued ahead of the steps the hosts answered first are
  // posting meanwhile (else each part waits behind thousands of them). Each
  // part assigns at least one host (AssignWave), so this ends.
  // While parts are left, the hub is held: agents' next requests (the steps
  // of the hosts told first) wait, so the committer, the I/O thread and the
  // hosts' CPU go to the wave's answers (wakeup_hub.hpp).
  std::optional<HubHold> hold;
  for (;;) {
    const std::vector<std::string> go_on = std::move(wakeups.rollouts_to_go_on);
    wakeups.rollouts_to_go_on.clear();
    if (!go_on.empty() && !hold) hold.emplace(&hub);
    std::promise<Result<Wakeups>> next_part;
    std::future<Result<Wakeups>> made = next_part.get_future();
    if (!go_on.empty()) {
      store.WriteAsync(
          origin,
          [go_on, now, options](Transaction& tx) -> Result<Wakeups> {
            Wakeups part;
            for (const std::string& release_id : go_on) {
              AdvanceRollout(tx, release_id, now, options, part);
            }
            return part;
          },
          [&next_part](Result<Wakeups> part) { next_part.set_value(std::move(part)); },
          /*ahead=*/true);
    }
    swept->woken += wakeups.assigned.size() + wakeups.hosts.size();
    WakeHosts(hub, wakeups);
    if (go_on.empty()) break;
    Result<Wakeups> part = made.get();
    if (!part) {
      // The parts before are committed and woken; the next sweep goes on.
      spdlog::error("deployment sweep: the next part of a wave: {}", part.error().message());
      break;
    }
    wakeups = std::move(*part);
    ++swept->transactions;
  }
  return swept;
}

}  // namespace fabu::coordinator
