// The server's side of a WakeupHub hold (a wave assigned in parts): an agent
// connection that finishes a request while the hub is held reads its next
// one only once the hold ends or hold_limit passed. People's connections, a
// connection's first request, and the request after a long poll that ran out
// are not held; neither is a connection already waiting for its next request
// when the hold began.
//
// Beside the holds: agents' requests and people's run on pools of their own,
// so agents' handlers blocked (on the store, in a wave of polls) never keep a
// person's request waiting.
//
// A real HttpServer runs in this process on loopback (its own thread), with a
// real TLS client; SIGTERM (which Run() handles) stops it.
// clang-format off
#include <utility>  // before any Boost.Asio header: asio/awaitable.hpp needs it with g++ 12
// clang-format on

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "coordinator/api/api_context.hpp"
#include "coordinator/common/data_dir.hpp"
#include "coordinator/common/wakeup_hub.hpp"
#include "coordinator/server/http_server.hpp"
#include "coordinator/server/router.hpp"
#include "coordinator/tls/certificates.hpp"
#include "tests/support/temp_dir.hpp"

namespace fabu::coordinator {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

constexpr const char* kAgentPath = "/api/v1/agent/ping";
constexpr const char* kPeoplePath = "/api/v1/ping";
constexpr const char* kPollPath = "/api/v1/agent/poll";  // a long poll of 300 ms
constexpr const char* kBusyPath = "/api/v1/agent/busy";  // blocks its worker until Unblock()
// The same, public, as enrollment is: agents' traffic all the same.
constexpr const char* kBusyEnrollPath = "/api/v1/agent/busy-enroll";

// A server with one agent route and one public route, and the hub the
// sweep would hold.
class HoldServer {
 public:
  explicit HoldServer(std::chrono::milliseconds hold_limit) {
    const DataDir data{dir_.path()};
    auto made = CreateCertificates(data, {});
    if (!made) throw std::runtime_error(made.error().message());
    ServerSettings settings;
    settings.port = 0;
    settings.certificate_chain = data.server_cert();
    settings.private_key = data.server_key();
    settings.upload_dir = dir_.path();
    settings.port_file = data.port_file();
    settings.workers = 2;
    settings.hold_limit = hold_limit;
    // The daemon's policy (api/api_context.hpp).
    settings.agent_traffic = IsAgentTraffic;
    settings.hold_next = HoldNextRequest;
    ca_ = data.ca_cert();
    router_.Add(Method::kGet, kAgentPath, RouteOptions::Agent(),
                [](RequestContext&) -> Result<Response> {
                  return Response::Ok({{"ok", true}});
                });
    router_.Add(Method::kGet, kPollPath, RouteOptions::Agent(),
                [this](RequestContext& ctx) -> Result<Response> {
                  const std::string key = WakeupHub::HostKey(ctx.host());
                  return Response::Wait(
                      key, hub_.Generation(key),
                      ctx.wait_until.value_or(std::chrono::steady_clock::now() + 300ms),
                      {{"assignment", nullptr}});
                });
    const auto busy = [this](RequestContext&) -> Result<Response> {
      ++busy_;
      unblocked_.wait();
      return Response::Ok({{"ok", true}});
    };
    router_.Add(Method::kGet, kBusyPath, RouteOptions::Agent(), busy);
    router_.Add(Method::kGet, kBusyEnrollPath, RouteOptions::Public(), busy);
    router_.Add(Method::kGet, kPeoplePath, RouteOptions::Public(),
                [](RequestContext&) -> Result<Response> {
                  return Response::Ok({{"ok", true}});
                });
    server_ = std::make_unique<HttpServer>(
        settings, router_,
        [](std::string_view) -> Result<Principal> {
          return Fail(ErrorCode::kUnauthenticated, "no users here");
        },
        [](std::string_view credential, const PeerCertificate&) -> Result<std::string> {
          if (credential == "cred-web-1") return std::string("web-1");
          return Fail(ErrorCode::kUnauthenticated, "unknown credential");
        },
        &hub_);
    thread_ = std::thread([this] { ran_ = server_->Run(); });
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (!std::filesystem::exists(data.port_file()) &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(10ms);
    }
    port_ = static_cast<std::uint16_t>(std::stoi(fabu::testing::ReadFile(data.port_file())));
  }

  ~HoldServer() {
    Unblock();
    std::raise(SIGTERM);  // Run() answers it: stops and returns
    thread_.join();
  }

  WakeupHub& hub() { return hub_; }
  std::uint16_t port() const { return port_; }
  // kBusyPath's handlers running now (blocked until Unblock).
  int busy() const { return busy_; }
  void Unblock() {
    if (!unblocked_set_.exchange(true)) unblock_.set_value();
  }
  const std::filesystem::path& ca() const { return ca_; }

