// The coordinator's config.json (coordinator/config/config.hpp), written by
// an operator and read at every start.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

#include "coordinator/config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const nlohmann::json value = nlohmann::json::parse(text, nullptr, false);
  if (value.is_discarded()) return 0;
  (void)fabu::coordinator::CoordinatorConfig::FromJson(value);
  return 0;
}
