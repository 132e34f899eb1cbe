#include "protocol/timestamp.hpp"

#include <fmt/format.h>

#include <charconv>
#include <chrono>
#include <limits>

namespace fabu::protocol {
namespace {

// Reads exactly `width` decimal digits at `pos`.
bool ReadDigits(std::string_view text, std::size_t pos, std::size_t width, int& out) {
  if (pos + width > text.size()) return false;
  int value = 0;
  for (std::size_t i = pos; i < pos + width; ++i) {
    const char ch = text[i];
    if (ch < '0' || ch > '9') return false;
    value = value * 10 + (ch - '0');
  }
  out = value;
  return true;
}

Result<Timestamp> Bad(std::string_view text, std::string_view why) {
  return Fail(ErrorCode::kInvalidArgument, fmt::format("\"{}\" is not an RFC 3339 time with offset "
                                                       "(e.g. 2026-12-01T01:00:00+08:00): {}",
                                                       text, why));
}

}  // namespace

Result<Timestamp> ParseRfc3339(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!ReadDigits(text, 0, 4, year) || text.size() < 19 || text[4] != '-' ||
      !ReadDigits(text, 5, 2, month) || text[7] != '-' || !ReadDigits(text, 8, 2, day)) {
    return Bad(text, "date must be YYYY-MM-DD");
  }
  if (text[10] != 'T' && text[10] != 't') return Bad(text, "date and time must be joined by 'T'");
  if (!ReadDigits(text, 11, 2, hour) || text[13] != ':' || !ReadDigits(text, 14, 2, minute) ||
      text[16] != ':' || !ReadDigits(text, 17, 2, second)) {
    return Bad(text, "time must be HH:MM:SS");
  }
  const std::chrono::year_month_day date{std::chrono::year{year},
                                         std::chrono::month{static_cast<unsigned>(month)},
                                         std::chrono::day{static_cast<unsigned>(day)}};
  if (!date.ok()) return Bad(text, "no such date");
  if (hour > 23 || minute > 59 || second > 59) return Bad(text, "no such time of day");
  std::size_t pos = 19;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    const std::size_t digits_start = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
    if (pos == digits_start) return Bad(text, "a fraction needs digits after '.'");
  }
  if (pos >= text.size()) return Bad(text, "the offset (Z or +HH:MM) is missing");
  int offset_seconds = 0;
  if (text[pos] == 'Z' || text[pos] == 'z') {
    ++pos;
  } else if (text[pos] == '+' || text[pos] == '-') {
    int off_hour = 0, off_minute = 0;
    if (!ReadDigits(text, pos + 1, 2, off_hour) || pos + 3 >= text.size() || text[pos + 3] != ':' ||
        !ReadDigits(text, pos + 4, 2, off_minute) || off_hour > 23 || off_minute > 59) {
      return Bad(text, "the offset must be Z or +HH:MM / -HH:MM");
    }
    offset_seconds = (off_hour * 3600 + off_minute * 60) * (text[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return Bad(text, "the offset must be Z or +HH:MM / -HH:MM");
  }
  if (pos != text.size()) return Bad(text, "unexpected text after the offset");
  const auto days = std::chrono::sys_days{date}.time_since_epoch().count();
  const UnixSeconds local =
      static_cast<UnixSeconds>(days) * 86400 + hour * 3600 + minute * 60 + second;
  return Timestamp{local - offset_seconds, std::string(text)};
}

std::string FormatRfc3339Utc(UnixSeconds seconds) {
  const std::chrono::sys_seconds instant{std::chrono::seconds{seconds}};
  const auto days = std::chrono::floor<std::chrono::days>(instant);
  const std::chrono::year_month_day date{days};
  const std::chrono::hh_mm_ss time{instant - days};
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", static_cast<int>(date.year()),
                     static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                     time.hours().count(), time.minutes().count(), time.seconds().count());
}

Result<std::int64_t> ParseDuration(std::string_view text) {
  const auto bad = [&](std::string_view why) {
    const bool cut = text.size() > 32;
    std::string shown(text.substr(0, 32));
    for (char& ch : shown) {
      if (static_cast<unsigned char>(ch) < 0x20 || static_cast<unsigned char>(ch) >= 0x7F) ch = '?';
    }
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("\"{}{}\" is not a duration (e.g. 30s, 5m, 1h, 2d): {}", shown,
                            cut ? "..." : "", why));
  };
  if (text == "0") return 0;
  if (text.size() < 2) return bad("a number and a unit are needed");
  std::int64_t unit = 0;
  switch (text.back()) {
    case 's':
      unit = 1;
      break;
    case 'm':
      unit = 60;
      break;
    case 'h':
      unit = 3600;
      break;
    case 'd':
      unit = 86400;
      break;
    default:
      return bad("the unit must be s, m, h or d");
  }
  const std::string_view number = text.substr(0, text.size() - 1);
  for (char ch : number) {
    if (ch < '0' || ch > '9') return bad("the number must be decimal digits");
  }
  std::int64_t value = 0;
  auto [ptr, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (ec != std::errc() || ptr != number.data() + number.size() ||
      value > kMaxDurationSeconds / unit) {
    return bad(
        fmt::format("longer than the longest duration accepted, {}d", kMaxDurationSeconds / 86400));
  }
  return value * unit;
}

std::string FormatDuration(std::int64_t seconds) {
  if (seconds != 0 && seconds % 86400 == 0) return fmt::format("{}d", seconds / 86400);
  if (seconds != 0 && seconds % 3600 == 0) return fmt::format("{}h", seconds / 3600);
  if (seconds != 0 && seconds % 60 == 0) return fmt::format("{}m", seconds / 60);
  return fmt::format("{}s", seconds);
}

}  // namespace fabu::protocol
