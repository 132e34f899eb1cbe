#include "coordinator/release/time_zone.hpp"

#include <fmt/format.h>
#include <unicode/timezone.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <cctype>

namespace fabu::coordinator::release {
namespace {

// Zone names as the tz database spells them; nothing that could be a path out.
bool ValidZoneName(std::string_view name) {
  if (name.empty() || name.front() == '/' || name.find("..") != std::string_view::npos) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '/' || ch == '_' || ch == '-' ||
           ch == '+';
  });
}

}  // namespace

std::int64_t DaysFromCivil(CivilDate date) {
  // H. Hinnant, "chrono-Compatible Low-Level Date Algorithms".
  const std::int64_t y = static_cast<std::int64_t>(date.year) - (date.month <= 2 ? 1 : 0);
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const std::int64_t yoe = y - era * 400;
  const std::int64_t m = date.month;
  const std::int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + date.day - 1;
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

CivilDate CivilFromDays(std::int64_t days) {
  days += 719468;
  const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const std::int64_t doe = days - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  const std::int64_t d = doy - (153 * mp + 2) / 5 + 1;
  const std::int64_t m = mp < 10 ? mp + 3 : mp - 9;
  const std::int64_t y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  return CivilDate{static_cast<int>(y), static_cast<unsigned>(m), static_cast<unsigned>(d)};
}

Result<CivilDate> ParseCivilDate(std::string_view text) {
  auto bad = [&] {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("\"{}\" is not a date: write YYYY-MM-DD", text));
  };
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return bad();
  for (std::size_t i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return bad();
  }
  CivilDate date{std::stoi(std::string(text.substr(0, 4))),
                 static_cast<unsigned>(std::stoi(std::string(text.substr(5, 2)))),
                 static_cast<unsigned>(std::stoi(std::string(text.substr(8, 2))))};
  if (date.month < 1 || date.month > 12 || date.day < 1 ||
      CivilFromDays(DaysFromCivil(date)) != date) {
    return bad();
  }
  return date;
}

Result<Timestamp> ParseTimeArgument(std::string_view text, const TimeZone& zone) {
  const bool date_only = text.size() == 10 && text.find('T') == std::string_view::npos;
  if (date_only) {
    if (auto date = ParseCivilDate(text)) {
      const UnixSeconds at = zone.StartOfDay(*date);
      const std::int32_t offset = zone.OffsetAt(at);
      const UnixSeconds local = at + offset;
      const std::int64_t days = local >= 0 ? local / 86400 : (local - 86399) / 86400;
      const std::int64_t in_day = local - days * 86400;
      const std::int32_t east = offset < 0 ? -offset : offset;
      return Timestamp{
          at, fmt::format("{}T{:02}:{:02}:{:02}{}{:02}:{:02}", FormatCivilDate(CivilFromDays(days)),
                          in_day / 3600, in_day / 60 % 60, in_day % 60, offset < 0 ? '-' : '+',
                          east / 3600, east / 60 % 60)};
    }
  } else if (auto parsed = ParseRfc3339(text)) {
    return parsed;
  }
  return Fail(ErrorCode::kInvalidArgument,
              fmt::format("\"{}\" is not a time: write a date, e.g. 2026-12-01 (the start of "
                          "that day in {}), or an RFC 3339 time with its offset, e.g. "
                          "2026-12-01T20:00:00+08:00",
                          text, zone.name()));
}

std::string FormatCivilDate(CivilDate date) {
  return fmt::format("{:04}-{:02}-{:02}", date.year, date.month, date.day);
}

CivilDate AddMonths(CivilDate date, int months) {
  const int index = date.year * 12 + static_cast<int>(date.month) - 1 + months;
  const int year = index >= 0 ? index / 12 : (index - 11) / 12;
  return CivilDate{year, static_cast<unsigned>(index - year * 12 + 1), 1};
}

TimeZone TimeZone::Utc() {
  TimeZone zone;
  zone.name_ = "UTC";
  return zone;
}

struct TimeZone::Zone {
  std::unique_ptr<icu::TimeZone> icu;
};

Result<TimeZone> TimeZone::Load(std::string_view name) {
  if (name == "UTC") return Utc();
  if (!ValidZoneName(name)) {
    return Fail(
        ErrorCode::kInvalidArgument,
        fmt::format("time_zone: \"{}\" is not an IANA zone name (e.g. Asia/Shanghai)", name));
  }
  const icu::UnicodeString id = icu::UnicodeString::fromUTF8(
      icu::StringPiece(name.data(), static_cast<std::int32_t>(name.size())));
  std::unique_ptr<icu::TimeZone> icu_zone(icu::TimeZone::createTimeZone(id));
  if (!icu_zone || *icu_zone == icu::TimeZone::getUnknown()) {
    return Fail(ErrorCode::kNotFound,
                fmt::format("time_zone: no zone \"{}\" in the tz database", name));
  }
  TimeZone zone;
  zone.name_ = std::string(name);
  zone.zone_ = std::make_shared<const Zone>(Zone{std::move(icu_zone)});
  return zone;
}

std::int32_t TimeZone::OffsetAt(UnixSeconds utc) const {
  if (!zone_) return 0;
  std::int32_t raw = 0, dst = 0;
  UErrorCode status = U_ZERO_ERROR;
  zone_->icu->getOffset(static_cast<UDate>(utc) * 1000.0, /*local=*/false, raw, dst, status);
  if (U_FAILURE(status)) return 0;  // only for dates ICU cannot represent
  return (raw + dst) / 1000;
}

UnixSeconds TimeZone::StartOfDay(CivilDate date) const {
  const UnixSeconds local = DaysFromCivil(date) * 86400;
  // Guess with the offset at the local reading, then correct once with the
  // offset at the instant found (enough for one transition near midnight).
  UnixSeconds utc = local - OffsetAt(local);
  utc = local - OffsetAt(utc);
  return utc;
}

CivilDate TimeZone::DateOf(UnixSeconds utc) const {
  const std::int64_t local = utc + OffsetAt(utc);
  std::int64_t days = local / 86400;
  if (local % 86400 < 0) --days;
  return CivilFromDays(days);
}

std::string TimeZone::FormatLocal(UnixSeconds utc) const {
  const std::int32_t offset = OffsetAt(utc);
  const std::int64_t local = utc + offset;
  std::int64_t days = local / 86400, rest = local % 86400;
  if (rest < 0) {
    --days;
    rest += 86400;
  }
  const std::int32_t magnitude = offset < 0 ? -offset : offset;
  return fmt::format("{} {:02}:{:02} {}{:02}:{:02}", FormatCivilDate(CivilFromDays(days)),
                     rest / 3600, rest % 3600 / 60, offset < 0 ? '-' : '+', magnitude / 3600,
                     magnitude % 3600 / 60);
}

}  // namespace fabu::coordinator::release
