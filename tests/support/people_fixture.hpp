// A real coordinator on loopback with the people of the procedure, for the
// suites that drive it with the real `fabu` CLI.
//
// SetUp inits a coordinator in dir_/coordinator, trusts a new publisher key
// (dir_/publisher.key, .pub), starts `fabu-coordinator serve` on a free
// port and adds, with their roles: zhang.rm (release_manager),
// wang.approver, li.approver and liu.approver (approver), chen.tester
// (tester) and zhao.viewer (viewer). A suite's own SetUp calls this one
// first and returns if it failed (HasFatalFailure).
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/coordinator_process.hpp"
#include "tests/support/run_command.hpp"
#include "tests/support/temp_dir.hpp"

namespace fabu::testing {

class CoordinatorWithPeople : public ::testing::Test {
 protected:
  void SetUp() override;

  // Starts (again) the daemon on the same data directory.
  void Start();
  // Runs the `fabu` CLI against the daemon with `token`.
  CommandResult As(const std::string& token, const std::vector<std::string>& args);
  // Adds a user with `role` as admin; the user's token.
  std::string AddUser(const std::string& name, const std::string& role);
  // Builds a package of the tree `from` signed with the publisher key and
  // uploads it as zhang.rm; the package id (64 hex digits), "" on failure
  // (a test failure is recorded).
  std::string BuildAndUpload(const std::string& name, const std::string& version,
                             const std::filesystem::path& from);

  // A test host played by the HTTP client (real HTTPS, the pinned CA): enrolls `name`
  // with the token labels `labels` (e.g. "env=test,app=c3m-video"); its
  // credential.
  std::string EnrollHost(const std::string& name, const std::string& labels);
  // The release manager deploys release `id` to its test hosts (`fabu
  // release test`) and each host in `credentials` reports every step of its
  // assignment to success, as a working agent would (procedure §6.2.3).
  void PassTestDeployment(const std::string& id, const std::vector<std::string>& credentials);
  // One HTTPS request as an agent (AgentHttpClient); the status and the body.
  std::pair<int, std::string> AgentHttp(const std::string& method, const std::string& path,
                                        const std::string& credential, const std::string& body);

  TempDir dir_;
  std::unique_ptr<CoordinatorProcess> daemon_;
  std::string admin_, rm_, wang_, li_, liu_, tester_, viewer_;
};

}  // namespace fabu::testing
