// clang-format off
#include <utility>  // before any Boost.Asio header: asio/awaitable.hpp needs it with g++ 12
// clang-format on

#include "tests/load/fleet.hpp"

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <cmath>
#include <deque>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <thread>

#include "coordinator/tls/tls_stream.hpp"
#include "protocol/agent_api.hpp"
#include "protocol/deployment_event.hpp"

namespace fabu::load {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
// The coordinator's own TLS stream, on the client side: with Asio's
// ssl::stream (under beast::ssl_stream, over a beast::tcp_stream with a timer
// per operation) the loadgen spent 10-20 % more CPU per request, taken from
// the coordinator it measures on the same cores (docs/benchmarks-history.md).
using Stream = coordinator::TlsStream;
using Clock = std::chrono::steady_clock;
using protocol::Step;

std::int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::int64_t WallSeconds() { return WallMs() / 1000; }

// The steps fabu-agent reports, in order (protocol/deployment_event.hpp).
// (Namespace-scope arrays: g++ 12 miscompiles a braced list in a coroutine.)
constexpr std::array<Step, 2> kStepsToDownload = {Step::kAssigned, Step::kDownloading};
constexpr std::array<Step, 3> kStepsToInstall = {Step::kDownloaded, Step::kVerified,
                                                 Step::kInstalling};
constexpr std::array<Step, 3> kStepsToSucceed = {Step::kActivating, Step::kHealthChecking,
                                                 Step::kSucceeded};

// What the whole fleet shares across I/O threads.
struct Shared {
  Clock::time_point started = Clock::now();
  std::atomic<std::int64_t> all_held_ms{-1};     // since started, first time held == agents
  std::atomic<std::int64_t> all_polling_ms{-1};  // same for polling
  std::atomic<int> held{0};                      // connections with a finished handshake
  std::atomic<int> max_held{0};
  std::atomic<int> enrolled{0};
  std::atomic<int> polling{0};  // agents inside a long poll right now
  std::atomic<int> assigned{0};
  std::atomic<int> done{0};  // deployment final (its last event acknowledged)
  std::atomic<int> succeeded{0};
  std::atomic<int> failed{0};
  std::atomic<bool> stopping{false};
  std::atomic<std::uint64_t> ingested{0};  // extra events acknowledged
  std::atomic<int> preflight_answered{0};  // pre-flight questions answered (accepted)
  std::mutex files;                        // credentials file, assignments file
  std::ofstream credentials;
  std::ofstream assignments;
};

// Per I/O thread: latencies and errors, merged at the end.
struct ThreadStats {
  std::map<std::string, std::vector<std::uint32_t>> micros;
  std::map<std::string, std::uint64_t> errors;
  std::uint64_t requests = 0;
  struct Round {
    std::uint64_t events = 0, posts = 0;
    std::int64_t opened_ms = 0, last_ms = 0;  // gate opened here; last ack
  };
  std::vector<Round> rounds;  // one per ingestion round, indexed by round
  std::uint64_t connect_attempts = 0, connect_failed = 0, handshake_failed = 0;
  std::uint64_t handshakes_full = 0, handshakes_resumed = 0;
  std::uint64_t server_moves = 0;
};

struct SessionFree {
  void operator()(SSL_SESSION* s) const { SSL_SESSION_free(s); }
};

// Records the first moment `value` reached `target` (milliseconds since started).
void MarkFirst(std::atomic<std::int64_t>& mark, int value, int target, Clock::time_point started) {
  if (value < target) return;
  std::int64_t unset = -1;
  mark.compare_exchange_strong(
      unset, std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count());
}

struct Agent {
  int index = 0;
  std::string name;
  std::string credential;
  bool fails = false;
  std::unique_ptr<Stream> stream;  // TlsStream does not move
  beast::flat_buffer buffer;
  // The TLS session of the last connection (its TLS 1.3 ticket), offered on a reconnect.
  std::unique_ptr<SSL_SESSION, SessionFree> session;
  bool take_session = false;  // after the first answer on a new connection
  int backoff_doublings = 0;  // failed attempts to connect/reach since the last answer
  std::size_t server = 0;     // index in FleetOptions::servers of the one it talks to
};

struct Answer {
  int status = 0;  // 0: no connection, or it broke (counted in errors)
  std::string body;
  std::optional<std::chrono::seconds> retry_after;
};

protocol::Inventory SimulatedInventory(const std::string& name) {
  protocol::Inventory inventory;
  inventory.hostname = name;
  inventory.os = "linux";
  inventory.kernel = "6.1.0-load";
  inventory.arch = "x86_64";
  inventory.cpus = 4;
  inventory.memory_bytes = std::uint64_t{8} << 30;
  inventory.agent_version = "fabu-loadgen";
  return inventory;
}

// A batch of one event (not a braced list: see kStepsToDownload).
std::vector<protocol::DeploymentEvent> One(protocol::DeploymentEvent event) {
  std::vector<protocol::DeploymentEvent> events;
  events.push_back(std::move(event));
  return events;
}

class Fleet {
 public:
  Fleet(const FleetOptions& options, Shared& shared, net::io_context& io, ThreadStats& stats,
        int connect_slots)
      : options_(options),
        shared_(shared),
        io_(io),
        stats_(stats),
        connect_slots_(std::max(connect_slots, 1)) {
    stats_.rounds.resize(options_.events_per_post.size());
    tls_.load_verify_file(options_.ca.string());
    tls_.set_verify_mode(net::ssl::verify_peer);
    // Idle long polls need no record buffers.
    SSL_CTX_set_mode(tls_.native_handle(), SSL_MODE_RELEASE_BUFFERS);
    // Sessions are kept per agent (Agent::session), not in the context's cache.
    SSL_CTX_set_session_cache_mode(tls_.native_handle(), SSL_SESS_CACHE_OFF);
  }

