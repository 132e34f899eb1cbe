#include "agent/hooks/hook_runner.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "agent/common/utf8.hpp"

extern char** environ;

namespace fabu::agent {

namespace {

using Clock = std::chrono::steady_clock;

// Poll tick while the hook runs: how soon an exit or a timeout is noticed
// when the hook's children keep the output pipe open.
constexpr int kTickMs = 20;

std::string FormatMs(std::chrono::milliseconds ms) {
  if (ms.count() % 1000 == 0) return fmt::format("{}s", ms.count() / 1000);
  return fmt::format("{}ms", ms.count());
}

}  // namespace

void OutputTail::Append(std::string_view data) {
  total_ += data.size();
  if (data.size() >= limit_) {
    text_.assign(data.substr(data.size() - limit_));
    return;
  }
  text_.append(data);
  if (text_.size() > limit_) text_.erase(0, text_.size() - limit_);
}

std::string OutputTail::Utf8Text() const {
  // Cut at the front: a character's first bytes may have gone.
  const std::string_view kept = total_ > text_.size() ? DropCutCharacter(text_) : text_;
  return ValidUtf8Tail(kept, limit_);
}

std::string HookResult::Describe() const {
  if (timed_out) {
    return fmt::format("timed out after {} and was killed with its process group",
                       FormatMs(timeout));
  }
  if (signal != 0) return fmt::format("killed by signal {} ({})", signal, ::strsignal(signal));
  return fmt::format("exited with status {}", exit_code);
}

Result<HookResult> ProcessHookRunner::Run(const HookInvocation& invocation) {
  std::array<int, 2> pipe_fds{};
  if (::pipe2(pipe_fds.data(), O_CLOEXEC) != 0) {
    return Fail(ErrorCode::kIo, fmt::format("hook {}: cannot create a pipe: {}", invocation.name,
                                            std::strerror(errno)));
  }
  const int read_end = pipe_fds[0];
  const int write_end = pipe_fds[1];

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, write_end, 1);
  posix_spawn_file_actions_adddup2(&actions, write_end, 2);
  posix_spawn_file_actions_addchdir_np(&actions, invocation.working_dir.c_str());

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // A new process group led by the hook, so a timeout can kill everything it
  // started; default signal dispositions and an empty mask for the hook.
  sigset_t no_signals;
  sigemptyset(&no_signals);
  sigset_t all_signals;
  sigfillset(&all_signals);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setsigmask(&attr, &no_signals);
  posix_spawnattr_setsigdefault(&attr, &all_signals);
  posix_spawnattr_setflags(
      &attr,
      static_cast<short>(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF));

  std::vector<std::string> env_storage;
  for (char** e = environ; *e != nullptr; ++e) {
    if (!std::string_view(*e).starts_with("FABU_")) env_storage.emplace_back(*e);
  }
  for (const auto& [key, value] : invocation.env) env_storage.push_back(key + "=" + value);
  std::vector<char*> envp;
  for (auto& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string program = invocation.program.string();
  std::array<char*, 2> argv{program.data(), nullptr};

  const auto started = Clock::now();
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, program.c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(write_end);
  if (rc != 0) {
    ::close(read_end);
    return Fail(
        ErrorCode::kFailedPrecondition,
        fmt::format("hook {}: cannot run {}: {}", invocation.name, program, std::strerror(rc)));
  }

  HookResult result;
  result.timeout = invocation.timeout;
  OutputTail tail;
  const auto deadline = started + invocation.timeout;
  bool pipe_open = true;
  bool exited = false;
  int status = 0;
  std::array<char, 65536> buffer{};
  while (!exited) {
    if (Clock::now() >= deadline) {
      result.timed_out = true;
      ::kill(-pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      exited = true;
      break;
    }
    if (pipe_open) {
      pollfd pfd{read_end, POLLIN, 0};
      const int ready = ::poll(&pfd, 1, kTickMs);
      if (ready > 0) {
        const ssize_t n = ::read(read_end, buffer.data(), buffer.size());
        if (n > 0) {
          tail.Append(std::string_view(buffer.data(), static_cast<std::size_t>(n)));
        } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
          pipe_open = false;
        }
      }
    } else {
      ::poll(nullptr, 0, kTickMs);
    }
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) exited = true;
  }
  // Take what the hook wrote before it ended, without waiting for children it
  // left running that still hold the pipe.
  if (pipe_open) {
    ::fcntl(read_end, F_SETFL, O_NONBLOCK);
    for (;;) {
      const ssize_t n = ::read(read_end, buffer.data(), buffer.size());
      if (n <= 0) break;
      tail.Append(std::string_view(buffer.data(), static_cast<std::size_t>(n)));
    }
  }
  ::close(read_end);

  result.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  result.output_tail = tail.Utf8Text();
  result.output_bytes = tail.total();
  return result;
}

}  // namespace fabu::agent
