// Real answers of a running fabu-coordinator match docs/openapi.yaml: the
// main routes (users, packages, releases list and show, hosts, audit) and
// their errors (400, 401, 403, 404, 409) are called over HTTPS, each answer
// is recorded with the route's path template, and
// tests/coordinator/openapi_validate.py (python3-jsonschema) validates every
// body against the schema the spec gives for that route and status. The
// spec used is the one the coordinator serves at GET /api/v1/openapi.yaml,
// which must be docs/openapi.yaml byte for byte.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "tests/support/agent_http.hpp"
#include "tests/support/coordinator_process.hpp"
#include "tests/support/people_fixture.hpp"
#include "tests/support/run_command.hpp"
#include "tests/support/temp_dir.hpp"

namespace fabu::testing {
namespace {

using nlohmann::json;

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The value of header `name` in "Name: value\r\n" lines ("" when absent).
std::string Header(const std::string& headers, const std::string& name) {
  std::istringstream lines(headers);
  std::string line;
  auto lower = [](std::string text) {
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return text;
  };
  while (std::getline(lines, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos || lower(line.substr(0, colon)) != lower(name)) continue;
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    while (!value.empty() && (value.back() == '\r' || value.back() == ' ')) value.pop_back();
    return value;
  }
  return "";
}

class OpenApiResponsesTest : public CoordinatorWithPeople {
 protected:
  void SetUp() override {
    CoordinatorWithPeople::SetUp();
    if (HasFatalFailure()) return;
    client_ = std::make_unique<AgentHttpClient>(daemon_->url(), daemon_->ca());
  }

