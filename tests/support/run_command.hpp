// Runs a real program for a test and captures what a user would see.
//
// RunCommand starts `argv` with posix_spawn, feeds `input` on stdin, collects
// stdout and stderr completely, and waits for the exit. A command still running
// after `timeout` is killed (SIGKILL) and reported with exit_code -1, so a hung
// binary fails the test instead of hanging the suite.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace fabu::testing {

struct CommandResult {
  int exit_code = -1;  // -1 when killed by a signal or the timeout
  std::string out;
  std::string err;
};

CommandResult RunCommand(const std::vector<std::string>& argv, const std::string& input = {},
                         std::chrono::seconds timeout = std::chrono::seconds(120),
                         const std::vector<std::string>& extra_env = {});

// Path of the `fabu` CLI under test (set by the build).
std::string FabuCli();

// Runs the `fabu` CLI with `args`.
CommandResult Fabu(const std::vector<std::string>& args, const std::string& input = {});

}  // namespace fabu::testing
