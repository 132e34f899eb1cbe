#include "coordinator/cmdb/upgrade_export.hpp"

#include <fmt/format.h>

#include "coordinator/release/plan_export.hpp"

namespace fabu::coordinator {
namespace {

using nlohmann::json;

std::string Time(UnixSeconds at) { return at > 0 ? protocol::FormatRfc3339Utc(at) : ""; }

const std::vector<std::string>& Header() {
  static const std::vector<std::string> kHeader = {"host",     "package",  "from",      "to",
                                                   "started",  "finished", "result",    "release",
                                                   "operator", "kind",     "deployment"};
  return kHeader;
}

std::vector<std::string> Cells(const UpgradeRecord& r) {
  return {r.host,
          r.package,
          r.from_version.empty() ? "-" : r.from_version,
          r.to_version,
          Time(r.started),
          Time(r.finished),
          std::string(DeploymentResultName(r.result)),
          r.release_id,
          r.operator_name,
          r.kind,
          r.deployment_id};
}

std::string CsvField(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string MarkdownCell(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '|') {
      out += "\\|";
    } else if (c == '\n' || c == '\r') {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::string Summary(const CmdbConfirmation& c) {
  return fmt::format(
      "{} record(s); outward deliveries: {} delivered, {} waived, {} pending, {} failing; CMDB "
      "update {}",
      c.records, c.delivered, c.waived, c.pending, c.failing,
      c.confirmed ? "confirmed" : "not confirmed yet");
}

}  // namespace

Result<std::string> ExportUpgradeRecords(std::string_view release_id,
                                         const std::vector<UpgradeRecord>& records,
                                         const CmdbConfirmation& confirmation,
                                         std::string_view format) {
  const std::string title = fmt::format("升级记录表 Upgrade records — {}", release_id);
  if (format == "csv") {
    std::string out;
    for (std::size_t i = 0; i < Header().size(); ++i) out += (i ? "," : "") + Header()[i];
    out += "\r\n";
    for (const UpgradeRecord& r : records) {
      const auto cells = Cells(r);
      for (std::size_t i = 0; i < cells.size(); ++i) out += (i ? "," : "") + CsvField(cells[i]);
      out += "\r\n";
    }
    return out;
  }
  if (format == "md" || format == "markdown") {
    std::string out = fmt::format("# {}\n\n{}\n\n", title, Summary(confirmation));
    out += "|";
    for (const auto& h : Header()) out += " " + h + " |";
    out += "\n|";
    for (std::size_t i = 0; i < Header().size(); ++i) out += "---|";
    out += "\n";
    for (const UpgradeRecord& r : records) {
      out += "|";
      for (const auto& cell : Cells(r)) out += " " + MarkdownCell(cell) + " |";
      out += "\n";
    }
    return out;
  }
  if (format == "html") {
    using release::EscapeHtml;
    std::string out = fmt::format(
        "<!DOCTYPE html>\n<html lang=\"zh\"><head><meta charset=\"utf-8\"><title>{0}</title>"
        "<style>body{{font-family:sans-serif}}table{{border-collapse:collapse}}"
        "td,th{{border:1px solid #999;padding:2px 6px}}</style></head><body>\n"
        "<h1>{0}</h1>\n<p>{1}</p>\n<table>\n<tr>",
        EscapeHtml(title), EscapeHtml(Summary(confirmation)));
    for (const auto& h : Header()) out += "<th>" + EscapeHtml(h) + "</th>";
    out += "</tr>\n";
    for (const UpgradeRecord& r : records) {
      out += "<tr>";
      for (const auto& cell : Cells(r)) out += "<td>" + EscapeHtml(cell) + "</td>";
      out += "</tr>\n";
    }
    out += "</table>\n</body></html>\n";
    return out;
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
