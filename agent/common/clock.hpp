// Time as the agent sees it: wall-clock seconds for events and package
// expiry, and waiting between health-check attempts.
//
// One real implementation (SystemClock); tests substitute a fake so retries
// never make a test wait. Implementations must be safe to call from one
// thread at a time; the agent's deployment engine is single-threaded.
#pragma once

#include <chrono>

#include "protocol/timestamp.hpp"

namespace fabu::agent {

class Clock {
 public:
  virtual ~Clock() = default;
  // Seconds since the Unix epoch, UTC.
  virtual protocol::UnixSeconds Now() = 0;
  // Blocks the caller for `duration` (the fake returns at once).
  virtual void SleepFor(std::chrono::milliseconds duration) = 0;
};

class SystemClock final : public Clock {
 public:
  protocol::UnixSeconds Now() override;
  void SleepFor(std::chrono::milliseconds duration) override;
};

}  // namespace fabu::agent
