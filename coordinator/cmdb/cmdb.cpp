#include "coordinator/cmdb/cmdb.hpp"

#include <fmt/format.h>
#include <soci/soci.h>

#include <map>

#include "coordinator/cmdb/outbox_signal.hpp"
#include "coordinator/common/clock.hpp"

namespace fabu::coordinator {
namespace {

using nlohmann::json;

json TimeOrNull(UnixSeconds at) {
  return at > 0 ? json(protocol::FormatRfc3339Utc(at)) : json(nullptr);
}

long long NextId(soci::session& sql, const char* table) {
  long long id = 0;
  soci::indicator ind = soci::i_null;
  sql << fmt::format("SELECT MAX(id) FROM {}", table), soci::into(id, ind);
  return (ind == soci::i_ok ? id : 0) + 1;
}

constexpr const char* kRecordColumns =
    "id, deployment_id, release_id, host, package, package_id, from_version, from_source, "
    "to_version, started, finished, result, operator, kind, recorded";

struct RecordRow {
  long long id = 0, started = 0, finished = 0;
  std::string deployment_id, release_id, host, package, package_id, from_version, from_source,
      to_version, result, operator_name, kind, recorded;

  void Into(soci::statement& st) {
    st.exchange(soci::into(id));
    st.exchange(soci::into(deployment_id));
    st.exchange(soci::into(release_id));
    st.exchange(soci::into(host));
    st.exchange(soci::into(package));
    st.exchange(soci::into(package_id));
    st.exchange(soci::into(from_version));
    st.exchange(soci::into(from_source));
    st.exchange(soci::into(to_version));
    st.exchange(soci::into(started));
    st.exchange(soci::into(finished));
    st.exchange(soci::into(result));
    st.exchange(soci::into(operator_name));
    st.exchange(soci::into(kind));
    st.exchange(soci::into(recorded));
  }
  UpgradeRecord ToRecord() const {
    return UpgradeRecord{id,         deployment_id, release_id,    host,       package,
                         package_id, from_version,  from_source,   to_version, started,
                         finished,   result,        operator_name, kind,       recorded};
  }
};

constexpr const char* kOutboxColumns =
    "id, connector, idempotency_key, release_id, payload, state, attempts, next_attempt, "
    "last_error, created, delivered";

struct OutboxRow {
  long long id = 0, attempts = 0, next_attempt = 0;
  std::string connector, key, release_id, payload, state, last_error, created, delivered;

