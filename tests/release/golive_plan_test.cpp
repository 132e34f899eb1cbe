#include "coordinator/release/golive_plan.hpp"

#include <gtest/gtest.h>

#include "coordinator/release/structured_input.hpp"

namespace fabu::coordinator::release {
namespace {

using nlohmann::json;

json Example() {
  return json::parse(
      R"({"window": {"start": "2026-12-01T01:00:00+08:00", "end": "2026-12-01T05:00:00+08:00"},
          "waves": ["1", "25%", "100%"], "max_failures": "10%",
          "between_waves": "5m", "host_timeout": "15m", "auto_rollback": true})");
}

std::string GoLiveError(const json& doc) {
  auto plan = GoLivePlanFromJson(doc);
  return plan ? std::string("parsed") : plan.error().message();
}

std::vector<HostAmount> Waves(std::initializer_list<std::string_view> texts) {
  std::vector<HostAmount> waves;
  for (auto text : texts) waves.push_back(*ParseHostAmount(text, false));
  return waves;
}

std::vector<std::uint64_t> Sizes(std::initializer_list<std::string_view> waves, std::uint64_t n) {
  auto sizes = WaveSizes(Waves(waves), n);
  EXPECT_TRUE(sizes) << (sizes ? "" : sizes.error().message());
  return sizes.value_or(std::vector<std::uint64_t>{});
}

TEST(GoLivePlanTest, ReadsTheIssueExample) {
  auto plan = GoLivePlanFromJson(Example());
  ASSERT_TRUE(plan) << plan.error().message();
  EXPECT_EQ(plan->window.start.seconds, 1796058000);  // 2026-11-30T17:00:00Z
  EXPECT_EQ(plan->window.end.seconds - plan->window.start.seconds, 4 * 3600);
  EXPECT_EQ(plan->waves, Waves({"1", "25%", "100%"}));
  EXPECT_EQ(plan->max_failures.ToString(), "10%");
  EXPECT_FALSE(plan->gate_between_waves);
  EXPECT_EQ(plan->between_waves_seconds, 300);
  EXPECT_EQ(plan->host_timeout_seconds, 900);
  EXPECT_TRUE(plan->auto_rollback);
  EXPECT_EQ(plan->observe_seconds, 0);
  EXPECT_EQ(plan->observe_interval_seconds, 0);
}

TEST(GoLivePlanTest, CanonicalJsonRoundTrips) {
  json doc = Example();
  doc["between_waves"] = "gate";
  doc["observe"] = "10m";
  doc["observe_interval"] = "30s";
  auto plan = GoLivePlanFromJson(doc);
  ASSERT_TRUE(plan) << plan.error().message();
  EXPECT_TRUE(plan->gate_between_waves);
  auto again = GoLivePlanFromJson(GoLivePlanToJson(*plan));
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *plan);
  EXPECT_EQ(*GoLiveDigest(*again), *GoLiveDigest(*plan));
}

TEST(GoLivePlanTest, WindowMustEndAfterItStarts) {
  json doc = Example();
  doc["window"]["end"] = "2026-12-01T01:00:00+08:00";
  EXPECT_EQ(GoLiveError(doc),
            "golive.window.end: must be after window.start (2026-12-01T01:00:00+08:00 is not "
            "after 2026-12-01T01:00:00+08:00)");
}

TEST(GoLivePlanTest, WindowTimesNeedAnOffset) {
  json doc = Example();
  doc["window"]["start"] = "2026-12-01T01:00:00";
  EXPECT_EQ(GoLiveError(doc).rfind("golive.window.start: \"2026-12-01T01:00:00\" is not an RFC "
                                   "3339 time",
                                   0),
            0u)
      << GoLiveError(doc);
  doc["window"]["start"] = "2026-02-30T01:00:00Z";
  EXPECT_NE(GoLiveError(doc).find("no such date"), std::string::npos);
}

TEST(GoLivePlanTest, WavesMustIncrease) {
  json doc = Example();
  doc["waves"] = {"25%", "10%", "100%"};
  EXPECT_EQ(GoLiveError(doc),
            "golive.waves[1]: 10% must be larger than the earlier wave 25% (waves are "
            "cumulative and increasing)");
  doc["waves"] = {"5", "2", "100%"};
  EXPECT_NE(GoLiveError(doc).find("golive.waves[1]: 2 must be larger than"), std::string::npos);
}

