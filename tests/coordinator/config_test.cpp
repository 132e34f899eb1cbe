// The configuration file: defaults, strictness, listen addresses.
#include "coordinator/config/config.hpp"

#include <gtest/gtest.h>

namespace fabu::coordinator {
namespace {

TEST(ConfigTest, DefaultsRoundTrip) {
  CoordinatorConfig config;
  auto again = CoordinatorConfig::FromJson(config.ToJson());
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(again->listen, "127.0.0.1:8443");
  EXPECT_EQ(again->json_body_limit, 1u << 20);
  EXPECT_EQ(again->upload_limit, std::uint64_t{4} << 30);
  EXPECT_EQ(again->categories, (std::vector<std::string>{"major", "minor", "patch", "emergency"}));
  EXPECT_EQ(again->user_token_days, 90);
}

TEST(ConfigTest, UserTokenDaysAreReadAndBounded) {
  auto none = CoordinatorConfig::FromJson(nlohmann::json::parse(R"({"user_token_days": 0})"));
  ASSERT_TRUE(none) << none.error().message();
  EXPECT_EQ(none->user_token_days, 0);
  for (const char* text : {R"({"user_token_days": -1})", R"({"user_token_days": 3651})",
                           R"({"user_token_days": "90"})"}) {
    auto bad = CoordinatorConfig::FromJson(nlohmann::json::parse(text));
    ASSERT_FALSE(bad) << text;
    EXPECT_NE(bad.error().message().find("user_token_days"), std::string::npos)
        << bad.error().message();
  }
}

TEST(ConfigTest, TheStoreIsSqliteByDefaultOrAPostgresqlUrl) {
  auto plain = CoordinatorConfig::FromJson(nlohmann::json::object());
  ASSERT_TRUE(plain) << plain.error().message();
  EXPECT_FALSE(plain->store.postgresql());
  auto pg = CoordinatorConfig::FromJson(nlohmann::json::parse(
      R"({"store": {"backend": "postgresql", "url": "postgresql://fabu@db.example:5432/fabu",
                    "password_file": "/etc/fabu/store-password", "sslmode": "verify-full"}})"));
  ASSERT_TRUE(pg) << pg.error().message();
  EXPECT_TRUE(pg->store.postgresql());
  EXPECT_EQ(pg->store.url, "postgresql://fabu@db.example:5432/fabu");
  EXPECT_EQ(pg->store.password_file, "/etc/fabu/store-password");
  EXPECT_EQ(pg->store.sslmode, "verify-full");
  auto again = CoordinatorConfig::FromJson(pg->ToJson());
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(again->store.ToJson(), pg->store.ToJson());
  const std::pair<const char*, const char*> bad[] = {
      {R"({"store": {"backend": "mysql"}})", "store.backend"},
      {R"({"store": {"backend": "postgresql", "url": "db.example"}})", "store.url"},
      {R"({"store": {"backend": "postgresql", "url": "postgresql://db/f", "sslmode": "on"}})",
       "store.sslmode"},
      {R"({"store": {"url": "postgresql://db/f"}})", "for the postgresql backend"},
      {R"({"store": {"backend": "postgresql", "url": "postgresql://db/f", "pasword": "x"}})",
       "store.pasword: unknown field"},
  };
  for (const auto& [text, named] : bad) {
    auto refused = CoordinatorConfig::FromJson(nlohmann::json::parse(text));
    ASSERT_FALSE(refused) << text;
    EXPECT_NE(refused.error().message().find(named), std::string::npos)
        << text << ": " << refused.error().message();
  }
}

TEST(ConfigTest, TyposAreRefusedWithTheirPath) {
  auto bad = CoordinatorConfig::FromJson(nlohmann::json::parse(R"({"limits": {"json_body": 5}})"));
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("limits.json_body: unknown field"), std::string::npos)
      << bad.error().message();
  auto zero = CoordinatorConfig::FromJson(nlohmann::json::parse(R"({"workers": 0})"));
  ASSERT_FALSE(zero);
  EXPECT_NE(zero.error().message().find("workers"), std::string::npos);
}

TEST(ConfigTest, ConnectionAndDownloadLimitsAreRead) {
  auto config = CoordinatorConfig::FromJson(nlohmann::json::parse(
      R"({"limits": {"max_connections": 25000, "reserved_connections": 16,
                     "max_downloads": 8, "retry_after_seconds": 30}})"));
  ASSERT_TRUE(config) << config.error().message();
  EXPECT_EQ(config->max_connections, 25000u);
  EXPECT_EQ(config->reserved_connections, 16u);
  EXPECT_EQ(config->max_downloads, 8u);
  EXPECT_EQ(config->retry_after, std::chrono::seconds(30));
  EXPECT_EQ(CoordinatorConfig::FromJson(config->ToJson())->max_downloads, 8u);
  auto zero =
      CoordinatorConfig::FromJson(nlohmann::json::parse(R"({"limits": {"max_connections": 0}})"));
  ASSERT_FALSE(zero);
  EXPECT_NE(zero.error().message().find("limits.max_connections"), std::string::npos);
}

