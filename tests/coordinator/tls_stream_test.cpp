// TlsStream on loopback: its server side against Asio's TLS client, and its
// client side (fabu-loadgen's) against its server side. One io_context runs
// both ends, so every test is deterministic in its ordering and bounded by a
// deadline.
// clang-format off
#include <utility>  // before any Boost.Asio header: asio/awaitable.hpp needs it with g++ 12
// clang-format on

#include "coordinator/tls/tls_stream.hpp"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <string>
#include <vector>

#include "coordinator/common/data_dir.hpp"
#include "coordinator/tls/certificates.hpp"
#include "tests/support/temp_dir.hpp"

namespace fabu::coordinator {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Client = net::ssl::stream<tcp::socket>;
using ErrorCode = boost::system::error_code;
using namespace std::chrono_literals;

// `size` bytes of a pattern that shows a lost, repeated or reordered byte.
std::string Pattern(std::size_t size, std::uint32_t seed) {
  std::string out(size, '\0');
  std::uint32_t x = seed;
  for (char& c : out) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return out;
}

class TlsStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const DataDir data{dir_.path()};
    auto made = CreateCertificates(data, {});
    ASSERT_TRUE(made) << made.error().message();
    server_tls_.use_certificate_chain_file(data.server_cert().string());
    server_tls_.use_private_key_file(data.server_key().string(), net::ssl::context::pem);
    SSL_CTX_set_mode(server_tls_.native_handle(), SSL_MODE_RELEASE_BUFFERS);
    client_tls_.load_verify_file(data.ca_cert().string());
    client_tls_.set_verify_mode(net::ssl::verify_peer);
    const tcp::endpoint any(net::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(any.protocol());
    acceptor_.bind(any);
    acceptor_.listen();
  }

  // The server's end: the next accepted connection.
  net::awaitable<std::unique_ptr<TlsStream>> Accept(int send_buffer = 0) {
    tcp::socket socket = co_await acceptor_.async_accept(net::use_awaitable);
    if (send_buffer > 0) socket.set_option(net::socket_base::send_buffer_size(send_buffer));
    co_return std::make_unique<TlsStream>(std::move(socket), server_tls_.native_handle());
  }

  // The client's end, TCP connected (no handshake yet).
  net::awaitable<std::unique_ptr<Client>> Connect(int receive_buffer = 0) {
    auto client = std::make_unique<Client>(io_, client_tls_);
    auto& socket = client->next_layer();
    socket.open(tcp::v4());
    if (receive_buffer > 0) {
      socket.set_option(net::socket_base::receive_buffer_size(receive_buffer));
    }
    co_await socket.async_connect(acceptor_.local_endpoint(), net::use_awaitable);
    co_return client;
  }

  // The server's end of one HTTP exchange: accepts, answers one request with
  // "pong" (its body in `got_body`), reads on until the client closes (how,
  // in `end`) and sends its own close_notify (`shutdown`).
  net::awaitable<void> ServeOnePing(std::string& got_body, ErrorCode& end, ErrorCode& shutdown) {
    auto stream = co_await Accept();
    stream->expires_after(10s);
    co_await stream->async_handshake(net::use_awaitable);
    beast::flat_buffer buffer;
    http::request<http::string_body> request;
    co_await http::async_read(*stream, buffer, request, net::use_awaitable);
    got_body = request.body();
    http::response<http::string_body> response{http::status::ok, 11};
    response.set(http::field::content_type, "text/plain");
    response.body() = "pong";
    response.prepare_payload();
    co_await http::async_write(*stream, response, net::use_awaitable);
    http::request<http::string_body> next;
    co_await http::async_read(*stream, buffer, next, net::redirect_error(net::use_awaitable, end));
    co_await stream->async_shutdown(net::redirect_error(net::use_awaitable, shutdown));
  }

  // A client-side TlsStream, TCP connected (no handshake yet).
  net::awaitable<std::unique_ptr<TlsStream>> ConnectTls(SSL_CTX* context) {
    tcp::socket socket(io_);
    co_await socket.async_connect(acceptor_.local_endpoint(), net::use_awaitable);
    co_return std::make_unique<TlsStream>(std::move(socket), context, TlsStream::Role::kClient);
  }

  // Runs the coroutines to their end; fails the test on an exception or
  // when they are not done within 20 s.
  void Run(std::vector<std::function<net::awaitable<void>()>> sides) {
    int done = 0;
    for (auto& side : sides) {
      net::co_spawn(io_, side(), [&done](std::exception_ptr e) {
        ++done;
        if (!e) return;
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          ADD_FAILURE() << "a side ended by an exception: " << ex.what();
        }
      });
    }
    io_.run_for(20s);
    EXPECT_EQ(done, static_cast<int>(sides.size())) << "not done within 20 s";
  }

  fabu::testing::TempDir dir_;
  net::io_context io_;
  net::ssl::context server_tls_{net::ssl::context::tls_server};
  net::ssl::context client_tls_{net::ssl::context::tls_client};
  tcp::acceptor acceptor_{io_};
};

