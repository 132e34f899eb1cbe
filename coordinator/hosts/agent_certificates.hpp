// Agents' client certificates (mutual TLS) as the host's record knows them,
// and the check of each agent request against it. docs/security.md says what
// the certificate proves and what the bearer credential still does.
//
// A host enrolled with a CSR has a certificate on record (its serial and
// notAfter; during a renewal also the serial it replaced). Every request
// authenticated by that host's credential must then also come with that
// certificate, issued by the coordinator's CA, whose CN is the host and whose
// serial is the current one (or the previous one, until the agent first uses
// the new one or the old one expires), and not expired. A host without one
// on record (enrolled before certificates, or without a CSR) passes on its
// credential alone unless the coordinator requires certificates.
//
// Functions take the session or Transaction the caller holds; renewal audits
// in the same transaction. Thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "coordinator/common/peer_certificate.hpp"
#include "coordinator/store/store.hpp"
#include "protocol/error.hpp"
#include "protocol/timestamp.hpp"

namespace fabu::coordinator {

// config.json `agent_certificates`.
enum class AgentCertificateMode {
  kOptional,  // hosts without a certificate on record use their credential alone
  kRequired,  // enrollment needs a CSR; a host without a certificate is refused
};
std::string_view AgentCertificateModeName(AgentCertificateMode mode);

// Who a credential belongs to, with the certificate the host must present.
struct AgentIdentity {
  std::string host;
  std::string serial;               // "" when the host has no certificate
  std::int64_t not_after = 0;       // of the current certificate
  std::string previous_serial;      // the one the last renewal replaced, or ""
  std::int64_t previous_until = 0;  // accepted until then
  bool operator==(const AgentIdentity&) const = default;
};

// kUnauthenticated naming what is wrong: no certificate sent, another host's
// certificate, one not issued by this coordinator's CA, a serial that is not
// the host's (replaced or revoked), an expired one, or (kRequired) a host
// without a certificate on record.
Result<void> CheckAgentCertificate(const AgentIdentity& who, const PeerCertificate& peer,
                                   protocol::UnixSeconds now, AgentCertificateMode mode);

// The identity of the host holding `credential`, or kUnauthenticated as
// AuthenticateAgent (hosts.hpp) says it (unknown, removed, revoked).
Result<AgentIdentity> AuthenticateAgentIdentity(soci::session& sql, StatementCache& statements,
                                                std::string_view credential);

// Records a newly issued certificate of `host`. At enrollment `presented`
// is nullopt. A renewal passes the serial its request came with: that one
// (the current or the previous serial, the one the agent holds) stays
// accepted as the previous serial until its end, so a renewal whose answer
// was lost, tried again with the old certificate, never shuts the agent out.
// Audited "host.certificate" / "host.certificate-renew" with the serial and
// notAfter.
void RecordHostCertificate(Transaction& tx, std::string_view host, const std::string& serial,
                           std::int64_t not_after, const std::string& pem,
                           const std::optional<std::string>& presented);

// Forgets the previous serial once the host used its new certificate. Not
// audited (the renewal was).
void ForgetPreviousCertificate(Transaction& tx, std::string_view host, const std::string& serial);

}  // namespace fabu::coordinator
