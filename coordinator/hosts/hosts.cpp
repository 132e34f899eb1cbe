#include "coordinator/hosts/hosts.hpp"

#include <fmt/format.h>
#include <soci/soci.h>

#include <array>
#include <cstdint>

#include "coordinator/auth/users.hpp"
#include "coordinator/common/clock.hpp"
#include "coordinator/common/digest.hpp"
#include "coordinator/common/json_input.hpp"
#include "coordinator/common/secret_box.hpp"
#include "coordinator/hosts/hosts_internal.hpp"
#include "coordinator/release/release_plan.hpp"
#include "coordinator/store/dialect.hpp"
#include "coordinator/store/row_query.hpp"

namespace fabu::coordinator {
namespace {

using detail::LabelsFrom;
using detail::LabelsJson;
using detail::TokenTag;
using nlohmann::json;

struct HostRow {
  std::string name, labels, inventory, agent_version, enrolled, removed_at, removed_by,
      revoked_reason, cert_serial, cert_previous_serial;
  long long last_seen = 0, cert_not_after = 0;
  int removed = 0;

  HostRecord ToRecord() const {
    HostRecord host;
    host.name = name;
    host.labels = LabelsFrom(labels);
    host.inventory = json::parse(inventory, nullptr, false);
    if (host.inventory.is_discarded()) host.inventory = json::object();
    host.agent_version = agent_version;
    host.enrolled = enrolled;
    host.last_seen = last_seen;
    host.removed = removed != 0;
    host.removed_at = removed_at;
    host.removed_by = removed_by;
    host.revoked_reason = revoked_reason;
    host.cert_serial = cert_serial;
    host.cert_not_after = cert_not_after;
    host.cert_previous_serial = cert_previous_serial;
    return host;
  }
};

constexpr const char* kHostColumns =
    "name, labels, inventory, agent_version, enrolled, last_seen, removed, removed_at, removed_by, "
    "revoked_reason, cert_serial, cert_not_after, cert_previous_serial";

// Binds `row` to the columns of kHostColumns, in their order.
void IntoHost(soci::statement& st, HostRow& row) {
  st.exchange(soci::into(row.name));
  st.exchange(soci::into(row.labels));
  st.exchange(soci::into(row.inventory));
  st.exchange(soci::into(row.agent_version));
  st.exchange(soci::into(row.enrolled));
  st.exchange(soci::into(row.last_seen));
  st.exchange(soci::into(row.removed));
  st.exchange(soci::into(row.removed_at));
  st.exchange(soci::into(row.removed_by));
  st.exchange(soci::into(row.revoked_reason));
  st.exchange(soci::into(row.cert_serial));
  st.exchange(soci::into(row.cert_not_after));
  st.exchange(soci::into(row.cert_previous_serial));
}

// Reads hosts' installed apps with one statement prepared once (a wave's
// targets are read host by host; SQLite parsing the query anew for each of
// 20,000 hosts was most of `release start`).
class AppsReader {
 public:
  explicit AppsReader(soci::session& sql)
      : st_((sql.prepare << "SELECT app, current_version, releases FROM host_apps "
                            "WHERE host = :h ORDER BY app",
             soci::use(host_), soci::into(app_), soci::into(current_), soci::into(releases_))) {}

  AppsReader(const AppsReader&) = delete;  // the statement is bound to the members
  AppsReader& operator=(const AppsReader&) = delete;

  void Load(HostRecord& host) {
    host_ = host.name;
    st_.execute(false);
    while (st_.fetch()) {
      InstalledAppRecord record{app_, current_, {}};
      auto list = json::parse(releases_, nullptr, false);
      if (list.is_array()) {
        for (const auto& v : list) {
          if (v.is_string()) record.releases.push_back(v.get<std::string>());
        }
      }
      host.apps.push_back(std::move(record));
    }
  }

