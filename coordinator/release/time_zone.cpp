#include "coordinator/release/time_zone.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

namespace fabu::coordinator::release {
namespace {

// Big-endian reads from a TZif buffer, bounds checked by the caller.
std::int64_t ReadBe(std::string_view bytes, std::size_t at, std::size_t width) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < width; ++i) {
    value = (value << 8) | static_cast<unsigned char>(bytes[at + i]);
  }
  if (width == 4) return static_cast<std::int32_t>(static_cast<std::uint32_t>(value));
  return static_cast<std::int64_t>(value);
}

struct TzifCounts {
  std::size_t isut = 0, isstd = 0, leap = 0, time = 0, type = 0, chars = 0;
  std::size_t DataSize(std::size_t time_width) const {
    return time * time_width + time + type * 6 + chars + leap * (time_width + 4) + isstd + isut;
  }
};

Result<TzifCounts> ReadHeader(std::string_view bytes, std::size_t at, const std::string& name) {
  if (bytes.size() < at + 44 || bytes.substr(at, 4) != "TZif") {
    return Fail(ErrorCode::kIntegrity, fmt::format("time zone {}: not a TZif file", name));
  }
  TzifCounts c;
  c.isut = static_cast<std::size_t>(ReadBe(bytes, at + 20, 4));
  c.isstd = static_cast<std::size_t>(ReadBe(bytes, at + 24, 4));
  c.leap = static_cast<std::size_t>(ReadBe(bytes, at + 28, 4));
  c.time = static_cast<std::size_t>(ReadBe(bytes, at + 32, 4));
  c.type = static_cast<std::size_t>(ReadBe(bytes, at + 36, 4));
  c.chars = static_cast<std::size_t>(ReadBe(bytes, at + 40, 4));
  if (c.type == 0) {
    return Fail(ErrorCode::kIntegrity, fmt::format("time zone {}: no local time types", name));
  }
  return c;
}

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

Result<TimeZone> TimeZone::Load(std::string_view name, const std::filesystem::path& dir) {
  if (name == "UTC") return Utc();
  if (!ValidZoneName(name)) {
    return Fail(
        ErrorCode::kInvalidArgument,
        fmt::format("time_zone: \"{}\" is not an IANA zone name (e.g. Asia/Shanghai)", name));
  }
  const std::filesystem::path path = dir / std::string(name);
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Fail(
        ErrorCode::kNotFound,
        fmt::format("time_zone: no zone \"{}\" in {} (is tzdata installed?)", name, dir.string()));
  }
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return FromTzif(std::string(name), bytes.str());
}

Result<TimeZone> TimeZone::FromTzif(std::string name, std::string_view bytes) {
  auto v1 = ReadHeader(bytes, 0, name);
  if (!v1) return std::unexpected(v1.error());
  std::size_t at = 44;
  std::size_t width = 4;
  TzifCounts counts = *v1;
  if (bytes[4] >= '2') {
    // Skip the 32-bit block; the 64-bit one follows with its own header.
    at += v1->DataSize(4);
    auto v2 = ReadHeader(bytes, at, name);
    if (!v2) return std::unexpected(v2.error());
    counts = *v2;
    at += 44;
    width = 8;
  }
  if (bytes.size() < at + counts.DataSize(width)) {
    return Fail(ErrorCode::kIntegrity, fmt::format("time zone {}: truncated TZif file", name));
  }
  std::vector<std::int32_t> type_offsets(counts.type);
  const std::size_t types_at = at + counts.time * width + counts.time;
  for (std::size_t i = 0; i < counts.type; ++i) {
    type_offsets[i] = static_cast<std::int32_t>(ReadBe(bytes, types_at + i * 6, 4));
  }
  TimeZone zone;
  zone.name_ = std::move(name);
  // RFC 8536 §3.2: before the first transition, local time type 0 applies.
  zone.initial_offset_ = type_offsets[0];
  for (std::size_t i = 0; i < counts.time; ++i) {
    const std::size_t index = static_cast<unsigned char>(bytes[at + counts.time * width + i]);
    if (index >= counts.type) {
      return Fail(ErrorCode::kIntegrity,
                  fmt::format("time zone {}: transition {} names no type", zone.name_, i));
    }
    zone.transitions_.push_back(ReadBe(bytes, at + i * width, width));
    zone.offsets_.push_back(type_offsets[index]);
  }
  return zone;
}

std::int32_t TimeZone::OffsetAt(UnixSeconds utc) const {
  auto it = std::upper_bound(transitions_.begin(), transitions_.end(), utc);
  if (it == transitions_.begin()) return initial_offset_;
  return offsets_[static_cast<std::size_t>(it - transitions_.begin() - 1)];
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
