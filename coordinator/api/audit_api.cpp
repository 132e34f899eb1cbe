// /api/v1/audit: reading and verifying the audit trail (any authenticated user).
#include <fmt/format.h>

#include <charconv>

#include "coordinator/api/api_context.hpp"

namespace fabu::coordinator {
namespace {}  // namespace

void RegisterAuditRoutes(Router& router, const ApiContext& api) {
  Store& store = api.store;

  // ?release=R  only entries of release R
  // ?after=SEQ  entries after SEQ (paging); ?limit=N (default 1000, max 10000)
  router.Add(
      Method::kGet, "/api/v1/audit", RouteOptions::AnyUser(),
      [&store](RequestContext& ctx) -> Result<Response> {
        for (const auto& [key, value] : ctx.query) {
          if (key != "release" && key != "after" && key != "limit") {
            return Fail(
                ErrorCode::kInvalidArgument,
                fmt::format("query parameter {}: unknown (known: release, after, limit)", key));
          }
        }
        AuditFilter filter;
        filter.release_id = ctx.Query("release");
        auto after = QueryNumber(ctx, "after", 0, 0, INT64_MAX);
        if (!after) return std::unexpected(after.error());
        auto limit = QueryNumber(ctx, "limit", 1000, 1, 10000);
        if (!limit) return std::unexpected(limit.error());
        filter.after_seq = *after;
        filter.limit = *limit;
        auto entries = store.Read([&](soci::session& sql) -> Result<std::vector<AuditEntry>> {
          return ListAudit(sql, filter);
        });
        if (!entries) return std::unexpected(entries.error());
        nlohmann::json list = nlohmann::json::array();
        for (const AuditEntry& entry : *entries) list.push_back(entry.ToJson());
        return Response::Ok({{"entries", list}});
      });

  router.Add(Method::kGet, "/api/v1/audit/verify", RouteOptions::AnyUser(),
             [&store](RequestContext&) -> Result<Response> {
               auto verification = store.Read([](soci::session& sql) -> Result<AuditVerification> {
                 return VerifyAudit(sql);
               });
               if (!verification) return std::unexpected(verification.error());
               return Response::Ok(verification->ToJson());
             });
}

}  // namespace fabu::coordinator
