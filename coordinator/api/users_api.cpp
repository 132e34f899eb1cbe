// /api/v1/users: people and their roles (admin only for changes).
#include <fmt/format.h>

#include "coordinator/api/api_context.hpp"
#include "coordinator/common/json_input.hpp"

namespace fabu::coordinator {

namespace {

// The body's "token_days" (optional; the configured default without it).
Result<std::int64_t> TokenDays(const nlohmann::json& body, const ApiContext& api) {
  if (!body.contains("token_days")) return api.config.user_token_days;
  const std::int64_t days = body["token_days"].get<std::int64_t>();
  if (auto ok = CheckTokenDays(days, "token_days"); !ok) return std::unexpected(ok.error());
  return days;
}

}  // namespace

void RegisterUserRoutes(Router& router, const ApiContext& api) {
  Store& store = api.store;

  router.Add(
      Method::kPost, "/api/v1/users", RouteOptions::ForRoles({Role::kAdmin}, "adding a user"),
      [&store, api](RequestContext& ctx) -> Result<Response> {
        auto body = ctx.Json();
        if (!body) return std::unexpected(body.error());
        if (auto ok = CheckObject(*body, "",
                                  {{"name", JsonType::kString, true},
                                   {"role", JsonType::kString, true},
                                   {"token_days", JsonType::kInteger}});
            !ok) {
          return std::unexpected(ok.error());
        }
        auto days = TokenDays(*body, api);
        if (!days) return std::unexpected(days.error());
        const std::string name = (*body)["name"].get<std::string>();
        auto role = ParseRole((*body)["role"].get<std::string>());
        if (!role) return std::unexpected(role.error().WithContext("role"));
        if (auto ok = CheckUserName(name); !ok) {
          return std::unexpected(ok.error().WithContext("name"));
        }
        const auto now = Now(api);
        auto created = store.Write(ctx.Origin(), [&](Transaction& tx) -> Result<nlohmann::json> {
          auto token = CreateUser(tx, name, *role, *days, now);
          if (!token) return std::unexpected(token.error());
          auto user = FindUser(tx.sql(), name);
          if (!user) return std::unexpected(user.error());
          nlohmann::json out = user->ToJson();
          out["token"] = *token;
          return out;
        });
        if (!created) return std::unexpected(created.error());
        return Response::Created(std::move(*created));
      });

  // A new token for a user, the old one stopping at once: the user's own
  // (any role), or anyone's by an admin (a lost or leaked token).
  router.Add(
      Method::kPost, "/api/v1/users/{name}/token", RouteOptions::AnyUser(),
      [&store, api](RequestContext& ctx) -> Result<Response> {
        const std::string name = ctx.path_params.at("name");
        if (name != ctx.user().name && ctx.user().role != Role::kAdmin) {
          return Fail(ErrorCode::kPermissionDenied,
                      fmt::format("rotating the token of another user needs role admin; user {} "
                                  "has role {} (anyone may rotate their own)",
                                  ctx.user().name, RoleName(ctx.user().role)));
        }
        nlohmann::json body = nlohmann::json::object();
        if (!ctx.body.empty()) {
          auto parsed = ctx.Json();
          if (!parsed) return std::unexpected(parsed.error());
          body = std::move(*parsed);
        }
        if (auto ok = CheckObject(body, "", {{"token_days", JsonType::kInteger}}); !ok) {
          return std::unexpected(ok.error());
        }
        auto days = TokenDays(body, api);
        if (!days) return std::unexpected(days.error());
        const auto now = Now(api);
        auto rotated = store.Write(
            ctx.Origin(), [&](Transaction& tx) { return RotateToken(tx, name, *days, now); });
        if (!rotated) return std::unexpected(rotated.error());
        // The old token stops here and on every coordinator.
        api.user_tokens.ForgetAll();
        nlohmann::json out = rotated->user.ToJson();
        out["token"] = rotated->token;
        return Response::Ok(std::move(out));
      });

  router.Add(Method::kGet, "/api/v1/users", RouteOptions::AnyUser(),
             [&store](RequestContext&) -> Result<Response> {
               auto users = store.Read(
                   [](soci::session& sql) -> Result<std::vector<User>> { return ListUsers(sql); });
               if (!users) return std::unexpected(users.error());
               nlohmann::json list = nlohmann::json::array();
               for (const User& user : *users) list.push_back(user.ToJson());
               return Response::Ok({{"users", list}});
             });

  router.Add(Method::kGet, "/api/v1/users/{name}", RouteOptions::AnyUser(),
             [&store](RequestContext& ctx) -> Result<Response> {
               const std::string name = ctx.path_params.at("name");
               auto user = store.Read([&](soci::session& sql) { return FindUser(sql, name); });
               if (!user) return std::unexpected(user.error());
               return Response::Ok(user->ToJson());
             });

  router.Add(Method::kPost, "/api/v1/users/{name}/disable",
             RouteOptions::ForRoles({Role::kAdmin}, "disabling a user"),
             [&store, api](RequestContext& ctx) -> Result<Response> {
               const std::string name = ctx.path_params.at("name");
               if (name == ctx.user().name) {
                 return Fail(ErrorCode::kFailedPrecondition,
                             "you cannot disable yourself; ask another admin");
               }
               auto user = store.Write(ctx.Origin(),
                                       [&](Transaction& tx) { return DisableUser(tx, name); });
               if (!user) return std::unexpected(user.error());
               api.user_tokens.ForgetAll();
               return Response::Ok(user->ToJson());
             });
}

}  // namespace fabu::coordinator