  net::awaitable<void> Run(Agent& agent, Clock::duration start_after);
  // Opens the next ingestion round (SIGUSR1): agents waiting at its gate
  // send their extra events. Call on this fleet's I/O thread.
  void OpenGate() {
    if (static_cast<std::size_t>(rounds_open_) >= options_.events_per_post.size()) return;
    stats_.rounds.at(static_cast<std::size_t>(rounds_open_)).opened_ms = WallMs();
    ++rounds_open_;
    gate_.cancel();
  }

 private:
  net::awaitable<bool> Connect(Agent& agent);
  net::awaitable<Answer> Call(Agent& agent, http::verb verb, const std::string& target,
                              const std::string* body, const std::string& type,
                              std::chrono::seconds timeout);
  net::awaitable<bool> Download(Agent& agent, const protocol::Assignment& assignment);
  net::awaitable<bool> Report(Agent& agent, std::vector<protocol::DeploymentEvent> events);
  net::awaitable<void> Pause(std::chrono::milliseconds delay);
  net::awaitable<void> Deploy(Agent& agent, const protocol::Assignment& assignment);
  // Answers a pre-flight question as a host with room and nothing installed.
  net::awaitable<void> AnswerPreflight(Agent& agent, const protocol::PreflightRequest& question);
  // Waits for one of this thread's connection-attempt slots; Release hands it on.
  net::awaitable<void> AcquireConnectSlot();
  void ReleaseConnectSlot();
  // The next delay after a failure to connect or to get an answer: fabu-agent's
  // backoff (agent/net/backoff.cpp), honouring a Retry-After.
  std::chrono::milliseconds Backoff(Agent& agent, std::optional<std::chrono::seconds> retry_after);
  void Drop(Agent& agent);
  // After a failure that says the agent's server is away: the next one is
  // tried from now on (with several). True when it moved.
  bool MoveOn(Agent& agent) {
    if (options_.servers.size() < 2) return false;
    agent.server = (agent.server + 1) % options_.servers.size();
    ++stats_.server_moves;
    return true;
  }
  const FleetServer& ServerOf(const Agent& agent) const { return options_.servers[agent.server]; }
  void Error(const std::string& kind) { ++stats_.errors[kind]; }