 private:
  fabu::testing::TempDir dir_;
  Router router_;
  WakeupHub hub_;
  std::atomic<int> busy_{0};
  std::promise<void> unblock_;
  std::shared_future<void> unblocked_ = unblock_.get_future().share();
  std::atomic<bool> unblocked_set_{false};
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
  Result<void> ran_;
  std::uint16_t port_ = 0;
  std::filesystem::path ca_;
};

// One keep-alive TLS connection; a request's answer is waited for with a
// deadline, and one not yet come is still read by the next Receive.
class Connection {
 public:
  explicit Connection(const HoldServer& server) {
    tls_.load_verify_file(server.ca().string());
    tls_.set_verify_mode(net::ssl::verify_peer);
    stream_.next_layer().connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), server.port()));
    stream_.handshake(net::ssl::stream_base::client);
  }

  void Send(const std::string& target, const std::string& credential) {
    http::request<http::empty_body> request{http::verb::get, target, 11};
    request.set(http::field::host, "127.0.0.1");
    if (!credential.empty()) request.set(http::field::authorization, "Bearer " + credential);
    request.keep_alive(true);
    http::write(stream_, request);
  }

  // The status of the answer, or nullopt when none came within `timeout`.
  std::optional<unsigned> Receive(std::chrono::milliseconds timeout) {
    if (!pending_) {
      pending_ = std::make_shared<Pending>();
      auto pending = pending_;
      http::async_read(stream_, buffer_, pending->response,
                       [pending](beast::error_code ec, std::size_t) {
                         pending->done = true;
                         pending->error = ec;
                       });
    }
    io_.restart();
    io_.run_for(timeout);
    if (!pending_->done) return std::nullopt;
    auto done = std::move(pending_);
    EXPECT_FALSE(done->error) << done->error.message();
    body_ = done->response.body();
    return done->error ? 0u : done->response.result_int();
  }

  // The body of the last answer Receive returned.
  const std::string& body() const { return body_; }

 private:
  struct Pending {
    bool done = false;
    beast::error_code error;
    http::response<http::string_body> response;
  };
  net::io_context io_;
  net::ssl::context tls_{net::ssl::context::tls_client};
  net::ssl::stream<tcp::socket> stream_{io_, tls_};
  beast::flat_buffer buffer_;
  std::shared_ptr<Pending> pending_;
  std::string body_;
};

TEST(HttpServerHoldTest, AnAgentsNextRequestWaitsForTheHoldToEnd) {
  HoldServer server(30s);
  auto hold = std::make_unique<HubHold>(&server.hub());
  Connection agent(server);
  agent.Send(kAgentPath, "cred-web-1");
  ASSERT_EQ(agent.Receive(10s), 200u);  // a connection's first request is not held
  agent.Send(kAgentPath, "cred-web-1");
  EXPECT_EQ(agent.Receive(700ms), std::nullopt) << "answered while the hub was held";

  // Meanwhile people are answered.
  Connection person(server);
  person.Send(kPeoplePath, "");
  EXPECT_EQ(person.Receive(10s), 200u);
  person.Send(kPeoplePath, "");
  EXPECT_EQ(person.Receive(10s), 200u);

  const auto released = std::chrono::steady_clock::now();
  hold.reset();
  EXPECT_EQ(agent.Receive(10s), 200u);
  EXPECT_LT(std::chrono::steady_clock::now() - released, 5s);
}

TEST(HttpServerHoldTest, AfterALongPollThatRanOutTheNextRequestIsNotHeld) {
  // A poll that ran out is followed by the next poll, maybe for the very
  // wave being assigned: that one is read at once.
  HoldServer server(30s);
  Connection agent(server);
  agent.Send(kPollPath, "cred-web-1");
  ASSERT_EQ(agent.Receive(10s), 200u);  // ran out after 300 ms, no hold
  {
    HubHold hold(&server.hub());
    agent.Send(kPollPath, "cred-web-1");
    EXPECT_EQ(agent.Receive(700ms), std::nullopt);  // read, and waiting for the wave
    server.hub().Notify(WakeupHub::HostKey("web-1"), std::make_shared<const std::string>(
                                                         R"({"assignment":{"deployment":"D-2"}})"));
    ASSERT_EQ(agent.Receive(5s), 200u) << "the poll after a poll that ran out was held";
    EXPECT_NE(agent.body().find("D-2"), std::string::npos) << agent.body();
    // After any other agent request (here: a poll that got its assignment),
    // the next one is held.
    agent.Send(kAgentPath, "cred-web-1");
    EXPECT_EQ(agent.Receive(700ms), std::nullopt);
  }
  EXPECT_EQ(agent.Receive(10s), 200u);
}

