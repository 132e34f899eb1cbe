// The upgrade record table (升级记录表, cmdb.hpp): a record per final
// production deployment, with its from_version and operator, and its outbox
// messages queued in the same transaction (outbox.cpp).
#include <fmt/format.h>
#include <soci/soci.h>

#include <map>
#include <set>

#include "coordinator/cmdb/cmdb.hpp"
#include "coordinator/cmdb/cmdb_rows.hpp"
#include "coordinator/cmdb/outbox_signal.hpp"
#include "coordinator/common/clock.hpp"
#include "coordinator/deploy/deployment_rows.hpp"
#include "coordinator/store/dialect.hpp"
#include "coordinator/store/row_query.hpp"

namespace fabu::coordinator {
namespace {

using cmdb_detail::TimeOrNull;
using nlohmann::json;

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
  UpgradeRecord Value() const {
    return UpgradeRecord{id, deployment_id, release_id, host, package, package_id, from_version,
                         from_source, to_version, started, finished,
                         // Only this coordinator writes it; a name it does not
                         // know reads as failed, never as a success.
                         ParseDeploymentResult(result).value_or(DeploymentResult::kFailed),
                         operator_name, kind, recorded};
  }
};
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

// The `before` baselines of deployments' (release, host) pairs, each row a
// JSON object {"r": release, "h": host}: release, host, app, version.
struct BaselinesStatement {
  explicit BaselinesStatement(soci::session& sql) : st(sql) {
    static constexpr JsonColumn kPairs[] = {{"r"}, {"h"}};
    st.exchange(soci::into(release));
    st.exchange(soci::into(host));
    st.exchange(soci::into(app));
    st.exchange(soci::into(version));
    st.exchange(soci::use(pairs, "pairs"));
    st.exchange(soci::use(phase, "p"));
    st.alloc();
    st.prepare(fmt::format(
        "SELECT b.release_id, b.host, b.app, b.version FROM cmdb_baselines b JOIN {} ON "
        "b.release_id = k.r AND b.host = k.h WHERE b.phase = :p",
        JsonRowsSql(BackendOf(sql), "pairs", kPairs, "k")));
    st.define_and_bind();
  }
  std::string pairs, phase{kBaselineBefore}, release, host, app, version;
  soci::statement st;
};

// (release, host) -> app -> version of the `before` baselines of `ends`.
using Baselines = std::map<std::pair<std::string, std::string>, std::map<std::string, std::string>>;
Baselines BeforeBaselines(Transaction& tx, std::span<const DeploymentEnd* const> ends) {
  Baselines found;
  json pairs = json::array();
  std::set<std::pair<std::string, std::string>> named;
  for (const DeploymentEnd* end : ends) {
    if (named.emplace(end->deployment->release_id, end->deployment->host).second) {
      pairs.push_back({{"r", end->deployment->release_id}, {"h", end->deployment->host}});
    }
  }
  BaselinesStatement& read = tx.Cached<BaselinesStatement>();
  read.pairs = pairs.dump();
  read.st.execute(false);
  while (read.st.fetch()) found[{read.release, read.host}][read.app] = read.version;
  return found;
}

// from_version and its source, by the rules of cmdb.hpp, for a deployment
// whose release has no `before` baseline of its host (rule 1 is
// BeforeBaselines').
std::pair<std::string, std::string> FromReportedVersion(soci::session& sql,
                                                        const DeploymentRecord& d) {
  std::string host = d.host, app = d.app;
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

// The version a rollback deployment restored: the latest version its events name.
std::string ReportedVersion(soci::session& sql, const std::string& deployment) {
  std::string version, key = deployment;
  soci::indicator ind = soci::i_null;
  sql << "SELECT version FROM deployment_events WHERE deployment = :d AND version <> '' "
         "ORDER BY sequence DESC LIMIT 1",
      soci::use(key), soci::into(version, ind);
  return sql.got_data() && ind == soci::i_ok ? version : std::string();
}

// The version of the latest install of `release` on `host` that succeeded;
// nullopt when there is none.
std::optional<std::string> SucceededInstallVersion(soci::session& sql, const std::string& release,
                                                   const std::string& host) {
  std::string r = release, h = host, kind = "install";
  auto installs = detail::Query(
      sql,
      fmt::format("SELECT {} FROM deployments WHERE release_id = :r AND host = :h AND kind = :k "
                  "AND result = 'succeeded' ORDER BY attempt DESC LIMIT 1",
                  detail::kColumns),
      [&](soci::statement& st) {
        st.exchange(soci::use(r, "r"));
        st.exchange(soci::use(h, "h"));
        st.exchange(soci::use(kind, "k"));
      });
  if (installs.empty()) return std::nullopt;
  return installs.front().version;
}

}  // namespace

std::string UpgradeRecord::Event() const {
  return fmt::format("{}.{}", kind, DeploymentResultName(result));
}

std::string UpgradeRecord::IdempotencyKey() const {
  return fmt::format("{}/{}/{}/{}/{}", release_id, host, package, to_version, Event());
}

std::string UpgradeRecord::ResultingVersion() const {
  return result == DeploymentResult::kSucceeded ? to_version : from_version;
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
          {"result", DeploymentResultName(result)},
          {"operator", operator_name},
          {"kind", kind},
          {"recorded", recorded}};
}

