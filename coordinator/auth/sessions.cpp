#include "coordinator/auth/sessions.hpp"

#include <fmt/format.h>
#include <soci/soci.h>

#include <algorithm>

#include "coordinator/store/store.hpp"

namespace fabu::coordinator {
namespace {

// A session's last use is written at most this often: the idle timeout is
// counted in minutes, and a write per console request would be waste.
constexpr std::int64_t kTouchEverySeconds = 60;

constexpr std::string_view kWrongSignIn =
    "the user name or the token is wrong (the token is the one `fabu user add` or `fabu user "
    "token rotate` showed)";

}  // namespace

Result<StartedSession> StartSession(Transaction& tx, std::string_view user, std::string_view token,
                                    const SessionLimits& limits, UnixSeconds now) {
  if (user.empty() || token.empty()) {
    return Fail(ErrorCode::kInvalidArgument, "sign-in needs \"user\" and \"token\"");
  }
  auto principal = AuthenticateToken(tx.sql(), token, now);
  if (!principal) {
    // An unknown token says nothing of the user named; an expired or
    // disabled one says why only to the person who holds it.
    if (principal.error().message() == kUnknownToken) {
      return Fail(ErrorCode::kUnauthenticated, std::string(kWrongSignIn));
    }
    return std::unexpected(principal.error());
  }
  if (principal->name != user) return Fail(ErrorCode::kUnauthenticated, std::string(kWrongSignIn));

  auto id = NewToken();
  if (!id) return std::unexpected(id.error());
  auto csrf = NewToken();
  if (!csrf) return std::unexpected(csrf.error());

  long long cutoff = now;
  tx.sql() << "DELETE FROM console_sessions WHERE expires <= :now", soci::use(cutoff);

  std::string id_hash = HashToken(*id);
  std::string name(user);
  std::string source = tx.origin().source;
  long long created = now;
  long long expires = now + limits.lifetime_seconds;
  tx.sql() << "INSERT INTO console_sessions (id_sha256, user_name, csrf, source, created, "
              "last_seen, expires) VALUES (:id, :user, :csrf, :source, :created, :seen, :expires)",
      soci::use(id_hash), soci::use(name), soci::use(*csrf), soci::use(source), soci::use(created),
      soci::use(created), soci::use(expires);

  AuditEvent event("session.start", "user", name);
  // The first 12 hex digits of the id's hash name the session in the trail
  // (as enrollment tokens are named), never the id.
  event.detail = {{"session", id_hash.substr(0, 12)},
                  {"expires", protocol::FormatRfc3339Utc(expires)}};
  tx.Audit(event);

  StartedSession started;
  started.id = std::move(*id);
  started.principal = std::move(*principal);
  started.principal.session = ConsoleSession{id_hash, std::move(*csrf), expires};
  started.lang = ConsoleLang(tx.sql(), name);
  return started;
}

Result<SessionCheck> CheckSession(soci::session& sql, std::string_view id,
                                  const SessionLimits& limits, UnixSeconds now) {
  std::string id_hash = HashToken(id);
  std::string user, csrf, role;
  long long last_seen = 0, expires = 0;
  int disabled = 0;
  sql << "SELECT s.user_name, s.csrf, s.last_seen, s.expires, u.role, u.disabled "
         "FROM console_sessions s JOIN users u ON u.name = s.user_name WHERE s.id_sha256 = :id",
      soci::use(id_hash), soci::into(user), soci::into(csrf), soci::into(last_seen),
      soci::into(expires), soci::into(role), soci::into(disabled);
  if (!sql.got_data()) {
    return Fail(ErrorCode::kUnauthenticated, "the console session has ended: sign in again");
  }
  if (disabled != 0) {
    return Fail(ErrorCode::kUnauthenticated,
                fmt::format("user \"{}\" is disabled; ask an admin for a new account", user));
  }
  if (now >= expires) {
    return Fail(
        ErrorCode::kUnauthenticated,
        fmt::format("the console session ended at {}, {} hours after sign-in: sign in again",
                    protocol::FormatRfc3339Utc(expires), limits.lifetime_seconds / 3600));
  }
  if (now - last_seen > limits.idle_seconds) {
    return Fail(ErrorCode::kUnauthenticated,
                fmt::format("the console session ended after {} minutes without use: sign in again",
                            limits.idle_seconds / 60));
  }
  auto parsed = ParseRole(role);
  if (!parsed || *parsed == Role::kSystem) {
    return Fail(ErrorCode::kInternal, "user " + user + " has an unknown role");
  }
  SessionCheck check;
  check.principal = Principal{user, *parsed, ConsoleSession{id_hash, csrf, expires}};
  check.stale = now - last_seen >= kTouchEverySeconds;
  return check;
}

void TouchSession(Transaction& tx, std::string_view id_sha256, UnixSeconds now) {
  std::string id(id_sha256);
  long long seen = now;
  tx.sql() << "UPDATE console_sessions SET last_seen = :seen WHERE id_sha256 = :id AND "
              "last_seen < :seen2",
      soci::use(seen), soci::use(id), soci::use(seen);
}

void EndSession(Transaction& tx, const Principal& principal) {
  if (!principal.session) return;
  std::string id = principal.session->id_sha256;
  tx.sql() << "DELETE FROM console_sessions WHERE id_sha256 = :id", soci::use(id);
  AuditEvent event("session.end", "user", principal.name);
  event.detail = {{"session", id.substr(0, 12)}};
  tx.Audit(event);
}

void EndSessionsOf(Transaction& tx, std::string_view user) {
  std::string name(user);
  tx.sql() << "DELETE FROM console_sessions WHERE user_name = :user", soci::use(name);
}

Result<void> SetConsoleLang(Transaction& tx, std::string_view user, std::string_view lang) {
  if (lang != "en" && lang != "zh-CN") {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("lang \"{}\" is not one of the console's languages: en, zh-CN", lang));
  }
  std::string name(user), value(lang);
  tx.sql() << "UPDATE users SET console_lang = :lang WHERE name = :name", soci::use(value),
      soci::use(name);
  return {};
}

