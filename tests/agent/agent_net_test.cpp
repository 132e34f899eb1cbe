// The networked agent's parts without a coordinator: backoff schedule, the
// config file, the credential's mode, and package downloads with resume
// against a real HTTPS server on loopback.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <deque>

#include "agent/config/agent_config.hpp"
#include "agent/net/agent_api_client.hpp"
#include "agent/net/backoff.hpp"
#include "agent/net/package_download.hpp"
#include "packaging/sha256.hpp"
#include "platform/http/http_client.hpp"
#include "tests/agent/tls_test_server.hpp"
#include "tests/support/closed_port.hpp"
#include "tests/support/temp_dir.hpp"

namespace fabu::agent::testing {
namespace {

namespace fs = std::filesystem;
using fabu::testing::ClosedPort;
using fabu::testing::ReadFile;
using fabu::testing::TempDir;
using fabu::testing::WriteFile;
using std::chrono::milliseconds;
using std::chrono::seconds;

// ---- Backoff ---------------------------------------------------------------

Backoff::Random Fixed(double value) {
  return [value] { return value; };
}

TEST(BackoffTest, DoublesFromInitialUpToTheCap) {
  // Given no jitter (random 0), we should wait half of 1, 2, 4, 8 s, then the cap.
  Backoff backoff(seconds(1), seconds(8), Fixed(0.0));
  std::vector<long long> delays;
  for (int i = 0; i < 6; ++i) delays.push_back(backoff.Next().count());
  EXPECT_EQ(delays, (std::vector<long long>{500, 1000, 2000, 4000, 4000, 4000}));
}

TEST(BackoffTest, JitterStaysWithinHalfAndWholeNominalDelay) {
  Backoff high(seconds(1), seconds(60), Fixed(0.999));
  EXPECT_EQ(high.Next(), milliseconds(999));
  EXPECT_EQ(high.Next(), milliseconds(1999));
  Backoff mid(seconds(1), seconds(60), Fixed(0.5));
  EXPECT_EQ(mid.Next(), milliseconds(750));
}

TEST(BackoffTest, NeverExceedsTheCapWhateverTheRandomSource) {
  std::deque<double> draws = {0.1, 0.9, 0.3, 0.99, 0.0, 0.7, 0.5, 0.999, 0.2, 0.8};
  Backoff backoff(seconds(1), seconds(60), [&draws] {
    const double d = draws.front();
    draws.push_back(d);
    draws.pop_front();
    return d;
  });
  for (int i = 0; i < 100; ++i) {
    const auto delay = backoff.Next();
    EXPECT_LE(delay, seconds(60));
    EXPECT_GE(delay, milliseconds(500));
  }
  EXPECT_GE(backoff.Next(), seconds(30));  // long at the cap
}

TEST(BackoffTest, ResetStartsOverAfterASuccess) {
  Backoff backoff(seconds(1), seconds(60), Fixed(0.0));
  for (int i = 0; i < 10; ++i) backoff.Next();
  backoff.Reset();
  EXPECT_EQ(backoff.Next(), milliseconds(500));
}

TEST(BackoffTest, RetryAfterIsAFloorSpreadByUpToHalfOfIt) {
  // Given a 503 asking for 10 s, the agent should wait 10 to 15 s even when
  // its own backoff is shorter, and its own backoff when that is longer.
  Backoff low(seconds(1), seconds(60), Fixed(0.0));
  EXPECT_EQ(low.Next(seconds(10)), seconds(10));
  Backoff high(seconds(1), seconds(60), Fixed(0.999));
  const auto spread = high.Next(seconds(10));
  EXPECT_GE(spread, milliseconds(14900));
  EXPECT_LE(spread, seconds(15));
  Backoff long_own(seconds(40), seconds(60), Fixed(0.0));
  EXPECT_EQ(long_own.Next(seconds(2)), seconds(20));
}

// ---- Config and credential --------------------------------------------------

AgentConfig SampleConfig() {
  AgentConfig c;
  c.servers = {"https://127.0.0.1:8443"};
  c.name = "web-1";
  c.apps_root = "/opt/fabu/apps";
  c.trusted_keys = {"trusted/0-publisher.pub"};
  c.poll_wait_seconds = 20;
  c.backoff_cap_seconds = 30;
  return c;
}

TEST(AgentConfigTest, RoundTripsThroughTheFile) {
  TempDir dir;
  ASSERT_TRUE(WriteAgentConfig(dir.path(), SampleConfig()));
  auto read = ReadAgentConfig(dir.path());
  ASSERT_TRUE(read) << read.error().message();
  EXPECT_EQ(*read, SampleConfig());
}

// Several coordinators are written as "servers" and read back in their
// order; one is written as "server", so the file stays the one every agent
// version reads.
TEST(AgentConfigTest, SeveralServersRoundTripInTheirOrder) {
  TempDir dir;
  AgentConfig several = SampleConfig();
  several.servers = {"https://coord-2.example:8443", "https://coord-1.example:8443",
                     "https://10.0.0.3:8443"};
  ASSERT_TRUE(WriteAgentConfig(dir.path(), several));
  const std::string text = ReadFile(dir.path() / "agent.json");
  EXPECT_EQ(text.find("\"server\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"servers\""), std::string::npos) << text;
  auto read = ReadAgentConfig(dir.path());
  ASSERT_TRUE(read) << read.error().message();
  EXPECT_EQ(read->servers, several.servers);
  EXPECT_EQ(*read, several);

  ASSERT_TRUE(WriteAgentConfig(dir.path(), SampleConfig()));
  const std::string one = ReadFile(dir.path() / "agent.json");
  EXPECT_NE(one.find("\"server\": \"https://127.0.0.1:8443\""), std::string::npos) << one;
  EXPECT_EQ(one.find("\"servers\""), std::string::npos) << one;
}

// An agent.json written by an agent that knew one coordinator only.
TEST(AgentConfigTest, AnOlderFileWithOneServerStillLoads) {
  TempDir dir;
  WriteFile(dir.path() / "agent.json", R"({
  "apps_root": "/opt/fabu/apps",
  "backoff_cap_seconds": 60,
  "backoff_initial_seconds": 1,
  "ca": "ca.pem",
  "connect_timeout_seconds": 15,
  "credential": "credential",
  "format": 1,
  "health_check_attempts": 3,
  "health_check_delay_seconds": 5,
  "health_check_timeout_seconds": 60,
  "hook_timeout_seconds": 300,
  "low_speed_limit_bytes": 1024,
  "low_speed_time_seconds": 60,
  "name": "web-1",
  "poll_wait_seconds": 30,
  "retained_releases": 3,
  "server": "https://coordinator.example:8443",
  "trusted_keys": ["trusted/0-publisher.pub"]
}
)");
  auto read = ReadAgentConfig(dir.path());
  ASSERT_TRUE(read) << read.error().message();
  EXPECT_EQ(read->servers, std::vector<std::string>{"https://coordinator.example:8443"});
  EXPECT_EQ(read->name, "web-1");
}

TEST(AgentConfigTest, TheServersAreCheckedEachByItsPlace) {
  const std::string rest = R"("name":"a","ca":"ca.pem","credential":"c","apps_root":"/a")";
  const auto error = [&](const std::string& servers) {
    auto c = AgentConfigFromJson(R"({"format":1,)" + servers + "," + rest + "}");
    return c ? std::string("(loaded)") : c.error().message();
  };
  EXPECT_EQ(error(R"("servers":["https://a:1","http://b:1"])"),
            R"(agent.json: servers[1]: "http://b:1" is not an https:// URL)");
  EXPECT_EQ(error(R"("servers":[])"), "agent.json: servers: must be a non-empty array of URLs");
  EXPECT_EQ(error(R"("servers":"https://a:1")"),
            "agent.json: servers: must be a non-empty array of URLs");
  EXPECT_EQ(error(R"("servers":["https://a:1","https://a:1"])"),
            R"(agent.json: servers[1]: "https://a:1" is given twice)");
  EXPECT_EQ(error(R"("server":"https://a:1","servers":["https://b:1"])"),
            "agent.json: servers: give either server or servers, not both");
  auto none = AgentConfigFromJson(R"({"format":1,)" + rest + "}");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().message(), "agent.json: server: is required (or servers)");
}

TEST(AgentConfigTest, AbsentFieldsTakeTheDefaults) {
  auto c = AgentConfigFromJson(
      R"({"format":1,"server":"https://h:1","name":"a","ca":"ca.pem","credential":"credential",
          "apps_root":"/srv/apps"})");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->poll_wait_seconds, 30);
  EXPECT_EQ(c->retained_releases, 3);
  EXPECT_EQ(c->backoff_cap_seconds, 60);
  EXPECT_EQ(c->hook_timeout_seconds, 300);
  EXPECT_EQ(c->health_check_timeout_seconds, 60);
}

TEST(AgentConfigTest, ErrorsNameTheField) {
  const std::string base =
      R"("format":1,"server":"https://h:1","name":"a","ca":"ca.pem","credential":"c","apps_root":"/a")";
  auto unknown = AgentConfigFromJson("{" + base + R"(,"pol_wait_seconds":3})");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message().find("pol_wait_seconds: unknown field"), std::string::npos);
  auto type = AgentConfigFromJson("{" + base + R"(,"poll_wait_seconds":"30"})");
  ASSERT_FALSE(type);
  EXPECT_NE(type.error().message().find("poll_wait_seconds: must be an integer"),
            std::string::npos);
  auto range = AgentConfigFromJson("{" + base + R"(,"poll_wait_seconds":61})");
  ASSERT_FALSE(range);
  EXPECT_NE(range.error().message().find("poll_wait_seconds: 61 is outside 1..60"),
            std::string::npos);
  auto http = AgentConfigFromJson(
      R"({"format":1,"server":"http://h:1","name":"a","ca":"x","credential":"c","apps_root":"/a"})");
  ASSERT_FALSE(http);
  EXPECT_NE(http.error().message().find("server"), std::string::npos);
}

TEST(AgentConfigTest, MissingFileSaysToEnroll) {
  TempDir dir;
  auto read = ReadAgentConfig(dir.path());
  ASSERT_FALSE(read);
  EXPECT_NE(read.error().message().find("fabu-agent enroll"), std::string::npos);
}

TEST(CredentialTest, IsWrittenWithMode0600AndReadBack) {
  TempDir dir;
  const std::string credential(64, 'a');
  ASSERT_TRUE(WriteCredential(dir / "credential", credential));
  struct stat st {};
  ASSERT_EQ(::stat((dir / "credential").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto read = ReadCredential(dir / "credential");
  ASSERT_TRUE(read) << read.error().message();
  EXPECT_EQ(*read, credential);
}

TEST(CredentialTest, ReadableByOthersIsRefused) {
  TempDir dir;
  ASSERT_TRUE(WriteCredential(dir / "credential", std::string(64, 'b')));
  fs::permissions(dir / "credential", fs::perms(0644));
  auto read = ReadCredential(dir / "credential");
  ASSERT_FALSE(read);
  EXPECT_NE(read.error().message().find("chmod 600"), std::string::npos);
}

// ---- Downloads ----------------------------------------------------------------

// Serves `content` at any path, honouring "Range: bytes=N-" with 206 unless
// told otherwise; can cut a body after `cut_after` bytes or append junk.
struct PackageServer {
  std::string content;
  bool honour_range = true;
  std::size_t cut_after = std::string::npos;  // bytes of this answer's body
  std::string extra;                          // sent after the content

  std::string Answer(const TestRequest& request) {
    std::size_t from = 0;
    if (auto it = request.headers.find("range"); it != request.headers.end() && honour_range) {
      from = std::stoul(it->second.substr(std::string("bytes=").size()));
    }
    std::string body = content.substr(from) + extra;
    const std::string declared = std::to_string(body.size());
    if (cut_after != std::string::npos) body.resize(std::min(body.size(), cut_after));
    std::string head =
        from > 0 ? fmt::format("HTTP/1.1 206 Partial\r\nContent-Range: bytes {}-{}/{}\r\n", from,
                               content.size() - 1, content.size())
                 : std::string("HTTP/1.1 200 OK\r\n");
    return head + "Content-Length: " + declared + "\r\nConnection: close\r\n\r\n" + body;
  }
};

class DownloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 200'000; ++i) server_.content.push_back(static_cast<char>('a' + i % 26));
    http_ = std::make_unique<TlsTestServer>(
        dir_ / "tls", [this](const TestRequest& r) { return server_.Answer(r); });
    ASSERT_TRUE(http_->started());
    platform::HttpClientOptions settings;
    settings.ca_file = http_->ca().string();
    auto client = platform::HttpClient::Create(settings);
    ASSERT_TRUE(client);
    client_ = std::make_unique<platform::HttpClient>(std::move(*client));
  }

  DownloadRequest Request() const {
    return {http_->url() + "/api/v1/agent/packages/abc",
            "secret",
            dir_ / "dl/abc.part",
            dir_ / "dl/abc.fabu",
            server_.content.size(),
            ""};
  }

  TempDir dir_;
  PackageServer server_;
  std::unique_ptr<TlsTestServer> http_;
  std::unique_ptr<platform::HttpClient> client_;
};

TEST_F(DownloadTest, FetchesTheWholeFileAndRenamesIt) {
  auto report = DownloadPackage(*client_, Request());
  ASSERT_TRUE(report) << report.error().message();
  EXPECT_EQ(report->fetched, server_.content.size());
  EXPECT_EQ(ReadFile(Request().destination), server_.content);
  EXPECT_FALSE(fs::exists(Request().part));
  ASSERT_EQ(http_->request_count(), 1u);
  EXPECT_EQ(http_->requests()[0].headers.at("authorization"), "Bearer secret");
  EXPECT_EQ(http_->requests()[0].headers.count("range"), 0u);
}

TEST_F(DownloadTest, ResumesACutTransferFromThePartialFile) {
  // Given a transfer cut after 80 000 bytes, we should keep them and, next
  // time, ask only for the rest.
  server_.cut_after = 80'000;
  auto first = DownloadPackage(*client_, Request());
  ASSERT_FALSE(first);
  EXPECT_EQ(first.error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(fs::file_size(Request().part), 80'000u);

  server_.cut_after = std::string::npos;
  auto second = DownloadPackage(*client_, Request());
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_EQ(second->resumed_from, 80'000u);
  EXPECT_EQ(second->fetched, server_.content.size() - 80'000u);
  EXPECT_EQ(http_->requests().back().headers.at("range"), "bytes=80000-");
  EXPECT_EQ(ReadFile(Request().destination), server_.content);
}

TEST_F(DownloadTest, HashesTheBytesAsTheyArriveAlsoAcrossAResume) {
  const std::string whole = packaging::Sha256::OfString(server_.content);
  auto direct = DownloadPackage(*client_, Request());
  ASSERT_TRUE(direct) << direct.error().message();
  EXPECT_EQ(direct->sha256, whole);
  // A completed file found again is hashed from disk.
  auto again = DownloadPackage(*client_, Request());
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(again->sha256, whole);

  // Given a cut transfer, the part on disk is hashed once, then the rest as it comes.
  fs::remove(Request().destination);
  server_.cut_after = 70'000;
  ASSERT_FALSE(DownloadPackage(*client_, Request()));
  server_.cut_after = std::string::npos;
  auto resumed = DownloadPackage(*client_, Request());
  ASSERT_TRUE(resumed) << resumed.error().message();
  EXPECT_EQ(resumed->resumed_from, 70'000u);
  EXPECT_EQ(resumed->sha256, whole);
}

TEST_F(DownloadTest, BytesThatAreNotThePackageIdAreDroppedWithAClearError) {
  DownloadRequest request = Request();
  request.expected_sha256 = std::string(64, 'e');
  auto report = DownloadPackage(*client_, request);
  ASSERT_FALSE(report);
  EXPECT_EQ(report.error().code(), ErrorCode::kIntegrity);
  EXPECT_NE(report.error().message().find("not the package id " + std::string(64, 'e')),
            std::string::npos)
      << report.error().message();
  EXPECT_FALSE(fs::exists(request.part));
  EXPECT_FALSE(fs::exists(request.destination));
  request.expected_sha256 = packaging::Sha256::OfString(server_.content);
  EXPECT_TRUE(DownloadPackage(*client_, request));
}

TEST_F(DownloadTest, ResumesFromAPartialFileLeftByAnEarlierProcess) {
  WriteFile(Request().part, server_.content.substr(0, 123'456));
  auto report = DownloadPackage(*client_, Request());
  ASSERT_TRUE(report) << report.error().message();
  EXPECT_EQ(report->resumed_from, 123'456u);
  EXPECT_EQ(report->fetched, server_.content.size() - 123'456u);
  EXPECT_EQ(ReadFile(Request().destination), server_.content);
}

TEST_F(DownloadTest, StartsOverWhenTheServerIgnoresTheRange) {
  WriteFile(Request().part, std::string(1000, 'x'));  // and it is garbage too
  server_.honour_range = false;
  auto report = DownloadPackage(*client_, Request());
  ASSERT_TRUE(report) << report.error().message();
  EXPECT_EQ(report->resumed_from, 0u);
  EXPECT_EQ(ReadFile(Request().destination), server_.content);
}

TEST_F(DownloadTest, CutsOffAServerSendingMoreThanAnnounced) {
  server_.extra = std::string(50'000, 'z');
  auto report = DownloadPackage(*client_, Request());
  ASSERT_FALSE(report);
  EXPECT_EQ(report.error().code(), ErrorCode::kTooLarge);
  EXPECT_NE(report.error().message().find("more than the 200000 bytes"), std::string::npos);
  EXPECT_FALSE(fs::exists(Request().part));
  EXPECT_FALSE(fs::exists(Request().destination));
}

TEST_F(DownloadTest, ACompletedFileIsNotFetchedAgain) {
  WriteFile(Request().destination, server_.content);
  auto report = DownloadPackage(*client_, Request());
  ASSERT_TRUE(report) << report.error().message();
  EXPECT_EQ(report->fetched, 0u);
  EXPECT_EQ(http_->request_count(), 0u);
}

TEST_F(DownloadTest, ARefusalCarriesTheServersMessage) {
  TlsTestServer refusing(dir_ / "tls2", [](const TestRequest&) {
    return TlsTestServer::Response(403, R"({"error":{"message":"not assigned to web-2"}})");
  });
  ASSERT_TRUE(refusing.started());
  platform::HttpClientOptions settings;
  settings.ca_file = refusing.ca().string();
  auto client = platform::HttpClient::Create(settings);
  ASSERT_TRUE(client);
  DownloadRequest request = Request();
  request.url = refusing.url() + "/api/v1/agent/packages/abc";
  auto report = DownloadPackage(*client, request);
  ASSERT_FALSE(report);
  EXPECT_EQ(report.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_NE(report.error().message().find("not assigned to web-2 (HTTP 403)"), std::string::npos);
}

TEST_F(DownloadTest, AServerNotSignedByThePinnedCaIsRefused) {
  TlsTestServer other(dir_ / "tls3", [](const TestRequest&) { return std::string(); });
  ASSERT_TRUE(other.started());
  DownloadRequest request = Request();
  request.url = other.url() + "/x";  // its certificate is not the one pinned by client_
  auto report = DownloadPackage(*client_, request);
  ASSERT_FALSE(report);
  EXPECT_EQ(report.error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(other.request_count(), 0u);
}

// The credential goes only to the coordinator: a mirror URL whose host only
// begins like the server's is another host.
TEST_F(DownloadTest, OnlyUrlsOnTheServerItselfAreTheCoordinators) {
  platform::HttpClientOptions settings;
  settings.ca_file = http_->ca().string();
  auto client = platform::HttpClient::Create(settings);
  ASSERT_TRUE(client);
  AgentApiClient api(std::move(*client),
                     {"https://coord.example.com:8443/", "https://coord-2.example.com:8443"},
                     "secret");
  for (const std::string server :
       {"https://coord.example.com:8443", "https://coord-2.example.com:8443"}) {
    EXPECT_TRUE(api.IsOnServer(server + "/api/v1/agent/packages/abc")) << server;
    EXPECT_TRUE(api.IsOnServer(server)) << server;
    EXPECT_FALSE(api.IsOnServer(server + "0/api/v1/agent/packages/abc")) << server;
    EXPECT_FALSE(api.IsOnServer(server + ".evil.example/packages/abc")) << server;
    EXPECT_FALSE(api.IsOnServer(server + "@evil.example/packages/abc")) << server;
  }
  EXPECT_FALSE(api.IsOnServer("https://coord-3.example.com:8443/api/v1/agent/packages/abc"));
  EXPECT_FALSE(api.IsOnServer("https://mirror.example.com/packages/abc"));
  EXPECT_FALSE(api.IsOnServer(""));
  EXPECT_FALSE(api.IsOnServer("/api/v1/agent/packages/abc"));
}

// A package given as a path is fetched from the coordinator the agent talks
// to now, which changes when it moves; a Retry-After holds for the server
// that sent it only.
TEST_F(DownloadTest, APackagePathIsOnTheCurrentServerWhichMovesWhenAway) {
  const int dead = ClosedPort();
  TlsTestServer busy(dir_ / "busy", [](const TestRequest&) {
    return TlsTestServer::Response(503, R"({"error":{"message":"overloaded"}})",
                                   "Retry-After: 30\r\n");
  });
  ASSERT_TRUE(busy.started());
  platform::HttpClientOptions settings;
  settings.ca_file = busy.ca().string();
  auto client = platform::HttpClient::Create(settings);
  ASSERT_TRUE(client);
  const std::string dead_url = fmt::format("https://127.0.0.1:{}", dead);
  AgentApiClient api(std::move(*client), {busy.url(), dead_url}, std::string(64, 'c'));
  protocol::Assignment a;
  a.deployment = "D-1";
  a.package_id = std::string(64, 'a');
  a.package_url = "/api/v1/agent/packages/" + a.package_id;
  EXPECT_EQ(*api.PackageUrl(a), busy.url() + a.package_url);

  // An overloaded coordinator: its Retry-After is for it alone.
  auto overloaded = api.PostInventory(protocol::Inventory{});
  ASSERT_FALSE(overloaded);
  EXPECT_TRUE(api.IsAway(overloaded.error())) << overloaded.error().message();
  EXPECT_EQ(api.retry_after(), std::nullopt);  // not noted yet
  EXPECT_TRUE(api.NoteFailure(overloaded.error()));
  EXPECT_EQ(api.server(), dead_url);
  EXPECT_EQ(api.retry_after(), std::nullopt);
  EXPECT_EQ(*api.PackageUrl(a), dead_url + a.package_url);

  // Nobody there: round robin, back to the first, whose wait still runs.
  auto refused = api.PostInventory(protocol::Inventory{});
  ASSERT_FALSE(refused);
  EXPECT_TRUE(api.IsAway(refused.error()));
  EXPECT_TRUE(api.NoteFailure(refused.error()));
  EXPECT_EQ(api.server(), busy.url());
  ASSERT_TRUE(api.retry_after());
  EXPECT_GE(*api.retry_after(), std::chrono::seconds(29));
  EXPECT_LE(*api.retry_after(), std::chrono::seconds(30));

  // A mirror's failure, or an answer other than 503, moves nothing.
  EXPECT_FALSE(api.NoteFailure(refused.error(), /*from_server=*/false));
  EXPECT_EQ(api.server(), busy.url());
}

}  // namespace
}  // namespace fabu::agent::testing
