#include "coordinator/audit/audit_log.hpp"

#include <fmt/format.h>
#include <soci/soci.h>

#include <algorithm>
#include <optional>
#include <string>

#include "coordinator/common/canonical_json.hpp"
#include "coordinator/common/clock.hpp"
#include "coordinator/common/digest.hpp"
#include "packaging/sha256.hpp"

namespace fabu::coordinator {
namespace {

constexpr std::string_view kColumns =
    "seq, time, actor, role, action, object_type, object_id, release_id, request_id, source, "
    "before_sha256, after_sha256, detail, prev_hash, hash";

// SOCI binds `long long`, not std::int64_t (long on LP64); rows are read
// through this buffer and converted.
struct AuditRow {
  long long seq = 0;
  AuditEntry entry;

  void BindInto(soci::statement& st) {
    st.exchange(soci::into(seq));
    st.exchange(soci::into(entry.time));
    st.exchange(soci::into(entry.actor));
    st.exchange(soci::into(entry.role));
    st.exchange(soci::into(entry.action));
    st.exchange(soci::into(entry.object_type));
    st.exchange(soci::into(entry.object_id));
    st.exchange(soci::into(entry.release_id));
    st.exchange(soci::into(entry.request_id));
    st.exchange(soci::into(entry.source));
    st.exchange(soci::into(entry.before_sha256));
    st.exchange(soci::into(entry.after_sha256));
    st.exchange(soci::into(entry.detail));
    st.exchange(soci::into(entry.prev_hash));
    st.exchange(soci::into(entry.hash));
  }
  AuditEntry Take() {
    entry.seq = seq;
    return entry;
  }
};

}  // namespace

namespace {

// Every field of an entry but the chain links (prev_hash, hash), as ToJson
// shows it; CanonicalContent writes the same text without building it.
nlohmann::json ContentOf(const AuditEntry& e) {
  return {
      {"seq", e.seq},
      {"time", e.time},
      {"actor", e.actor},
      {"role", e.role},
      {"action", e.action},
      {"object_type", e.object_type},
      {"object_id", e.object_id},
      {"release_id", e.release_id},
      {"request_id", e.request_id},
      {"source", e.source},
      {"before_sha256", e.before_sha256},
      {"after_sha256", e.after_sha256},
      {"detail", e.detail},
  };
}

}  // namespace

// ContentOf(*this).dump(), byte for byte, without building the json: the
// keys in nlohmann's (byte) order.
std::string AuditEntry::CanonicalContent() const {
  // The keys, quotes, colons and commas, the seq's digits, and the values.
  constexpr std::size_t kFraming = 200;
  CanonicalJsonWriter out(kFraming + time.size() + actor.size() + role.size() + action.size() +
                          object_type.size() + object_id.size() + release_id.size() +
                          request_id.size() + source.size() + before_sha256.size() +
                          after_sha256.size() + detail.size());
  out.String("action", action);
  out.String("actor", actor);
  out.String("after_sha256", after_sha256);
  out.String("before_sha256", before_sha256);
  out.String("detail", detail);
  out.String("object_id", object_id);
  out.String("object_type", object_type);
  out.String("release_id", release_id);
  out.String("request_id", request_id);
  out.String("role", role);
  out.Number("seq", seq);
  out.String("source", source);
  out.String("time", time);
  return out.Finish();
}

std::string AuditEntry::ComputeHash() const {
  packaging::Sha256 sha;
  sha.Update(prev_hash);
  sha.Update(CanonicalContent());
  return sha.FinishHex();
}

nlohmann::json AuditEntry::ToJson() const {
  nlohmann::json out = ContentOf(*this);
  // Shown parsed; hashed as the stored text.
  nlohmann::json detail_json = nlohmann::json::parse(detail, nullptr, false);
  if (!detail_json.is_discarded()) out["detail"] = std::move(detail_json);
  out["prev_hash"] = prev_hash;
  out["hash"] = hash;
  return out;
}

std::string ObjectDigest(const nlohmann::json& object) { return Sha256Hex(object.dump()); }

struct AuditStatements::Prepared {
  explicit Prepared(soci::session& sql)
      : head((sql.prepare << "SELECT seq, hash FROM audit_head WHERE id = 1",
              soci::into(head_seq, found), soci::into(head_hash))),
        insert((sql.prepare << "INSERT INTO audit_log (" << kColumns
                            << ") VALUES (:seq, :time, :actor, :role, :action, :object_type, "
                               ":object_id, :release_id, :request_id, :source, :before_sha256, "
                               ":after_sha256, :detail, :prev_hash, :hash)",
                soci::use(seq), soci::use(entry.time), soci::use(entry.actor),
                soci::use(entry.role), soci::use(entry.action), soci::use(entry.object_type),
                soci::use(entry.object_id), soci::use(entry.release_id),
                soci::use(entry.request_id), soci::use(entry.source),
                soci::use(entry.before_sha256), soci::use(entry.after_sha256),
                soci::use(entry.detail), soci::use(entry.prev_hash), soci::use(entry.hash))),
        move_head((sql.prepare << "UPDATE audit_head SET seq = :seq, hash = :hash WHERE id = 1",
                   soci::use(seq), soci::use(entry.hash))) {}

