#include <fmt/format.h>

#include <charconv>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "coordinator/api/api_context.hpp"
#include "coordinator/api/openapi.hpp"
#include "coordinator/auth/users.hpp"

namespace fabu::coordinator {

protocol::UnixSeconds Now(const ApiContext& api) { return api.store.clock().Seconds(); }

Result<std::int64_t> QueryNumber(const RequestContext& ctx, std::string_view name,
                                 std::int64_t fallback, std::int64_t min, std::int64_t max) {
  auto text = ctx.Query(name);
  if (!text) return fallback;
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || end != text->data() + text->size() || value < min || value > max) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("query parameter {}: expected a number {}-{}, got \"{}\"", name, min,
                            max, *text));
  }
  return value;
}

release::Instant NowInstant(const ApiContext& api) {
  using namespace std::chrono;
  return release::Instant::FromMillis(
      duration_cast<milliseconds>(api.store.clock().Now().time_since_epoch()).count());
}

release::PlanParseOptions PlanOptions(const ApiContext& api) {
  release::PlanParseOptions options;
  options.categories = api.config.categories;
  return options;
}

release::Actor ActorOf(const RequestContext& ctx) {
  return release::Actor{ctx.user().name, ctx.user().role};
}

bool IsAgentTraffic(std::string_view path) { return path.starts_with("/api/v1/agent/"); }

bool HoldNextRequest(const RequestContext& ctx, bool ran_out) {
  return ctx.agent.has_value() && !ran_out;
}

void RegisterHealthRoutes(Router& router, const ApiContext& api) {
  router.Add(Method::kGet, "/healthz", RouteOptions::Public(),
             [&store = api.store, &wakeups = api.wakeups](RequestContext&) -> Result<Response> {
               auto version = store.Read([](soci::session& sql) -> Result<int> {
                 int one = 0;
                 sql << "SELECT 1", soci::into(one);
                 return one;
               });
               if (!version) return std::unexpected(version.error());
               return Response::Ok({{"status", "ok"},
                                    {"schema", store.schema_version()},
                                    {"long_polls", wakeups.waiting()},
                                    // A wave being assigned in parts holds agents' requests.
                                    {"wave_hold", wakeups.holding()},
                                    {"held_requests", wakeups.held()}});
             });
}

// GET /metrics: Prometheus' text format (metrics/metrics.hpp). Any user's
// token (a viewer made for the scraper), or none with "metrics_public".
void RegisterMetricsRoutes(Router& router, const ApiContext& api) {
  if (api.metrics == nullptr) return;
  router.Add(Method::kGet, "/metrics",
             api.config.metrics_public ? RouteOptions::Public() : RouteOptions::AnyUser(),
             [api](RequestContext&) -> Result<Response> {
               const auto now = Now(api);
               auto figures = api.store.Read([now, plan = PlanOptions(api)](soci::session& sql) {
                 return ReadStoreFigures(sql, now, plan);
               });
               if (!figures) return std::unexpected(figures.error());
               auto text = std::make_shared<const std::string>(api.metrics->Expose(
                   *figures, api.wakeups.waiting(), api.wakeups.held(), api.server_load));
               return Response::Document(std::move(text),
                                         "text/plain; version=0.0.4; charset=utf-8");
             });
}

void RegisterOpenApiRoute(Router& router) {
  // Shared by every answer: the text is the binary's own.
  auto text = std::make_shared<const std::string>(OpenApiText());
  router.Add(Method::kGet, "/api/v1/openapi.yaml", RouteOptions::Public().Inline(),
             [text](RequestContext&) -> Result<Response> {
               return Response::Document(text, "application/yaml");
             });
}

void RegisterAllRoutes(Router& router, const ApiContext& api) {
  RegisterHealthRoutes(router, api);
  RegisterMetricsRoutes(router, api);
  RegisterOpenApiRoute(router);
  RegisterUserRoutes(router, api);
  RegisterPackageRoutes(router, api);
  RegisterAuditRoutes(router, api);
  RegisterReleaseRoutes(router, api);
  RegisterHostRoutes(router, api);
  RegisterRolloutRoutes(router, api);
  RegisterAgentRoutes(router, api);
  RegisterSessionRoutes(router, api);
  RegisterConsoleRoutes(router);
  RegisterCmdbRoutes(router, api);
  RegisterNotifyRoutes(router, api);
  RegisterRecordsRoutes(router, api);
}

}  // namespace fabu::coordinator
