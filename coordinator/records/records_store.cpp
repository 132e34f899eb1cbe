#include "coordinator/records/records_store.hpp"

#include <fmt/format.h>

#include "coordinator/deploy/rollout_engine.hpp"
#include "coordinator/release/release_plan.hpp"
#include "coordinator/store/release_records.hpp"
#include "coordinator/store/row_query.hpp"

namespace fabu::coordinator {
namespace {

namespace rel = release;

constexpr std::string_view kIncidentColumns =
    "id, release_id, host, severity, summary, source, state, created, created_by, closed, "
    "closed_by";

rel::IncidentRecord IncidentOf(const soci::row& row) {
  rel::IncidentRecord i;
  i.id = row.get<std::string>(0);
  i.release_id = row.get<std::string>(1);
  i.host = row.get<std::string>(2);
  i.severity = row.get<std::string>(3);
  i.summary = row.get<std::string>(4);
  i.source = row.get<std::string>(5);
  i.state = row.get<std::string>(6);
  i.created = row.get<long long>(7);
  i.created_by = row.get<std::string>(8);
  i.closed = row.get<long long>(9);
  i.closed_by = row.get<std::string>(10);
  return i;
}

bool ReleaseExists(soci::session& sql, const std::string& id) {
  int n = 0;
  sql << "SELECT COUNT(*) FROM releases WHERE id = :id", soci::use(id), soci::into(n);
  return n > 0;
}

}  // namespace

std::vector<rel::IncidentRecord> ListIncidents(soci::session& sql,
                                               const std::optional<std::string>& release_id) {
  std::vector<rel::IncidentRecord> out;
  std::string r = release_id.value_or("");
  std::string query = fmt::format("SELECT {} FROM incidents", kIncidentColumns);
  if (release_id) query += " WHERE release_id = :r";
  query += " ORDER BY seq";
  soci::row row;
  soci::statement st(sql);
  st.exchange(soci::into(row));
  if (release_id) st.exchange(soci::use(r, "r"));
  st.alloc();
  st.prepare(query);
  st.define_and_bind();
  st.execute(false);
  while (st.fetch()) out.push_back(IncidentOf(row));
  return out;
}

Result<rel::IncidentRecord> FindIncident(soci::session& sql, const std::string& id) {
  soci::row row;
  sql << fmt::format("SELECT {} FROM incidents WHERE id = :id", kIncidentColumns), soci::use(id),
      soci::into(row);
  if (!sql.got_data()) {
    return Fail(ErrorCode::kNotFound, fmt::format("no incident {} (see `fabu incident list`)", id));
  }
  return IncidentOf(row);
}

Result<rel::IncidentRecord> AddIncident(Transaction& tx, const std::string& release_id,
                                        const std::string& host, std::string_view severity,
                                        const std::string& summary, UnixSeconds now) {
  auto parsed = rel::ParseSeverity(severity);
  if (!parsed) return std::unexpected(parsed.error());
  if (release::IsBlank(summary)) {
    return Fail(ErrorCode::kInvalidArgument, "summary: must say what happened (it is empty)");
  }
  if (!ReleaseExists(tx.sql(), release_id)) {
    return Fail(ErrorCode::kNotFound,
                fmt::format("release: no release {} (see `fabu release list`)", release_id));
  }
  const std::string id = RecordIncident(tx, release_id, host, *parsed, summary, "manual", now);
  return FindIncident(tx.sql(), id);
}

Result<rel::IncidentRecord> CloseIncident(Transaction& tx, const std::string& id, UnixSeconds now) {
  auto incident = FindIncident(tx.sql(), id);
  if (!incident) return incident;
  if (incident->state == "closed") {
    return Fail(ErrorCode::kConflict,
                fmt::format("incident {} was closed by {} already", id, incident->closed_by));
  }
  long long at = now;
  std::string by = tx.origin().actor, closed = "closed";
  tx.sql() << "UPDATE incidents SET state = :s, closed = :c, closed_by = :b WHERE id = :id",
      soci::use(closed), soci::use(at), soci::use(by), soci::use(id);
  AuditEvent event("incident.close", "incident", id);
  event.release_id = incident->release_id;
  event.detail = {{"severity", incident->severity}, {"summary", incident->summary}};
  tx.Audit(event);
  return FindIncident(tx.sql(), id);
}

Result<ReviewNotes> SetReviewNotes(Transaction& tx, const std::string& release_id,
                                   const std::string& notes, UnixSeconds now) {
  if (release::IsBlank(notes)) {
    return Fail(ErrorCode::kInvalidArgument, "notes: the review notes are empty");
  }
  if (!ReleaseExists(tx.sql(), release_id)) {
    return Fail(ErrorCode::kNotFound,
                fmt::format("no release {} (see `fabu release list`)", release_id));
  }
  auto before = GetReviewNotes(tx.sql(), release_id);
  ReviewNotes after{release_id, notes, now, tx.origin().actor};
  long long at = now;
  if (before) {
    tx.sql() << "UPDATE release_review_notes SET notes = :n, updated = :u, updated_by = :b "
                "WHERE release_id = :r",
        soci::use(after.notes), soci::use(at), soci::use(after.updated_by),
        soci::use(after.release_id);
  } else {
    tx.sql() << "INSERT INTO release_review_notes (release_id, notes, updated, updated_by) "
                "VALUES (:r, :n, :u, :b)",
        soci::use(after.release_id), soci::use(after.notes), soci::use(at),
        soci::use(after.updated_by);
  }
  AuditEvent event("release.review-notes", "release", release_id);
  event.release_id = release_id;
  if (before) event.before = {{"notes", before->notes}};
  event.after = {{"notes", notes}};
  tx.Audit(event);
  return after;
}

std::optional<ReviewNotes> GetReviewNotes(soci::session& sql, const std::string& release_id) {
  ReviewNotes out;
  long long updated = 0;
  sql << "SELECT notes, updated, updated_by FROM release_review_notes WHERE release_id = :r",
      soci::use(release_id), soci::into(out.notes), soci::into(updated), soci::into(out.updated_by);
  if (!sql.got_data()) return std::nullopt;
  out.release_id = release_id;
  out.updated = updated;
  return out;
}

rel::ReportInputs LoadReportInputs(soci::session& sql, const rel::PlanParseOptions& options,
                                   std::vector<std::string>* unreadable) {
  rel::ReportInputs inputs;
  std::vector<std::string> ids;
  {
    std::string id;
    soci::statement st = OneShot(sql, "SELECT id FROM releases ORDER BY seq", soci::into(id));
    st.execute();
    while (st.fetch()) ids.push_back(id);
  }
  for (const std::string& id : ids) {
    auto r = LoadRelease(sql, id, options);
    if (!r) {
      if (unreadable) unreadable->push_back(fmt::format("{}: {}", id, r.error().message()));
      continue;
    }
    inputs.releases.push_back(std::move(*r));
  }
  inputs.incidents = ListIncidents(sql, std::nullopt);
  std::string release_id, notes;
  soci::statement st = OneShot(sql, "SELECT release_id, notes FROM release_review_notes",
                               soci::into(release_id), soci::into(notes));
  st.execute();
  while (st.fetch()) inputs.review_notes[release_id] = notes;
  return inputs;
}

}  // namespace fabu::coordinator
