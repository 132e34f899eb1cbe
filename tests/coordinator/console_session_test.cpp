// The web console's sessions and pages against a real coordinator: signing
// in with a user's token, the cookie and CSRF token on later requests,
// sign-out, the sign-in throttle, and the pages' security headers
// (auth/sessions.hpp, api/session_api.cpp, api/console_api.cpp).
#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "tests/support/agent_http.hpp"
#include "tests/support/people_fixture.hpp"

namespace fabu::testing {
namespace {

// The value of header `name` in "Name: value\r\n" lines, or "".
std::string Header(const std::string& headers, const std::string& name) {
  const std::regex line("(^|\\n)" + name + ": ([^\\r\\n]*)", std::regex::icase);
  std::smatch match;
  return std::regex_search(headers, match, line) ? match[2].str() : std::string();
}

class ConsoleSessionTest : public CoordinatorWithPeople {
 protected:
  void SetUp() override {
    CoordinatorWithPeople::SetUp();
    if (HasFatalFailure()) return;
    http_ = std::make_unique<AgentHttpClient>(daemon_->url(), daemon_->ca());
  }

  struct SignedIn {
    std::string cookie;  // "fabu_session=..."
    std::string csrf;
    nlohmann::json body;
  };

  SignedIn SignIn(const std::string& user, const std::string& token) {
    const HttpReply reply = http_->Request("POST", "/api/v1/session", "",
                                           nlohmann::json{{"user", user}, {"token", token}}.dump());
    EXPECT_EQ(reply.status, 201) << reply.body;
    const std::string set_cookie = Header(reply.headers, "Set-Cookie");
    EXPECT_NE(set_cookie.find("HttpOnly"), std::string::npos) << set_cookie;
    EXPECT_NE(set_cookie.find("Secure"), std::string::npos) << set_cookie;
    EXPECT_NE(set_cookie.find("SameSite=Strict"), std::string::npos) << set_cookie;
    SignedIn out;
    out.cookie = set_cookie.substr(0, set_cookie.find(';'));
    out.body = reply.Json();
    out.csrf = out.body.value("csrf", "");
    return out;
  }

  std::string Host() const { return "127.0.0.1:" + std::to_string(daemon_->port()); }

