// clang-format off
#include <utility>  // before any Boost.Asio header: asio/awaitable.hpp needs it with g++ 12
// clang-format on

#include "coordinator/server/http_server.hpp"

#include <fmt/format.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>
#include <stdio.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>

#include <boost/algorithm/string/predicate.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <type_traits>
#include <vector>

#include "coordinator/common/json_input.hpp"
#include "coordinator/server/error_status.hpp"
#include "coordinator/tls/server_ciphers.hpp"
#include "coordinator/tls/tls_stream.hpp"
#include "platform/fs/files.hpp"

namespace fabu::coordinator {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Stream = TlsStream;
using HttpResponse = http::response<http::string_body>;

constexpr std::size_t kHeaderLimit = 16 * 1024;
constexpr auto kTlsCloseTimeout = std::chrono::seconds(2);
// A refused body up to this size is read and dropped before answering, so a
// client still sending it reads our answer instead of a reset connection.
constexpr std::uint64_t kDrainLimit = 16 << 20;

std::string_view Sv(beast::string_view text) { return {text.data(), text.size()}; }

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

// One request's outcome: the response to write (none when the connection
// broke) and whether to close the connection after it.
struct Exchange {
  std::optional<Response> response;
  bool close = false;
  std::optional<std::chrono::seconds> retry_after;  // sent as Retry-After
  bool ran_out = false;  // a long poll (Response::Wait) that ended by its deadline
};

// A request Serve read whole: the route whose handler answers it or, when
// `route` is null, the answer already decided (a refusal; no response when
// the connection broke).
struct Received {
  Received(Exchange decided) : answer(std::move(decided)) {}  // every early co_return
  explicit Received(const Route& matched) : route(&matched) {}
  const Route* route = nullptr;
  Exchange answer;
};

Exchange Refuse(const Error& error, bool close) {
  return {Response{HttpStatusFor(error.code()), ErrorBody(error), {}, {}, {}, {}}, close, {}};
}

// The 503 of a limit: the client should come back after `retry_after`.
Exchange Busy(std::string what, std::chrono::seconds retry_after) {
  Exchange busy =
      Refuse(Error(ErrorCode::kUnavailable,
                   fmt::format("{}: retry after {} s (Retry-After)", what, retry_after.count())),
             true);
  busy.retry_after = retry_after;
  return busy;
}

// Agents' traffic, which the connection cap applies to (enrollment included).
bool IsAgentPath(std::string_view path) { return path.starts_with("/api/v1/agent/"); }

// Raises the soft limit on open files to the hard one; returns the limit.
rlim_t RaiseOpenFileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) return raised.rlim_cur;
  }
  return limit.rlim_cur;
}

// A random 64-bit number (0 if OpenSSL's generator fails: ids then count from 0).
std::uint64_t RandomStart() {
  std::uint64_t start = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&start), sizeof start) != 1) return 0;
  return start;
}

// Streamed file responses read the file in chunks of this size.
constexpr std::size_t kFileChunk = 256 * 1024;

// The first byte a "Range: bytes=N-" header asks for; nullopt when there is
// no Range header or it has another form (then the whole file is sent, as
// RFC 9110 allows).
std::optional<std::uint64_t> RangeStart(const std::map<std::string, std::string>& headers) {
  auto it = headers.find("range");
  if (it == headers.end()) return std::nullopt;
  std::string_view range = it->second;
  constexpr std::string_view kPrefix = "bytes=";
  if (range.substr(0, kPrefix.size()) != kPrefix || range.empty() || range.back() != '-') {
    return std::nullopt;
  }
  range = range.substr(kPrefix.size(), range.size() - kPrefix.size() - 1);
  std::uint64_t start = 0;
  auto [end, ec] = std::from_chars(range.data(), range.data() + range.size(), start);
  if (ec != std::errc() || end != range.data() + range.size() || range.empty()) {
    return std::nullopt;
  }
  return start;
}