  const FleetOptions& options_;
  Shared& shared_;
  net::io_context& io_;
  ThreadStats& stats_;
  net::ssl::context tls_{net::ssl::context::tls_client};
  std::mt19937_64 random_{std::random_device{}()};
  // Never expires: waiting on it parks an agent until OpenGate cancels it.
  net::steady_timer gate_{io_, Clock::time_point::max()};
  int rounds_open_ = 0;
  const int connect_slots_;
  int connecting_ = 0;                         // attempts in flight on this thread
  std::deque<net::steady_timer*> slot_queue_;  // agents waiting for a slot, in order
};

net::awaitable<void> Fleet::AcquireConnectSlot() {
  if (connecting_ < connect_slots_ && slot_queue_.empty()) {
    ++connecting_;
    co_return;
  }
  // Parked until ReleaseConnectSlot cancels the timer: the slot is then ours.
  net::steady_timer wait(io_, Clock::time_point::max());
  slot_queue_.push_back(&wait);
  beast::error_code ec;
  co_await wait.async_wait(net::redirect_error(net::use_awaitable, ec));
}

void Fleet::ReleaseConnectSlot() {
  if (slot_queue_.empty()) {
    --connecting_;
    return;
  }
  net::steady_timer* next = slot_queue_.front();  // the slot passes to it
  slot_queue_.pop_front();
  next->cancel();
}

std::chrono::milliseconds Fleet::Backoff(Agent& agent,
                                         std::optional<std::chrono::seconds> retry_after) {
  auto nominal = options_.backoff_initial;
  for (int i = 0; i < agent.backoff_doublings && nominal < options_.backoff_cap; ++i) nominal *= 2;
  nominal = std::min(nominal, options_.backoff_cap);
  if (nominal < options_.backoff_cap) ++agent.backoff_doublings;
  const double r = std::uniform_real_distribution<double>(0.0, 1.0)(random_);
  const auto half = nominal.count() / 2;
  std::chrono::milliseconds delay(half + static_cast<std::chrono::milliseconds::rep>(
                                             r * static_cast<double>(nominal.count() - half)));
  if (retry_after && *retry_after > std::chrono::seconds(0)) {
    const std::chrono::milliseconds asked = *retry_after;
    delay = std::max(delay, asked + std::chrono::milliseconds(static_cast<std::int64_t>(
                                        r * static_cast<double>(asked.count()) / 2)));
  }
  return delay;
}

void Fleet::Drop(Agent& agent) {
  if (!agent.stream) return;
  agent.stream->close();
  agent.stream.reset();
  agent.buffer.clear();
  --shared_.held;
}

net::awaitable<void> Fleet::Pause(std::chrono::milliseconds delay) {
  net::steady_timer timer(io_, delay);
  beast::error_code ec;
  co_await timer.async_wait(net::redirect_error(net::use_awaitable, ec));
}

net::awaitable<bool> Fleet::Connect(Agent& agent) {
  const auto queued = Clock::now();
  co_await AcquireConnectSlot();
  if (shared_.stopping) {
    ReleaseConnectSlot();
    co_return false;
  }
  const auto started = Clock::now();
  stats_.micros["connect-wait"].push_back(static_cast<std::uint32_t>(std::min<std::int64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(started - queued).count(),
      std::numeric_limits<std::uint32_t>::max())));
  ++stats_.connect_attempts;
  // Beast's tcp_stream bounds the connect (it ends with error::timeout at the
  // deadline); the connected socket then goes to the TLS stream.
  beast::tcp_stream connecting(io_);
  connecting.expires_after(std::chrono::seconds(30));
  beast::error_code ec;
  co_await connecting.async_connect(
      tcp::endpoint(net::ip::make_address(ServerOf(agent).host), ServerOf(agent).port),
      net::redirect_error(net::use_awaitable, ec));
  if (ec) {
    ReleaseConnectSlot();
    ++stats_.connect_failed;
    MoveOn(agent);
    Error("connect: " + (ec == beast::error::timeout ? std::string("timeout") : ec.message()));
    co_return false;
  }
  agent.stream = std::make_unique<Stream>(connecting.release_socket(), tls_.native_handle(),
                                          Stream::Role::kClient);
  if (options_.resume_sessions && agent.session) {
    SSL_set_session(agent.stream->native_handle(), agent.session.get());
  }
  agent.stream->expires_after(std::chrono::seconds(30));
  co_await agent.stream->async_handshake(net::redirect_error(net::use_awaitable, ec));
  ReleaseConnectSlot();
  if (ec) {
    ++stats_.handshake_failed;
    MoveOn(agent);
    Error("tls handshake: " +
          (ec == beast::error::timeout ? std::string("timeout") : ec.message()));
    agent.stream.reset();
    co_return false;
  }
  if (SSL_session_reused(agent.stream->native_handle()) == 1) {
    ++stats_.handshakes_resumed;
  } else {
    ++stats_.handshakes_full;
  }
  agent.take_session = true;
  stats_.micros["connect+tls"].push_back(static_cast<std::uint32_t>(std::min<std::int64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started).count(),
      std::numeric_limits<std::uint32_t>::max())));
  const int held = ++shared_.held;
  MarkFirst(shared_.all_held_ms, held, options_.agents, shared_.started);
  int seen = shared_.max_held.load();
  while (held > seen && !shared_.max_held.compare_exchange_weak(seen, held)) {
  }
  co_return true;
}

net::awaitable<Answer> Fleet::Call(Agent& agent, http::verb verb, const std::string& target,
                                   const std::string* body, const std::string& type,
                                   std::chrono::seconds timeout) {
  Answer answer;
  if (!agent.stream && !co_await Connect(agent)) co_return answer;
  http::request<http::string_body> request{verb, target, 11};
  request.set(http::field::host, ServerOf(agent).host);
  request.set(http::field::user_agent, "fabu-loadgen");
  if (!agent.credential.empty()) {
    request.set(http::field::authorization, "Bearer " + agent.credential);
  }
  if (body != nullptr) {
    request.set(http::field::content_type, "application/json");
    request.body() = *body;
  }
  request.keep_alive(true);
  request.prepare_payload();
  beast::error_code ec;
  const auto started = Clock::now();
  agent.stream->expires_after(timeout);
  co_await http::async_write(*agent.stream, request, net::redirect_error(net::use_awaitable, ec));
  http::response<http::string_body> response;
  if (!ec) {
    co_await http::async_read(*agent.stream, agent.buffer, response,
                              net::redirect_error(net::use_awaitable, ec));
  }
  ++stats_.requests;
  if (ec) {
    Error(fmt::format("{}: {}", type, ec == beast::error::timeout ? "timeout" : ec.message()));
    Drop(agent);
    MoveOn(agent);
    co_return answer;
  }
  stats_.micros[type].push_back(static_cast<std::uint32_t>(std::min<std::int64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started).count(),
      std::numeric_limits<std::uint32_t>::max())));
  answer.status = static_cast<int>(response.result_int());
  answer.body = std::move(response.body());
  if (agent.take_session) {
    // TLS 1.3 tickets arrive after the handshake: by the first answer they are in.
    agent.take_session = false;
    // A copy: OpenSSL marks the connection's own session object not resumable
    // when the connection is freed without a close_notify sent (Drop).
    SSL_SESSION* current = SSL_get_session(agent.stream->native_handle());
    if (current != nullptr && SSL_SESSION_is_resumable(current) == 1) {
      agent.session.reset(SSL_SESSION_dup(current));
    }
  }
  if (answer.status < 300) agent.backoff_doublings = 0;
  if (auto after = response[http::field::retry_after]; !after.empty()) {
    int seconds = 0;
    if (std::from_chars(after.data(), after.data() + after.size(), seconds).ec == std::errc()) {
      answer.retry_after = std::chrono::seconds(seconds);
    }
  }
  if (answer.status >= 300) Error(fmt::format("{}: HTTP {}", type, answer.status));
  if (!response.keep_alive()) Drop(agent);
  // A busy coordinator: the next one is asked, on a connection of its own.
  if (answer.status == 503 && MoveOn(agent)) {
    Drop(agent);
    answer.retry_after.reset();  // the other server's
  }
  co_return answer;
}

