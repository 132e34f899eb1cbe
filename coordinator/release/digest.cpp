#include "coordinator/release/digest.hpp"

#include "packaging/sha256.hpp"

namespace fabu::coordinator::release {

Result<std::string> Sha256Hex(std::string_view bytes) { return packaging::Sha256::OfString(bytes); }

bool IsSha256Hex(std::string_view text) {
  if (text.size() != 64) return false;
  for (char ch : text) {
    const bool digit = ch >= '0' && ch <= '9';
    const bool lower_hex = ch >= 'a' && ch <= 'f';
    if (!digit && !lower_hex) return false;
  }
  return true;
}

}  // namespace fabu::coordinator::release
