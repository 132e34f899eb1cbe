// Console sessions: a person signed in to the web console (docs/console.md).
//
// A person signs in with their user name and bearer token; the coordinator
// answers a session: a random id, sent back as an HttpOnly, Secure,
// SameSite=Strict cookie, and a CSRF token the page sends with every
// request that changes something. The store keeps only the SHA-256 of the
// id, as it does for tokens. A session ends at sign-out, after
// `idle_seconds` without a request, `lifetime_seconds` after sign-in
// whatever the use, and when its user is disabled or rotates their token.
//
// The store functions take the session or Transaction the caller holds (see
// store.hpp), as users.hpp does.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "coordinator/auth/users.hpp"
#include "protocol/error.hpp"

namespace fabu::coordinator {

struct SessionLimits {
  std::int64_t idle_seconds = 30 * 60;        // config.json console.idle_minutes
  std::int64_t lifetime_seconds = 12 * 3600;  // config.json console.session_hours
};

// The cookie that carries a session's id.
inline constexpr std::string_view kSessionCookie = "fabu_session";
// The header that carries its CSRF token.
inline constexpr std::string_view kCsrfHeader = "x-csrf-token";

struct StartedSession {
  std::string id;       // the cookie's value; shown once, never stored
  Principal principal;  // with `session`: its CSRF token and when it ends
  std::string lang;     // the person's console language, "" until chosen
};

// Signs `user` in with `token`: a new session unless the name and token do
// not belong together (kUnauthenticated, the same words whichever was
// wrong) or the token no longer works (kUnauthenticated saying why).
// Audited "session.start" as the user, with where from. Sessions already
// past their lifetime are cleared on the way.
Result<StartedSession> StartSession(Transaction& tx, std::string_view user, std::string_view token,
                                    const SessionLimits& limits, UnixSeconds now);

struct SessionCheck {
  Principal principal;  // with `session` set
  bool stale = false;   // last use recorded over a minute ago: TouchSession
};

// The principal of the session whose cookie value is `id`, or
// kUnauthenticated saying why not (unknown or ended, idle too long, past its
// lifetime, user disabled).
Result<SessionCheck> CheckSession(soci::session& sql, std::string_view id,
                                  const SessionLimits& limits, UnixSeconds now);

// Records that the session was used at `now` (what the idle timeout counts from).
void TouchSession(Transaction& tx, std::string_view id_sha256, UnixSeconds now);

// Ends the session (sign-out). Audited "session.end".
void EndSession(Transaction& tx, const Principal& principal);

// Ends every session of `user` (its token was rotated, or it was disabled).
void EndSessionsOf(Transaction& tx, std::string_view user);

// The console language of `user` ("en" or "zh-CN"), stored so it follows the
// person to another browser. kInvalidArgument for another language.
Result<void> SetConsoleLang(Transaction& tx, std::string_view user, std::string_view lang);
std::string ConsoleLang(soci::session& sql, std::string_view user);

// What the console is told of a session: {"user", "role", "csrf", "lang"
// (null until chosen), "idle_seconds", "expires" (RFC 3339)}; "csrf" and
// "expires" null for a principal of a bearer token (no `session`).
nlohmann::json SessionJson(const Principal& principal, std::string_view lang,
                           const SessionLimits& limits);

// Failed sign-ins per address: after `limit` failures within a minute the
// address is told to wait (Retry-After) until the oldest of them is a
// minute old. Thread-safe; forgets addresses quiet for a minute.
class SignInThrottle {
 public:
  explicit SignInThrottle(std::size_t limit = 10) : limit_(limit) {}
  // Seconds the address must wait before trying again, or 0.
  std::int64_t WaitSeconds(const std::string& address, std::chrono::steady_clock::time_point now);
  void Failed(const std::string& address, std::chrono::steady_clock::time_point now);

 private:
  void Forget(std::chrono::steady_clock::time_point now);
  std::size_t limit_;
  std::mutex mutex_;
  std::map<std::string, std::deque<std::chrono::steady_clock::time_point>> failures_;
};

}  // namespace fabu::coordinator
