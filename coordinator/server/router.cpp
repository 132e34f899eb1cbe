#include "coordinator/server/router.hpp"

#include <fmt/format.h>

#include "coordinator/common/json_input.hpp"

namespace fabu::coordinator {

void Deferred::Complete(Result<Response> result) {
  std::function<void()> waker;
  {
    std::lock_guard lock(mutex_);
    if (result_) return;
    result_ = std::make_unique<Result<Response>>(std::move(result));
    waker = std::move(waker_);
  }
  if (waker) waker();
}

bool Deferred::OnComplete(std::function<void()> waker) {
  std::lock_guard lock(mutex_);
  if (result_) return false;
  waker_ = std::move(waker);
  return true;
}

Result<Response> Deferred::Take() {
  std::lock_guard lock(mutex_);
  if (!result_) return Fail(ErrorCode::kInternal, "the deferred answer was never given");
  return std::move(*result_);
}
namespace {

std::vector<std::string> SplitPath(std::string_view path) {
  std::vector<std::string> segments;
  std::size_t start = 0;
  while (start < path.size()) {
    if (path[start] == '/') {
      ++start;
      continue;
    }
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    segments.emplace_back(path.substr(start, end - start));
    start = end;
  }
  return segments;
}

bool IsParam(const std::string& segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string_view MethodName(Method method) {
  switch (method) {
    case Method::kGet:
      return "GET";
    case Method::kPost:
      return "POST";
    case Method::kPut:
      return "PUT";
    case Method::kPatch:
      return "PATCH";
    case Method::kDelete:
      return "DELETE";
  }
  return "GET";
}

AuditOrigin RequestContext::Origin() const {
  AuditOrigin origin;
  if (principal) {
    origin.actor = principal->name;
    origin.role = std::string(RoleName(principal->role));
  } else if (agent) {
    origin.actor = "host:" + *agent;
    origin.role = "agent";
  } else {
    origin.actor = "anonymous";
    origin.role = "none";
  }
  origin.request_id = request_id;
  origin.source = source;
  return origin;
}

platform::log::Fields RequestContext::LogFields() const {
  platform::log::Fields fields;
  fields.request_id = request_id;
  auto param = [this](const char* name) {
    auto it = path_params.find(name);
    return it == path_params.end() ? std::string() : it->second;
  };
  if (path.starts_with("/api/v1/releases/")) {
    fields.release = param("id");
    fields.host = param("host");
  } else if (path.starts_with("/api/v1/hosts/") || path.starts_with("/api/v1/cmdb/hosts/")) {
    fields.host = param("name");
  }
  if (agent) fields.host = *agent;
  return fields;
}

Result<nlohmann::json> RequestContext::Json() const { return ParseJsonBody(body); }

std::optional<std::string> RequestContext::Query(std::string_view name) const {
  auto it = query.find(std::string(name));
  if (it == query.end()) return std::nullopt;
  return it->second;
}

void Router::Add(Method method, std::string pattern, RouteOptions options, Handler handler) {
  Route route{method, pattern, SplitPath(pattern), std::move(options), std::move(handler)};
  if (route.options.action.empty()) {
    route.options.action = fmt::format("{} {}", MethodName(method), pattern);
  }
  routes_.push_back(std::move(route));
}

Result<RouteMatch> Router::Match(Method method, std::string_view path) const {
  const std::vector<std::string> segments = SplitPath(path);
  bool path_known = false;
  for (const Route& route : routes_) {
    if (route.segments.size() != segments.size()) continue;
    std::map<std::string, std::string> params;
    bool matches = true;
    for (std::size_t i = 0; i < segments.size() && matches; ++i) {
      const std::string& want = route.segments[i];
      if (IsParam(want)) {
        auto decoded = PercentDecode(segments[i], false);
        if (!decoded) return std::unexpected(decoded.error());
        params[want.substr(1, want.size() - 2)] = std::move(*decoded);
      } else {
        matches = want == segments[i];
      }
    }
    if (!matches) continue;
    path_known = true;
    if (route.method == method) return RouteMatch{&route, std::move(params)};
  }
  if (path_known) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("method {} is not allowed on {}", MethodName(method), path));
  }
  return Fail(ErrorCode::kNotFound, fmt::format("no such API path: {}", path));
}

Result<std::string> PercentDecode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) {
        return Fail(ErrorCode::kInvalidArgument, fmt::format("broken %-escape in \"{}\"", text));
      }
      const int high = HexValue(text[i + 1]);
      const int low = HexValue(text[i + 2]);
      if (high < 0 || low < 0) {
        return Fail(ErrorCode::kInvalidArgument, fmt::format("broken %-escape in \"{}\"", text));
      }
      out.push_back(static_cast<char>(high * 16 + low));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Result<std::map<std::string, std::string>> ParseQuery(std::string_view query) {
  std::map<std::string, std::string> out;
  std::size_t start = 0;
  while (start <= query.size()) {
    std::size_t end = query.find('&', start);
    if (end == std::string_view::npos) end = query.size();
    std::string_view pair = query.substr(start, end - start);
    if (!pair.empty()) {
      const std::size_t eq = pair.find('=');
      auto key = PercentDecode(pair.substr(0, eq), true);
      if (!key) return std::unexpected(key.error());
      std::string value;
      if (eq != std::string_view::npos) {
        auto decoded = PercentDecode(pair.substr(eq + 1), true);
        if (!decoded) return std::unexpected(decoded.error());
        value = std::move(*decoded);
      }
      out[std::move(*key)] = std::move(value);
    }
    start = end + 1;
  }
  return out;
}

}  // namespace fabu::coordinator
