// Export of a release's upgrade record table (升级记录表, procedure §8) as CSV,
// Markdown, self-contained HTML or JSON: one row per production deployment
// that ended (host, package, from, to, started, finished, result, operator,
// kind, deployment), with the CMDB confirmation of the release.
//
// Labels and terms (result, kind) are in the language asked for
// (record_render.hpp): English by default, the procedure's with zh-CN. The
// English CSV keeps the API's keys and values ("host,package,...",
// "rolled_back", "install") for what reads it; JSON is the same in every
// language.
//
// Text is escaped for the format (CSV quoting per RFC 4180, HTML entities,
// no raw '|' or newline in a Markdown cell). Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "coordinator/cmdb/cmdb.hpp"
#include "coordinator/release/record_render.hpp"
#include "protocol/error.hpp"

namespace fabu::coordinator {

// "csv", "md" / "markdown", "html", "json"; kInvalidArgument naming the choices.
Result<std::string> ExportUpgradeRecords(std::string_view release_id,
                                         const std::vector<UpgradeRecord>& records,
                                         const CmdbConfirmation& confirmation,
                                         std::string_view format,
                                         release::Lang lang = release::Lang::kEn);

}  // namespace fabu::coordinator