TEST(GoLivePlanTest, LastWaveMustCoverEveryTarget) {
  json doc = Example();
  doc["waves"] = {"1", "50%"};
  EXPECT_EQ(GoLiveError(doc),
            "golive.waves[1]: the last wave must cover every target: \"100%\", not \"50%\"");
}

TEST(GoLivePlanTest, WaveValuesAreCheckedOneByOne) {
  json doc = Example();
  doc["waves"] = {"1", "150%"};
  EXPECT_NE(GoLiveError(doc).find("golive.waves[1]: \"150%\""), std::string::npos)
      << GoLiveError(doc);
  doc["waves"] = {"0", "100%"};
  EXPECT_NE(GoLiveError(doc).find("golive.waves[0]:"), std::string::npos);
  doc["waves"] = {true};
  EXPECT_EQ(GoLiveError(doc),
            "golive.waves[0]: must be a count (\"3\") or a percent (\"25%\"), got a boolean");
  doc["waves"] = json::array();
  EXPECT_NE(GoLiveError(doc).find("golive.waves: needs at least one wave"), std::string::npos);
}

TEST(GoLivePlanTest, DurationsAndFlagsNameTheirField) {
  json doc = Example();
  doc["host_timeout"] = "15 minutes";
  EXPECT_NE(GoLiveError(doc).find("golive.host_timeout: \"15 minutes\" is not a duration"),
            std::string::npos);
  doc = Example();
  doc["between_waves"] = "later";
  EXPECT_NE(GoLiveError(doc).find("golive.between_waves:"), std::string::npos);
  EXPECT_NE(GoLiveError(doc).find("(or \"gate\")"), std::string::npos);
  doc = Example();
  doc["auto_rollback"] = "yes";
  EXPECT_EQ(GoLiveError(doc), "golive.auto_rollback: must be true or false, got a string");
  doc = Example();
  doc.erase("max_failures");
  EXPECT_NE(GoLiveError(doc).find("golive.max_failures: is required"), std::string::npos);
  doc = Example();
  doc["observe"] = "10m";
  EXPECT_EQ(GoLiveError(doc),
            "golive.observe_interval: must be set when observe is longer than 0 (e.g. \"30s\")");
}

TEST(DurationTest, ParsesUnits) {
  EXPECT_EQ(*ParseDuration("30s"), 30);
  EXPECT_EQ(*ParseDuration("5m"), 300);
  EXPECT_EQ(*ParseDuration("1h"), 3600);
  EXPECT_EQ(*ParseDuration("2d"), 172800);
  EXPECT_EQ(*ParseDuration("0"), 0);
  EXPECT_FALSE(ParseDuration("5"));
  EXPECT_FALSE(ParseDuration("m"));
  EXPECT_FALSE(ParseDuration("-5m"));
  EXPECT_FALSE(ParseDuration("99999999999999999999s"));
  EXPECT_EQ(FormatDuration(300), "5m");
  EXPECT_EQ(FormatDuration(90), "90s");
}

TEST(Rfc3339Test, ConvertsOffsetsToUtc) {
  EXPECT_EQ(ParseRfc3339("2026-12-01T01:00:00+08:00")->seconds,
            ParseRfc3339("2026-11-30T17:00:00Z")->seconds);
  EXPECT_EQ(ParseRfc3339("1970-01-01T00:00:00.5Z")->seconds, 0);
  EXPECT_EQ(FormatRfc3339Utc(1796058000), "2026-11-30T17:00:00Z");
  EXPECT_FALSE(ParseRfc3339("2026-12-01 01:00:00Z"));
  EXPECT_FALSE(ParseRfc3339("2026-12-01T25:00:00Z"));
  EXPECT_FALSE(ParseRfc3339("2026-12-01T01:00:00+8:00"));
}

TEST(WaveArithmeticTest, CountsAndPercentsOfTwelveHosts) {
  // 1 host, then 25% of 12 = 3, then everything.
  EXPECT_EQ(Sizes({"1", "25%", "100%"}, 12), (std::vector<std::uint64_t>{1, 3, 12}));
}

TEST(WaveArithmeticTest, PercentsRoundUp) {
  EXPECT_EQ(Sizes({"10%", "50%", "100%"}, 7), (std::vector<std::uint64_t>{1, 4, 7}));
}

