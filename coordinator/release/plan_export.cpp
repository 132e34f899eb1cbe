#include "coordinator/release/plan_export.hpp"

#include <fmt/format.h>

#include <iterator>
#include <vector>

#include "coordinator/release/record_render.hpp"

namespace fabu::coordinator::release {
namespace {

using nlohmann::json;
using Row = std::vector<std::string>;

// The plan document is written once against this small interface and
// rendered by one writer per format.
class DocumentWriter {
 public:
  virtual ~DocumentWriter() = default;
  virtual void Heading(int level, std::string_view text) = 0;
  virtual void Paragraph(std::string_view text) = 0;
  // Free text a person wrote (a plan section, a test report): kept as written.
  virtual void Block(std::string_view text) = 0;
  virtual void Table(const Row& header, const std::vector<Row>& rows) = 0;
};

class MarkdownWriter final : public DocumentWriter {
 public:
  void Heading(int level, std::string_view text) override {
    out_ +=
        fmt::format("{} {}\n\n", std::string(static_cast<std::size_t>(level), '#'), MdCell(text));
  }
  void Paragraph(std::string_view text) override { out_ += fmt::format("{}\n\n", text); }
  void Block(std::string_view text) override {
    // Indented lines keep the author's text from being read as our structure.
    if (text.empty()) {
      out_ += "_(empty)_\n\n";
      return;
    }
    std::size_t start = 0;
    while (start <= text.size()) {
      const std::size_t end = text.find('\n', start);
      const std::string_view line =
          text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
      out_ += fmt::format("> {}\n", line);
      if (end == std::string_view::npos) break;
      start = end + 1;
    }
    out_ += "\n";
  }
  void Table(const Row& header, const std::vector<Row>& rows) override {
    if (rows.empty()) {
      out_ += "_(none)_\n\n";
      return;
    }
    std::string line = "|";
    std::string rule = "|";
    for (const auto& cell : header) {
      fmt::format_to(std::back_inserter(line), " {} |", MdCell(cell));
      rule += "---|";
    }
    out_ += line + "\n" + rule + "\n";
    for (const Row& row : rows) {
      line.assign(1, '|');  // not = "|": a false -Wrestrict of g++ 12 at -O3 (GCC PR 105651)
      for (const auto& cell : row) fmt::format_to(std::back_inserter(line), " {} |", MdCell(cell));
      out_ += line + "\n";
    }
    out_ += "\n";
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

class HtmlWriter final : public DocumentWriter {
 public:
  explicit HtmlWriter(std::string_view title) {
    out_ = fmt::format(
        "<!DOCTYPE html>\n<html lang=\"zh\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<title>{}</title>\n<style>\n"
        "body{{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em;"
        "line-height:1.5}}\n"
        "table{{border-collapse:collapse;margin:0.5em 0}}\n"
        "td,th{{border:1px solid #999;padding:0.2em 0.6em;text-align:left;vertical-align:top}}\n"
        "pre{{white-space:pre-wrap;background:#f4f4f4;padding:0.5em}}\n"
        "code{{font-size:0.9em}}\n.flag{{color:#b00;font-weight:bold}}\n"
        "</style>\n</head>\n<body>\n",
        EscapeHtml(title));
  }
  void Heading(int level, std::string_view text) override {
    out_ += fmt::format("<h{0}>{1}</h{0}>\n", level, EscapeHtml(text));
  }
  void Paragraph(std::string_view text) override {
    out_ += fmt::format("<p>{}</p>\n", EscapeHtml(text));
  }
  void Block(std::string_view text) override {
    out_ += text.empty() ? std::string("<p><em>(empty)</em></p>\n")
                         : fmt::format("<pre>{}</pre>\n", EscapeHtml(text));
  }
  void Table(const Row& header, const std::vector<Row>& rows) override {
    if (rows.empty()) {
      out_ += "<p><em>(none)</em></p>\n";
      return;
    }
    out_ += "<table>\n<tr>";
    for (const auto& cell : header) out_ += fmt::format("<th>{}</th>", EscapeHtml(cell));
    out_ += "</tr>\n";
    for (const Row& row : rows) {
      out_ += "<tr>";
      for (const auto& cell : row) out_ += fmt::format("<td>{}</td>", EscapeHtml(cell));
      out_ += "</tr>\n";
    }
    out_ += "</table>\n";
  }
  std::string Take() {
    out_ += "</body>\n</html>\n";
    return std::move(out_);
  }

 private:
  std::string out_;
};

std::string Utc(UnixSeconds at) { return FormatRfc3339Utc(at); }

void WriteDocument(const Release& release, const PackageCatalog& catalog, DocumentWriter& out) {
  const ReleasePlan& plan = release.plan;
  out.Heading(1, fmt::format("发布方案 Release plan {}: {}", release.id, plan.title));
  out.Table({"", ""},
            {
                {"产品 Product", plan.product},
                {"版本 Version", plan.version.ToString()},
                {"分类 Category", plan.category},
                {"状态 State",
                 std::string(ReleaseStateName(release.state)) +
                     (release.close_code ? fmt::format(" ({})", CloseCodeName(*release.close_code))
                                         : std::string())},
                {"负责人 Owner", release.owner},
                {"创建 Created", Utc(release.created_at)},
                {"内容摘要 Approved content digest (SHA-256)", release.frozen_content_digest.empty()
                                                                   ? std::string("(not approved)")
                                                                   : release.frozen_content_digest},
            });
  if (release.test_waived_ever) {
    out.Paragraph("紧急发布：已免除测试 / EMERGENCY RELEASE: TESTING WAIVED");
  }

  out.Heading(2, "变更请求 Change requests");
  std::vector<Row> refs;
  for (const auto& ref : plan.change_refs) refs.push_back({ref});
  out.Table({"Change ref"}, refs);

  int number = 1;
  for (const PlanSectionInfo& info : PlanSections()) {
    out.Heading(2, fmt::format("{}. {} {}", number++, info.title_zh, info.title_en));
    out.Block(plan.Section(info.section));
  }

  out.Heading(2, "软件包 Packages");
  std::vector<Row> packages;
  for (const auto& id : plan.packages) {
    auto it = catalog.find(id);
    if (it == catalog.end()) {
      packages.push_back({"", "", "", id});
    } else {
      packages.push_back(
          {it->second.name, it->second.version, fmt::format("{}", it->second.size), id});
    }
  }
  out.Table({"Name", "Version", "Size (bytes)", "SHA-256"}, packages);

  out.Heading(2, "目标主机 Targets");
  // fmt::format, not "literal" + std::string: g++ 12 warns falsely on the
  // latter at -O3 (-Wrestrict, GCC PR 105651), which -Werror makes fatal.
  out.Paragraph(plan.targets ? fmt::format("selector: {}", plan.targets->ToString())
                             : std::string("(not chosen)"));

  out.Heading(2, "上线计划 Go-live plan");
  if (!plan.golive) {
    out.Paragraph("(not set)");
  } else {
    const GoLivePlan& g = *plan.golive;
    std::string waves;
    for (const auto& wave : g.waves) waves += (waves.empty() ? "" : ", ") + wave.ToString();
    out.Table(
        {"", ""},
        {
            {"窗口 Window", g.window.start.text + " .. " + g.window.end.text},
            {"批次 Waves", waves},
            {"每批最大失败 Max failures per wave", g.max_failures.ToString()},
            {"批次间 Between waves", g.gate_between_waves
                                         ? std::string("gate (manual confirmation)")
                                         : FormatDuration(g.between_waves_seconds)},
            {"主机超时 Host timeout", FormatDuration(g.host_timeout_seconds)},
            {"自动回退 Auto rollback", g.auto_rollback ? "yes" : "no"},
            {"观察 Observe", FormatDuration(g.observe_seconds) + " every " +
                                 FormatDuration(g.observe_interval_seconds)},
            {"上线评审 Go-live approval",
             !release.golive_approved ? std::string("not approved")
             : release.golive_approval
                 ? fmt::format("approved by {} at {}: {}", release.golive_approval->by,
                               Utc(release.golive_approval->at), release.golive_approval->comment)
                 : std::string("approved with the release plan")},
        });
  }

  out.Heading(2, "评审 Review");
  std::vector<Row> reviews;
  for (const auto& reviewer : plan.reviewers) {
    bool decided = false;
    for (const auto& approval : release.approvals) {
      if (approval.reviewer != reviewer) continue;
      reviews.push_back({reviewer, "approved", Utc(approval.at), approval.comment});
      decided = true;
    }
    if (!decided) reviews.push_back({reviewer, "pending", "", ""});
  }
  for (const auto& rejection : release.rejections) {
    reviews.push_back({rejection.reviewer, fmt::format("rejected (round {})", rejection.round),
                       Utc(rejection.at), rejection.comment});
  }
  out.Table({"Reviewer", "Decision", "Time", "Comment"}, reviews);

  out.Heading(2, "测试报告 Test reports");
  if (release.test_reports.empty()) out.Paragraph("(none)");
  for (const TestReport& report : release.test_reports) {
    out.Heading(3, fmt::format("{} — {} at {} (round {})", TestResultName(report.result),
                               report.author, Utc(report.at), report.round));
    out.Block(report.text);
  }

  out.Heading(2, "验收 Acceptance");
  if (!release.acceptance) {
    out.Paragraph("(not accepted)");
  } else {
    const Acceptance& a = *release.acceptance;
    out.Table({"By", "Time", "Test", "Comment"},
              {{a.by, Utc(a.at),
                a.test_waived ? fmt::format("WAIVED (emergency): {}", a.waive_reason)
                              : std::string("passed"),
                a.comment}});
  }
}

}  // namespace

Result<ExportFormat> ParseExportFormat(std::string_view text) {
  if (text == "md" || text == "markdown") return ExportFormat::kMarkdown;
  if (text == "html") return ExportFormat::kHtml;
  if (text == "json") return ExportFormat::kJson;
  return Fail(ErrorCode::kInvalidArgument,
              fmt::format("unknown format \"{}\" (md, html or json)", text));
}

std::string EscapeHtml(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += ch;
    }
  }
  return out;
}

std::string ExportPlanMarkdown(const Release& release, const PackageCatalog& packages) {
  MarkdownWriter writer;
  WriteDocument(release, packages, writer);
  return writer.Take();
}

std::string ExportPlanHtml(const Release& release, const PackageCatalog& packages) {
  HtmlWriter writer(fmt::format("发布方案 {} {}", release.id, release.plan.title));
  WriteDocument(release, packages, writer);
  return writer.Take();
}

json ExportPlanJson(const Release& release, const PackageCatalog& packages) {
  json doc = ReleaseToJson(release);
  json sections = json::array();
  for (const PlanSectionInfo& info : PlanSections()) {
    sections.push_back(json{{"key", info.key},
                            {"title_zh", info.title_zh},
                            {"title_en", info.title_en},
                            {"text", release.plan.Section(info.section)}});
  }
  doc["sections"] = std::move(sections);
  json package_list = json::array();
  for (const auto& id : release.plan.packages) {
    json entry = {{"id", id}, {"sha256", id}};
    if (auto it = packages.find(id); it != packages.end()) {
      entry["name"] = it->second.name;
      entry["version"] = it->second.version;
      entry["size"] = it->second.size;
    }
    package_list.push_back(std::move(entry));
  }
  doc["packages"] = std::move(package_list);
  doc["document"] = "release_plan";
  return doc;
}

std::string ExportPlan(const Release& release, ExportFormat format,
                       const PackageCatalog& packages) {
  switch (format) {
    case ExportFormat::kMarkdown:
      return ExportPlanMarkdown(release, packages);
    case ExportFormat::kHtml:
      return ExportPlanHtml(release, packages);
    case ExportFormat::kJson:
      return ExportPlanJson(release, packages).dump(2, ' ', false, json::error_handler_t::replace) +
             "\n";
  }
  return {};
}

}  // namespace fabu::coordinator::release
