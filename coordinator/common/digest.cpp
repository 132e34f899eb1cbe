#include "coordinator/common/digest.hpp"

#include <openssl/rand.h>

#include <vector>

#include "packaging/keys.hpp"
#include "packaging/sha256.hpp"

namespace fabu::coordinator {

std::string Sha256Hex(std::string_view data) { return packaging::Sha256::OfString(data); }

std::array<std::uint8_t, 32> Sha256Digest(std::string_view data) {
  packaging::Sha256 hash;
  hash.Update(data);
  return hash.Finish();
}

Result<std::string> RandomHex(std::size_t bytes) {
  std::vector<std::uint8_t> buffer(bytes);
  if (RAND_bytes(buffer.data(), static_cast<int>(buffer.size())) != 1) {
    return Fail(ErrorCode::kInternal, "the OpenSSL random generator failed");
  }
  return packaging::ToHex(buffer);
}

}  // namespace fabu::coordinator
