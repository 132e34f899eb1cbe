// Waiting in tests for what a real process does in its own time.
//
// WaitUntil checks `condition` and sleeps `every` between checks, never
// spinning: on two cores a spinning wait takes the CPU from the daemon it is
// waiting for. Use it for every "poll until" in the tests.
#pragma once

#include <chrono>
#include <functional>

namespace fabu::testing {

// Checks `condition` until it holds or `deadline` passes (checking once more
// at the end); whether it held.
bool WaitUntil(const std::function<bool()>& condition,
               std::chrono::milliseconds deadline = std::chrono::seconds(60),
               std::chrono::milliseconds every = std::chrono::milliseconds(50));

}  // namespace fabu::testing
