// The baselines of a release (cmdb.hpp): what each host ran before the
// rollout and after it, as its agent last reported.
#include <fmt/format.h>
#include <soci/soci.h>

#include "coordinator/cmdb/cmdb.hpp"

namespace fabu::coordinator {

using nlohmann::json;

Result<std::size_t> TakeBaseline(Transaction& tx, std::string_view release_id,
                                 std::string_view phase, const std::vector<std::string>& hosts,
                                 UnixSeconds now,
                                 const std::map<std::string, std::string>& reasons) {
  if (phase != kBaselineBefore && phase != kBaselineAfter && phase != kBaselineOutside) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("baseline phase \"{}\": must be before, after or outside", phase));
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
  std::string insert_app, insert_version, reason;
  soci::statement insert =
      (sql.prepare << "INSERT INTO cmdb_baselines (release_id, phase, taken, host, app, version, "
                      "reason) VALUES (:r, :p, :t, :h, :a, :v, :why)",
       soci::use(release), soci::use(p), soci::use(taken), soci::use(h), soci::use(insert_app),
       soci::use(insert_version), soci::use(reason));
  std::vector<std::string> done;
  json snapshot = json::object();
  json not_on_version = json::object();
  for (const std::string& host : hosts) {
    h = host;
    already = 0;
    count.execute(true);
    if (already > 0) continue;
    auto why = reasons.find(host);
    reason = why == reasons.end() ? std::string() : why->second;
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
    if (!reason.empty()) not_on_version[host] = reason;
    done.push_back(host);
  }
  if (!done.empty()) {
    AuditEvent event("cmdb.baseline", "release", release);
    event.release_id = release;
    event.detail = {{"phase", p}, {"hosts", snapshot}};
    if (!not_on_version.empty()) event.detail["not_on_version"] = std::move(not_on_version);
    tx.Audit(event);
  }
  return done.size();
}

json BaselineRow::ToJson() const {
  return {{"phase", phase},     {"taken", protocol::FormatRfc3339Utc(taken)},
          {"host", host},       {"app", app},
          {"version", version}, {"reason", reason}};
}

std::vector<BaselineRow> ListBaseline(soci::session& sql, std::string_view release_id) {
  std::string key(release_id), phase, host, app, version, reason;
  long long taken = 0;
  soci::statement st = (sql.prepare << "SELECT phase, taken, host, app, version, reason FROM "
                                       "cmdb_baselines WHERE release_id = :r "
                                       "ORDER BY phase DESC, host, app",
                        soci::use(key), soci::into(phase), soci::into(taken), soci::into(host),
                        soci::into(app), soci::into(version), soci::into(reason));
  st.execute(false);
  std::vector<BaselineRow> out;
  while (st.fetch()) out.push_back({phase, taken, host, app, version, reason});
  return out;
}

}  // namespace fabu::coordinator