 private:
  std::string host_, app_, current_, releases_;
  soci::statement st_;
};

void WriteApps(Transaction& tx, const std::string& host,
               const std::vector<protocol::InstalledApp>& apps) {
  soci::session& sql = tx.sql();
  sql << "DELETE FROM host_apps WHERE host = :h", soci::use(host);
  const std::string now = tx.clock().Utc();
  for (const protocol::InstalledApp& app : apps) {
    std::string name = app.name, current = app.current, releases = json(app.releases).dump();
    std::string h = host, updated = now;
    sql << "INSERT INTO host_apps (host, app, current_version, releases, updated) "
           "VALUES (:h, :a, :c, :r, :u) ON CONFLICT (host, app) DO NOTHING",
        soci::use(h), soci::use(name), soci::use(current), soci::use(releases), soci::use(updated);
  }
}

}  // namespace

Result<void> CheckHostName(std::string_view name) {
  // Quoted back (and recorded, when refused) only as a short excerpt.
  const std::string shown = SafeExcerpt(name, 64);
  if (name.empty() || name.size() > 64) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("host name \"{}\" must be 1 to 64 characters", shown));
  }
  auto is_alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!is_alnum(name.front())) {
    return Fail(
        ErrorCode::kInvalidArgument,
        fmt::format("host name \"{}\" must start with a lower-case letter or digit", shown));
  }
  for (char c : name) {
    if (!is_alnum(c) && c != '.' && c != '-') {
      return Fail(ErrorCode::kInvalidArgument,
                  fmt::format("host name \"{}\" may hold only a-z, 0-9, '.' and '-'", shown));
    }
  }
  // And it is a DNS name: no empty label, none longer than 63.
  if (auto dns = protocol::CheckDnsName(name); !dns) {
    return Fail(ErrorCode::kInvalidArgument, fmt::format("host name: {}", dns.error().message()));
  }
  return {};
}

Result<void> CheckLabels(const Labels& labels, std::string_view path) {
  for (const auto& [key, value] : labels) {
    auto parsed = release::TargetSelector::Parse(fmt::format("{}={}", key, value));
    if (!parsed) {
      return Fail(ErrorCode::kInvalidArgument,
                  fmt::format("{}.{}: {}", path, key, parsed.error().message()));
    }
  }
  return {};
}

bool LabelsMatch(const Labels& labels, const LabelSelector& selector) {
  for (const auto& [key, value] : selector) {
    auto it = labels.find(key);
    if (it == labels.end() || it->second != value) return false;
  }
  return true;
}

namespace {

// The box sealing the credential kept for a repeated enrollment
// (AES-256-GCM, secret_box.hpp). Its key is derived from the agent's enroll
// key, 256 random bits the store never holds (it keeps a different hash of
// them to recognise the retry), so the store alone does not give the
// credential away.
SecretBox EnrollBox(std::string_view enroll_key) {
  static_assert(SecretBox::kKeyBytes == 32);
  return SecretBox::FromKey(Sha256Digest(fmt::format("fabu-enroll-seal:{}", enroll_key)));
}

std::string EnrollContext(std::string_view name) { return fmt::format("hosts/{}/enroll", name); }

// The answer of an enrollment that committed, when `request` repeats it: the
// same token, name and enroll key, the host not removed since and its
// credential unchanged.
std::optional<protocol::EnrollResponse> RepeatedEnrollment(soci::session& sql,
                                                           const protocol::EnrollRequest& request,
                                                           const std::string& token_hash) {
  if (request.enroll_key.empty()) return std::nullopt;
  std::string name = request.name, credential_hash, labels, enroll_token, enroll_key, sealed,
              cert_pem;
  int removed = 0;
  sql << "SELECT credential_sha256, labels, removed, enroll_token_sha256, enroll_key_sha256, "
         "enroll_sealed, cert_pem FROM hosts WHERE name = :n",
      soci::use(name), soci::into(credential_hash), soci::into(labels), soci::into(removed),
      soci::into(enroll_token), soci::into(enroll_key), soci::into(sealed), soci::into(cert_pem);
  if (!sql.got_data() || removed != 0 || sealed.empty() || enroll_token != token_hash ||
      enroll_key != Sha256Hex(request.enroll_key)) {
    return std::nullopt;
  }
  auto credential = EnrollBox(request.enroll_key).Open(sealed, EnrollContext(name));
  if (!credential || HashToken(*credential) != credential_hash) return std::nullopt;
  // The certificate issued then (public), so a retry with the same key
  // gets the same certificate: the agent keeps its key across retries.
  return protocol::EnrollResponse{name, std::move(*credential), LabelsFrom(labels),
                                  request.csr.empty() ? std::string() : cert_pem};
}

}  // namespace