net::awaitable<bool> Fleet::Download(Agent& agent, const protocol::Assignment& assignment) {
  if (!agent.stream && !co_await Connect(agent)) co_return false;
  const std::string target =
      assignment.package_url.empty() || assignment.package_url.starts_with("https://")
          ? std::string(protocol::kAgentPackagesPath) + assignment.package_id
          : assignment.package_url;
  http::request<http::empty_body> request{http::verb::get, target, 11};
  request.set(http::field::host, ServerOf(agent).host);
  request.set(http::field::authorization, "Bearer " + agent.credential);
  request.keep_alive(true);
  beast::error_code ec;
  const auto started = Clock::now();
  agent.stream->expires_after(std::chrono::seconds(60));
  co_await http::async_write(*agent.stream, request, net::redirect_error(net::use_awaitable, ec));
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  std::uint64_t received = 0;
  if (!ec) {
    co_await http::async_read_header(*agent.stream, agent.buffer, parser,
                                     net::redirect_error(net::use_awaitable, ec));
  }
  char chunk[16 * 1024];
  while (!ec && !parser.is_done()) {
    parser.get().body().data = chunk;
    parser.get().body().size = sizeof chunk;
    agent.stream->expires_after(std::chrono::seconds(60));
    co_await http::async_read_some(*agent.stream, agent.buffer, parser,
                                   net::redirect_error(net::use_awaitable, ec));
    if (ec == http::error::need_buffer) ec = {};
    received += sizeof chunk - parser.get().body().size;
  }
  ++stats_.requests;
  if (ec) {
    Error("download: " + ec.message());
    Drop(agent);
    MoveOn(agent);
    co_return false;
  }
  stats_.micros["download"].push_back(static_cast<std::uint32_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started).count()));
  const int status = static_cast<int>(parser.get().result_int());
  if (!parser.get().keep_alive()) Drop(agent);
  if (status != 200) {
    Error(fmt::format("download: HTTP {}", status));
    co_return false;
  }
  if (received != assignment.package_size) {
    Error("download: size differs from the assignment's");
    co_return false;
  }
  co_return true;
}

// Posts `events`; retries (bounded) until the coordinator acknowledged them.
net::awaitable<bool> Fleet::Report(Agent& agent, std::vector<protocol::DeploymentEvent> events) {
  protocol::EventBatch batch{std::move(events)};
  const std::string body = protocol::EventBatchToJson(batch).dump();
  for (int attempt = 0; attempt < 20 && !shared_.stopping; ++attempt) {
    Answer answer = co_await Call(agent, http::verb::post, std::string(protocol::kEventsPath),
                                  &body, "events", std::chrono::seconds(60));
    if (answer.status == 200) co_return true;
    if (answer.status >= 400 && answer.status < 500) co_return false;
    co_await Pause(answer.status == 0   ? Backoff(agent, std::nullopt)
                   : answer.retry_after ? std::chrono::milliseconds(*answer.retry_after)
                                        : std::chrono::milliseconds(500 + random_() % 1000));
  }
  co_return false;
}

net::awaitable<void> Fleet::AnswerPreflight(Agent& agent,
                                            const protocol::PreflightRequest& question) {
  protocol::PreflightAnswer reply;
  reply.id = question.id;
  reply.ready = true;
  reply.free_bytes = std::uint64_t{64} << 30;
  const std::string body = protocol::PreflightAnswerToJson(reply).dump();
  Answer answer = co_await Call(agent, http::verb::post, std::string(protocol::kPreflightPath),
                                &body, "preflight", std::chrono::seconds(60));
  if (answer.status == 200) ++shared_.preflight_answered;  // Call counts what failed
}