TEST(ConfigTest, TheDownloadQueueIsReadAndItsWaitIsBounded) {
  EXPECT_EQ(CoordinatorConfig{}.download_queue, 4096u);
  EXPECT_EQ(CoordinatorConfig{}.download_wait, std::chrono::seconds(20));
  auto config = CoordinatorConfig::FromJson(
      nlohmann::json::parse(R"({"limits": {"download_queue": 100, "download_wait_seconds": 0}})"));
  ASSERT_TRUE(config) << config.error().message();
  EXPECT_EQ(config->download_queue, 100u);
  EXPECT_EQ(config->download_wait, std::chrono::seconds(0));
  auto again = CoordinatorConfig::FromJson(config->ToJson());
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(again->download_queue, 100u);
  EXPECT_EQ(again->download_wait, std::chrono::seconds(0));
  for (const char* bad : {R"({"limits": {"download_wait_seconds": 51}})",
                          R"({"limits": {"download_wait_seconds": -1}})"}) {
    auto refused = CoordinatorConfig::FromJson(nlohmann::json::parse(bad));
    ASSERT_FALSE(refused) << bad;
    EXPECT_NE(refused.error().message().find("limits.download_wait_seconds"), std::string::npos)
        << refused.error().message();
  }
  auto zero =
      CoordinatorConfig::FromJson(nlohmann::json::parse(R"({"limits": {"download_queue": 0}})"));
  ASSERT_FALSE(zero);
  EXPECT_NE(zero.error().message().find("limits.download_queue"), std::string::npos);
}

TEST(ConfigTest, AWavesFirstPartIsReadAndMustBePositive) {
  EXPECT_EQ(CoordinatorConfig{}.wave_first_part, 500u);
  auto config = CoordinatorConfig::FromJson(
      nlohmann::json::parse(R"({"limits": {"wave_first_part": 2000}})"));
  ASSERT_TRUE(config) << config.error().message();
  EXPECT_EQ(config->wave_first_part, 2000u);
  EXPECT_EQ(CoordinatorConfig::FromJson(config->ToJson())->wave_first_part, 2000u);
  auto zero =
      CoordinatorConfig::FromJson(nlohmann::json::parse(R"({"limits": {"wave_first_part": 0}})"));
  ASSERT_FALSE(zero);
  EXPECT_NE(zero.error().message().find("limits.wave_first_part"), std::string::npos);
}

TEST(ConfigTest, TheWaveHoldIsReadZeroTurnsItOffAndItIsBounded) {
  EXPECT_EQ(CoordinatorConfig{}.wave_hold, std::chrono::milliseconds(2000));
  for (const int ms : {0, 500, 10000}) {
    auto config = CoordinatorConfig::FromJson(nlohmann::json{{"limits", {{"wave_hold_ms", ms}}}});
    ASSERT_TRUE(config) << ms << ": " << config.error().message();
    EXPECT_EQ(config->wave_hold, std::chrono::milliseconds(ms));
    EXPECT_EQ(CoordinatorConfig::FromJson(config->ToJson())->wave_hold,
              std::chrono::milliseconds(ms));
  }
  for (const char* bad : {R"(-1)", R"(10001)", R"("2s")", R"(1.5)"}) {
    auto refused = CoordinatorConfig::FromJson(
        nlohmann::json::parse(std::string(R"({"limits": {"wave_hold_ms": )") + bad + "}}"));
    ASSERT_FALSE(refused) << bad;
    EXPECT_NE(refused.error().message().find("limits.wave_hold_ms"), std::string::npos) << bad;
  }
}

