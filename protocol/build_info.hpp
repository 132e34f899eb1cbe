// What this build is: the project's version (CMakeLists.txt) and the git
// commit it was built from, printed by `--version` of fabu, fabu-agent and
// fabu-coordinator. Defined in a file written at build time
// (cmake/build_info.cmake).
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace fabu {

std::string_view BuildVersion();  // "0.1.0"
std::string_view BuildCommit();   // "1a2b3c4d5e6f", "…-dirty", or "unknown"

// "fabu-agent 0.1.0 (commit 1a2b3c4d5e6f)"
inline std::string VersionLine(std::string_view program) {
  return fmt::format("{} {} (commit {})", program, BuildVersion(), BuildCommit());
}

}  // namespace fabu