namespace {

// RecordUpgrades' statements, prepared once: every production deployment's
// end runs them.
struct UpgradeStatements {
  explicit UpgradeStatements(soci::session& sql)
      : exists(sql),
        highest((sql.prepare << "SELECT MAX(id) FROM upgrade_records", soci::into(id, id_ind))),
        insert(sql),
        connectors(OneShot(sql, "SELECT name FROM cmdb_connectors WHERE active = 1 ORDER BY name",
                           soci::into(connector))) {
    static constexpr JsonColumn kIds[] = {{"id"}};
    exists.exchange(soci::into(deployment));
    exists.exchange(soci::use(ids, "ids"));
    exists.alloc();
    exists.prepare(fmt::format(
        "SELECT deployment_id FROM upgrade_records WHERE deployment_id IN (SELECT id FROM {})",
        JsonRowsSql(BackendOf(sql), "ids", kIds, "i")));
    exists.define_and_bind();
    static constexpr JsonColumn kRows[] = {{"id", true}, {"d"},   {"r"},  {"h"},  {"p"},
                                           {"pid"},      {"fv"},  {"fs"}, {"tv"}, {"st", true},
                                           {"fi", true}, {"res"}, {"op"}, {"k"},  {"rec"}};
    insert.exchange(soci::use(rows, "rows"));
    insert.alloc();
    insert.prepare(fmt::format(
        "INSERT INTO upgrade_records ({}) SELECT id, d, r, h, p, pid, fv, fs, tv, st, fi, res, "
        "op, k, rec FROM {}",
        kRecordColumns, JsonRowsSql(BackendOf(sql), "rows", kRows, "u")));
    insert.define_and_bind();
  }
  std::string ids, deployment, rows, connector;
  long long id = 0;
  soci::indicator id_ind = soci::i_null;
  soci::statement exists, highest, insert, connectors;
};

}  // namespace

std::size_t RecordUpgrades(Transaction& tx,
                           std::span<const std::pair<UpgradeRecord, const AuditOrigin*>> records) {
  if (records.empty()) return 0;
  UpgradeStatements& s = tx.Cached<UpgradeStatements>();
  // Which deployments have a record already.
  std::set<std::string> recorded;
  {
    json ids = json::array();
    for (const auto& [record, origin] : records) ids.push_back({{"id", record.deployment_id}});
    s.ids = ids.dump();
    s.exists.execute(false);
    while (s.exists.fetch()) recorded.insert(s.deployment);
  }
  s.id_ind = soci::i_null;
  s.highest.execute(true);
  long long id = s.id_ind == soci::i_ok ? s.id : 0;
  StatementCache::Finish(s.highest);
  std::vector<std::string> connectors;
  s.connectors.execute(false);
  while (s.connectors.fetch()) connectors.push_back(s.connector);

  // One row, one message per active connector (the same exact body for
  // each), one audit entry for each record.
  json rows = json::array();
  std::vector<UpgradeRecord> kept;
  std::vector<const AuditOrigin*> kept_origins;
  std::vector<NewOutboxMessage> messages;
  for (const auto& [input, origin] : records) {
    if (!recorded.insert(input.deployment_id).second) continue;
    UpgradeRecord& r = kept.emplace_back(input);
    kept_origins.push_back(origin);
    r.id = ++id;
    if (r.recorded.empty()) r.recorded = tx.clock().Utc();
    rows.push_back({{"id", r.id},
                    {"d", r.deployment_id},
                    {"r", r.release_id},
                    {"h", r.host},
                    {"p", r.package},
                    {"pid", r.package_id},
                    {"fv", r.from_version},
                    {"fs", r.from_source},
                    {"tv", r.to_version},
                    {"st", r.started},
                    {"fi", r.finished},
                    {"res", DeploymentResultName(r.result)},
                    {"op", r.operator_name},
                    {"k", r.kind},
                    {"rec", r.recorded}});
    if (connectors.empty()) continue;
    json payload = r.ToJson();
    payload["event"] = r.Event();
    payload["idempotency_key"] = r.IdempotencyKey();
    payload["installed_version"] = r.ResultingVersion();
    const std::string body = payload.dump();
    for (const std::string& connector : connectors) {
      messages.push_back({connector, r.IdempotencyKey(), r.release_id, body});
    }
  }
  if (kept.empty()) return 0;
  s.rows = rows.dump();
  s.insert.execute(true);
  const std::map<std::string, std::size_t> queued = EnqueueOutboxMessages(tx, messages);

  std::vector<std::pair<AuditOrigin, AuditEvent>> audits;
  for (std::size_t i = 0; i < kept.size(); ++i) {
    const UpgradeRecord& r = kept[i];
    const std::string key = r.IdempotencyKey();
    auto count = queued.find(key);
    AuditEvent event("cmdb.record", "upgrade_record", std::to_string(r.id));
    event.release_id = r.release_id;
    event.after = r.ToJson();
    event.detail = {{"idempotency_key", key},
                    {"queued", count == queued.end() ? std::size_t{0} : count->second}};
    audits.emplace_back(kept_origins[i] != nullptr ? *kept_origins[i] : tx.origin(),
                        std::move(event));
  }
  tx.AuditAll(audits);
  if (!queued.empty()) tx.AfterCommit(RingOutbox);
  return kept.size();
}

