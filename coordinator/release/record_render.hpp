// What the records share: the language of their labels,
// escaping for each format, and inline SVG charts.
//
// Labels come from one table with the procedure's own Chinese terms
// (发布方案, 发布测试报告, 发布报告, 升级记录表, 发布成功率, 发布及时率, ...) next
// to the English ones; every label a record prints goes through Label(),
// and every state, category, close code, result, ... through Term().
// Escaping: HTML entities for HTML; Markdown cells keep no raw '|' or
// newline; CSV fields are quoted per RFC 4180 when they hold a comma, quote,
// CR or LF. Charts are plain SVG elements (no script, no external resource)
// carrying data-* attributes with their numbers, so a test can read them.
//
// Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/error.hpp"

namespace fabu::coordinator::release {

enum class Lang { kEn, kZhCn };
// "en" or "zh-CN". kInvalidArgument naming the value.
Result<Lang> ParseLang(std::string_view text);
std::string_view LangTag(Lang lang);  // "en", "zh-CN"

// The label `key` in `lang`; the key itself when the table lacks it.
std::string_view Label(Lang lang, std::string_view key);

// What a value names, for Term(): the prefix of its key in the table.
enum class TermKind {
  kState,           // a release state (ReleaseStateName): "rolled_back"
  kCategory,        // a release category: "emergency"
  kCloseCode,       // CloseCodeName: "success"
  kResult,          // a deployment's result (DeploymentResultName): "rolled_back"
  kTestResult,      // TestResultName: "passed"
  kDecision,        // a reviewer's decision: "approved", "rejected", "pending"
  kWaveState,       // a wave of the rollout status: "pending", "running", ...
  kRecordKind,      // an upgrade record's kind: "install", "rollback"
  kDelivery,        // an outbox message's state: "delivered", "given_up", ...
  kEvent,           // a notice event (NoticeEventName): "scheduled"
  kIncidentState,   // "open", "closed"
  kIncidentSource,  // "observation", "manual"
  kAction,          // ActionName: "approve-golive"
  kRole,            // RoleName: "release_manager"
};
// "state", "close_code", ...
std::string_view TermKindName(TermKind kind);
// The term for `value` of `kind` in `lang`, from the same table as the
// labels (key "<kind>.<value>"): Term(kZhCn, kState, "closed") is 已关闭,
// Term(kEn, kResult, "rolled_back") is "Rolled back". Actions and roles
// stay the CLI's words in English. A value the table lacks (a category of
// the coordinator's own) is returned as it is; "" stays "".
std::string Term(Lang lang, TermKind kind, std::string_view value);

std::string CsvField(std::string_view text);
std::string CsvRow(const std::vector<std::string>& fields);  // ends with "\r\n"
std::string MdCell(std::string_view text);                   // "—" when empty
std::string MdTable(const std::vector<std::string>& header,
                    const std::vector<std::vector<std::string>>& rows);
std::string HtmlTable(const std::vector<std::string>& header,
                      const std::vector<std::vector<std::string>>& rows);
// The head of a self-contained HTML page (inline CSS) with `title`; close
// it with HtmlEnd().
std::string HtmlBegin(Lang lang, std::string_view title);
std::string HtmlEnd();

struct Bar {
  std::string label;
  double value = 0;
  std::string text;  // printed above the bar
};
// A bar chart; `id` becomes the svg's id.
std::string SvgBarChart(std::string_view id, std::string_view title, const std::vector<Bar>& bars);

struct Series {
  std::string name;
  std::vector<std::optional<double>> values;  // 0..1; nullopt: no point
};
// A line chart of ratios (0-100%) over `x_labels`; gaps where a value is absent.
std::string SvgRatioChart(std::string_view id, std::string_view title,
                          const std::vector<std::string>& x_labels,
                          const std::vector<Series>& series);

// One measurement of a check on metrics, for its chart.
struct CheckPoint {
  std::string label;            // "wave 1 #2"
  std::optional<double> value;  // none: inconclusive or an error (a grey mark on the axis)
  bool passed = false;
};
// A check's measurements in the order taken, as dots (green passed, red
// not) against its condition's bound (a dashed line); `id` becomes the
// svg's id.
std::string SvgCheckChart(std::string_view id, std::string_view title,
                          const std::vector<CheckPoint>& points, double bound);

// A duration given in milliseconds: "0.3s" and "9.5s" under ten seconds,
// then "42s", "3m 5s", "3h 20m", "2d 1h 0m"; "n/a" for none.
std::string DurationText(std::optional<std::int64_t> milliseconds);

// The last `max_lines` non-empty lines of a hook's output, joined by " | ",
// for a table cell; "" when there is none.
std::string OutputExcerpt(std::string_view output, std::size_t max_lines = 3);

}  // namespace fabu::coordinator::release
