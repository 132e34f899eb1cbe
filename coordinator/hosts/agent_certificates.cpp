#include "coordinator/hosts/agent_certificates.hpp"

#include <fmt/format.h>
#include <soci/soci.h>

#include "coordinator/auth/users.hpp"
#include "coordinator/hosts/hosts.hpp"

namespace fabu::coordinator {

std::string_view AgentCertificateModeName(AgentCertificateMode mode) {
  return mode == AgentCertificateMode::kRequired ? "required" : "optional";
}

Result<void> CheckAgentCertificate(const AgentIdentity& who, const PeerCertificate& peer,
                                   protocol::UnixSeconds now, AgentCertificateMode mode) {
  const auto refuse = [&who](std::string why) {
    return Fail(ErrorCode::kUnauthenticated, fmt::format("host {}: {}", who.host, std::move(why)));
  };
  if (who.serial.empty()) {
    if (mode == AgentCertificateMode::kRequired) {
      return refuse(
          "it has no client certificate on record and this coordinator requires one "
          "(agent_certificates: required): enroll it again with a new token");
    }
    return {};
  }
  if (!peer.present) {
    return refuse(fmt::format(
        "no client certificate was sent; the host's requests must come with its certificate "
        "(serial {}) and its key (client.key in the agent's data directory) as well as its "
        "credential",
        who.serial));
  }
  if (peer.common_name != who.host) {
    return refuse(fmt::format(
        "the client certificate is for \"{}\", not for this host: a credential is good only "
        "with its own host's certificate",
        peer.common_name.substr(0, 64)));
  }
  if (now >= peer.not_after) {
    return refuse(fmt::format(
        "the client certificate (serial {}) expired at {}: the agent renews it before then; "
        "enroll the host again if it was offline past its expiry",
        peer.serial, protocol::FormatRfc3339Utc(peer.not_after)));
  }
  if (!peer.verify_error.empty()) {
    return refuse(fmt::format("the client certificate was not issued by this coordinator's CA ({})",
                              peer.verify_error));
  }
  if (peer.serial == who.serial) return {};
  if (!who.previous_serial.empty() && peer.serial == who.previous_serial &&
      now < who.previous_until) {
    return {};
  }
  return refuse(fmt::format(
      "the client certificate's serial {} is not the host's current one ({}): it was replaced "
      "by a renewal or a new enrollment",
      peer.serial, who.serial));
}

namespace {

struct IdentityStatement {
  explicit IdentityStatement(soci::session& sql)
      : st((sql.prepare << "SELECT name, removed, revoked_reason, cert_serial, cert_not_after, "
                           "cert_previous_serial, cert_previous_until FROM hosts "
                           "WHERE credential_sha256 = :h",
            soci::use(hash), soci::into(name), soci::into(removed), soci::into(revoked_reason),
            soci::into(serial), soci::into(not_after), soci::into(previous_serial),
            soci::into(previous_until))) {}
  std::string hash, name, revoked_reason, serial, previous_serial;
  long long not_after = 0, previous_until = 0;
  int removed = 0;
  soci::statement st;
};

}  // namespace

Result<AgentIdentity> AuthenticateAgentIdentity(soci::session& sql, StatementCache& statements,
                                                std::string_view credential) {
  if (credential.empty()) return Fail(ErrorCode::kUnauthenticated, "missing agent credential");
  IdentityStatement& find = statements.Get<IdentityStatement>(sql);
  find.hash = HashToken(credential);
  find.st.execute(true);
  const bool found = find.st.got_data();
  AgentIdentity identity{find.name, find.serial, find.not_after, find.previous_serial,
                         find.previous_until};
  const int removed = find.removed;
  const std::string revoked_reason = find.revoked_reason;
  StatementCache::Finish(find.st);
  // The same refusals, worded the same, as AuthenticateAgent.
  if (!found || removed != 0) {
    auto refused = AuthenticateAgent(sql, credential);
    if (!refused) return std::unexpected(refused.error());
    return Fail(ErrorCode::kUnauthenticated, "agent credential refused");
  }
  return identity;
}

void RecordHostCertificate(Transaction& tx, std::string_view host, const std::string& serial,
                           std::int64_t not_after, const std::string& pem,
                           const std::optional<std::string>& presented) {
  std::string name(host);
  std::string old_serial, old_previous;
  long long old_not_after = 0, old_previous_until = 0;
  tx.sql() << "SELECT cert_serial, cert_not_after, cert_previous_serial, cert_previous_until "
              "FROM hosts WHERE name = :n",
      soci::use(name), soci::into(old_serial), soci::into(old_not_after), soci::into(old_previous),
      soci::into(old_previous_until);
  const bool renewal = presented.has_value();
  std::string previous;
  long long previous_until = 0;
  if (renewal && !presented->empty()) {
    if (*presented == old_serial) {
      previous = old_serial;
      previous_until = old_not_after;
    } else if (*presented == old_previous) {
      previous = old_previous;
      previous_until = old_previous_until;
    }
  }
  long long until = not_after;
  std::string serial_text = serial, pem_text = pem;
  tx.sql() << "UPDATE hosts SET cert_serial = :s, cert_not_after = :a, cert_pem = :p, "
              "cert_previous_serial = :ps, cert_previous_until = :pu WHERE name = :n",
      soci::use(serial_text), soci::use(until), soci::use(pem_text), soci::use(previous),
      soci::use(previous_until), soci::use(name);
  AuditEvent event(renewal ? "host.certificate-renew" : "host.certificate", "host", name);
  event.after = {{"serial", serial}, {"not_after", protocol::FormatRfc3339Utc(not_after)}};
  if (renewal) event.before = {{"serial", old_serial}, {"presented", *presented}};
  tx.Audit(event);
}

void ForgetPreviousCertificate(Transaction& tx, std::string_view host, const std::string& serial) {
  std::string name(host), current = serial;
  tx.sql() << "UPDATE hosts SET cert_previous_serial = '', cert_previous_until = 0 "
              "WHERE name = :n AND cert_serial = :s",
      soci::use(name), soci::use(current);
}

}  // namespace fabu::coordinator
