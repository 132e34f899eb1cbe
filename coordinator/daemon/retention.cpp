#include "coordinator/daemon/retention.hpp"

#include <fmt/format.h>
#include <soci/soci.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "coordinator/hosts/hosts.hpp"
#include "coordinator/store/release_records.hpp"
#include "coordinator/store/row_query.hpp"
#include "platform/fs/files.hpp"

namespace fabu::coordinator {
namespace {

namespace rel = release;
using protocol::UnixSeconds;

constexpr std::int64_t kDay = 86400;

// The events of deployments final before :c that gc removes: all but the
// last one and the latest `failed` one with output (retention.hpp).
constexpr std::string_view kEventsToRemove =
    "FROM deployment_events WHERE deployment IN (SELECT id FROM deployments WHERE final = 1 AND "
    "finished > 0 AND finished < :c) "
    "AND sequence < (SELECT MAX(e2.sequence) FROM deployment_events e2 "
    "WHERE e2.deployment = deployment_events.deployment) "
    "AND NOT (step = 'failed' AND output <> '' AND sequence = (SELECT MAX(e3.sequence) FROM "
    "deployment_events e3 WHERE e3.deployment = deployment_events.deployment AND "
    "e3.step = 'failed' AND e3.output <> ''))";

struct PackageRow {
  RemovedPackage package;
  UnixSeconds uploaded = 0;
};

// Every package id a kept release names.
std::set<std::string> NamedByKeptReleases(soci::session& sql, UnixSeconds cutoff,
                                          const rel::PlanParseOptions& options,
                                          std::vector<std::string>& unreadable) {
  std::vector<std::string> ids;
  {
    std::string id;
    soci::statement st = OneShot(sql, "SELECT id FROM releases ORDER BY seq", soci::into(id));
    st.execute();
    while (st.fetch()) ids.push_back(id);
  }
  std::set<std::string> keep;
  for (const std::string& id : ids) {
    auto r = LoadRelease(sql, id, options);
    if (!r) {
      unreadable.push_back(fmt::format("{}: {}", id, r.error().message()));
      continue;
    }
    const bool ended =
        r->state == rel::ReleaseState::kClosed || r->state == rel::ReleaseState::kCancelled;
    if (ended && r->updated_at < cutoff) continue;
    keep.insert(r->plan.packages.begin(), r->plan.packages.end());
  }
  return keep;
}

// (name, version) of every package a host not removed might roll back to.
std::set<std::pair<std::string, std::string>> RollbackTargets(soci::session& sql) {
  std::set<std::pair<std::string, std::string>> targets;
  for (const HostRecord& host : ListHosts(sql)) {
    for (const InstalledAppRecord& app : host.apps) {
      if (!app.current.empty()) targets.emplace(app.name, app.current);
      for (const std::string& version : app.releases) targets.emplace(app.name, version);
    }
  }
  // The versions of the latest upgrade of each app on each host (the CMDB):
  // the one before it, and the one it installed, should the host's
  // inventory not have been reported since.
  std::string package, from, to;
  soci::statement st =
      OneShot(sql,
              "SELECT u.package, u.from_version, u.to_version FROM upgrade_records u "
              "JOIN hosts h ON h.name = u.host AND h.removed = 0 "
              "WHERE u.id = (SELECT MAX(u2.id) FROM upgrade_records u2 "
              "WHERE u2.host = u.host AND u2.package = u.package)",
              soci::into(package), soci::into(from), soci::into(to));
  st.execute();
  while (st.fetch()) {
    if (!from.empty()) targets.emplace(package, from);
    if (!to.empty()) targets.emplace(package, to);
  }
  return targets;
}

std::vector<PackageRow> AllPackages(soci::session& sql) {
  std::vector<PackageRow> rows;
  std::string id, name, version, uploaded;
  long long size = 0;
  soci::statement st = OneShot(sql,
                               "SELECT id, name, version, size, uploaded FROM packages "
                               "ORDER BY name, version, id",
                               soci::into(id), soci::into(name), soci::into(version),
                               soci::into(size), soci::into(uploaded));
  st.execute();
  while (st.fetch()) {
    PackageRow row;
    row.package = {id, name, version, static_cast<std::uint64_t>(size)};
    // A time that does not parse counts as now: such a package is kept.
    auto parsed = protocol::ParseRfc3339(uploaded);
    row.uploaded = parsed ? parsed->seconds : std::numeric_limits<UnixSeconds>::max();
    rows.push_back(std::move(row));
  }
  return rows;
}

// Makes the transaction a writer before it reads: run from the command line
// beside a serving daemon, gc then waits for the daemon's commit in progress
// and decides on what is committed, instead of reading first and finding at
// its first delete that the daemon wrote meanwhile (SQLite's stale snapshot).
// Changes nothing.
void TakeWriteLock(soci::session& sql) { sql << "UPDATE audit_head SET seq = seq WHERE id = 1"; }

// The first transaction: decides, removes the rows, audits. The ids of the
// packages whose rows went are in the summary.
Result<GcSummary> RemoveRows(Transaction& tx, int retention_days, UnixSeconds now,
                             const rel::PlanParseOptions& options) {
  GcSummary summary;
  summary.retention_days = retention_days;
  summary.cutoff = retention_days > 0 ? now - retention_days * kDay : 0;
  soci::session& sql = tx.sql();
  TakeWriteLock(sql);
  if (retention_days > 0) {
    std::vector<std::string> unreadable;
    const std::set<std::string> named =
        NamedByKeptReleases(sql, summary.cutoff, options, unreadable);
    if (!unreadable.empty()) {
      // Which packages it names is unknown: removing none is the safe answer.
      return Fail(ErrorCode::kIntegrity,
                  fmt::format("gc removed nothing: {} release record(s) unreadable: {}",
                              unreadable.size(), unreadable.front()));
    }
    const auto targets = RollbackTargets(sql);
    for (PackageRow& row : AllPackages(sql)) {
      const RemovedPackage& p = row.package;
      if (named.contains(p.id) || targets.contains({p.name, p.version}) ||
          row.uploaded >= summary.cutoff) {
        ++summary.packages_kept;
        continue;
      }
      std::string id = p.id;
      sql << "DELETE FROM packages WHERE id = :id", soci::use(id);
      // Its copy for the other coordinators (PostgreSQL; none on SQLite).
      sql << "DELETE FROM package_chunks WHERE package_id = :id", soci::use(id);
      summary.package_bytes += p.size;
      summary.packages.push_back(std::move(row.package));
    }

    long long cutoff = summary.cutoff;
    long long events = 0, deployments = 0;
    sql << fmt::format("SELECT COUNT(*), COUNT(DISTINCT deployment) {}", kEventsToRemove),
        soci::use(cutoff, "c"), soci::into(events), soci::into(deployments);
    if (events > 0) {
      sql << fmt::format("DELETE {}", kEventsToRemove), soci::use(cutoff, "c");
    }
    summary.events = static_cast<std::uint64_t>(events);
    summary.deployments = static_cast<std::uint64_t>(deployments);
  } else {
    long long kept = 0;
    sql << "SELECT COUNT(*) FROM packages", soci::into(kept);
    summary.packages_kept = static_cast<std::uint64_t>(kept);
  }

  AuditEvent event("retention.gc", "store", "retention");
  nlohmann::json removed = nlohmann::json::array();
  for (const RemovedPackage& p : summary.packages) {
    removed.push_back({{"id", p.id}, {"name", p.name}, {"version", p.version}, {"size", p.size}});
  }
  event.detail = {{"retention_days", retention_days},
                  {"cutoff", retention_days > 0 ? rel::FormatRfc3339Utc(summary.cutoff) : ""},
                  {"packages", summary.packages.size()},
                  {"package_bytes", summary.package_bytes},
                  {"packages_kept", summary.packages_kept},
                  {"events", summary.events},
                  {"deployments", summary.deployments},
                  {"removed", std::move(removed)}};
  tx.Audit(event);
  return summary;
}

bool RowExists(soci::session& sql, const std::string& id) {
  int n = 0;
  sql << "SELECT COUNT(*) FROM packages WHERE id = :id", soci::use(id), soci::into(n);
  return n > 0;
}

// The second transaction: unlinks the files of packages that have no row,
// those removed now and those a crash left before their row was written
// (older than the cutoff). Holding the store's write lock, so no upload
// records a row meanwhile.
Result<std::vector<std::string>> RemoveFiles(Transaction& tx, const DataDir& data,
                                             const GcSummary& summary) {
  TakeWriteLock(tx.sql());
  std::vector<std::string> problems;
  std::set<std::string> candidates;
  for (const RemovedPackage& p : summary.packages) candidates.insert(p.id);
  std::error_code ec;
  const auto cutoff =
      std::chrono::system_clock::from_time_t(static_cast<std::time_t>(summary.cutoff));
  for (const auto& entry : std::filesystem::directory_iterator(data.packages(), ec)) {
    const std::filesystem::path& path = entry.path();
    if (path.extension() != ".fabu" || !entry.is_regular_file(ec)) continue;
    const auto written = std::filesystem::last_write_time(path, ec);
    if (ec) continue;
    const auto written_at = std::chrono::file_clock::to_sys(written);
    if (written_at < cutoff) candidates.insert(path.stem().string());
  }
  if (ec) {
    problems.push_back(fmt::format("listing {}: {}", data.packages().string(), ec.message()));
  }
  bool removed_any = false;
  for (const std::string& id : candidates) {
    if (RowExists(tx.sql(), id)) continue;
    const std::filesystem::path path = data.packages() / (id + ".fabu");
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      problems.push_back(fmt::format("removing {}: {}", path.string(), std::strerror(errno)));
      continue;
    }
    removed_any = true;
  }
  if (removed_any) {
    if (auto ok = platform::SyncDirectory(data.packages()); !ok) {
      problems.push_back(ok.error().message());
    }
  }
  return problems;
}

}  // namespace

