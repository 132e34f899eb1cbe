// `fabu` with several coordinator URLs (--server repeated, or FABU_SERVER
// with commas), against the real coordinator on loopback: a coordinator that
// is down or busy (503) is passed over for the next, and when none answers
// the error names each one.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "tests/agent/tls_test_server.hpp"
#include "tests/support/closed_port.hpp"
#include "tests/support/coordinator_process.hpp"
#include "tests/support/run_command.hpp"
#include "tests/support/temp_dir.hpp"

namespace fabu::testing {
namespace {

namespace fs = std::filesystem;
using agent::testing::TestRequest;
using agent::testing::TlsTestServer;

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string DeadUrl() { return "https://127.0.0.1:" + std::to_string(ClosedPort()); }

class ServersCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto init = InitCoordinator(data());
    ASSERT_EQ(init.exit_code, 0) << init.err;
    admin_ = LastLine(init.out);
    auto trust = TrustNewPublisher(dir_.path(), data());
    ASSERT_EQ(trust.exit_code, 0) << trust.out << trust.err;
    daemon_ = std::make_unique<CoordinatorProcess>(data());
    ASSERT_TRUE(daemon_->started()) << daemon_->log();
  }

  fs::path data() const { return dir_ / "coordinator"; }

  // `fabu ARGS` with the CA and token in the environment and FABU_SERVER as
  // given ("" for none).
  CommandResult Run(const std::vector<std::string>& args, const std::string& fabu_server = "") {
    std::vector<std::string> argv{FabuCli()};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<std::string> env = {"FABU_CA=" + daemon_->ca().string(), "FABU_TOKEN=" + admin_};
    if (!fabu_server.empty()) env.push_back("FABU_SERVER=" + fabu_server);
    return RunCommand(argv, {}, std::chrono::seconds(120), env);
  }

  TempDir dir_;
  std::string admin_;
  std::unique_ptr<CoordinatorProcess> daemon_;
};

// Given a first coordinator that is down, a command should be answered by
// the second and say on stderr which one it passed over.
TEST_F(ServersCliTest, ADeadCoordinatorIsPassedOverForTheNext) {
  const std::string dead = DeadUrl();
  auto r = Run({"hosts", "list", "--json", "--server", dead, "--server", daemon_->url()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.out.starts_with("[")) << r.out;  // the (empty) list of hosts
  EXPECT_TRUE(Contains(r.err, "GET " + dead + "/api/v1/hosts: connection refused")) << r.err;
  EXPECT_TRUE(Contains(r.err, "trying " + daemon_->url())) << r.err;

  // The same from FABU_SERVER, URLs separated by commas.
  auto env = Run({"hosts", "list", "--json"}, dead + "," + daemon_->url());
  ASSERT_EQ(env.exit_code, 0) << env.err;
  EXPECT_TRUE(Contains(env.err, "trying " + daemon_->url())) << env.err;
}

// Given a first coordinator that answers 503, an upload should go whole to
// the second (the file is read again from its start), and be stored once.
TEST_F(ServersCliTest, ABusyCoordinatorIsPassedOverAndAnUploadGoesWholeToTheNext) {
  // The busy one presents a certificate of the same CA (the coordinator's own).
  fs::create_directories(dir_ / "busy");
  fs::copy_file(data() / "server.pem", dir_ / "busy/server-cert.pem");
  fs::copy_file(data() / "server.key", dir_ / "busy/server-key.pem");
  TlsTestServer busy(dir_ / "busy", [](const TestRequest&) {
    return TlsTestServer::Response(503, R"({"error":{"message":"overloaded"}})",
                                   "Retry-After: 5\r\n");
  });
  ASSERT_TRUE(busy.started());
  WriteFile(dir_ / "app/bin/app", "#!/bin/sh\necho app\n");
  const fs::path package = dir_ / "app.fabu";
  auto built = Fabu({"pack", "build", "--name", "app", "--version", "V1.0.0.1", "--from",
                     (dir_ / "app").string(), "--key", (dir_ / "publisher.key").string(), "--out",
                     package.string()});
  ASSERT_EQ(built.exit_code, 0) << built.err;

  auto r = Run(
      {"package", "upload", package.string(), "--server", busy.url(), "--server", daemon_->url()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(LastLine(r.out).size(), 64u) << r.out;  // the package id
  EXPECT_TRUE(Contains(r.err, "POST " + busy.url() + "/api/v1/packages: overloaded (HTTP 503)"))
      << r.err;
  EXPECT_TRUE(Contains(r.err, "trying " + daemon_->url())) << r.err;
  EXPECT_EQ(busy.request_count(), 1u);
  auto listed = Run({"package", "list", "--json"}, daemon_->url());
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_TRUE(Contains(listed.out, LastLine(r.out))) << listed.out;
}

// Given no coordinator that answers, the error should name each one with
// what failed there, and the command fail (exit 1) as for one server.
TEST_F(ServersCliTest, WhenNoCoordinatorAnswersTheErrorNamesThemAll) {
  const std::string dead1 = DeadUrl();
  std::string dead2 = DeadUrl();
  while (dead2 == dead1) dead2 = DeadUrl();
  auto r = Run({"hosts", "list", "--server", dead1, "--server", dead2});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(Contains(r.err, "fabu hosts list: none of the 2 coordinators answered: GET " + dead1 +
                                  "/api/v1/hosts: connection refused"))
      << r.err;
  EXPECT_TRUE(Contains(r.err, "; GET " + dead2 + "/api/v1/hosts: connection refused")) << r.err;

  // A URL that is not https is refused before anything is sent.
  auto plain = Run({"hosts", "list"}, daemon_->url() + ",http://127.0.0.1:1");
  EXPECT_EQ(plain.exit_code, 1);
  EXPECT_TRUE(Contains(plain.err, "--server http://127.0.0.1:1: the coordinator speaks HTTPS only"))
      << plain.err;
}

}  // namespace
}  // namespace fabu::testing
