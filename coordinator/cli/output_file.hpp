// Writing a record the CLI rendered: to stdout, or to --out FILE by a temp
// file beside it, flushed and renamed into place, so a reader never sees
// half a report.
#pragma once

#include <string>

#include "protocol/error.hpp"

namespace fabu::cli {

// `content` to stdout when `path` is empty (a newline added when missing),
// else to `path` atomically. kIo naming the file.
Result<void> WriteOutput(const std::string& content, const std::string& path);

}  // namespace fabu::cli
