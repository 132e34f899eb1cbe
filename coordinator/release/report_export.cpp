#include "coordinator/release/report_export.hpp"

#include <fmt/format.h>

#include "coordinator/release/plan_export.hpp"

namespace fabu::coordinator::release {
namespace {

using Rows = std::vector<std::vector<std::string>>;

std::string L(Lang lang, std::string_view key) { return std::string(Label(lang, key)); }

// The indicators, one row each, in reading order.
Rows Indicators(const PeriodReport& r, Lang lang) {
  Rows rows = {
      {L(lang, "closed"), std::to_string(r.closed)},
      {L(lang, "success"), std::to_string(r.success)},
      {L(lang, "partial"), std::to_string(r.partial)},
      {L(lang, "failed"), std::to_string(r.failed)},
      {L(lang, "rolled_back"), std::to_string(r.rolled_back)},
      {L(lang, "cancelled"), std::to_string(r.cancelled)},
      {L(lang, "success_ratio"), r.success_ratio.Text()},
      {L(lang, "timeliness_ratio"), r.timeliness_ratio.Text()},
      {L(lang, "emergency_share"), r.emergency_share.Text()},
      {L(lang, "test_waived"), std::to_string(r.test_waived)},
      {L(lang, "rollbacks"), std::to_string(r.rollbacks)},
      {L(lang, "incidents"), std::to_string(r.incidents)},
      {L(lang, "rejected_releases"), std::to_string(r.rejected_releases)},
      {L(lang, "rejections"), std::to_string(r.rejections)},
      {L(lang, "avg_review"), DurationText(r.avg_review_ms)},
      {L(lang, "avg_testing"), DurationText(r.avg_testing_ms)},
      {L(lang, "avg_deployment"), DurationText(r.avg_deployment_ms)},
  };
  return rows;
}

Rows CategoryRows(const PeriodReport& r, Lang lang) {
  Rows rows;
  for (const auto& [category, n] : r.by_category) {
    rows.push_back({Term(lang, TermKind::kCategory, category), std::to_string(n)});
  }
  return rows;
}

Rows SeverityRows(const PeriodReport& r) {
  Rows rows;
  for (const auto& [severity, n] : r.incidents_by_severity) {
    rows.push_back({severity, std::to_string(n)});
  }
  return rows;
}

std::vector<std::string> ReleaseHeader(Lang lang) {
  return {L(lang, "release"),  L(lang, "title"),      L(lang, "product"),   L(lang, "version"),
          L(lang, "category"), L(lang, "close_code"), L(lang, "closed_at"), L(lang, "in_window")};
}

Rows ReleaseRows(const std::vector<ReleaseLine>& lines, Lang lang, const TimeZone& zone) {
  Rows rows;
  for (const ReleaseLine& l : lines) {
    rows.push_back({l.id, l.title, l.product, l.version,
                    Term(lang, TermKind::kCategory, l.category),
                    Term(lang, TermKind::kCloseCode, l.close_code), zone.FormatLocal(l.closed),
                    L(lang, l.finished_in_window ? "yes" : "no")});
  }
  return rows;
}

std::vector<std::string> ReviewHeader(Lang lang) {
  return {L(lang, "release"), L(lang, "title"), L(lang, "close_code"), L(lang, "notes"),
          L(lang, "review_notes")};
}

Rows ReviewRows(const PeriodReport& r, Lang lang) {
  Rows rows;
  for (const ReleaseLine& l : r.failed_review) {
    rows.push_back(
        {l.id, l.title, Term(lang, TermKind::kCloseCode, l.close_code), l.notes, l.review_notes});
  }
  return rows;
}

std::vector<std::string> IncidentHeader(Lang lang) {
  return {L(lang, "incident"), L(lang, "release"), L(lang, "severity"), L(lang, "host"),
          L(lang, "summary"),  L(lang, "source"),  L(lang, "state"),    L(lang, "opened")};
}

Rows IncidentRows(const PeriodReport& r, Lang lang, const TimeZone& zone) {
  Rows rows;
  for (const IncidentRecord& i : r.period_incidents) {
    rows.push_back({i.id, i.release_id, i.severity, i.host, i.summary,
                    Term(lang, TermKind::kIncidentSource, i.source),
                    Term(lang, TermKind::kIncidentState, i.state), zone.FormatLocal(i.created)});
  }
  return rows;
}

std::vector<std::string> ComingHeader(Lang lang) {
  return {L(lang, "release"),  L(lang, "title"), L(lang, "product"), L(lang, "version"),
          L(lang, "category"), L(lang, "state"), L(lang, "window")};
}

Rows ComingRows(const PeriodReport& r, Lang lang, const TimeZone& zone) {
  Rows rows;
  for (const ScheduledLine& s : r.coming_month) {
    rows.push_back({s.id, s.title, s.product, s.version,
                    Term(lang, TermKind::kCategory, s.category),
                    Term(lang, TermKind::kState, s.state),
                    zone.FormatLocal(s.window_start) + " — " + zone.FormatLocal(s.window_end)});
  }
  return rows;
}

Rows TrendRows(const PeriodReport& r) {
  Rows rows;
  for (const MonthTrend& t : r.trend) {
    rows.push_back({t.month, std::to_string(t.closed), t.success.Text(), t.timeliness.Text()});
  }
  return rows;
}

std::string Title(const PeriodReport& r, Lang lang) {
  return fmt::format("{} — {}", L(lang, "doc.period_report"), r.period.label);
}

std::string PeriodLine(const PeriodReport& r, Lang lang) {
  return fmt::format("{}: {} .. {} ({}: {})", L(lang, "period"), FormatCivilDate(r.period.first),
                     FormatCivilDate(r.period.end), L(lang, "time_zone"), r.time_zone);
}

std::string Markdown(const PeriodReport& r, Lang lang, const TimeZone& zone) {
  std::string out = fmt::format("# {}\n\n{}\n\n", MdCell(Title(r, lang)), PeriodLine(r, lang));
  auto section = [&](std::string_view key, const std::vector<std::string>& header,
                     const Rows& rows) {
    out += fmt::format("## {}\n\n", L(lang, key));
    if (rows.empty()) {
      out += L(lang, "none") + "\n\n";
    } else {
      out += MdTable(header, rows);
    }
  };
  section("kpi", {L(lang, "metric"), L(lang, "value")}, Indicators(r, lang));
  section("by_category", {L(lang, "category"), L(lang, "closed")}, CategoryRows(r, lang));
  section("incidents_by_severity", {L(lang, "severity"), L(lang, "incidents")}, SeverityRows(r));
  section("closed_releases", ReleaseHeader(lang), ReleaseRows(r.closed_releases, lang, zone));
  section("failed_review", ReviewHeader(lang), ReviewRows(r, lang));
  section("incidents", IncidentHeader(lang), IncidentRows(r, lang, zone));
  section("coming_month", ComingHeader(lang), ComingRows(r, lang, zone));
  section(
      "trend",
      {L(lang, "month"), L(lang, "closed"), L(lang, "success_ratio"), L(lang, "timeliness_ratio")},
      TrendRows(r));
  return out;
}

std::string Html(const PeriodReport& r, Lang lang, const TimeZone& zone) {
  std::string out = HtmlBegin(lang, Title(r, lang));
  out += "<p id=\"period\">" + EscapeHtml(PeriodLine(r, lang)) + "</p>\n";
  auto section = [&](std::string_view key, const std::vector<std::string>& header, const Rows& rows,
                     std::string_view id) {
    out += fmt::format("<h2 id=\"{}\">{}</h2>\n", id, EscapeHtml(L(lang, key)));
    if (rows.empty()) {
      out += "<p>" + EscapeHtml(L(lang, "none")) + "</p>\n";
    } else {
      out += HtmlTable(header, rows);
    }
  };
  section("kpi", {L(lang, "metric"), L(lang, "value")}, Indicators(r, lang), "kpi");

  std::vector<Bar> bars;
  for (const auto& [category, n] : r.by_category) {
    bars.push_back(
        {Term(lang, TermKind::kCategory, category), static_cast<double>(n), std::to_string(n)});
  }
  out += fmt::format("<h2 id=\"by-category\">{}</h2>\n", EscapeHtml(L(lang, "by_category")));
  out += SvgBarChart("chart-category", L(lang, "by_category"), bars);
  out += HtmlTable({L(lang, "category"), L(lang, "closed")}, CategoryRows(r, lang));

  std::vector<std::string> months;
  Series success{L(lang, "success_ratio"), {}}, timeliness{L(lang, "timeliness_ratio"), {}};
  for (const MonthTrend& t : r.trend) {
    months.push_back(t.month);
    success.values.push_back(t.success.value());
    timeliness.values.push_back(t.timeliness.value());
  }
  out += fmt::format("<h2 id=\"trend\">{}</h2>\n", EscapeHtml(L(lang, "trend")));
  out += SvgRatioChart("chart-trend", L(lang, "trend"), months, {success, timeliness});
  out += HtmlTable(
      {L(lang, "month"), L(lang, "closed"), L(lang, "success_ratio"), L(lang, "timeliness_ratio")},
      TrendRows(r));

  section("incidents_by_severity", {L(lang, "severity"), L(lang, "incidents")}, SeverityRows(r),
          "severity");
  section("closed_releases", ReleaseHeader(lang), ReleaseRows(r.closed_releases, lang, zone),
          "closed");
  section("failed_review", ReviewHeader(lang), ReviewRows(r, lang), "failed-review");
  section("incidents", IncidentHeader(lang), IncidentRows(r, lang, zone), "incidents");
  section("coming_month", ComingHeader(lang), ComingRows(r, lang, zone), "coming-month");
  return out + HtmlEnd();
}

std::string Csv(const PeriodReport& r, Lang lang, const TimeZone& zone) {
  std::string out = CsvRow({"section", "key", "value"});
  out += CsvRow({"period", L(lang, "period"), r.period.label});
  out += CsvRow({"period", L(lang, "time_zone"), r.time_zone});
  for (const auto& row : Indicators(r, lang)) out += CsvRow({"kpi", row[0], row[1]});
  for (const auto& row : CategoryRows(r, lang)) out += CsvRow({"by_category", row[0], row[1]});
  for (const auto& row : SeverityRows(r)) out += CsvRow({"incidents_by_severity", row[0], row[1]});
  for (const ReleaseLine& l : r.closed_releases) {
    out += CsvRow({"closed_release", l.id,
                   fmt::format("{} {} {} {} {}", Term(lang, TermKind::kCloseCode, l.close_code),
                               Term(lang, TermKind::kCategory, l.category), l.product, l.version,
                               zone.FormatLocal(l.closed))});
  }
  for (const ReleaseLine& l : r.failed_review) {
    out += CsvRow({"failed_review", l.id,
                   fmt::format("{}: {}\n{}", Term(lang, TermKind::kCloseCode, l.close_code),
                               l.notes, l.review_notes)});
  }
  for (const IncidentRecord& i : r.period_incidents) {
    out += CsvRow({"incident", i.id,
                   fmt::format("{} {} {} {}: {}", i.severity, i.release_id,
                               Term(lang, TermKind::kIncidentState, i.state), i.host, i.summary)});
  }
  for (const ScheduledLine& s : r.coming_month) {
    out +=
        CsvRow({"coming_month", s.id,
                fmt::format("{} {} {}", s.product, s.version, zone.FormatLocal(s.window_start))});
  }
  for (const MonthTrend& t : r.trend) {
    out += CsvRow({"trend", t.month,
                   fmt::format("closed={} success={} timeliness={}", t.closed, t.success.Text(),
                               t.timeliness.Text())});
  }
  return out;
}

}  // namespace

Result<RecordFormat> ParseRecordFormat(std::string_view text) {
  if (text == "json") return RecordFormat::kJson;
  if (text == "csv") return RecordFormat::kCsv;
  if (text == "md" || text == "markdown") return RecordFormat::kMarkdown;
  if (text == "html") return RecordFormat::kHtml;
  return Fail(ErrorCode::kInvalidArgument,
              fmt::format("format: \"{}\" is not json, csv, md or html", text));
}

std::string RenderReport(const PeriodReport& report, RecordFormat format, Lang lang,
                         const TimeZone& zone) {
  switch (format) {
    case RecordFormat::kJson:
      return ReportToJson(report).dump(2) + "\n";
    case RecordFormat::kCsv:
      return Csv(report, lang, zone);
    case RecordFormat::kMarkdown:
      return Markdown(report, lang, zone);
    case RecordFormat::kHtml:
      return Html(report, lang, zone);
  }
  return {};
}

}  // namespace fabu::coordinator::release
