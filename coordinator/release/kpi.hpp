// The period report and its KPIs (procedure §4.6, §6.1.1(3), §6.2.10):
// computed from the release records and incidents, never entered by hand.
//
// Rules (docs/records.md says them to readers):
// - A period is [from, to) of local dates in the coordinator's time zone: a
//   month, or two dates (`to` exclusive).
// - A release belongs to the period in which it closed (Closure.at). Closed
//   means state closed with a close code; cancelled releases never went out
//   and are counted apart ("cancelled", by the time they were cancelled).
// - success ratio = close code success / closed; partial is counted apart
//   (neither a success nor a failure). timeliness ratio = closures with
//   finished_in_window / closed. emergency share = category "emergency" /
//   closed. A ratio over nothing is absent (null in JSON, "n/a" in text).
// - rollbacks: closed releases whose history holds a rollback.
// - incidents: those opened in the period, by severity.
// - rejected in review: releases with a rejection made in the period.
// - average time in review (in_review), testing (testing) and deployment
//   (deploying, paused, rolling_back), from the history of the releases
//   closed in the period, over those that spent time in the state.
// - failed-release review: every closed release coded failed, rolled_back or
//   partial, with its closing notes and review notes.
// - coming month: releases not closed or cancelled whose active window
//   starts in the month after the period's last day.
// - trend: closed, success and timeliness per month for the 12 months that
//   end with the period's last month.
//
// Pure functions over values; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/release/time_zone.hpp"
#include "coordinator/release/workflow.hpp"
#include "protocol/error.hpp"

namespace fabu::coordinator::release {

// An incident against a release (the `incidents` table).
struct IncidentRecord {
  std::string id;  // "I-3"
  std::string release_id;
  std::string host;
  std::string severity;  // P1..P4
  std::string summary;
  std::string source;  // observation | manual
  std::string state;   // open | closed
  UnixSeconds created = 0;
  std::string created_by;
  UnixSeconds closed = 0;
  std::string closed_by;
  nlohmann::json ToJson() const;
};

// P1..P4, in that order.
const std::vector<std::string>& IncidentSeverities();
// kInvalidArgument naming the value when it is not P1..P4.
Result<std::string> ParseSeverity(std::string_view text);

struct Period {
  CivilDate first;  // the first day
  CivilDate end;    // the day after the last
  UnixSeconds from = 0;
  UnixSeconds to = 0;
  std::string label;  // "2026-03" or "2026-03-01..2026-03-15"
  bool Contains(UnixSeconds at) const { return at >= from && at < to; }
};

// "YYYY-MM". kInvalidArgument naming the text.
Result<Period> MonthPeriod(std::string_view month, const TimeZone& zone);
// [from, to): kInvalidArgument when either is not a date or to <= from.
Result<Period> DatePeriod(std::string_view from, std::string_view to, const TimeZone& zone);

// A ratio that may have no denominator.
struct Ratio {
  std::int64_t part = 0;
  std::int64_t whole = 0;
  std::optional<double> value() const;
  std::string Text() const;  // "75.0%" or "n/a"
};

struct ReleaseLine {
  std::string id;
  std::string title;
  std::string product;
  std::string version;
  std::string category;
  std::string close_code;
  UnixSeconds closed = 0;
  std::string closed_by;
  std::string notes;         // Closure.notes
  std::string review_notes;  // fabu release review-notes
  bool finished_in_window = false;
  bool test_waived = false;
};

struct ScheduledLine {
  std::string id;
  std::string title;
  std::string product;
  std::string version;
  std::string category;
  std::string state;
  UnixSeconds window_start = 0;
  UnixSeconds window_end = 0;
};

struct MonthTrend {
  std::string month;  // "2026-03"
  std::int64_t closed = 0;
  Ratio success;
  Ratio timeliness;
};

struct PeriodReport {
  Period period;
  std::string time_zone;
  std::int64_t closed = 0;
  std::map<std::string, std::int64_t> by_category;  // closed releases
  std::int64_t success = 0, partial = 0, failed = 0, rolled_back = 0;
  std::int64_t cancelled = 0;
  Ratio success_ratio;
  Ratio timeliness_ratio;
  Ratio emergency_share;
  std::int64_t rollbacks = 0;
  std::int64_t test_waived = 0;  // emergency releases that skipped testing
  std::map<std::string, std::int64_t> incidents_by_severity;  // every severity, 0 too
  std::int64_t incidents = 0;
  std::int64_t rejected_releases = 0;  // releases with a rejection in the period
  std::int64_t rejections = 0;
  // Milliseconds, over the closed releases that were in the state at all
  // (closure time for one still in it); nullopt when none was.
  std::optional<std::int64_t> avg_review_ms, avg_testing_ms, avg_deployment_ms;
  std::vector<ReleaseLine> closed_releases;
  std::vector<ReleaseLine> failed_review;
  std::vector<IncidentRecord> period_incidents;
  std::vector<ScheduledLine> coming_month;
  std::vector<MonthTrend> trend;  // oldest first, 12 months
};

struct ReportInputs {
  std::vector<Release> releases;
  std::vector<IncidentRecord> incidents;
  std::map<std::string, std::string> review_notes;  // by release id
};

PeriodReport ComputeReport(const ReportInputs& inputs, const Period& period, const TimeZone& zone);

// Milliseconds `release` spent in `states`, summed from its history; the last
// entry counts up to `until_ms`. nullopt when it never entered one of them.
std::optional<std::int64_t> TimeInStates(const Release& release,
                                         const std::vector<ReleaseState>& states,
                                         std::int64_t until_ms);

nlohmann::json ReportToJson(const PeriodReport& report);

}  // namespace fabu::coordinator::release