Result<protocol::EnrollResponse> EnrollHost(Store& store, const AuditOrigin& origin,
                                            const protocol::EnrollRequest& request, UnixSeconds now,
                                            EnrollRefusals* refusals,
                                            const EnrollCertificates* certificates) {
  struct Outcome {
    std::optional<Error> refused;
    protocol::EnrollResponse response;
  };
  // Whatever the caller sent is recorded only as a short excerpt: enrollment
  // is public (docs/coordinator.md, "The audit trail").
  const std::string shown_name = SafeExcerpt(request.name, 64);
  AuditOrigin as_host = origin;
  as_host.actor = "host:" + shown_name;
  as_host.role = "agent";
  auto outcome = store.Write(as_host, [&](Transaction& tx) -> Result<Outcome> {
    const std::string token_hash = HashToken(request.token);
    // A refusal is committed with its audit entry (or counted into a summary
    // entry when its address sent many: enroll_refusals.hpp), and only that.
    auto refuse = [&](Error error) -> Result<Outcome> {
      std::vector<EnrollRefusals::Summary> ended;
      const bool audit =
          refusals == nullptr || refusals->Count(origin.source, now, error.message(), ended);
      for (const EnrollRefusals::Summary& summary : ended) tx.Audit(summary.ToAuditEvent());
      if (audit) {
        AuditEvent event("host.enroll-refused", "host", shown_name);
        event.detail = {{"reason", SafeExcerpt(error.message(), 256)},
                        {"token", TokenTag(token_hash)}};
        tx.Audit(event);
      }
      return Outcome{std::move(error), {}};
    };
    if (auto ok = CheckHostName(request.name); !ok) return refuse(ok.error().WithContext("name"));
    if (auto ok = CheckLabels(request.labels, "labels"); !ok) return refuse(ok.error());

    std::string token_labels, revoked;
    long long uses_allowed = 0, uses = 0, expires = 0;
    tx.sql() << "SELECT labels, uses_allowed, uses, expires, revoked FROM enroll_tokens "
                "WHERE token_sha256 = :h",
        soci::use(token_hash), soci::into(token_labels), soci::into(uses_allowed), soci::into(uses),
        soci::into(expires), soci::into(revoked);
    if (request.token.empty() || !tx.sql().got_data()) {
      return refuse(Error(ErrorCode::kUnauthenticated,
                          "unknown enrollment token: ask an admin or release manager for one "
                          "(`fabu enroll-token create`)"));
    }
    // The retry of an enrollment whose answer was lost: the same answer,
    // whether or not the token has uses left or has expired since.
    if (auto again = RepeatedEnrollment(tx.sql(), request, token_hash)) {
      AuditEvent event("host.enroll-repeated", "host", again->name);
      event.detail = {{"token", TokenTag(token_hash)}};
      tx.Audit(event);
      return Outcome{std::nullopt, std::move(*again)};
    }
    if (!revoked.empty()) {
      return refuse(Error(ErrorCode::kPermissionDenied,
                          fmt::format("the enrollment token was revoked at {}: ask for a new one "
                                      "(`fabu enroll-token create`)",
                                      revoked)));
    }
    if (uses >= uses_allowed) {
      return refuse(Error(ErrorCode::kPermissionDenied,
                          fmt::format("the enrollment token was already used ({} of {} use(s)): "
                                      "ask for a new one (`fabu enroll-token create`)",
                                      uses, uses_allowed)));
    }
    if (now >= expires) {
      return refuse(Error(ErrorCode::kPermissionDenied,
                          fmt::format("the enrollment token expired at {}: ask for a new one "
                                      "(`fabu enroll-token create`)",
                                      protocol::FormatRfc3339Utc(expires))));
    }
    int removed = 0;
    std::string existing_name = request.name;
    std::string previous_token, revoked_reason;
    tx.sql() << "SELECT removed, enroll_token_sha256, revoked_reason FROM hosts WHERE name = :n",
        soci::use(existing_name), soci::into(removed), soci::into(previous_token),
        soci::into(revoked_reason);
    const bool existed = tx.sql().got_data();
    // A revoked host comes back only with a token made for it since: the
    // one it enrolled with (a multi-use token, say) may be in the wrong hands.
    if (existed && removed != 0 && !revoked_reason.empty() && previous_token == token_hash) {
      return refuse(Error(ErrorCode::kPermissionDenied,
                          fmt::format("host {} was revoked; it enrolls again only with a new "
                                      "enrollment token, not the one it enrolled with",
                                      request.name)));
    }
    if (existed && removed == 0) {
      return refuse(Error(ErrorCode::kAlreadyExists,
                          fmt::format("host {} is already enrolled; to enroll it again an admin "
                                      "must remove it first (`fabu host remove {}`)",
                                      request.name, request.name)));
    }

    std::optional<HostCertificate> certificate;
    if (request.csr.empty()) {
      if (certificates != nullptr && certificates->mode == AgentCertificateMode::kRequired) {
        return refuse(Error(ErrorCode::kInvalidArgument,
                            "csr: this coordinator requires agents to enroll with a client "
                            "certificate signing request (agent_certificates: required); use a "
                            "fabu-agent that sends one"));
      }
    } else {
      if (certificates == nullptr || !certificates->sign) {
        return refuse(Error(ErrorCode::kInvalidArgument,
                            "csr: this coordinator does not issue client certificates"));
      }
      auto signed_cert = certificates->sign(request.csr, request.name);
      if (!signed_cert) {
        if (signed_cert.error().code() != ErrorCode::kInvalidArgument) {
          return std::unexpected(signed_cert.error());
        }
        return refuse(signed_cert.error());
      }
      certificate = std::move(*signed_cert);
    }

    auto credential = RandomHex(32);
    if (!credential) return std::unexpected(credential.error());
    Labels labels = request.labels;
    for (const auto& [key, value] : LabelsFrom(token_labels)) labels[key] = value;
    std::string name = request.name;
    std::string credential_hash = HashToken(*credential);
    std::string labels_text = LabelsJson(labels).dump();
    std::string inventory = protocol::InventoryToJson(request.inventory).dump();
    std::string agent_version = request.inventory.agent_version;
    std::string enrolled = tx.clock().Utc();
    long long last_seen = now;
    std::string enroll_token = token_hash;
    std::string enroll_key =
        request.enroll_key.empty() ? std::string() : Sha256Hex(request.enroll_key);
    std::string sealed;
    if (!request.enroll_key.empty()) {
      auto box = EnrollBox(request.enroll_key).Seal(*credential, EnrollContext(name));
      if (!box) return std::unexpected(box.error());
      sealed = std::move(*box);
    }
    if (existed) {
      tx.sql()
          << "UPDATE hosts SET credential_sha256 = :c, labels = :l, inventory = :i, "
             "agent_version = :v, enrolled = :e, last_seen = :s, removed = 0, "
             "removed_at = '', removed_by = '', revoked_reason = '', enroll_token_sha256 = :t, "
             "enroll_key_sha256 = :k, enroll_sealed = :x, cert_serial = '', cert_not_after = 0, "
             "cert_pem = '', cert_previous_serial = '', cert_previous_until = 0 WHERE name = :n",
          soci::use(credential_hash), soci::use(labels_text), soci::use(inventory),
          soci::use(agent_version), soci::use(enrolled), soci::use(last_seen),
          soci::use(enroll_token), soci::use(enroll_key), soci::use(sealed), soci::use(name);
    } else {
      tx.sql() << "INSERT INTO hosts (name, credential_sha256, labels, inventory, agent_version, "
                  "enrolled, last_seen, removed, removed_at, removed_by, enroll_token_sha256, "
                  "enroll_key_sha256, enroll_sealed) VALUES (:n, :c, :l, :i, :v, :e, :s, 0, '', "
                  "'', :t, :k, :x)",
          soci::use(name), soci::use(credential_hash), soci::use(labels_text), soci::use(inventory),
          soci::use(agent_version), soci::use(enrolled), soci::use(last_seen),
          soci::use(enroll_token), soci::use(enroll_key), soci::use(sealed);
    }
    WriteApps(tx, name, request.inventory.apps);
    if (certificate) {
      RecordHostCertificate(tx, name, certificate->serial, certificate->not_after, certificate->pem,
                            std::nullopt);
    }
    std::string hash = token_hash;
    tx.sql() << "UPDATE enroll_tokens SET uses = uses + 1 WHERE token_sha256 = :h", soci::use(hash);
    AuditEvent event("host.enroll", "host", name);
    event.after = {{"name", name},
                   {"labels", LabelsJson(labels)},
                   {"agent_version", agent_version},
                   {"hostname", request.inventory.hostname}};
    event.detail = {{"token", TokenTag(token_hash)}, {"enrolled_again", existed}};
    if (certificate) event.detail["certificate_serial"] = certificate->serial;
    tx.Audit(event);
    tx.Raise(HostEnrolled{name, labels, now});
    return Outcome{std::nullopt,
                   protocol::EnrollResponse{name, *credential, labels,
                                            certificate ? certificate->pem : std::string()}};
  });
  if (!outcome) return std::unexpected(outcome.error());
  if (outcome->refused) return std::unexpected(*outcome->refused);
  return outcome->response;
}

