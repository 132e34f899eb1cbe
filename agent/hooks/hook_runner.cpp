#include "agent/hooks/hook_runner.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
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

// The process groups of the hooks running now (0: a free slot); read by a
// signal handler, so only lock-free atomics.
constexpr std::size_t kMaxRunningHooks = 16;
std::array<std::atomic<pid_t>, kMaxRunningHooks> g_running_groups{};
static_assert(std::atomic<pid_t>::is_always_lock_free);

void ListRunning(pid_t group) {
  for (auto& slot : g_running_groups) {
    pid_t free = 0;
    if (slot.compare_exchange_strong(free, group)) return;
  }
  // More hooks at once than slots: this one is not killed by a signal, its
  // leader still dies with the agent (PR_SET_PDEATHSIG).
}

void UnlistRunning(pid_t group) {
  for (auto& slot : g_running_groups) {
    pid_t expected = group;
    if (slot.compare_exchange_strong(expected, 0)) return;
  }
}

extern "C" void OnTerminatingSignal(int sig) {
  const int saved = errno;
  KillRunningHooks();
  // SA_RESETHAND restored the default action: the signal, blocked while this
  // handler runs, ends the process once it returns.
  ::raise(sig);
  errno = saved;
}

std::string FormatMs(std::chrono::milliseconds ms) {
  if (ms.count() % 1000 == 0) return fmt::format("{}s", ms.count() / 1000);
  return fmt::format("{}ms", ms.count());
}

}  // namespace

void KillRunningHooks() {
  for (auto& slot : g_running_groups) {
    const pid_t group = slot.load();
    if (group > 0) ::kill(-group, SIGKILL);
  }
}

Result<void> KillHooksOnTermination() {
  struct sigaction action {};
  action.sa_handler = OnTerminatingSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESETHAND;
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    if (::sigaction(sig, &action, nullptr) != 0) {
      return Fail(ErrorCode::kIo,
                  fmt::format("cannot handle signal {}: {}", sig, std::strerror(errno)));
    }
  }
  return {};
}

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
  const std::string working_dir = invocation.working_dir.string();

  // fork and exec rather than posix_spawn, to set PR_SET_PDEATHSIG in
  // between. Everything the child uses is made before the fork: in a
  // process with threads, the child may only make async-signal-safe calls.
  // It reports a failed exec (or chdir) through `exec_pipe` as its errno.
  const int dev_null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  std::array<int, 2> exec_pipe{-1, -1};
  if (dev_null < 0 || ::pipe2(exec_pipe.data(), O_CLOEXEC) != 0) {
    const int err = errno;
    if (dev_null >= 0) ::close(dev_null);
    ::close(read_end);
    ::close(write_end);
    return Fail(ErrorCode::kIo,
                fmt::format("hook {}: cannot prepare it: {}", invocation.name, std::strerror(err)));
  }
  const pid_t agent = ::getpid();
  const auto started = Clock::now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    // A new process group led by the hook, so a timeout or the agent's end
    // can kill everything it started; SIGKILL when the agent dies.
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != agent) ::_exit(127);  // the agent died before prctl
    // Default dispositions and an empty mask for the hook.
    struct sigaction default_action {};
    default_action.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &default_action, nullptr);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(dev_null, 0);
    ::dup2(write_end, 1);
    ::dup2(write_end, 2);
    if (::chdir(working_dir.c_str()) == 0) ::execve(program.c_str(), argv.data(), envp.data());
    const int err = errno;
    [[maybe_unused]] const ssize_t n = ::write(exec_pipe[1], &err, sizeof err);
    ::_exit(127);
  }
  const int fork_errno = errno;
  ::close(dev_null);
  ::close(write_end);
  ::close(exec_pipe[1]);
  if (pid < 0) {
    ::close(exec_pipe[0]);
    ::close(read_end);
    return Fail(ErrorCode::kIo, fmt::format("hook {}: cannot start a process: {}", invocation.name,
                                            std::strerror(fork_errno)));
  }
  ::setpgid(pid, pid);  // also here: no race with a kill of the group below
  ListRunning(pid);
  int exec_errno = 0;
  ssize_t got = 0;
  do {
    got = ::read(exec_pipe[0], &exec_errno, sizeof exec_errno);
  } while (got < 0 && errno == EINTR);
  ::close(exec_pipe[0]);
  if (got == static_cast<ssize_t>(sizeof exec_errno)) {
    int ignored = 0;
    while (::waitpid(pid, &ignored, 0) < 0 && errno == EINTR) {
    }
    UnlistRunning(pid);
    ::close(read_end);
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("hook {}: cannot run {}: {}", invocation.name, program,
                            std::strerror(exec_errno)));
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
  UnlistRunning(pid);
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
