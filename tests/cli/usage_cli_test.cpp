// Every usage error of `fabu` exits 2 (README.md: 0 success, 1 refused or
// failed, 2 bad usage), before any server is asked.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "tests/support/run_command.hpp"

namespace fabu::testing {
namespace {

TEST(UsageCliTest, EveryUsageErrorExitsTwo) {
  const std::vector<std::vector<std::string>> usage_errors = {
      {},                                           // no command
      {"release"},                                  // no subcommand
      {"release", "create"},                        // --file missing
      {"release", "cancel", "R-1"},                 // --reason missing
      {"report", "--json"},                         // an option that does not exist
      {"release", "show"},                          // R missing
      {"no-such-command"},                          // a command that does not exist
      {"version", "next", "V1.2.3.4", "--change"},  // an option without its value
  };
  for (const auto& args : usage_errors) {
    auto r = Fabu(args);
    EXPECT_EQ(r.exit_code, 2) << ::testing::PrintToString(args) << "\n" << r.err;
    EXPECT_FALSE(r.err.empty()) << ::testing::PrintToString(args);
  }
}

TEST(UsageCliTest, AnUnknownCommandIsNamedWithTheCommandsThereAre) {
  auto top = Fabu({"relase", "list"});
  EXPECT_EQ(top.exit_code, 2);
  EXPECT_NE(top.err.find("fabu: unknown command \"relase\"; the commands are: "), std::string::npos)
      << top.err;
  EXPECT_NE(top.err.find("release"), std::string::npos) << top.err;
  auto inner = Fabu({"release", "frobnicate"});
  EXPECT_EQ(inner.exit_code, 2);
  EXPECT_NE(inner.err.find("fabu release: unknown command \"frobnicate\"; the commands are: "),
            std::string::npos)
      << inner.err;
  EXPECT_NE(inner.err.find("create"), std::string::npos) << inner.err;
  auto none = Fabu({"release"});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.err.find("fabu release: which command? The commands are: "), std::string::npos)
      << none.err;
}

TEST(UsageCliTest, EachProgramPrintsItsVersionAndCommit) {
  // `--version` on fabu, fabu-agent and fabu-coordinator: the project's
  // version and the commit built from (12 hex digits, "-dirty" when built
  // with uncommitted changes, "unknown" outside git), the same for all three.
  const std::regex line(
      R"(^(fabu|fabu-agent|fabu-coordinator) ([0-9.]+) \(commit ([0-9a-f]{12}(-dirty)?|unknown)\)\n$)");
  std::vector<std::string> commits;
  for (const std::string& program :
       {FabuCli(), std::string(FABU_AGENT_PATH), std::string(FABU_COORDINATOR_PATH)}) {
    auto r = RunCommand({program, "--version"});
    EXPECT_EQ(r.exit_code, 0) << program << "\n" << r.err;
    std::smatch m;
    ASSERT_TRUE(std::regex_match(r.out, m, line)) << program << ": " << r.out;
    EXPECT_EQ(std::filesystem::path(program).filename().string(), m[1].str());
    EXPECT_EQ(m[2].str(), FABU_PROJECT_VERSION);
    commits.push_back(m[3].str());
  }
  EXPECT_EQ(commits[0], commits[1]);
  EXPECT_EQ(commits[0], commits[2]);
}

TEST(UsageCliTest, HelpIsNoError) {
  EXPECT_EQ(Fabu({"--help"}).exit_code, 0);
  EXPECT_EQ(Fabu({"release", "--help"}).exit_code, 0);
}

}  // namespace
}  // namespace fabu::testing