  void Into(soci::statement& st) {
    st.exchange(soci::into(id));
    st.exchange(soci::into(connector));
    st.exchange(soci::into(key));
    st.exchange(soci::into(release_id));
    st.exchange(soci::into(payload));
    st.exchange(soci::into(state));
    st.exchange(soci::into(attempts));
    st.exchange(soci::into(next_attempt));
    st.exchange(soci::into(last_error));
    st.exchange(soci::into(created));
    st.exchange(soci::into(delivered));
  }
  OutboxMessage ToMessage() const {
    return OutboxMessage{id,       connector,    key,        release_id, payload,  state,
                         attempts, next_attempt, last_error, created,    delivered};
  }
};

// Runs `sql_text` with `bind` adding named uses; collects rows of type Row.
template <typename Row, typename Out, typename Bind>
std::vector<Out> Query(soci::session& sql, const std::string& sql_text, Bind bind) {
  Row row;
  soci::statement st(sql);
  row.Into(st);
  bind(st);
  st.alloc();
  st.prepare(sql_text);
  st.define_and_bind();
  st.execute(false);
  std::vector<Out> out;
  while (st.fetch()) {
    if constexpr (std::is_same_v<Out, UpgradeRecord>) {
      out.push_back(row.ToRecord());
    } else {
      out.push_back(row.ToMessage());
    }
  }
  return out;
}

// The apps of an inventory audit entry's detail: {"apps": {"name": "version"}}.
std::optional<std::string> AppFromInventoryDetail(const std::string& detail,
                                                  const std::string& app) {
  json parsed = json::parse(detail, nullptr, false);
  if (parsed.is_discarded() || !parsed.contains("apps") || !parsed["apps"].is_object()) {
    return std::nullopt;
  }
  auto it = parsed["apps"].find(app);
  if (it == parsed["apps"].end()) return std::string();
  return it->is_string() ? it->get<std::string>() : std::string();
}

// from_version and its source, by the rules of cmdb.hpp.
std::pair<std::string, std::string> FromVersionOf(soci::session& sql, const DeploymentRecord& d) {
  std::string release = d.release_id, host = d.host, app = d.app, phase(kBaselineBefore);
  // 1. the release's `before` baseline
  {
    long long rows = 0;
    sql << "SELECT COUNT(*) FROM cmdb_baselines WHERE release_id = :r AND phase = :p AND "
           "host = :h",
        soci::use(release), soci::use(phase), soci::use(host), soci::into(rows);
    if (rows > 0) {
      std::string version;
      soci::indicator ind = soci::i_null;
      sql << "SELECT version FROM cmdb_baselines WHERE release_id = :r AND phase = :p AND "
             "host = :h AND app = :a",
          soci::use(release), soci::use(phase), soci::use(host), soci::use(app),
          soci::into(version, ind);
      return {sql.got_data() && ind == soci::i_ok ? version : std::string(), "baseline"};
    }
  }
  // 2. the last inventory the host reported before the deployment was made
  long long created_seq = 0;
  soci::indicator created_ind = soci::i_null;
  std::string deployment = d.id;
  sql << "SELECT MIN(seq) FROM audit_log WHERE action = 'deployment.create' AND "
         "object_type = 'deployment' AND object_id = :d",
      soci::use(deployment), soci::into(created_seq, created_ind);
  if (created_ind == soci::i_ok) {
    std::string detail;
    soci::indicator ind = soci::i_null;
    sql << "SELECT detail FROM audit_log WHERE release_id = '' AND action = 'host.inventory' AND "
           "object_type = 'host' AND object_id = :h AND seq < :s ORDER BY seq DESC LIMIT 1",
        soci::use(host), soci::use(created_seq), soci::into(detail, ind);
    if (sql.got_data() && ind == soci::i_ok) {
      if (auto version = AppFromInventoryDetail(detail, app)) return {*version, "inventory"};
    }
  }
  // 3. host_apps, when nothing was reported since the deployment was made
  std::string updated;
  soci::indicator updated_ind = soci::i_null;
  sql << "SELECT MAX(updated) FROM host_apps WHERE host = :h", soci::use(host),
      soci::into(updated, updated_ind);
  if (updated_ind == soci::i_ok) {
    auto at = protocol::ParseRfc3339(updated);
    if (at && at->seconds < d.created) {
      std::string version;
      soci::indicator ind = soci::i_null;
      sql << "SELECT current_version FROM host_apps WHERE host = :h AND app = :a", soci::use(host),
          soci::use(app), soci::into(version, ind);
      return {sql.got_data() && ind == soci::i_ok ? version : std::string(), "inventory"};
    }
  }
  return {"", "unknown"};
}

// The release record HistoryActor reads, prepared once, and the actors it
// found, by release and action, with the record they were found in: a
// rollout's every host end asks for the same one, and parsing the record
// each time was a twentieth of the committer at 20,000 hosts. The record's
// text is compared whole, so a changed release is parsed again.
struct HistoryActorStatement {
  explicit HistoryActorStatement(soci::session& sql)
      : st((sql.prepare << "SELECT record FROM releases WHERE id = :r", soci::use(key),
            soci::into(record, indicator))) {}
  std::string key, record;
  soci::indicator indicator = soci::i_null;
  soci::statement st;
  struct Found {
    std::string record, actor;
  };
  std::map<std::pair<std::string, std::string>, Found> found;
};

// The actor of the latest entry of `action` in a release record's history.
std::string HistoryActorOf(const std::string& record, std::string_view action) {
  json parsed = json::parse(record, nullptr, false);
  if (parsed.is_discarded() || !parsed.contains("history") || !parsed["history"].is_array()) {
    return "";
  }
  const json& history = parsed["history"];
  for (auto it = history.rbegin(); it != history.rend(); ++it) {
    if (it->is_object() && it->value("action", "") == action) return it->value("actor", "");
  }
  return "";
}

// Who started the rollout: the release history's latest entry of `action`.
std::string HistoryActor(Transaction& tx, const std::string& release_id, std::string_view action) {
  HistoryActorStatement& read = tx.Cached<HistoryActorStatement>();
  read.key = release_id;
  read.indicator = soci::i_null;
  read.st.execute(true);
  const bool found = read.st.got_data() && read.indicator == soci::i_ok;
  const std::string record = found ? read.record : std::string();
  StatementCache::Finish(read.st);
  if (!found) return "";
  const auto key = std::make_pair(release_id, std::string(action));
  if (auto it = read.found.find(key); it != read.found.end() && it->second.record == record) {
    return it->second.actor;
  }
  std::string actor = HistoryActorOf(record, action);
  if (read.found.size() >= 64) read.found.clear();
  read.found[key] = {record, actor};
  return actor;
}

// When a deployment's first event came, prepared once.
struct StartedStatement {
  explicit StartedStatement(soci::session& sql)
      : st((sql.prepare << "SELECT started FROM deployments WHERE id = :id", soci::use(id),
            soci::into(started))) {}
  std::string id;
  long long started = 0;
  soci::statement st;
};

// The version a rollback deployment restored: the latest version its events name.
std::string ReportedVersion(soci::session& sql, const std::string& deployment) {
  std::string version, key = deployment;
  soci::indicator ind = soci::i_null;
  sql << "SELECT version FROM deployment_events WHERE deployment = :d AND version <> '' "
         "ORDER BY sequence DESC LIMIT 1",
      soci::use(key), soci::into(version, ind);
  return sql.got_data() && ind == soci::i_ok ? version : std::string();
}

}  // namespace

std::string UpgradeRecord::Event() const { return kind + "." + result; }

std::string UpgradeRecord::IdempotencyKey() const {
  return fmt::format("{}/{}/{}/{}/{}", release_id, host, package, to_version, Event());
}

std::string UpgradeRecord::ResultingVersion() const {
  return result == kResultSucceeded ? to_version : from_version;
}

json UpgradeRecord::ToJson() const {
  return {{"id", id},
          {"deployment", deployment_id},
          {"release", release_id},
          {"host", host},
          {"package", package},
          {"package_id", package_id},
          {"from_version", from_version},
          {"from_source", from_source},
          {"to_version", to_version},
          {"started", TimeOrNull(started)},
          {"finished", TimeOrNull(finished)},
          {"result", result},
          {"operator", operator_name},
          {"kind", kind},
          {"recorded", recorded}};
}

bool EnqueueOutboxMessage(Transaction& tx, const std::string& connector, const std::string& key,
                          const std::string& release_id, const std::string& payload) {
  soci::session& sql = tx.sql();
  const std::string created = tx.clock().Utc(), empty, state(kOutboxPending);
  long long message_id = NextId(sql, "cmdb_outbox"), zero = 0;
  soci::statement st =
      (sql.prepare << "INSERT INTO cmdb_outbox (id, connector, idempotency_key, release_id, "
                      "payload, state, attempts, next_attempt, last_error, created, delivered, "
                      "waived_by, waive_reason) VALUES (:id, :c, :k, :r, :p, :s, :a, :n, :e, "
                      ":cr, :d, :wb, :wr) ON CONFLICT (connector, idempotency_key) DO NOTHING",
       soci::use(message_id), soci::use(connector), soci::use(key), soci::use(release_id),
       soci::use(payload), soci::use(state), soci::use(zero), soci::use(zero), soci::use(empty),
       soci::use(created), soci::use(empty), soci::use(empty), soci::use(empty));
  st.execute(true);
  return st.get_affected_rows() > 0;
}

namespace {

// RecordUpgrade's statements, prepared once: every production deployment's
// end runs them.
struct UpgradeStatements {
  explicit UpgradeStatements(soci::session& sql)
      : exists((sql.prepare << "SELECT COUNT(*) FROM upgrade_records WHERE deployment_id = :d",
                soci::use(deployment), soci::into(count))),
        highest((sql.prepare << "SELECT MAX(id) FROM upgrade_records", soci::into(id, id_ind))),
        insert((sql.prepare << "INSERT INTO upgrade_records (" << kRecordColumns
                            << ") VALUES (:id, :d, :r, :h, :p, :pid, :fv, :fs, :tv, :st, :fi, "
                               ":res, :op, :k, :rec)",
                soci::use(id), soci::use(r.deployment_id), soci::use(r.release_id),
                soci::use(r.host), soci::use(r.package), soci::use(r.package_id),
                soci::use(r.from_version), soci::use(r.from_source), soci::use(r.to_version),
                soci::use(started), soci::use(finished), soci::use(r.result),
                soci::use(r.operator_name), soci::use(r.kind), soci::use(r.recorded))),
        connectors(
            (sql.prepare << "SELECT name FROM cmdb_connectors WHERE active = 1 ORDER BY name",
             soci::into(connector))) {}
  std::string deployment, connector;
  long long count = 0, id = 0, started = 0, finished = 0;
  soci::indicator id_ind = soci::i_null;
  UpgradeRecord r;
  soci::statement exists, highest, insert, connectors;
};

}  // namespace

bool RecordUpgrade(Transaction& tx, const UpgradeRecord& input) {
  UpgradeStatements& s = tx.Cached<UpgradeStatements>();
  s.deployment = input.deployment_id;
  s.count = 0;
  s.exists.execute(true);
  const long long exists = s.count;
  StatementCache::Finish(s.exists);
  if (exists > 0) return false;

  // Filled in the insert's bound record itself (no copy per deployment end).
  UpgradeRecord& r = s.r;
  r = input;
  s.id_ind = soci::i_null;
  s.highest.execute(true);
  r.id = (s.id_ind == soci::i_ok ? s.id : 0) + 1;
  StatementCache::Finish(s.highest);
  if (r.recorded.empty()) r.recorded = tx.clock().Utc();
  s.id = r.id;
  s.started = r.started;
  s.finished = r.finished;
  s.insert.execute(true);

  // One message per active connector, the same exact body for each.
  const std::string key = r.IdempotencyKey();
  json record = r.ToJson();  // also the audit entry's `after`
  json payload = record;
  payload["event"] = r.Event();
  payload["idempotency_key"] = key;
  payload["installed_version"] = r.ResultingVersion();
  const std::string body = payload.dump();
  std::vector<std::string> connectors;
  s.connectors.execute(false);
  while (s.connectors.fetch()) connectors.push_back(s.connector);
  std::size_t queued = 0;
  for (const std::string& connector : connectors) {
    if (EnqueueOutboxMessage(tx, connector, key, r.release_id, body)) ++queued;
  }

  AuditEvent event("cmdb.record", "upgrade_record", std::to_string(r.id));
  event.release_id = r.release_id;
  event.after = std::move(record);
  event.detail = {{"idempotency_key", key}, {"queued", queued}};
  tx.Audit(event);
  if (queued > 0) tx.AfterCommit(RingOutbox);
  return true;
}

void RecordDeploymentEnd(Transaction& tx, const DeploymentRecord& d, std::string_view result,
                         UnixSeconds now) {
  if (d.environment != kProductionEnvironment) return;
  UpgradeRecord r;
  r.deployment_id = d.id;
  r.release_id = d.release_id;
  r.host = d.host;
  r.package = d.app;
  r.package_id = d.package_id;
  r.kind = std::string(protocol::DeploymentKindName(d.kind));
  auto [from, source] = FromVersionOf(tx.sql(), d);
  if (d.kind == protocol::DeploymentKind::kRollback) {
    // A rollback leaves what this release installed on the host (its install
    // succeeded, or there would be nothing to restore).
    std::string release = d.release_id, host = d.host, kind = "install", version;
    soci::indicator ind = soci::i_null;
    tx.sql() << "SELECT version FROM deployments WHERE release_id = :r AND host = :h AND "
                "kind = :k AND result = 'succeeded' ORDER BY attempt DESC LIMIT 1",
        soci::use(release), soci::use(host), soci::use(kind), soci::into(version, ind);
    if (tx.sql().got_data() && ind == soci::i_ok) {
      from = version;
      source = "install";
    }
  }
  r.from_version = from;
  r.from_source = source;
  r.to_version = d.version;
  if (r.to_version.empty()) r.to_version = ReportedVersion(tx.sql(), d.id);
  // The row's first-event time may be newer than the caller's copy.
  StartedStatement& read = tx.Cached<StartedStatement>();
  read.id = d.id;
  read.started = 0;
  read.st.execute(true);
  const long long started = read.st.got_data() ? read.started : 0;
  StatementCache::Finish(read.st);
  r.started = started > 0 ? started : (d.started > 0 ? d.started : d.created);
  r.finished = now;
  r.result = std::string(result);
  if (d.kind == protocol::DeploymentKind::kRollback) {
    r.operator_name =
        HistoryActor(tx, d.release_id, release::ActionName(release::Action::kRollback));
  }
  if (r.operator_name.empty()) {
    r.operator_name =
        HistoryActor(tx, d.release_id, release::ActionName(release::Action::kStartRollout));
  }
  RecordUpgrade(tx, r);
}

Result<std::size_t> TakeBaseline(Transaction& tx, std::string_view release_id,
                                 std::string_view phase, const std::vector<std::string>& hosts,
                                 UnixSeconds now) {
  if (phase != kBaselineBefore && phase != kBaselineAfter) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("baseline phase \"{}\": must be before or after", phase));
  }
  soci::session& sql = tx.sql();
  std::string release(release_id), p(phase), h, app, version;
  long long taken = now;
  long long already = 0;
  // Prepared once for all hosts (parsed anew per host, they were most of
  // `release start` for 20,000 hosts).
  soci::statement count =
      (sql.prepare << "SELECT COUNT(*) FROM cmdb_baselines WHERE release_id = :r AND phase = :p "
                      "AND host = :h",
       soci::use(release), soci::use(p), soci::use(h), soci::into(already));
  soci::statement installed =
      (sql.prepare << "SELECT app, current_version FROM host_apps WHERE host = :h ORDER BY app",
       soci::use(h), soci::into(app), soci::into(version));
  std::string insert_app, insert_version;
  soci::statement insert =
      (sql.prepare << "INSERT INTO cmdb_baselines (release_id, phase, taken, host, app, version) "
                      "VALUES (:r, :p, :t, :h, :a, :v)",
       soci::use(release), soci::use(p), soci::use(taken), soci::use(h), soci::use(insert_app),
       soci::use(insert_version));
  std::vector<std::string> done;
  json snapshot = json::object();
  for (const std::string& host : hosts) {
    h = host;
    already = 0;
    count.execute(true);
    if (already > 0) continue;
    std::vector<std::pair<std::string, std::string>> apps;
    installed.execute(false);
    while (installed.fetch()) apps.emplace_back(app, version);
    if (apps.empty()) apps.emplace_back("", "");
    json host_apps = json::object();
    for (auto& [name, current] : apps) {
      insert_app = name;
      insert_version = current;
      insert.execute(true);
      if (!name.empty()) host_apps[name] = current;
    }
    snapshot[host] = host_apps;
    done.push_back(host);
  }
  if (!done.empty()) {
    AuditEvent event("cmdb.baseline", "release", release);
    event.release_id = release;
    event.detail = {{"phase", p}, {"hosts", snapshot}};
    tx.Audit(event);
  }
  return done.size();
}

