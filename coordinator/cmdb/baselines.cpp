// The baselines of a release (cmdb.hpp): what each host ran before the
// rollout and after it, as its agent last reported.
#include <fmt/format.h>
#include <soci/soci.h>

#include <map>
#include <set>
#include <utility>
#include <vector>

#include "coordinator/cmdb/cmdb.hpp"
#include "coordinator/store/dialect.hpp"
#include "coordinator/store/row_query.hpp"

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
  std::string release(release_id), p(phase);
  long long taken = now;
  // A few statements for all the hosts, whatever their number (one per host
  // was most of `release start` for 5,000 hosts on PostgreSQL, a round trip
  // each): the hosts in this baseline already, the apps of the others, and
  // their rows.
  const std::string names_text = JsonRowsOf(hosts, "h");
  static constexpr JsonColumn kNames[] = {{"h"}};
  const std::string named = JsonRowsSql(BackendOf(sql), "names", kNames, "n");
  std::set<std::string> in_baseline;
  {
    std::string host;
    soci::statement st =
        OneShot(sql,
                fmt::format("SELECT DISTINCT host FROM cmdb_baselines WHERE release_id = "
                            ":r AND phase = :p AND host IN (SELECT h FROM {})",
                            named),
                soci::use(release, "r"), soci::use(p, "p"), soci::use(names_text, "names"),
                soci::into(host));
    st.execute(false);
    while (st.fetch()) in_baseline.insert(host);
  }
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> installed;
  {
    std::string host, app, version;
    soci::statement st = OneShot(
        sql,
        fmt::format("SELECT host, app, current_version FROM host_apps WHERE host "
                    "IN (SELECT h FROM {}) ORDER BY host, app",
                    named),
        soci::use(names_text, "names"), soci::into(host), soci::into(app), soci::into(version));
    st.execute(false);
    while (st.fetch()) installed[host].emplace_back(app, version);
  }
  std::vector<std::string> done;
  json rows = json::array();
  json snapshot = json::object();
  json not_on_version = json::object();
  for (const std::string& host : hosts) {
    if (!in_baseline.insert(host).second) continue;  // kept, or named twice
    auto why = reasons.find(host);
    const std::string reason = why == reasons.end() ? std::string() : why->second;
    std::vector<std::pair<std::string, std::string>> apps = std::move(installed[host]);
    if (apps.empty()) apps.emplace_back("", "");
    json host_apps = json::object();
    for (auto& [name, current] : apps) {
      rows.push_back({{"h", host}, {"a", name}, {"v", current}, {"why", reason}});
      if (!name.empty()) host_apps[name] = current;
    }
    snapshot[host] = host_apps;
    if (!reason.empty()) not_on_version[host] = reason;
    done.push_back(host);
  }
  if (!rows.empty()) {
    static constexpr JsonColumn kRows[] = {{"h"}, {"a"}, {"v"}, {"why"}};
    const std::string rows_text = rows.dump();
    sql << fmt::format(
        "INSERT INTO cmdb_baselines (release_id, phase, taken, host, app, version, reason) "
        "SELECT :r, :p, :t, h, a, v, why FROM {}",
        JsonRowsSql(BackendOf(sql), "rows", kRows, "b")),
        soci::use(release, "r"), soci::use(p, "p"), soci::use(taken, "t"),
        soci::use(rows_text, "rows");
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
  soci::statement st =
      OneShot(sql,
              "SELECT phase, taken, host, app, version, reason FROM "
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
