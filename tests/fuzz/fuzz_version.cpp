// The small grammars read from plans, packages and the command line:
// versions (Va.b.c.d), version changes, RFC 3339 times, durations ("15m") and
// host amounts ("10%", "3", "rest").
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "coordinator/release/golive_plan.hpp"
#include "protocol/timestamp.hpp"
#include "protocol/version.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto version = fabu::protocol::Version::Parse(text)) {
    // A version that parsed prints as text that parses to the same version.
    auto again = fabu::protocol::Version::Parse(version->ToString());
    if (!again || !(*again == *version)) __builtin_trap();
  }
  (void)fabu::protocol::ParseVersionChange(text);
  (void)fabu::protocol::ParseRfc3339(text);
  (void)fabu::protocol::ParseDuration(text);
  (void)fabu::coordinator::release::ParseHostAmount(text, true);
  (void)fabu::coordinator::release::ParseHostAmount(text, false);
  return 0;
}
