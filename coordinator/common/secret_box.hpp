// Sealing the secrets the coordinator keeps in its store (webhook HMAC keys
// of notify subscriptions), so a copy of the database alone does not give
// them away (docs/coordinator.md, "Secrets at rest").
//
// The key is 32 random bytes in a file of its own beside the store
// (DIR/secret.key, 0600), never in the database. A secret is stored as
//   fabu-sealed:v1:<hex of nonce (12) | ciphertext | tag (16)>
// AES-256-GCM (OpenSSL EVP) with a fresh random nonce per seal; the
// associated data names where the value lives (e.g.
// "notify_subscriptions/N-1/secret"), so a sealed value copied to another
// row does not open there. The version prefix leaves room for another
// scheme later and tells a sealed value from a clear one left by an older
// coordinator. Safe from any thread: the key is read-only after Load.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "protocol/error.hpp"

namespace fabu::coordinator {

class SecretBox {
 public:
  static constexpr std::string_view kPrefix = "fabu-sealed:v1:";
  static constexpr std::size_t kKeyBytes = 32;

  // Reads the key file: a regular file (not a symlink) of exactly 32 bytes.
  static Result<SecretBox> Load(const std::filesystem::path& key_file);
  // Makes a new key file (0600, exclusively: never over an existing one) and
  // returns it loaded.
  static Result<SecretBox> Create(const std::filesystem::path& key_file);
  // A box with the given key (tests).
  static SecretBox FromKey(const std::array<std::uint8_t, kKeyBytes>& key);

  // The sealed form of `plain`, bound to `context`. "" stays "" (no secret).
  Result<std::string> Seal(std::string_view plain, std::string_view context) const;
  // The clear form of a sealed value; refused when it was not sealed by this
  // key for `context`, or is not sealed at all.
  Result<std::string> Open(std::string_view sealed, std::string_view context) const;

  static bool IsSealed(std::string_view value) { return value.starts_with(kPrefix); }

 private:
  std::array<std::uint8_t, kKeyBytes> key_{};
};

}  // namespace fabu::coordinator
