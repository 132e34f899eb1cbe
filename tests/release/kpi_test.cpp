// KPI arithmetic on seeded histories: month and time-zone
// boundaries, empty periods, partial versus success, emergencies, a release
// closed a month after it started.
#include "coordinator/release/kpi.hpp"

#include <gtest/gtest.h>

#include "coordinator/release/record_render.hpp"
#include "tests/release/test_plans.hpp"

namespace fabu::coordinator::release {
namespace {

using testing::FullPlan;

TimeZone Shanghai() {
  auto zone = TimeZone::Load("Asia/Shanghai");
  EXPECT_TRUE(zone.has_value()) << (zone ? "" : zone.error().message());
  return zone.value_or(TimeZone::Utc());
}

UnixSeconds At(std::string_view rfc3339) {
  auto t = ParseRfc3339(rfc3339);
  EXPECT_TRUE(t.has_value()) << rfc3339;
  return t ? t->seconds : 0;
}

HistoryEntry Entry(Action action, UnixSeconds at, ReleaseState from, ReleaseState to) {
  HistoryEntry e;
  e.action = action;
  e.actor = "zhang.rm";
  e.at = at;
  e.from = from;
  e.to = to;
  return e;
}

// A release that went through review (1 h), testing (2 h) and a rollout that
// started `deploy` seconds before `closed`, closed with `code`.
Release Closed(std::string id, std::string category, CloseCode code, UnixSeconds created,
               UnixSeconds closed, bool in_window, std::int64_t deploy = 3600) {
  using S = ReleaseState;
  Release r;
  r.id = std::move(id);
  r.owner = "zhang.rm";
  r.plan = FullPlan(category);
  r.created_at = created;
  r.history = {
      Entry(Action::kCreate, created, S::kDraft, S::kDraft),
      Entry(Action::kSubmit, created + 600, S::kDraft, S::kInReview),
      Entry(Action::kApprove, created + 600 + 3600, S::kInReview, S::kApproved),
      Entry(Action::kTestReport, created + 600 + 3600 + 60, S::kApproved, S::kTesting),
      Entry(Action::kAccept, created + 600 + 3600 + 60 + 7200, S::kTesting, S::kAccepted),
      Entry(Action::kSchedule, created + 600 + 3600 + 60 + 7200 + 60, S::kAccepted, S::kScheduled),
      Entry(Action::kStartRollout, closed - deploy - 60, S::kScheduled, S::kDeploying),
      Entry(Action::kFinishRollout, closed - 60, S::kDeploying,
            code == CloseCode::kSuccess ? S::kDeployed : S::kFailed),
      Entry(Action::kClose, closed, S::kDeployed, S::kClosed),
  };
  r.state = S::kClosed;
  r.close_code = code;
  r.closure = Closure{"zhang.rm", closed, "closing notes of " + r.id, in_window, "confirmed"};
  r.updated_at = closed;
  return r;
}

TEST(TimeZoneTest, ReadsOffsetsFromTheTzDatabase) {
  TimeZone shanghai = Shanghai();
  EXPECT_EQ(shanghai.OffsetAt(At("2026-03-01T00:00:00Z")), 8 * 3600);
  auto york = TimeZone::Load("America/New_York");
  ASSERT_TRUE(york.has_value()) << york.error().message();
  EXPECT_EQ(york->OffsetAt(At("2026-01-15T12:00:00Z")), -5 * 3600);
  EXPECT_EQ(york->OffsetAt(At("2026-07-15T12:00:00Z")), -4 * 3600);
  // Local midnight of a summer day in New York is 04:00 UTC.
  EXPECT_EQ(york->StartOfDay({2026, 7, 1}), At("2026-07-01T04:00:00Z"));
  EXPECT_EQ(shanghai.StartOfDay({2026, 3, 1}), At("2026-02-28T16:00:00Z"));
  EXPECT_EQ(shanghai.FormatLocal(At("2026-02-28T16:30:00Z")), "2026-03-01 00:30 +08:00");
}

TEST(TimeZoneTest, RefusesNamesThatAreNotZones) {
  auto escape = TimeZone::Load("../etc/passwd");
  ASSERT_FALSE(escape.has_value());
  EXPECT_NE(escape.error().message().find("time_zone"), std::string::npos);
  auto missing = TimeZone::Load("Mars/Olympus_Mons");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
}

TEST(TimeZoneTest, ATimeArgumentIsAnRfc3339TimeOrADateInTheZone) {
  auto shanghai = TimeZone::Load("Asia/Shanghai");
  ASSERT_TRUE(shanghai) << shanghai.error().message();
  // A date is the start of that day in the zone, kept with the zone's offset.
  auto date = ParseTimeArgument("2026-12-01", *shanghai);
  ASSERT_TRUE(date) << date.error().message();
  EXPECT_EQ(date->seconds, ParseRfc3339("2026-11-30T16:00:00Z")->seconds);
  EXPECT_EQ(date->text, "2026-12-01T00:00:00+08:00");
  auto new_york = TimeZone::Load("America/New_York");
  ASSERT_TRUE(new_york);
  auto west = ParseTimeArgument("2026-07-04", *new_york);
  ASSERT_TRUE(west);
  EXPECT_EQ(west->text, "2026-07-04T00:00:00-04:00");
  // An RFC 3339 time is taken as written, whatever the zone.
  auto exact = ParseTimeArgument("2026-12-01T20:00:00+09:00", *shanghai);
  ASSERT_TRUE(exact);
  EXPECT_EQ(exact->text, "2026-12-01T20:00:00+09:00");
  // Anything else: the text, and an example of each form.
  for (const char* bad : {"2026-13-01", "tomorrow", "2026-12-01T20:00:00", "12/01/2026"}) {
    auto refused = ParseTimeArgument(bad, *shanghai);
    ASSERT_FALSE(refused) << bad;
    EXPECT_NE(refused.error().message().find(std::string("\"") + bad + "\" is not a time"),
              std::string::npos)
        << refused.error().message();
    EXPECT_NE(refused.error().message().find("2026-12-01 (the start of that day in Asia/Shanghai)"),
              std::string::npos);
    EXPECT_NE(refused.error().message().find("2026-12-01T20:00:00+08:00"), std::string::npos);
  }
}

TEST(PeriodTest, MonthsAndDatesAreCheckedAndFollowTheZone) {
  TimeZone zone = Shanghai();
  auto march = MonthPeriod("2026-03", zone);
  ASSERT_TRUE(march.has_value());
  EXPECT_EQ(march->from, At("2026-03-01T00:00:00+08:00"));
  EXPECT_EQ(march->to, At("2026-04-01T00:00:00+08:00"));
  auto december = MonthPeriod("2025-12", zone);
  ASSERT_TRUE(december.has_value());
  EXPECT_EQ(december->to, At("2026-01-01T00:00:00+08:00"));
  EXPECT_FALSE(MonthPeriod("2026-13", zone).has_value());
  EXPECT_FALSE(MonthPeriod("2026-3", zone).has_value());
  auto reversed = DatePeriod("2026-03-10", "2026-03-01", zone);
  ASSERT_FALSE(reversed.has_value());
  EXPECT_NE(reversed.error().message().find("to:"), std::string::npos);
  auto bad = DatePeriod("2026-02-30", "2026-03-01", zone);
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message().find("from"), std::string::npos);
}

TEST(KpiTest, AnEmptyPeriodHasNoRatios) {
  TimeZone zone = Shanghai();
  auto period = MonthPeriod("2026-03", zone).value();
  PeriodReport report = ComputeReport({}, period, zone);
  EXPECT_EQ(report.closed, 0);
  EXPECT_FALSE(report.success_ratio.value().has_value());
  EXPECT_EQ(report.success_ratio.Text(), "n/a");
  EXPECT_EQ(report.timeliness_ratio.Text(), "n/a");
  EXPECT_EQ(report.emergency_share.Text(), "n/a");
  EXPECT_FALSE(report.avg_review_ms.has_value());
  nlohmann::json json = ReportToJson(report);
  EXPECT_TRUE(json["success_ratio"]["value"].is_null());
  EXPECT_EQ(json["success_ratio"]["text"], "n/a");
  EXPECT_EQ(json["trend"].size(), 12u);
  EXPECT_EQ(json["incidents"]["by_severity"]["P1"], 0);
}

TEST(KpiTest, AReleaseClosedJustAfterLocalMidnightBelongsToTheNewMonth) {
  // Given a release closed at 00:30 on 1 March in Shanghai (16:30 UTC on
  // 28 February), it counts in March there and in February in UTC.
  const UnixSeconds closed = At("2026-02-28T16:30:00Z");
  ReportInputs inputs;
  inputs.releases = {Closed("R-1", "minor", CloseCode::kSuccess, closed - 86400, closed, true)};
  TimeZone shanghai = Shanghai();
  EXPECT_EQ(ComputeReport(inputs, MonthPeriod("2026-03", shanghai).value(), shanghai).closed, 1);
  EXPECT_EQ(ComputeReport(inputs, MonthPeriod("2026-02", shanghai).value(), shanghai).closed, 0);
  TimeZone utc = TimeZone::Utc();
  EXPECT_EQ(ComputeReport(inputs, MonthPeriod("2026-02", utc).value(), utc).closed, 1);
  EXPECT_EQ(ComputeReport(inputs, MonthPeriod("2026-03", utc).value(), utc).closed, 0);
}

TEST(KpiTest, PartialIsCountedApartFromSuccessAndFailure) {
  TimeZone zone = Shanghai();
  const UnixSeconds base = At("2026-03-10T10:00:00+08:00");
  ReportInputs inputs;
  inputs.releases = {
      Closed("R-1", "minor", CloseCode::kSuccess, base - 86400, base, true),
      Closed("R-2", "minor", CloseCode::kSuccess, base - 86400, base + 60, false),
      Closed("R-3", "major", CloseCode::kPartial, base - 86400, base + 120, true),
      Closed("R-4", "patch", CloseCode::kFailed, base - 86400, base + 180, false),
  };
  inputs.review_notes["R-4"] = "the health check was too strict";
  PeriodReport report = ComputeReport(inputs, MonthPeriod("2026-03", zone).value(), zone);
  EXPECT_EQ(report.closed, 4);
  EXPECT_EQ(report.success, 2);
  EXPECT_EQ(report.partial, 1);
  EXPECT_EQ(report.failed, 1);
  EXPECT_EQ(report.success_ratio.Text(), "50.0%");
  EXPECT_EQ(report.timeliness_ratio.Text(), "50.0%");
  EXPECT_EQ(report.by_category.at("minor"), 2);
  EXPECT_EQ(report.by_category.at("major"), 1);
  ASSERT_EQ(report.failed_review.size(), 2u);
  EXPECT_EQ(report.failed_review[0].id, "R-3");
  EXPECT_EQ(report.failed_review[1].id, "R-4");
  EXPECT_EQ(report.failed_review[1].review_notes, "the health check was too strict");
  EXPECT_EQ(report.failed_review[1].notes, "closing notes of R-4");
  // Review 1 h, testing 2 h, deployment 1 h for every one of them.
  EXPECT_EQ(report.avg_review_ms, 3600'000);
  EXPECT_EQ(report.avg_testing_ms, 7200'000);
  EXPECT_EQ(report.avg_deployment_ms, 3600'000);
  EXPECT_EQ(DurationText(report.avg_review_ms), "1h 0m");
}

TEST(KpiTest, AReviewFinishedWithinASecondStillHasAnAverage) {
  // Submitted at .100 and approved at .400 of the same second: the history
  // keeps the milliseconds, so the review took 0.3 s, not "n/a".
  TimeZone zone = Shanghai();
  const UnixSeconds base = At("2026-03-10T10:00:00+08:00");
  Release r = Closed("R-1", "minor", CloseCode::kSuccess, base - 86400, base, true);
  r.history[1].at = r.history[2].at = base - 3600;
  r.history[1].at_ms = (base - 3600) * 1000 + 100;
  r.history[2].at_ms = (base - 3600) * 1000 + 400;
  ReportInputs inputs;
  inputs.releases = {r};
  PeriodReport report = ComputeReport(inputs, MonthPeriod("2026-03", zone).value(), zone);
  EXPECT_EQ(report.avg_review_ms, 300);
  EXPECT_EQ(DurationText(report.avg_review_ms), "0.3s");
  EXPECT_DOUBLE_EQ(ReportToJson(report)["average_seconds"]["review"].get<double>(), 0.3);
  // The history written before milliseconds were kept reads as whole seconds.
  r.history[1].at_ms = r.history[2].at_ms = 0;
  inputs.releases = {r};
  report = ComputeReport(inputs, MonthPeriod("2026-03", zone).value(), zone);
  EXPECT_EQ(report.avg_review_ms, 0);
  EXPECT_EQ(DurationText(report.avg_review_ms), "0.0s");
}

TEST(KpiTest, EmergenciesRollbacksAndWaivedTestsAreCounted) {
  TimeZone zone = Shanghai();
  const UnixSeconds base = At("2026-03-10T10:00:00+08:00");
  Release emergency = Closed("R-1", "emergency", CloseCode::kRolledBack, base - 3600, base, true);
  emergency.test_waived_ever = true;
  emergency.history.insert(
      emergency.history.end() - 1,
      Entry(Action::kRollback, base - 30, ReleaseState::kFailed, ReleaseState::kRollingBack));
  ReportInputs inputs;
  inputs.releases = {emergency,
                     Closed("R-2", "minor", CloseCode::kSuccess, base - 86400, base, true),
                     Closed("R-3", "minor", CloseCode::kSuccess, base - 86400, base, true),
                     Closed("R-4", "minor", CloseCode::kSuccess, base - 86400, base, true)};
  PeriodReport report = ComputeReport(inputs, MonthPeriod("2026-03", zone).value(), zone);
  EXPECT_EQ(report.emergency_share.Text(), "25.0%");
  EXPECT_EQ(report.rollbacks, 1);
  EXPECT_EQ(report.rolled_back, 1);
  EXPECT_EQ(report.test_waived, 1);
  EXPECT_EQ(report.success_ratio.Text(), "75.0%");
}

TEST(KpiTest, AReleaseClosedAMonthAfterItStartedCountsOnlyWhereItClosed) {
  TimeZone zone = Shanghai();
  // Created and rolled out from mid January; closed on 12 February.
  const UnixSeconds created = At("2026-01-15T09:00:00+08:00");
  const UnixSeconds closed = At("2026-02-12T09:00:00+08:00");
  const std::int64_t deploy = closed - At("2026-01-20T09:00:00+08:00");
  ReportInputs inputs;
  inputs.releases = {Closed("R-1", "major", CloseCode::kSuccess, created, closed, false, deploy)};
  PeriodReport january = ComputeReport(inputs, MonthPeriod("2026-01", zone).value(), zone);
  PeriodReport february = ComputeReport(inputs, MonthPeriod("2026-02", zone).value(), zone);
  EXPECT_EQ(january.closed, 0);
  EXPECT_EQ(february.closed, 1);
  EXPECT_EQ(february.avg_deployment_ms, deploy * 1000);
  EXPECT_EQ(february.timeliness_ratio.Text(), "0.0%");
  // The trend of February's report shows January empty and February full.
  ASSERT_EQ(february.trend.size(), 12u);
  EXPECT_EQ(february.trend.back().month, "2026-02");
  EXPECT_EQ(february.trend.back().closed, 1);
  EXPECT_EQ(february.trend[10].month, "2026-01");
  EXPECT_EQ(february.trend[10].success.Text(), "n/a");
  EXPECT_EQ(february.trend.front().month, "2025-03");
}

TEST(KpiTest, RejectionsIncidentsCancellationsAndTheComingMonth) {
  TimeZone zone = Shanghai();
  const UnixSeconds in_march = At("2026-03-05T10:00:00+08:00");
  Release rejected;
  rejected.id = "R-1";
  rejected.plan = FullPlan();
  rejected.state = ReleaseState::kDraft;
  rejected.rejections = {ReviewDecision{"wang.approver", Decision::kRejected, in_march, "no", 1},
                         ReviewDecision{"li.ops-head", Decision::kRejected, in_march + 5, "no", 2}};
  Release cancelled;
  cancelled.id = "R-2";
  cancelled.plan = FullPlan();
  cancelled.state = ReleaseState::kCancelled;
  cancelled.close_code = CloseCode::kCancelled;
  cancelled.history = {
      Entry(Action::kCancel, in_march, ReleaseState::kDraft, ReleaseState::kCancelled)};
  Release scheduled;
  scheduled.id = "R-3";
  scheduled.plan = FullPlan();
  scheduled.state = ReleaseState::kScheduled;
  scheduled.plan.golive->window.start = ParseRfc3339("2026-04-02T01:00:00+08:00").value();
  scheduled.plan.golive->window.end = ParseRfc3339("2026-04-02T05:00:00+08:00").value();
  Release later = scheduled;  // in May: not the coming month
  later.id = "R-4";
  later.plan.golive->window.start = ParseRfc3339("2026-05-02T01:00:00+08:00").value();
  ReportInputs inputs;
  inputs.releases = {rejected, cancelled, scheduled, later};
  inputs.incidents = {
      IncidentRecord{"I-1", "R-9", "h1", "P1", "down", "manual", "open", in_march, "x", 0, ""},
      IncidentRecord{"I-2", "R-9", "h2", "P3", "slow", "observation", "open", in_march, "x", 0, ""},
      IncidentRecord{"I-3", "R-9", "h2", "P3", "old", "manual", "open", in_march - 86400 * 30, "x",
                     0, ""}};
  PeriodReport report = ComputeReport(inputs, MonthPeriod("2026-03", zone).value(), zone);
  EXPECT_EQ(report.rejected_releases, 1);
  EXPECT_EQ(report.rejections, 2);
  EXPECT_EQ(report.cancelled, 1);
  EXPECT_EQ(report.closed, 0);
  EXPECT_EQ(report.incidents, 2);
  EXPECT_EQ(report.incidents_by_severity.at("P1"), 1);
  EXPECT_EQ(report.incidents_by_severity.at("P3"), 1);
  ASSERT_EQ(report.coming_month.size(), 1u);
  EXPECT_EQ(report.coming_month[0].id, "R-3");
}

}  // namespace
}  // namespace fabu::coordinator::release
