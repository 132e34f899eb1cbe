// Hooks run directly (no shell), with a timeout that kills the whole process
// group, and only the tail of their output kept.
#include "agent/hooks/hook_runner.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "tests/support/temp_dir.hpp"
#include "tests/support/wait.hpp"

namespace fabu::agent::testing {
namespace {

namespace fs = std::filesystem;
using fabu::testing::ReadFile;
using fabu::testing::TempDir;
using fabu::testing::WriteFile;

class HookRunnerTest : public ::testing::Test {
 protected:
  HookInvocation Hook(const std::string& script,
                      std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    const fs::path program = dir_.path() / "hook";
    WriteFile(program, script);
    fs::permissions(program, fs::perms(0755));
    return HookInvocation{
        "test_hook", program, dir_.path(), {{"FABU_VERSION", "V1.0.0.0"}}, timeout};
  }

  TempDir dir_;
  ProcessHookRunner runner_;
};

// True once `pid` is gone or a zombie nobody reaped yet (dead either way).
bool ProcessIsDead(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return true;
  std::string line;
  std::getline(stat, line);
  const auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
}

TEST_F(HookRunnerTest, ReportsExitStatusAndJoinedOutput) {
  auto result = runner_.Run(Hook("#!/bin/sh\necho out\necho err >&2\nexit 3\n"));
  ASSERT_TRUE(result) << result.error().message();
  EXPECT_FALSE(result->ok());
  EXPECT_EQ(result->exit_code, 3);
  EXPECT_EQ(result->output_tail, "out\nerr\n");
  EXPECT_EQ(result->Describe(), "exited with status 3");
}

TEST_F(HookRunnerTest, RunsInTheGivenDirectoryWithItsEnvironment) {
  ::setenv("FABU_APP", "inherited-must-not-leak", 1);
  auto result = runner_.Run(Hook("#!/bin/sh\npwd\necho \"[$FABU_VERSION][$FABU_APP]\"\n"));
  ::unsetenv("FABU_APP");
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok());
  EXPECT_EQ(result->output_tail, fs::canonical(dir_.path()).string() + "\n[V1.0.0.0][]\n");
}

TEST_F(HookRunnerTest, KeepsOnlyTheLastFourKiBOfOutput) {
  auto result = runner_.Run(Hook("#!/bin/sh\nhead -c 100000 /dev/zero | tr '\\0' a\necho TAIL\n"));
  ASSERT_TRUE(result);
  EXPECT_EQ(result->output_bytes, 100005u);
  EXPECT_EQ(result->output_tail.size(), kHookOutputTail);
  EXPECT_TRUE(result->output_tail.ends_with("aaTAIL\n"));
}

TEST_F(HookRunnerTest, HungHookIsKilledWithItsWholeProcessGroup) {
  const fs::path pid_file = dir_.path() / "child.pid";
  auto result = runner_.Run(
      Hook("#!/bin/sh\nsleep 300 &\necho $! > " + pid_file.string() + "\necho started\nsleep 300\n",
           std::chrono::milliseconds(500)));
  ASSERT_TRUE(result) << result.error().message();
  EXPECT_TRUE(result->timed_out);
  EXPECT_FALSE(result->ok());
  EXPECT_LT(result->elapsed, std::chrono::seconds(10));
  EXPECT_EQ(result->output_tail, "started\n");
  EXPECT_EQ(result->Describe(), "timed out after 500ms and was killed with its process group");

  // The hook's own child, left in the background, died with the group.
  const pid_t child = std::stoi(ReadFile(pid_file));
  EXPECT_TRUE(fabu::testing::WaitUntil([&] { return ProcessIsDead(child); },
                                       std::chrono::seconds(10), std::chrono::milliseconds(10)))
      << "pid " << child;
}

TEST_F(HookRunnerTest, HookThatLeavesAChildBehindStillEndsWhenItExits) {
  const fs::path pid_file = dir_.path() / "child.pid";
  auto result = runner_.Run(
      Hook("#!/bin/sh\nsleep 5 &\necho $! > " + pid_file.string() + "\necho done\nexit 0\n"));
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok());
  EXPECT_LT(result->elapsed, std::chrono::seconds(4));
  ::kill(std::stoi(ReadFile(pid_file)), SIGKILL);
}

TEST_F(HookRunnerTest, ArgumentsAreNeverInterpretedByAShell) {
  // A hook whose name a shell would split and expand runs as one file.
  const fs::path program = dir_.path() / "hook; touch pwned $(touch pwned2)";
  WriteFile(program, "#!/bin/sh\necho ran\n");
  fs::permissions(program, fs::perms(0755));
  auto result = runner_.Run({"odd", program, dir_.path(), {}, std::chrono::seconds(30)});
  ASSERT_TRUE(result) << result.error().message();
  EXPECT_EQ(result->output_tail, "ran\n");
  EXPECT_FALSE(fs::exists(dir_.path() / "pwned"));
  EXPECT_FALSE(fs::exists(dir_.path() / "pwned2"));
}

TEST_F(HookRunnerTest, NonExecutableHookIsAnErrorNamingIt) {
  auto invocation = Hook("#!/bin/sh\nexit 0\n");
  fs::permissions(invocation.program, fs::perms(0644));
  auto result = runner_.Run(invocation);
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().message().find("test_hook"), std::string::npos);
}

TEST(OutputTailTest, KeepsTheLastBytesAcrossAppends) {
  OutputTail tail(4);
  tail.Append("ab");
  tail.Append("cde");
  EXPECT_EQ(tail.text(), "bcde");
  tail.Append("123456");
  EXPECT_EQ(tail.text(), "3456");
  EXPECT_EQ(tail.total(), 11u);
}

}  // namespace
}  // namespace fabu::agent::testing
