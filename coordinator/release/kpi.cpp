#include "coordinator/release/kpi.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace fabu::coordinator::release {
namespace {

using nlohmann::json;

constexpr std::string_view kEmergency = "emergency";

bool HasAction(const Release& r, Action action) {
  return std::any_of(r.history.begin(), r.history.end(),
                     [&](const HistoryEntry& e) { return e.action == action; });
}

// When a cancelled release was cancelled (its last cancel entry).
UnixSeconds CancelledAt(const Release& r) {
  for (auto it = r.history.rbegin(); it != r.history.rend(); ++it) {
    if (it->action == Action::kCancel) return it->at;
  }
  return r.updated_at;
}

bool IsClosed(const Release& r) {
  return r.state == ReleaseState::kClosed && r.closure.has_value() && r.close_code.has_value() &&
         *r.close_code != CloseCode::kCancelled;
}

ReleaseLine LineOf(const Release& r, const ReportInputs& inputs) {
  ReleaseLine line;
  line.id = r.id;
  line.title = r.plan.title;
  line.product = r.plan.product;
  line.version = r.plan.version.ToString();
  line.category = r.plan.category;
  line.close_code = r.close_code ? std::string(CloseCodeName(*r.close_code)) : "";
  if (r.closure) {
    line.closed = r.closure->at;
    line.closed_by = r.closure->by;
    line.notes = r.closure->notes;
    line.finished_in_window = r.closure->finished_in_window;
  }
  if (auto it = inputs.review_notes.find(r.id); it != inputs.review_notes.end()) {
    line.review_notes = it->second;
  }
  line.test_waived = r.test_waived_ever;
  return line;
}

std::optional<std::int64_t> Average(std::int64_t total, std::int64_t count) {
  if (count == 0) return std::nullopt;
  return total / count;
}

json RatioJson(const Ratio& ratio) {
  auto value = ratio.value();
  return {{"part", ratio.part},
          {"whole", ratio.whole},
          {"value", value ? json(*value) : json(nullptr)},
          {"text", ratio.Text()}};
}

json LineJson(const ReleaseLine& l) {
  return {{"id", l.id},
          {"title", l.title},
          {"product", l.product},
          {"version", l.version},
          {"category", l.category},
          {"close_code", l.close_code},
          {"closed", l.closed},
          {"closed_utc", FormatRfc3339Utc(l.closed)},
          {"closed_by", l.closed_by},
          {"notes", l.notes},
          {"review_notes", l.review_notes},
          {"finished_in_window", l.finished_in_window},
          {"test_waived", l.test_waived}};
}

}  // namespace

json IncidentRecord::ToJson() const {
  return {{"id", id},
          {"release", release_id},
          {"host", host},
          {"severity", severity},
          {"summary", summary},
          {"source", source},
          {"state", state},
          {"created", created},
          {"created_utc", FormatRfc3339Utc(created)},
          {"created_by", created_by},
          {"closed", closed},
          {"closed_utc", closed ? json(FormatRfc3339Utc(closed)) : json(nullptr)},
          {"closed_by", closed_by}};
}

const std::vector<std::string>& IncidentSeverities() {
  static const std::vector<std::string> kSeverities = {"P1", "P2", "P3", "P4"};
  return kSeverities;
}

Result<std::string> ParseSeverity(std::string_view text) {
  for (const std::string& s : IncidentSeverities()) {
    if (text == s) return s;
  }
  return Fail(ErrorCode::kInvalidArgument,
              fmt::format("severity: \"{}\" is not one of P1, P2, P3, P4 (P1 is the worst)", text));
}

Result<Period> MonthPeriod(std::string_view month, const TimeZone& zone) {
  auto date = ParseCivilDate(std::string(month) + "-01");
  if (month.size() != 7 || !date) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("month: \"{}\" is not a month: write YYYY-MM", month));
  }
  Period p;
  p.first = *date;
  p.end = AddMonths(*date, 1);
  p.from = zone.StartOfDay(p.first);
  p.to = zone.StartOfDay(p.end);
  p.label = std::string(month);
  return p;
}

Result<Period> DatePeriod(std::string_view from, std::string_view to, const TimeZone& zone) {
  auto first = ParseCivilDate(from);
  if (!first) return std::unexpected(first.error().WithContext("from"));
  auto end = ParseCivilDate(to);
  if (!end) return std::unexpected(end.error().WithContext("to"));
  if (DaysFromCivil(*end) <= DaysFromCivil(*first)) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("to: {} is not after from {} (the period is [from, to))", to, from));
  }
  Period p;
  p.first = *first;
  p.end = *end;
  p.from = zone.StartOfDay(p.first);
  p.to = zone.StartOfDay(p.end);
  p.label = fmt::format("{}..{}", from, to);
  return p;
}