  // Bound values (declared before the statements that bind them).
  long long head_seq = 0;
  std::string head_hash;
  soci::indicator found = soci::i_null;
  long long seq = 0;
  AuditEntry entry;
  soci::statement head, insert, move_head;
  // AppendAudits' statement, prepared at its first use; its JSON rows.
  std::optional<soci::statement> insert_rows;
  std::string rows;
};

AuditStatements::AuditStatements(soci::session& sql) : prepared(std::make_unique<Prepared>(sql)) {}
AuditStatements::~AuditStatements() = default;

void AuditStatements::Flush() {
  if (!pending) return;
  Prepared& p = *prepared;
  p.seq = pending->seq;
  p.entry.hash = pending->hash;
  p.move_head.execute(true);
  pending.reset();
}

namespace {

// The audit_head row: the last entry's sequence number and hash.
struct AuditHead {
  long long seq = 0;
  std::string hash;
};

std::optional<AuditHead> ReadHead(soci::session& sql) {
  AuditHead head;
  soci::indicator found = soci::i_null;
  sql << "SELECT seq, hash FROM audit_head WHERE id = 1", soci::into(head.seq, found),
      soci::into(head.hash);
  if (!sql.got_data() || found != soci::i_ok) return std::nullopt;
  return head;
}

// Every field of the entry but the chain links.
AuditEntry NewEntry(const AuditOrigin& origin, const AuditEvent& event, std::string time) {
  AuditEntry entry;
  entry.time = std::move(time);
  entry.actor = origin.actor;
  entry.role = origin.role;
  entry.action = event.action;
  entry.object_type = event.object_type;
  entry.object_id = event.object_id;
  entry.release_id = event.release_id;
  entry.request_id = origin.request_id;
  entry.source = origin.source;
  entry.before_sha256 =
      event.before ? ObjectDigest(*event.before) : event.before_sha256.value_or("");
  entry.after_sha256 = event.after ? ObjectDigest(*event.after) : event.after_sha256.value_or("");
  entry.detail = event.detail.dump();
  return entry;
}

}  // namespace

AuditEntry AppendAudit(soci::session& sql, const AuditOrigin& origin, const AuditEvent& event,
                       std::string time, AuditStatements* statements) {
  if (statements != nullptr) {
    AuditStatements::Prepared& p = *statements->prepared;
    std::optional<AuditStatements::Head> head = statements->pending;
    if (!head) {
      p.found = soci::i_null;
      p.head.execute(true);
      if (p.head.got_data() && p.found == soci::i_ok) head = {p.head_seq, p.head_hash};
      // Read to the end: the statement then holds no read snapshot.
      while (p.head.fetch()) {
      }
    }
    if (head) {
      p.entry = NewEntry(origin, event, std::move(time));
      p.entry.seq = head->seq + 1;
      p.entry.prev_hash = head->hash;
      p.entry.hash = p.entry.ComputeHash();
      p.seq = p.entry.seq;
      p.insert.execute(true);
      // audit_head is written once, before the COMMIT (AuditStatements::Flush).
      statements->pending = AuditStatements::Head{p.entry.seq, p.entry.hash};
      return p.entry;
    }
    // The very first entry: rare, the plain way below (it writes audit_head).
  }
  const std::optional<AuditHead> head = ReadHead(sql);
  const bool has_head = head.has_value();

  AuditEntry entry = NewEntry(origin, event, std::move(time));
  entry.seq = has_head ? head->seq + 1 : 1;
  entry.prev_hash = has_head ? head->hash : std::string(kGenesisHash);
  entry.hash = entry.ComputeHash();

  long long seq = entry.seq;
  sql << "INSERT INTO audit_log (" << kColumns
      << ") VALUES (:seq, :time, :actor, :role, :action, :object_type, :object_id, :release_id, "
         ":request_id, :source, :before_sha256, :after_sha256, :detail, :prev_hash, :hash)",
      soci::use(seq), soci::use(entry.time), soci::use(entry.actor), soci::use(entry.role),
      soci::use(entry.action), soci::use(entry.object_type), soci::use(entry.object_id),
      soci::use(entry.release_id), soci::use(entry.request_id), soci::use(entry.source),
      soci::use(entry.before_sha256), soci::use(entry.after_sha256), soci::use(entry.detail),
      soci::use(entry.prev_hash), soci::use(entry.hash);
  if (has_head) {
    sql << "UPDATE audit_head SET seq = :seq, hash = :hash WHERE id = 1", soci::use(seq),
        soci::use(entry.hash);
  } else {
    sql << "INSERT INTO audit_head (id, seq, hash) VALUES (1, :seq, :hash)", soci::use(seq),
        soci::use(entry.hash);
  }
  return entry;
}

namespace {
constexpr AuditColumn kAuditColumnList[] = {
    {"seq", true},     {"time"},         {"actor"},      {"role"},       {"action"},
    {"object_type"},   {"object_id"},    {"release_id"}, {"request_id"}, {"source"},
    {"before_sha256"}, {"after_sha256"}, {"detail"},     {"prev_hash"},  {"hash"}};
}  // namespace

const std::span<const AuditColumn> kAuditColumns(kAuditColumnList);

std::vector<AuditEntry> AppendAudits(soci::session& sql,
                                     std::span<const std::pair<AuditOrigin, AuditEvent>> items,
                                     std::string time, AuditStatements& statements,
                                     std::string_view rows_sql) {
  std::vector<AuditEntry> entries;
  entries.reserve(items.size());
  std::size_t i = 0;
  AuditStatements::Prepared& p = *statements.prepared;
  std::optional<AuditStatements::Head> head = statements.pending;
  if (!head && !items.empty()) {
    p.found = soci::i_null;
    p.head.execute(true);
    if (p.head.got_data() && p.found == soci::i_ok) head = {p.head_seq, p.head_hash};
    while (p.head.fetch()) {
    }
    if (!head) {
      // The very first entry makes audit_head (AppendAudit's plain way).
      entries.push_back(AppendAudit(sql, items[0].first, items[0].second, time));
      head = {entries.back().seq, entries.back().hash};
      i = 1;
    }
  }
  if (i == items.size()) return entries;
  nlohmann::json rows = nlohmann::json::array();
  for (; i < items.size(); ++i) {
    AuditEntry entry = NewEntry(items[i].first, items[i].second, time);
    entry.seq = head->seq + 1;
    entry.prev_hash = head->hash;
    entry.hash = entry.ComputeHash();
    head = {entry.seq, entry.hash};
    rows.push_back({{"seq", entry.seq},
                    {"time", entry.time},
                    {"actor", entry.actor},
                    {"role", entry.role},
                    {"action", entry.action},
                    {"object_type", entry.object_type},
                    {"object_id", entry.object_id},
                    {"release_id", entry.release_id},
                    {"request_id", entry.request_id},
                    {"source", entry.source},
                    {"before_sha256", entry.before_sha256},
                    {"after_sha256", entry.after_sha256},
                    {"detail", entry.detail},
                    {"prev_hash", entry.prev_hash},
                    {"hash", entry.hash}});
    entries.push_back(std::move(entry));
  }
  if (!p.insert_rows) {
    p.insert_rows.emplace((sql.prepare << "INSERT INTO audit_log (" << kColumns << ") SELECT "
                                       << kColumns << " FROM " << rows_sql,
                           soci::use(p.rows, "rows")));
  }
  p.rows = rows.dump();
  p.insert_rows->execute(true);
  // audit_head is written once, before the COMMIT (AuditStatements::Flush).
  statements.pending = head;
  return entries;
}

std::vector<AuditEntry> ListAudit(soci::session& sql, const AuditFilter& filter) {
  std::vector<AuditEntry> entries;
  // Newest first below `before`, or oldest first above `after`.
  const bool newest_first = filter.before_seq.has_value();
  long long bound = newest_first ? *filter.before_seq : filter.after_seq.value_or(0);
  long long limit = filter.limit;
  std::string release = filter.release_id.value_or("");
  AuditRow row;
  soci::statement st(sql);
  const std::string order =
      newest_first ? "seq < :bound ORDER BY seq DESC" : "seq > :bound ORDER BY seq";
  st.alloc();
  if (filter.release_id) {
    st.prepare(
        fmt::format("SELECT {} FROM audit_log WHERE release_id = :release AND {} LIMIT :limit",
                    kColumns, order));
    row.BindInto(st);
    st.exchange(soci::use(release));
  } else {
    st.prepare(fmt::format("SELECT {} FROM audit_log WHERE {} LIMIT :limit", kColumns, order));
    row.BindInto(st);
  }
  st.exchange(soci::use(bound));
  st.exchange(soci::use(limit));
  st.define_and_bind();
  st.execute(false);
  while (st.fetch()) entries.push_back(row.Take());
  return entries;
}

std::optional<AuditStatements::Head> ReadAuditHead(soci::session& sql) {
  auto head = ReadHead(sql);
  if (!head) return std::nullopt;
  return AuditStatements::Head{head->seq, head->hash};
}

std::optional<std::string> AuditHashAt(soci::session& sql, std::int64_t seq) {
  long long at = seq;
  std::string hash;
  sql << "SELECT hash FROM audit_log WHERE seq = :seq", soci::use(at), soci::into(hash);
  if (!sql.got_data()) return std::nullopt;
  return hash;
}

nlohmann::json AuditVerification::ToJson() const {
  nlohmann::json out = {{"intact", intact}, {"count", count}};
  if (broken_seq) {
    out["broken_seq"] = *broken_seq;
    out["reason"] = reason;
  }
  return out;
}

AuditVerification VerifyAudit(soci::session& sql) { return VerifyAuditFrom(sql, 0, kGenesisHash); }

AuditVerification VerifyAuditFrom(soci::session& sql, std::int64_t from_seq,
                                  std::string_view from_hash, std::int64_t limit) {
  // The log and the head are read in one snapshot: a write that commits
  // between them (the coordinator keeps writing while this runs) must not
  // look like entries removed or added.
  soci::transaction snapshot(sql);
  AuditVerification result;
  result.last_seq = 0;
  result.last_hash = std::string(kGenesisHash);
  auto broken = [&result](std::int64_t seq, std::string reason) {
    result.intact = false;
    result.broken_seq = seq;
    result.reason = std::move(reason);
    return result;
  };
  if (from_seq > 0) {
    const std::optional<std::string> stored = AuditHashAt(sql, from_seq);
    if (!stored) {
      return broken(from_seq,
                    fmt::format("entry {}, whole when it was last checked, is missing", from_seq));
    }
    if (*stored != from_hash) {
      return broken(from_seq, fmt::format("entry {} was rewritten since it was last checked (its "
                                          "hash changed)",
                                          from_seq));
    }
    result.last_seq = from_seq;
    result.last_hash = std::string(from_hash);
  }
  AuditRow row;
  long long after = from_seq;
  soci::statement st(sql);
  st.alloc();
  st.prepare(fmt::format("SELECT {} FROM audit_log WHERE seq > :after ORDER BY seq{}", kColumns,
                         limit > 0 ? fmt::format(" LIMIT {}", limit) : std::string()));
  row.BindInto(st);
  st.exchange(soci::use(after));
  st.define_and_bind();
  st.execute(false);

  std::int64_t expected_seq = from_seq + 1;
  while (st.fetch()) {
    const AuditEntry entry = row.Take();
    if (entry.seq != expected_seq) {
      return broken(expected_seq, fmt::format("entry {} is missing (the next entry found is {})",
                                              expected_seq, entry.seq));
    }
    if (entry.prev_hash != result.last_hash) {
      return broken(entry.seq, fmt::format("entry {}: prev_hash does not match the hash of "
                                           "entry {}",
                                           entry.seq, entry.seq - 1));
    }
    if (entry.ComputeHash() != entry.hash) {
      return broken(entry.seq,
                    fmt::format("entry {}: its content does not match its hash", entry.seq));
    }
    result.last_seq = entry.seq;
    result.last_hash = entry.hash;
    ++expected_seq;
    ++result.count;
  }
  if (limit > 0 && result.count == limit) {
    result.reached_head = false;
    return result;
  }

  const std::optional<AuditHead> head = ReadHead(sql);
  if (!head) {
    if (result.last_seq > 0) return broken(result.last_seq, "the audit head record is missing");
    return result;
  }
  const long long head_seq = head->seq;
  const std::string& head_hash = head->hash;
  if (head_seq != result.last_seq) {
    const std::int64_t first_bad = std::min<std::int64_t>(head_seq, result.last_seq) + 1;
    return broken(first_bad, fmt::format("the log ends at entry {} but the audit head records "
                                         "entry {}: entries were removed or added",
                                         result.last_seq, head_seq));
  }
  if (head_hash != result.last_hash) {
    return broken(result.last_seq,
                  fmt::format("entry {}: its hash does not match the audit head", result.last_seq));
  }
  return result;
}

}  // namespace fabu::coordinator