net::awaitable<void> Fleet::Deploy(Agent& agent, const protocol::Assignment& assignment) {
  const std::int64_t assigned_ms = WallMs();
  ++shared_.assigned;
  std::uint64_t sequence = 0;
  auto event = [&](Step step) {
    protocol::DeploymentEvent e;
    e.deployment = assignment.deployment;
    e.sequence = ++sequence;
    e.step = step;
    e.app = assignment.app;
    e.version = assignment.version;
    e.time = WallSeconds();
    return e;
  };
  bool ok = true;
  for (Step step : kStepsToDownload) {
    ok = ok && co_await Report(agent, One(event(step)));
  }
  if (ok && !options_.skip_download && !assignment.package_id.empty()) {
    if (!co_await Download(agent, assignment)) {
      auto failed = event(Step::kFailed);
      failed.failed_step = Step::kDownloading;
      failed.message = "fabu-loadgen: the download failed";
      co_await Report(agent, One(failed));
      ok = false;
    }
  }
  Step final_step = Step::kSucceeded;
  if (ok) {
    for (Step step : kStepsToInstall) {
      ok = ok && co_await Report(agent, One(event(step)));
    }
  }
  if (ok && agent.fails) {
    auto failed = event(Step::kFailed);
    failed.failed_step = Step::kInstalling;
    failed.message = "fabu-loadgen: simulated failure (--fail-fraction)";
    ok = co_await Report(agent, One(failed));
    final_step = Step::kFailed;
  } else if (ok) {
    for (Step step : kStepsToSucceed) {
      ok = ok && co_await Report(agent, One(event(step)));
    }
  }
  const std::int64_t final_ms = WallMs();
  if (ok && final_step == Step::kSucceeded) ++shared_.succeeded;
  if (!ok || final_step == Step::kFailed) ++shared_.failed;
  {
    std::lock_guard lock(shared_.files);
    if (shared_.assignments.is_open()) {
      shared_.assignments << agent.name << ' ' << assignment.deployment << ' ' << assigned_ms << ' '
                          << final_ms << ' ' << (ok ? protocol::StepName(final_step) : "error")
                          << '\n';
    }
  }
  ++shared_.done;
  // Ingestion: more events for the same (now final) deployment, round by
  // round as the gates open (so ingestion is measured apart from the rollout).
  if (!ok || options_.extra_events == 0) co_return;
  for (std::size_t round = 0; round < options_.events_per_post.size(); ++round) {
    while (rounds_open_ <= static_cast<int>(round) && !shared_.stopping) {
      beast::error_code ec;
      co_await gate_.async_wait(net::redirect_error(net::use_awaitable, ec));
    }
    const int per_post = options_.events_per_post[round];
    for (int sent = 0; sent < options_.extra_events && !shared_.stopping;) {
      std::vector<protocol::DeploymentEvent> events;
      for (int i = 0; i < per_post && sent < options_.extra_events; ++i, ++sent) {
        auto e = event(final_step);
        e.message = "fabu-loadgen: ingestion";
        events.push_back(std::move(e));
      }
      const std::size_t n = events.size();
      if (!co_await Report(agent, std::move(events))) co_return;
      ThreadStats::Round& r = stats_.rounds[round];
      r.last_ms = std::max(r.last_ms, WallMs());
      r.events += n;
      ++r.posts;
      shared_.ingested += n;
    }
  }
}

net::awaitable<void> Fleet::Run(Agent& agent, Clock::duration start_after) {
  {
    net::steady_timer ramp(io_, start_after);
    beast::error_code ec;
    co_await ramp.async_wait(net::redirect_error(net::use_awaitable, ec));
  }
  bool inventory_sent = false;
  std::optional<std::string> finished;  // the deployment this agent completed
  const auto retry = [&](const Answer& answer) -> std::chrono::milliseconds {
    // No connection or no answer: back off as fabu-agent does, so a fleet
    // refused under load does not come back all at once (a retry storm).
    if (answer.status == 0 || answer.status == 503) return Backoff(agent, answer.retry_after);
    if (answer.retry_after) {
      const auto base = std::chrono::duration_cast<std::chrono::milliseconds>(*answer.retry_after);
      return base + std::chrono::milliseconds(random_() % (base.count() / 2 + 1));
    }
    return std::chrono::milliseconds(500 + random_() % 1500);
  };
  while (!shared_.stopping) {
    if (agent.credential.empty()) {
      protocol::EnrollRequest enroll;
      enroll.token = options_.enroll_token;
      enroll.name = agent.name;
      enroll.labels = options_.labels;
      enroll.inventory = SimulatedInventory(agent.name);
      const std::string body = protocol::EnrollRequestToJson(enroll).dump();
      Answer answer = co_await Call(agent, http::verb::post, std::string(protocol::kEnrollPath),
                                    &body, "enroll", std::chrono::seconds(60));
      if (answer.status != 201) {
        if (answer.status == 401 || answer.status == 403) {
          Error("enroll refused: giving up on this agent");
          co_return;
        }
        co_await Pause(retry(answer));
        continue;
      }
      auto json = nlohmann::json::parse(answer.body, nullptr, false);
      auto response = protocol::EnrollResponseFromJson(json);
      if (!response) {
        Error("enroll: malformed answer");
        co_return;
      }
      agent.credential = response->credential;
      ++shared_.enrolled;
      std::lock_guard lock(shared_.files);
      if (shared_.credentials.is_open()) {
        shared_.credentials << agent.name << ' ' << agent.credential << '\n' << std::flush;
      }
    }
    if (options_.until == Until::kEnrolled) co_return;
    if (!inventory_sent) {
      const std::string body = protocol::InventoryToJson(SimulatedInventory(agent.name)).dump();
      Answer answer = co_await Call(agent, http::verb::post, std::string(protocol::kInventoryPath),
                                    &body, "inventory", std::chrono::seconds(60));
      if (answer.status != 200) {
        co_await Pause(retry(answer));
        continue;
      }
      inventory_sent = true;
    }
    // As fabu-agent: the poll says it answers pre-flight questions.
    const std::string target = fmt::format("{}?wait={}&preflight=1", protocol::kAssignmentPath,
                                           options_.poll_wait_seconds);
    // Counted as polling only once it holds a connection.
    if (!agent.stream && !co_await Connect(agent)) {
      co_await Pause(Backoff(agent, std::nullopt));
      continue;
    }
    MarkFirst(shared_.all_polling_ms, ++shared_.polling, options_.agents, shared_.started);
    Answer answer = co_await Call(agent, http::verb::get, target, nullptr, "poll",
                                  std::chrono::seconds(options_.poll_wait_seconds + 30));
    --shared_.polling;
    if (answer.status != 200) {
      co_await Pause(retry(answer));
      continue;
    }
    auto json = nlohmann::json::parse(answer.body, nullptr, false);
    auto assignment = protocol::AssignmentResponseFromJson(json);
    auto question = protocol::PreflightOfAssignmentResponse(json);
    if (!assignment || !question) {
      Error("poll: malformed answer");
      co_await Pause(retry(answer));
      continue;
    }
    if (*question) co_await AnswerPreflight(agent, **question);
    if (!*assignment || (finished && (*assignment)->deployment == *finished)) {
      if (*assignment) co_await Pause(std::chrono::seconds(1));  // repeated until acked
      continue;
    }
    co_await Deploy(agent, **assignment);
    finished = (*assignment)->deployment;
  }
}