std::optional<double> Ratio::value() const {
  if (whole == 0) return std::nullopt;
  return static_cast<double>(part) / static_cast<double>(whole);
}

std::string Ratio::Text() const {
  auto v = value();
  return v ? fmt::format("{:.1f}%", *v * 100.0) : std::string("n/a");
}

std::optional<std::int64_t> TimeInStates(const Release& release,
                                         const std::vector<ReleaseState>& states,
                                         std::int64_t until_ms) {
  std::optional<std::int64_t> total;
  for (std::size_t i = 0; i < release.history.size(); ++i) {
    const HistoryEntry& entry = release.history[i];
    if (std::find(states.begin(), states.end(), entry.to) == states.end()) continue;
    const std::int64_t end =
        i + 1 < release.history.size() ? release.history[i + 1].AtMillis() : until_ms;
    total = total.value_or(0) + std::max<std::int64_t>(0, end - entry.AtMillis());
  }
  return total;
}

PeriodReport ComputeReport(const ReportInputs& inputs, const Period& period, const TimeZone& zone) {
  PeriodReport report;
  report.period = period;
  report.time_zone = zone.name();
  for (const std::string& s : IncidentSeverities()) report.incidents_by_severity[s] = 0;

  std::int64_t review_total = 0, review_n = 0, testing_total = 0, testing_n = 0, deploy_total = 0,
               deploy_n = 0;
  for (const Release& r : inputs.releases) {
    if (r.state == ReleaseState::kCancelled && period.Contains(CancelledAt(r))) {
      ++report.cancelled;
    }
    bool rejected_here = false;
    for (const ReviewDecision& rejection : r.rejections) {
      if (period.Contains(rejection.at)) {
        ++report.rejections;
        rejected_here = true;
      }
    }
    if (rejected_here) ++report.rejected_releases;

    if (!IsClosed(r) || !period.Contains(r.closure->at)) continue;
    ++report.closed;
    ++report.by_category[r.plan.category];
    switch (*r.close_code) {
      case CloseCode::kSuccess:
        ++report.success;
        break;
      case CloseCode::kPartial:
        ++report.partial;
        break;
      case CloseCode::kFailed:
        ++report.failed;
        break;
      case CloseCode::kRolledBack:
        ++report.rolled_back;
        break;
      case CloseCode::kCancelled:
        break;
    }
    if (r.closure->finished_in_window) ++report.timeliness_ratio.part;
    if (r.plan.category == kEmergency) ++report.emergency_share.part;
    if (HasAction(r, Action::kRollback) || *r.close_code == CloseCode::kRolledBack) {
      ++report.rollbacks;
    }
    if (r.test_waived_ever) ++report.test_waived;

    const std::int64_t until = r.closure->at * 1000;
    if (auto t = TimeInStates(r, {ReleaseState::kInReview}, until)) {
      review_total += *t;
      ++review_n;
    }
    if (auto t = TimeInStates(r, {ReleaseState::kTesting}, until)) {
      testing_total += *t;
      ++testing_n;
    }
    if (auto t = TimeInStates(
            r, {ReleaseState::kDeploying, ReleaseState::kPaused, ReleaseState::kRollingBack},
            until)) {
      deploy_total += *t;
      ++deploy_n;
    }
    ReleaseLine line = LineOf(r, inputs);
    if (*r.close_code != CloseCode::kSuccess) report.failed_review.push_back(line);
    report.closed_releases.push_back(std::move(line));
  }
  report.success_ratio = {report.success, report.closed};
  report.timeliness_ratio.whole = report.closed;
  report.emergency_share.whole = report.closed;
  report.avg_review_ms = Average(review_total, review_n);
  report.avg_testing_ms = Average(testing_total, testing_n);
  report.avg_deployment_ms = Average(deploy_total, deploy_n);
  auto by_close = [](const ReleaseLine& a, const ReleaseLine& b) {
    return a.closed != b.closed ? a.closed < b.closed : a.id < b.id;
  };
  std::sort(report.closed_releases.begin(), report.closed_releases.end(), by_close);
  std::sort(report.failed_review.begin(), report.failed_review.end(), by_close);

  for (const IncidentRecord& incident : inputs.incidents) {
    if (!period.Contains(incident.created)) continue;
    ++report.incidents;
    ++report.incidents_by_severity[incident.severity];
    report.period_incidents.push_back(incident);
  }
  std::sort(report.period_incidents.begin(), report.period_incidents.end(),
            [](const IncidentRecord& a, const IncidentRecord& b) {
              return a.created != b.created ? a.created < b.created : a.id < b.id;
            });

  // The month after the period's last day.
  const CivilDate last_day = CivilFromDays(DaysFromCivil(period.end) - 1);
  const CivilDate next_month = AddMonths(last_day, 1);
  const UnixSeconds next_from = zone.StartOfDay(next_month);
  const UnixSeconds next_to = zone.StartOfDay(AddMonths(next_month, 1));
  for (const Release& r : inputs.releases) {
    if (r.state == ReleaseState::kClosed || r.state == ReleaseState::kCancelled) continue;
    auto window = r.ActiveWindow();
    if (!window || window->start.seconds < next_from || window->start.seconds >= next_to) {
      continue;
    }
    report.coming_month.push_back(ScheduledLine{
        r.id, r.plan.title, r.plan.product, r.plan.version.ToString(), r.plan.category,
        std::string(ReleaseStateName(r.state)), window->start.seconds, window->end.seconds});
  }
  std::sort(report.coming_month.begin(), report.coming_month.end(),
            [](const ScheduledLine& a, const ScheduledLine& b) {
              return a.window_start != b.window_start ? a.window_start < b.window_start
                                                      : a.id < b.id;
            });

  // Twelve months ending with the period's last month.
  const CivilDate last_month{last_day.year, last_day.month, 1};
  for (int back = 11; back >= 0; --back) {
    const CivilDate month = AddMonths(last_month, -back);
    const UnixSeconds from = zone.StartOfDay(month);
    const UnixSeconds to = zone.StartOfDay(AddMonths(month, 1));
    MonthTrend trend;
    trend.month = fmt::format("{:04}-{:02}", month.year, month.month);
    for (const Release& r : inputs.releases) {
      if (!IsClosed(r) || r.closure->at < from || r.closure->at >= to) continue;
      ++trend.closed;
      if (*r.close_code == CloseCode::kSuccess) ++trend.success.part;
      if (r.closure->finished_in_window) ++trend.timeliness.part;
    }
    trend.success.whole = trend.closed;
    trend.timeliness.whole = trend.closed;
    report.trend.push_back(std::move(trend));
  }
  return report;
}

