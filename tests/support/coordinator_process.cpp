#include "tests/support/coordinator_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "tests/support/temp_dir.hpp"
#include "tests/support/test_store.hpp"

extern char** environ;

namespace fabu::testing {
namespace {

using Clock = std::chrono::steady_clock;

int MillisLeft(Clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

// Waits for `pid` to exit until `deadline`; returns true and the status when
// it did. Uses a pidfd so the wait is an event, not a polling loop.
bool WaitForExit(pid_t pid, Clock::time_point deadline, int& status) {
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd >= 0) {
    pollfd fd{pidfd, POLLIN, 0};
    int ready = 0;
    do {
      ready = poll(&fd, 1, MillisLeft(deadline));
    } while (ready < 0 && errno == EINTR);
    close(pidfd);
    if (ready <= 0) return false;
  }
  pid_t done = 0;
  do {
    done = waitpid(pid, &status, 0);
  } while (done < 0 && errno == EINTR);
  return done == pid;
}

}  // namespace

std::string CoordinatorBinary() { return FABU_COORDINATOR_PATH; }

CommandResult InitCoordinator(const std::filesystem::path& data,
                              const std::vector<std::string>& args) {
  std::vector<std::string> argv{CoordinatorBinary(), "init", "--data", data.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  // The tests play agents with HTTP clients that enroll without a CSR (and
  // then use their credential alone), so their coordinators take hosts
  // without a certificate unless the test says otherwise; the mutual-TLS
  // tests set "required" themselves (tests/e2e/mtls_e2e_test.cpp).
  if (std::find(args.begin(), args.end(), "--agent-certificates") == args.end()) {
    argv.insert(argv.end(), {"--agent-certificates", "optional"});
  }
  // The store in a new PostgreSQL database when FABU_TEST_STORE says so.
  if (std::find(args.begin(), args.end(), "--store-url") == args.end()) {
    for (std::string& arg : TestStoreInitArgs()) argv.push_back(std::move(arg));
  }
  return RunCommand(argv);
}

CommandResult TrustNewPublisher(const std::filesystem::path& dir,
                                const std::filesystem::path& data) {
  auto keys = Fabu({"keygen", "--out", (dir / "publisher").string()});
  if (keys.exit_code != 0) return keys;
  return RunCommand({CoordinatorBinary(), "trust", "add", "--data", data.string(),
                     (dir / "publisher.pub").string()});
}

std::string LastLine(const std::string& text) {
  std::size_t end = text.size();
  while (end > 0 && text[end - 1] == '\n') --end;
  const std::size_t start = text.rfind('\n', end == 0 ? 0 : end - 1);
  return text.substr(start == std::string::npos ? 0 : start + 1,
                     end - (start == std::string::npos ? 0 : start + 1));
}

CoordinatorProcess::CoordinatorProcess(std::filesystem::path data,
                                       std::chrono::seconds startup_deadline,
                                       const std::vector<std::string>& serve_args)
    : data_(std::move(data)) {
  std::array<int, 2> out{};
  if (pipe2(out.data(), O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  const std::string log_path = (data_ / "serve.log").string();

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_addopen(&actions, 2, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                   0644);
  std::vector<std::string> argv{CoordinatorBinary(), "serve",    "--data",
                                data_.string(),      "--listen", "127.0.0.1:0"};
  argv.insert(argv.end(), serve_args.begin(), serve_args.end());
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  const int rc = posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  if (rc != 0) {
    close(out[0]);
    pid_ = -1;
    startup_output_ = std::string("spawn failed: ") + std::strerror(rc);
    return;
  }
  stdout_fd_ = out[0];

  // Read stdout until the "listening on" line, the daemon's exit, or the deadline.
  const auto deadline = Clock::now() + startup_deadline;
  constexpr std::string_view kMarker = "listening on https://127.0.0.1:";
  char buffer[4096];
  while (MillisLeft(deadline) > 0) {
    const std::size_t at = startup_output_.find(kMarker);
    if (at != std::string::npos && startup_output_.find('\n', at) != std::string::npos) {
      port_ = std::stoi(startup_output_.substr(at + kMarker.size()));
      return;
    }
    pollfd fd{stdout_fd_, POLLIN, 0};
    const int ready = poll(&fd, 1, MillisLeft(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) break;
    const ssize_t n = read(stdout_fd_, buffer, sizeof buffer);
    if (n <= 0) break;  // the daemon exited
    startup_output_.append(buffer, static_cast<std::size_t>(n));
  }
}

CoordinatorProcess::~CoordinatorProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  if (stdout_fd_ >= 0) close(stdout_fd_);
}

std::string CoordinatorProcess::url() const { return "https://127.0.0.1:" + std::to_string(port_); }

std::string CoordinatorProcess::log() const {
  return startup_output_ + ReadFile(data_ / "serve.log");
}

int CoordinatorProcess::Stop(std::chrono::seconds deadline) {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int status = 0;
  const bool exited = WaitForExit(pid_, Clock::now() + deadline, status);
  if (!exited) {
    kill(pid_, SIGKILL);
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return -1;
  }
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::vector<std::string> CoordinatorProcess::ClientEnv(const std::string& token) const {
  return {"FABU_SERVER=" + url(), "FABU_CA=" + ca().string(), "FABU_TOKEN=" + token};
}

CommandResult FabuAs(const CoordinatorProcess& coordinator, const std::string& token,
                     const std::vector<std::string>& args) {
  std::vector<std::string> argv{FabuCli()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, {}, std::chrono::seconds(120), coordinator.ClientEnv(token));
}

}  // namespace fabu::testing
