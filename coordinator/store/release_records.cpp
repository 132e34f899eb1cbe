#include "coordinator/store/release_records.hpp"

#include <fmt/format.h>
#include <soci/soci.h>

#include <algorithm>

#include "coordinator/store/row_query.hpp"

namespace fabu::coordinator {
namespace {

std::string UtcOf(release::UnixSeconds at) { return release::FormatRfc3339Utc(at); }

void WriteChangeRefs(soci::session& sql, const release::Release& r) {
  sql << "DELETE FROM release_change_refs WHERE release_id = :id", soci::use(r.id);
  for (const std::string& ref : r.plan.change_refs) {
    std::string id = r.id;
    std::string change_ref = ref;
    sql << "INSERT INTO release_change_refs (release_id, change_ref) VALUES (:r, :c)",
        soci::use(id), soci::use(change_ref);
  }
}

}  // namespace

std::string NextReleaseId(soci::session& sql) {
  long long seq = 0;
  soci::indicator ind = soci::i_null;
  sql << "SELECT MAX(seq) FROM releases", soci::into(seq, ind);
  if (ind != soci::i_ok) seq = 0;
  return fmt::format("R-{}", seq + 1);
}

void InsertRelease(soci::session& sql, const release::Release& r) {
  long long seq = std::stoll(r.id.substr(2));
  std::string record = release::ReleaseToJson(r).dump();
  std::string version = r.plan.version.ToString();
  std::string state(release::ReleaseStateName(r.state));
  std::string created = UtcOf(r.created_at);
  std::string updated = UtcOf(r.updated_at);
  std::string id = r.id, product = r.plan.product, owner = r.owner, category = r.plan.category,
              title = r.plan.title;
  sql << "INSERT INTO releases (id, seq, title, product, version, category, state, owner, "
         "created, updated, record) VALUES (:id, :seq, :title, :product, :version, :category, "
         ":state, :owner, :created, :updated, :record)",
      soci::use(id), soci::use(seq), soci::use(title), soci::use(product), soci::use(version),
      soci::use(category), soci::use(state), soci::use(owner), soci::use(created),
      soci::use(updated), soci::use(record);
  WriteChangeRefs(sql, r);
}

void SaveRelease(soci::session& sql, const release::Release& r) {
  std::string record = release::ReleaseToJson(r).dump();
  std::string version = r.plan.version.ToString();
  std::string state(release::ReleaseStateName(r.state));
  std::string updated = UtcOf(r.updated_at);
  std::string id = r.id, product = r.plan.product, category = r.plan.category, title = r.plan.title;
  std::string close_code = r.close_code ? std::string(release::CloseCodeName(*r.close_code)) : "";
  sql << "UPDATE releases SET title = :title, product = :product, version = :version, "
         "category = :category, state = :state, close_code = :close_code, updated = :updated, "
         "record = :record WHERE id = :id",
      soci::use(title), soci::use(product), soci::use(version), soci::use(category),
      soci::use(state), soci::use(close_code), soci::use(updated), soci::use(record), soci::use(id);
  WriteChangeRefs(sql, r);
}

namespace {

// Release `id` from its stored record (`found`: whether there was a row).
Result<release::Release> ReleaseFromRecord(const std::string& id, bool found,
                                           const std::string& record,
                                           const release::PlanParseOptions& options) {
  if (!found) {
    return Fail(ErrorCode::kNotFound, fmt::format("no release {} (see `fabu release list`)", id));
  }
  auto parsed = nlohmann::json::parse(record, nullptr, false);
  if (parsed.is_discarded()) {
    return Fail(ErrorCode::kIntegrity, fmt::format("release {}: stored record is not JSON", id));
  }
  // A stored plan was valid when written; a category later removed from the
  // configuration must not make the release unreadable.
  release::PlanParseOptions lenient = options;
  if (parsed.contains("plan") && parsed["plan"].contains("category") &&
      parsed["plan"]["category"].is_string()) {
    const std::string category = parsed["plan"]["category"].get<std::string>();
    if (std::find(lenient.categories.begin(), lenient.categories.end(), category) ==
        lenient.categories.end()) {
      lenient.categories.push_back(category);
    }
  }
  return release::ReleaseFromJson(parsed, lenient);
}

constexpr const char* kLoadRelease = "SELECT record FROM releases WHERE id = :id";

struct LoadReleaseStatement {
  explicit LoadReleaseStatement(soci::session& sql) : st(sql) {
    st.exchange(soci::into(record, indicator));
    st.exchange(soci::use(id, "id"));
    st.alloc();
    st.prepare(kLoadRelease);
    st.define_and_bind();
  }
  std::string id;
  std::string record;
  soci::indicator indicator = soci::i_null;
  soci::statement st;
};

}  // namespace

Result<release::Release> LoadRelease(soci::session& sql, const std::string& id,
                                     const release::PlanParseOptions& options) {
  std::string record;
  soci::indicator ind = soci::i_null;
  sql << kLoadRelease, soci::use(id), soci::into(record, ind);
  return ReleaseFromRecord(id, sql.got_data() && ind == soci::i_ok, record, options);
}

Result<release::Release> LoadRelease(soci::session& sql, StatementCache& statements,
                                     const std::string& id,
                                     const release::PlanParseOptions& options) {
  LoadReleaseStatement& load = statements.Get<LoadReleaseStatement>(sql);
  load.id = id;
  load.indicator = soci::i_null;
  load.st.execute(true);
  const bool found = load.st.got_data() && load.indicator == soci::i_ok;
  StatementCache::Finish(load.st);
  return ReleaseFromRecord(id, found, load.record, options);
}

nlohmann::json ReleaseSummary::ToJson() const {
  return {{"id", id},           {"title", title},       {"product", product},
          {"version", version}, {"category", category}, {"state", state},
          {"owner", owner},     {"updated", updated},   {"change_refs", change_refs}};
}

std::vector<ReleaseSummary> ListReleases(soci::session& sql, const ReleaseFilter& filter) {
  std::string query =
      "SELECT id, title, product, version, category, state, owner, updated FROM releases r "
      "WHERE 1 = 1";
  std::string state = filter.state ? std::string(release::ReleaseStateName(*filter.state)) : "";
  std::string change = filter.change_ref.value_or("");
  std::string product = filter.product.value_or("");
  if (filter.state) query += " AND state = :state";
  if (filter.change_ref) {
    query +=
        " AND EXISTS (SELECT 1 FROM release_change_refs c WHERE c.release_id = r.id AND "
        "c.change_ref = :change)";
  }
  if (filter.product) query += " AND product = :product";
  query += " ORDER BY seq";
  soci::statement st(sql);
  soci::row row;
  st.exchange(soci::into(row));
  if (filter.state) st.exchange(soci::use(state, "state"));
  if (filter.change_ref) st.exchange(soci::use(change, "change"));
  if (filter.product) st.exchange(soci::use(product, "product"));
  st.alloc();
  st.prepare(query);
  st.define_and_bind();
  st.execute(false);
  std::vector<ReleaseSummary> out;
  while (st.fetch()) {
    ReleaseSummary s;
    s.id = row.get<std::string>(0);
    s.title = row.get<std::string>(1);
    s.product = row.get<std::string>(2);
    s.version = row.get<std::string>(3);
    s.category = row.get<std::string>(4);
    s.state = row.get<std::string>(5);
    s.owner = row.get<std::string>(6);
    s.updated = row.get<std::string>(7);
    out.push_back(std::move(s));
  }
  std::string ref;
  for (ReleaseSummary& s : out) {
    soci::statement refs = OneShot(sql,
                                   "SELECT change_ref FROM release_change_refs WHERE "
                                   "release_id = :id ORDER BY change_ref",
                                   soci::use(s.id), soci::into(ref));
    refs.execute(false);
    while (refs.fetch()) s.change_refs.push_back(ref);
  }
  return out;
}

std::optional<protocol::Version> LastReleasedVersion(soci::session& sql,
                                                     const std::string& product) {
  std::string text;
  soci::statement versions =
      OneShot(sql,
              "SELECT version FROM releases WHERE product = :p AND (state = 'deployed' "
              "OR (state = 'closed' AND close_code IN ('success', 'partial')))",
              soci::use(product), soci::into(text));
  versions.execute(false);
  std::optional<protocol::Version> best;
  while (versions.fetch()) {
    auto v = protocol::Version::Parse(text);
    if (v && (!best || *v > *best)) best = *v;
  }
  return best;
}

bool PackageExists(soci::session& sql, const std::string& package_id) {
  int count = 0;
  sql << "SELECT COUNT(*) FROM packages WHERE id = :id", soci::use(package_id), soci::into(count);
  return count > 0;
}

void SaveTransition(Transaction& tx, const release::Release& before, const release::Release& after,
                    nlohmann::json detail, std::string_view action) {
  SaveRelease(tx.sql(), after);
  AuditEvent event(
      fmt::format("release.{}",
                  action.empty() ? release::ActionName(after.history.back().action) : action),
      "release", before.id);
  event.release_id = before.id;
  event.before = release::ReleaseToJson(before);
  event.after = release::ReleaseToJson(after);
  if (!detail.is_object()) detail = nlohmann::json::object();
  detail["from"] = release::ReleaseStateName(before.state);
  detail["to"] = release::ReleaseStateName(after.state);
  event.detail = std::move(detail);
  tx.Audit(event);
  tx.Raise(ReleaseChanged{before, after});
}

}  // namespace fabu::coordinator
