// The one HTTP client (platform/http) against real servers on 127.0.0.1: a
// TLS server with its own self-signed CA (tests/agent/tls_test_server.hpp)
// and the plain-HTTP receiver (tests/support/http_receiver.hpp). What every
// caller relies on: statuses mapped through protocol/http_errors, messages
// naming the URL and what failed, the pinned CA, no redirect and no proxy
// unless asked, bodies from and to files, Range.
#include "platform/http/http_client.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include "tests/agent/tls_test_server.hpp"
#include "tests/support/closed_port.hpp"
#include "tests/support/http_receiver.hpp"
#include "tests/support/temp_dir.hpp"

namespace fabu::platform {
namespace {

namespace fs = std::filesystem;
using agent::testing::TestRequest;
using agent::testing::TlsTestServer;
using fabu::testing::ClosedPort;
using fabu::testing::HttpReceiver;
using fabu::testing::ReadFile;
using fabu::testing::TempDir;
using fabu::testing::WriteFile;

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

HttpClient MakeClient(HttpClientOptions options) {
  auto client = HttpClient::Create(std::move(options));
  EXPECT_TRUE(client) << client.error().message();
  return std::move(*client);
}

HttpClient Pinned(const TlsTestServer& server) {
  HttpClientOptions options;
  options.ca_file = server.ca().string();
  return MakeClient(options);
}

class HttpClientTest : public ::testing::Test {
 protected:
  TempDir dir_;
};

TEST_F(HttpClientTest, SendsTheBearerHeadersAndBodyAndReturnsTheAnswer) {
  TlsTestServer server(dir_ / "tls", [](const TestRequest&) {
    return TlsTestServer::Response(201, R"({"ok":true})");
  });
  ASSERT_TRUE(server.started());
  HttpClient client = Pinned(server);
  HttpRequest request;
  request.method = "POST";
  request.url = server.url() + "/api/v1/things?x=1";
  request.bearer = "s3cret";
  request.headers = {"Content-Type: application/json", "X-Fabu-Event: test"};
  request.body = R"({"name":"web-1"})";
  auto response = client.Send(request);
  ASSERT_TRUE(response) << response.error().message();
  EXPECT_EQ(response->status, 201);
  EXPECT_EQ(response->body, R"({"ok":true})");
  ASSERT_EQ(server.request_count(), 1u);
  const TestRequest got = server.requests()[0];
  EXPECT_EQ(got.method, "POST");
  EXPECT_EQ(got.target, "/api/v1/things?x=1");
  EXPECT_EQ(got.headers.at("authorization"), "Bearer s3cret");
  EXPECT_EQ(got.headers.at("x-fabu-event"), "test");
  EXPECT_EQ(got.body, R"({"name":"web-1"})");
}

TEST_F(HttpClientTest, StatusesMapToErrorsThroughTheSharedTable) {
  int status = 403;
  std::string body = R"({"error":{"message":"not assigned to web-2","code":"permission_denied"}})";
  std::string extra;
  TlsTestServer server(dir_ / "tls", [&](const TestRequest&) {
    return TlsTestServer::Response(status, body, extra);
  });
  ASSERT_TRUE(server.started());
  HttpClient client = Pinned(server);
  HttpRequest request;
  request.url = server.url() + "/x";

  auto refused = client.Send(request);
  ASSERT_TRUE(refused) << refused.error().message();
  EXPECT_EQ(refused->status, 403);
  Error error = StatusError("GET /x", *refused);
  EXPECT_EQ(error.code(), ErrorCode::kPermissionDenied);
  EXPECT_EQ(error.message(), "GET /x: not assigned to web-2 (HTTP 403)");
  EXPECT_EQ(StatusError("", *refused).message(), "not assigned to web-2 (HTTP 403)");

  status = 404;
  body = "<html>no</html>";
  auto missing = client.Send(request);
  ASSERT_TRUE(missing);
  error = StatusError("GET /x", *missing);
  EXPECT_EQ(error.code(), ErrorCode::kNotFound);
  EXPECT_EQ(error.message(), "GET /x: HTTP 404");

  status = 503;
  body = R"({"error":{"message":"busy","code":"invalid_argument"}})";
  extra = "Retry-After: 7\r\n";
  auto busy = client.Send(request);
  ASSERT_TRUE(busy);
  EXPECT_EQ(StatusError("GET /x", *busy).code(), ErrorCode::kUnavailable);  // every 5xx
  EXPECT_EQ(busy->retry_after, std::chrono::seconds(7));
  EXPECT_EQ(client.last_retry_after(), std::chrono::seconds(7));
}

TEST_F(HttpClientTest, ARefusedConnectionIsNamedWithTheUrl) {
  HttpClient client = MakeClient({});
  HttpRequest request;
  request.url = "https://127.0.0.1:" + std::to_string(ClosedPort()) + "/api/v1/health";
  auto response = client.Send(request);
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().code(), ErrorCode::kUnavailable);
  EXPECT_TRUE(Contains(response.error().message(), "GET " + request.url + ": connection refused"))
      << response.error().message();
}

// What a caller with another server to try relies on: a request the server
// never saw (refused, or a TLS handshake that failed) is told apart from one
// it took and then dropped, and a 503 is an answer with its status.
TEST_F(HttpClientTest, TellsARequestNeverSentFromOneCutShort) {
  HttpRequest request;
  request.method = "POST";
  request.body = R"({"n":1})";

  HttpClient plain = MakeClient({});
  request.url = "https://127.0.0.1:" + std::to_string(ClosedPort()) + "/x";
  ASSERT_FALSE(plain.Send(request));
  EXPECT_EQ(plain.last_delivery(), HttpDelivery::kNotSent);
  EXPECT_EQ(plain.last_status(), 0);

  TlsTestServer hangs_up(dir_ / "tls1", [](const TestRequest&) { return std::string(); });
  TlsTestServer busy(dir_ / "tls2", [](const TestRequest&) {
    return TlsTestServer::Response(503, "{}", "Retry-After: 7\r\n");
  });
  ASSERT_TRUE(hangs_up.started() && busy.started());
  // Not signed by the CA pinned: the handshake fails before the request.
  HttpClient pinned_to_busy = Pinned(busy);
  request.url = hangs_up.url() + "/x";
  ASSERT_FALSE(pinned_to_busy.Send(request));
  EXPECT_EQ(pinned_to_busy.last_delivery(), HttpDelivery::kNotSent);
  EXPECT_EQ(hangs_up.request_count(), 0u);

  HttpClient client = Pinned(hangs_up);
  ASSERT_FALSE(client.Send(request));
  EXPECT_EQ(hangs_up.request_count(), 1u);
  EXPECT_EQ(client.last_delivery(), HttpDelivery::kCutShort);

  request.url = busy.url() + "/x";
  auto answer = pinned_to_busy.Send(request);
  ASSERT_TRUE(answer) << answer.error().message();
  EXPECT_EQ(pinned_to_busy.last_delivery(), HttpDelivery::kAnswered);
  EXPECT_EQ(pinned_to_busy.last_status(), 503);
  EXPECT_EQ(pinned_to_busy.last_retry_after(), std::chrono::seconds(7));
  // A Fetch records the same.
  HttpClient::FetchHandler handler{[](long, std::optional<std::uint64_t>) { return true; },
                                   [](std::span<const char>) { return true; }};
  ASSERT_TRUE(pinned_to_busy.Fetch(busy.url() + "/p", "", 0, handler));
  EXPECT_EQ(pinned_to_busy.last_status(), 503);
  ASSERT_FALSE(client.Fetch(hangs_up.url() + "/p", "", 0, handler));
  EXPECT_EQ(client.last_delivery(), HttpDelivery::kCutShort);
  EXPECT_EQ(client.last_status(), 0);
}

TEST_F(HttpClientTest, ARequestOverItsTimeoutFailsSayingSo) {
  TlsTestServer server(dir_ / "tls", [](const TestRequest&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    return TlsTestServer::Response(200, "{}");
  });
  ASSERT_TRUE(server.started());
  HttpClient client = Pinned(server);
  HttpRequest request;
  request.url = server.url() + "/slow";
  request.timeout = std::chrono::seconds(1);
  const auto start = std::chrono::steady_clock::now();
  auto response = client.Send(request);
  ASSERT_FALSE(response);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(2400));
  EXPECT_EQ(response.error().code(), ErrorCode::kUnavailable);
  EXPECT_TRUE(Contains(response.error().message(), "GET " + request.url + ": timed out"))
      << response.error().message();
}

