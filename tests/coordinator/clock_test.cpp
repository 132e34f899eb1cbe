// NowUtc: the coordinator's timestamps (common/clock.hpp).
#include "coordinator/common/clock.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <regex>
#include <string>

#include "protocol/timestamp.hpp"

namespace fabu::coordinator {
namespace {

TEST(NowUtcTest, IsRfc3339UtcWithMilliseconds) {
  const std::regex format(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)");
  std::string previous;
  for (int i = 0; i < 1000; ++i) {
    const std::string now = NowUtc();
    ASSERT_TRUE(std::regex_match(now, format)) << now;
    EXPECT_GE(now, previous);  // the same length: text order is time order
    previous = now;
  }
}

TEST(NowUtcTest, IsTheSystemClocksTime) {
  // Given the system clock read around the call, we should show a second
  // between the two (the cached prefix is not stale).
  const auto before = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  const std::string now = NowUtc();
  const auto after = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  const std::string second = now.substr(0, 19) + "Z";
  EXPECT_TRUE(second == protocol::FormatRfc3339Utc(before.time_since_epoch().count()) ||
              second == protocol::FormatRfc3339Utc(after.time_since_epoch().count()))
      << now;
}

}  // namespace
}  // namespace fabu::coordinator
