// The sd_notify protocol spoken without libsystemd: datagrams on
// $NOTIFY_SOCKET, the watchdog interval from $WATCHDOG_USEC / $WATCHDOG_PID.
#include "agent/run/service_notify.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "tests/support/temp_dir.hpp"

namespace fabu::agent {
namespace {

// Sets an environment variable for the scope of a test.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() { ::unsetenv(name_); }

 private:
  const char* name_;
};

TEST(ServiceNotifyTest, SendsTheStateAsOneDatagramToNotifySocket) {
  fabu::testing::TempDir dir;
  const std::string path = (dir.path() / "notify").string();
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address), 0);
  {
    ScopedEnv socket("NOTIFY_SOCKET", path);
    EXPECT_TRUE(NotifyServiceManager("READY=1"));
  }
  char buffer[64] = {};
  const ssize_t n = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
  ::close(fd);
  EXPECT_EQ(std::string(buffer, n > 0 ? static_cast<std::size_t>(n) : 0), "READY=1");
}

TEST(ServiceNotifyTest, OutsideSystemdNothingIsSent) {
  ::unsetenv("NOTIFY_SOCKET");
  EXPECT_FALSE(NotifyServiceManager("READY=1"));
  ::unsetenv("WATCHDOG_USEC");
  EXPECT_FALSE(ServiceWatchdogInterval());
}

TEST(ServiceNotifyTest, WatchdogIntervalIsForThisProcessOnly) {
  ScopedEnv usec("WATCHDOG_USEC", "30000000");
  {
    ScopedEnv pid("WATCHDOG_PID", std::to_string(::getpid()));
    EXPECT_EQ(ServiceWatchdogInterval(), std::chrono::seconds(30));
  }
  {
    ScopedEnv pid("WATCHDOG_PID", std::to_string(::getpid() + 1));
    EXPECT_FALSE(ServiceWatchdogInterval());
  }
  ScopedEnv bad("WATCHDOG_USEC", "30s");
  EXPECT_FALSE(ServiceWatchdogInterval());
}

}  // namespace
}  // namespace fabu::agent