TEST_F(TlsStreamTest, AnHttpExchangeGoesThroughAndCloseNotifyReadsAsEndOfStream) {
  // Given a request and an answer over Beast, and the client closing with
  // close_notify, the server should read end_of_stream and close cleanly.
  ErrorCode end, server_shutdown, client_shutdown;
  std::string got_body, got_answer;
  Run({[&]() { return ServeOnePing(got_body, end, server_shutdown); },
       [&]() -> net::awaitable<void> {
         auto client = co_await Connect();
         co_await client->async_handshake(net::ssl::stream_base::client, net::use_awaitable);
         http::request<http::string_body> request{http::verb::post, "/ping", 11};
         request.body() = "ping";
         request.prepare_payload();
         co_await http::async_write(*client, request, net::use_awaitable);
         beast::flat_buffer buffer;
         http::response<http::string_body> response;
         co_await http::async_read(*client, buffer, response, net::use_awaitable);
         got_answer = response.body();
         co_await client->async_shutdown(net::redirect_error(net::use_awaitable, client_shutdown));
       }});
  EXPECT_EQ(got_body, "ping");
  EXPECT_EQ(got_answer, "pong");
  EXPECT_EQ(end, http::error::end_of_stream) << end.message();
  EXPECT_FALSE(server_shutdown) << server_shutdown.message();
  EXPECT_FALSE(client_shutdown) << client_shutdown.message();
}

TEST_F(TlsStreamTest, LargeTransfersGoThroughBothWaysWhenTheSocketIsFull) {
  // Given small socket buffers (so writes wait for the peer to read), 16 MiB
  // each way, the server's answer gathered from a small header piece and a
  // large body, should arrive whole and in order.
  constexpr std::size_t kSize = 16 << 20;
  const std::string upload = Pattern(kSize, 1);
  const std::string header = "header:";
  const std::string download = Pattern(kSize, 2);
  std::string received, answered;
  Run({[&]() -> net::awaitable<void> {
         auto stream = co_await Accept(16 * 1024);
         stream->expires_after(15s);
         co_await stream->async_handshake(net::use_awaitable);
         received.resize(kSize);
         co_await net::async_read(*stream, net::buffer(received), net::use_awaitable);
         const std::array<net::const_buffer, 2> answer{net::buffer(header), net::buffer(download)};
         co_await net::async_write(*stream, answer, net::use_awaitable);
       },
       [&]() -> net::awaitable<void> {
         auto client = co_await Connect(16 * 1024);
         co_await client->async_handshake(net::ssl::stream_base::client, net::use_awaitable);
         co_await net::async_write(*client, net::buffer(upload), net::use_awaitable);
         answered.resize(header.size() + kSize);
         co_await net::async_read(*client, net::buffer(answered), net::use_awaitable);
       }});
  EXPECT_TRUE(received == upload) << "the upload arrived changed";
  EXPECT_TRUE(answered == header + download) << "the download arrived changed";
}

TEST_F(TlsStreamTest, AHandshakeNotDoneByTheDeadlineTimesOut) {
  // Given a client that connects and says nothing, the handshake should end
  // with a timeout at the deadline.
  ErrorCode handshake;
  std::chrono::steady_clock::duration took{};
  Run({[&]() -> net::awaitable<void> {
         auto stream = co_await Accept();
         const auto start = std::chrono::steady_clock::now();
         stream->expires_after(200ms);
         co_await stream->async_handshake(net::redirect_error(net::use_awaitable, handshake));
         took = std::chrono::steady_clock::now() - start;
       },
       [&]() -> net::awaitable<void> {
         auto client = co_await Connect();
         // Held open, silent, until the server gives up.
         std::array<char, 1> byte{};
         ErrorCode ignored;
         co_await client->next_layer().async_read_some(
             net::buffer(byte), net::redirect_error(net::use_awaitable, ignored));
       }});
  EXPECT_EQ(handshake, beast::error::timeout) << handshake.message();
  EXPECT_GE(took, 200ms);
  EXPECT_LT(took, 5s);
}

TEST_F(TlsStreamTest, PlainHttpFailsTheHandshakeAtOnce) {
  ErrorCode handshake;
  Run({[&]() -> net::awaitable<void> {
         auto stream = co_await Accept();
         stream->expires_after(10s);
         co_await stream->async_handshake(net::redirect_error(net::use_awaitable, handshake));
       },
       [&]() -> net::awaitable<void> {
         auto client = co_await Connect();
         const std::string request = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
         co_await net::async_write(client->next_layer(), net::buffer(request), net::use_awaitable);
         std::array<char, 256> answer{};
         ErrorCode ignored;
         co_await client->next_layer().async_read_some(
             net::buffer(answer), net::redirect_error(net::use_awaitable, ignored));
       }});
  EXPECT_TRUE(handshake);
  EXPECT_NE(handshake, beast::error::timeout) << handshake.message();
}

