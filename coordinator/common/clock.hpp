// Wall-clock time as the coordinator records it: RFC 3339 UTC with
// milliseconds ("2026-12-01T01:00:00.123Z"). Thread-safe.
#pragma once

#include <string>

namespace fabu::coordinator {

std::string NowUtc();

}  // namespace fabu::coordinator
