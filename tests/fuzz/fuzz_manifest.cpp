// The signed package manifest (packaging/manifest.hpp): what a publisher
// wrote, read by every agent before it trusts a byte of the payload.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "packaging/manifest.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto manifest = fabu::packaging::Manifest::Parse(text);
  if (!manifest) return 0;
  (void)fabu::packaging::CheckSymlinkTree(manifest->files);
  (void)manifest->TotalFileBytes();
  // What the parser accepted, written back, reads the same.
  auto again = fabu::packaging::Manifest::Parse(manifest->ToJson());
  if (!again) __builtin_trap();
  return 0;
}