Result<GcSummary> CollectGarbage(Store& store, const DataDir& data, int retention_days,
                                 const release::PlanParseOptions& options,
                                 const AuditOrigin& origin) {
  if (retention_days < 0) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("retention.days: must be 0 or more, not {}", retention_days));
  }
  const UnixSeconds now = store.clock().Seconds();
  auto summary = store.Write(
      origin, [&](Transaction& tx) { return RemoveRows(tx, retention_days, now, options); });
  if (!summary) return std::unexpected(summary.error().WithContext("gc"));
  if (retention_days == 0) return summary;
  auto problems =
      store.Write(origin, [&](Transaction& tx) { return RemoveFiles(tx, data, *summary); });
  if (!problems) return std::unexpected(problems.error().WithContext("gc: removing package files"));
  summary->problems = std::move(*problems);
  return summary;
}

std::string DescribeGc(const GcSummary& s) {
  std::string out;
  if (s.retention_days == 0) {
    return fmt::format("retention.days is 0: everything is kept ({} packages)\n", s.packages_kept);
  }
  for (const RemovedPackage& p : s.packages) {
    out += fmt::format("removed package {} {} ({}, {} bytes)\n", p.name, p.version, p.id, p.size);
  }
  out += fmt::format(
      "gc (retention {} days, before {}): removed {} package(s), {} bytes; kept {} package(s); "
      "removed {} deployment event(s) of {} deployment(s)\n",
      s.retention_days, rel::FormatRfc3339Utc(s.cutoff), s.packages.size(), s.package_bytes,
      s.packages_kept, s.events, s.deployments);
  return out;
}

}  // namespace fabu::coordinator