namespace {

struct AgentCredentialStatement {
  explicit AgentCredentialStatement(soci::session& sql)
      : st((sql.prepare << "SELECT name, removed, revoked_reason FROM hosts "
                           "WHERE credential_sha256 = :h",
            soci::use(hash), soci::into(name), soci::into(removed), soci::into(revoked_reason))) {}
  std::string hash, name, revoked_reason;
  int removed = 0;
  soci::statement st;
};

Result<std::string> AgentOf(bool found, const std::string& name, int removed,
                            const std::string& revoked_reason) {
  if (!found) {
    return Fail(ErrorCode::kUnauthenticated,
                "unknown agent credential (a user token is no agent credential): enroll the host "
                "with `fabu-agent enroll`");
  }
  if (removed != 0 && !revoked_reason.empty()) {
    return Fail(ErrorCode::kUnauthenticated,
                fmt::format("host {} was revoked by an admin ({}); it enrolls again only with a "
                            "new enrollment token",
                            name, revoked_reason));
  }
  if (removed != 0) {
    return Fail(
        ErrorCode::kUnauthenticated,
        fmt::format("host {} was removed by an admin; enroll it again with a new token", name));
  }
  return name;
}

}  // namespace

Result<std::string> AuthenticateAgent(soci::session& sql, std::string_view credential) {
  if (credential.empty()) {
    return Fail(ErrorCode::kUnauthenticated, "missing agent credential");
  }
  std::string hash = HashToken(credential);
  std::string name;
  int removed = 0;
  std::string revoked_reason;
  sql << "SELECT name, removed, revoked_reason FROM hosts WHERE credential_sha256 = :h",
      soci::use(hash), soci::into(name), soci::into(removed), soci::into(revoked_reason);
  return AgentOf(sql.got_data(), name, removed, revoked_reason);
}