// Owns a FILE* opened for reading.
struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};
using FileHandle = std::unique_ptr<std::FILE, FileCloser>;

}  // namespace

class HttpServer::Impl {
 public:
  Impl(ServerSettings settings, const Router& router, Authenticator authenticate,
       AgentAuthenticator authenticate_agent, WakeupHub* wakeups, AgentLookup lookup_agent)
      : settings_(std::move(settings)),
        router_(router),
        authenticate_(std::move(authenticate)),
        authenticate_agent_(std::move(authenticate_agent)),
        lookup_agent_(std::move(lookup_agent)),
        wakeups_(wakeups),
        pool_(static_cast<std::size_t>(settings_.workers)) {}

  Result<void> Run();
  void Every(std::chrono::milliseconds interval, std::function<void()> work, std::string wake_key) {
    periodic_.push_back({interval, std::move(work), std::move(wake_key)});
  }

 private:
  // Per-connection state the shutdown path needs; lives in the session frame.
  struct Connection {
    Stream* stream = nullptr;
    bool busy = false;
    // Accepted past max_connections: people's requests only.
    bool over_cap = false;
    // Its next request waits while the hub is held: the last one was an
    // agent's, and not a long poll that ran out (whose next request is
    // another poll, maybe for the very wave being assigned).
    bool hold_next = false;
  };

  net::awaitable<void> Accept();
  net::awaitable<void> Session(tcp::socket socket);
  // Reads a request's head and body: its route, or the answer already decided.
  net::awaitable<Received> Serve(Stream& stream, beast::flat_buffer& buffer,
                                 http::request_parser<http::empty_body>& header,
                                 RequestContext& ctx, bool over_cap);
  // Runs the route's handler for a request Serve read.
  net::awaitable<Exchange> Answer(const Route& route, RequestContext& ctx);
  template <typename Parser>
  net::awaitable<beast::error_code> ReadBody(Stream& stream, beast::flat_buffer& buffer,
                                             Parser& parser);
  net::awaitable<bool> Drain(Stream& stream, beast::flat_buffer& buffer,
                             http::request_parser<http::empty_body>& header);
  net::awaitable<Exchange> RefuseEarly(Stream& stream, beast::flat_buffer& buffer,
                                       http::request_parser<http::empty_body>& header,
                                       const Error& error);
  // Whether the WakeupHub is held (a wave being assigned in parts) and the
  // server honours holds (hold_limit > 0).
  bool Held() const {
    return wakeups_ != nullptr && settings_.hold_limit.count() > 0 && wakeups_->holding();
  }
  // Registers `timer` to be cancelled when the hold ends: the registration
  // id, or nullopt when no hold is on (any more).
  std::optional<std::uint64_t> CancelAtHoldEnd(const std::shared_ptr<net::steady_timer>& timer);
  // Waits while Held(), for at most settings_.hold_limit.
  net::awaitable<void> WaitWhileHeld();
  // Runs the route's handler, honouring Response::Wait.
  // `ran_out`: set when a Response::Wait ended by its deadline.
  net::awaitable<Result<Response>> RunHandler(const Route& route, RequestContext& ctx,
                                              bool& ran_out);
  // Writes a Response::File; false when the connection broke.
  net::awaitable<bool> WriteFile(Stream& stream, const RequestContext& ctx, unsigned version,
                                 bool keep_alive, Response& response);
  net::awaitable<void> RunPeriodic(std::size_t index);
  void OnSignal(int signal_number);
  void MaybeFinish();

  // A waker any thread may call to end `timer`'s wait: the cancel is posted
  // to the I/O thread, the only one that touches the timer. The answer a
  // wakeup hands over is stored in `answer` (when given) there too, before
  // the cancel.
  WakeupHub::Waker WakeLater(std::shared_ptr<net::steady_timer> timer,
                             std::shared_ptr<WakeupHub::Answer> answer) {
    return [timer = std::move(timer), answer = std::move(answer),
            executor = io_.get_executor()](const WakeupHub::Answer& given) {
      net::post(executor, [timer, answer, given] {
        if (answer) *answer = given;
        timer->cancel();
      });
    };
  }

