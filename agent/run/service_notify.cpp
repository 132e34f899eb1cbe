#include "agent/run/service_notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <string>

namespace fabu::agent {

namespace {

std::optional<std::uint64_t> EnvNumber(const char* name) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return std::nullopt;
  std::uint64_t value = 0;
  const char* end = text + std::strlen(text);
  auto [ptr, ec] = std::from_chars(text, end, value);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

}  // namespace

bool NotifyServiceManager(std::string_view state) {
  const char* socket_path = std::getenv("NOTIFY_SOCKET");
  if (socket_path == nullptr || *socket_path == '\0') return false;
  const std::string_view path(socket_path);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  // "@name" is an abstract socket: a leading NUL byte instead of the '@'.
  if (path.size() >= sizeof(address.sun_path) || (path[0] != '/' && path[0] != '@')) return false;
  std::memcpy(address.sun_path, path.data(), path.size());
  if (path[0] == '@') address.sun_path[0] = '\0';
  const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const ssize_t sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                                reinterpret_cast<const sockaddr*>(&address), length);
  ::close(fd);
  return sent == static_cast<ssize_t>(state.size());
}

std::optional<std::chrono::microseconds> ServiceWatchdogInterval() {
  const auto usec = EnvNumber("WATCHDOG_USEC");
  if (!usec || *usec == 0) return std::nullopt;
  // Meant for another process of the service (systemd sets the main pid).
  if (const auto pid = EnvNumber("WATCHDOG_PID");
      pid && *pid != static_cast<std::uint64_t>(::getpid())) {
    return std::nullopt;
  }
  return std::chrono::microseconds(*usec);
}

}  // namespace fabu::agent
