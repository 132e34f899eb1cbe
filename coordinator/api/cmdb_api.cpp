// /api/v1/cmdb and /api/v1/releases/{id}/upgrade-records: the built-in CMDB
// (hosts as configuration items, the upgrade record table) and the outbox
// feeding outside CMDBs (coordinator/cmdb/cmdb.hpp).
#include <fmt/format.h>

#include <charconv>

#include "coordinator/api/api_context.hpp"
#include "coordinator/cmdb/cmdb.hpp"
#include "coordinator/common/json_input.hpp"
#include "coordinator/hosts/hosts.hpp"
#include "coordinator/store/release_records.hpp"

namespace fabu::coordinator {
namespace {

using nlohmann::json;
namespace rel = release;

json RecordsJson(const std::vector<UpgradeRecord>& records) {
  json items = json::array();
  for (const UpgradeRecord& r : records) items.push_back(r.ToJson());
  return items;
}

}  // namespace

void RegisterCmdbRoutes(Router& router, const ApiContext& api) {
  // Configuration items: every enrolled host with what its agent reports.
  router.Add(Method::kGet, "/api/v1/cmdb/hosts", RouteOptions::AnyUser(),
             [api](RequestContext&) -> Result<Response> {
               auto hosts = api.store.Read([&](soci::session& sql) -> Result<json> {
                 json items = json::array();
                 for (const HostRecord& host : ListHosts(sql)) items.push_back(host.ToJson());
                 return items;
               });
               if (!hosts) return std::unexpected(hosts.error());
               return Response::Ok({{"hosts", *hosts}});
             });

  router.Add(Method::kGet, "/api/v1/cmdb/hosts/{name}", RouteOptions::AnyUser(),
             [api](RequestContext& ctx) -> Result<Response> {
               const std::string name = ctx.path_params.at("name");
               auto host = api.store.Read([&](soci::session& sql) -> Result<json> {
                 auto found = FindHost(sql, name);
                 if (!found) return std::unexpected(found.error());
                 UpgradeFilter filter;
                 filter.host = name;
                 filter.limit = 100;
                 json out = found->ToJson();
                 out["upgrades"] = RecordsJson(ListUpgradeRecords(sql, filter));
                 return out;
               });
               if (!host) return std::unexpected(host.error());
               return Response::Ok(*host);
             });

  router.Add(Method::kGet, "/api/v1/cmdb/history", RouteOptions::AnyUser(),
             [api](RequestContext& ctx) -> Result<Response> {
               UpgradeFilter filter;
               filter.host = ctx.Query("host");
               filter.package = ctx.Query("package");
               filter.release_id = ctx.Query("release");
               auto limit = QueryNumber(ctx, "limit", 1000, 1, 10000);
               if (!limit) return std::unexpected(limit.error());
               filter.limit = *limit;
               auto records = api.store.Read([&](soci::session& sql) -> Result<json> {
                 return RecordsJson(ListUpgradeRecords(sql, filter));
               });
               if (!records) return std::unexpected(records.error());
               return Response::Ok({{"records", *records}});
             });

  router.Add(Method::kGet, "/api/v1/cmdb/outbox", RouteOptions::AnyUser(),
             [api](RequestContext& ctx) -> Result<Response> {
               OutboxFilter filter;
               filter.release_id = ctx.Query("release");
               filter.state = ctx.Query("state");
               if (filter.state && *filter.state != kOutboxPending &&
                   *filter.state != kOutboxFailing && *filter.state != kOutboxDelivered &&
                   *filter.state != kOutboxWaived) {
                 return Fail(ErrorCode::kInvalidArgument,
                             fmt::format("state: \"{}\" is not pending, failing, delivered or "
                                         "waived",
                                         *filter.state));
               }
               auto limit = QueryNumber(ctx, "limit", 1000, 1, 10000);
               if (!limit) return std::unexpected(limit.error());
               filter.limit = *limit;
               auto listed = api.store.Read([&](soci::session& sql) -> Result<json> {
                 json items = json::array();
                 for (const OutboxMessage& m : ListOutbox(sql, filter)) {
                   json item = m.ToJson();
                   // A delivery's error says whether an address and port
                   // answered (a webhook target aimed inside the network
                   // would scan it): its details are for admins only.
                   if (ctx.user().role != Role::kAdmin && !m.last_error.empty()) {
                     item["last_error"] = "delivery failed (the details are shown to admins)";
                   }
                   items.push_back(std::move(item));
                 }
                 return items;
               });
               if (!listed) return std::unexpected(listed.error());
               return Response::Ok({{"messages", *listed}});
             });

  // The release's upgrade record table, its baselines and whether its CMDB
  // update is confirmed (the guard of close).
  router.Add(Method::kGet, "/api/v1/releases/{id}/upgrade-records", RouteOptions::AnyUser(),
             [api](RequestContext& ctx) -> Result<Response> {
               const std::string id = ctx.path_params.at("id");
               const rel::PlanParseOptions options = PlanOptions(api);
               auto out = api.store.Read([&](soci::session& sql) -> Result<json> {
                 auto r = LoadRelease(sql, id, options);
                 if (!r) return std::unexpected(r.error());
                 UpgradeFilter filter;
                 filter.release_id = id;
                 filter.limit = 1'000'000;
                 json baseline = json::array();
                 for (const BaselineRow& row : ListBaseline(sql, id)) {
                   baseline.push_back(row.ToJson());
                 }
                 return json{{"release", id},
                             {"records", RecordsJson(ListUpgradeRecords(sql, filter))},
                             {"baseline", baseline},
                             {"cmdb", ConfirmationOf(sql, id).ToJson()}};
               });
               if (!out) return std::unexpected(out.error());
               return Response::Ok(*out);
             });

  // An approver waives the outward deliveries still outstanding, with a reason.
  router.Add(Method::kPost, "/api/v1/releases/{id}/cmdb/waive",
             RouteOptions::ForRoles({Role::kApprover}, "waiving CMDB deliveries"),
             [api](RequestContext& ctx) -> Result<Response> {
               const std::string id = ctx.path_params.at("id");
               auto body = ctx.Json();
               if (!body) return std::unexpected(body.error());
               if (auto ok = CheckObject(*body, "", {{"reason", JsonType::kString, true}}); !ok) {
                 return std::unexpected(ok.error());
               }
               const std::string reason = (*body)["reason"].get<std::string>();
               const rel::PlanParseOptions options = PlanOptions(api);
               const rel::Actor actor = ActorOf(ctx);
               auto waived = api.store.Write(ctx.Origin(), [&](Transaction& tx) -> Result<json> {
                 auto r = LoadRelease(tx.sql(), id, options);
                 if (!r) return std::unexpected(r.error());
                 auto n = WaiveDeliveries(tx, id, actor, reason);
                 if (!n) return std::unexpected(n.error());
                 return json{{"waived", *n}, {"cmdb", ConfirmationOf(tx.sql(), id).ToJson()}};
               });
               if (!waived) return std::unexpected(waived.error());
               return Response::Ok(*waived);
             });
}

}  // namespace fabu::coordinator
