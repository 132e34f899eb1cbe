// Enrollment tokens (hosts.hpp): made, listed by id, revoked. The token
// itself is shown once, at creation; the store keeps its SHA-256.
#include <fmt/format.h>
#include <soci/soci.h>

#include "coordinator/auth/users.hpp"
#include "coordinator/common/digest.hpp"
#include "coordinator/common/json_input.hpp"
#include "coordinator/hosts/hosts.hpp"
#include "coordinator/hosts/hosts_internal.hpp"
#include "coordinator/release/release_plan.hpp"

namespace fabu::coordinator {

using detail::LabelsFrom;
using detail::LabelsJson;
using detail::TokenTag;
using nlohmann::json;

json IssuedEnrollToken::ToJson() const {
  return {{"token", token},
          {"expires", protocol::FormatRfc3339Utc(expires)},
          {"uses", uses},
          {"labels", LabelsJson(labels)}};
}

Result<IssuedEnrollToken> CreateEnrollToken(Transaction& tx, const EnrollTokenSpec& spec,
                                            UnixSeconds now) {
  if (spec.uses < 1 || spec.uses > kMaxEnrollUses) {
    return Fail(
        ErrorCode::kInvalidArgument,
        fmt::format("uses: {} is not a number of uses (1 to {})", spec.uses, kMaxEnrollUses));
  }
  if (spec.ttl_seconds < 0 || spec.ttl_seconds > kMaxEnrollTtlSeconds) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("ttl: {} is not a token life from 0s to {} (an enrollment token is "
                            "meant to be used soon; make another when it runs out)",
                            protocol::FormatDuration(spec.ttl_seconds),
                            protocol::FormatDuration(kMaxEnrollTtlSeconds)));
  }
  if (auto ok = CheckLabels(spec.labels, "labels"); !ok) return std::unexpected(ok.error());
  auto token = RandomHex(32);
  if (!token) return std::unexpected(token.error());
  IssuedEnrollToken issued{*token, now + spec.ttl_seconds, spec.uses, spec.labels};
  std::string hash = HashToken(*token);
  std::string labels = LabelsJson(spec.labels).dump();
  long long uses_allowed = spec.uses, uses = 0, expires = issued.expires;
  std::string created = tx.clock().Utc(), created_by = tx.origin().actor;
  tx.sql() << "INSERT INTO enroll_tokens (token_sha256, labels, uses_allowed, uses, expires, "
              "created, created_by) VALUES (:h, :l, :a, :u, :e, :c, :b)",
      soci::use(hash), soci::use(labels), soci::use(uses_allowed), soci::use(uses),
      soci::use(expires), soci::use(created), soci::use(created_by);
  AuditEvent event("enroll-token.create", "enroll_token", TokenTag(hash));
  event.after = {{"labels", LabelsJson(spec.labels)},
                 {"uses", spec.uses},
                 {"expires", protocol::FormatRfc3339Utc(issued.expires)}};
  tx.Audit(event);
  return issued;
}

std::string_view EnrollTokenInfo::StateAt(UnixSeconds now) const {
  if (!revoked.empty()) return "revoked";
  if (uses >= uses_allowed) return "used";
  if (now >= expires) return "expired";
  return "active";
}

json EnrollTokenInfo::ToJson(UnixSeconds now) const {
  return {{"id", id},
          {"state", StateAt(now)},
          {"labels", LabelsJson(labels)},
          {"uses", uses},
          {"uses_allowed", uses_allowed},
          {"expires", protocol::FormatRfc3339Utc(expires)},
          {"created", created},
          {"created_by", created_by},
          {"revoked", revoked.empty() ? json(nullptr) : json(revoked)},
          {"revoked_by", revoked_by}};
}

namespace {

constexpr const char* kTokenColumns =
    "token_sha256, labels, uses, uses_allowed, expires, created, created_by, revoked, revoked_by";

std::vector<EnrollTokenInfo> QueryTokens(soci::session& sql, const std::string& where,
                                         const std::string& bind) {
  std::vector<EnrollTokenInfo> out;
  std::string hash, labels, created, created_by, revoked, revoked_by;
  long long uses = 0, uses_allowed = 0, expires = 0;
  soci::statement st(sql);
  st.alloc();
  st.prepare(fmt::format("SELECT {} FROM enroll_tokens {} ORDER BY created DESC, token_sha256",
                         kTokenColumns, where));
  st.exchange(soci::into(hash));
  st.exchange(soci::into(labels));
  st.exchange(soci::into(uses));
  st.exchange(soci::into(uses_allowed));
  st.exchange(soci::into(expires));
  st.exchange(soci::into(created));
  st.exchange(soci::into(created_by));
  st.exchange(soci::into(revoked));
  st.exchange(soci::into(revoked_by));
  std::string pattern = bind;
  if (!where.empty()) st.exchange(soci::use(pattern, "p"));
  st.define_and_bind();
  st.execute(false);
  while (st.fetch()) {
    out.push_back(EnrollTokenInfo{TokenTag(hash), LabelsFrom(labels), uses, uses_allowed, expires,
                                  created, created_by, revoked, revoked_by});
  }
  return out;
}

}  // namespace

std::vector<EnrollTokenInfo> ListEnrollTokens(soci::session& sql) {
  return QueryTokens(sql, "", "");
}

Result<EnrollTokenInfo> RevokeEnrollToken(Transaction& tx, std::string_view id,
                                          const std::string& reason, UnixSeconds now) {
  if (release::IsBlank(reason)) {
    return Fail(ErrorCode::kInvalidArgument,
                "a revocation needs a reason (--reason): it is kept in the audit trail");
  }
  if (id.size() < 12 || id.size() > 64 ||
      id.find_first_not_of("0123456789abcdef") != std::string_view::npos) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("\"{}\" is not a token id: give the 12 hex digits `fabu "
                            "enroll-token list` shows",
                            SafeExcerpt(id, 64)));
  }
  auto found = QueryTokens(tx.sql(), "WHERE token_sha256 LIKE :p", std::string(id) + "%");
  if (found.empty()) {
    return Fail(ErrorCode::kNotFound,
                fmt::format("no enrollment token has the id {} (`fabu enroll-token list`)", id));
  }
  if (found.size() > 1) {
    return Fail(
        ErrorCode::kInvalidArgument,
        fmt::format("the id {} names {} tokens: give more of its digits", id, found.size()));
  }
  EnrollTokenInfo token = found.front();
  if (!token.revoked.empty()) {
    return Fail(ErrorCode::kConflict,
                fmt::format("enrollment token {} was revoked already, at {} by {}", token.id,
                            token.revoked, token.revoked_by));
  }
  const std::string before_state(token.StateAt(now));
  token.revoked = tx.clock().Utc();
  token.revoked_by = tx.origin().actor;
  std::string pattern = std::string(id) + "%";
  tx.sql() << "UPDATE enroll_tokens SET revoked = :r, revoked_by = :b "
              "WHERE token_sha256 LIKE :p",
      soci::use(token.revoked), soci::use(token.revoked_by), soci::use(pattern);
  AuditEvent event("enroll-token.revoke", "enroll_token", token.id);
  event.detail = {{"reason", reason}, {"state_before", before_state}};
  tx.Audit(event);
  return token;
}

}  // namespace fabu::coordinator
