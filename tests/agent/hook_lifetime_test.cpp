// A `fabu-agent install` that is interrupted or killed takes its running hook
// with it (hook_runner.hpp): Ctrl-C or a kill ends the hook's whole process
// group; a SIGKILL of the agent still ends the hook itself.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "packaging/sha256.hpp"
#include "tests/agent/agent_fixture.hpp"
#include "tests/support/run_command.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/wait.hpp"

extern char** environ;

namespace fabu::agent::testing {
namespace {

namespace fs = std::filesystem;
using fabu::testing::Fabu;
using fabu::testing::ReadFile;
using fabu::testing::TempDir;
using fabu::testing::WriteFile;

// Running: /proc has it and it is not a zombie (a dead hook whose new parent
// has not reaped it yet is dead).
bool Alive(pid_t pid) {
  if (pid <= 0) return false;
  std::error_code ec;
  const fs::path stat = fs::path("/proc") / std::to_string(pid) / "stat";
  if (!fs::exists(stat, ec)) return false;
  const std::string text = ReadFile(stat);
  const std::size_t paren = text.rfind(')');
  return paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] != 'Z';
}

// A pid written by the hook into `file`, once it is there; 0 otherwise.
pid_t PidIn(const fs::path& file) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return 0;
  const std::string text = ReadFile(file);
  if (text.empty() || text.back() != '\n') return 0;  // not written whole yet
  return static_cast<pid_t>(std::stol(text));
}

class HookLifetimeTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    ASSERT_EQ(Fabu({"keygen", "--out", (dir_ / "publisher").string()}).exit_code, 0);
    const fs::path src = dir_ / "src";
    WriteFile(src / "app/bin/server", "#!/bin/sh\necho serving\n");
    // pre_install starts a child, says who they are, and waits forever.
    WriteFile(src / "hooks/pre_install",
              "#!/bin/sh\n"
              "sleep 300 &\n"
              "echo $! > \"$FABU_APPS_ROOT/../child.pid.tmp\"\n"
              "mv \"$FABU_APPS_ROOT/../child.pid.tmp\" \"$FABU_APPS_ROOT/../child.pid\"\n"
              "echo $$ > \"$FABU_APPS_ROOT/../hook.pid.tmp\"\n"
              "mv \"$FABU_APPS_ROOT/../hook.pid.tmp\" \"$FABU_APPS_ROOT/../hook.pid\"\n"
              "wait\n");
    fs::permissions(src / "hooks/pre_install", fs::perms(0755));
    package_ = (dir_ / "app.fabu").string();
    auto built = Fabu({"pack", "build", "--name", "c3m-video", "--version", "V1.0.0.0", "--from",
                       (src / "app").string(), "--hooks", (src / "hooks").string(), "--key",
                       (dir_ / "publisher.key").string(), "--out", package_});
    ASSERT_EQ(built.exit_code, 0) << built.err;
  }

  void TearDown() override {
    // Whatever a failed test left running, by the pids it wrote.
    for (const char* name : {"hook.pid", "child.pid"}) {
      const pid_t pid = PidIn(dir_ / name);
      if (Alive(pid)) ::kill(pid, SIGKILL);
    }
    if (agent_ > 0) {
      ::kill(agent_, SIGKILL);
      int status = 0;
      ::waitpid(agent_, &status, 0);
    }
  }

  // Starts `fabu-agent install` of the package in the background.
  void StartInstall() {
    std::vector<std::string> args = {AgentBinary(),    "install",
                                     "--trust",        (dir_ / "publisher.pub").string(),
                                     "--package",      package_,
                                     "--sha256",       *packaging::Sha256::OfFile(package_),
                                     "--data",         (dir_ / "data").string(),
                                     "--apps-root",    (dir_ / "apps").string(),
                                     "--hook-timeout", "10m"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, (dir_ / "agent.out").c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&actions, 2, (dir_ / "agent.err").c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT_EQ(::posix_spawn(&agent_, argv[0], &actions, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&actions);
  }

  // Waits for the agent to end; its wait status.
  int WaitForAgent() {
    int status = 0;
    ::waitpid(agent_, &status, 0);
    agent_ = -1;
    return status;
  }

  TempDir dir_;
  std::string package_;
  pid_t agent_ = -1;
};

// Given an install whose pre_install hook runs with a child of its own, a
// signal to the agent should end the agent, the hook and the hook's child.
TEST_P(HookLifetimeTest, AnInterruptedInstallTakesItsHookAndTheHooksChildren) {
  const int sig = GetParam();
  ASSERT_NO_FATAL_FAILURE(StartInstall());
  pid_t hook = 0, child = 0;
  ASSERT_TRUE(fabu::testing::WaitUntil(
      [&] {
        hook = PidIn(dir_ / "hook.pid");
        child = PidIn(dir_ / "child.pid");
        return hook > 0 && child > 0;
      },
      std::chrono::seconds(30)))
      << ReadFile(dir_ / "agent.err");
  ASSERT_TRUE(Alive(hook));
  ASSERT_TRUE(Alive(child));

  ASSERT_EQ(::kill(agent_, sig), 0);
  const int status = WaitForAgent();
  if (sig == SIGKILL) {
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  } else {
    // It ends as the signal would have ended it.
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == sig) << status;
  }
  EXPECT_TRUE(fabu::testing::WaitUntil([&] { return !Alive(hook); }, std::chrono::seconds(10)))
      << "the hook outlived the agent";
  if (sig != SIGKILL) {
    EXPECT_TRUE(fabu::testing::WaitUntil([&] { return !Alive(child); }, std::chrono::seconds(10)))
        << "the hook's child outlived the agent";
  }
}

INSTANTIATE_TEST_SUITE_P(Signals, HookLifetimeTest, ::testing::Values(SIGINT, SIGTERM, SIGKILL),
                         [](const ::testing::TestParamInfo<int>& param) {
                           return std::string(sigabbrev_np(param.param));
                         });

}  // namespace
}  // namespace fabu::agent::testing
