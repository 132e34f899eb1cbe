// Routes of the coordinator's HTTP API: method + path pattern -> handler.
//
// A pattern is a path whose segments are literals or `{name}` parameters:
// "/api/v1/users/{name}/disable". Each route declares who may call it
// (public, any authenticated user, a list of roles, or an enrolled agent:
// user tokens never pass an agent route and agent credentials never pass a
// user route) and what body it reads
// (none/JSON under the JSON limit, or a streamed upload under the upload
// limit). The server authenticates, checks the roles and reads the body
// before calling the handler, so a handler only deals with its domain.
//
// Handlers run on the worker pool (never on the I/O thread, but for Inline
// routes, below), so they may call the Store and do other blocking work.
// They return Result<Response>; an Error becomes the JSON error body with the
// status of HttpStatusFor.
// Exceptions thrown by a handler are caught and answered with 500.
//
// Two kinds of answer go beyond a JSON body:
// - Response::Wait (long poll): "the answer is `body` at `until`, unless
//   WakeupHub key `key` is notified first; then run me again". The server
//   waits on a timer, holding no worker thread, and re-runs the handler with
//   RequestContext::wait_until set to the first `until`.
// - Response::File: the server streams a file (never read into memory),
//   honouring "Range: bytes=N-" (206 + Content-Range; 416 past the end).
// - Response::Later: "the answer comes from another thread" (a
//   Store::WriteAsync completion): the server waits for Deferred::Complete,
//   holding no worker thread, and writes what it was given.
//
// A route marked Inline() runs its handler on the I/O thread when the body is
// small (kInlineBodyLimit), saving the hand-off to a worker and back: its
// handler must not block (no Store::Read or Write; Store::WriteAsync with
// Response::Later is the way to write). A larger body runs on the pool.
//
// Register every route before the server starts; the router is then only
// read, from any thread.
//
// To add an API area, write `coordinator/api/<area>_api.cpp` with a
// `Register<Area>Routes(Router&, const ApiContext&)` and call it from
// RegisterAllRoutes (api/routes.cpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/audit/audit_log.hpp"
#include "coordinator/auth/users.hpp"
#include "platform/log/log.hpp"
#include "protocol/error.hpp"

namespace fabu::coordinator {

enum class Method { kGet, kPost, kPut, kPatch, kDelete };

std::string_view MethodName(Method method);

enum class Access {
  kPublic,         // no token needed (/healthz)
  kAuthenticated,  // any enabled user; `roles` restricts further when not empty
  kAgent,          // an enrolled, not removed host (its credential as bearer token)
};

enum class BodyKind {
  kJson,    // read into memory under the JSON body limit (1 MiB by default)
  kUpload,  // streamed to a temp file under the upload limit
};

// Everything a handler knows about its request.
struct RequestContext {
  Method method = Method::kGet;
  std::string path;   // without the query
  std::string route;  // the matched route's pattern ("/api/v1/releases/{id}"); "" before
  std::map<std::string, std::string> path_params;  // {name} -> value, decoded
  std::map<std::string, std::string> query;        // decoded
  std::map<std::string, std::string> headers;      // lower-case names
  std::optional<Principal> principal;              // set on user routes
  std::optional<std::string> agent;                // set on agent routes: the host's name
  std::string agent_certificate_serial;  // agent routes: the client certificate's serial, or ""
  std::string request_id;                // also sent as X-Request-Id
  std::string source;                    // peer "ip:port"
  std::string body;                      // kJson routes
  std::filesystem::path upload;  // kUpload routes: the streamed body; removed after the handler
                                 // unless the handler moved it away

  // Set when the handler runs again after a Response::Wait was woken: the
  // `until` of the first answer, so the poll keeps its original deadline.
  std::optional<std::chrono::steady_clock::time_point> wait_until;

  // The authenticated user (only call on authenticated routes).
  const Principal& user() const { return *principal; }
  // The authenticated host (only call on agent routes).
  const std::string& host() const { return *agent; }
  // The audit origin of this request, for Store::Write.
  AuditOrigin Origin() const;
  // The fields of this request's log lines: its id, the release of a
  // /api/v1/releases/{id} path, the host of an agent or of a host's path.
  platform::log::Fields LogFields() const;
  // The body as JSON, or kInvalidArgument naming what is wrong.
  Result<nlohmann::json> Json() const;
  // A query parameter, if given.
  std::optional<std::string> Query(std::string_view name) const;
};

// See Response::Wait.
struct WaitInstruction {
  std::string key;               // WakeupHub key
  std::uint64_t generation = 0;  // WakeupHub::Generation(key) read before the handler looked
  std::chrono::steady_clock::time_point until;
};

// See Response::File.
struct FileReply {
  std::filesystem::path path;
  std::string content_type = "application/octet-stream";
  std::string etag;  // sent as is (quoted by the caller); empty: none
};

struct Response;

// See Response::Later: the answer of a request, given once from any thread.
class Deferred {
 public:
  // Gives the answer (the first call counts). Thread-safe.
  void Complete(Result<Response> result);
  // The server's side: `waker` is called (on the completing thread) once the
  // answer is given; false, and no call, when it is given already.
  bool OnComplete(std::function<void()> waker);
  // The answer, once given (moved out).
  Result<Response> Take();

