// Streaming SHA-256 over OpenSSL's EVP interface.
//
// Not thread-safe: one hasher per stream. Cheap to create; the digest uses the
// CPU's SHA extensions where OpenSSL finds them.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "protocol/error.hpp"

namespace fabu::packaging {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;

  void Update(const void* data, std::size_t size);
  void Update(std::string_view data) { Update(data.data(), data.size()); }
  // The 32-byte digest; the hasher must not be used afterwards.
  using Digest = std::array<std::uint8_t, 32>;
  Digest Finish();
  // Lower-case hex digest; the hasher must not be used afterwards.
  std::string FinishHex();

  static std::string OfString(std::string_view data);
  static Result<std::string> OfFile(const std::filesystem::path& path);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fabu::packaging
