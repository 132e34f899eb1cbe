// /api/v1/releases/{id}/test, /start and /hosts: deploying a release to its
// test hosts, starting its production rollout, and where each host stands
// (issue 4 §5).
//
// The release's transition and the deployments it makes are one store
// transaction; the waiting agents are woken after it committed.
#include <fmt/format.h>

#include <chrono>

#include "coordinator/api/api_context.hpp"
#include "coordinator/deploy/deployments.hpp"
#include "coordinator/hosts/hosts.hpp"
#include "coordinator/store/release_records.hpp"

namespace fabu::coordinator {
namespace {

using nlohmann::json;
namespace rel = release;

UnixSeconds Now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

rel::Actor ActorOf(const RequestContext& ctx) {
  auto role = rel::ParseRole(RoleName(ctx.user().role));
  return rel::Actor{ctx.user().name, role.value_or(rel::Role::kViewer)};
}

rel::PlanParseOptions PlanOptions(const ApiContext& api) {
  rel::PlanParseOptions options;
  options.categories = api.config.categories;
  return options;
}

using Operation = Result<rel::Release> (*)(const rel::Release&, const rel::Actor&, rel::UnixSeconds,
                                           std::size_t);

// Moves release `id` with `operation` and deploys it to its targets labelled
// env=`environment`.
Result<Response> Deploy(const ApiContext& api, RequestContext& ctx, std::string_view environment,
                        Operation operation) {
  const std::string id = ctx.path_params.at("id");
  struct Outcome {
    rel::Release release;
    std::vector<DeploymentRecord> made;
  };
  auto outcome = api.store.Write(ctx.Origin(), [&](Transaction& tx) -> Result<Outcome> {
    auto before = LoadRelease(tx.sql(), id, PlanOptions(api));
    if (!before) return std::unexpected(before.error());
    LabelSelector selector;
    if (before->plan.targets) selector = before->plan.targets->labels;
    selector.emplace_back("env", std::string(environment));
    std::vector<std::string> hosts;
    for (const HostRecord& host : ListHosts(tx.sql(), selector)) hosts.push_back(host.name);
    const rel::UnixSeconds now = Now();
    auto after = operation(*before, ActorOf(ctx), now, hosts.size());
    if (!after) return std::unexpected(after.error());
    auto package = FindPackage(tx.sql(), after->plan.packages.front());
    if (!package) {
      return std::unexpected(package.error().WithContext(
          fmt::format("release {} names package {}", id, after->plan.packages.front())));
    }
    SaveRelease(tx.sql(), *after);
    AuditEvent event(fmt::format("release.{}", rel::ActionName(after->history.back().action)),
                     "release", id);
    event.release_id = id;
    event.before = rel::ReleaseToJson(*before);
    event.after = rel::ReleaseToJson(*after);
    event.detail = {{"from", rel::ReleaseStateName(before->state)},
                    {"to", rel::ReleaseStateName(after->state)},
                    {"environment", environment},
                    {"hosts", hosts}};
    tx.Audit(event);
    auto made = CreateDeployments(tx, *after, *package, hosts, environment, now);
    return Outcome{std::move(*after), std::move(made)};
  });
  if (!outcome) return std::unexpected(outcome.error());
  for (const DeploymentRecord& d : outcome->made) {
    api.wakeups.Notify(WakeupHub::HostKey(d.host));
  }
  json deployments = json::array();
  for (const DeploymentRecord& d : outcome->made) deployments.push_back(d.ToJson());
  return Response::Ok(
      {{"release", rel::ReleaseToJson(outcome->release)}, {"deployments", deployments}});
}

}  // namespace

void RegisterRolloutRoutes(Router& router, const ApiContext& api) {
  using R = Role;

  router.Add(Method::kPost, "/api/v1/releases/{id}/test",
             RouteOptions::ForRoles({R::kAdmin, R::kReleaseManager, R::kTester},
                                    "deploying a release to its test hosts"),
             [api](RequestContext& ctx) -> Result<Response> {
               return Deploy(api, ctx, kTestEnvironment, &rel::StartTestDeployment);
             });

  router.Add(Method::kPost, "/api/v1/releases/{id}/start",
             RouteOptions::ForRoles({R::kAdmin, R::kReleaseManager}, "starting a rollout"),
             [api](RequestContext& ctx) -> Result<Response> {
               return Deploy(api, ctx, kProductionEnvironment, &rel::StartRollout);
             });

  router.Add(Method::kGet, "/api/v1/releases/{id}/hosts", RouteOptions::AnyUser(),
             [api](RequestContext& ctx) -> Result<Response> {
               const std::string id = ctx.path_params.at("id");
               auto listed = api.store.Read([&](soci::session& sql) -> Result<json> {
                 auto r = LoadRelease(sql, id, PlanOptions(api));
                 if (!r) return std::unexpected(r.error());
                 json hosts = json::array();
                 for (const DeploymentRecord& d : ListDeployments(sql, id)) {
                   hosts.push_back(d.ToJson());
                 }
                 return json{
                     {"release", id}, {"state", rel::ReleaseStateName(r->state)}, {"hosts", hosts}};
               });
               if (!listed) return std::unexpected(listed.error());
               return Response::Ok(*listed);
             });
}

}  // namespace fabu::coordinator
