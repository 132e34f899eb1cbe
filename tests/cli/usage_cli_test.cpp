// Every usage error of `fabu` exits 2 (README.md: 0 success, 1 refused or
// failed, 2 bad usage), before any server is asked.
#include <gtest/gtest.h>

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

TEST(UsageCliTest, HelpIsNoError) {
  EXPECT_EQ(Fabu({"--help"}).exit_code, 0);
  EXPECT_EQ(Fabu({"release", "--help"}).exit_code, 0);
}

}  // namespace
}  // namespace fabu::testing