Result<void> RaiseOpenFiles(int agents) {
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  const rlim_t want = static_cast<rlim_t>(agents) + 64;
  if (limit.rlim_cur >= want) return {};
  rlimit raised{want, std::max(limit.rlim_max, want)};
  if (setrlimit(RLIMIT_NOFILE, &raised) != 0) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("{} agents need {} open files; the limit is {} (hard {}): raise it "
                            "(ulimit -Hn, or run as root)",
                            agents, want, limit.rlim_cur, limit.rlim_max));
  }
  return {};
}

std::map<std::string, std::string> ReadCredentials(const std::filesystem::path& path) {
  std::map<std::string, std::string> out;
  std::ifstream in(path);
  std::string name, credential;
  while (in >> name >> credential) out[name] = credential;
  return out;
}

LatencySummary Summarize(std::vector<std::uint32_t>& micros) {
  LatencySummary s;
  if (micros.empty()) return s;
  std::sort(micros.begin(), micros.end());
  auto at = [&](double p) {
    const auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(micros.size())));
    return static_cast<double>(micros[std::clamp<std::size_t>(rank, 1, micros.size()) - 1]) / 1000;
  };
  s.count = micros.size();
  s.p50_ms = at(0.50);
  s.p99_ms = at(0.99);
  s.max_ms = static_cast<double>(micros.back()) / 1000;
  return s;
}

void WriteStatus(const FleetOptions& options, const Shared& shared, double elapsed) {
  if (options.status_file.empty()) return;
  const auto temp = options.status_file.string() + ".tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << fmt::format(
        "elapsed {:.1f} held {} enrolled {} polling {} assigned {} done {} succeeded {} failed "
        "{} ingested {} preflight {}\n",
        elapsed, shared.held.load(), shared.enrolled.load(), shared.polling.load(),
        shared.assigned.load(), shared.done.load(), shared.succeeded.load(), shared.failed.load(),
        shared.ingested.load(), shared.preflight_answered.load());
  }
  std::error_code ec;
  std::filesystem::rename(temp, options.status_file, ec);
}

}  // namespace

std::string FleetReport::Text() const {
  std::string out = fmt::format(
      "fabu-loadgen: {} agents, {:.1f} s; enrolled {}; connections held at the end {} (max {})\n"
      "requests {} ({:.0f}/s); assignments received {}; finished: {} succeeded, {} failed; "
      "pre-flight questions answered {}\n",
      agents, seconds, enrolled, held_at_end, max_held, requests, requests_per_second, assigned,
      succeeded, failed, preflight_answered);
  const auto when = [](double s) {
    return s < 0 ? std::string("never") : fmt::format("after {:.1f} s", s);
  };
  out += fmt::format(
      "all {} held a connection: {}; all in their long poll: {}\n"
      "connection attempts {}: {} TCP connects failed, {} TLS handshakes failed; "
      "handshakes done: {} full, {} resumed; moves to the next coordinator {}\n",
      agents, when(all_held_seconds), when(all_polling_seconds), connect_attempts, connect_failed,
      handshake_failed, handshakes_full, handshakes_resumed, server_moves);
  out += fmt::format("{:<14} {:>9} {:>10} {:>10} {:>10}\n", "request", "count", "p50 ms", "p99 ms",
                     "max ms");
  for (const auto& [type, s] : latency) {
    out += fmt::format("{:<14} {:>9} {:>10.2f} {:>10.2f} {:>10.2f}\n", type, s.count, s.p50_ms,
                       s.p99_ms, s.max_ms);
  }
  for (const IngestRound& r : ingest_rounds) {
    const double s = r.seconds > 0 ? r.seconds : 0;
    out += fmt::format(
        "ingestion, {} event(s) per POST: {} events in {} POSTs acknowledged in {:.2f} s = {:.0f} "
        "events/s, {:.0f} POSTs/s\n",
        r.events_per_post, r.events, r.posts, s, s > 0 ? static_cast<double>(r.events) / s : 0.0,
        s > 0 ? static_cast<double>(r.posts) / s : 0.0);
  }
  out += errors.empty() ? "errors: none\n" : "errors:\n";
  for (const auto& [kind, n] : errors) out += fmt::format("  {:>8}  {}\n", n, kind);
  return out;
}

