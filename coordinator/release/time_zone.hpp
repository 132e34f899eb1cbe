// An IANA time zone read from the system's tz database (/usr/share/zoneinfo,
// Debian's `tzdata`), for the periods of the records (issue 6 §1: "periods
// follow the coordinator's configured time zone").
//
// Why not the C library: localtime_r honours only the process-wide TZ
// variable, and changing it (setenv + tzset) races with every other thread;
// std::chrono::zoned_time is not in libstdc++ 12. So the TZif file is parsed
// here (RFC 8536): its 64-bit transition table gives the UTC offset at any
// instant. Past the last transition the last offset holds; Debian's zone
// files are built "fat" (transitions listed up to 2037), so the POSIX rule
// in the footer is not needed for the dates fabu reports on.
//
// A TimeZone is an immutable value once loaded; thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/release/timestamp.hpp"
#include "protocol/error.hpp"

namespace fabu::coordinator::release {

inline constexpr std::string_view kDefaultTimeZone = "Asia/Shanghai";
inline constexpr std::string_view kZoneInfoDir = "/usr/share/zoneinfo";

// A calendar date in a time zone.
struct CivilDate {
  int year = 1970;
  unsigned month = 1;  // 1..12
  unsigned day = 1;    // 1..31
  friend bool operator==(const CivilDate&, const CivilDate&) = default;
};

class TimeZone {
 public:
  // "UTC", no file needed.
  static TimeZone Utc();
  // Loads NAME ("Asia/Shanghai") from `dir`. kInvalidArgument for a name
  // that is not a zone name (absolute, "..", odd characters), kNotFound when
  // the database has no such zone, kIntegrity for a file that is not TZif.
  static Result<TimeZone> Load(std::string_view name,
                               const std::filesystem::path& dir = kZoneInfoDir);
  // Parses the bytes of a TZif file (for tests and Load).
  static Result<TimeZone> FromTzif(std::string name, std::string_view bytes);

  const std::string& name() const { return name_; }
  // Seconds east of UTC at instant `utc`.
  std::int32_t OffsetAt(UnixSeconds utc) const;
  // The instant local midnight starts `date` (DST gaps at midnight move it on).
  UnixSeconds StartOfDay(CivilDate date) const;
  // The local calendar date of instant `utc`.
  CivilDate DateOf(UnixSeconds utc) const;
  // "2026-03-01 08:00 +08:00"
  std::string FormatLocal(UnixSeconds utc) const;

 private:
  std::string name_;
  std::vector<std::int64_t> transitions_;  // ascending UTC instants
  std::vector<std::int32_t> offsets_;      // offset from each transition on
  std::int32_t initial_offset_ = 0;        // before the first transition
};

// Days since 1970-01-01 of a proleptic Gregorian date, and back.
std::int64_t DaysFromCivil(CivilDate date);
CivilDate CivilFromDays(std::int64_t days);
// "YYYY-MM-DD", checked (month 1-12, the day exists). kInvalidArgument naming the text.
Result<CivilDate> ParseCivilDate(std::string_view text);
std::string FormatCivilDate(CivilDate date);
// The first day of the month `months` after (or before, when negative) `date`'s month.
CivilDate AddMonths(CivilDate date, int months);

}  // namespace fabu::coordinator::release
