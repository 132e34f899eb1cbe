// Reading a request for HttpServer (http_server.hpp): its method and target,
// the connection cap on agents' traffic, the route, the credentials and
// roles, then the body under its limit (JSON in memory, an upload to a temp
// file). A refusal before the body drains a small body first, so the client
// reads the answer rather than a reset connection.
#include <fmt/format.h>
#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include <boost/algorithm/string/predicate.hpp>
#include <boost/asio/redirect_error.hpp>
#include <cctype>
#include <filesystem>
#include <string>

#include "coordinator/auth/sessions.hpp"
#include "coordinator/server/error_status.hpp"
#include "coordinator/server/server_internal.hpp"
#include "coordinator/tls/client_certificates.hpp"

namespace fabu::coordinator {
namespace server_internal {

Exchange Refuse(const Error& error, bool close) {
  Exchange refused{
      Response{HttpStatusFor(error.code()), ErrorBody(error), {}, {}, {}, {}, {}, {}}, close, {}};
  // Unavailable (the store's database cannot be reached, say): worth asking
  // again soon, and an agent or the CLI with several coordinators moves on.
  if (refused.response->status == 503) refused.retry_after = kUnavailableRetryAfter;
  return refused;
}

Exchange Busy(std::string what, std::chrono::seconds retry_after) {
  Exchange busy =
      Refuse(Error(ErrorCode::kUnavailable,
                   fmt::format("{}: retry after {} s (Retry-After)", what, retry_after.count())),
             true);
  busy.retry_after = retry_after;
  return busy;
}

}  // namespace server_internal

namespace {

// A refused body up to this size is read and dropped before answering, so a
// client still sending it reads our answer instead of a reset connection.
constexpr std::uint64_t kDrainLimit = 16 << 20;

std::optional<Method> ToMethod(http::verb verb) {
  switch (verb) {
    case http::verb::get:
      return Method::kGet;
    case http::verb::post:
      return Method::kPost;
    case http::verb::put:
      return Method::kPut;
    case http::verb::patch:
      return Method::kPatch;
    case http::verb::delete_:
      return Method::kDelete;
    default:
      return std::nullopt;
  }
}

std::string BearerToken(std::string_view authorization) {
  constexpr std::string_view kScheme = "Bearer ";
  if (authorization.size() < kScheme.size() ||
      !boost::algorithm::iequals(authorization.substr(0, kScheme.size()), kScheme)) {
    return {};
  }
  std::string_view token = authorization.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  return std::string(token);
}

// The value of cookie `name` in a Cookie header ("a=1; b=2"), or "".
std::string CookieValue(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    const std::size_t end = header.find(';');
    std::string_view pair = header.substr(0, end);
    header = end == std::string_view::npos ? std::string_view() : header.substr(end + 1);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    const std::size_t equals = pair.find('=');
    if (equals != std::string_view::npos && pair.substr(0, equals) == name) {
      return std::string(pair.substr(equals + 1));
    }
  }
  return {};
}

// A request made by a console session that changes something must carry
// the session's CSRF token and, where its browser tells, come from a page
// of this coordinator: a page of another site can make the browser send the
// cookie (SameSite aside) but can neither read the token nor hide its origin.
Result<void> CheckConsoleWrite(const RequestContext& ctx, const ConsoleSession& session) {
  auto header = [&ctx](const std::string& name) -> std::string_view {
    auto it = ctx.headers.find(name);
    return it == ctx.headers.end() ? std::string_view() : std::string_view(it->second);
  };
  const std::string_view csrf = header(std::string(kCsrfHeader));
  if (csrf.size() != session.csrf.size() ||
      CRYPTO_memcmp(csrf.data(), session.csrf.data(), csrf.size()) != 0) {
    return Fail(ErrorCode::kPermissionDenied,
                fmt::format("{} {} from a console session needs the session's CSRF token in the "
                            "X-CSRF-Token header",
                            MethodName(ctx.method), ctx.path));
  }
  if (header("sec-fetch-site") == "cross-site" || header("sec-fetch-site") == "same-site") {
    return Fail(ErrorCode::kPermissionDenied,
                "a request from another site's page is refused (Sec-Fetch-Site)");
  }
  const std::string_view origin = header("origin");
  if (!origin.empty() && origin != "https://" + std::string(header("host"))) {
    return Fail(ErrorCode::kPermissionDenied,
                fmt::format("a request from {} is refused: the console's requests come from "
                            "https://{}",
                            origin, header("host")));
  }
  return {};
}

}  // namespace

