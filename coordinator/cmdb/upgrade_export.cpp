#include "coordinator/cmdb/upgrade_export.hpp"

#include <fmt/format.h>

#include "coordinator/release/plan_export.hpp"

namespace fabu::coordinator {
namespace {

using nlohmann::json;
using release::Lang;
using release::TermKind;

std::string Time(UnixSeconds at) { return at > 0 ? protocol::FormatRfc3339Utc(at) : ""; }

// The columns: the API's keys (the English CSV header) and the labels of
// the record table (record_render.cpp).
struct Column {
  std::string_view key;
  std::string_view label;
};
constexpr Column kColumns[] = {
    {"host", "host"},     {"package", "package"},       {"from", "from_version"},
    {"to", "to_version"}, {"started", "started"},       {"finished", "finished"},
    {"result", "result"}, {"release", "release"},       {"operator", "operator"},
    {"kind", "kind"},     {"deployment", "deployment"},
};

// The English CSV keeps the keys and values the API uses, so what reads it
// today reads it tomorrow; every other rendering is in `lang`.
std::vector<std::string> Header(Lang lang, bool keys) {
  std::vector<std::string> out;
  for (const Column& c : kColumns) out.emplace_back(keys ? c.key : release::Label(lang, c.label));
  return out;
}

std::vector<std::string> Cells(const UpgradeRecord& r, Lang lang, bool keys) {
  const std::string result(DeploymentResultName(r.result));
  return {r.host,
          r.package,
          r.from_version.empty() ? "-" : r.from_version,
          r.to_version,
          Time(r.started),
          Time(r.finished),
          keys ? result : release::Term(lang, TermKind::kResult, result),
          r.release_id,
          r.operator_name,
          keys ? r.kind : release::Term(lang, TermKind::kRecordKind, r.kind),
          r.deployment_id};
}

std::string Summary(const CmdbConfirmation& c, Lang lang) {
  return fmt::format(fmt::runtime(release::Label(lang, "cmdb_summary")), c.records, c.delivered,
                     c.waived, c.pending, c.failing,
                     release::Label(lang, c.confirmed ? "cmdb_confirmed" : "cmdb_not_confirmed"));
}

}  // namespace

Result<std::string> ExportUpgradeRecords(std::string_view release_id,
                                         const std::vector<UpgradeRecord>& records,
                                         const CmdbConfirmation& confirmation,
                                         std::string_view format, Lang lang) {
  const std::string title =
      fmt::format("{} — {}", release::Label(lang, "doc.upgrade_records"), release_id);
  if (format == "csv") {
    const bool keys = lang == Lang::kEn;
    std::string out = release::CsvRow(Header(lang, keys));
    for (const UpgradeRecord& r : records) out += release::CsvRow(Cells(r, lang, keys));
    return out;
  }
  if (format == "md" || format == "markdown") {
    std::vector<std::vector<std::string>> rows;
    for (const UpgradeRecord& r : records) rows.push_back(Cells(r, lang, false));
    return fmt::format("# {}\n\n{}\n\n", release::MdCell(title), Summary(confirmation, lang)) +
           release::MdTable(Header(lang, false), rows);
  }
  if (format == "html") {
    std::vector<std::vector<std::string>> rows;
    for (const UpgradeRecord& r : records) rows.push_back(Cells(r, lang, false));
    return release::HtmlBegin(lang, title) + "<p>" +
           release::EscapeHtml(Summary(confirmation, lang)) + "</p>\n" +
           release::HtmlTable(Header(lang, false), rows) + release::HtmlEnd();
  }
  if (format == "json") {
    json items = json::array();
    for (const UpgradeRecord& r : records) items.push_back(r.ToJson());
    return json{{"release", release_id}, {"records", items}, {"cmdb", confirmation.ToJson()}}.dump(
        2);
  }
  return Fail(
      ErrorCode::kInvalidArgument,
      fmt::format("\"{}\" is not a format of the upgrade records (csv, md, html or json)", format));
}

}  // namespace fabu::coordinator
