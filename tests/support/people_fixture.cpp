#include "tests/support/people_fixture.hpp"

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

}  // namespace fabu::testing