TEST_F(HttpClientTest, AServerNotSignedByThePinnedCaIsRefusedBeforeAnyRequest) {
  TlsTestServer pinned(dir_ / "tls1", [](const TestRequest&) { return std::string(); });
  TlsTestServer other(dir_ / "tls2",
                      [](const TestRequest&) { return TlsTestServer::Response(200, "{}"); });
  ASSERT_TRUE(pinned.started() && other.started());
  HttpClient client = Pinned(pinned);
  HttpRequest request;
  request.url = other.url() + "/x";
  request.bearer = "s3cret";
  auto response = client.Send(request);
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().code(), ErrorCode::kUnavailable);
  EXPECT_TRUE(Contains(response.error().message(),
                       "GET " + request.url +
                           ": TLS: the server's certificate does not verify against the pinned "
                           "CA " +
                           pinned.ca().string()))
      << response.error().message();
  EXPECT_EQ(other.request_count(), 0u);

  // Without a pinned CA the system's CAs decide: a self-signed server fails too.
  HttpClient unpinned_client = MakeClient({});
  auto unpinned = unpinned_client.Send(request);
  ASSERT_FALSE(unpinned);
  EXPECT_TRUE(Contains(unpinned.error().message(), "against the system's CAs"))
      << unpinned.error().message();
  EXPECT_EQ(other.request_count(), 0u);
}

