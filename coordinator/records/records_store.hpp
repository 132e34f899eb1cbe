// The store side of the records: incidents (the `incidents` table
// the rollout engine writes to; people add and close them here), the review
// notes of releases (`release_review_notes`, migration 8), and the inputs of
// the period report.
//
// Functions take the session or Transaction the caller holds (Store::Read /
// Store::Write); mutations audit in the same transaction. SOCI exceptions
// propagate to the Store boundary. Thread safety is the Store's.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "coordinator/release/kpi.hpp"
#include "coordinator/store/store.hpp"

namespace fabu::coordinator {

using release::UnixSeconds;

// Incidents, oldest first; only those of `release_id` when given.
std::vector<release::IncidentRecord> ListIncidents(soci::session& sql,
                                                   const std::optional<std::string>& release_id);
// kNotFound naming the id.
Result<release::IncidentRecord> FindIncident(soci::session& sql, const std::string& id);

// Adds a manual incident (through RecordIncident, audited
// "incident.create"). kInvalidArgument for an empty summary or a bad
// severity; kNotFound for an unknown release.
Result<release::IncidentRecord> AddIncident(Transaction& tx, const std::string& release_id,
                                            const std::string& host, std::string_view severity,
                                            const std::string& summary, UnixSeconds now);

// Closes an open incident; audited "incident.close". kNotFound for an
// unknown id, kConflict when it is closed already.
Result<release::IncidentRecord> CloseIncident(Transaction& tx, const std::string& id,
                                              UnixSeconds now);

struct ReviewNotes {
  std::string release_id;
  std::string notes;
  UnixSeconds updated = 0;
  std::string updated_by;
};
// Sets (or replaces) the review notes of a release; audited
// "release.review-notes" with the previous text. kInvalidArgument for empty
// notes, kNotFound for an unknown release.
Result<ReviewNotes> SetReviewNotes(Transaction& tx, const std::string& release_id,
                                   const std::string& notes, UnixSeconds now);
std::optional<ReviewNotes> GetReviewNotes(soci::session& sql, const std::string& release_id);

// Every release, incident and review note: what ComputeReport reads.
// Records that cannot be read are skipped and named in `unreadable`.
release::ReportInputs LoadReportInputs(soci::session& sql, const release::PlanParseOptions& options,
                                       std::vector<std::string>* unreadable = nullptr);

}  // namespace fabu::coordinator