std::vector<BaselineRow> ListBaseline(soci::session& sql, std::string_view release_id) {
  std::string key(release_id), phase, host, app, version;
  long long taken = 0;
  soci::statement st = (sql.prepare << "SELECT phase, taken, host, app, version FROM "
                                       "cmdb_baselines WHERE release_id = :r "
                                       "ORDER BY phase DESC, host, app",
                        soci::use(key), soci::into(phase), soci::into(taken), soci::into(host),
                        soci::into(app), soci::into(version));
  st.execute(false);
  std::vector<BaselineRow> out;
  while (st.fetch()) out.push_back({phase, taken, host, app, version});
  return out;
}

json CmdbConfirmation::ToJson() const {
  return {{"release", release_id}, {"records", records},    {"unrecorded", unrecorded},
          {"pending", pending},    {"failing", failing},    {"delivered", delivered},
          {"waived", waived},      {"confirmed", confirmed}};
}

CmdbConfirmation ConfirmationOf(soci::session& sql, std::string_view release_id) {
  CmdbConfirmation c;
  c.release_id = std::string(release_id);
  std::string key(release_id), env(kProductionEnvironment);
  long long n = 0;
  sql << "SELECT COUNT(*) FROM upgrade_records WHERE release_id = :r", soci::use(key),
      soci::into(n);
  c.records = n;
  sql << "SELECT COUNT(*) FROM deployments d WHERE d.release_id = :r AND d.environment = :e AND "
         "d.final = 1 AND NOT EXISTS (SELECT 1 FROM upgrade_records u WHERE u.deployment_id = "
         "d.id)",
      soci::use(key), soci::use(env), soci::into(n);
  c.unrecorded = n;
  std::string state;
  long long count = 0;
  soci::statement st =
      (sql.prepare << "SELECT state, COUNT(*) FROM cmdb_outbox WHERE "
                      "release_id = :r AND connector NOT LIKE 'notify:%' GROUP BY state",
       soci::use(key), soci::into(state), soci::into(count));
  st.execute(false);
  while (st.fetch()) {
    if (state == kOutboxPending) c.pending = count;
    if (state == kOutboxFailing) c.failing = count;
    if (state == kOutboxDelivered) c.delivered = count;
    if (state == kOutboxWaived) c.waived = count;
  }
  c.confirmed = c.unrecorded == 0 && c.pending == 0 && c.failing == 0;
  return c;
}

