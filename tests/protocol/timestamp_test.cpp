#include "protocol/timestamp.hpp"

#include <gtest/gtest.h>

namespace fabu::protocol {
namespace {

UnixSeconds At(std::string_view text) {
  auto t = ParseRfc3339(text);
  EXPECT_TRUE(t) << text << ": " << (t ? "" : t.error().message());
  return t ? t->seconds : -1;
}

TEST(TimestampTest, ParsesRfc3339WithZones) {
  EXPECT_EQ(At("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(At("2026-12-01T01:00:00+08:00"), At("2026-11-30T17:00:00Z"));
  EXPECT_EQ(At("2026-11-30T12:00:00-05:00"), At("2026-11-30T17:00:00Z"));
  EXPECT_EQ(At("2026-11-30T17:00:00.250Z"), At("2026-11-30T17:00:00Z"));
  EXPECT_EQ(ParseRfc3339("2026-12-01T01:00:00+08:00")->text, "2026-12-01T01:00:00+08:00");
}

TEST(TimestampTest, FormatsUtc) {
  EXPECT_EQ(FormatRfc3339Utc(At("2027-06-01T00:00:00Z")), "2027-06-01T00:00:00Z");
  EXPECT_EQ(FormatRfc3339Utc(0), "1970-01-01T00:00:00Z");
}

TEST(TimestampTest, RefusesWhatIsNotRfc3339) {
  for (const char* bad :
       {"2027-06-01", "2027-06-01T00:00:00", "2027-13-01T00:00:00Z", "2027-02-30T00:00:00Z",
        "2027-06-01 00:00:00Z", "next tuesday", "2027-06-01T00:00:00+8", "2027-06-01T24:00:00Z"}) {
    auto t = ParseRfc3339(bad);
    EXPECT_FALSE(t) << bad;
    if (!t) {
      EXPECT_NE(t.error().message().find(bad), std::string::npos) << t.error().message();
    }
  }
}

TEST(DurationTest, ParsesUnitsAndZero) {
  EXPECT_EQ(ParseDuration("30s").value(), 30);
  EXPECT_EQ(ParseDuration("5m").value(), 300);
  EXPECT_EQ(ParseDuration("1h").value(), 3600);
  EXPECT_EQ(ParseDuration("0").value(), 0);
  EXPECT_FALSE(ParseDuration("5"));
  EXPECT_FALSE(ParseDuration("m"));
  EXPECT_FALSE(ParseDuration("-5m"));
  EXPECT_EQ(FormatDuration(300), "5m");
}

}  // namespace
}  // namespace fabu::protocol