  // The same without an answer (a deferred response's completion).
  std::function<void()> CancelLater(std::shared_ptr<net::steady_timer> timer) {
    return [wake = WakeLater(std::move(timer), nullptr)] { wake(nullptr); };
  }

  // Runs `f` on the worker pool and resumes on the I/O thread with its result.
  template <typename F>
  net::awaitable<std::invoke_result_t<F&>> OnPool(F f) {
    using R = std::invoke_result_t<F&>;
    co_return co_await net::co_spawn(
        pool_.get_executor(), [&f]() -> net::awaitable<R> { co_return f(); }, net::use_awaitable);
  }

  struct Periodic {
    std::chrono::milliseconds interval;
    std::function<void()> work;
    std::string wake_key;  // WakeupHub key that runs it early; "": none
  };

  ServerSettings settings_;
  const Router& router_;
  Authenticator authenticate_;
  AgentAuthenticator authenticate_agent_;
  AgentLookup lookup_agent_;
  WakeupHub* wakeups_;
  std::vector<Periodic> periodic_;
  net::thread_pool pool_;
  net::io_context io_{1};
  net::ssl::context ssl_{net::ssl::context::tls_server};
  tcp::acceptor acceptor_{io_};
  net::signal_set signals_{io_, SIGINT, SIGTERM};
  net::steady_timer grace_{io_};
  bool stopping_ = false;
  std::uint64_t next_connection_ = 0;
  // X-Request-Id: a count from a random start, so ids are unique within a run
  // and unlikely to repeat across restarts, without a random draw per request.
  std::uint64_t next_request_id_ = RandomStart();
  std::map<std::uint64_t, Connection*> connections_;
  std::size_t downloads_ = 0;  // Response::File being written. I/O thread only.
  std::uint64_t refused_connections_ = 0;
  // Timers of long polls and periodic work: cancelled at shutdown. I/O thread only.
  std::set<net::steady_timer*> timers_;
};

HttpServer::HttpServer(ServerSettings settings, const Router& router, Authenticator authenticate,
                       AgentAuthenticator authenticate_agent, WakeupHub* wakeups,
                       AgentLookup lookup_agent)
    : impl_(std::make_unique<Impl>(std::move(settings), router, std::move(authenticate),
                                   std::move(authenticate_agent), wakeups,
                                   std::move(lookup_agent))) {}

HttpServer::~HttpServer() = default;

Result<void> HttpServer::Run() { return impl_->Run(); }

void HttpServer::Every(std::chrono::milliseconds interval, std::function<void()> work,
                       std::string wake_key) {
  impl_->Every(interval, std::move(work), std::move(wake_key));
}