Result<std::int64_t> WaiveDeliveries(Transaction& tx, std::string_view release_id,
                                     const release::Actor& actor, std::string_view reason) {
  if (actor.role != release::Role::kApprover) {
    return Fail(ErrorCode::kPermissionDenied,
                fmt::format("waiving CMDB deliveries needs role approver (you are {})",
                            release::RoleName(actor.role)));
  }
  if (reason.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    return Fail(ErrorCode::kInvalidArgument,
                "reason: say why the outside CMDB will not get these results");
  }
  soci::session& sql = tx.sql();
  std::string key(release_id), by = actor.name, why(reason), waived(kOutboxWaived),
                               pending(kOutboxPending), failing(kOutboxFailing);
  long long outstanding = 0;
  sql << "SELECT COUNT(*) FROM cmdb_outbox WHERE release_id = :r AND state IN (:p, :f) AND "
         "connector NOT LIKE 'notify:%'",
      soci::use(key), soci::use(pending), soci::use(failing), soci::into(outstanding);
  if (outstanding == 0) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("release {} has no pending or failing CMDB delivery to waive (see "
                            "`fabu cmdb outbox`)",
                            release_id));
  }
  sql << "UPDATE cmdb_outbox SET state = :w, waived_by = :b, waive_reason = :y WHERE "
         "release_id = :r AND state IN (:p, :f) AND connector NOT LIKE 'notify:%'",
      soci::use(waived), soci::use(by), soci::use(why), soci::use(key), soci::use(pending),
      soci::use(failing);
  AuditEvent event("cmdb.waive", "release", key);
  event.release_id = key;
  event.detail = {{"waived", outstanding}, {"reason", why}};
  tx.Audit(event);
  return outstanding;
}

