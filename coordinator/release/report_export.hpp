// The period report (发布管理报告) as JSON, CSV, Markdown or one
// self-contained HTML page with inline SVG charts (releases per category;
// success and timeliness ratios month by month for the last 12 months).
//
// JSON is ReportToJson (kpi.hpp), the same the API returns, whatever the
// language. CSV is one long table "section,key,value" (RFC 4180 quoting), so
// a spreadsheet reads it whole. Times are shown in the report's zone.
//
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "coordinator/release/kpi.hpp"
#include "coordinator/release/record_render.hpp"

namespace fabu::coordinator::release {

enum class RecordFormat { kJson, kCsv, kMarkdown, kHtml };
// "json", "csv", "md" / "markdown", "html". kInvalidArgument naming the value.
Result<RecordFormat> ParseRecordFormat(std::string_view text);

std::string RenderReport(const PeriodReport& report, RecordFormat format, Lang lang,
                         const TimeZone& zone);

}  // namespace fabu::coordinator::release