TEST(ConfigTest, TheRetentionPeriodDefaultsToAYearZeroKeepsForeverAndBadValuesNameTheField) {
  EXPECT_EQ(CoordinatorConfig{}.retention_days, 365);
  EXPECT_EQ(CoordinatorConfig::FromJson(nlohmann::json::object())->retention_days, 365);
  for (const int days : {0, 1, 30, 36500}) {
    auto config = CoordinatorConfig::FromJson(nlohmann::json{{"retention", {{"days", days}}}});
    ASSERT_TRUE(config) << days << ": " << config.error().message();
    EXPECT_EQ(config->retention_days, days);
    EXPECT_EQ(CoordinatorConfig::FromJson(config->ToJson())->retention_days, days);
  }
  for (const char* bad : {R"({"days": -1})", R"({"days": 36501})", R"({"days": "30d"})",
                          R"({"days": 1.5})", R"({"day": 30})"}) {
    auto refused = CoordinatorConfig::FromJson(
        nlohmann::json::parse(std::string(R"({"retention": )") + bad + "}"));
    ASSERT_FALSE(refused) << bad;
    EXPECT_NE(refused.error().message().find("retention.day"), std::string::npos)
        << bad << ": " << refused.error().message();
  }
  auto not_object = CoordinatorConfig::FromJson(nlohmann::json::parse(R"({"retention": 30})"));
  ASSERT_FALSE(not_object);
  EXPECT_NE(not_object.error().message().find("retention"), std::string::npos);
}

TEST(ConfigTest, ListenAddresses) {
  auto v4 = ParseListenAddress("127.0.0.1:0");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 0);
  auto v6 = ParseListenAddress("[::1]:8443");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_FALSE(ParseListenAddress("localhost"));
  EXPECT_FALSE(ParseListenAddress("127.0.0.1:70000"));
}

TEST(ConfigTest, WebhookAllowEntriesMustEndAfterAHostWithASlash) {
  auto config = CoordinatorConfig::FromJson(nlohmann::json::parse(
      R"({"webhook_allow": ["https://hooks.example.org/", "http://127.0.0.1:9000/fabu/"]})"));
  ASSERT_TRUE(config) << config.error().message();
  EXPECT_EQ(config->webhook_allow.size(), 2u);
  EXPECT_EQ(CoordinatorConfig::FromJson(config->ToJson())->webhook_allow, config->webhook_allow);
  for (const char* bad : {R"(["https://hooks.example.org"])", R"(["hooks.example.org/"])",
                          R"(["https:///"])", R"(["https://user@hooks.example.org/"])"}) {
    auto refused = CoordinatorConfig::FromJson(
        nlohmann::json::parse(std::string(R"({"webhook_allow": )") + bad + "}"));
    ASSERT_FALSE(refused) << bad;
    EXPECT_NE(refused.error().message().find("webhook_allow[0]"), std::string::npos)
        << refused.error().message();
  }
}

TEST(ConfigTest, ACmdbWebhookOutsideWebhookAllowIsRefusedNamingTheKey) {
  const std::string connectors =
      R"("cmdb": {"connectors": [{"name": "ops", "type": "webhook",
                                  "url": "https://hooks.example.org/fabu", "secret": "s"}]})";
  auto refused = CoordinatorConfig::FromJson(nlohmann::json::parse("{" + connectors + "}"));
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find(
                "cmdb.connectors[0] (ops): webhook https://hooks.example.org/fabu: not allowed "
                "by webhook_allow in config.json"),
            std::string::npos)
      << refused.error().message();
  auto allowed = CoordinatorConfig::FromJson(nlohmann::json::parse(
      "{" + connectors + R"(, "webhook_allow": ["https://hooks.example.org/"]})"));
  EXPECT_TRUE(allowed) << allowed.error().message();
  // A longer host is not the allowed one.
  auto longer = CoordinatorConfig::FromJson(nlohmann::json::parse(
      "{" + connectors + R"(, "webhook_allow": ["https://hooks.example.org.evil.example/"]})"));
  EXPECT_FALSE(longer);
}

}  // namespace
}  // namespace fabu::coordinator
