// An IANA time zone, for the periods of the records (periods
// follow the coordinator's configured time zone) and the times a reader
// sees.
//
// Why not the C library: localtime_r honours only the process-wide TZ
// variable, and changing it (setenv + tzset) races with every other thread;
// std::chrono::zoned_time is not in libstdc++ 12. ICU's time zones (its own
// copy of the tz database) answer the offset at any instant, DST included,
// from any thread.
//
// A TimeZone is an immutable value once loaded; thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/release/timestamp.hpp"
#include "protocol/error.hpp"

namespace fabu::coordinator::release {

inline constexpr std::string_view kDefaultTimeZone = "Asia/Shanghai";

// A calendar date in a time zone.
struct CivilDate {
  int year = 1970;
  unsigned month = 1;  // 1..12
  unsigned day = 1;    // 1..31
  friend bool operator==(const CivilDate&, const CivilDate&) = default;
};

class TimeZone {
 public:
  // "UTC".
  static TimeZone Utc();
  // NAME ("Asia/Shanghai"). kInvalidArgument for a name that is not a zone
  // name (absolute, "..", odd characters), kNotFound when the tz database
  // has no such zone.
  static Result<TimeZone> Load(std::string_view name);

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
  struct Zone;  // ICU's, kept out of this header
  std::string name_;
  std::shared_ptr<const Zone> zone_;  // null: UTC
};

// A time a person typed on the command line: an RFC 3339 time with its
// offset ("2026-12-01T20:00:00+08:00"), or a date ("2026-12-01") read as the
// start of that day in `zone`, kept as the RFC 3339 text of that instant
// with the zone's offset. The error names the text and shows one example of
// each; callers add the field's name.
Result<Timestamp> ParseTimeArgument(std::string_view text, const TimeZone& zone);

// Days since 1970-01-01 of a proleptic Gregorian date, and back.
std::int64_t DaysFromCivil(CivilDate date);
CivilDate CivilFromDays(std::int64_t days);
// "YYYY-MM-DD", checked (month 1-12, the day exists). kInvalidArgument naming the text.
Result<CivilDate> ParseCivilDate(std::string_view text);
std::string FormatCivilDate(CivilDate date);
// The first day of the month `months` after (or before, when negative) `date`'s month.
CivilDate AddMonths(CivilDate date, int months);

}  // namespace fabu::coordinator::release
