#include "agent/run/stop_signal.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>

namespace fabu::agent {

namespace {

std::atomic<bool> g_stop{false};
int g_pipe[2] = {-1, -1};

extern "C" void OnStopSignal(int) {
  const int saved = errno;
  g_stop.store(true);
  const char byte = 's';
  [[maybe_unused]] const ssize_t n = ::write(g_pipe[1], &byte, 1);
  errno = saved;
}

}  // namespace

Result<StopSignal*> StopSignal::Install() {
  static StopSignal instance;
  if (g_pipe[0] >= 0) return &instance;
  if (::pipe2(g_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
    return Fail(ErrorCode::kIo, fmt::format("cannot make a pipe: {}", std::strerror(errno)));
  }
  struct sigaction action {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (int sig : {SIGTERM, SIGINT}) {
    if (::sigaction(sig, &action, nullptr) != 0) {
      return Fail(ErrorCode::kIo, fmt::format("cannot handle signal {}", sig));
    }
  }
  return &instance;
}

bool StopSignal::requested() const { return g_stop.load(); }

bool StopSignal::WaitFor(std::chrono::milliseconds duration) const {
  const auto deadline = std::chrono::steady_clock::now() + duration;
  while (!requested()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd fd{g_pipe[0], POLLIN, 0};
    ::poll(&fd, 1, static_cast<int>(std::min<long long>(left.count(), 60'000)));
  }
  return requested();
}

}  // namespace fabu::agent