TEST_F(HttpClientTest, PlainHttpOnlyWhenTheOptionsAllowIt) {
  HttpReceiver receiver;
  HttpRequest request;
  request.method = "POST";
  request.url = receiver.url("/hook");
  request.headers = {"Content-Type: application/json"};
  request.body = "{}";
  HttpClient https_only = MakeClient({});
  auto refused = https_only.Send(request);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(Contains(refused.error().message(), "not an https:// URL"));
  EXPECT_TRUE(receiver.requests().empty());

  HttpClientOptions options;
  options.allow_plain_http = true;
  HttpClient client = MakeClient(options);
  auto response = client.Send(request);
  ASSERT_TRUE(response) << response.error().message();
  EXPECT_EQ(response->status, 200);
  ASSERT_EQ(receiver.requests().size(), 1u);
  EXPECT_EQ(receiver.requests()[0].body, "{}");
}

TEST_F(HttpClientTest, ARedirectIsNotFollowedSoTheCredentialStaysWithTheHost) {
  TlsTestServer elsewhere(dir_ / "tls2",
                          [](const TestRequest&) { return TlsTestServer::Response(200, "{}"); });
  ASSERT_TRUE(elsewhere.started());
  const std::string target = elsewhere.url() + "/steal";
  TlsTestServer server(dir_ / "tls1", [&](const TestRequest&) {
    return TlsTestServer::Response(302, "", "Location: " + target + "\r\n");
  });
  ASSERT_TRUE(server.started());
  HttpClient client = Pinned(server);
  HttpRequest request;
  request.url = server.url() + "/x";
  request.bearer = "s3cret";
  auto response = client.Send(request);
  ASSERT_TRUE(response) << response.error().message();
  EXPECT_EQ(response->status, 302);
  EXPECT_EQ(elsewhere.request_count(), 0u);
}

TEST_F(HttpClientTest, NoProxyUnlessTakenFromTheEnvironment) {
  TlsTestServer server(dir_ / "tls",
                       [](const TestRequest&) { return TlsTestServer::Response(200, "{}"); });
  ASSERT_TRUE(server.started());
  const std::string proxy = "http://127.0.0.1:" + std::to_string(ClosedPort());
  ::setenv("https_proxy", proxy.c_str(), 1);
  ::setenv("HTTPS_PROXY", proxy.c_str(), 1);
  HttpRequest request;
  request.url = server.url() + "/x";
  HttpClient direct = Pinned(server);
  auto response = direct.Send(request);
  HttpClientOptions options;
  options.ca_file = server.ca().string();
  options.proxy_from_environment = true;
  HttpClient proxied = MakeClient(options);
  auto through_proxy = proxied.Send(request);
  ::unsetenv("https_proxy");
  ::unsetenv("HTTPS_PROXY");
  ASSERT_TRUE(response) << response.error().message();
  EXPECT_EQ(response->status, 200);
  ASSERT_FALSE(through_proxy);  // the proxy named is not there
  EXPECT_EQ(through_proxy.error().code(), ErrorCode::kUnavailable);
}

