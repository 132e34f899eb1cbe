// /api/v1/audit: reading and verifying the audit trail (any authenticated user).
#include <fmt/format.h>

#include <charconv>

#include "coordinator/api/api_context.hpp"
#include "protocol/timestamp.hpp"

namespace fabu::coordinator {
namespace {}  // namespace

void RegisterAuditRoutes(Router& router, const ApiContext& api) {
  Store& store = api.store;

  // What this coordinator's own periodic check of the chain found last:
  // answered at once (the console's audit page shows it), where
  // /audit/verify below reads the whole chain.
  router.Add(Method::kGet, "/api/v1/audit/watch", RouteOptions::AnyUser(),
             [&api](RequestContext&) -> Result<Response> {
               const LastAuditCheck* watch = api.last_audit_check;
               const auto last = watch != nullptr ? watch->Get() : std::nullopt;
               nlohmann::json out = {
                   {"checked", last.has_value()},
                   {"every_seconds", watch != nullptr ? watch->every_seconds() : std::int64_t{0}}};
               if (last) {
                 out["at"] = protocol::FormatRfc3339Utc(last->at);
                 out["intact"] = last->intact;
                 out["verified_seq"] = last->verified_seq;
                 out["reason"] = last->reason;
               }
               return Response::Ok(out);
             });

  // ?release=R  only entries of release R
  // ?after=SEQ  entries after SEQ, oldest first (paging forward);
  // ?before=SEQ entries before SEQ, newest first (the console's pages back);
  // ?limit=N (default 1000, max 10000)
  router.Add(
      Method::kGet, "/api/v1/audit", RouteOptions::AnyUser(),
      [&store](RequestContext& ctx) -> Result<Response> {
        for (const auto& [key, value] : ctx.query) {
          if (key != "release" && key != "after" && key != "before" && key != "limit") {
            return Fail(ErrorCode::kInvalidArgument,
                        fmt::format("query parameter {}: unknown (known: release, after, before, "
                                    "limit)",
                                    key));
          }
        }
        AuditFilter filter;
        filter.release_id = ctx.Query("release");
        auto after = QueryNumber(ctx, "after", 0, 0, INT64_MAX);
        if (!after) return std::unexpected(after.error());
        auto limit = QueryNumber(ctx, "limit", 1000, 1, 10000);
        if (!limit) return std::unexpected(limit.error());
        filter.after_seq = *after;
        if (ctx.Query("before")) {
          if (ctx.Query("after")) {
            return Fail(ErrorCode::kInvalidArgument, "give after or before, not both");
          }
          auto before = QueryNumber(ctx, "before", 0, 1, INT64_MAX);
          if (!before) return std::unexpected(before.error());
          filter.before_seq = *before;
        }
        filter.limit = *limit;
        auto entries = store.Read([&](soci::session& sql) -> Result<std::vector<AuditEntry>> {
          return ListAudit(sql, filter);
        });
        if (!entries) return std::unexpected(entries.error());
        nlohmann::json list = nlohmann::json::array();
        for (const AuditEntry& entry : *entries) list.push_back(entry.ToJson());
        return Response::Ok({{"entries", list}});
      });

  // The whole chain, checked in parts of kVerifyPart entries, each its own
  // read: a long chain never holds the store's reading session (which every
  // other read waits for) for more than one part. The parts join: each
  // starts from the last entry the one before found whole.
  router.Add(Method::kGet, "/api/v1/audit/verify", RouteOptions::AnyUser(),
             [&store](RequestContext&) -> Result<Response> {
               constexpr std::int64_t kVerifyPart = 20'000;
               std::int64_t seq = 0;
               std::string hash(kGenesisHash);
               std::int64_t count = 0;
               for (;;) {
                 auto part = store.Read([&](soci::session& sql) -> Result<AuditVerification> {
                   return VerifyAuditFrom(sql, seq, hash, kVerifyPart);
                 });
                 if (!part) return std::unexpected(part.error());
                 count += part->count;
                 if (!part->intact || part->reached_head) {
                   part->count = count;
                   return Response::Ok(part->ToJson());
                 }
                 seq = part->last_seq;
                 hash = part->last_hash;
               }
             });
}

}  // namespace fabu::coordinator
