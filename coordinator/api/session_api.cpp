// /api/v1/session: signing in to the web console and out again, and the
// person's console language (auth/sessions.hpp).
#include <fmt/format.h>

#include "coordinator/api/api_context.hpp"
#include "coordinator/common/json_input.hpp"
#include "coordinator/server/error_status.hpp"

namespace fabu::coordinator {

namespace {

// The address part of a peer "ip:port" ("[::1]:443" for IPv6).
std::string AddressOf(std::string_view source) {
  const std::size_t colon = source.rfind(':');
  return std::string(colon == std::string_view::npos ? source : source.substr(0, colon));
}

std::string SessionCookie(std::string_view value, std::int64_t max_age) {
  return fmt::format("{}={}; Path=/; Max-Age={}; Secure; HttpOnly; SameSite=Strict", kSessionCookie,
                     value, max_age);
}

Response TooManySignIns(std::int64_t wait) {
  const Error error(ErrorCode::kUnavailable,
                    fmt::format("too many failed sign-ins from this address: try again in {} s "
                                "(Retry-After)",
                                wait));
  Response response{429, ErrorBody(error), {}, {}, {}, {}, {}, {}};
  response.headers = {{"Retry-After", std::to_string(wait)}};
  return response;
}

}  // namespace

SessionLimits ConsoleSessionLimits(const CoordinatorConfig& config) {
  return {std::int64_t{config.console_idle_minutes} * 60,
          std::int64_t{config.console_session_hours} * 3600};
}

void RegisterSessionRoutes(Router& router, const ApiContext& api) {
  Store& store = api.store;
  const SessionLimits limits = ConsoleSessionLimits(api.config);

  router.Add(
      Method::kPost, "/api/v1/session", RouteOptions::Public(),
      [&store, api, limits](RequestContext& ctx) -> Result<Response> {
        const std::string address = AddressOf(ctx.source);
        const auto steady_now = std::chrono::steady_clock::now();
        if (api.sign_ins != nullptr) {
          if (const auto wait = api.sign_ins->WaitSeconds(address, steady_now); wait > 0) {
            return TooManySignIns(wait);
          }
        }
        auto body = ctx.Json();
        if (!body) return std::unexpected(body.error());
        if (auto ok = CheckObject(
                *body, "", {{"user", JsonType::kString, true}, {"token", JsonType::kString, true}});
            !ok) {
          return std::unexpected(ok.error());
        }
        const std::string user = (*body)["user"].get<std::string>();
        const std::string token = (*body)["token"].get<std::string>();
        const auto now = Now(api);
        // The sign-in is audited as the person it signs in.
        AuditOrigin origin = ctx.Origin();
        origin.actor = user;
        auto principal =
            store.Read([&](soci::session& sql) { return AuthenticateToken(sql, token, now); });
        if (principal) origin.role = std::string(RoleName(principal->role));
        auto started = store.Write(
            origin, [&](Transaction& tx) { return StartSession(tx, user, token, limits, now); });
        if (!started) {
          if (started.error().code() == ErrorCode::kUnauthenticated && api.sign_ins != nullptr) {
            api.sign_ins->Failed(address, steady_now);
          }
          return std::unexpected(started.error());
        }
        Response response =
            Response::Created(SessionJson(started->principal, started->lang, limits));
        response.headers = {{"Set-Cookie", SessionCookie(started->id, limits.lifetime_seconds)}};
        return response;
      });

  router.Add(Method::kGet, "/api/v1/session", RouteOptions::AnyUser(),
             [&store, limits](RequestContext& ctx) -> Result<Response> {
               const Principal& who = ctx.user();
               auto lang = store.Read([&](soci::session& sql) -> Result<std::string> {
                 return ConsoleLang(sql, who.name);
               });
               if (!lang) return std::unexpected(lang.error());
               // With a bearer token: who it is, without a session's parts.
               return Response::Ok(SessionJson(who, *lang, limits));
             });

  router.Add(Method::kDelete, "/api/v1/session", RouteOptions::AnyUser(),
             [&store](RequestContext& ctx) -> Result<Response> {
               if (!ctx.user().session) {
                 return Fail(ErrorCode::kFailedPrecondition,
                             "this request carries no console session to end (a bearer token "
                             "ends by `fabu user token rotate`)");
               }
               auto ended = store.Write(ctx.Origin(), [&](Transaction& tx) -> Result<void> {
                 EndSession(tx, ctx.user());
                 return {};
               });
               if (!ended) return std::unexpected(ended.error());
               Response response{204, nlohmann::json::object(), {}, {}, {}, {}, {}, {}};
               response.headers = {{"Set-Cookie", SessionCookie("", 0)}};
               return response;
             });

  router.Add(Method::kPost, "/api/v1/session/lang", RouteOptions::AnyUser(),
             [&store, limits](RequestContext& ctx) -> Result<Response> {
               auto body = ctx.Json();
               if (!body) return std::unexpected(body.error());
               if (auto ok = CheckObject(*body, "", {{"lang", JsonType::kString, true}}); !ok) {
                 return std::unexpected(ok.error());
               }
               const std::string lang = (*body)["lang"].get<std::string>();
               const Principal& who = ctx.user();
               auto set = store.Write(ctx.Origin(), [&](Transaction& tx) {
                 return SetConsoleLang(tx, who.name, lang);
               });
               if (!set) return std::unexpected(set.error());
               return Response::Ok(SessionJson(who, lang, limits));
             });
}

}  // namespace fabu::coordinator