TEST_F(HttpClientTest, UploadsABodyStreamedFromAFile) {
  TlsTestServer server(dir_ / "tls", [](const TestRequest& r) {
    return TlsTestServer::Response(200, std::to_string(r.body.size()));
  });
  ASSERT_TRUE(server.started());
  std::string content;
  for (int i = 0; i < 30'000; ++i) content += std::to_string(i % 97);
  WriteFile(dir_ / "package.fabu", content);
  HttpClient client = Pinned(server);
  HttpRequest request;
  request.method = "POST";
  request.url = server.url() + "/api/v1/packages";
  request.headers = {"Content-Type: application/octet-stream", "Expect:"};
  request.body_file = dir_ / "package.fabu";
  auto response = client.Send(request);
  ASSERT_TRUE(response) << response.error().message();
  EXPECT_EQ(response->body, std::to_string(content.size()));
  ASSERT_EQ(server.request_count(), 1u);
  EXPECT_EQ(server.requests()[0].body, content);

  request.body_file = dir_ / "missing.fabu";
  auto missing = client.Send(request);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(Contains(missing.error().message(), "missing.fabu"));
}

TEST_F(HttpClientTest, StreamsADownloadToAFileAndResumesWithARange) {
  std::string content;
  for (int i = 0; i < 300'000; ++i) content.push_back(static_cast<char>('a' + i % 26));
  TlsTestServer server(dir_ / "tls", [&](const TestRequest& r) {
    std::size_t from = 0;
    if (auto it = r.headers.find("range"); it != r.headers.end()) {
      from = std::stoul(it->second.substr(std::string("bytes=").size()));
      return "HTTP/1.1 206 Partial\r\nContent-Range: bytes " + std::to_string(from) + "-" +
             std::to_string(content.size() - 1) + "/" + std::to_string(content.size()) +
             "\r\nContent-Length: " + std::to_string(content.size() - from) +
             "\r\nConnection: close\r\n\r\n" + content.substr(from);
    }
    return TlsTestServer::Response(200, content);
  });
  ASSERT_TRUE(server.started());
  HttpClient client = Pinned(server);
  const fs::path file = dir_ / "download.part";

  auto fetch_into = [&](std::uint64_t offset, long& status,
                        std::optional<std::uint64_t>& range_start) {
    std::ofstream out(file, std::ios::binary | (offset > 0 ? std::ios::app : std::ios::trunc));
    HttpClient::FetchHandler handler;
    handler.on_start = [&](long s, std::optional<std::uint64_t> start) {
      status = s;
      range_start = start;
      return true;
    };
    handler.on_data = [&](std::span<const char> bytes) {
      out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      return static_cast<bool>(out);
    };
    return client.Fetch(server.url() + "/api/v1/agent/packages/abc", "s3cret", offset, handler);
  };

  long status = 0;
  std::optional<std::uint64_t> range_start;
  auto whole = fetch_into(0, status, range_start);
  ASSERT_TRUE(whole) << whole.error().message();
  EXPECT_EQ(status, 200);
  EXPECT_FALSE(range_start);
  EXPECT_EQ(ReadFile(file), content);
  EXPECT_EQ(server.requests()[0].headers.count("range"), 0u);
  EXPECT_EQ(server.requests()[0].headers.at("authorization"), "Bearer s3cret");

  WriteFile(file, content.substr(0, 123'456));
  auto rest = fetch_into(123'456, status, range_start);
  ASSERT_TRUE(rest) << rest.error().message();
  EXPECT_EQ(status, 206);
  EXPECT_EQ(range_start, 123'456u);
  EXPECT_EQ(server.requests().back().headers.at("range"), "bytes=123456-");
  EXPECT_EQ(ReadFile(file), content);
}

TEST_F(HttpClientTest, AFetchRefusedKeepsTheErrorBodyForTheMessage) {
  TlsTestServer server(dir_ / "tls", [](const TestRequest&) {
    return TlsTestServer::Response(404, R"({"error":{"message":"no package abc"}})");
  });
  ASSERT_TRUE(server.started());
  HttpClient client = Pinned(server);
  bool reached = false;
  HttpClient::FetchHandler handler;
  handler.on_start = [&](long, std::optional<std::uint64_t>) { return reached = true; };
  handler.on_data = [&](std::span<const char>) { return reached = true; };
  auto response = client.Fetch(server.url() + "/p/abc", "", 0, handler);
  ASSERT_TRUE(response) << response.error().message();
  EXPECT_EQ(response->status, 404);
  EXPECT_FALSE(reached);
  EXPECT_EQ(StatusError("GET /p/abc", *response).message(),
            "GET /p/abc: no package abc (HTTP 404)");
}

TEST_F(HttpClientTest, TheTickCanAbandonATransfer) {
  TlsTestServer server(dir_ / "tls", [](const TestRequest&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(3000));
    return TlsTestServer::Response(200, "{}");
  });
  ASSERT_TRUE(server.started());
  HttpClient client = Pinned(server);
  int ticks = 0;
  client.set_tick([&] { return ++ticks < 3; });
  HttpRequest request;
  request.url = server.url() + "/poll";
  auto response = client.Send(request);
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().message(), "GET " + request.url + ": interrupted");
}

TEST(HttpEncodingTest, EscapesAllButTheUnreservedCharacters) {
  EXPECT_EQ(UrlEscape("R-1.2_x~y"), "R-1.2_x~y");
  EXPECT_EQ(UrlEscape("a b/c?d&e=f"), "a%20b%2Fc%3Fd%26e%3Df");
  EXPECT_EQ(UrlEscape("\xe4\xb8\xad"), "%E4%B8%AD");
  EXPECT_EQ(FormEncode({{"auth_user", "fabu"}, {"json_data", R"({"a":1})"}}),
            "auth_user=fabu&json_data=%7B%22a%22%3A1%7D");
}

}  // namespace
}  // namespace fabu::platform