TEST_F(TlsStreamTest, APeerThatClosesWithoutCloseNotifyIsATruncatedStream) {
  // Given a client that closes its TCP connection (FIN, no close_notify)
  // between records or in the middle of one, the server's read should end
  // with stream_truncated, not end of stream and not a hang.
  struct Case {
    const char* name;
    std::string tail;  // raw bytes sent before the FIN
  };
  const std::vector<Case> cases = {
      {"between records", ""},
      {"mid-record", std::string("\x17\x03\x03\x00\x40", 5) + std::string(10, 'x')},
  };
  for (const Case& c : cases) {
    ErrorCode read;
    std::size_t read_bytes = 0;
    Run({[&]() -> net::awaitable<void> {
           auto stream = co_await Accept();
           stream->expires_after(10s);
           co_await stream->async_handshake(net::use_awaitable);
           // The client reads this (and the session tickets before it).
           const std::string ready = "ready";
           co_await net::async_write(*stream, net::buffer(ready), net::use_awaitable);
           std::array<char, 64> data{};
           read_bytes = co_await stream->async_read_some(
               net::buffer(data), net::redirect_error(net::use_awaitable, read));
         },
         [&]() -> net::awaitable<void> {
           auto client = co_await Connect();
           co_await client->async_handshake(net::ssl::stream_base::client, net::use_awaitable);
           std::array<char, 5> ready{};
           co_await net::async_read(*client, net::buffer(ready), net::use_awaitable);
           if (!c.tail.empty()) {
             co_await net::async_write(client->next_layer(), net::buffer(c.tail),
                                       net::use_awaitable);
           }
           client->next_layer().shutdown(tcp::socket::shutdown_send);
           std::array<char, 16> rest{};
           ErrorCode ignored;
           co_await client->next_layer().async_read_some(
               net::buffer(rest), net::redirect_error(net::use_awaitable, ignored));
         }});
    io_.restart();
    EXPECT_EQ(read, net::ssl::error::stream_truncated) << c.name << ": " << read.message();
    EXPECT_EQ(read_bytes, 0u) << c.name;
  }
}

TEST_F(TlsStreamTest, CancelEndsAPendingReadWithOperationAborted) {
  // Shutdown cancels connections waiting for a request: the read should end
  // at once with operation_aborted, not a timeout.
  ErrorCode read;
  std::unique_ptr<Client> client;
  Run({[&]() -> net::awaitable<void> {
         auto stream = co_await Accept();
         stream->expires_after(10s);
         co_await stream->async_handshake(net::use_awaitable);
         net::steady_timer soon(io_, 50ms);
         soon.async_wait([&stream](const ErrorCode&) { stream->cancel(); });
         std::array<char, 64> data{};
         co_await stream->async_read_some(net::buffer(data),
                                          net::redirect_error(net::use_awaitable, read));
       },
       [&]() -> net::awaitable<void> {
         client = co_await Connect();
         co_await client->async_handshake(net::ssl::stream_base::client, net::use_awaitable);
       }});
  EXPECT_EQ(read, net::error::operation_aborted) << read.message();
}

TEST_F(TlsStreamTest, TheDeadlineBoundsOperationsNotTheTimeBetweenThem) {
  // Given a short deadline for one read that then completed, and a pause
  // longer than it (a long poll), the next read with a new deadline should
  // wait for its data and succeed: a stale deadline must not end it.
  ErrorCode first, second;
  std::string got;
  Run({[&]() -> net::awaitable<void> {
         auto stream = co_await Accept();
         stream->expires_after(10s);
         co_await stream->async_handshake(net::use_awaitable);
         // The client sends "a" only once it has this: the read below waits.
         const std::string ready = "r";
         co_await net::async_write(*stream, net::buffer(ready), net::use_awaitable);
         stream->expires_after(100ms);
         std::array<char, 1> a{};
         co_await net::async_read(*stream, net::buffer(a),
                                  net::redirect_error(net::use_awaitable, first));
         net::steady_timer pause(io_, 300ms);
         co_await pause.async_wait(net::use_awaitable);
         stream->expires_after(10s);
         const std::string go = "go";
         co_await net::async_write(*stream, net::buffer(go), net::use_awaitable);
         std::array<char, 1> b{};
         co_await net::async_read(*stream, net::buffer(b),
                                  net::redirect_error(net::use_awaitable, second));
         got = std::string(a.data(), 1) + std::string(b.data(), 1);
       },
       [&]() -> net::awaitable<void> {
         auto client = co_await Connect();
         co_await client->async_handshake(net::ssl::stream_base::client, net::use_awaitable);
         std::array<char, 1> ready{};
         co_await net::async_read(*client, net::buffer(ready), net::use_awaitable);
         co_await net::async_write(*client, net::buffer(std::string("a")), net::use_awaitable);
         std::array<char, 2> go{};
         co_await net::async_read(*client, net::buffer(go), net::use_awaitable);
         co_await net::async_write(*client, net::buffer(std::string("b")), net::use_awaitable);
         std::array<char, 1> end{};
         ErrorCode ignored;
         co_await client->async_read_some(net::buffer(end),
                                          net::redirect_error(net::use_awaitable, ignored));
       }});
  EXPECT_FALSE(first) << first.message();
  EXPECT_FALSE(second) << second.message();
  EXPECT_EQ(got, "ab");
}

