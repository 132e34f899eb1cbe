// Times and durations as fabu writes them (release plans, manifests, records).
//
// An instant is kept as whole seconds since the Unix epoch (`std::int64_t`,
// UTC); that is what the workflow compares and stores. People write instants
// in RFC 3339 with an explicit offset ("2026-12-01T01:00:00+08:00" or "...Z");
// the text they wrote is kept beside the seconds so a plan reads back as it was
// written. Fractions of a second are accepted and dropped; leap seconds (":60")
// are refused.
//
// Durations are written as a whole number and one unit: "30s", "5m", "1h",
// "2d"; "0" alone means zero.
//
// Pure and thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/error.hpp"

namespace fabu::protocol {

// Seconds since 1970-01-01T00:00:00Z.
using UnixSeconds = std::int64_t;

struct Timestamp {
  UnixSeconds seconds = 0;
  std::string text;  // as written, RFC 3339 with offset

  friend bool operator==(const Timestamp&, const Timestamp&) = default;
};

// Parses RFC 3339 with a required offset (Z or ±HH:MM). The error says what
// part is wrong; callers add the field name.
Result<Timestamp> ParseRfc3339(std::string_view text);

// "2026-12-01T01:00:00Z": the UTC form of an instant, for records and exports.
std::string FormatRfc3339Utc(UnixSeconds seconds);

// The longest duration ParseDuration accepts: 3650 days. Durations are added
// to the current time (expiries, windows, timeouts); a bound keeps every such
// sum far from overflow and every resulting date a real one.
inline constexpr std::int64_t kMaxDurationSeconds = std::int64_t{3650} * 86400;

// Parses "30s", "5m", "1h", "2d" or "0" into seconds, at most
// kMaxDurationSeconds (longer is kInvalidArgument saying the bound). The
// error quotes at most the first 32 bytes of `text`.
Result<std::int64_t> ParseDuration(std::string_view text);

// The shortest exact form of a duration in seconds: 300 -> "5m", 0 -> "0s".
std::string FormatDuration(std::int64_t seconds);

}  // namespace fabu::protocol
