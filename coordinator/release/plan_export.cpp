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
  explicit MarkdownWriter(Lang lang) : lang_(lang) {}
  void Heading(int level, std::string_view text) override {
    out_ +=
        fmt::format("{} {}\n\n", std::string(static_cast<std::size_t>(level), '#'), MdCell(text));
  }
  void Paragraph(std::string_view text) override { out_ += fmt::format("{}\n\n", text); }
  void Block(std::string_view text) override {
    // Indented lines keep the author's text from being read as our structure.
    if (text.empty()) {
      out_ += fmt::format("_{}_\n\n", Label(lang_, "empty"));
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
      out_ += fmt::format("_{}_\n\n", Label(lang_, "none"));
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
  Lang lang_;
  std::string out_;
};

class HtmlWriter final : public DocumentWriter {
 public:
  HtmlWriter(Lang lang, std::string_view title) : lang_(lang) {
    out_ = fmt::format(
        "<!DOCTYPE html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<title>{}</title>\n<style>\n"
        "body{{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em;"
        "line-height:1.5}}\n"
        "table{{border-collapse:collapse;margin:0.5em 0}}\n"
        "td,th{{border:1px solid #999;padding:0.2em 0.6em;text-align:left;vertical-align:top}}\n"
        "pre{{white-space:pre-wrap;background:#f4f4f4;padding:0.5em}}\n"
        "code{{font-size:0.9em}}\n.flag{{color:#b00;font-weight:bold}}\n"
        "</style>\n</head>\n<body>\n",
        LangTag(lang), EscapeHtml(title));
  }
  void Heading(int level, std::string_view text) override {
    out_ += fmt::format("<h{0}>{1}</h{0}>\n", level, EscapeHtml(text));
  }
  void Paragraph(std::string_view text) override {
    out_ += fmt::format("<p>{}</p>\n", EscapeHtml(text));
  }
  void Block(std::string_view text) override {
    out_ += text.empty() ? fmt::format("<p><em>{}</em></p>\n", EscapeHtml(Label(lang_, "empty")))
                         : fmt::format("<pre>{}</pre>\n", EscapeHtml(text));
  }
  void Table(const Row& header, const std::vector<Row>& rows) override {
    if (rows.empty()) {
      out_ += fmt::format("<p><em>{}</em></p>\n", EscapeHtml(Label(lang_, "none")));
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
  Lang lang_;
  std::string out_;
};

std::string Utc(UnixSeconds at) { return FormatRfc3339Utc(at); }

std::string L(Lang lang, std::string_view key) { return std::string(Label(lang, key)); }

void WriteDocument(const Release& release, const PackageCatalog& catalog, Lang lang,
                   DocumentWriter& out, const json& preflight) {
  const ReleasePlan& plan = release.plan;
  const bool zh = lang == Lang::kZhCn;
  out.Heading(1, fmt::format("{} {}: {}", L(lang, "doc.plan"), release.id, plan.title));
  std::string state = Term(lang, TermKind::kState, ReleaseStateName(release.state));
  if (release.close_code) {
    state +=
        fmt::format(" ({})", Term(lang, TermKind::kCloseCode, CloseCodeName(*release.close_code)));
  }
  out.Table({"", ""}, {
                          {L(lang, "product"), plan.product},
                          {L(lang, "version"), plan.version.ToString()},
                          {L(lang, "category"), Term(lang, TermKind::kCategory, plan.category)},
                          {L(lang, "state"), state},
                          {L(lang, "owner"), release.owner},
                          {L(lang, "created"), Utc(release.created_at)},
                          {L(lang, "content_digest"), release.frozen_content_digest.empty()
                                                          ? L(lang, "not_approved")
                                                          : release.frozen_content_digest},
                      });
  if (release.test_waived_ever) out.Paragraph(L(lang, "test_waived_flag"));

  out.Heading(2, L(lang, "change_requests"));
  std::vector<Row> refs;
  for (const auto& ref : plan.change_refs) refs.push_back({ref});
  out.Table({L(lang, "change_ref")}, refs);

  int number = 1;
  for (const PlanSectionInfo& info : PlanSections()) {
    out.Heading(2, fmt::format("{}. {}", number++, zh ? info.title_zh : info.title_en));
    out.Block(plan.Section(info.section));
  }

  out.Heading(2, L(lang, "packages"));
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
  out.Table({L(lang, "name"), L(lang, "version"), L(lang, "size"), "SHA-256"}, packages);

  out.Heading(2, L(lang, "targets"));
  // fmt::format, not "literal" + std::string: g++ 12 warns falsely on the
  // latter at -O3 (-Wrestrict, GCC PR 105651), which -Werror makes fatal.
  out.Paragraph(plan.targets ? fmt::format("{}: {}", L(lang, "selector"), plan.targets->ToString())
                             : L(lang, "not_chosen"));

  out.Heading(2, L(lang, "golive"));
  if (!plan.golive) {
    out.Paragraph(L(lang, "not_set"));
  } else {
    const GoLivePlan& g = *plan.golive;
    std::string waves;
    for (const auto& wave : g.waves) waves += (waves.empty() ? "" : ", ") + wave.ToString();
    out.Table(
        {"", ""},
        {
            {L(lang, "window"), g.window.start.text + " .. " + g.window.end.text},
            {L(lang, "waves"), waves},
            {L(lang, "max_failures"), g.max_failures.ToString()},
            {L(lang, "between_waves"),
             g.gate_between_waves ? L(lang, "gate") : FormatDuration(g.between_waves_seconds)},
            {L(lang, "host_timeout"), FormatDuration(g.host_timeout_seconds)},
            {L(lang, "auto_rollback"), L(lang, g.auto_rollback ? "yes" : "no")},
            {L(lang, "observe"),
             fmt::format("{} {} {}", FormatDuration(g.observe_seconds), L(lang, "every"),
                         FormatDuration(g.observe_interval_seconds))},
            {L(lang, "golive_approval"),
             !release.golive_approved ? L(lang, "golive_not_approved")
             : release.golive_approval
                 ? fmt::format("{} {} {}: {}", L(lang, "golive_approved_by"),
                               release.golive_approval->by, Utc(release.golive_approval->at),
                               release.golive_approval->comment)
                 : L(lang, "golive_with_plan")},
        });
  }

  out.Heading(2, L(lang, "review"));
  std::vector<Row> reviews;
  for (const auto& reviewer : plan.reviewers) {
    bool decided = false;
    for (const auto& approval : release.approvals) {
      if (approval.reviewer != reviewer) continue;
      reviews.push_back({reviewer, Term(lang, TermKind::kDecision, "approved"), Utc(approval.at),
                         approval.comment});
      decided = true;
    }
    if (!decided) reviews.push_back({reviewer, Term(lang, TermKind::kDecision, "pending"), "", ""});
  }
  for (const auto& rejection : release.rejections) {
    reviews.push_back({rejection.reviewer,
                       fmt::format("{} ({} {})", Term(lang, TermKind::kDecision, "rejected"),
                                   L(lang, "round"), rejection.round),
                       Utc(rejection.at), rejection.comment});
  }
  out.Table({L(lang, "reviewer"), L(lang, "decision"), L(lang, "time"), L(lang, "comment")},
            reviews);

  out.Heading(2, L(lang, "tests"));
  if (release.test_reports.empty()) out.Paragraph(L(lang, "none"));
  for (const TestReport& report : release.test_reports) {
    out.Heading(3, fmt::format("{} — {} {} ({} {})",
                               Term(lang, TermKind::kTestResult, TestResultName(report.result)),
                               report.author, Utc(report.at), L(lang, "round"), report.round));
    out.Block(report.text);
  }

  out.Heading(2, L(lang, "acceptance"));
  if (!release.acceptance) {
    out.Paragraph(L(lang, "none"));
  } else {
    const Acceptance& a = *release.acceptance;
    out.Table({L(lang, "accepted_by"), L(lang, "time"), L(lang, "result"), L(lang, "comment")},
              {{a.by, Utc(a.at),
                a.test_waived ? fmt::format("⚠ {}: {}", L(lang, "waive_reason"), a.waive_reason)
                              : Term(lang, TermKind::kTestResult, "passed"),
                a.comment}});
  }

  // The latest pre-flight round (procedure §6.2.5): what the reviewers of the
  // go-live saw of the production targets (deploy/preflight.hpp).
  if (preflight.is_object()) {
    out.Heading(2, L(lang, "preflight"));
    out.Paragraph(fmt::format("{} {} — {} ready, {} would fail, {} unknown",
                              preflight.value("id", ""), preflight.value("asked", ""),
                              preflight.value("ready", 0), preflight.value("would_fail", 0),
                              preflight.value("unknown", 0)));
    std::vector<std::vector<std::string>> rows;
    for (const json& h : preflight.value("hosts", json::array())) {
      std::string why;
      for (const json& r : h.value("reasons", json::array())) {
        if (r.is_string()) why += (why.empty() ? "" : "; ") + r.get<std::string>();
      }
      rows.push_back({h.value("host", ""), h.value("state", ""), why});
    }
    out.Table({L(lang, "host"), L(lang, "state"), L(lang, "note")}, rows);
    if (preflight.contains("override") && preflight["override"].is_object()) {
      const json& o = preflight["override"];
      out.Paragraph(fmt::format("{}: {} ({}) — {}", L(lang, "preflight_override"),
                                o.value("by", ""), o.value("at", ""), o.value("reason", "")));
    }
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

std::string ExportPlanMarkdown(const Release& release, const PackageCatalog& packages, Lang lang,
                               const json& preflight) {
  MarkdownWriter writer(lang);
  WriteDocument(release, packages, lang, writer, preflight);
  return writer.Take();
}

std::string ExportPlanHtml(const Release& release, const PackageCatalog& packages, Lang lang,
                           const json& preflight) {
  HtmlWriter writer(
      lang, fmt::format("{} {} {}", Label(lang, "doc.plan"), release.id, release.plan.title));
  WriteDocument(release, packages, lang, writer, preflight);
  return writer.Take();
}

json ExportPlanJson(const Release& release, const PackageCatalog& packages, const json& preflight) {
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
  if (preflight.is_object()) doc["preflight"] = preflight;
  return doc;
}

std::string ExportPlan(const Release& release, ExportFormat format, const PackageCatalog& packages,
                       Lang lang, const json& preflight) {
  switch (format) {
    case ExportFormat::kMarkdown:
      return ExportPlanMarkdown(release, packages, lang, preflight);
    case ExportFormat::kHtml:
      return ExportPlanHtml(release, packages, lang, preflight);
    case ExportFormat::kJson:
      return ExportPlanJson(release, packages, preflight)
                 .dump(2, ' ', false, json::error_handler_t::replace) +
             "\n";
  }
  return {};
}

}  // namespace fabu::coordinator::release