  std::unique_ptr<AgentHttpClient> http_;
};

TEST_F(ConsoleSessionTest,
       ASignedInPersonActsThroughTheCookieWithTheCsrfTokenAndIsAuditedAsThemself) {
  const SignedIn session = SignIn("zhang.rm", rm_);
  ASSERT_FALSE(HasFailure());
  EXPECT_EQ(session.body["user"], "zhang.rm");
  EXPECT_EQ(session.body["role"], "release_manager");
  EXPECT_EQ(session.csrf.size(), 64u);
  EXPECT_TRUE(session.body["lang"].is_null());

  // Reading needs only the cookie.
  HttpReply who = http_->Request("GET", "/api/v1/session", "", "", {"Cookie: " + session.cookie});
  ASSERT_EQ(who.status, 200) << who.body;
  EXPECT_EQ(who.Json()["csrf"], session.csrf);
  HttpReply releases =
      http_->Request("GET", "/api/v1/releases", "", "", {"Cookie: " + session.cookie});
  EXPECT_EQ(releases.status, 200) << releases.body;

  // A write without the CSRF token is refused, naming it; with it, it is done.
  const std::string freeze = nlohmann::json{
      {"from", "2030-01-01T00:00:00Z"},
      {"to", "2030-01-02T00:00:00Z"},
      {"reason", "console test"}}.dump();
  HttpReply forged =
      http_->Request("POST", "/api/v1/freezes", "", freeze, {"Cookie: " + session.cookie});
  EXPECT_EQ(forged.status, 403) << forged.body;
  EXPECT_NE(forged.body.find("X-CSRF-Token"), std::string::npos) << forged.body;
  HttpReply wrong =
      http_->Request("POST", "/api/v1/freezes", "", freeze,
                     {"Cookie: " + session.cookie, "X-CSRF-Token: " + std::string(64, '0')});
  EXPECT_EQ(wrong.status, 403) << wrong.body;
  // From another site's page, even with the token.
  HttpReply cross = http_->Request("POST", "/api/v1/freezes", "", freeze,
                                   {"Cookie: " + session.cookie, "X-CSRF-Token: " + session.csrf,
                                    "Origin: https://evil.example"});
  EXPECT_EQ(cross.status, 403) << cross.body;
  EXPECT_NE(cross.body.find("https://evil.example"), std::string::npos) << cross.body;

  HttpReply made = http_->Request(
      "POST", "/api/v1/freezes", "", freeze,
      {"Cookie: " + session.cookie, "X-CSRF-Token: " + session.csrf, "Origin: https://" + Host()});
  ASSERT_EQ(made.status, 201) << made.body;

  // The trail names the person, not "anonymous" or a session.
  CommandResult audit = As(admin_, {"audit", "list", "--json"});
  ASSERT_EQ(audit.exit_code, 0) << audit.err;
  EXPECT_NE(audit.out.find("\"session.start\""), std::string::npos) << audit.out;
  const auto entries = nlohmann::json::parse(audit.out, nullptr, false);
  bool freeze_by_zhang = false;
  for (const auto& entry : entries) {
    if (entry.value("action", "") == "freeze.add" && entry.value("actor", "") == "zhang.rm") {
      freeze_by_zhang = true;
    }
  }
  EXPECT_TRUE(freeze_by_zhang) << audit.out;
}

TEST_F(ConsoleSessionTest, SignOutEndsTheSessionAndAViewerIsRefusedWhatTheApiRefusesAViewer) {
  const SignedIn viewer = SignIn("zhao.viewer", viewer_);
  ASSERT_FALSE(HasFailure());
  HttpReply refused = http_->Request(
      "POST", "/api/v1/freezes", "",
      nlohmann::json{
          {"from", "2030-01-01T00:00:00Z"}, {"to", "2030-01-02T00:00:00Z"}, {"reason", "x"}}
          .dump(),
      {"Cookie: " + viewer.cookie, "X-CSRF-Token: " + viewer.csrf});
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_NE(refused.body.find("viewer"), std::string::npos) << refused.body;

  // Signing out needs the CSRF token too, then the cookie is dead.
  HttpReply no_token =
      http_->Request("DELETE", "/api/v1/session", "", "", {"Cookie: " + viewer.cookie});
  EXPECT_EQ(no_token.status, 403) << no_token.body;
  HttpReply out = http_->Request("DELETE", "/api/v1/session", "", "",
                                 {"Cookie: " + viewer.cookie, "X-CSRF-Token: " + viewer.csrf});
  EXPECT_EQ(out.status, 204) << out.body;
  EXPECT_NE(Header(out.headers, "Set-Cookie").find("Max-Age=0"), std::string::npos) << out.headers;
  HttpReply after = http_->Request("GET", "/api/v1/session", "", "", {"Cookie: " + viewer.cookie});
  EXPECT_EQ(after.status, 401) << after.body;
  EXPECT_NE(after.body.find("sign in again"), std::string::npos) << after.body;
}

TEST_F(ConsoleSessionTest, DisablingOrRotatingEndsTheUsersSessions) {
  const SignedIn tester = SignIn("chen.tester", tester_);
  const SignedIn viewer = SignIn("zhao.viewer", viewer_);
  ASSERT_FALSE(HasFailure());
  ASSERT_EQ(As(tester_, {"user", "token", "rotate", "chen.tester"}).exit_code, 0);
  EXPECT_EQ(http_->Request("GET", "/api/v1/session", "", "", {"Cookie: " + tester.cookie}).status,
            401);
  ASSERT_EQ(As(admin_, {"user", "disable", "zhao.viewer"}).exit_code, 0);
  EXPECT_EQ(http_->Request("GET", "/api/v1/session", "", "", {"Cookie: " + viewer.cookie}).status,
            401);
}

TEST_F(ConsoleSessionTest, AWrongNameOrTokenIsRefusedAlikeAndTenFailuresAMinuteSlowTheAddressDown) {
  // Someone else's token under a name is as wrong as a made-up token.
  HttpReply other =
      http_->Request("POST", "/api/v1/session", "",
                     nlohmann::json{{"user", "wang.approver"}, {"token", viewer_}}.dump());
  EXPECT_EQ(other.status, 401) << other.body;
  HttpReply unknown = http_->Request(
      "POST", "/api/v1/session", "",
      nlohmann::json{{"user", "wang.approver"}, {"token", std::string(64, 'a')}}.dump());
  EXPECT_EQ(unknown.status, 401) << unknown.body;
  EXPECT_EQ(other.Json()["error"]["message"], unknown.Json()["error"]["message"]);
  EXPECT_TRUE(Header(other.headers, "Set-Cookie").empty()) << other.headers;

  for (int i = 0; i < 8; ++i) {
    http_->Request("POST", "/api/v1/session", "",
                   nlohmann::json{{"user", "wang.approver"}, {"token", "guess"}}.dump());
  }
  // The eleventh is not even tried, the right token included.
  HttpReply slowed =
      http_->Request("POST", "/api/v1/session", "",
                     nlohmann::json{{"user", "wang.approver"}, {"token", wang_}}.dump());
  EXPECT_EQ(slowed.status, 429) << slowed.body;
  const std::string retry_after = Header(slowed.headers, "Retry-After");
  ASSERT_FALSE(retry_after.empty()) << slowed.headers;
  EXPECT_GE(std::stoi(retry_after), 1);
  EXPECT_LE(std::stoi(retry_after), 60);
  // Bearer tokens are not slowed by it.
  EXPECT_EQ(http_->Request("GET", "/api/v1/releases", wang_).status, 200);
}

TEST_F(ConsoleSessionTest, TheConsoleIsServedWithAStrictPolicyAndItsLanguageFollowsThePerson) {
  HttpReply page = http_->Request("GET", "/", "");
  ASSERT_EQ(page.status, 200) << page.body;
  EXPECT_NE(Header(page.headers, "Content-Type").find("text/html"), std::string::npos);
  EXPECT_NE(page.body.find("<html"), std::string::npos);
  const std::string csp = Header(page.headers, "Content-Security-Policy");
  EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
  EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos) << csp;
  EXPECT_EQ(Header(page.headers, "X-Content-Type-Options"), "nosniff");
  const std::string etag = Header(page.headers, "ETag");
  ASSERT_FALSE(etag.empty());
  EXPECT_EQ(http_->Request("GET", "/", "", "", {"If-None-Match: " + etag}).status, 304);
  HttpReply missing = http_->Request("GET", "/ui/no-such-file.js", "");
  EXPECT_EQ(missing.status, 404);
  EXPECT_NE(missing.body.find("no-such-file.js"), std::string::npos);

  const SignedIn first = SignIn("li.approver", li_);
  ASSERT_FALSE(HasFailure());
  HttpReply bad = http_->Request("POST", "/api/v1/session/lang", "", R"({"lang": "fr"})",
                                 {"Cookie: " + first.cookie, "X-CSRF-Token: " + first.csrf});
  EXPECT_EQ(bad.status, 400) << bad.body;
  HttpReply set = http_->Request("POST", "/api/v1/session/lang", "", R"({"lang": "zh-CN"})",
                                 {"Cookie: " + first.cookie, "X-CSRF-Token: " + first.csrf});
  ASSERT_EQ(set.status, 200) << set.body;
  // Another browser: the same person finds their language.
  const SignedIn second = SignIn("li.approver", li_);
  EXPECT_EQ(second.body["lang"], "zh-CN");
}

}  // namespace
}  // namespace fabu::testing