std::string FleetReport::Json() const {
  nlohmann::json j = {{"seconds", seconds},
                      {"agents", agents},
                      {"enrolled", enrolled},
                      {"held_at_end", held_at_end},
                      {"max_held", max_held},
                      {"all_held_seconds", all_held_seconds},
                      {"all_polling_seconds", all_polling_seconds},
                      {"connect_attempts", connect_attempts},
                      {"connect_failed", connect_failed},
                      {"handshake_failed", handshake_failed},
                      {"handshakes_full", handshakes_full},
                      {"handshakes_resumed", handshakes_resumed},
                      {"server_moves", server_moves},
                      {"assigned", assigned},
                      {"succeeded", succeeded},
                      {"failed", failed},
                      {"preflight_answered", preflight_answered},
                      {"requests", requests},
                      {"requests_per_second", requests_per_second},
                      {"ingest_rounds", nlohmann::json::array()},
                      {"errors", errors}};
  for (const IngestRound& r : ingest_rounds) {
    j["ingest_rounds"].push_back({{"events_per_post", r.events_per_post},
                                  {"events", r.events},
                                  {"posts", r.posts},
                                  {"seconds", r.seconds}});
  }
  for (const auto& [type, s] : latency) {
    j["latency"][type] = {
        {"count", s.count}, {"p50_ms", s.p50_ms}, {"p99_ms", s.p99_ms}, {"max_ms", s.max_ms}};
  }
  return j.dump(2);
}