Result<std::string> AuthenticateAgent(soci::session& sql, StatementCache& statements,
                                      std::string_view credential) {
  if (credential.empty()) {
    return Fail(ErrorCode::kUnauthenticated, "missing agent credential");
  }
  AgentCredentialStatement& find = statements.Get<AgentCredentialStatement>(sql);
  find.hash = HashToken(credential);
  find.st.execute(true);
  const bool found = find.st.got_data();
  const std::string name = find.name;
  const int removed = find.removed;
  const std::string revoked_reason = find.revoked_reason;
  StatementCache::Finish(find.st);
  return AgentOf(found, name, removed, revoked_reason);
}

Result<void> CheckHostEnrolled(soci::session& sql, std::string_view name) {
  std::string key(name);
  int removed = 0;
  std::string revoked_reason;
  sql << "SELECT removed, revoked_reason FROM hosts WHERE name = :n", soci::use(key),
      soci::into(removed), soci::into(revoked_reason);
  auto host = AgentOf(sql.got_data(), key, removed, revoked_reason);
  if (!host) return std::unexpected(host.error());
  return {};
}

json HostRecord::ToJson() const {
  json apps_json = json::array();
  for (const InstalledAppRecord& app : apps) {
    apps_json.push_back({{"name", app.name}, {"current", app.current}, {"releases", app.releases}});
  }
  json out = {{"name", name},
              {"labels", LabelsJson(labels)},
              {"agent_version", agent_version},
              {"enrolled", enrolled},
              {"last_seen", last_seen > 0 ? json(protocol::FormatRfc3339Utc(last_seen)) : json()},
              {"apps", std::move(apps_json)},
              {"inventory", inventory},
              {"removed", removed}};
  // The client certificate (mutual TLS): null for a host without one, which
  // uses its credential alone (docs/security.md).
  if (cert_serial.empty()) {
    out["certificate"] = nullptr;
  } else {
    json certificate = {{"serial", cert_serial},
                        {"not_after", protocol::FormatRfc3339Utc(cert_not_after)}};
    if (!cert_previous_serial.empty()) certificate["previous_serial"] = cert_previous_serial;
    out["certificate"] = std::move(certificate);
  }
  if (removed) {
    out["removed_at"] = removed_at;
    out["removed_by"] = removed_by;
    out["revoked"] = !revoked_reason.empty();
    if (!revoked_reason.empty()) out["revoked_reason"] = revoked_reason;
  }
  return out;
}

