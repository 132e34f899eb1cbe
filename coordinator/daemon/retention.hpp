// Retention: what the coordinator removes so its data directory does not
// grow forever (`fabu-coordinator gc --data DIR`, and the daemon once a day;
// docs/coordinator.md "Retention").
//
// With a retention period of D days (config.json `retention.days`, 365 by
// default; 0 keeps everything forever) and "the cutoff" = now - D days:
//
// Packages. A stored package is kept when any of these holds, and removed
// (its row, then its file) otherwise:
//   - a release names it (its plan's packages) that is not closed or
//     cancelled, or was closed or cancelled at or after the cutoff;
//   - a host not removed may still need it for a rollback: its name and
//     version are an app's current version or one of the releases it keeps
//     (the host inventory, `host_apps`), or the version before or after the
//     latest upgrade record of that app on that host (`upgrade_records`);
//   - it was uploaded at or after the cutoff (so a package uploaded for a
//     release not yet written is never taken from under it).
// The decision and the removal of the rows are one store transaction, so a
// release that names a package commits either before it (and the package
// stays) or after it (and is refused: no such package). The files go in a
// second transaction, each only while no row names it; an upload that put
// the same file back meanwhile finds it gone when it records its row and is
// refused, to be sent again (packages/package_store.hpp).
//
// Deployment events. Of a deployment final before the cutoff, only two
// events stay: its last one (its final step, and the sequence an agent's
// acknowledgement counts from) and its latest `failed` event with output (the
// hook output the release report and `fabu release hosts` show). Every other
// event of it is removed. The deployment row, which already holds its final
// step, result, message and times, and the upgrade record, written when the
// deployment ended, stay: the release report and the upgrade record table
// read only those, so they render the same before and after.
//
// What is never removed: releases, deployments, upgrade records, baselines,
// incidents, hosts, users and the audit trail, whose chain is not shortened.
// Each run appends one audit entry "retention.gc" with what it removed.
//
// Functions block (SQLite, unlink): call them from a worker thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "coordinator/common/data_dir.hpp"
#include "coordinator/release/release_plan.hpp"
#include "coordinator/store/store.hpp"
#include "protocol/error.hpp"

namespace fabu::coordinator {

struct RemovedPackage {
  std::string id;
  std::string name;
  std::string version;
  std::uint64_t size = 0;
};

struct GcSummary {
  int retention_days = 0;  // 0: nothing was removed (keep forever)
  protocol::UnixSeconds cutoff = 0;
  std::vector<RemovedPackage> packages;  // removed, by name and version
  std::uint64_t package_bytes = 0;       // their sizes summed
  std::uint64_t packages_kept = 0;
  std::uint64_t events = 0;       // deployment events removed
  std::uint64_t deployments = 0;  // deployments whose events were summarised
  // Package files that could not be unlinked (their rows are gone), one
  // sentence each; the next gc tries them again.
  std::vector<std::string> problems;
};

// Runs the retention rules above on `store` at its clock's now, audited as
// "retention.gc" by `origin`, and removes the package files from
// data.packages().
Result<GcSummary> CollectGarbage(Store& store, const DataDir& data, int retention_days,
                                 const release::PlanParseOptions& options,
                                 const AuditOrigin& origin);

// One line per removed package and a total line, as `fabu-coordinator gc`
// prints and the daemon logs.
std::string DescribeGc(const GcSummary& summary);

}  // namespace fabu::coordinator
