// A release plan as a release manager writes it, JSON or YAML
// (coordinator/release/release_plan.hpp), its go-live plan included.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "coordinator/release/release_plan.hpp"
#include "coordinator/release/structured_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  namespace rel = fabu::coordinator::release;
  auto plan = rel::ParseReleasePlan(text);
  if (plan) {
    (void)rel::CheckSubmittable(*plan);
    // A plan that parsed, written as JSON, parses to the same plan.
    auto again = rel::ReleasePlanFromJson(rel::ReleasePlanToJson(*plan));
    if (!again || !(*again == *plan)) __builtin_trap();
  }
  return 0;
}
