// The coordinator's log as an operator reads it: with `serve --log-format
// json` every line on stderr is a JSON object, and a request's line and the
// audit entry it made share the request's id (X-Request-Id); a request on a
// release carries the release as a field. An unknown format is refused,
// naming it.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/agent_http.hpp"
#include "tests/support/coordinator_process.hpp"
#include "tests/support/run_command.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/wait.hpp"

namespace fabu::testing {
namespace {

using nlohmann::json;

std::string RequestId(const HttpReply& reply) {
  std::istringstream lines(reply.headers);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("X-Request-Id:", 0) == 0 || line.rfind("x-request-id:", 0) == 0) {
      std::string value = line.substr(line.find(':') + 1);
      value.erase(0, value.find_first_not_of(' '));
      while (!value.empty() && (value.back() == '\r' || value.back() == ' ')) value.pop_back();
      return value;
    }
  }
  return "";
}

// Every line of `text` as JSON; a line that does not parse fails the test.
std::vector<json> JsonLines(const std::string& text) {
  std::vector<json> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    json parsed = json::parse(line, nullptr, false);
    EXPECT_TRUE(parsed.is_object()) << "not a JSON line: " << line;
    if (parsed.is_object()) out.push_back(std::move(parsed));
  }
  return out;
}

// The log line of request `id`, or null.
json LineOf(const std::string& log, const std::string& id) {
  for (json& line : JsonLines(log)) {
    if (line.value("request_id", "") == id &&
        line.value("message", "").find(" -> ") != std::string::npos) {
      return line;
    }
  }
  return nullptr;
}

class RequestLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto init = InitCoordinator(dir_ / "coordinator");
    ASSERT_EQ(init.exit_code, 0) << init.err;
    admin_ = LastLine(init.out);
    daemon_ =
        std::make_unique<CoordinatorProcess>(dir_ / "coordinator", std::chrono::seconds(30),
                                             std::vector<std::string>{"--log-format", "json"});
    ASSERT_TRUE(daemon_->started()) << daemon_->log();
    client_ = std::make_unique<AgentHttpClient>(daemon_->url(), daemon_->ca());
  }

  // What the daemon wrote on stderr (its stdout, the "listening on" line, aside).
  std::string Log() const { return ReadFile(daemon_->data() / "serve.log"); }

  TempDir dir_;
  std::string admin_;
  std::unique_ptr<CoordinatorProcess> daemon_;
  std::unique_ptr<AgentHttpClient> client_;
};

TEST_F(RequestLogTest, ARequestsIdIsInItsJsonLogLineAndItsAuditEntry) {
  const HttpReply added =
      client_->Request("POST", "/api/v1/users", admin_, R"({"name": "wu.rm", "role": "viewer"})");
  ASSERT_EQ(added.status, 201) << added.body;
  const std::string id = RequestId(added);
  ASSERT_EQ(id.size(), 16u) << added.headers;

  // The access line is written once the answer is: wait for it, bounded.
  json line;
  ASSERT_TRUE(WaitUntil(
      [&] {
        line = LineOf(Log(), id);
        return !line.is_null();
      },
      std::chrono::seconds(20)))
      << daemon_->log();
  EXPECT_EQ(line["level"], "info");
  EXPECT_EQ(line["service"], "fabu-coordinator");
  EXPECT_NE(line["message"].get<std::string>().find("POST /api/v1/users -> 201"), std::string::npos)
      << line.dump();
  EXPECT_FALSE(line.value("time", "").empty());

  const HttpReply audit = client_->Request("GET", "/api/v1/audit", admin_);
  ASSERT_EQ(audit.status, 200) << audit.body;
  int matching = 0;
  const json entries = audit.Json()["entries"];
  for (const json& entry : entries) {
    if (entry["request_id"] == id) {
      ++matching;
      EXPECT_EQ(entry["action"], "user.create") << entry.dump();
    }
  }
  EXPECT_EQ(matching, 1) << audit.body;

  // A request on a release carries the release (404 or not).
  const HttpReply release = client_->Request("GET", "/api/v1/releases/R-42", admin_);
  EXPECT_EQ(release.status, 404);
  const std::string release_request = RequestId(release);
  json release_line;
  ASSERT_TRUE(WaitUntil(
      [&] {
        release_line = LineOf(Log(), release_request);
        return !release_line.is_null();
      },
      std::chrono::seconds(20)))
      << daemon_->log();
  EXPECT_EQ(release_line["release"], "R-42") << release_line.dump();

  // Every line the daemon wrote, startup and shutdown included, is JSON.
  EXPECT_EQ(daemon_->Stop(), 0);
  const std::vector<json> lines = JsonLines(Log());
  EXPECT_GE(lines.size(), 3u) << daemon_->log();
}

TEST(RequestLogFormatTest, AnUnknownLogFormatIsRefusedNamingIt) {
  TempDir dir;
  ASSERT_EQ(InitCoordinator(dir / "coordinator").exit_code, 0);
  const CommandResult served =
      RunCommand({CoordinatorBinary(), "serve", "--data", (dir / "coordinator").string(),
                  "--listen", "127.0.0.1:0", "--log-format", "syslog"},
                 "", std::chrono::seconds(30));
  EXPECT_EQ(served.exit_code, 1);
  EXPECT_NE(served.err.find("log format \"syslog\" is not one of text, json, journal"),
            std::string::npos)
      << served.err;
}

}  // namespace
}  // namespace fabu::testing
