// /api/v1/packages: signed packages, verified and stored content-addressed.
#include "coordinator/api/api_context.hpp"
#include "coordinator/packages/package_store.hpp"

namespace fabu::coordinator {

void RegisterPackageRoutes(Router& router, const ApiContext& api) {
  router.Add(
      Method::kPost, "/api/v1/packages",
      RouteOptions::ForRoles({Role::kAdmin, Role::kReleaseManager}, "uploading a package").Upload(),
      [api](RequestContext& ctx) -> Result<Response> {
        auto outcome = StoreUploadedPackage(api.store, api.data, api.config.trusted_keys,
                                            ctx.Origin(), ctx.upload);
        if (!outcome) return std::unexpected(outcome.error());
        nlohmann::json body = outcome->package.ToJson();
        body["created"] = outcome->created;
        return Response{outcome->created ? 201 : 200, body, {}, {}, {}, {}, {}, {}};
      });

  router.Add(Method::kGet, "/api/v1/packages", RouteOptions::AnyUser(),
             [api](RequestContext&) -> Result<Response> {
               auto packages =
                   api.store.Read([](soci::session& sql) -> Result<std::vector<StoredPackage>> {
                     return ListPackages(sql);
                   });
               if (!packages) return std::unexpected(packages.error());
               nlohmann::json list = nlohmann::json::array();
               for (const StoredPackage& package : *packages) list.push_back(package.ToJson());
               return Response::Ok({{"packages", list}});
             });

  router.Add(Method::kGet, "/api/v1/packages/{id}", RouteOptions::AnyUser(),
             [api](RequestContext& ctx) -> Result<Response> {
               const std::string id = ctx.path_params.at("id");
               auto package =
                   api.store.Read([&](soci::session& sql) { return FindPackage(sql, id); });
               if (!package) return std::unexpected(package.error());
               return Response::Ok(package->ToJson(true));
             });
}

}  // namespace fabu::coordinator
