#include "coordinator/deploy/deployments.hpp"

#include <fmt/format.h>
#include <soci/soci.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>
#include <map>
#include <set>
#include <unordered_map>

#include "coordinator/common/canonical_json.hpp"
#include "coordinator/common/clock.hpp"
#include "coordinator/common/digest.hpp"
#include "coordinator/common/wakeup_hub.hpp"
#include "coordinator/deploy/deployment_rows.hpp"
#include "coordinator/deploy/rollout_engine.hpp"
#include "coordinator/store/dialect.hpp"
#include "coordinator/store/release_records.hpp"
#include "coordinator/store/row_query.hpp"

namespace fabu::coordinator {
namespace {

using namespace detail;  // deployment_rows.hpp

using nlohmann::json;
using protocol::Step;

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
        OneShot(tx.sql(),
                "SELECT host, COUNT(*), COALESCE(SUM(CASE WHEN final = 0 THEN 1 "
                "ELSE 0 END), 0) FROM deployments WHERE release_id = :r GROUP BY "
                "host",
                soci::use(release_id_), soci::into(host), soci::into(a.count), soci::into(a.open));
    attempts.execute(false);
    while (attempts.fetch()) attempts_.emplace(host, a);
    soci::statement installed =
        OneShot(tx.sql(), "SELECT host, current_version FROM host_apps WHERE app = :a",
                soci::use(app_), soci::into(host), soci::into(version));
    installed.execute(false);
    while (installed.fetch()) installed_.emplace(host, version);
  }

  Attempts AttemptsOf(const std::string& host) {
    // (Read one by one, attempts_ holds only those made here, not stored yet.)
    if (auto it = attempts_.find(host); it != attempts_.end()) return it->second;
    if (all_) return Attempts{};
    AttemptsStatement& s = tx_.Cached<AttemptsStatement>();
    s.release_id = release_id_;
    s.host = host;
    s.st.execute(true);
    const Attempts a{s.count, s.open};
    StatementCache::Finish(s.st);
    return a;
  }

