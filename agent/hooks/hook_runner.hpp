// Running a package's hook executables (pre_install, post_install, activate,
// health_check, rollback).
//
// A hook is exec'd directly (no shell, so nothing in a path or a variable is
// ever interpreted), in its own process group, with stdin on /dev/null and
// stdout and stderr joined into one pipe. Its environment is the agent's,
// minus any inherited FABU_* variable, plus the ones the invocation names.
// When the timeout passes, the whole process group is killed with SIGKILL, so
// a child the hook left behind dies with it. The result keeps the last
// `kHookOutputTail` bytes of the output at most, as valid UTF-8 cut on a
// character boundary (ill-formed bytes replaced by U+FFFD), since it goes
// into an event's JSON.
//
// Hooks die with the agent. While a hook runs, its process group is listed
// where a signal handler can find it: `fabu-agent install`, `rollback` and
// `recover` (KillHooksOnTermination) kill every running hook's whole group
// when they are interrupted (SIGINT, SIGTERM, SIGHUP), then end as the
// signal would have ended them. The hook itself also gets SIGKILL when the
// agent dies without a word (SIGKILL, a crash): PR_SET_PDEATHSIG, set
// between fork and exec. Children the hook left running get that only
// through the group, so after a SIGKILL of the agent they are the one thing
// that can outlive it. A hook that has exited is no longer listed: what it
// started on purpose (a service) is left alone.
//
// HookRunner is the seam for tests; ProcessHookRunner is the real one. A
// runner is used by one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "protocol/error.hpp"

namespace fabu::agent {

inline constexpr std::size_t kHookOutputTail = 4096;

struct HookInvocation {
  std::string name;                                      // "health_check", for messages
  std::filesystem::path program;                         // the executable, absolute
  std::filesystem::path working_dir;                     // the release (or staging) directory
  std::vector<std::pair<std::string, std::string>> env;  // FABU_* for the hook
  std::chrono::milliseconds timeout{300'000};
};

struct HookResult {
  int exit_code = -1;  // when it exited
  int signal = 0;      // when a signal ended it (SIGKILL after a timeout)
  bool timed_out = false;
  std::string output_tail;  // last kHookOutputTail bytes of stdout+stderr at most, valid UTF-8
  std::uint64_t output_bytes = 0;
  std::chrono::milliseconds elapsed{0};
  std::chrono::milliseconds timeout{0};  // the limit it ran under

  bool ok() const { return !timed_out && signal == 0 && exit_code == 0; }
  // "exited with status 3", "killed by signal 9", "timed out after 1s and was killed".
  std::string Describe() const;
};

// Kills the process group of every hook running in this process (SIGKILL).
// Async-signal-safe.
void KillRunningHooks();

// Handlers for SIGINT, SIGTERM and SIGHUP that kill the running hooks'
// groups, then let the signal end the process as it would have.
Result<void> KillHooksOnTermination();

class HookRunner {
 public:
  virtual ~HookRunner() = default;
  // Fails only when the hook could not be started (not executable, bad
  // format); a hook that runs and fails is a HookResult with !ok().
  virtual Result<HookResult> Run(const HookInvocation& invocation) = 0;
};

class ProcessHookRunner final : public HookRunner {
 public:
  Result<HookResult> Run(const HookInvocation& invocation) override;
};

// Keeps the last `limit` bytes of a growing output.
class OutputTail {
 public:
  explicit OutputTail(std::size_t limit = kHookOutputTail) : limit_(limit) {}
  void Append(std::string_view data);
  // The bytes kept, as they came.
  const std::string& text() const { return text_; }
  // What an event may carry: at most `limit` bytes of valid UTF-8, starting
  // on a character boundary when the front was cut, ill-formed sequences
  // replaced by U+FFFD.
  std::string Utf8Text() const;
  std::uint64_t total() const { return total_; }

 private:
  std::size_t limit_;
  std::string text_;
  std::uint64_t total_ = 0;
};

}  // namespace fabu::agent
