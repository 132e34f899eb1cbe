// The inside of HttpServer (http_server.hpp), shared by the files that each
// do one of its jobs:
//   http_server.cpp     the listener: TLS context, bind, signals, shutdown
//   connection.cpp      a connection's loop: read, answer, write, keep-alive
//   request_reader.cpp  a request's head and body: route, credentials, limits
//   long_poll.cpp       running the handler: Response::Later, Response::Wait
//                       and the WakeupHub's hold
//   file_reply.cpp      Response::File written in chunks, with Range
// Not for use outside coordinator/server.
#pragma once

// clang-format off
#include <utility>  // before any Boost.Asio header: asio/awaitable.hpp needs it with g++ 12
// clang-format on

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "coordinator/server/http_server.hpp"
#include "coordinator/tls/tls_stream.hpp"

namespace fabu::coordinator {
namespace server_internal {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Stream = TlsStream;
using HttpResponse = http::response<http::string_body>;

inline std::string_view Sv(beast::string_view text) { return {text.data(), text.size()}; }

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

// The error's answer (request_reader.cpp).
// The Retry-After of a 503 that is not about load (Busy says its own).
inline constexpr std::chrono::seconds kUnavailableRetryAfter{2};
Exchange Refuse(const Error& error, bool close);
// The 503 of a limit: the client should come back after `retry_after`.
Exchange Busy(std::string what, std::chrono::seconds retry_after);

// A random 64-bit number (0 if OpenSSL's generator fails: ids then count from 0).
std::uint64_t RandomStart();

}  // namespace server_internal

using namespace server_internal;  // NOLINT: only the server's own files include this

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
        pool_(static_cast<std::size_t>(settings_.workers)),
        people_pool_(kPeopleWorkers) {}

  Result<void> Run();
  void OnShutdown(std::function<void()> stop) { on_shutdown_.push_back(std::move(stop)); }
  net::io_context::executor_type io_executor() { return io_.get_executor(); }
  net::thread_pool::executor_type pool_executor() { return pool_.get_executor(); }

 private:
  // Per-connection state the shutdown path needs; lives in the session frame.
  struct Connection {
    Stream* stream = nullptr;
    bool busy = false;
    // Accepted past max_connections: people's requests only.
    bool over_cap = false;
    // Its next request waits while the hub is held: ServerSettings::hold_next
    // said so of the last one.
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
  // A slot among max_downloads for a Response::File (download_queue.cpp):
  // at once when one is free, else in turn behind the requests queued
  // before, for at most download_wait. nullopt: the slot is this request's
  // (give it back with ReleaseDownload); else the Retry-After to answer with
  // a 503, when the queue says its turn will come.
  net::awaitable<std::optional<std::chrono::seconds>> AcquireDownload();
  // Hands the slot to the first queued request, or frees it.
  void ReleaseDownload(std::chrono::steady_clock::duration held);
  // When the turn of a request with `ahead` requests before it will come:
  // the downloads' average duration per round of max_downloads, from 1 s to
  // retry_after.
  std::chrono::seconds TurnIn(std::size_t ahead) const;
  void OnSignal(int signal_number);
  void MaybeFinish();
  // Copies the connection and download counts to settings_.load.
  void PublishLoad();

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

  // Whose work a pool runs (http_server.hpp, "Threads"): an agent's (an
  // authenticated agent, or agents' traffic on a public route: enrollment,
  // where a fleet enrolls thousands at once and its writes need many workers
  // to fill a group commit) or anyone else's.
  enum class Lane { kAgent, kPerson };
  Lane LaneOf(const RequestContext& ctx) const {
    const bool agents =
        ctx.agent.has_value() || (settings_.agent_traffic && settings_.agent_traffic(ctx.path));
    return agents ? Lane::kAgent : Lane::kPerson;
  }
  // Threads for people's requests: few come at once, and each one's wait is
  // for the store's writer or a reading session, which agents' reads give way to.
  static constexpr std::size_t kPeopleWorkers = 4;

  // Runs `f` on `lane`'s pool and resumes on the I/O thread with its result.
  template <typename F>
  net::awaitable<std::invoke_result_t<F&>> OnPool(F f, Lane lane) {
    using R = std::invoke_result_t<F&>;
    auto executor = lane == Lane::kAgent ? pool_.get_executor() : people_pool_.get_executor();
    co_return co_await net::co_spawn(
        executor, [&f]() -> net::awaitable<R> { co_return f(); }, net::use_awaitable);
  }

  ServerSettings settings_;
  const Router& router_;
  Authenticator authenticate_;
  AgentAuthenticator authenticate_agent_;
  AgentLookup lookup_agent_;
  WakeupHub* wakeups_;
  std::vector<std::function<void()>> on_shutdown_;  // called when shutdown begins
  net::thread_pool pool_;                           // agents' requests, the daemon's periodic work
  net::thread_pool people_pool_;                    // everyone else's requests
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
  // A request waiting for a download slot: its timer is cancelled when the
  // slot is handed to it (`granted`) or at shutdown.
  struct DownloadWaiter {
    net::steady_timer* timer;
    bool granted = false;
  };
  std::deque<DownloadWaiter*> download_queue_;  // first come first served. I/O thread only.
  // The average time a download holds its slot (exponentially weighted), for
  // the Retry-After of a request the queue cannot serve in time.
  std::chrono::duration<double> download_average_{1.0};
  std::uint64_t refused_connections_ = 0;
  // Timers of long polls and holds: cancelled at shutdown. I/O thread only.
  std::set<net::steady_timer*> timers_;
};

}  // namespace fabu::coordinator
