// Ed25519 publisher keys: generation, loading, signing, verification, trust.
//
// Keys are stored as PEM files that the `openssl` command line reads:
//   PREFIX.key  PKCS#8 private key, mode 0600
//   PREFIX.pub  SubjectPublicKeyInfo public key
// A key id is the first 16 hex digits of SHA-256 over the raw 32-byte public
// key; a manifest names the key that signed it by this id.
//
// PublicKey and TrustStore are values (copyable, immutable after setup) and
// safe to share between threads for reading. SigningKey owns an OpenSSL key.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/error.hpp"

namespace fabu::packaging {

using Signature = std::array<std::uint8_t, 64>;
using RawPublicKey = std::array<std::uint8_t, 32>;

class PublicKey {
 public:
  static Result<PublicKey> FromPem(std::string_view pem);
  static Result<PublicKey> FromPemFile(const std::filesystem::path& path);
  static PublicKey FromRaw(const RawPublicKey& raw);

  const std::string& key_id() const { return key_id_; }
  const RawPublicKey& raw() const { return raw_; }
  std::string ToPem() const;

  // True when `signature` is this key's Ed25519 signature over `message`.
  bool Verify(std::span<const char> message, const Signature& signature) const;

 private:
  RawPublicKey raw_{};
  std::string key_id_;
};

class SigningKey {
 public:
  static Result<SigningKey> FromPemFile(const std::filesystem::path& path);
  // Makes a new random key pair in memory.
  static Result<SigningKey> Generate();

  SigningKey(SigningKey&&) noexcept;
  SigningKey& operator=(SigningKey&&) noexcept;
  ~SigningKey();

  const PublicKey& public_key() const { return public_key_; }
  Result<Signature> Sign(std::span<const char> message) const;

  // Writes PREFIX.key (0600, created exclusively) and PREFIX.pub.
  Result<void> WriteFiles(const std::filesystem::path& prefix) const;

 private:
  struct Impl;
  explicit SigningKey(std::unique_ptr<Impl> impl, PublicKey public_key);
  std::unique_ptr<Impl> impl_;
  PublicKey public_key_;
};

// The publisher keys a reader trusts, looked up by key id.
class TrustStore {
 public:
  void Add(const PublicKey& key);
  Result<void> AddFile(const std::filesystem::path& pem_path);
  const PublicKey* Find(std::string_view key_id) const;
  const std::vector<PublicKey>& keys() const { return keys_; }
  bool empty() const { return keys_.empty(); }

 private:
  std::vector<PublicKey> keys_;
};

// Lower-case hex of bytes, and the bytes of hex (either case); nullopt when
// `hex` is not an even number of hex digits. The one pair the project uses.
std::string ToHex(std::span<const std::uint8_t> bytes);
std::optional<std::vector<std::uint8_t>> FromHex(std::string_view hex);

}  // namespace fabu::packaging
