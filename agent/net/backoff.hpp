// Capped exponential backoff with jitter, for retrying a coordinator that is
// away.
//
// The n-th consecutive failure (n = 0, 1, ...) waits a delay drawn from
// [d/2, d] where d = min(cap, initial * 2^n): "equal jitter", so agents that
// lost the coordinator together do not come back in lockstep, yet each waits
// at least half the nominal delay. A success (Reset) starts over.
//
// A coordinator that is overloaded answers 503 with Retry-After: the next
// delay is then at least that long, drawn from [R, 1.5 R] so the agents it
// turned away do not all come back in the same second.
//
// The random source is injected (a function returning a value in [0, 1)), so
// tests get a deterministic schedule. A value type; not thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <optional>

namespace fabu::agent {

class Backoff {
 public:
  using Random = std::function<double()>;  // uniform in [0, 1)

  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds cap, Random random);

  // The delay to wait after one more failure; at least `retry_after` (with
  // its own jitter, above) when the server asked for one.
  std::chrono::milliseconds Next(std::optional<std::chrono::seconds> retry_after = std::nullopt);
  // After a success: the next failure waits about `initial` again.
  void Reset() { doublings_ = 0; }

  // A Random from a std::mt19937_64 seeded from std::random_device.
  static Random SystemRandom();

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds cap_;
  Random random_;
  int doublings_ = 0;  // of `initial` so far, up to the cap
};

}  // namespace fabu::agent