  // Counts the deployment just made for `host` (a host named twice gets one):
  // CreateDeployments stores them all at its end.
  void Made(const std::string& host) {
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

// New deployments, each row a JSON object (CreateDeployments).
struct InsertDeploymentsStatement {
  explicit InsertDeploymentsStatement(soci::session& sql) : st(sql) {
    static constexpr JsonColumn kRows[] = {
        {"id"},      {"r"},       {"h"},       {"a", true}, {"e"},       {"k"},    {"app"},
        {"v"},       {"p"},       {"s", true}, {"u"},       {"t", true}, {"step"}, {"c", true},
        {"d", true}, {"w", true}, {"fv"},      {"o", true}, {"oi", true}};
    st.exchange(soci::use(rows, "rows"));
    st.alloc();
    st.prepare(fmt::format(
        "INSERT INTO deployments (id, release_id, host, attempt, environment, kind, app, version, "
        "package_id, package_size, package_url, host_timeout, step, final, result, message, "
        "last_sequence, created, started, finished, deadline, wave, from_version, observe, "
        "observe_interval) SELECT id, r, h, a, e, k, app, v, p, s, u, t, step, 0, '', '', 0, c, "
        "0, 0, d, w, fv, o, oi FROM {}",
        JsonRowsSql(BackendOf(sql), "rows", kRows, "n")));
    st.define_and_bind();
  }
  std::string rows;
  soci::statement st;
};

json TimeOrNull(UnixSeconds at) {
  return at > 0 ? json(protocol::FormatRfc3339Utc(at)) : json(nullptr);
}

}  // namespace

std::string_view DeploymentResultName(DeploymentResult result) {
  switch (result) {
    case DeploymentResult::kSucceeded:
      return "succeeded";
    case DeploymentResult::kFailed:
      return "failed";
    case DeploymentResult::kRolledBack:
      return "rolled_back";
    case DeploymentResult::kRollbackFailed:
      return "rollback_failed";
    case DeploymentResult::kTimeout:
      return "timeout";
    case DeploymentResult::kHostRemoved:
      return "host_removed";
  }
  return "failed";
}

Result<DeploymentResult> ParseDeploymentResult(std::string_view name) {
  for (DeploymentResult r : {DeploymentResult::kSucceeded, DeploymentResult::kFailed,
                             DeploymentResult::kRolledBack, DeploymentResult::kRollbackFailed,
                             DeploymentResult::kTimeout, DeploymentResult::kHostRemoved}) {
    if (DeploymentResultName(r) == name) return r;
  }
  return Fail(ErrorCode::kInvalidArgument, fmt::format("unknown deployment result \"{}\"", name));
}

std::string_view DeploymentRecord::ResultText() const {
  return result ? DeploymentResultName(*result) : std::string_view();
}

namespace {

// Deployments made final, each row a JSON object (FinishDeployments).
struct FinishStatement {
  explicit FinishStatement(soci::session& sql) : st(sql) {
    static constexpr JsonColumn kRows[] = {{"id"}, {"r"}, {"m"}, {"f", true}};
    st.exchange(soci::use(rows, "rows"));
    st.alloc();
    st.prepare(fmt::format(
        "UPDATE deployments SET final = 1, result = f.r, message = f.m, finished = f.f FROM {} "
        "WHERE deployments.id = f.id",
        JsonRowsSql(BackendOf(sql), "rows", kRows, "f")));
    st.define_and_bind();
  }
  std::string rows;
  soci::statement st;
};

}  // namespace

void FinishDeployments(Transaction& tx, std::span<const DeploymentEnd> ends, UnixSeconds now) {
  if (ends.empty()) return;
  nlohmann::json rows = nlohmann::json::array();
  std::vector<std::pair<AuditOrigin, AuditEvent>> audits;
  std::set<std::string> releases;
  for (const DeploymentEnd& end : ends) {
    const DeploymentRecord& d = *end.deployment;
    const std::string result(DeploymentResultName(end.result));
    rows.push_back({{"id", d.id}, {"r", result}, {"m", end.message}, {"f", now}});
    AuditEvent event("deployment.finish", "deployment", d.id);
    event.release_id = d.release_id;
    event.detail = {{"host", d.host},
                    {"result", result},
                    {"message", end.message},
                    {"step", protocol::StepName(d.step)}};
    audits.emplace_back(end.origin != nullptr ? *end.origin : tx.origin(), std::move(event));
    releases.insert(d.release_id);
  }
  FinishStatement& finish = tx.Cached<FinishStatement>();
  finish.rows = rows.dump();
  finish.st.execute(true);
  tx.AuditAll(audits);
  // Its listeners (the CMDB's upgrade records and outbox messages) commit
  // with their end.
  tx.Raise(DeploymentsEnded{ends, now});
  for (const std::string& release_id : releases) tx.Raise(ReleaseProgressed{release_id});
}

void FinishDeployment(Transaction& tx, const DeploymentRecord& d, DeploymentResult result,
                      const std::string& message, UnixSeconds now) {
  const DeploymentEnd end{&d, result, message, nullptr};
  FinishDeployments(tx, std::span(&end, 1), now);
}

std::optional<DeploymentResult> FinalResultOf(Step step, std::optional<Step> failed_step) {
  switch (step) {
    case Step::kSucceeded:
      return DeploymentResult::kSucceeded;
    case Step::kRolledBack:
      return DeploymentResult::kRolledBack;
    case Step::kRollbackFailed:
      return DeploymentResult::kRollbackFailed;
    case Step::kFailed:
      // Without the failed step we cannot know nothing was switched: wait
      // for the rollback report (or the timeout).
      if (failed_step && protocol::IsBeforeActivating(*failed_step)) {
        return DeploymentResult::kFailed;
      }
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
          {"step", protocol::StepName(step)},
          {"final", IsFinal()},
          {"result", ResultText()},
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
                          message.size() + from_version.size());
  out.String("app", app);
  out.Number("attempt", attempt);
  WriteTimeOrNull(out, "created", created);
  WriteTimeOrNull(out, "deadline", deadline);
  out.String("deployment", id);
  out.String("environment", environment);
  out.Bool("final", IsFinal());
  WriteTimeOrNull(out, "finished", finished);
  out.String("from_version", from_version);
  out.String("host", host);
  out.String("kind", protocol::DeploymentKindName(kind));
  out.Number("last_sequence", last_sequence);
  out.String("message", message);
  out.Number("observe_seconds", observe_seconds);
  out.String("package_id", package_id);
  out.String("release", release_id);
  out.String("result", ResultText());
  WriteTimeOrNull(out, "started", started);
  out.String("step", protocol::StepName(step));
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
  // Inserted and audited at the end, with one statement each for all.
  json rows = json::array();
  std::vector<std::pair<AuditOrigin, AuditEvent>> audits;
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
    d.step = Step::kAssigned;
    d.created = now;
    // The agent observes before it reports success: give it that long too.
    d.deadline = timeout > 0 ? now + timeout + d.observe_seconds : 0;
    d.wave = target.wave;
    d.from_version = facts.InstalledOf(d.host);
    rows.push_back({{"id", d.id},
                    {"r", d.release_id},
                    {"h", d.host},
                    {"a", d.attempt},
                    {"e", d.environment},
                    {"k", protocol::DeploymentKindName(d.kind)},
                    {"app", d.app},
                    {"v", d.version},
                    {"p", d.package_id},
                    {"s", d.package_size},
                    {"u", d.package_url},
                    {"t", d.host_timeout_seconds},
                    {"step", protocol::StepName(d.step)},
                    {"c", d.created},
                    {"d", d.deadline},
                    {"w", d.wave},
                    {"fv", d.from_version},
                    {"o", d.observe_seconds},
                    {"oi", d.observe_interval_seconds}});
    AuditEvent event("deployment.create", "deployment", d.id);
    event.release_id = release.id;
    event.after_sha256 = d.Digest();
    audits.emplace_back(tx.origin(), std::move(event));
    facts.Made(d.host);
    made.push_back(std::move(d));
  }
  if (made.empty()) return made;
  InsertDeploymentsStatement& insert = tx.Cached<InsertDeploymentsStatement>();
  insert.rows = rows.dump();
  insert.st.execute(true);
  tx.AuditAll(audits);
  tx.Raise(ReleaseProgressed{release.id});
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

// The unfinished deployments of many hosts, the hosts a JSON array of
// {"h": ...}, each host's oldest first.
struct OpenAssignmentsStatement {
  explicit OpenAssignmentsStatement(soci::session& sql) : st(sql) {
    static constexpr JsonColumn kHosts[] = {{"h"}};
    row.Into(st);
    st.exchange(soci::use(hosts, "hosts"));
    st.alloc();
    st.prepare(
        fmt::format("SELECT {} FROM deployments WHERE host IN (SELECT h FROM {}) AND final = 0 "
                    "ORDER BY host, created, id",
                    kColumns, JsonRowsSql(BackendOf(sql), "hosts", kHosts, "l")));
    st.define_and_bind();
  }
  Row row;
  std::string hosts;
  soci::statement st;
};

}  // namespace

