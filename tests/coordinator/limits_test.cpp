// The limits that protect the coordinator, on the real
// fabu-coordinator: past the connection cap agents get 503 + Retry-After and
// people are still served; silent, idle and vanished peers are dropped;
// shutdown does not wait for idle connections. Connections are real TLS
// (Boost.Beast, the coordinator's CA pinned), held open by the test.
// clang-format off
#include <utility>  // before any Boost.Asio header: asio/awaitable.hpp needs it with g++ 12
// clang-format on

#include <gtest/gtest.h>

#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/coordinator_process.hpp"
#include "tests/support/temp_dir.hpp"

namespace fabu::testing {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Stream = beast::ssl_stream<beast::tcp_stream>;

constexpr int kMaxConnections = 3;
constexpr int kRetryAfterSeconds = 7;

struct Reply {
  int status = 0;
  std::string retry_after;
  bool closed = false;  // the server closed the connection after answering
};

class CoordinatorLimitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto data = dir_ / "coordinator";
    auto init = InitCoordinator(data);
    ASSERT_EQ(init.exit_code, 0) << init.err;
    admin_ = LastLine(init.out);
    // A tiny cap, so the test can exceed it.
    nlohmann::json config;
    std::ifstream(data / "config.json") >> config;
    config["limits"]["max_connections"] = kMaxConnections;
    config["limits"]["reserved_connections"] = 8;
    config["limits"]["retry_after_seconds"] = kRetryAfterSeconds;
    // Long enough that a shutdown waiting for an idle connection shows.
    config["timeouts"]["shutdown_seconds"] = 30;
    Configure(config);
    std::ofstream(data / "config.json") << config.dump(2);
    coordinator_ = std::make_unique<CoordinatorProcess>(data);
    ASSERT_TRUE(coordinator_->started()) << coordinator_->log();
    tls_.load_verify_file(coordinator_->ca().string());
    tls_.set_verify_mode(net::ssl::verify_peer);
  }

  virtual void Configure(nlohmann::json& /*config*/) {}

  // A TCP connection to the coordinator, nothing sent.
  net::ip::tcp::socket ConnectTcp() {
    net::ip::tcp::socket socket(io_);
    socket.connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"),
                                          static_cast<unsigned short>(coordinator_->port())));
    return socket;
  }

  // Reads and drops what the server sends on `socket` until it closes the
  // connection, for at most 15 s; how long that took, or nullopt.
  std::optional<std::chrono::milliseconds> WaitForClose(net::ip::tcp::socket& socket) {
    const auto start = std::chrono::steady_clock::now();
    bool closed = false;
    std::array<char, 4096> scratch{};
    std::function<void(const beast::error_code&, std::size_t)> on_read =
        [&](const beast::error_code& ec, std::size_t) {
          if (ec) {
            closed = true;
            return;
          }
          socket.async_read_some(net::buffer(scratch), on_read);
        };
    socket.async_read_some(net::buffer(scratch), on_read);
    io_.restart();
    io_.run_for(std::chrono::seconds(15));
    if (!closed) {
      socket.cancel();
      io_.restart();
      io_.run();
      return std::nullopt;
    }
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 start);
  }

  // A TLS connection to the coordinator, handshake done (the server has
  // counted it by then).
  std::unique_ptr<Stream> Connect() {
    auto stream = std::make_unique<Stream>(io_, tls_);
    beast::get_lowest_layer(*stream).expires_after(std::chrono::seconds(10));
    beast::get_lowest_layer(*stream).connect(net::ip::tcp::endpoint(
        net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(coordinator_->port())));
    stream->handshake(net::ssl::stream_base::client);
    return stream;
  }

  // One GET on `stream`; reads the answer and whether the server then closed.
  Reply Get(Stream& stream, const std::string& target, const std::string& bearer) {
    http::request<http::empty_body> request{http::verb::get, target, 11};
    request.set(http::field::host, "127.0.0.1");
    if (!bearer.empty()) request.set(http::field::authorization, "Bearer " + bearer);
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(10));
    http::write(stream, request);
    beast::flat_buffer buffer;
    http::response<http::string_body> response;
    http::read(stream, buffer, response);
    Reply reply;
    reply.status = static_cast<int>(response.result_int());
    reply.retry_after = std::string(response[http::field::retry_after]);
    if (!response.keep_alive()) {
      beast::error_code ec;
      http::response<http::string_body> more;
      http::read(stream, buffer, more, ec);
      reply.closed = static_cast<bool>(ec);
    }
    return reply;
  }

  TempDir dir_;
  std::string admin_;
  std::unique_ptr<CoordinatorProcess> coordinator_;
  net::io_context io_;
  net::ssl::context tls_{net::ssl::context::tls_client};
};

