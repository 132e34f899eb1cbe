#include "coordinator/deploy/freezes.hpp"

#include <fmt/format.h>
#include <soci/soci.h>

#include <algorithm>

#include "coordinator/common/clock.hpp"
#include "coordinator/hosts/hosts.hpp"
#include "coordinator/release/release_plan.hpp"
#include "coordinator/store/row_query.hpp"

namespace fabu::coordinator {

using nlohmann::json;
namespace rel = release;

json Freeze::ToJson() const {
  return {{"id", id},
          {"from", from.text},
          {"to", to.text},
          {"reason", reason},
          {"selector", selector},
          {"created", created},
          {"created_by", created_by}};
}

namespace {

std::vector<Freeze> QueryFreezes(soci::session& sql, UnixSeconds active_at) {
  std::vector<Freeze> out;
  std::string id, from_text, to_text, reason, selector, created, created_by;
  long long starts = 0, ends = 0, at = active_at;
  soci::statement st =
      OneShot(sql,
              "SELECT id, starts, ends, start_text, end_text, reason, selector, created, "
              "created_by FROM freezes WHERE removed = 0 AND (:a = 0 OR (starts <= :a2 "
              "AND ends > :a3)) ORDER BY starts, seq",
              soci::use(at), soci::use(at), soci::use(at), soci::into(id), soci::into(starts),
              soci::into(ends), soci::into(from_text), soci::into(to_text), soci::into(reason),
              soci::into(selector), soci::into(created), soci::into(created_by));
  st.execute(false);
  while (st.fetch()) {
    out.push_back(Freeze{id, Timestamp{starts, from_text}, Timestamp{ends, to_text}, reason,
                         selector, created, created_by});
  }
  return out;
}

}  // namespace

Result<Freeze> AddFreeze(Transaction& tx, Timestamp from, Timestamp to, std::string reason,
                         std::string selector) {
  if (release::IsBlank(reason)) {
    return Fail(ErrorCode::kInvalidArgument, "a freeze needs a reason (--reason)");
  }
  if (to.seconds <= from.seconds) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("--to {} must be after --from {}", to.text, from.text));
  }
  if (!selector.empty()) {
    auto parsed = rel::TargetSelector::Parse(selector);
    if (!parsed) return std::unexpected(parsed.error().WithContext("--selector"));
    selector = parsed->ToString();
  }
  long long seq = 0;
  soci::indicator ind = soci::i_null;
  tx.sql() << "SELECT MAX(seq) FROM freezes", soci::into(seq, ind);
  seq = ind == soci::i_ok ? seq + 1 : 1;
  Freeze freeze{fmt::format("F-{}", seq), std::move(from),  std::move(to),    std::move(reason),
                std::move(selector),      tx.clock().Utc(), tx.origin().actor};
  long long starts = freeze.from.seconds, ends = freeze.to.seconds, zero = 0;
  std::string empty;
  tx.sql() << "INSERT INTO freezes (id, seq, starts, ends, start_text, end_text, reason, "
              "selector, created, created_by, removed, removed_by, removed_at) VALUES (:id, "
              ":seq, :s, :e, :st, :et, :r, :sel, :c, :by, :z, :rb, :ra)",
      soci::use(freeze.id), soci::use(seq), soci::use(starts), soci::use(ends),
      soci::use(freeze.from.text), soci::use(freeze.to.text), soci::use(freeze.reason),
      soci::use(freeze.selector), soci::use(freeze.created), soci::use(freeze.created_by),
      soci::use(zero), soci::use(empty), soci::use(empty);
  AuditEvent event("freeze.add", "freeze", freeze.id);
  event.after = freeze.ToJson();
  tx.Audit(event);
  return freeze;
}

std::vector<Freeze> ListFreezes(soci::session& sql, UnixSeconds active_at) {
  return QueryFreezes(sql, active_at);
}

Result<Freeze> RemoveFreeze(Transaction& tx, const std::string& id) {
  for (Freeze& freeze : QueryFreezes(tx.sql(), 0)) {
    if (freeze.id != id) continue;
    std::string key = id, by = tx.origin().actor, at = tx.clock().Utc();
    tx.sql() << "UPDATE freezes SET removed = 1, removed_by = :b, removed_at = :a WHERE id = :id",
        soci::use(by), soci::use(at), soci::use(key);
    AuditEvent event("freeze.remove", "freeze", id);
    event.before = freeze.ToJson();
    tx.Audit(event);
    return std::move(freeze);
  }
  return Fail(ErrorCode::kNotFound, fmt::format("no freeze {} (see `fabu freeze list`)", id));
}

std::optional<Freeze> FreezeCovering(soci::session& sql, const std::vector<std::string>& hosts,
                                     UnixSeconds now) {
  for (Freeze& freeze : QueryFreezes(sql, now)) {
    if (freeze.selector.empty()) return std::move(freeze);
    auto selector = rel::TargetSelector::Parse(freeze.selector);
    if (!selector) continue;
    for (const MatchingHost& host : MatchingHosts(sql, selector->labels)) {
      if (std::find(hosts.begin(), hosts.end(), host.name) != hosts.end()) {
        return std::move(freeze);
      }
    }
  }
  return std::nullopt;
}

std::optional<rel::FreezeInForce> FreezeOn(soci::session& sql,
                                           const std::vector<std::string>& hosts, UnixSeconds now) {
  auto freeze = FreezeCovering(sql, hosts, now);
  if (!freeze) return std::nullopt;
  return rel::FreezeInForce{freeze->id, freeze->reason, freeze->to.text};
}

}  // namespace fabu::coordinator
