// SIGTERM and SIGINT for `fabu-agent run`: the handlers only set a flag and
// write a byte to a self-pipe, so the main loop can wait "for a duration or
// until asked to stop" with poll(2) and libcurl's progress callback can
// abandon a long poll within about a second.
//
// One per process (Install sets the handlers once); the flag is safe to read
// from any thread.
#pragma once

#include <chrono>

#include "protocol/error.hpp"

namespace fabu::agent {

class StopSignal {
 public:
  // Installs the handlers (idempotent) and returns the process's StopSignal.
  static Result<StopSignal*> Install();

  bool requested() const;
  // Waits until `duration` passed or a stop was requested; true when stopping.
  bool WaitFor(std::chrono::milliseconds duration) const;

 private:
  StopSignal() = default;
};

}  // namespace fabu::agent