TEST_F(TlsStreamTest, TheClientSideExchangesWithTheServerSideAndResumesItsSession) {
  // Given fabu-loadgen's way of connecting (a client-side TlsStream that
  // verifies the server against its CA), two requests on two connections,
  // the second offering the first one's session: both should be answered,
  // the second handshake should resume, and a close_notify should read as
  // the end of the stream.
  std::vector<std::string> got_bodies, got_answers;
  std::vector<ErrorCode> ends;
  std::vector<int> resumed;
  SSL_SESSION* session = nullptr;
  for (int round = 0; round < 2; ++round) {
    std::string body;
    ErrorCode end, shutdown;
    Run({[&]() { return ServeOnePing(body, end, shutdown); },
         [&]() -> net::awaitable<void> {
           auto client = co_await ConnectTls(client_tls_.native_handle());
           if (session != nullptr) SSL_set_session(client->native_handle(), session);
           client->expires_after(10s);
           co_await client->async_handshake(net::use_awaitable);
           http::request<http::string_body> request{http::verb::post, "/ping", 11};
           request.body() = "ping " + std::to_string(round);
           request.prepare_payload();
           co_await http::async_write(*client, request, net::use_awaitable);
           beast::flat_buffer buffer;
           http::response<http::string_body> response;
           co_await http::async_read(*client, buffer, response, net::use_awaitable);
           got_answers.push_back(response.body());
           resumed.push_back(SSL_session_reused(client->native_handle()));
           // TLS 1.3 tickets arrive after the handshake: by the answer they are in.
           if (session == nullptr) session = SSL_get1_session(client->native_handle());
           co_await client->async_shutdown(net::use_awaitable);
         }});
    io_.restart();
    got_bodies.push_back(body);
    ends.push_back(end);
    EXPECT_FALSE(shutdown) << shutdown.message();
  }
  SSL_SESSION_free(session);
  EXPECT_EQ(got_bodies, (std::vector<std::string>{"ping 0", "ping 1"}));
  EXPECT_EQ(got_answers, (std::vector<std::string>{"pong", "pong"}));
  EXPECT_EQ(resumed, (std::vector<int>{0, 1}));
  ASSERT_EQ(ends.size(), 2u);
  for (const ErrorCode& end : ends) EXPECT_EQ(end, http::error::end_of_stream) << end.message();
}

TEST_F(TlsStreamTest, TheClientSideRefusesAServerItsCaDidNotSign) {
  // Given a client that trusts another CA only, its handshake should fail
  // with the verification error at once, not time out or go through.
  const fabu::testing::TempDir other_dir;
  const DataDir other{other_dir.path()};
  ASSERT_TRUE(CreateCertificates(other, {}));
  net::ssl::context other_tls{net::ssl::context::tls_client};
  other_tls.load_verify_file(other.ca_cert().string());
  other_tls.set_verify_mode(net::ssl::verify_peer);
  ErrorCode client_handshake, server_handshake;
  Run({[&]() -> net::awaitable<void> {
         auto stream = co_await Accept();
         stream->expires_after(10s);
         co_await stream->async_handshake(
             net::redirect_error(net::use_awaitable, server_handshake));
       },
       [&]() -> net::awaitable<void> {
         auto client = co_await ConnectTls(other_tls.native_handle());
         client->expires_after(10s);
         co_await client->async_handshake(
             net::redirect_error(net::use_awaitable, client_handshake));
       }});
  ASSERT_TRUE(client_handshake) << "the handshake went through";
  EXPECT_EQ(&client_handshake.category(), &net::error::get_ssl_category())
      << client_handshake.message();
  EXPECT_EQ(ERR_GET_REASON(static_cast<unsigned long>(client_handshake.value())),
            SSL_R_CERTIFICATE_VERIFY_FAILED)
      << client_handshake.message();
  EXPECT_TRUE(server_handshake) << "the server's side went through";
}

}  // namespace
}  // namespace fabu::coordinator