Result<FleetReport> RunFleet(const FleetOptions& options) {
  if (options.servers.empty()) {
    return Fail(ErrorCode::kInvalidArgument, "no coordinator to load (servers is empty)");
  }
  if (options.agents < 1 || options.threads < 1 || options.connect_rate < 1 ||
      options.connect_concurrency < options.threads || options.backoff_initial.count() < 1 ||
      options.backoff_cap < options.backoff_initial) {
    return Fail(ErrorCode::kInvalidArgument,
                "agents, threads, connect rate and backoff must be positive, connect concurrency "
                "at least the threads, the backoff cap at least its initial delay");
  }
  if (auto ok = RaiseOpenFiles(options.agents); !ok) return std::unexpected(ok.error());
  Shared shared;
  std::map<std::string, std::string> saved;
  if (!options.credentials.empty()) {
    saved = ReadCredentials(options.credentials);
    shared.credentials.open(options.credentials, std::ios::app);
    if (!shared.credentials) {
      return Fail(ErrorCode::kIo, fmt::format("cannot write the credentials file {}",
                                              options.credentials.string()));
    }
  }
  if (!options.assignments_out.empty()) {
    shared.assignments.open(options.assignments_out, std::ios::trunc);
    if (!shared.assignments) {
      return Fail(ErrorCode::kIo, fmt::format("cannot write {}", options.assignments_out.string()));
    }
  }

  std::vector<Agent> agents(static_cast<std::size_t>(options.agents));
  std::mt19937_64 random(options.seed);
  int missing = 0;
  for (int i = 0; i < options.agents; ++i) {
    Agent& a = agents[static_cast<std::size_t>(i)];
    a.index = i;
    a.server = static_cast<std::size_t>(i) % options.servers.size();
    a.name = fmt::format("{}{:05d}", options.name_prefix, i + 1);
    if (auto it = saved.find(a.name); it != saved.end()) {
      a.credential = it->second;
      ++shared.enrolled;
    } else {
      ++missing;
    }
    a.fails = std::uniform_real_distribution<double>(0, 1)(random) < options.fail_fraction;
  }
  if (missing > 0 && options.enroll_token.empty()) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("{} agent(s) have no saved credential: give --enroll-token", missing));
  }

  const int threads = options.threads;
  std::vector<std::unique_ptr<net::io_context>> ios;
  std::vector<ThreadStats> stats(static_cast<std::size_t>(threads));
  std::vector<std::unique_ptr<Fleet>> fleets;
  try {
    for (int t = 0; t < threads; ++t) {
      ios.push_back(std::make_unique<net::io_context>(1));
      // The attempts in flight are split across the threads.
      const int slots = options.connect_concurrency / threads +
                        (t < options.connect_concurrency % threads ? 1 : 0);
      fleets.push_back(std::make_unique<Fleet>(options, shared, *ios.back(),
                                               stats[static_cast<std::size_t>(t)], slots));
    }
  } catch (const std::exception& e) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("TLS set-up ({}): {}", options.ca.string(), e.what()));
  }
  shared.started = Clock::now();
  for (int i = 0; i < options.agents; ++i) {
    const auto t = static_cast<std::size_t>(i % threads);
    const auto start_after =
        std::chrono::microseconds(std::int64_t{i} * 1000000 / options.connect_rate);
    net::co_spawn(*ios[t], fleets[t]->Run(agents[static_cast<std::size_t>(i)], start_after),
                  // An agent that gives up (refused enrollment) just ends.
                  net::detached);
  }

  const auto started = shared.started;
  const auto deadline = started + options.run_for;
  // The control loop: status every second, the stop conditions, signals.
  net::io_context control(1);
  net::signal_set signals(control, SIGINT, SIGTERM);
  net::signal_set gate_signal(control, SIGUSR1);
  // Each SIGUSR1 opens the next ingestion round.
  std::function<void()> arm_gate = [&] {
    gate_signal.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      for (std::size_t t = 0; t < ios.size(); ++t) {
        net::post(*ios[t], [fleet = fleets[t].get()] { fleet->OpenGate(); });
      }
      arm_gate();
    });
  };
  arm_gate();
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (!ec) shared.stopping = true;
  });
  net::steady_timer tick(control);
  std::function<void()> arm = [&] {
    tick.expires_after(std::chrono::seconds(1));
    tick.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      const double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
      WriteStatus(options, shared, elapsed);
      const bool finished =
          (options.until == Until::kDone && shared.done.load() >= options.agents) ||
          (options.until == Until::kEnrolled && shared.enrolled.load() >= options.agents);
      if (finished || Clock::now() >= deadline) shared.stopping = true;
      if (shared.stopping) {
        for (auto& io : ios) io->stop();
        signals.cancel();
        gate_signal.cancel();
        return;
      }
      arm();
    });
  };
  arm();
  std::vector<std::thread> workers;
  for (auto& io : ios) workers.emplace_back([&io] { io->run(); });
  control.run();
  for (auto& io : ios) io->stop();
  for (auto& worker : workers) worker.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
  WriteStatus(options, shared, elapsed);

  FleetReport report;
  report.seconds = elapsed;
  report.agents = options.agents;
  report.enrolled = shared.enrolled;
  report.held_at_end = shared.held;
  report.max_held = shared.max_held;
  if (const auto ms = shared.all_held_ms.load(); ms >= 0) report.all_held_seconds = ms / 1000.0;
  if (const auto ms = shared.all_polling_ms.load(); ms >= 0) {
    report.all_polling_seconds = ms / 1000.0;
  }
  report.assigned = shared.assigned;
  report.succeeded = shared.succeeded;
  report.failed = shared.failed;
  report.preflight_answered = shared.preflight_answered;
  std::map<std::string, std::vector<std::uint32_t>> micros;
  // A round runs from the first thread's gate to the last ack on any thread.
  std::vector<std::int64_t> opened(options.events_per_post.size(), 0),
      last(options.events_per_post.size(), 0);
  report.ingest_rounds.resize(options.events_per_post.size());
  for (auto& s : stats) {
    report.requests += s.requests;
    for (auto& [type, values] : s.micros) {
      auto& all = micros[type];
      all.insert(all.end(), values.begin(), values.end());
    }
    for (const auto& [kind, n] : s.errors) report.errors[kind] += n;
    for (std::size_t r = 0; r < s.rounds.size(); ++r) {
      const ThreadStats::Round& round = s.rounds[r];
      report.ingest_rounds[r].events += round.events;
      report.ingest_rounds[r].posts += round.posts;
      if (round.opened_ms != 0) {
        opened[r] = opened[r] == 0 ? round.opened_ms : std::min(opened[r], round.opened_ms);
      }
      last[r] = std::max(last[r], round.last_ms);
    }
    report.connect_attempts += s.connect_attempts;
    report.connect_failed += s.connect_failed;
    report.handshake_failed += s.handshake_failed;
    report.handshakes_full += s.handshakes_full;
    report.handshakes_resumed += s.handshakes_resumed;
    report.server_moves += s.server_moves;
  }
  for (std::size_t r = 0; r < report.ingest_rounds.size(); ++r) {
    report.ingest_rounds[r].events_per_post = options.events_per_post[r];
    if (opened[r] != 0 && last[r] > opened[r]) {
      report.ingest_rounds[r].seconds = static_cast<double>(last[r] - opened[r]) / 1000;
    }
  }
  std::erase_if(report.ingest_rounds,
                [](const FleetReport::IngestRound& r) { return r.posts == 0; });
  report.requests_per_second = elapsed > 0 ? static_cast<double>(report.requests) / elapsed : 0;
  for (auto& [type, values] : micros) report.latency[type] = Summarize(values);
  if (!options.report_json.empty()) {
    std::ofstream out(options.report_json, std::ios::trunc);
    out << report.Json() << '\n';
  }
  // Connections first (their io_context still exists), then the coroutine
  // frames (with the io_contexts), then what the frames refer to.
  for (Agent& a : agents) a.stream.reset();
  ios.clear();
  fleets.clear();
  return report;
}

}  // namespace fabu::load