 private:
  std::mutex mutex_;
  std::unique_ptr<Result<Response>> result_;
  std::function<void()> waker_;
};

struct Response {
  int status = 200;
  nlohmann::json body = nlohmann::json::object();
  std::optional<WaitInstruction> wait;
  std::optional<FileReply> file;
  std::shared_ptr<Deferred> later;
  // The body already written as JSON text: sent as it is, instead of `body`.
  std::shared_ptr<const std::string> text;
  // The Content-Type of `text`; empty: application/json.
  std::string content_type;
  // Further header fields (Set-Cookie, ETag, Cache-Control: the server's
  // own "no-store" is replaced by one given here).
  std::vector<std::pair<std::string, std::string>> headers;

  static Response Ok(nlohmann::json body) { return {200, std::move(body), {}, {}, {}, {}, {}, {}}; }
  // 200 with a body written once and shared (a wave's answers are made on
  // another thread; the I/O thread only copies them out).
  static Response OkText(std::shared_ptr<const std::string> text) {
    return {200, nlohmann::json::object(), {}, {}, {}, std::move(text), {}, {}};
  }
  // 200 with a document that is not JSON (`text` sent as it is, as `content_type`).
  static Response Document(std::shared_ptr<const std::string> text, std::string content_type) {
    return {200, nlohmann::json::object(), {}, {}, {}, std::move(text), std::move(content_type),
            {}};
  }
  static Response Created(nlohmann::json body) {
    return {201, std::move(body), {}, {}, {}, {}, {}, {}};
  }
  // Answer `body` (200) at `until` unless `key` is woken before; then the
  // handler runs again (or, when the wakeup hands over an answer, that is
  // sent). `generation`: WakeupHub::Generation(key), read before
  // the handler looked at the store (so no wakeup is lost in between).
  static Response Wait(std::string key, std::uint64_t generation,
                       std::chrono::steady_clock::time_point until, nlohmann::json body) {
    return {
        200, std::move(body), WaitInstruction{std::move(key), generation, until}, {}, {}, {}, {},
        {}};
  }
  static Response File(FileReply file) {
    return {200, nlohmann::json::object(), {}, std::move(file), {}, {}, {}, {}};
  }
  // The answer is what `deferred` is completed with (not a Wait or a Later).
  static Response Later(std::shared_ptr<Deferred> deferred) {
    return {200, nlohmann::json::object(), {}, {}, std::move(deferred), {}, {}, {}};
  }
};

// An Inline route's handler runs on the I/O thread for bodies up to this size.
inline constexpr std::size_t kInlineBodyLimit = 16 * 1024;

using Handler = std::function<Result<Response>(RequestContext&)>;

struct RouteOptions {
  // No token needed.
  static RouteOptions Public() {
    RouteOptions options;
    options.access = Access::kPublic;
    return options;
  }
  // Any enabled user.
  static RouteOptions AnyUser() { return RouteOptions(); }
  // Users with one of `allowed`; `what` names the action in the 403 message.
  static RouteOptions ForRoles(std::vector<Role> allowed, std::string what) {
    RouteOptions options;
    options.roles = std::move(allowed);
    options.action = std::move(what);
    return options;
  }
  // An enrolled agent (RequestContext::host()).
  static RouteOptions Agent() {
    RouteOptions options;
    options.access = Access::kAgent;
    return options;
  }
  // The body is streamed to a temp file (RequestContext::upload).
  RouteOptions Upload() && {
    body = BodyKind::kUpload;
    return std::move(*this);
  }
  // The handler never blocks: run it on the I/O thread (see above).
  RouteOptions Inline() && {
    inline_handler = true;
    return std::move(*this);
  }

  Access access = Access::kAuthenticated;
  std::vector<Role> roles;  // empty: any authenticated user
  BodyKind body = BodyKind::kJson;
  std::string action;  // for the 403 message: "adding a user"; defaults to "METHOD PATH"
  bool inline_handler = false;
};

struct Route {
  Method method;
  std::string pattern;
  std::vector<std::string> segments;
  RouteOptions options;
  Handler handler;
};

struct RouteMatch {
  const Route* route = nullptr;
  std::map<std::string, std::string> params;
};

class Router {
 public:
  void Add(Method method, std::string pattern, RouteOptions options, Handler handler);

  // The route for `method` and `path`: kNotFound when no pattern matches the
  // path, kInvalidArgument ("method not allowed") when only other methods do.
  Result<RouteMatch> Match(Method method, std::string_view path) const;

  const std::vector<Route>& routes() const { return routes_; }

 private:
  std::vector<Route> routes_;
};

// Percent-decoding of a path segment or query component ('+' is a space in
// queries). kInvalidArgument on a broken escape.
Result<std::string> PercentDecode(std::string_view text, bool plus_is_space);

// Splits "a=1&b=2" into decoded pairs.
Result<std::map<std::string, std::string>> ParseQuery(std::string_view query);

}  // namespace fabu::coordinator
