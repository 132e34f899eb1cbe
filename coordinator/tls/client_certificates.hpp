// Agents' client certificates (mutual TLS), signed by the coordinator's CA
// (certificates.hpp: DIR/ca.pem, DIR/ca.key). docs/security.md says what they
// prove.
//
// An agent makes its own key and sends a PKCS#10 CSR; CheckCertificateRequest
// accepts one whose signature verifies, whose key is EC P-256 or Ed25519 and
// whose subject CN is the host's name; SignClientCertificate then issues a
// certificate with that key and CN only (nothing else of the CSR is copied):
// clientAuth extended key usage, CA:FALSE, a random 128-bit serial, valid
// from now for the lifetime given. The private key never leaves the agent.
//
// ReadPeerCertificate reads what a connection's peer presented, for the
// server's check of each request (a resumed TLS session keeps the peer's
// certificate and its verification result, so the check does not depend on a
// full handshake).
//
// Thread-safe: a ClientCertificateAuthority is immutable once loaded.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "coordinator/common/data_dir.hpp"
#include "coordinator/common/peer_certificate.hpp"
#include "protocol/error.hpp"

namespace fabu::coordinator {

struct IssuedCertificate {
  std::string pem;
  std::string serial;  // lower-case hex, no leading zeros
  std::int64_t not_before = 0;
  std::int64_t not_after = 0;  // Unix seconds
};

// kInvalidArgument naming what is wrong: not a PEM CSR, a signature that does
// not verify, a key other than P-256 or Ed25519, a CN other than `host`.
Result<void> CheckCertificateRequest(std::string_view csr_pem, std::string_view host);

class ClientCertificateAuthority {
 public:
  // Loads DIR/ca.pem and DIR/ca.key; kIo when they cannot be read.
  static Result<ClientCertificateAuthority> Load(const DataDir& data);
  // Checks the CSR (CheckCertificateRequest) and signs a certificate for
  // `host` valid from `now` for `lifetime_seconds`.
  Result<IssuedCertificate> Sign(std::string_view csr_pem, std::string_view host, std::int64_t now,
                                 std::int64_t lifetime_seconds) const;
  // Signs with the given validity, which may lie in the past (tests make an
  // expired certificate with it).
  Result<IssuedCertificate> SignValid(std::string_view csr_pem, std::string_view host,
                                      std::int64_t not_before, std::int64_t not_after) const;

 private:
  struct Keys;
  explicit ClientCertificateAuthority(std::shared_ptr<const Keys> keys) : keys_(std::move(keys)) {}
  std::shared_ptr<const Keys> keys_;
};

// Makes a server context ask its clients for a certificate of the CA in
// `ca_pem` (its name in the list of acceptable CAs) without requiring one:
// the handshake goes on with none, or with one that fails verification, and
// ReadPeerCertificate says which. Also sets the session id context that
// resumption with client verification needs.
Result<void> AskForClientCertificates(SSL_CTX* context, const std::filesystem::path& ca_pem);

// Reads the certificate `ssl`'s peer presented (none: present false).
PeerCertificate ReadPeerCertificate(SSL* ssl);

// Reads a PEM certificate's serial (lower-case hex) and validity; for the
// agent's files and tests.
Result<PeerCertificate> DescribeCertificate(std::string_view pem);

}  // namespace fabu::coordinator
