#include "agent/common/clock.hpp"

#include <thread>

namespace fabu::agent {

protocol::UnixSeconds SystemClock::Now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void SystemClock::SleepFor(std::chrono::milliseconds duration) {
  std::this_thread::sleep_for(duration);
}

}  // namespace fabu::agent
