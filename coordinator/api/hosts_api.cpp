// /api/v1/enroll-tokens and /api/v1/hosts: enrolling agents and the hosts
// they run on.
#include <fmt/format.h>

#include <chrono>

#include "coordinator/api/api_context.hpp"
#include "coordinator/common/json_input.hpp"
#include "coordinator/deploy/deployments.hpp"
#include "coordinator/hosts/hosts.hpp"
#include "coordinator/release/release_plan.hpp"

namespace fabu::coordinator {
namespace {

using nlohmann::json;

}  // namespace

void RegisterHostRoutes(Router& router, const ApiContext& api) {
  using R = Role;

  // {"labels": {"k": "v"}, "uses": 1, "ttl": "1h"}; all optional.
  router.Add(
      Method::kPost, "/api/v1/enroll-tokens",
      RouteOptions::ForRoles({R::kAdmin, R::kReleaseManager}, "creating an enrollment token"),
      [api](RequestContext& ctx) -> Result<Response> {
        auto body = ctx.Json();
        if (!body) return std::unexpected(body.error());
        if (auto ok = CheckObject(*body, "",
                                  {{"labels", JsonType::kObject, false},
                                   {"uses", JsonType::kInteger, false, 1, kMaxEnrollUses},
                                   {"ttl", JsonType::kString, false}});
            !ok) {
          return std::unexpected(ok.error());
        }
        EnrollTokenSpec spec;
        if (body->contains("labels") && !(*body)["labels"].is_null()) {
          for (const auto& [key, value] : (*body)["labels"].items()) {
            if (!value.is_string()) {
              return Fail(ErrorCode::kInvalidArgument,
                          fmt::format("labels.{}: must be a string", key));
            }
            spec.labels[key] = value.get<std::string>();
          }
        }
        if (body->contains("uses") && !(*body)["uses"].is_null()) {
          spec.uses = (*body)["uses"].get<std::int64_t>();
        }
        if (body->contains("ttl") && !(*body)["ttl"].is_null()) {
          auto ttl = protocol::ParseDuration((*body)["ttl"].get<std::string>());
          if (!ttl) return std::unexpected(ttl.error().WithContext("ttl"));
          spec.ttl_seconds = *ttl;
        }
        auto issued = api.store.Write(
            ctx.Origin(), [&](Transaction& tx) { return CreateEnrollToken(tx, spec, Now(api)); });
        if (!issued) return std::unexpected(issued.error());
        return Response::Created(issued->ToJson());
      });

  // Every token by its id (never the token): state, uses, expiry, who made it.
  router.Add(Method::kGet, "/api/v1/enroll-tokens",
             RouteOptions::ForRoles({R::kAdmin, R::kReleaseManager}, "listing enrollment tokens"),
             [api](RequestContext&) -> Result<Response> {
               auto listed =
                   api.store.Read([](soci::session& sql) -> Result<std::vector<EnrollTokenInfo>> {
                     return ListEnrollTokens(sql);
                   });
               if (!listed) return std::unexpected(listed.error());
               const UnixSeconds now = Now(api);
               json tokens = json::array();
               for (const EnrollTokenInfo& t : *listed) tokens.push_back(t.ToJson(now));
               return Response::Ok({{"tokens", tokens}});
             });

  // {"reason": "..."}
  router.Add(
      Method::kPost, "/api/v1/enroll-tokens/{id}/revoke",
      RouteOptions::ForRoles({R::kAdmin, R::kReleaseManager}, "revoking an enrollment token"),
      [api](RequestContext& ctx) -> Result<Response> {
        auto body = ctx.Json();
        if (!body) return std::unexpected(body.error());
        if (auto ok = CheckObject(*body, "", {{"reason", JsonType::kString, true}}); !ok) {
          return std::unexpected(ok.error());
        }
        const std::string id = ctx.path_params.at("id");
        const std::string reason = (*body)["reason"].get<std::string>();
        const UnixSeconds now = Now(api);
        auto revoked = api.store.Write(
            ctx.Origin(), [&](Transaction& tx) { return RevokeEnrollToken(tx, id, reason, now); });
        if (!revoked) return std::unexpected(revoked.error());
        return Response::Ok(revoked->ToJson(now));
      });

  router.Add(
      Method::kGet, "/api/v1/hosts", RouteOptions::AnyUser(),
      [api](RequestContext& ctx) -> Result<Response> {
        LabelSelector selector;
        if (auto text = ctx.Query("selector"); text && !text->empty()) {
          auto parsed = release::TargetSelector::Parse(*text);
          if (!parsed) return std::unexpected(parsed.error().WithContext("selector"));
          selector = parsed->labels;
        }
        // A page of them (the console's view of a large fleet):
        // those whose name holds `name`, from `offset`, at most `limit`.
        const std::string name = ctx.Query("name").value_or("");
        auto offset = QueryNumber(ctx, "offset", 0, 0, std::int64_t{1} << 40);
        if (!offset) return std::unexpected(offset.error());
        auto limit = QueryNumber(ctx, "limit", std::int64_t{1} << 40, 0, std::int64_t{1} << 40);
        if (!limit) return std::unexpected(limit.error());
        // Names and labels of all to pick the page, then the page's hosts
        // whole (FindHost: their inventory and installed apps): at 20,000
        // hosts, reading every inventory was most of the time.
        std::int64_t matching = 0;
        auto page = api.store.Read([&](soci::session& sql) -> Result<std::vector<HostRecord>> {
          std::vector<HostRecord> shown;
          matching = 0;  // (a read is tried again after a lost connection)
          for (const MatchingHost& host : MatchingHosts(sql, selector)) {
            if (!name.empty() && host.name.find(name) == std::string::npos) continue;
            const std::int64_t index = matching++;
            if (index < *offset || index - *offset >= *limit) continue;
            auto record = FindHost(sql, host.name);
            if (!record) return std::unexpected(record.error());
            shown.push_back(std::move(*record));
          }
          return shown;
        });
        if (!page) return std::unexpected(page.error());
        json items = json::array();
        for (const HostRecord& host : *page) items.push_back(host.ToJson());
        return Response::Ok({{"hosts", items}, {"total", matching}});
      });

  // Removal and revocation: the credential stops at once (the cache is
  // emptied once the removal is committed, so nothing puts it back), the
  // host's unfinished deployments end (host_removed) and a poll it holds is
  // answered.
  const auto remove = [api](RequestContext& ctx, const std::string& reason) -> Result<Response> {
    const std::string name = ctx.path_params.at("name");
    const release::PlanParseOptions options = PlanOptions(api);
    Wakeups wake;
    auto removed = api.store.Write(ctx.Origin(), [&](Transaction& tx) {
      wake = {};
      auto host = RemoveHost(tx, name, reason);
      if (host) EndDeploymentsOfHost(tx, name, Now(api), options, wake, reason);
      return host;
    });
    if (!removed) return std::unexpected(removed.error());
    api.agent_credentials.ForgetAll();
    WakeHosts(api.wakeups, wake);
    // A poll of the removed host must not keep its deployment alive.
    api.wakeups.Notify(WakeupHub::HostKey(name));
    return Response::Ok(removed->ToJson());
  };

  router.Add(Method::kPost, "/api/v1/hosts/{name}/remove",
             RouteOptions::ForRoles({R::kAdmin}, "removing a host"),
             [remove](RequestContext& ctx) { return remove(ctx, ""); });

  router.Add(Method::kPost, "/api/v1/hosts/{name}/revoke",
             RouteOptions::ForRoles({R::kAdmin}, "revoking a host"),
             [remove](RequestContext& ctx) -> Result<Response> {
               auto body = ctx.Json();
               if (!body) return std::unexpected(body.error());
               if (auto ok = CheckObject(*body, "", {{"reason", JsonType::kString, true}}); !ok) {
                 return std::unexpected(ok.error());
               }
               const std::string reason = (*body)["reason"].get<std::string>();
               if (reason.find_first_not_of(" \t\r\n") == std::string::npos) {
                 return Fail(ErrorCode::kInvalidArgument,
                             "reason: say why the host is revoked (the audit trail and the "
                             "host's record keep it)");
               }
               return remove(ctx, reason);
             });
}

}  // namespace fabu::coordinator
