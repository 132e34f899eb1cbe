// The agent's client certificate (mutual TLS with its coordinator;
// docs/security.md, docs/agent.md "Client certificate").
//
// The agent makes its own EC P-256 key (OpenSSL 3); the key never leaves the
// host. Files in the data directory, all 0600, each written durably (temp
// file, fsync, rename, fsync of the directory):
//   client.pem       the certificate, then its private key: one file, so a
//                    renewal replaces both in one rename and the pair on
//                    disk always matches
//   client.key.next  the key of a CSR not answered yet (enrollment,
//                    renewal); kept across retries, removed once the
//                    certificate for it is stored
// Thread-compatible (no shared state).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/error.hpp"

namespace fabu::agent {

inline constexpr std::string_view kClientIdentityFile = "client.pem";
inline constexpr std::string_view kPendingClientKeyFile = "client.key.next";

// A PEM CSR (CN = `host`) for DIR/client.key.next, made now (a new P-256 key)
// unless it exists (a retry of the request it was made for).
Result<std::string> PendingCertificateRequest(const std::filesystem::path& data,
                                              std::string_view host);

// Stores `certificate_pem` with the pending key as DIR/client.pem, replacing
// the previous pair at once, then removes the pending key. kInvalidArgument
// when the certificate is not for that key.
Result<void> StoreClientIdentity(const std::filesystem::path& data,
                                 std::string_view certificate_pem);

// Removes the pending key (the request it was for was refused).
void ForgetPendingKey(const std::filesystem::path& data);

struct ClientCertificateInfo {
  std::string serial;  // lower-case hex
  std::int64_t not_before = 0;
  std::int64_t not_after = 0;  // Unix seconds
  // Renewal is due once less than a third of the lifetime remains.
  bool RenewalDue(std::int64_t now) const {
    return now >= not_after - (not_after - not_before) / 3;
  }
};

// DIR/client.pem's certificate; nullopt when the agent has none (enrolled
// without one).
Result<std::optional<ClientCertificateInfo>> ReadClientIdentity(const std::filesystem::path& data);

}  // namespace fabu::agent
