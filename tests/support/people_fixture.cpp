#include "tests/support/people_fixture.hpp"

#include <nlohmann/json.hpp>

#include "tests/support/agent_events.hpp"
#include "tests/support/agent_http.hpp"

namespace fabu::testing {

void CoordinatorWithPeople::SetUp() {
  auto init = InitCoordinator(dir_ / "coordinator");
  ASSERT_EQ(init.exit_code, 0) << init.err;
  admin_ = LastLine(init.out);
  auto trust = TrustNewPublisher(dir_.path(), dir_ / "coordinator");
  ASSERT_EQ(trust.exit_code, 0) << trust.out << trust.err;
  Start();
  ASSERT_FALSE(HasFatalFailure());
  rm_ = AddUser("zhang.rm", "release_manager");
  wang_ = AddUser("wang.approver", "approver");
  li_ = AddUser("li.approver", "approver");
  liu_ = AddUser("liu.approver", "approver");
  tester_ = AddUser("chen.tester", "tester");
  viewer_ = AddUser("zhao.viewer", "viewer");
}

void CoordinatorWithPeople::Start() {
  daemon_ = std::make_unique<CoordinatorProcess>(dir_ / "coordinator");
  ASSERT_TRUE(daemon_->started()) << daemon_->log();
}

CommandResult CoordinatorWithPeople::As(const std::string& token,
                                        const std::vector<std::string>& args) {
  return FabuAs(*daemon_, token, args);
}

std::string CoordinatorWithPeople::AddUser(const std::string& name, const std::string& role) {
  auto r = As(admin_, {"user", "add", name, "--role", role});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return LastLine(r.out);
}

std::string CoordinatorWithPeople::BuildAndUpload(const std::string& name,
                                                  const std::string& version,
                                                  const std::filesystem::path& from) {
  const std::filesystem::path file = dir_ / (name + "-" + version + ".fabu");
  auto built = Fabu({"pack", "build", "--name", name, "--version", version, "--from", from.string(),
                     "--key", (dir_ / "publisher.key").string(), "--out", file.string()});
  EXPECT_EQ(built.exit_code, 0) << built.err;
  if (built.exit_code != 0) return "";
  auto uploaded = As(rm_, {"package", "upload", file.string()});
  EXPECT_EQ(uploaded.exit_code, 0) << uploaded.err;
  if (uploaded.exit_code != 0) return "";
  const std::string id = LastLine(uploaded.out);
  EXPECT_EQ(id.size(), 64u) << uploaded.out;
  return id;
}

std::pair<int, std::string> CoordinatorWithPeople::AgentHttp(const std::string& method,
                                                             const std::string& path,
                                                             const std::string& credential,
                                                             const std::string& body) {
  AgentHttpClient agent(daemon_->url(), daemon_->ca());
  HttpReply reply = agent.Request(method, path, credential, body);
  return {reply.status, std::move(reply.body)};
}

std::string CoordinatorWithPeople::EnrollHost(const std::string& name, const std::string& labels) {
  auto token = As(rm_, {"enroll-token", "create", "--labels", labels});
  EXPECT_EQ(token.exit_code, 0) << token.err;
  const nlohmann::json request = {{"token", LastLine(token.out)},
                                  {"name", name},
                                  {"labels", nlohmann::json::object()},
                                  {"inventory",
                                   {{"hostname", name},
                                    {"os", "linux"},
                                    {"kernel", "6.1.0"},
                                    {"arch", "x86_64"},
                                    {"cpus", 2},
                                    {"memory_bytes", 4294967296ull},
                                    {"agent_version", "0.1.0"},
                                    {"apps", nlohmann::json::array()}}}};
  auto [status, reply] = AgentHttp("POST", "/api/v1/agent/enroll", "", request.dump());
  EXPECT_EQ(status, 201) << reply;
  return nlohmann::json::parse(reply, nullptr, false).value("credential", "");
}

void CoordinatorWithPeople::PassTestDeployment(const std::string& id,
                                               const std::vector<std::string>& credentials) {
  auto tested = As(rm_, {"release", "test", id});
  ASSERT_EQ(tested.exit_code, 0) << tested.err;
  for (const std::string& credential : credentials) {
    auto [status, reply] = AgentHttp("GET", "/api/v1/agent/assignment?wait=5", credential, "");
    ASSERT_EQ(status, 200) << reply;
    const nlohmann::json assignment = nlohmann::json::parse(reply, nullptr, false)["assignment"];
    ASSERT_TRUE(assignment.is_object()) << reply;
    auto [posted, answer] =
        AgentHttp("POST", "/api/v1/agent/events", credential, SucceededEvents(assignment).dump());
    ASSERT_EQ(posted, 200) << answer;
  }
}

}  // namespace fabu::testing