std::vector<UpgradeRecord> ListUpgradeRecords(soci::session& sql, const UpgradeFilter& filter) {
  std::string where = "1 = 1";
  std::string release = filter.release_id.value_or(""), host = filter.host.value_or(""),
              package = filter.package.value_or("");
  if (filter.release_id) where += " AND release_id = :r";
  if (filter.host) where += " AND host = :h";
  if (filter.package) where += " AND package = :p";
  long long limit = filter.limit;
  const std::string order = filter.release_id ? "id" : "id DESC";
  return Query<RecordRow, UpgradeRecord>(
      sql,
      fmt::format("SELECT {} FROM upgrade_records WHERE {} ORDER BY {} LIMIT :l", kRecordColumns,
                  where, order),
      [&](soci::statement& st) {
        if (filter.release_id) st.exchange(soci::use(release, "r"));
        if (filter.host) st.exchange(soci::use(host, "h"));
        if (filter.package) st.exchange(soci::use(package, "p"));
        st.exchange(soci::use(limit, "l"));
      });
}

json OutboxMessage::ToJson() const {
  json payload_json = json::parse(payload, nullptr, false);
  return {{"id", id},
          {"connector", connector},
          {"idempotency_key", idempotency_key},
          {"release", release_id},
          {"state", state},
          {"attempts", attempts},
          {"next_attempt", (state == kOutboxPending || state == kOutboxFailing) && next_attempt > 0
                               ? TimeOrNull(next_attempt)
                               : json(nullptr)},
          {"last_error", last_error},
          {"created", created},
          {"delivered", delivered.empty() ? json(nullptr) : json(delivered)},
          {"payload", payload_json.is_discarded() ? json(payload) : payload_json}};
}

