// What a request's TLS peer presented as its client certificate, read from
// the connection for every request (coordinator/tls/client_certificates.hpp)
// and judged against the host's record (coordinator/hosts/agent_certificates.hpp).
// A value type; thread-safe.
#pragma once

#include <cstdint>
#include <string>

namespace fabu::coordinator {

struct PeerCertificate {
  bool present = false;  // the client sent a certificate
  // OpenSSL's verification of it against the coordinator's CA (chain,
  // signature, validity period at the handshake): "" when it passed, else
  // OpenSSL's reason ("certificate has expired", "unable to get local issuer
  // certificate"...).
  std::string verify_error;
  std::string common_name;
  std::string serial;           // lower-case hex, no leading zeros
  std::int64_t not_after = 0;   // Unix seconds
  std::int64_t not_before = 0;  // Unix seconds
};

}  // namespace fabu::coordinator