template <typename Parser>
net::awaitable<beast::error_code> HttpServer::Impl::ReadBody(Stream& stream,
                                                             beast::flat_buffer& buffer,
                                                             Parser& parser) {
  beast::error_code ec;
  // Read piecewise so the timeout bounds silence, not the size of an upload.
  while (!parser.is_done()) {
    stream.expires_after(settings_.io_timeout);
    co_await http::async_read_some(stream, buffer, parser,
                                   net::redirect_error(net::use_awaitable, ec));
    if (ec) co_return ec;
  }
  co_return ec;
}

net::awaitable<bool> HttpServer::Impl::Drain(Stream& stream, beast::flat_buffer& buffer,
                                             http::request_parser<http::empty_body>& header) {
  const auto length = header.content_length();
  // A client waiting for 100-continue has not sent its body; one without a
  // known length, or a long one, is not worth reading: answer and close.
  if (boost::algorithm::iequals(header.get()[http::field::expect], "100-continue") || !length ||
      *length > kDrainLimit) {
    co_return false;
  }
  http::request_parser<http::buffer_body> drain{std::move(header)};
  drain.body_limit(kDrainLimit);
  char scratch[16 * 1024];
  beast::error_code ec;
  while (!drain.is_done()) {
    drain.get().body().data = scratch;
    drain.get().body().size = sizeof scratch;
    stream.expires_after(settings_.io_timeout);
    co_await http::async_read_some(stream, buffer, drain,
                                   net::redirect_error(net::use_awaitable, ec));
    if (ec == http::error::need_buffer) ec = {};
    if (ec) co_return false;
  }
  co_return true;
}

net::awaitable<Exchange> HttpServer::Impl::RefuseEarly(
    Stream& stream, beast::flat_buffer& buffer, http::request_parser<http::empty_body>& header,
    const Error& error) {
  const auto length = header.content_length();
  const bool has_body = header.chunked() || (length && *length > 0);
  if (!has_body) co_return Refuse(error, false);
  const bool drained = co_await Drain(stream, buffer, header);
  co_return Refuse(error, !drained);
}

