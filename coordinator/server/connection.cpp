// A connection of HttpServer (http_server.hpp): the TLS handshake, then
// request after request (read by request_reader.cpp, answered by
// long_poll.cpp), each answer written (a file by file_reply.cpp), until the
// peer or the server ends it.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/redirect_error.hpp>
#include <limits>
#include <string>

#include "coordinator/common/json_input.hpp"
#include "coordinator/server/server_internal.hpp"

namespace fabu::coordinator {
namespace {

constexpr std::size_t kHeaderLimit = 16 * 1024;
constexpr auto kTlsCloseTimeout = std::chrono::seconds(2);

// What a browser may do with any answer of this server: the console's pages
// run only their own scripts and styles (no inline script, no eval), talk
// only to this coordinator, and are never framed by another page.
void SetBrowserPolicy(HttpResponse& response) {
  response.set("Content-Security-Policy",
               "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
               "connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
               "form-action 'self'");
  response.set("X-Content-Type-Options", "nosniff");
  response.set("X-Frame-Options", "DENY");
  response.set("Referrer-Policy", "no-referrer");
}

}  // namespace

net::awaitable<void> HttpServer::Impl::Session(tcp::socket socket) {
  beast::error_code ec;
  const auto peer = socket.remote_endpoint(ec);
  const std::string source =
      ec ? std::string("unknown") : fmt::format("{}:{}", peer.address().to_string(), peer.port());
  if (connections_.size() >= settings_.max_connections + settings_.reserved_connections) {
    // Past the reserve too: not even a handshake. Say so once in a while.
    if (refused_connections_++ % 1000 == 0) {
      spdlog::warn("{} connections open: closing new ones at once ({} so far)", connections_.size(),
                   refused_connections_);
    }
    socket.close(ec);
    co_return;
  }
  Stream stream(std::move(socket), ssl_.native_handle());
  const std::uint64_t id = ++next_connection_;
  Connection connection{&stream, false, connections_.size() >= settings_.max_connections};
  connections_[id] = &connection;
  PublishLoad();
  struct Unregister {
    Impl* impl;
    std::uint64_t id;
    ~Unregister() {
      impl->connections_.erase(id);
      impl->PublishLoad();
      impl->MaybeFinish();
    }
  } unregister{this, id};

  stream.expires_after(settings_.handshake_timeout);
  co_await stream.async_handshake(net::redirect_error(net::use_awaitable, ec));
  if (ec) {
    // Plain HTTP, a port scan or a client that does not trust our CA.
    spdlog::debug("TLS handshake with {} failed: {}", source, ec.message());
    co_return;
  }

  beast::flat_buffer buffer;
  bool tls_usable = true;
  while (!stopping_) {
    http::request_parser<http::empty_body> header;
    header.header_limit(kHeaderLimit);
    // Limits depend on the route and are checked in Serve. (Not boost::none:
    // Boost 1.74 compares the length against the optional and refuses.)
    header.body_limit(std::numeric_limits<std::uint64_t>::max());
    connection.busy = false;
    if (connection.hold_next && Held()) {
      co_await WaitWhileHeld();
      if (stopping_) break;
    }
    stream.expires_after(settings_.idle_timeout);
    co_await http::async_read_header(stream, buffer, header,
                                     net::redirect_error(net::use_awaitable, ec));
    if (ec) {
      spdlog::debug("connection {}: {}", source, ec.message());
      if (ec != http::error::end_of_stream) tls_usable = false;
      if (ec == http::error::header_limit || ec == http::error::bad_target ||
          ec == http::error::bad_method || ec == http::error::bad_field) {
        spdlog::info("bad request header from {}: {}", source, ec.message());
      }
      break;
    }
    connection.busy = true;
    const auto started = std::chrono::steady_clock::now();
    const unsigned version = header.get().version();
    const bool client_keep_alive = header.get().keep_alive();
    // The access line (built only when info is logged: agents' requests are
    // many). Copied now: the header is gone by the time it is written.
    const bool access_log = spdlog::should_log(spdlog::level::info);
    const std::string method_text(access_log ? Sv(header.get().method_string()) : "");
    const std::string target(access_log ? Sv(header.get().target()) : "");

    RequestContext ctx;
    ctx.request_id = fmt::format("{:016x}", next_request_id_++);
    ctx.source = source;
    Received received = co_await Serve(stream, buffer, header, ctx, connection.over_cap);
    // The handler runs in a coroutine of its own: Serve's frame (body parsers,
    // header copies) is freed before a long poll parks the connection, and so
    // is the read buffer's space unless a pipelined request is in it.
    buffer.shrink_to_fit();
    // (Not `?:` around co_await: built by g++ 12 that crashed destroying the result.)
    Exchange exchange;
    if (received.route != nullptr) {
      exchange = co_await Answer(*received.route, ctx);
    } else {
      exchange = std::move(received.answer);
    }
    // A file is written only with a download slot (its Downloading below
    // gives it back); the queue for one holds the request, not the file.
    if (exchange.response && exchange.response->file) {
      const std::size_t queued = download_queue_.size();
      if (auto come_back = co_await AcquireDownload()) {
        exchange = Busy(
            fmt::format("{} package downloads are in progress and {} waiting", downloads_, queued),
            *come_back);
      }
    }
    if (!exchange.response) {
      tls_usable = false;
      break;
    }
    connection.hold_next = settings_.hold_next && settings_.hold_next(ctx, exchange.ran_out);
    const bool keep_alive = client_keep_alive && !exchange.close && !stopping_;
    if (exchange.response->file) {
      struct Downloading {
        Impl* impl;
        std::chrono::steady_clock::time_point since = std::chrono::steady_clock::now();
        ~Downloading() { impl->ReleaseDownload(std::chrono::steady_clock::now() - since); }
      } downloading{this};
      const bool written = co_await WriteFile(stream, ctx, version, keep_alive, *exchange.response);
      if (!written) ec = net::error::connection_aborted;
    } else {
      HttpResponse response{static_cast<http::status>(exchange.response->status), version};
      response.set(http::field::server, "fabu-coordinator");
      const std::string& content_type = exchange.response->content_type;
      response.set(http::field::content_type,
                   content_type.empty() ? std::string("application/json") : content_type);
      response.set(http::field::cache_control, "no-store");
      response.set("X-Request-Id", ctx.request_id);
      SetBrowserPolicy(response);
      for (const auto& [name, value] : exchange.response->headers) response.set(name, value);
      if (exchange.retry_after) {
        response.set(http::field::retry_after, std::to_string(exchange.retry_after->count()));
      }
      const int status = exchange.response->status;
      if (status == 204 || status == 304) {
        // No Content, Not Modified: no body at all.
      } else if (!exchange.response->text) {
        response.body() = DumpJson(exchange.response->body) + "\n";
      } else if (content_type.empty()) {
        response.body() = *exchange.response->text + "\n";
      } else {
        response.body() = *exchange.response->text;  // a document, byte for byte
      }
      response.keep_alive(keep_alive);
      response.prepare_payload();
      stream.expires_after(settings_.io_timeout);
      co_await http::async_write(stream, response, net::redirect_error(net::use_awaitable, ec));
    }
    const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - started)
                            .count();
    if (settings_.observe) {
      settings_.observe(ctx, exchange.response->status, std::chrono::steady_clock::now() - started);
    }
    if (access_log) {
      // The request's id, release and host go with the line as its fields
      // (platform/log/log.hpp): the journal's FABU_REQUEST_ID, ...
      const platform::log::Scope scope(ctx.LogFields());
      spdlog::info("{} {} -> {} {}ms user={} from={}", method_text, target,
                   exchange.response->status, millis,
                   ctx.principal ? ctx.principal->name
                                 : (ctx.agent ? "host:" + *ctx.agent : std::string("-")),
                   source);
    }
    if (ec) {
      tls_usable = false;
      break;
    }
    if (!keep_alive) break;
  }
  connection.busy = false;
  if (tls_usable) {
    stream.expires_after(kTlsCloseTimeout);
    co_await stream.async_shutdown(net::redirect_error(net::use_awaitable, ec));
  }
  stream.close();
}

}  // namespace fabu::coordinator