std::vector<OutboxMessage> ListOutbox(soci::session& sql, const OutboxFilter& filter) {
  std::string where = "1 = 1";
  std::string release = filter.release_id.value_or(""), state = filter.state.value_or("");
  if (filter.release_id) where += " AND release_id = :r";
  if (filter.state) where += " AND state = :s";
  long long limit = filter.limit;
  return Query<OutboxRow, OutboxMessage>(
      sql,
      fmt::format("SELECT {} FROM cmdb_outbox WHERE {} ORDER BY id DESC LIMIT :l", kOutboxColumns,
                  where),
      [&](soci::statement& st) {
        if (filter.release_id) st.exchange(soci::use(release, "r"));
        if (filter.state) st.exchange(soci::use(state, "s"));
        st.exchange(soci::use(limit, "l"));
      });
}

std::vector<OutboxMessage> OutboxHeads(soci::session& sql) {
  return Query<OutboxRow, OutboxMessage>(
      sql,
      // Every undelivered notice (they keep no order), and the oldest
      // undelivered message of every other connector.
      fmt::format("SELECT {} FROM cmdb_outbox WHERE state IN ('pending', 'failing') AND "
                  "(connector LIKE 'notify:%' OR id IN (SELECT MIN(id) FROM cmdb_outbox WHERE "
                  "state IN ('pending', 'failing') GROUP BY connector)) ORDER BY id",
                  kOutboxColumns),
      [](soci::statement&) {});
}

