// A go-live plan (coordinator/release/golive_plan.hpp): window, waves,
// thresholds and observation, JSON or YAML.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "coordinator/release/golive_plan.hpp"
#include "coordinator/release/structured_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  namespace rel = fabu::coordinator::release;
  auto document = rel::ParseDocument(text);
  if (!document) return 0;
  (void)rel::CanonicalJsonText(*document);
  auto plan = rel::GoLivePlanFromJson(*document);
  if (!plan) return 0;
  auto again = rel::GoLivePlanFromJson(rel::GoLivePlanToJson(*plan));
  if (!again) __builtin_trap();
  return 0;
}