TEST(WaveArithmeticTest, EveryWaveAddsAtLeastOneHost) {
  // 25% of 2 rounds up to 1, the size of wave 0: bumped to 2, which ends the rollout.
  EXPECT_EQ(Sizes({"1", "25%", "100%"}, 2), (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(Sizes({"1", "25%", "50%", "100%"}, 3), (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_EQ(Sizes({"1", "2%", "3%", "100%"}, 1000), (std::vector<std::uint64_t>{1, 20, 30, 1000}));
}

TEST(WaveArithmeticTest, ACountLargerThanTheFleetIsCapped) {
  EXPECT_EQ(Sizes({"5", "100%"}, 3), (std::vector<std::uint64_t>{3}));
}

TEST(WaveArithmeticTest, ALastCountMustCoverEveryHost) {
  EXPECT_EQ(Sizes({"1", "10"}, 10), (std::vector<std::uint64_t>{1, 10}));
  auto short_waves = WaveSizes(Waves({"1", "10"}), 11);
  ASSERT_FALSE(short_waves);
  EXPECT_EQ(short_waves.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(short_waves.error().message().find("does not cover all 11 target hosts"),
            std::string::npos);
}

TEST(WaveArithmeticTest, NoTargetsNoWaves) { EXPECT_TRUE(Sizes({"1", "100%"}, 0).empty()); }

TEST(WaveArithmeticTest, IsStable) {
  EXPECT_EQ(Sizes({"1", "33%", "100%"}, 101), Sizes({"1", "33%", "100%"}, 101));
}

TEST(WaveArithmeticTest, FailureThresholdsArePerWaveAndRoundDown) {
  const std::vector<std::uint64_t> sizes = {1, 3, 12};  // waves of 1, 2 and 9 hosts
  EXPECT_EQ(FailureThresholds(sizes, *ParseHostAmount("10%", true)),
            (std::vector<std::uint64_t>{0, 0, 0}));
  EXPECT_EQ(FailureThresholds(sizes, *ParseHostAmount("50%", true)),
            (std::vector<std::uint64_t>{0, 1, 4}));
  EXPECT_EQ(FailureThresholds(sizes, *ParseHostAmount("2", true)),
            (std::vector<std::uint64_t>{1, 2, 2}));
  EXPECT_EQ(FailureThresholds(sizes, *ParseHostAmount("0", true)),
            (std::vector<std::uint64_t>{0, 0, 0}));
}

// A host joining late (targets.late_joiners) goes to the next wave not
// started, whose threshold is resolved again for its new size; once every
// wave has started, to a catch-up wave made for it, with the same rule.
TEST(WaveArithmeticTest, AHostJoiningLateGoesToTheNextWaveOrACatchUpWave) {
  auto waves = RolloutWaves({*ParseHostAmount("1", false), *ParseHostAmount("100%", false)}, 10,
                            *ParseHostAmount("50%", true));
  ASSERT_TRUE(waves);
  ASSERT_EQ(waves->size(), 2u);
  EXPECT_EQ((*waves)[1].hosts, 9u);
  EXPECT_EQ((*waves)[1].max_failures, 4u);
  const HostAmount half = *ParseHostAmount("50%", true);
  // Wave 1 started: into wave 2, which now tolerates 5 of its 10.
  LateJoin join = JoinLate(*waves, 0, half);
  EXPECT_EQ(join.wave, 1u);
  EXPECT_FALSE(join.catch_up);
  ASSERT_EQ(join.waves.size(), 2u);
  EXPECT_EQ(join.waves[0], (*waves)[0]);
  EXPECT_EQ(join.waves[1].through, 11u);
  EXPECT_EQ(join.waves[1].hosts, 10u);
  EXPECT_EQ(join.waves[1].max_failures, 5u);
  // Every wave started: a catch-up wave of one host (50% of 1 rounds down to 0).
  join = JoinLate(join.waves, 1, half);
  EXPECT_EQ(join.wave, 2u);
  EXPECT_TRUE(join.catch_up);
  ASSERT_EQ(join.waves.size(), 3u);
  EXPECT_EQ(join.waves[1].max_failures, 5u) << "a started wave keeps its threshold";
  EXPECT_EQ(join.waves[2].through, 12u);
  EXPECT_EQ(join.waves[2].hosts, 1u);
  EXPECT_EQ(join.waves[2].max_failures, 0u);
  // Another host before the catch-up wave starts joins it.
  join = JoinLate(join.waves, 1, *ParseHostAmount("1", true));
  EXPECT_EQ(join.wave, 2u);
  EXPECT_FALSE(join.catch_up);
  EXPECT_EQ(join.waves[2].hosts, 2u);
  EXPECT_EQ(join.waves[2].max_failures, 1u);
}

}  // namespace
}  // namespace fabu::coordinator::release