constexpr const char* kAssignment = "/api/v1/agent/assignment?wait=0";
const std::string kNoSuchCredential(64, 'a');

TEST_F(CoordinatorLimitsTest, PastTheCapAgentsGet503WithRetryAfterAndPeopleAreServed) {
  // Given the cap's worth of connections held open, an agent request on one
  // more connection should get 503 with Retry-After and a closed connection,
  // while the CLI and /healthz are still answered.
  std::vector<std::unique_ptr<Stream>> held;
  for (int i = 0; i < kMaxConnections; ++i) held.push_back(Connect());

  auto excess = Connect();
  const Reply refused = Get(*excess, kAssignment, kNoSuchCredential);
  EXPECT_EQ(refused.status, 503);
  EXPECT_EQ(refused.retry_after, std::to_string(kRetryAfterSeconds));
  EXPECT_TRUE(refused.closed);

  auto enroll_excess = Connect();
  EXPECT_EQ(Get(*enroll_excess, "/api/v1/agent/enroll", "").status, 503);

  auto people = FabuAs(*coordinator_, admin_, {"user", "list"});
  EXPECT_EQ(people.exit_code, 0) << people.err;
  EXPECT_NE(people.out.find("admin"), std::string::npos);
  auto health = Connect();
  EXPECT_EQ(Get(*health, "/healthz", "").status, 200);
  health.reset();
  enroll_excess.reset();

  // Given a held connection closed, an agent should be let in again (here:
  // refused for its unknown credential, 401, instead of the 503).
  held.pop_back();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  int status = 503;
  while (status == 503 && std::chrono::steady_clock::now() < deadline) {
    auto again = Connect();
    status = Get(*again, kAssignment, kNoSuchCredential).status;
  }
  EXPECT_EQ(status, 401);
}

TEST_F(CoordinatorLimitsTest, ConnectionsUnderTheCapAreServedAsUsual) {
  auto stream = Connect();
  const Reply reply = Get(*stream, kAssignment, kNoSuchCredential);
  EXPECT_EQ(reply.status, 401);
  EXPECT_TRUE(reply.retry_after.empty());
}

TEST_F(CoordinatorLimitsTest, ShutdownClosesIdleConnectionsWithoutWaitingForThem) {
  // Given a connection that completed its handshake and sent nothing, SIGTERM
  // should close it at once and exit, not wait out the 30 s shutdown timeout.
  auto idle = Connect();
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(coordinator_->Stop(), 0) << coordinator_->log();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_TRUE(WaitForClose(beast::get_lowest_layer(*idle).socket()).has_value());
}

TEST_F(CoordinatorLimitsTest, APeerThatVanishesMidRecordLeavesTheServerServing) {
  // Given a client that sends half a TLS record and closes, the server should
  // drop that connection and go on serving others.
  auto vanishing = Connect();
  const std::string half_record = std::string("\x17\x03\x03\x00\x40", 5) + std::string(20, 'x');
  net::write(beast::get_lowest_layer(*vanishing).socket(), net::buffer(half_record));
  beast::get_lowest_layer(*vanishing).socket().shutdown(net::ip::tcp::socket::shutdown_send);
  EXPECT_TRUE(WaitForClose(beast::get_lowest_layer(*vanishing).socket()).has_value());
  auto next = Connect();
  EXPECT_EQ(Get(*next, "/healthz", "").status, 200);
}

// One-second handshake and idle timeouts, so the tests can wait them out.
class CoordinatorTimeoutsTest : public CoordinatorLimitsTest {
 protected:
  void Configure(nlohmann::json& config) override {
    config["timeouts"]["handshake_seconds"] = 1;
    config["timeouts"]["idle_seconds"] = 1;
  }
};

TEST_F(CoordinatorTimeoutsTest, ASilentConnectionIsClosedAtTheHandshakeTimeout) {
  auto silent = ConnectTcp();
  const auto closed_after = WaitForClose(silent);
  ASSERT_TRUE(closed_after.has_value()) << "the connection was not closed within 15 s";
  EXPECT_GE(*closed_after, std::chrono::milliseconds(900));
}

TEST_F(CoordinatorTimeoutsTest, AConnectionWithoutARequestIsClosedAtTheIdleTimeout) {
  auto idle = Connect();
  const auto closed_after = WaitForClose(beast::get_lowest_layer(*idle).socket());
  ASSERT_TRUE(closed_after.has_value()) << "the connection was not closed within 15 s";
  EXPECT_GE(*closed_after, std::chrono::milliseconds(900));
  // And the server still serves.
  auto next = Connect();
  EXPECT_EQ(Get(*next, "/healthz", "").status, 200);
}

}  // namespace
}  // namespace fabu::testing
