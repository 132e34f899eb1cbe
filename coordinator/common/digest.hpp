// SHA-256 digests and random identifiers for the coordinator (OpenSSL).
//
// Pure functions, safe from any thread. Randomness comes from RAND_bytes; when
// the generator fails (it does not on a healthy system) the call returns an
// Error rather than a weak value.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "protocol/error.hpp"

namespace fabu::coordinator {

// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);
// The SHA-256 of `data`, its 32 bytes.
std::array<std::uint8_t, 32> Sha256Digest(std::string_view data);

// Lower-case hex of `bytes` random bytes from the OpenSSL CSPRNG.
Result<std::string> RandomHex(std::size_t bytes);

}  // namespace fabu::coordinator