Result<void> HttpServer::Impl::Run() {
  try {
    ssl_.set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                     net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 |
                     net::ssl::context::no_tlsv1_1 | net::ssl::context::single_dh_use);
    if (auto ok = UseServerCiphers(ssl_.native_handle()); !ok) return ok;
    // OpenSSL frees a connection's record buffers (~34 KiB) while it is idle:
    // most of our connections are long polls, idle for their whole wait.
    SSL_CTX_set_mode(ssl_.native_handle(), SSL_MODE_RELEASE_BUFFERS);
    // TLS 1.3 session tickets (stateless, on by default) let a reconnecting agent
    // resume without the certificate signature and its verification. A client keeps
    // one session, so one ticket per handshake, not OpenSSL's default two (each one
    // encrypted and written on every handshake).
    SSL_CTX_set_num_tickets(ssl_.native_handle(), 1);
    ssl_.use_certificate_chain_file(settings_.certificate_chain.string());
    ssl_.use_private_key_file(settings_.private_key.string(), net::ssl::context::pem);
  } catch (const boost::system::system_error& e) {
    return Fail(ErrorCode::kIo, fmt::format("loading the TLS certificate {} and key {}: {}",
                                            settings_.certificate_chain.string(),
                                            settings_.private_key.string(), e.what()));
  }

  boost::system::error_code ec;
  const auto address = net::ip::make_address(settings_.host, ec);
  if (ec) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("listen address \"{}\" is not an IP address", settings_.host));
  }
  const tcp::endpoint endpoint(address, settings_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return Fail(ErrorCode::kIo, fmt::format("cannot listen on {}:{}: {}", settings_.host,
                                            settings_.port, ec.message()));
  }
  const std::uint16_t port = acceptor_.local_endpoint().port();
  const rlim_t open_files = RaiseOpenFileLimit();
  const std::size_t wanted = settings_.max_connections + settings_.reserved_connections + 64;
  if (open_files != 0 && open_files != RLIM_INFINITY && open_files < wanted) {
    spdlog::warn(
        "the open-file limit ({}) is below max_connections + reserved_connections ({}): "
        "connections past it are refused by the OS (raise LimitNOFILE / ulimit -n)",
        open_files, wanted - 64);
  }
  const std::string host = address.is_v6() ? fmt::format("[{}]", settings_.host) : settings_.host;

  // A peer that vanishes mid-write must not kill the daemon.
  std::signal(SIGPIPE, SIG_IGN);
  signals_.async_wait([this](const boost::system::error_code& error, int signal_number) {
    if (!error) OnSignal(signal_number);
  });
  net::co_spawn(io_, Accept(), [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("accept loop ended: {}", ex.what());
    }
  });

  for (std::size_t i = 0; i < periodic_.size(); ++i) {
    net::co_spawn(io_, RunPeriodic(i), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::error("periodic work ended: {}", ex.what());
      }
    });
  }

  if (!settings_.port_file.empty()) {
    if (auto ok = platform::WriteFileDurably(settings_.port_file, fmt::format("{}\n", port), 0600);
        !ok) {
      return std::unexpected(ok.error());
    }
  }
  fmt::print("listening on https://{}:{}\n", host, port);
  std::fflush(stdout);
  spdlog::info("listening on https://{}:{} ({} workers)", host, port, settings_.workers);
  // Under systemd (Type=notify) the unit becomes active only now; elsewhere
  // sd_notify does nothing.
  sd_notify(0, "READY=1");

  io_.run();
  sd_notify(0, "STOPPING=1");
  pool_.join();
  if (!settings_.port_file.empty()) {
    std::error_code ignored;
    std::filesystem::remove(settings_.port_file, ignored);
  }
  spdlog::info("stopped");
  return {};
}

void HttpServer::Impl::OnSignal(int signal_number) {
  spdlog::info("signal {}: no new connections; finishing {} open connection(s)", signal_number,
               connections_.size());
  stopping_ = true;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  for (auto& [id, connection] : connections_) {
    // Idle connections wait for a handshake or a request header: end them now.
    // Busy ones finish their request and then close (stopping_).
    if (!connection->busy) connection->stream->cancel();
  }
  // Long polls answer now; periodic work stops.
  for (net::steady_timer* timer : timers_) timer->cancel();
  signals_.async_wait([this](const boost::system::error_code& error, int second) {
    if (error) return;
    spdlog::warn("signal {} again: exiting now", second);
    io_.stop();
  });
  grace_.expires_after(settings_.shutdown_timeout);
  grace_.async_wait([this](const boost::system::error_code& error) {
    if (error) return;
    spdlog::warn("{} request(s) still running after {}s: closing them", connections_.size(),
                 settings_.shutdown_timeout.count());
    io_.stop();
  });
  MaybeFinish();
}

