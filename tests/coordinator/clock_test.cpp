// The coordinator's clock (common/clock.hpp): the format of the times it
// records, the system clock, and the fake clock tests move by hand.
#include "coordinator/common/clock.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <regex>
#include <string>

#include "protocol/timestamp.hpp"

namespace fabu::coordinator {
namespace {

TEST(ClockTest, UtcIsRfc3339WithMillisecondsAndTextOrderIsTimeOrder) {
  const std::regex format(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)");
  const SystemClock clock;
  std::string previous;
  for (int i = 0; i < 1000; ++i) {
    const std::string now = clock.Utc();
    ASSERT_TRUE(std::regex_match(now, format)) << now;
    EXPECT_GE(now, previous);  // the same length: text order is time order
    previous = now;
  }
}

TEST(ClockTest, TheSystemClockIsTheSystemsTime) {
  // Given the system clock read around the call, we should show a second
  // between the two (the cached prefix is not stale).
  const SystemClock clock;
  const auto before = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  const std::string now = clock.Utc();
  const auto after = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  const std::string second = now.substr(0, 19) + "Z";
  EXPECT_TRUE(second == protocol::FormatRfc3339Utc(before.time_since_epoch().count()) ||
              second == protocol::FormatRfc3339Utc(after.time_since_epoch().count()))
      << now;
}

TEST(ClockTest, AFakeClockSaysWhatItWasSetTo) {
  FakeClock clock(1'800'000'000);
  EXPECT_EQ(clock.Seconds(), 1'800'000'000);
  EXPECT_EQ(clock.Utc(), "2027-01-15T08:00:00.000Z");
  clock.Advance(std::chrono::milliseconds(1'250));
  EXPECT_EQ(clock.Utc(), "2027-01-15T08:00:01.250Z");
  EXPECT_EQ(clock.Seconds(), 1'800'000'001);
  clock.Set(1'800'000'000 - 86'400);
  EXPECT_EQ(clock.Utc(), "2027-01-14T08:00:00.000Z");  // the prefix cache follows it back
}

}  // namespace
}  // namespace fabu::coordinator