  // Makes a request and records its answer under the route's `path_template`.
  HttpReply Call(const std::string& method, const std::string& path_template,
                 const std::string& path, const std::string& token, const std::string& body = "") {
    HttpReply reply = client_->Request(method, path, token, body);
    std::string lower_method = method;
    std::transform(lower_method.begin(), lower_method.end(), lower_method.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    const json parsed = reply.Json();
    EXPECT_FALSE(parsed.is_discarded()) << method << " " << path << ": " << reply.body;
    answers_.push_back({{"method", lower_method},
                        {"path", path_template},
                        {"status", reply.status},
                        {"content_type", Header(reply.headers, "Content-Type")},
                        {"body", parsed}});
    return reply;
  }

  // The served spec, checked to be docs/openapi.yaml, written to dir_.
  std::filesystem::path ServedSpec() {
    HttpReply reply = client_->Request("GET", "/api/v1/openapi.yaml", "");
    EXPECT_EQ(reply.status, 200);
    EXPECT_EQ(Header(reply.headers, "Content-Type"), "application/yaml");
    EXPECT_EQ(reply.body, ReadFile(std::filesystem::path(FABU_SOURCE_DIR) / "docs/openapi.yaml"))
        << "the served spec is not docs/openapi.yaml";
    const auto path = dir_ / "openapi.yaml";
    WriteFile(path, reply.body);
    return path;
  }

  // Runs the validator on `answers`.
  CommandResult Validate(const std::filesystem::path& spec, const std::vector<json>& answers) {
    const auto file = dir_ / "answers.jsonl";
    std::string lines;
    for (const json& answer : answers) lines += answer.dump() + "\n";
    WriteFile(file, lines);
    return RunCommand({"/usr/bin/python3", FABU_SOURCE_DIR "/tests/coordinator/openapi_validate.py",
                       spec.string(), file.string()});
  }

  std::unique_ptr<AgentHttpClient> client_;
  std::vector<json> answers_;
};

TEST_F(OpenApiResponsesTest, MainRoutesAndTheirErrorsAnswerAsTheSpecSays) {
  const std::filesystem::path spec = ServedSpec();

  EXPECT_EQ(Call("GET", "/healthz", "/healthz", "").status, 200);

  // Users.
  EXPECT_EQ(Call("GET", "/api/v1/users", "/api/v1/users", admin_).status, 200);
  EXPECT_EQ(Call("GET", "/api/v1/users/{name}", "/api/v1/users/zhang.rm", viewer_).status, 200);
  EXPECT_EQ(Call("POST", "/api/v1/users", "/api/v1/users", admin_,
                 R"({"name": "sun.viewer", "role": "viewer"})")
                .status,
            201);

  // Packages.
  WriteFile(dir_ / "app/bin/c3m-video", "#!/bin/sh\necho playback\n");
  const std::string package = BuildAndUpload("c3m-video", "V1.3.0.12", dir_ / "app");
  ASSERT_EQ(package.size(), 64u);
  EXPECT_EQ(Call("GET", "/api/v1/packages", "/api/v1/packages", viewer_).status, 200);
  EXPECT_EQ(Call("GET", "/api/v1/packages/{id}", "/api/v1/packages/" + package, viewer_).status,
            200);

  // Releases: a draft, listed and shown; submitting it incomplete is refused.
  const json plan = {{"title", "C3M-VIDEO playback download"},
                     {"product", "c3m-video"},
                     {"version", "V1.3.0.12"},
                     {"category", "minor"},
                     {"change_refs", {"CHG-2026-0113"}},
                     {"packages", {package}}};
  HttpReply created = Call("POST", "/api/v1/releases", "/api/v1/releases", rm_, plan.dump());
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string id = created.Json().value("id", "");
  EXPECT_EQ(Call("GET", "/api/v1/releases", "/api/v1/releases", viewer_).status, 200);
  EXPECT_EQ(Call("GET", "/api/v1/releases/{id}", "/api/v1/releases/" + id, viewer_).status, 200);
  EXPECT_EQ(
      Call("POST", "/api/v1/releases/{id}/submit", "/api/v1/releases/" + id + "/submit", rm_, "{}")
          .status,
      409);

  // Hosts.
  ASSERT_FALSE(EnrollHost("qa-1", "env=test,app=c3m-video").empty());
  EXPECT_EQ(Call("GET", "/api/v1/hosts", "/api/v1/hosts?selector=env%3Dtest", viewer_).status, 200);

  // The audit trail: oldest first after a seq, newest first before one.
  EXPECT_EQ(Call("GET", "/api/v1/audit", "/api/v1/audit", viewer_).status, 200);
  const json oldest = Call("GET", "/api/v1/audit", "/api/v1/audit?limit=2", viewer_).Json();
  ASSERT_EQ(oldest["entries"].size(), 2u) << oldest.dump();
  EXPECT_EQ(oldest["entries"][0]["seq"], 1);
  EXPECT_EQ(oldest["entries"][1]["seq"], 2);
  const json newest =
      Call("GET", "/api/v1/audit", "/api/v1/audit?before=9007199254740991&limit=2", viewer_).Json();
  ASSERT_EQ(newest["entries"].size(), 2u) << newest.dump();
  const std::int64_t head = newest["entries"][0]["seq"];
  EXPECT_GT(head, 2);
  EXPECT_EQ(newest["entries"][1]["seq"], head - 1);
  const json older = Call("GET", "/api/v1/audit",
                          "/api/v1/audit?before=" + std::to_string(head - 1) + "&limit=1", viewer_)
                         .Json();
  ASSERT_EQ(older["entries"].size(), 1u) << older.dump();
  EXPECT_EQ(older["entries"][0]["seq"], head - 2);
  EXPECT_EQ(Call("GET", "/api/v1/audit", "/api/v1/audit?after=1&before=5", viewer_).status, 400);
  EXPECT_EQ(Call("GET", "/api/v1/audit/verify", "/api/v1/audit/verify", viewer_).status, 200);
  // The daemon checked the chain at start.
  const json watch = Call("GET", "/api/v1/audit/watch", "/api/v1/audit/watch", viewer_).Json();
  EXPECT_EQ(watch.value("checked", false), true) << watch.dump();
  EXPECT_EQ(watch.value("intact", false), true) << watch.dump();
  EXPECT_GT(watch.value("verified_seq", 0), 0) << watch.dump();

  // Errors.
  EXPECT_EQ(Call("GET", "/api/v1/releases/{id}", "/api/v1/releases/R-999", viewer_).status, 404);
  EXPECT_EQ(Call("GET", "/api/v1/users", "/api/v1/users", "").status, 401);
  EXPECT_EQ(Call("GET", "/api/v1/users", "/api/v1/users", "not-a-token").status, 401);
  EXPECT_EQ(Call("POST", "/api/v1/releases", "/api/v1/releases", rm_, "{\"title\": ").status, 400);
  EXPECT_EQ(Call("POST", "/api/v1/users", "/api/v1/users", viewer_,
                 R"({"name": "x.viewer", "role": "viewer"})")
                .status,
            403);
  EXPECT_EQ(Call("GET", "/api/v1/audit", "/api/v1/audit?bogus=1", viewer_).status, 400);

  const CommandResult validated = Validate(spec, answers_);
  EXPECT_EQ(validated.exit_code, 0) << validated.out << validated.err;
  EXPECT_NE(validated.out.find(std::to_string(answers_.size()) + " answers checked"),
            std::string::npos)
      << validated.out;
}

// The validator fails on an answer the spec does not allow, naming where.
TEST_F(OpenApiResponsesTest, AnAnswerThatBreaksTheSchemaIsReported) {
  const std::filesystem::path spec = ServedSpec();
  HttpReply users = Call("GET", "/api/v1/users", "/api/v1/users", admin_);
  ASSERT_EQ(users.status, 200);
  json broken = answers_.back();
  broken["body"]["users"][0].erase("role");
  broken["body"]["users"][0]["disabled"] = "no";
  const CommandResult validated = Validate(spec, {answers_.back(), broken});
  EXPECT_EQ(validated.exit_code, 1) << validated.out << validated.err;
  EXPECT_NE(validated.err.find("'role' is a required property"), std::string::npos)
      << validated.err;
  EXPECT_NE(validated.err.find("users/0/disabled"), std::string::npos) << validated.err;

  // A status the spec does not list for the route is a problem too.
  json unlisted = answers_.back();
  unlisted["status"] = 418;
  const CommandResult refused = Validate(spec, {unlisted});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("does not list status 418"), std::string::npos) << refused.err;
}

}  // namespace
}  // namespace fabu::testing