json ReportToJson(const PeriodReport& r) {
  json out;
  out["period"] = {{"label", r.period.label},
                   {"first_day", FormatCivilDate(r.period.first)},
                   {"end_day", FormatCivilDate(r.period.end)},
                   {"from", r.period.from},
                   {"to", r.period.to},
                   {"from_utc", FormatRfc3339Utc(r.period.from)},
                   {"to_utc", FormatRfc3339Utc(r.period.to)},
                   {"time_zone", r.time_zone}};
  out["closed"] = r.closed;
  out["by_category"] = r.by_category;
  out["close_codes"] = {{"success", r.success},
                        {"partial", r.partial},
                        {"failed", r.failed},
                        {"rolled_back", r.rolled_back}};
  out["cancelled"] = r.cancelled;
  out["success_ratio"] = RatioJson(r.success_ratio);
  out["timeliness_ratio"] = RatioJson(r.timeliness_ratio);
  out["emergency_share"] = RatioJson(r.emergency_share);
  out["rollbacks"] = r.rollbacks;
  out["test_waived"] = r.test_waived;
  out["incidents"] = {{"total", r.incidents}, {"by_severity", r.incidents_by_severity}};
  out["rejected_in_review"] = {{"releases", r.rejected_releases}, {"rejections", r.rejections}};
  auto seconds = [](const std::optional<std::int64_t>& ms) {
    return ms ? json(static_cast<double>(*ms) / 1000.0) : json(nullptr);
  };
  out["average_seconds"] = {{"review", seconds(r.avg_review_ms)},
                            {"testing", seconds(r.avg_testing_ms)},
                            {"deployment", seconds(r.avg_deployment_ms)}};
  json closed = json::array(), failed = json::array(), incidents = json::array(),
       coming = json::array(), trend = json::array();
  for (const ReleaseLine& l : r.closed_releases) closed.push_back(LineJson(l));
  for (const ReleaseLine& l : r.failed_review) failed.push_back(LineJson(l));
  for (const IncidentRecord& i : r.period_incidents) incidents.push_back(i.ToJson());
  for (const ScheduledLine& s : r.coming_month) {
    coming.push_back({{"id", s.id},
                      {"title", s.title},
                      {"product", s.product},
                      {"version", s.version},
                      {"category", s.category},
                      {"state", s.state},
                      {"window_start_utc", FormatRfc3339Utc(s.window_start)},
                      {"window_end_utc", FormatRfc3339Utc(s.window_end)}});
  }
  for (const MonthTrend& t : r.trend) {
    trend.push_back({{"month", t.month},
                     {"closed", t.closed},
                     {"success_ratio", RatioJson(t.success)},
                     {"timeliness_ratio", RatioJson(t.timeliness)}});
  }
  out["closed_releases"] = closed;
  out["failed_review"] = failed;
  out["incident_list"] = incidents;
  out["coming_month"] = coming;
  out["trend"] = trend;
  return out;
}

}  // namespace fabu::coordinator::release
