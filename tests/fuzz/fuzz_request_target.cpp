// The request target of every HTTP request the coordinator serves, before
// any authentication: the path matched against the routes (with percent-
// decoded parameters) and the query split into pairs
// (coordinator/server/router.hpp).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "coordinator/server/router.hpp"

namespace {

using fabu::coordinator::Method;
using fabu::coordinator::RouteOptions;
using fabu::coordinator::Router;

const Router& Routes() {
  static const Router router = [] {
    Router r;
    auto none =
        [](fabu::coordinator::RequestContext&) -> fabu::Result<fabu::coordinator::Response> {
      return fabu::coordinator::Response::Ok(nlohmann::json::object());
    };
    // Patterns of each shape the API has (docs/api.md).
    for (const char* pattern : {"/healthz", "/api/v1/releases", "/api/v1/releases/{id}",
                                "/api/v1/releases/{id}/hosts/{host}",
                                "/api/v1/packages/{id}/download", "/api/v1/agent/assignments",
                                "/api/v1/cmdb/hosts/{name}", "/api/v1/enroll-tokens/{id}/revoke"}) {
      r.Add(Method::kGet, pattern, RouteOptions::AnyUser(), none);
      r.Add(Method::kPost, pattern, RouteOptions::AnyUser(), none);
    }
    return r;
  }();
  return router;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view target(reinterpret_cast<const char*>(data), size);
  const std::size_t question = target.find('?');
  (void)Routes().Match(Method::kGet, target.substr(0, question));
  if (question != std::string_view::npos) {
    (void)fabu::coordinator::ParseQuery(target.substr(question + 1));
  }
  (void)fabu::coordinator::PercentDecode(target, false);
  return 0;
}