void RecordDeploymentEnds(Transaction& tx, std::span<const DeploymentEnd> ends, UnixSeconds now) {
  std::vector<const DeploymentEnd*> production;
  for (const DeploymentEnd& end : ends) {
    if (end.deployment->environment == kProductionEnvironment) production.push_back(&end);
  }
  if (production.empty()) return;
  const Baselines baselines = BeforeBaselines(tx, production);
  // The rows' first-event times may be newer than the callers' copies.
  std::vector<std::string> ids;
  for (const DeploymentEnd* end : production) ids.push_back(end->deployment->id);
  const std::map<std::string, DeploymentRecord> rows = detail::FindDeployments(tx, ids);
  std::map<std::pair<std::string, std::string_view>, std::string> actors;
  auto actor = [&](const std::string& release_id, std::string_view action) -> const std::string& {
    auto [it, made] = actors.try_emplace({release_id, action});
    if (made) it->second = HistoryActor(tx, release_id, action);
    return it->second;
  };
  std::vector<std::pair<UpgradeRecord, const AuditOrigin*>> records;
  for (const DeploymentEnd* end : production) {
    const DeploymentRecord& d = *end->deployment;
    UpgradeRecord r;
    r.deployment_id = d.id;
    r.release_id = d.release_id;
    r.host = d.host;
    r.package = d.app;
    r.package_id = d.package_id;
    r.kind = std::string(protocol::DeploymentKindName(d.kind));
    // 1. the release's `before` baseline; 2. and 3.: FromReportedVersion.
    auto [from, source] = [&]() -> std::pair<std::string, std::string> {
      auto baseline = baselines.find({d.release_id, d.host});
      if (baseline == baselines.end()) return FromReportedVersion(tx.sql(), d);
      auto version = baseline->second.find(d.app);
      return {version == baseline->second.end() ? std::string() : version->second, "baseline"};
    }();
    if (d.kind == protocol::DeploymentKind::kRollback) {
      // A rollback leaves what this release installed on the host (its install
      // succeeded, or there would be nothing to restore).
      if (auto version = SucceededInstallVersion(tx.sql(), d.release_id, d.host)) {
        from = *version;
        source = "install";
      }
    }
    r.from_version = from;
    r.from_source = source;
    r.to_version = d.version;
    if (r.to_version.empty()) r.to_version = ReportedVersion(tx.sql(), d.id);
    auto row = rows.find(d.id);
    const UnixSeconds started = row != rows.end() ? row->second.started : 0;
    r.started = started > 0 ? started : (d.started > 0 ? d.started : d.created);
    r.finished = now;
    r.result = end->result;
    if (d.kind == protocol::DeploymentKind::kRollback) {
      r.operator_name = actor(d.release_id, release::ActionName(release::Action::kRollback));
    }
    if (r.operator_name.empty()) {
      r.operator_name = actor(d.release_id, release::ActionName(release::Action::kStartRollout));
    }
    records.emplace_back(std::move(r), end->origin);
  }
  RecordUpgrades(tx, records);
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
  return cmdb_detail::Query<RecordRow>(
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

}  // namespace fabu::coordinator