void MarkDelivered(Transaction& tx, std::int64_t id, const std::string& when) {
  long long key = id;
  std::string state(kOutboxDelivered), at = when;
  std::string connector, idempotency_key, release;
  tx.sql() << "SELECT connector, idempotency_key, release_id FROM cmdb_outbox WHERE id = :id",
      soci::use(key), soci::into(connector), soci::into(idempotency_key), soci::into(release);
  tx.sql() << "UPDATE cmdb_outbox SET state = :s, attempts = attempts + 1, delivered = :d, "
              "last_error = '' WHERE id = :id",
      soci::use(state), soci::use(at), soci::use(key);
  AuditEvent event("cmdb.deliver", "cmdb_outbox", std::to_string(id));
  event.release_id = release;
  event.detail = {{"connector", connector}, {"idempotency_key", idempotency_key}};
  tx.Audit(event);
}

void MarkFailed(Transaction& tx, std::int64_t id, const std::string& error,
                UnixSeconds next_attempt) {
  long long key = id, next = next_attempt;
  std::string state(kOutboxFailing), message = error.substr(0, 2000);
  tx.sql() << "UPDATE cmdb_outbox SET state = :s, attempts = attempts + 1, last_error = :e, "
              "next_attempt = :n WHERE id = :id",
      soci::use(state), soci::use(message), soci::use(next), soci::use(key);
}

void MarkGivenUp(Transaction& tx, std::int64_t id, const std::string& error) {
  long long key = id;
  std::string state(kOutboxGivenUp), message = error.substr(0, 2000);
  std::string connector, idempotency_key, release;
  long long attempts = 0;
  tx.sql() << "SELECT connector, idempotency_key, release_id, attempts FROM cmdb_outbox "
              "WHERE id = :id",
      soci::use(key), soci::into(connector), soci::into(idempotency_key), soci::into(release),
      soci::into(attempts);
  tx.sql() << "UPDATE cmdb_outbox SET state = :s, attempts = attempts + 1, last_error = :e "
              "WHERE id = :id",
      soci::use(state), soci::use(message), soci::use(key);
  AuditEvent event("notify.give-up", "cmdb_outbox", std::to_string(id));
  event.release_id = release;
  event.detail = {{"connector", connector},
                  {"idempotency_key", idempotency_key},
                  {"attempts", attempts + 1},
                  {"last_error", message}};
  tx.Audit(event);
}

void SyncConnectors(Transaction& tx, const std::vector<ConnectorName>& connectors) {
  soci::session& sql = tx.sql();
  const std::string now = tx.clock().Utc();
  sql << "UPDATE cmdb_connectors SET active = 0";
  for (const ConnectorName& c : connectors) {
    std::string name = c.name, type = c.type, at = now;
    long long exists = 0;
    sql << "SELECT COUNT(*) FROM cmdb_connectors WHERE name = :n", soci::use(name),
        soci::into(exists);
    if (exists > 0) {
      sql << "UPDATE cmdb_connectors SET type = :t, active = 1, updated = :u WHERE name = :n",
          soci::use(type), soci::use(at), soci::use(name);
    } else {
      sql << "INSERT INTO cmdb_connectors (name, type, active, updated) VALUES (:n, :t, 1, :u)",
          soci::use(name), soci::use(type), soci::use(at);
    }
  }
}

}  // namespace fabu::coordinator
