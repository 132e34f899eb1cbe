// The release workflow speaks of instants and durations as the protocol
// defines them (protocol/timestamp.hpp); these names bring them in.
#pragma once

#include <cstdint>

#include "protocol/timestamp.hpp"

namespace fabu::coordinator::release {

using protocol::FormatDuration;
using protocol::FormatRfc3339Utc;
using protocol::ParseDuration;
using protocol::ParseRfc3339;
using protocol::Timestamp;
using protocol::UnixSeconds;

// The instant a workflow step happens, to the millisecond: the history keeps
// the milliseconds, so a review that took 300 ms averages 0.3 s in the report,
// not "n/a". It reads as whole seconds everywhere else (windows, deadlines),
// and whole seconds convert to it, so a caller without a finer clock passes
// UnixSeconds.
struct Instant {
  std::int64_t unix_ms = 0;

  constexpr Instant() = default;
  // NOLINTNEXTLINE(google-explicit-constructor): whole seconds are an instant.
  constexpr Instant(UnixSeconds seconds) : unix_ms(seconds * 1000) {}
  static constexpr Instant FromMillis(std::int64_t ms) {
    Instant at;
    at.unix_ms = ms;
    return at;
  }
  // NOLINTNEXTLINE(google-explicit-constructor): read as whole seconds.
  constexpr operator UnixSeconds() const {
    return unix_ms >= 0 ? unix_ms / 1000 : -((-unix_ms + 999) / 1000);
  }
};

}  // namespace fabu::coordinator::release
