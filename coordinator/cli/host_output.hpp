// How the `fabu` CLI shows what a host reported: the failing hook's output
// under a host's row (`release hosts`, `release status`) and a host's whole
// timeline (`release host R HOST`).
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

namespace fabu::cli {

// "    output: <the last lines>" under a table row, when there is output.
void PrintOutputLine(std::string_view output);

// The answer of GET /api/v1/releases/R/hosts/HOST as a person reads it: each
// deployment, then each event with its time, step, message and output.
void PrintHostTimeline(const nlohmann::json& timeline);

}  // namespace fabu::cli