void HttpServer::Impl::MaybeFinish() {
  if (!stopping_ || !connections_.empty()) return;
  grace_.cancel();
  signals_.cancel();
}

net::awaitable<void> HttpServer::Impl::Accept() {
  for (;;) {
    beast::error_code ec;
    tcp::socket socket =
        co_await acceptor_.async_accept(net::redirect_error(net::use_awaitable, ec));
    if (stopping_) co_return;
    if (ec) {
      spdlog::warn("accept: {}", ec.message());
      // Back off a little so a persistent error (EMFILE) does not spin.
      net::steady_timer pause(io_, std::chrono::milliseconds(100));
      co_await pause.async_wait(net::redirect_error(net::use_awaitable, ec));
      continue;
    }
    net::co_spawn(io_, Session(std::move(socket)), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::error("connection ended by an exception: {}", ex.what());
      }
    });
  }
}

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
  struct Unregister {
    Impl* impl;
    std::uint64_t id;
    ~Unregister() {
      impl->connections_.erase(id);
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
    if (exchange.response && exchange.response->file && downloads_ >= settings_.max_downloads) {
      exchange = Busy(fmt::format("{} package downloads are in progress", downloads_),
                      settings_.retry_after);
    }
    if (!exchange.response) {
      tls_usable = false;
      break;
    }
    connection.hold_next = ctx.agent.has_value() && !exchange.ran_out;
    const bool keep_alive = client_keep_alive && !exchange.close && !stopping_;
    if (exchange.response->file) {
      struct Downloading {
        std::size_t& count;
        explicit Downloading(std::size_t& c) : count(c) { ++count; }
        ~Downloading() { --count; }
      } downloading{downloads_};
      const bool written = co_await WriteFile(stream, ctx, version, keep_alive, *exchange.response);
      if (!written) ec = net::error::connection_aborted;
    } else {
      HttpResponse response{static_cast<http::status>(exchange.response->status), version};
      response.set(http::field::server, "fabu-coordinator");
      response.set(http::field::content_type, "application/json");
      response.set(http::field::cache_control, "no-store");
      response.set("X-Request-Id", ctx.request_id);
      if (exchange.retry_after) {
        response.set(http::field::retry_after, std::to_string(exchange.retry_after->count()));
      }
      response.body() =
          (exchange.response->text ? *exchange.response->text : DumpJson(exchange.response->body)) +
          "\n";
      response.keep_alive(keep_alive);
      response.prepare_payload();
      stream.expires_after(settings_.io_timeout);
      co_await http::async_write(stream, response, net::redirect_error(net::use_awaitable, ec));
    }
    const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - started)
                            .count();
    if (access_log) {
      spdlog::info("{} {} {} -> {} {}ms user={} from={}", ctx.request_id, method_text, target,
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
  if (over_cap && IsAgentPath(ctx.path)) {
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

  for (const auto& field : request) {
    std::string name(Sv(field.name_string()));
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    ctx.headers[std::move(name)] = std::string(Sv(field.value()));
  }

  if (route.options.access == Access::kAgent) {
    const std::string token = BearerToken(Sv(request[http::field::authorization]));
    // A credential known good is taken here; any other is asked on the pool.
    std::optional<std::string> known;
    if (lookup_agent_ && !token.empty()) known = lookup_agent_(token);
    Result<std::string> host = Fail(ErrorCode::kUnauthenticated, "not looked up");
    if (known) {
      host = std::move(*known);
    } else {
      host = co_await OnPool([this, &token]() -> Result<std::string> {
        if (!authenticate_agent_) {
          return Fail(ErrorCode::kUnauthenticated, "this coordinator does not serve agents");
        }
        if (token.empty()) {
          return Fail(ErrorCode::kUnauthenticated,
                      "missing agent credential: send \"Authorization: Bearer <credential>\" "
                      "(enroll the host with `fabu-agent enroll`)");
        }
        return authenticate_agent_(token);
      });
    }
    if (!host) co_return co_await RefuseEarly(stream, buffer, header, host.error());
    ctx.agent = std::move(*host);
  } else if (route.options.access != Access::kPublic) {
    const std::string token = BearerToken(Sv(request[http::field::authorization]));
    auto principal = co_await OnPool([this, &token] { return authenticate_(token); });
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

net::awaitable<Exchange> HttpServer::Impl::Answer(const Route& route, RequestContext& ctx) {
  bool ran_out = false;
  auto result = co_await RunHandler(route, ctx, ran_out);
  if (!ctx.upload.empty()) {
    std::error_code ignored;
    std::filesystem::remove(ctx.upload, ignored);
  }
  if (!result) {
    if (HttpStatusFor(result.error().code()) >= 500) {
      spdlog::error("{}: {}", ctx.request_id, result.error().message());
    }
    co_return Refuse(result.error(), false);
  }
  co_return Exchange{std::move(*result), false, {}, ran_out};
}

std::optional<std::uint64_t> HttpServer::Impl::CancelAtHoldEnd(
    const std::shared_ptr<net::steady_timer>& timer) {
  const std::string key(WakeupHub::kHoldKey);
  // Generation first: a hold that ends after this read bumps it, so the
  // registration is refused rather than missing the wakeup.
  const std::uint64_t generation = wakeups_->Generation(key);
  if (!wakeups_->holding()) return std::nullopt;
  return wakeups_->Register(key, generation, WakeLater(timer, nullptr));
}

net::awaitable<void> HttpServer::Impl::WaitWhileHeld() {
  const auto until = std::chrono::steady_clock::now() + settings_.hold_limit;
  while (!stopping_ && std::chrono::steady_clock::now() < until && Held()) {
    auto timer = std::make_shared<net::steady_timer>(io_, until);
    auto id = CancelAtHoldEnd(timer);
    if (!id) continue;  // the hold ended meanwhile (or another began): look again
    timers_.insert(timer.get());
    beast::error_code ec;
    co_await timer->async_wait(net::redirect_error(net::use_awaitable, ec));
    timers_.erase(timer.get());
    wakeups_->Unregister(std::string(WakeupHub::kHoldKey), *id);
  }
}

net::awaitable<Result<Response>> HttpServer::Impl::RunHandler(const Route& route,
                                                              RequestContext& ctx, bool& ran_out) {
  auto run = [&route, &ctx]() -> Result<Response> {
    try {
      return route.handler(ctx);
    } catch (const std::exception& e) {
      return Fail(ErrorCode::kInternal, fmt::format("unexpected failure: {}", e.what()));
    }
  };
  Result<Response> result = Fail(ErrorCode::kInternal, "no answer");
  if (route.options.inline_handler && ctx.body.size() <= kInlineBodyLimit) {
    result = run();
  } else {
    result = co_await OnPool(run);
  }
  if (result && result->later) {
    // Answered from another thread (a Store::WriteAsync completion).
    std::shared_ptr<Deferred> deferred = std::move(result->later);
    auto timer = std::make_shared<net::steady_timer>(io_, net::steady_timer::time_point::max());
    // The wait below starts before the posted cancel can run (both on this thread).
    if (deferred->OnComplete(CancelLater(timer))) {
      beast::error_code ec;
      co_await timer->async_wait(net::redirect_error(net::use_awaitable, ec));
    }
    result = deferred->Take();
  }
  // A wait that runs out while a wave is being assigned in parts (the hub
  // held) waits once more, for the rest of the wave (at most hold_limit): its
  // host may be in a part still to come, and a poll answered empty now comes
  // back only after a round trip through two busy event loops.
  bool extended = false;
  while (result && result->wait && wakeups_ != nullptr && !stopping_) {
    const WaitInstruction wait = *result->wait;
    if (!ctx.wait_until) ctx.wait_until = wait.until;
    auto until = wait.until;
    if (const auto now = std::chrono::steady_clock::now(); now >= until) {
      if (extended || !Held()) {
        ran_out = true;
        break;
      }
      extended = true;
      until = now + settings_.hold_limit;
    }
    auto timer = std::make_shared<net::steady_timer>(io_, until);
    auto answer = std::make_shared<WakeupHub::Answer>();
    auto id = wakeups_->Register(wait.key, wait.generation, WakeLater(timer, answer));
    std::optional<std::uint64_t> hold_id;
    if (id && extended) {
      hold_id = CancelAtHoldEnd(timer);
      if (!hold_id) {  // the hold ended meanwhile: look again now
        wakeups_->Unregister(wait.key, *id);
        id.reset();
      }
    }
    if (id) {
      timers_.insert(timer.get());
      beast::error_code ec;
      co_await timer->async_wait(net::redirect_error(net::use_awaitable, ec));
      timers_.erase(timer.get());
      wakeups_->Unregister(wait.key, *id);
      if (hold_id) wakeups_->Unregister(std::string(WakeupHub::kHoldKey), *hold_id);
      if (!ec) {  // the deadline: answer the body as it is, unless held (above)
        if (!extended && Held()) continue;
        ran_out = true;
        break;
      }
    }
    if (*answer) {
      // The wakeup handed over what a look would find: send it at once. A
      // whole wave's answers then leave in one burst, ahead of the requests
      // its hosts send next.
      result = Response::OkText(*answer);
      break;
    }
    // Woken (or the key moved before we registered, or shutdown): look again.
    result = co_await OnPool(run);
  }
  if (result) result->wait.reset();
  co_return result;
}

net::awaitable<bool> HttpServer::Impl::WriteFile(Stream& stream, const RequestContext& ctx,
                                                 unsigned version, bool keep_alive,
                                                 Response& response) {
  const FileReply& reply = *response.file;
  struct Opened {
    FileHandle file;
    std::uint64_t size = 0;
  };
  auto opened = co_await OnPool([&reply]() -> Result<Opened> {
    FileHandle file(std::fopen(reply.path.c_str(), "rb"));
    std::error_code ec;
    const auto size = std::filesystem::file_size(reply.path, ec);
    if (!file || ec) {
      return Fail(ErrorCode::kNotFound, fmt::format("cannot open {}", reply.path.string()));
    }
    return Opened{std::move(file), size};
  });
  beast::error_code ec;
  auto write_json = [&](int status, const nlohmann::json& body,
                        std::optional<std::string> content_range) -> net::awaitable<bool> {
    HttpResponse error_response{static_cast<http::status>(status), version};
    error_response.set(http::field::server, "fabu-coordinator");
    error_response.set(http::field::content_type, "application/json");
    error_response.set("X-Request-Id", ctx.request_id);
    if (content_range) error_response.set(http::field::content_range, *content_range);
    error_response.body() = DumpJson(body) + "\n";
    error_response.keep_alive(keep_alive);
    error_response.prepare_payload();
    stream.expires_after(settings_.io_timeout);
    co_await http::async_write(stream, error_response, net::redirect_error(net::use_awaitable, ec));
    co_return !ec;
  };
  if (!opened) {
    spdlog::error("{}: {}", ctx.request_id, opened.error().message());
    response.status = 500;
    co_return co_await write_json(500, ErrorBody(Error(ErrorCode::kIo, "the file is unreadable")),
                                  std::nullopt);
  }
  const std::uint64_t size = opened->size;
  std::uint64_t offset = 0;
  const auto range = RangeStart(ctx.headers);
  if (range) {
    if (*range >= size && !(size == 0 && *range == 0)) {
      response.status = 416;
      co_return co_await write_json(
          416,
          ErrorBody(Error(
              ErrorCode::kInvalidArgument,
              fmt::format("range starts at byte {} but the file has {} bytes", *range, size))),
          fmt::format("bytes */{}", size));
    }
    offset = *range;
  }
  const bool partial = range.has_value() && offset > 0;
  response.status = partial ? 206 : 200;

  http::response<http::buffer_body> out{partial ? http::status::partial_content : http::status::ok,
                                        version};
  out.set(http::field::server, "fabu-coordinator");
  out.set(http::field::content_type, reply.content_type);
  out.set(http::field::accept_ranges, "bytes");
  out.set("X-Request-Id", ctx.request_id);
  if (!reply.etag.empty()) out.set(http::field::etag, reply.etag);
  if (partial)
    out.set(http::field::content_range, fmt::format("bytes {}-{}/{}", offset, size - 1, size));
  out.content_length(size - offset);
  out.keep_alive(keep_alive);
  out.body().data = nullptr;
  out.body().more = true;
  http::response_serializer<http::buffer_body> serializer{out};
  stream.expires_after(settings_.io_timeout);
  co_await http::async_write_header(stream, serializer,
                                    net::redirect_error(net::use_awaitable, ec));
  if (ec) co_return false;

  std::FILE* file = opened->file.get();
  if (offset > 0 && fseeko(file, static_cast<off_t>(offset), SEEK_SET) != 0) co_return false;
  std::vector<char> chunk(kFileChunk);
  std::uint64_t remaining = size - offset;
  while (remaining > 0) {
    const std::size_t want =
        static_cast<std::size_t>(std::min<std::uint64_t>(remaining, chunk.size()));
    const std::size_t got =
        co_await OnPool([&] { return std::fread(chunk.data(), 1, want, file); });
    if (got == 0) {
      spdlog::error("{}: {} ended early ({} bytes short)", ctx.request_id, reply.path.string(),
                    remaining);
      co_return false;
    }
    remaining -= got;
    out.body().data = chunk.data();
    out.body().size = got;
    out.body().more = remaining > 0;
    // Per chunk, so the timeout bounds a stalled reader, not the file's size.
    stream.expires_after(settings_.io_timeout);
    co_await http::async_write(stream, serializer, net::redirect_error(net::use_awaitable, ec));
    if (ec == http::error::need_buffer) ec = {};
    if (ec) co_return false;
  }
  if (!serializer.is_done()) {
    out.body().data = nullptr;
    out.body().size = 0;
    out.body().more = false;
    co_await http::async_write(stream, serializer, net::redirect_error(net::use_awaitable, ec));
    if (ec) co_return false;
  }
  co_return true;
}

net::awaitable<void> HttpServer::Impl::RunPeriodic(std::size_t index) {
  const Periodic& periodic = periodic_[index];
  const bool wakeable = !periodic.wake_key.empty() && wakeups_ != nullptr;
  auto timer = std::make_shared<net::steady_timer>(io_);
  timers_.insert(timer.get());
  // A notify while the work runs (or before the first wait) is not lost: the
  // key's generation moved, so Register refuses and the work runs again.
  std::uint64_t seen = wakeable ? wakeups_->Generation(periodic.wake_key) : 0;
  while (!stopping_) {
    timer->expires_after(periodic.interval);
    std::optional<std::uint64_t> id;
    if (wakeable) id = wakeups_->Register(periodic.wake_key, seen, WakeLater(timer, nullptr));
    if (!wakeable || id) {
      beast::error_code ec;
      co_await timer->async_wait(net::redirect_error(net::use_awaitable, ec));
      if (id) wakeups_->Unregister(periodic.wake_key, *id);
      // Cancelled: by shutdown (stopping_) or by a wakeup (run now).
      if (ec && (!wakeable || ec != net::error::operation_aborted)) break;
    }
    if (stopping_) break;
    if (wakeable) seen = wakeups_->Generation(periodic.wake_key);
    co_await OnPool([&periodic] {
      periodic.work();
      return true;
    });
  }
  timers_.erase(timer.get());
}

}  // namespace fabu::coordinator