Result<HostRecord> FindHost(soci::session& sql, std::string_view name) {
  HostRow row;
  std::string key(name);
  soci::statement st = OneShot(
      sql, fmt::format("SELECT {} FROM hosts WHERE name = :n", kHostColumns),
      [&](soci::statement& s) { IntoHost(s, row); }, soci::use(key, "n"));
  st.execute(true);
  if (!sql.got_data()) {
    return Fail(ErrorCode::kNotFound, fmt::format("no host {} (see `fabu hosts list`)", name));
  }
  HostRecord host = row.ToRecord();
  AppsReader(sql).Load(host);
  return host;
}

std::vector<HostRecord> ListHosts(soci::session& sql, const LabelSelector& selector) {
  HostRow row;
  soci::statement st = OneShot(
      sql, fmt::format("SELECT {} FROM hosts WHERE removed = 0 ORDER BY name", kHostColumns),
      [&](soci::statement& s) { IntoHost(s, row); });
  st.execute(false);
  std::vector<HostRecord> hosts;
  while (st.fetch()) {
    HostRecord host = row.ToRecord();
    if (LabelsMatch(host.labels, selector)) hosts.push_back(std::move(host));
  }
  AppsReader apps(sql);
  for (HostRecord& host : hosts) apps.Load(host);
  return hosts;
}

std::vector<MatchingHost> MatchingHosts(soci::session& sql, const LabelSelector& selector,
                                        std::string_view outside_rollout_of) {
  std::string name, labels, enrolled, release(outside_rollout_of);
  soci::statement st(sql);
  st.exchange(soci::into(name));
  st.exchange(soci::into(labels));
  st.exchange(soci::into(enrolled));
  std::string text = "SELECT name, labels, enrolled FROM hosts WHERE removed = 0";
  if (!release.empty()) {
    text +=
        " AND NOT EXISTS (SELECT 1 FROM rollout_hosts WHERE rollout_hosts.release_id = :r "
        "AND rollout_hosts.host = hosts.name)";
    st.exchange(soci::use(release, "r"));
  }
  text += " ORDER BY name";
  st.alloc();
  st.prepare(text);
  st.define_and_bind();
  st.execute(false);
  std::vector<MatchingHost> hosts;
  while (st.fetch()) {
    if (selector.empty() || LabelsMatch(detail::LabelsFrom(labels), selector)) {
      hosts.push_back({name, enrolled});
    }
  }
  return hosts;
}