std::string ConsoleLang(soci::session& sql, std::string_view user) {
  std::string name(user), lang;
  soci::indicator ind = soci::i_null;
  sql << "SELECT console_lang FROM users WHERE name = :name", soci::use(name),
      soci::into(lang, ind);
  return ind == soci::i_ok ? lang : std::string();
}

nlohmann::json SessionJson(const Principal& principal, std::string_view lang,
                           const SessionLimits& limits) {
  const auto& session = principal.session;
  return {{"user", principal.name},
          {"role", RoleName(principal.role)},
          {"csrf", session ? nlohmann::json(session->csrf) : nlohmann::json(nullptr)},
          {"lang", lang.empty() ? nlohmann::json(nullptr) : nlohmann::json(lang)},
          {"idle_seconds", limits.idle_seconds},
          {"expires", session ? nlohmann::json(protocol::FormatRfc3339Utc(session->expires))
                              : nlohmann::json(nullptr)}};
}

std::int64_t SignInThrottle::WaitSeconds(const std::string& address,
                                         std::chrono::steady_clock::time_point now) {
  const std::lock_guard lock(mutex_);
  Forget(now);
  auto it = failures_.find(address);
  if (it == failures_.end() || it->second.size() < limit_) return 0;
  const auto free_at = it->second.front() + std::chrono::minutes(1);
  const auto wait = std::chrono::ceil<std::chrono::seconds>(free_at - now).count();
  return std::max<std::int64_t>(1, wait);
}

void SignInThrottle::Failed(const std::string& address, std::chrono::steady_clock::time_point now) {
  const std::lock_guard lock(mutex_);
  Forget(now);
  auto& times = failures_[address];
  times.push_back(now);
  while (times.size() > limit_) times.pop_front();
}

void SignInThrottle::Forget(std::chrono::steady_clock::time_point now) {
  for (auto it = failures_.begin(); it != failures_.end();) {
    auto& times = it->second;
    while (!times.empty() && now - times.front() >= std::chrono::minutes(1)) times.pop_front();
    it = times.empty() ? failures_.erase(it) : std::next(it);
  }
}

}  // namespace fabu::coordinator