TEST(HttpServerHoldTest, APollThatRunsOutWhileHeldWaitsForTheRestOfTheWave) {
  HoldServer server(30s);
  auto hold = std::make_unique<HubHold>(&server.hub());
  Connection agent(server);
  // Its 300 ms run out while the hub is held: the host may be in a part
  // still to come, so the poll waits on.
  agent.Send(kPollPath, "cred-web-1");
  EXPECT_EQ(agent.Receive(1000ms), std::nullopt) << "a poll ran out while a wave was assigned";
  // The part that assigns it: the answer handed over is sent at once.
  server.hub().Notify(WakeupHub::HostKey("web-1"), std::make_shared<const std::string>(
                                                       R"({"assignment":{"deployment":"D-1"}})"));
  ASSERT_EQ(agent.Receive(5s), 200u);
  EXPECT_NE(agent.body().find("D-1"), std::string::npos) << agent.body();

  // Another poll that runs out while held, and the wave ends without this
  // host: answered (with nothing) when the hold ends, not at hold_limit.
  Connection other(server);
  other.Send(kPollPath, "cred-web-1");
  EXPECT_EQ(other.Receive(1000ms), std::nullopt);
  const auto released = std::chrono::steady_clock::now();
  hold.reset();
  ASSERT_EQ(other.Receive(10s), 200u);
  EXPECT_LT(std::chrono::steady_clock::now() - released, 5s);
  EXPECT_NE(other.body().find(R"("assignment":null)"), std::string::npos) << other.body();
  // Without a hold a poll runs out at its time.
  const auto sent = std::chrono::steady_clock::now();
  other.Send(kPollPath, "cred-web-1");
  ASSERT_EQ(other.Receive(10s), 200u);
  EXPECT_LT(std::chrono::steady_clock::now() - sent, 5s);
}

TEST(HttpServerHoldTest, AHoldLongerThanTheLimitDelaysARequestByTheLimitOnly) {
  HoldServer server(1500ms);
  HubHold hold(&server.hub());  // never ended while the request waits
  Connection agent(server);
  agent.Send(kAgentPath, "cred-web-1");
  ASSERT_EQ(agent.Receive(10s), 200u);
  const auto sent = std::chrono::steady_clock::now();
  agent.Send(kAgentPath, "cred-web-1");
  EXPECT_EQ(agent.Receive(700ms), std::nullopt);
  EXPECT_EQ(agent.Receive(20s), 200u);
  // The limit counts from when the connection was ready for it (its answer
  // before), which is before `sent`.
  EXPECT_GE(std::chrono::steady_clock::now() - sent, 1000ms);
}

TEST(HttpServerHoldTest, AZeroLimitHoldsNothing) {
  HoldServer server(0ms);
  HubHold hold(&server.hub());
  Connection agent(server);
  agent.Send(kAgentPath, "cred-web-1");
  ASSERT_EQ(agent.Receive(10s), 200u);
  agent.Send(kAgentPath, "cred-web-1");
  EXPECT_EQ(agent.Receive(10s), 200u);
}

// Three requests to `path` (a handler that blocks until Unblock), each on its
// own connection; returns once two run (the agents' two workers), or after 10 s.
std::vector<std::unique_ptr<Connection>> BlockTheAgentsWorkers(HoldServer& server,
                                                               const std::string& path,
                                                               const std::string& credential) {
  std::vector<std::unique_ptr<Connection>> agents;
  for (int i = 0; i < 3; ++i) {
    agents.push_back(std::make_unique<Connection>(server));
    agents.back()->Send(path, credential);
  }
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (server.busy() < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  return agents;
}

// Every agents' worker (settings.workers: 2) blocked, and one more agent's
// request queued for them: a person's request is answered meanwhile.
TEST(HttpServerHoldTest, APersonIsAnsweredWhileEveryAgentsWorkerIsBusy) {
  HoldServer server(30s);
  auto agents = BlockTheAgentsWorkers(server, kBusyPath, "cred-web-1");
  ASSERT_EQ(server.busy(), 2) << "the agents' two workers were not both taken";
  Connection person(server);
  person.Send(kPeoplePath, "");
  EXPECT_EQ(person.Receive(5s), 200u) << "the person's request waited for the agents' workers";
  EXPECT_EQ(server.busy(), 2);
  server.Unblock();
  for (auto& agent : agents) EXPECT_EQ(agent->Receive(10s), 200u);
  EXPECT_EQ(server.busy(), 3);
}

// Enrollment is a public route but agents' traffic: it runs on the agents'
// pool (two workers here), not on the people's (four).
TEST(HttpServerHoldTest, AgentsTrafficOnAPublicRouteRunsOnTheAgentsWorkers) {
  HoldServer server(30s);
  auto agents = BlockTheAgentsWorkers(server, kBusyEnrollPath, "");
  ASSERT_EQ(server.busy(), 2) << "the agents' two workers were not both taken";
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(server.busy(), 2) << "a third ran beside them: not on the agents' two workers";
  Connection person(server);
  person.Send(kPeoplePath, "");
  EXPECT_EQ(person.Receive(5s), 200u);
  server.Unblock();
  for (auto& agent : agents) EXPECT_EQ(agent->Receive(10s), 200u);
  EXPECT_EQ(server.busy(), 3);
}

}  // namespace
}  // namespace fabu::coordinator
