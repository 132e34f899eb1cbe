// Export of the release plan document (发布方案, procedure §6.2.1, records §8) as
// Markdown, self-contained HTML or JSON: the nine sections under their
// English titles or, with Lang::kZhCn, the procedure's Chinese ones; change
// refs, packages with their digests, targets, the go-live plan (上线方案), the
// reviewers and each decision with time and comment, test reports and
// acceptance (with any emergency waiver, flagged).
//
// Every text a person wrote is escaped for the format (HTML entities; Markdown
// table cells keep no raw '|' or newline). Times are shown in UTC RFC 3339.
// Package facts (name, version, size) are optional: the store knows them, the
// plan only holds the digests.
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "coordinator/release/record_render.hpp"
#include "coordinator/release/workflow.hpp"
#include "protocol/error.hpp"

namespace fabu::coordinator::release {

enum class ExportFormat { kMarkdown, kHtml, kJson };

// "md" / "markdown", "html", "json".
Result<ExportFormat> ParseExportFormat(std::string_view text);

struct PackageFacts {
  std::string name;
  std::string version;
  std::uint64_t size = 0;
};
// Keyed by package id (SHA-256 hex).
using PackageCatalog = std::map<std::string, PackageFacts, std::less<>>;

// Labels, section titles and terms (state, category, close code, decisions,
// test results) in `lang` (record_render.hpp): English by default, the
// procedure's own with zh-CN.
// `preflight`: the latest pre-flight round as GET /api/v1/releases/R/preflight
// gives it (coordinator/deploy/preflight.hpp), or null for none; printed last.
std::string ExportPlanMarkdown(const Release& release, const PackageCatalog& packages = {},
                               Lang lang = Lang::kEn, const nlohmann::json& preflight = nullptr);
std::string ExportPlanHtml(const Release& release, const PackageCatalog& packages = {},
                           Lang lang = Lang::kEn, const nlohmann::json& preflight = nullptr);
// The same whatever the language: keys and values are the API's.
nlohmann::json ExportPlanJson(const Release& release, const PackageCatalog& packages = {},
                              const nlohmann::json& preflight = nullptr);

// The document in `format`, as text (JSON pretty-printed).
std::string ExportPlan(const Release& release, ExportFormat format,
                       const PackageCatalog& packages = {}, Lang lang = Lang::kEn,
                       const nlohmann::json& preflight = nullptr);

// HTML text escaping (& < > " ').
std::string EscapeHtml(std::string_view text);

}  // namespace fabu::coordinator::release
