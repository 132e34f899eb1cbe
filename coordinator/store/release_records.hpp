// Release records in the store: one row per release holding the whole
// release (release::ReleaseToJson) plus the columns that lists filter on, and
// one row per change-request reference.
//
// The workflow itself is pure (coordinator/release/workflow.hpp); these
// functions only load and save its values. Call them inside Store::Read or
// Store::Write (they take the SOCI session; SOCI exceptions propagate to the
// Store boundary). Ids are "R-<n>", n assigned max+1 inside the writing
// transaction (the store serializes writers).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/release/workflow.hpp"
#include "coordinator/store/store.hpp"
#include "protocol/error.hpp"

namespace soci {
class session;
}

namespace fabu::coordinator {

// The next free release id ("R-1", "R-2", ...).
std::string NextReleaseId(soci::session& sql);

void InsertRelease(soci::session& sql, const release::Release& r);
void SaveRelease(soci::session& sql, const release::Release& r);

// Raised (Transaction::Raise) when a release moved from `before` to `after`;
// the notices listen (docs/architecture.md).
struct ReleaseChanged {
  const release::Release& before;
  const release::Release& after;
};

// The one way a release's transition is kept, whoever made it (a person
// through the API, the rollout engine): saves `after`, appends the audit
// entry "release.<action>" (its before and after, `detail` with "from" and
// "to" added) and raises ReleaseChanged, all in `tx`. `action` defaults to
// the name of the last history entry's action.
void SaveTransition(Transaction& tx, const release::Release& before, const release::Release& after,
                    nlohmann::json detail = nlohmann::json::object(), std::string_view action = {});

// kNotFound naming the id when there is no such release.
Result<release::Release> LoadRelease(soci::session& sql, const std::string& id,
                                     const release::PlanParseOptions& options);
// The same with its statement prepared once (Store::ReadCached): what the
// release's page and `fabu release show` read.
Result<release::Release> LoadRelease(soci::session& sql, StatementCache& statements,
                                     const std::string& id,
                                     const release::PlanParseOptions& options);

struct ReleaseFilter {
  std::optional<release::ReleaseState> state;
  std::optional<std::string> change_ref;
  std::optional<std::string> product;
};

struct ReleaseSummary {
  std::string id;
  std::string title;
  std::string product;
  std::string version;
  std::string category;
  std::string state;
  std::string owner;
  std::string updated;
  std::vector<std::string> change_refs;
  nlohmann::json ToJson() const;
};

std::vector<ReleaseSummary> ListReleases(soci::session& sql, const ReleaseFilter& filter);

// The highest version of `product` that was released: a release that reached
// deployed, or was closed with success or partial. nullopt when none was.
std::optional<protocol::Version> LastReleasedVersion(soci::session& sql,
                                                     const std::string& product);

// True when the package store holds `package_id`.
bool PackageExists(soci::session& sql, const std::string& package_id);

}  // namespace fabu::coordinator
