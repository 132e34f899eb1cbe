#include "tests/support/wait.hpp"

#include <thread>

namespace fabu::testing {

bool WaitUntil(const std::function<bool()>& condition, std::chrono::milliseconds deadline,
               std::chrono::milliseconds every) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < until) {
    if (condition()) return true;
    // Between checks, not instead of one: a check may run a CLI.
    std::this_thread::sleep_for(every);
  }
  return condition();
}

}  // namespace fabu::testing
