// docs/openapi.yaml is the API's contract: every route the coordinator
// registers (api/routes.cpp, RegisterAllRoutes) is in it, and it names no
// route (method + path template) the router does not have. The spec is read
// as the binary serves it (api/openapi.hpp) with the project's YAML reader
// (release/structured_input.hpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "coordinator/api/api_context.hpp"
#include "coordinator/api/openapi.hpp"
#include "coordinator/release/structured_input.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_store_target.hpp"

namespace fabu::coordinator {
namespace {

using nlohmann::json;

std::string Lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// "get /api/v1/users/{name}" for every route the coordinator serves.
std::set<std::string> RouterRoutes() {
  testing::TempDir dir;
  auto store = Store::Create(fabu::testing::TestStore(dir / "coordinator.db"));
  EXPECT_TRUE(store.has_value()) << (store ? "" : store.error().message());
  if (!store) return {};
  const CoordinatorConfig config;
  WakeupHub wakeups;
  CredentialCache credentials;
  UserTokenCache user_tokens;
  EnrollRefusals refusals;
  const SecretBox secrets = SecretBox::FromKey({});
  CoordinatorMetrics metrics("0.0.0", "test");
  Router router;
  RegisterAllRoutes(router, ApiContext{**store, DataDir{dir.path()}, config, wakeups, credentials,
                                       user_tokens, secrets, refusals, &metrics});
  std::set<std::string> routes;
  for (const Route& route : router.routes()) {
    routes.insert(Lower(MethodName(route.method)) + " " + route.pattern);
  }
  return routes;
}

// The same for every operation of the spec's `paths`.
std::set<std::string> SpecRoutes(const json& spec) {
  static constexpr std::array kMethods = {"get",   "put",  "post",    "delete",
                                          "patch", "head", "options", "trace"};
  std::set<std::string> routes;
  for (const auto& [path, item] : spec.at("paths").items()) {
    for (const char* method : kMethods) {
      if (item.contains(method)) routes.insert(std::string(method) + " " + path);
    }
  }
  return routes;
}

json Spec() {
  auto spec = release::ParseDocument(OpenApiText(), release::DocumentFormat::kYaml);
  EXPECT_TRUE(spec.has_value()) << (spec ? "" : spec.error().message());
  return spec ? *spec : json::object();
}

TEST(OpenApiContractTest, TheSpecIsOpenApi31ForVersion1) {
  const json spec = Spec();
  EXPECT_EQ(spec.value("openapi", ""), "3.1.0");
  ASSERT_TRUE(spec.contains("paths"));
  ASSERT_TRUE(spec.contains("components"));
  EXPECT_TRUE(spec["components"]["schemas"].contains("Error"));
}

TEST(OpenApiContractTest, EveryRouteOfTheRouterIsInTheSpec) {
  const std::set<std::string> spec = SpecRoutes(Spec());
  const std::set<std::string> router = RouterRoutes();
  ASSERT_GT(router.size(), 60u);
  for (const std::string& route : router) {
    EXPECT_TRUE(spec.contains(route)) << "docs/openapi.yaml does not describe " << route;
  }
}

TEST(OpenApiContractTest, EveryRouteOfTheSpecExists) {
  const std::set<std::string> spec = SpecRoutes(Spec());
  const std::set<std::string> router = RouterRoutes();
  ASSERT_FALSE(spec.empty());
  for (const std::string& route : spec) {
    EXPECT_TRUE(router.contains(route))
        << "docs/openapi.yaml names " << route << ", which the coordinator does not serve";
  }
}

// Every operation answers errors in the one shape, and every answer with a body has a schema.
TEST(OpenApiContractTest, EveryResponseHasASchemaAndErrorsUseTheErrorShape) {
  const json spec = Spec();
  const json& responses = spec["components"]["responses"];
  for (const auto& [path, item] : spec.at("paths").items()) {
    for (const auto& [method, operation] : item.items()) {
      if (method == "parameters") continue;
      ASSERT_TRUE(operation.contains("responses")) << method << " " << path;
      for (const auto& [status, response] : operation["responses"].items()) {
        const json* resolved = &response;
        if (response.contains("$ref")) {
          const std::string ref = response["$ref"];
          const std::string name = ref.substr(ref.rfind('/') + 1);
          ASSERT_TRUE(responses.contains(name)) << method << " " << path << ": " << ref;
          resolved = &responses[name];
        }
        if (status == "204" || status == "304") {
          // No Content, Not Modified: answers without a body.
          EXPECT_FALSE(resolved->contains("content")) << method << " " << path << " " << status;
          continue;
        }
        ASSERT_TRUE(resolved->contains("content")) << method << " " << path << " " << status;
        const json& content = (*resolved)["content"];
        ASSERT_FALSE(content.empty()) << method << " " << path << " " << status;
        for (const auto& [type, media] : content.items()) {
          EXPECT_TRUE(media.contains("schema")) << method << " " << path << " " << status;
        }
        if (status.front() == '4' || status.front() == '5') {
          ASSERT_TRUE(content.contains("application/json")) << method << " " << path;
          EXPECT_EQ(content["application/json"]["schema"].value("$ref", ""),
                    "#/components/schemas/Error")
              << method << " " << path << " " << status;
        }
      }
    }
  }
}

}  // namespace
}  // namespace fabu::coordinator
