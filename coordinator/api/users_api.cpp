// /api/v1/users: people and their roles (admin only for changes).
#include <fmt/format.h>

#include "coordinator/api/api_context.hpp"
#include "coordinator/common/json_input.hpp"

namespace fabu::coordinator {

void RegisterUserRoutes(Router& router, const ApiContext& api) {
  Store& store = api.store;

  router.Add(
      Method::kPost, "/api/v1/users", RouteOptions::ForRoles({Role::kAdmin}, "adding a user"),
      [&store](RequestContext& ctx) -> Result<Response> {
        auto body = ctx.Json();
        if (!body) return std::unexpected(body.error());
        if (auto ok = CheckObject(
                *body, "", {{"name", JsonType::kString, true}, {"role", JsonType::kString, true}});
            !ok) {
          return std::unexpected(ok.error());
        }
        const std::string name = (*body)["name"].get<std::string>();
        auto role = ParseRole((*body)["role"].get<std::string>());
        if (!role) return std::unexpected(role.error().WithContext("role"));
        if (auto ok = CheckUserName(name); !ok) {
          return std::unexpected(ok.error().WithContext("name"));
        }
        auto token =
            store.Write(ctx.Origin(), [&](Transaction& tx) { return CreateUser(tx, name, *role); });
        if (!token) return std::unexpected(token.error());
        return Response::Created({{"name", name}, {"role", RoleName(*role)}, {"token", *token}});
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
             [&store](RequestContext& ctx) -> Result<Response> {
               const std::string name = ctx.path_params.at("name");
               if (name == ctx.user().name) {
                 return Fail(ErrorCode::kFailedPrecondition,
                             "you cannot disable yourself; ask another admin");
               }
               auto user = store.Write(ctx.Origin(),
                                       [&](Transaction& tx) { return DisableUser(tx, name); });
               if (!user) return std::unexpected(user.error());
               return Response::Ok(user->ToJson());
             });
}

}  // namespace fabu::coordinator
