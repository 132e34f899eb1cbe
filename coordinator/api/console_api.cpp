// The web console's pages: GET / (index.html) and GET /ui/{file}, served from
// the files built into the binary (console_assets.hpp). The pages use only
// the public API, with the person's console session (session_api.cpp).
#include <fmt/format.h>

#include <memory>
#include <string>

#include "coordinator/api/api_context.hpp"
#include "coordinator/api/console_assets.hpp"
#include "coordinator/common/digest.hpp"

namespace fabu::coordinator {

namespace {

std::string ContentType(std::string_view name) {
  const std::size_t dot = name.rfind('.');
  const std::string_view ext = dot == std::string_view::npos ? "" : name.substr(dot + 1);
  if (ext == "html") return "text/html; charset=utf-8";
  if (ext == "js" || ext == "mjs") return "text/javascript; charset=utf-8";
  if (ext == "css") return "text/css; charset=utf-8";
  if (ext == "json") return "application/json";
  if (ext == "svg") return "image/svg+xml";
  if (ext == "png") return "image/png";
  if (ext == "ico") return "image/x-icon";
  if (ext == "woff2") return "font/woff2";
  if (ext == "txt") return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

struct ServedAsset {
  std::shared_ptr<const std::string> content;
  std::string content_type;
  std::string etag;  // quoted
};

// The asset as it is answered: 304 when the browser holds this content
// (If-None-Match), else the bytes. The browser asks again every time
// (no-cache), so a new coordinator's console shows at the next load.
Response Serve(const ServedAsset& asset, const RequestContext& ctx) {
  Response response;
  const auto known = ctx.headers.find("if-none-match");
  if (known != ctx.headers.end() && known->second == asset.etag) {
    response.status = 304;
    response.text = std::make_shared<const std::string>();
  } else {
    response = Response::Document(asset.content, asset.content_type);
  }
  response.content_type = asset.content_type;
  response.headers = {{"ETag", asset.etag}, {"Cache-Control", "no-cache"}};
  return response;
}

}  // namespace

void RegisterConsoleRoutes(Router& router) {
  auto assets = std::make_shared<std::map<std::string, ServedAsset, std::less<>>>();
  for (const ConsoleAsset& asset : ConsoleAssets()) {
    ServedAsset served{std::make_shared<const std::string>(asset.content), ContentType(asset.name),
                       fmt::format("\"{}\"", Sha256Hex(asset.content).substr(0, 32))};
    assets->emplace(std::string(asset.name), std::move(served));
  }
  router.Add(Method::kGet, "/", RouteOptions::Public().Inline(),
             [assets](RequestContext& ctx) -> Result<Response> {
               auto it = assets->find("index.html");
               if (it == assets->end()) {
                 return Fail(ErrorCode::kNotFound, "this coordinator was built without a console");
               }
               return Serve(it->second, ctx);
             });
  router.Add(Method::kGet, "/ui/{file}", RouteOptions::Public().Inline(),
             [assets](RequestContext& ctx) -> Result<Response> {
               const std::string& name = ctx.path_params.at("file");
               auto it = assets->find(name);
               if (it == assets->end()) {
                 return Fail(ErrorCode::kNotFound,
                             fmt::format("the console has no file \"{}\"", name));
               }
               return Serve(it->second, ctx);
             });
}

}  // namespace fabu::coordinator