net::awaitable<Received> HttpServer::Impl::Serve(Stream& stream, beast::flat_buffer& buffer,
                                                 http::request_parser<http::empty_body>& header,
                                                 RequestContext& ctx, bool over_cap) {
  const auto& request = header.get();
  const auto method = ToMethod(request.method());
  if (!method) {
    co_return co_await RefuseEarly(
        stream, buffer, header,
        Error(ErrorCode::kInvalidArgument,
              fmt::format("method {} is not supported", Sv(request.method_string()))));
  }
  ctx.method = *method;
  const std::string_view target = Sv(request.target());
  const std::size_t question = target.find('?');
  ctx.path = std::string(target.substr(0, question));
  if (question != std::string_view::npos) {
    auto query = ParseQuery(target.substr(question + 1));
    if (!query) co_return co_await RefuseEarly(stream, buffer, header, query.error());
    ctx.query = std::move(*query);
  }
  if (over_cap && settings_.agent_traffic && settings_.agent_traffic(ctx.path)) {
    // Before authentication: a refused agent costs us no store read. Its
    // (small) body is read first, so it reads our answer, not a reset.
    const auto length = header.content_length();
    if (header.chunked() || (length && *length > 0)) co_await Drain(stream, buffer, header);
    co_return Busy(fmt::format("the coordinator holds its maximum of {} agent connections",
                               settings_.max_connections),
                   settings_.retry_after);
  }
  auto match = router_.Match(ctx.method, ctx.path);
  if (!match) co_return co_await RefuseEarly(stream, buffer, header, match.error());
  const Route& route = *match->route;
  ctx.path_params = std::move(match->params);
  ctx.route = route.pattern;

  for (const auto& field : request) {
    std::string name(Sv(field.name_string()));
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    ctx.headers[std::move(name)] = std::string(Sv(field.value()));
  }

  if (route.options.access == Access::kAgent) {
    const std::string token = BearerToken(Sv(request[http::field::authorization]));
    // What this connection's peer presented, read for each request: a
    // resumed session carries the certificate (and its verification) of the
    // handshake it resumes, and its expiry is judged now.
    const PeerCertificate peer = ReadPeerCertificate(stream.native_handle());
    // A credential known good is taken here; any other is asked on the pool.
    std::optional<Result<std::string>> known;
    if (lookup_agent_ && !token.empty()) known = lookup_agent_(token, peer);
    Result<std::string> host = Fail(ErrorCode::kUnauthenticated, "not looked up");
    if (known) {
      host = std::move(*known);
    } else {
      host = co_await OnPool(
          [this, &token, &peer]() -> Result<std::string> {
            if (!authenticate_agent_) {
              return Fail(ErrorCode::kUnauthenticated, "this coordinator does not serve agents");
            }
            if (token.empty()) {
              return Fail(ErrorCode::kUnauthenticated,
                          "missing agent credential: send \"Authorization: Bearer <credential>\" "
                          "(enroll the host with `fabu-agent enroll`)");
            }
            return authenticate_agent_(token, peer);
          },
          Lane::kAgent);
    }
    if (!host) co_return co_await RefuseEarly(stream, buffer, header, host.error());
    ctx.agent = std::move(*host);
    if (peer.present) ctx.agent_certificate_serial = peer.serial;
  } else if (route.options.access != Access::kPublic) {
    const std::string token = BearerToken(Sv(request[http::field::authorization]));
    std::string session_id;
    if (token.empty() && settings_.authenticate_session) {
      session_id = CookieValue(Sv(request[http::field::cookie]), kSessionCookie);
    }
    Result<Principal> principal = Fail(ErrorCode::kUnauthenticated, "not looked up");
    if (!session_id.empty()) {
      principal = co_await OnPool(
          [this, &session_id] { return settings_.authenticate_session(session_id); },
          Lane::kPerson);
      if (principal && ctx.method != Method::kGet) {
        if (auto allowed = CheckConsoleWrite(ctx, *principal->session); !allowed) {
          co_return co_await RefuseEarly(stream, buffer, header, allowed.error());
        }
      }
    } else {
      principal = co_await OnPool([this, &token] { return authenticate_(token); }, Lane::kPerson);
    }
    if (!principal) co_return co_await RefuseEarly(stream, buffer, header, principal.error());
    if (!route.options.roles.empty()) {
      auto allowed = RequireRole(*principal, route.options.roles, route.options.action);
      if (!allowed) co_return co_await RefuseEarly(stream, buffer, header, allowed.error());
    }
    ctx.principal = std::move(*principal);
  }

  const bool upload = route.options.body == BodyKind::kUpload;
  const std::uint64_t limit = upload ? settings_.upload_limit : settings_.json_body_limit;
  const auto length = header.content_length();
  const Error too_large(ErrorCode::kTooLarge,
                        fmt::format("the request body is over the limit of {} bytes{}", limit,
                                    upload ? " for uploads" : " for JSON requests"));
  if (length && *length > limit) co_return co_await RefuseEarly(stream, buffer, header, too_large);

  beast::error_code ec;
  if (boost::algorithm::iequals(request[http::field::expect], "100-continue")) {
    http::response<http::empty_body> go_on{http::status::continue_, request.version()};
    stream.expires_after(settings_.io_timeout);
    co_await http::async_write(stream, go_on, net::redirect_error(net::use_awaitable, ec));
    if (ec) {
      spdlog::debug("{}: writing 100-continue to {}: {}", ctx.request_id, ctx.source, ec.message());
      co_return Exchange{};
    }
  }

  if (upload) {
    const std::filesystem::path file = settings_.upload_dir / ("upload-" + ctx.request_id);
    http::request_parser<http::file_body> parser{std::move(header)};
    parser.body_limit(limit);
    parser.get().body().open(file.c_str(), beast::file_mode::write_new, ec);
    if (ec) {
      co_return Refuse(Error(ErrorCode::kIo, fmt::format("cannot create upload file {}: {}",
                                                         file.string(), ec.message())),
                       true);
    }
    ec = co_await ReadBody(stream, buffer, parser);
    parser.get().body().close();
    if (ec) {
      std::error_code ignored;
      std::filesystem::remove(file, ignored);
      if (ec == http::error::body_limit) co_return Refuse(too_large, true);
      spdlog::info("{}: upload from {} broke off: {}", ctx.request_id, ctx.source, ec.message());
      co_return Exchange{};
    }
    ctx.upload = file;
  } else {
    http::request_parser<http::string_body> parser{std::move(header)};
    parser.body_limit(limit);
    ec = co_await ReadBody(stream, buffer, parser);
    if (ec == http::error::body_limit) co_return Refuse(too_large, true);
    if (ec) {
      spdlog::info("{}: request body from {} broke off: {}", ctx.request_id, ctx.source,
                   ec.message());
      co_return Exchange{};
    }
    ctx.body = std::move(parser.get().body());
  }
  co_return Received(route);
}

}  // namespace fabu::coordinator