Result<HostRecord> RemoveHost(Transaction& tx, std::string_view name,
                              const std::string& revoked_reason) {
  if (revoked_reason.size() > kMaxRevokeReasonBytes) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("reason: at most {} bytes, not {}", kMaxRevokeReasonBytes,
                            revoked_reason.size()));
  }
  auto host = FindHost(tx.sql(), name);
  if (!host) return host;
  if (host->removed) {
    return Fail(ErrorCode::kConflict,
                fmt::format("host {} was already {} (at {} by {})", name,
                            host->revoked_reason.empty() ? "removed" : "revoked", host->removed_at,
                            host->removed_by));
  }
  HostRecord after = *host;
  after.removed = true;
  after.removed_at = tx.clock().Utc();
  after.removed_by = tx.origin().actor;
  after.revoked_reason = revoked_reason;
  std::string key(name);
  tx.sql() << "UPDATE hosts SET removed = 1, removed_at = :a, removed_by = :b, "
              "revoked_reason = :r WHERE name = :n",
      soci::use(after.removed_at), soci::use(after.removed_by), soci::use(after.revoked_reason),
      soci::use(key);
  AuditEvent event(revoked_reason.empty() ? "host.remove" : "host.revoke", "host", key);
  event.before = host->ToJson();
  event.after = after.ToJson();
  if (!revoked_reason.empty()) event.detail = {{"reason", revoked_reason}};
  tx.Audit(event);
  return after;
}

Result<void> StoreInventory(Transaction& tx, std::string_view host,
                            const protocol::Inventory& inventory, UnixSeconds now) {
  std::string name(host);
  std::string text = protocol::InventoryToJson(inventory).dump();
  std::string agent_version = inventory.agent_version;
  long long seen = now;
  tx.sql() << "UPDATE hosts SET inventory = :i, agent_version = :v, last_seen = :s WHERE name = :n",
      soci::use(text), soci::use(agent_version), soci::use(seen), soci::use(name);
  WriteApps(tx, name, inventory.apps);
  json apps = json::object();
  for (const auto& app : inventory.apps) apps[app.name] = app.current;
  AuditEvent event("host.inventory", "host", name);
  event.detail = {{"agent_version", agent_version}, {"apps", apps}};
  tx.Audit(event);
  return {};
}

namespace {

// Every agent request touches its host: prepared once (StatementCache).
// The names are a JSON array of {"n": ...}.
struct TouchStatement {
  explicit TouchStatement(soci::session& sql) : st(sql) {
    static constexpr JsonColumn kNames[] = {{"n"}};
    st.exchange(soci::use(seen, "s"));
    st.exchange(soci::use(before, "b"));
    st.exchange(soci::use(names, "names"));
    st.alloc();
    st.prepare(
        fmt::format("UPDATE hosts SET last_seen = :s WHERE last_seen < :b AND name IN "
                    "(SELECT n FROM {})",
                    JsonRowsSql(BackendOf(sql), "names", kNames, "h")));
    st.define_and_bind();
  }
  long long seen = 0, before = 0;
  std::string names;
  soci::statement st;
};

}  // namespace

void TouchHosts(Transaction& tx, std::span<const std::string> hosts, UnixSeconds now,
                std::int64_t every) {
  if (hosts.empty()) return;
  TouchStatement& touch = tx.Cached<TouchStatement>();
  touch.names = JsonRowsOf(hosts, "n");
  touch.seen = now;
  touch.before = now - every;
  touch.st.execute(true);
}

}  // namespace fabu::coordinator