std::vector<std::optional<DeploymentRecord>> OpenAssignments(soci::session& sql,
                                                             StatementCache& statements,
                                                             std::span<const std::string> hosts) {
  std::vector<std::optional<DeploymentRecord>> found(hosts.size());
  if (hosts.size() == 1) {
    OpenAssignmentStatement& open = statements.Get<OpenAssignmentStatement>(sql);
    open.key = hosts.front();
    open.st.execute(true);
    if (open.st.got_data()) found.front() = open.row.ToRecord();
    StatementCache::Finish(open.st);
    return found;
  }
  if (hosts.empty()) return found;
  OpenAssignmentsStatement& open = statements.Get<OpenAssignmentsStatement>(sql);
  open.hosts = JsonRowsOf(hosts, "h");
  open.st.execute(false);
  std::unordered_map<std::string, DeploymentRecord> oldest;
  while (open.st.fetch()) oldest.try_emplace(open.row.host, open.row.ToRecord());
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    if (auto it = oldest.find(hosts[i]); it != oldest.end()) found[i] = it->second;
  }
  return found;
}

std::vector<DeploymentRecord> ListDeployments(soci::session& sql, std::string_view release_id,
                                              std::string_view environment) {
  std::string key(release_id), env(environment);
  return Query(sql,
               fmt::format("SELECT {} FROM deployments WHERE release_id = :r{} ORDER BY host, "
                           "attempt",
                           kColumns, env.empty() ? "" : " AND environment = :e"),
               [&](soci::statement& st) {
                 st.exchange(soci::use(key, "r"));
                 if (!env.empty()) st.exchange(soci::use(env, "e"));
               });
}

std::vector<DeploymentRecord> ListHostDeployments(soci::session& sql, std::string_view release_id,
                                                  std::string_view host) {
  std::string key(release_id), name(host);
  return Query(sql,
               fmt::format("SELECT {} FROM deployments WHERE release_id = :r AND host = :h ORDER "
                           "BY created, attempt",
                           kColumns),
               [&](soci::statement& st) {
                 st.exchange(soci::use(key, "r"));
                 st.exchange(soci::use(name, "h"));
               });
}

bool HostHasPackage(soci::session& sql, std::string_view host, std::string_view package_id) {
  std::string h(host), p(package_id);
  long long count = 0;
  sql << "SELECT COUNT(*) FROM deployments WHERE host = :h AND package_id = :p", soci::use(h),
      soci::use(p), soci::into(count);
  return count > 0;
}

namespace detail {

// Prepared once per store session (StatementCache).
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

namespace {
// Deployments by id, the ids a JSON array of {"id": ...}.
struct FindManyStatement {
  explicit FindManyStatement(soci::session& sql) : st(sql) {
    static constexpr JsonColumn kIds[] = {{"id"}};
    row.Into(st);
    st.exchange(soci::use(ids, "ids"));
    st.alloc();
    st.prepare(fmt::format("SELECT {} FROM deployments WHERE id IN (SELECT id FROM {})", kColumns,
                           JsonRowsSql(BackendOf(sql), "ids", kIds, "i")));
    st.define_and_bind();
  }
  Row row;
  std::string ids;
  soci::statement st;
};

}  // namespace

std::map<std::string, DeploymentRecord> FindDeployments(Transaction& tx,
                                                        std::span<const std::string> ids) {
  std::map<std::string, DeploymentRecord> found;
  if (ids.empty()) return found;
  FindManyStatement& find = tx.Cached<FindManyStatement>();
  find.ids = JsonRowsOf(ids, "id");
  find.st.execute(false);
  while (find.st.fetch()) found.emplace(find.row.id, find.row.ToRecord());
  return found;
}

}  // namespace detail

}  // namespace fabu::coordinator
