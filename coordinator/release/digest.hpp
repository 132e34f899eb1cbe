// SHA-256 digests of release content, through OpenSSL's EVP interface.
//
// The digest of a release plan is taken over its canonical JSON text (see
// release_plan.hpp), so two plans with the same meaning have the same digest.
//
// Pure and thread-safe. OpenSSL failing to hash is an invariant violation and
// comes back as kInternal.
#pragma once

#include <string>
#include <string_view>

#include "protocol/error.hpp"

namespace fabu::coordinator::release {

// Lower-case hex SHA-256 of `bytes` (64 characters).
Result<std::string> Sha256Hex(std::string_view bytes);

// True when `text` is 64 lower-case hex digits, the form of a SHA-256 id.
bool IsSha256Hex(std::string_view text);

}  // namespace fabu::coordinator::release
