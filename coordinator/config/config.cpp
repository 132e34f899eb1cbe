#include "coordinator/config/config.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>

#include "coordinator/common/json_input.hpp"
#include "coordinator/common/webhook_allow.hpp"
#include "coordinator/release/time_zone.hpp"

namespace fabu::coordinator {
namespace {

Result<std::vector<std::string>> StringList(const nlohmann::json& value, std::string_view path) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (!value[i].is_string()) {
      return Fail(ErrorCode::kInvalidArgument, fmt::format("{}[{}]: expected a string", path, i));
    }
    out.push_back(value[i].get<std::string>());
  }
  return out;
}

Result<std::uint64_t> Positive(const nlohmann::json& value, std::string_view path) {
  if (!value.is_number_integer() || value.get<std::int64_t>() <= 0) {
    return Fail(ErrorCode::kInvalidArgument, fmt::format("{}: expected a positive integer", path));
  }
  return value.get<std::uint64_t>();
}

}  // namespace

Result<CoordinatorConfig> CoordinatorConfig::FromJson(const nlohmann::json& json) {
  CoordinatorConfig config;
  if (auto ok = CheckObject(json, "",
                            {{"listen", JsonType::kString},
                             {"hostnames", JsonType::kArray},
                             {"limits", JsonType::kObject},
                             {"timeouts", JsonType::kObject},
                             {"categories", JsonType::kArray},
                             {"trusted_keys", JsonType::kArray},
                             {"workers", JsonType::kInteger},
                             {"time_zone", JsonType::kString},
                             {"cmdb", JsonType::kObject},
                             {"smtp", JsonType::kObject},
                             {"webhook_allow", JsonType::kArray},
                             {"checks", JsonType::kObject},
                             {"user_token_days", JsonType::kInteger},
                             {"agent_certificates", JsonType::kString},
                             {"agent_cert_days", JsonType::kInteger},
                             {"agent_cert_lifetime_seconds", JsonType::kInteger},
                             {"metrics_public", JsonType::kBoolean},
                             {"retention", JsonType::kObject},
                             {"console", JsonType::kObject},
                             {"store", JsonType::kObject}});
      !ok) {
    return std::unexpected(ok.error());
  }
  if (json.contains("store")) {
    auto store = StoreConfig::FromJson(json["store"], "store");
    if (!store) return std::unexpected(store.error());
    config.store = std::move(*store);
  }
  if (json.contains("retention")) {
    const auto& retention = json["retention"];
    if (auto ok = CheckObject(retention, "retention", {{"days", JsonType::kInteger}}); !ok) {
      return std::unexpected(ok.error());
    }
    if (retention.contains("days")) {
      const auto& days = retention["days"];
      if (!days.is_number_integer() || days.get<std::int64_t>() < 0 ||
          days.get<std::int64_t>() > kMaxRetentionDays) {
        return Fail(ErrorCode::kInvalidArgument,
                    fmt::format("retention.days: expected an integer from 0 (keep everything "
                                "forever) to {}, got {}",
                                kMaxRetentionDays, days.dump()));
      }
      config.retention_days = static_cast<int>(days.get<std::int64_t>());
    }
  }
  if (json.contains("console")) {
    const auto& console = json["console"];
    if (auto ok = CheckObject(
            console, "console",
            {{"idle_minutes", JsonType::kInteger}, {"session_hours", JsonType::kInteger}});
        !ok) {
      return std::unexpected(ok.error());
    }
    const auto bounded = [&console](const char* name, int most, int& into) -> Result<void> {
      if (!console.contains(name)) return {};
      const auto& value = console[name];
      if (!value.is_number_integer() || value.get<std::int64_t>() < 1 ||
          value.get<std::int64_t>() > most) {
        return Fail(ErrorCode::kInvalidArgument,
                    fmt::format("console.{}: expected an integer from 1 to {}, got {}", name, most,
                                value.dump()));
      }
      into = static_cast<int>(value.get<std::int64_t>());
      return {};
    };
    if (auto ok = bounded("idle_minutes", kMaxConsoleIdleMinutes, config.console_idle_minutes);
        !ok) {
      return std::unexpected(ok.error());
    }
    if (auto ok = bounded("session_hours", kMaxConsoleSessionHours, config.console_session_hours);
        !ok) {
      return std::unexpected(ok.error());
    }
  }
  if (json.contains("listen")) {
    config.listen = json["listen"].get<std::string>();
    if (auto ok = ParseListenAddress(config.listen); !ok) {
      return std::unexpected(ok.error().WithContext("listen"));
    }
  }
  if (json.contains("hostnames")) {
    auto list = StringList(json["hostnames"], "hostnames");
    if (!list) return std::unexpected(list.error());
    config.hostnames = std::move(*list);
  }
  if (json.contains("categories")) {
    auto list = StringList(json["categories"], "categories");
    if (!list) return std::unexpected(list.error());
    if (list->empty()) return Fail(ErrorCode::kInvalidArgument, "categories: must not be empty");
    config.categories = std::move(*list);
  }
  if (json.contains("trusted_keys")) {
    auto list = StringList(json["trusted_keys"], "trusted_keys");
    if (!list) return std::unexpected(list.error());
    config.trusted_keys = std::move(*list);
  }
  if (json.contains("limits")) {
    const auto& limits = json["limits"];
    if (auto ok = CheckObject(limits, "limits",
                              {{"json_body_bytes", JsonType::kInteger},
                               {"upload_bytes", JsonType::kInteger},
                               {"max_connections", JsonType::kInteger},
                               {"reserved_connections", JsonType::kInteger},
                               {"max_downloads", JsonType::kInteger},
                               {"download_queue", JsonType::kInteger},
                               {"download_wait_seconds", JsonType::kInteger},
                               {"retry_after_seconds", JsonType::kInteger},
                               {"wave_first_part", JsonType::kInteger},
                               {"wave_hold_ms", JsonType::kInteger}});
        !ok) {
      return std::unexpected(ok.error());
    }
    auto read = [&](const char* name, std::uint64_t& out) -> Result<void> {
      if (!limits.contains(name)) return {};
      auto v = Positive(limits[name], FieldPath("limits", name));
      if (!v) return std::unexpected(v.error());
      out = *v;
      return {};
    };
    std::uint64_t retry_after = static_cast<std::uint64_t>(config.retry_after.count());
    for (auto ok :
         {read("max_connections", config.max_connections),
          read("reserved_connections", config.reserved_connections),
          read("max_downloads", config.max_downloads),
          read("download_queue", config.download_queue), read("retry_after_seconds", retry_after),
          read("wave_first_part", config.wave_first_part)}) {
      if (!ok) return std::unexpected(ok.error());
    }
    if (retry_after > 3600) {
      return Fail(ErrorCode::kInvalidArgument, "limits.retry_after_seconds: at most 3600");
    }
    config.retry_after = std::chrono::seconds(static_cast<std::chrono::seconds::rep>(retry_after));
    if (limits.contains("download_wait_seconds")) {
      // Below the agents' stall limit (low_speed_time_seconds, 60 by default):
      // a download waiting its turn receives no byte.
      const auto& wait = limits["download_wait_seconds"];
      if (!wait.is_number_integer() || wait.get<std::int64_t>() < 0 ||
          wait.get<std::int64_t>() > 50) {
        return Fail(ErrorCode::kInvalidArgument,
                    "limits.download_wait_seconds: expected an integer from 0 (never wait) to 50");
      }
      config.download_wait = std::chrono::seconds(wait.get<std::int64_t>());
    }
    if (limits.contains("wave_hold_ms")) {
      const auto& hold = limits["wave_hold_ms"];
      if (!hold.is_number_integer() || hold.get<std::int64_t>() < 0 ||
          hold.get<std::int64_t>() > 10000) {
        return Fail(ErrorCode::kInvalidArgument,
                    "limits.wave_hold_ms: expected an integer from 0 (never hold) to 10000");
      }
      config.wave_hold = std::chrono::milliseconds(hold.get<std::int64_t>());
    }
    if (limits.contains("json_body_bytes")) {
      auto v = Positive(limits["json_body_bytes"], "limits.json_body_bytes");
      if (!v) return std::unexpected(v.error());
      config.json_body_limit = *v;
    }
    if (limits.contains("upload_bytes")) {
      auto v = Positive(limits["upload_bytes"], "limits.upload_bytes");
      if (!v) return std::unexpected(v.error());
      config.upload_limit = *v;
    }
  }
  if (json.contains("timeouts")) {
    const auto& timeouts = json["timeouts"];
    if (auto ok = CheckObject(timeouts, "timeouts",
                              {{"handshake_seconds", JsonType::kInteger},
                               {"idle_seconds", JsonType::kInteger},
                               {"io_seconds", JsonType::kInteger},
                               {"shutdown_seconds", JsonType::kInteger},
                               {"lease_ms", JsonType::kInteger}});
        !ok) {
      return std::unexpected(ok.error());
    }
    auto read = [&](const char* name, std::chrono::seconds& out) -> Result<void> {
      if (!timeouts.contains(name)) return {};
      auto v = Positive(timeouts[name], FieldPath("timeouts", name));
      if (!v) return std::unexpected(v.error());
      out = std::chrono::seconds(static_cast<std::chrono::seconds::rep>(*v));
      return {};
    };
    for (auto ok :
         {read("handshake_seconds", config.handshake_timeout),
          read("idle_seconds", config.idle_timeout), read("io_seconds", config.io_timeout),
          read("shutdown_seconds", config.shutdown_timeout)}) {
      if (!ok) return std::unexpected(ok.error());
    }
    if (timeouts.contains("lease_ms")) {
      const auto& lease = timeouts["lease_ms"];
      if (!lease.is_number_integer() || lease.get<std::int64_t>() < 1000 ||
          lease.get<std::int64_t>() > 60000) {
        return Fail(ErrorCode::kInvalidArgument,
                    "timeouts.lease_ms: expected an integer from 1000 to 60000");
      }
      config.lease = std::chrono::milliseconds(lease.get<std::int64_t>());
    }
  }
  if (json.contains("workers")) {
    auto v = Positive(json["workers"], "workers");
    if (!v) return std::unexpected(v.error());
    if (*v > 256) return Fail(ErrorCode::kInvalidArgument, "workers: at most 256");
    config.workers = static_cast<int>(*v);
  }
  if (json.contains("time_zone")) {
    // Checked now, so a zone missing from the tz database stops the start.
    config.time_zone = json["time_zone"].get<std::string>();
    if (auto zone = release::TimeZone::Load(config.time_zone); !zone) {
      return std::unexpected(zone.error());
    }
  }
  if (json.contains("cmdb") && !json["cmdb"].is_null()) {
    auto cmdb = CmdbConfig::FromJson(json["cmdb"], "cmdb");
    if (!cmdb) return std::unexpected(cmdb.error());
    config.cmdb = std::move(*cmdb);
  }
  if (json.contains("smtp") && !json["smtp"].is_null()) {
    auto smtp = SmtpConfig::FromJson(json["smtp"], "smtp");
    if (!smtp) return std::unexpected(smtp.error());
    config.smtp = std::move(*smtp);
  }
  if (json.contains("webhook_allow")) {
    auto list = StringList(json["webhook_allow"], "webhook_allow");
    if (!list) return std::unexpected(list.error());
    for (std::size_t i = 0; i < list->size(); ++i) {
      if (auto ok = CheckWebhookAllowEntry((*list)[i]); !ok) {
        return std::unexpected(ok.error().WithContext(fmt::format("webhook_allow[{}]", i)));
      }
    }
    config.webhook_allow = std::move(*list);
  }
  if (json.contains("checks") && !json["checks"].is_null()) {
    const nlohmann::json& checks = json["checks"];
    for (const auto& [key, value] : checks.items()) {
      if (key != "prometheus_url" && key != "allow") {
        return Fail(ErrorCode::kInvalidArgument,
                    fmt::format("checks: unknown field \"{}\" (prometheus_url, allow)",
                                SafeExcerpt(key, 40)));
      }
    }
    if (checks.contains("prometheus_url")) {
      if (!checks["prometheus_url"].is_string()) {
        return Fail(ErrorCode::kInvalidArgument, "checks.prometheus_url: must be a string");
      }
      config.checks_prometheus_url = checks["prometheus_url"].get<std::string>();
      const std::string& url = config.checks_prometheus_url;
      if (!url.empty() &&
          ((!url.starts_with("http://") && !url.starts_with("https://")) || !url.ends_with("/"))) {
        return Fail(ErrorCode::kInvalidArgument,
                    fmt::format("checks.prometheus_url: an http:// or https:// URL ending in "
                                "\"/\" (\"http://127.0.0.1:9090/\"), not \"{}\"",
                                SafeExcerpt(url, 80)));
      }
    }
    if (checks.contains("allow")) {
      auto list = StringList(checks["allow"], "checks.allow");
      if (!list) return std::unexpected(list.error());
      for (std::size_t i = 0; i < list->size(); ++i) {
        if (auto ok = CheckWebhookAllowEntry((*list)[i]); !ok) {
          return std::unexpected(ok.error().WithContext(fmt::format("checks.allow[{}]", i)));
        }
      }
      config.checks_allow = std::move(*list);
    }
  }
  if (json.contains("user_token_days")) {
    // The bounds of auth/users.hpp (kMaxTokenDays), checked again where a token is made.
    config.user_token_days = json["user_token_days"].get<std::int64_t>();
    if (config.user_token_days < 0 || config.user_token_days > 3650) {
      return Fail(ErrorCode::kInvalidArgument,
                  fmt::format("user_token_days: a token lives 0 (no expiry) to 3650 days, not {}",
                              config.user_token_days));
    }
  }
  if (json.contains("agent_certificates")) {
    config.agent_certificates = json["agent_certificates"].get<std::string>();
    if (config.agent_certificates != "optional" && config.agent_certificates != "required") {
      return Fail(ErrorCode::kInvalidArgument,
                  fmt::format("agent_certificates: \"optional\" or \"required\", not \"{}\"",
                              SafeExcerpt(config.agent_certificates, 32)));
    }
  }
  if (json.contains("agent_cert_days")) {
    config.agent_cert_days = json["agent_cert_days"].get<std::int64_t>();
    if (config.agent_cert_days < 1 || config.agent_cert_days > kMaxAgentCertDays) {
      return Fail(ErrorCode::kInvalidArgument,
                  fmt::format("agent_cert_days: an agent certificate lives 1 to {} days, not {}",
                              kMaxAgentCertDays, config.agent_cert_days));
    }
  }
  if (json.contains("agent_cert_lifetime_seconds")) {
    config.agent_cert_lifetime_seconds = json["agent_cert_lifetime_seconds"].get<std::int64_t>();
    if (config.agent_cert_lifetime_seconds != 0 &&
        (config.agent_cert_lifetime_seconds < kMinAgentCertSeconds ||
         config.agent_cert_lifetime_seconds > 86400)) {
      return Fail(ErrorCode::kInvalidArgument,
                  fmt::format("agent_cert_lifetime_seconds: 0 (use agent_cert_days) or {} to "
                              "86400, not {}",
                              kMinAgentCertSeconds, config.agent_cert_lifetime_seconds));
    }
  }
  if (json.contains("metrics_public")) config.metrics_public = json["metrics_public"].get<bool>();
  // The CMDB's webhook connectors go where the allow-list says, like the
  // notice subscriptions (docs/coordinator.md "Webhook targets").
  for (std::size_t i = 0; i < config.cmdb.connectors.size(); ++i) {
    const ConnectorConfig& c = config.cmdb.connectors[i];
    if (c.type != "webhook") continue;
    if (auto ok = CheckWebhookTarget(c.url, config.webhook_allow); !ok) {
      return Fail(ErrorCode::kInvalidArgument,
                  fmt::format("cmdb.connectors[{}] ({}): {}", i, c.name, ok.error().message()));
    }
  }
  return config;
}

Result<CoordinatorConfig> CoordinatorConfig::Load(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Fail(ErrorCode::kNotFound, "cannot read config file " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  auto json = ParseJsonBody(text.str());
  if (!json) return std::unexpected(json.error().WithContext(path.string()));
  auto config = FromJson(*json);
  if (!config) return std::unexpected(config.error().WithContext(path.string()));
  return config;
}

nlohmann::json CoordinatorConfig::ToJson() const {
  nlohmann::json out = {
      {"listen", listen},
      {"hostnames", hostnames},
      {"limits",
       {{"json_body_bytes", json_body_limit},
        {"upload_bytes", upload_limit},
        {"max_connections", max_connections},
        {"reserved_connections", reserved_connections},
        {"max_downloads", max_downloads},
        {"download_queue", download_queue},
        {"download_wait_seconds", download_wait.count()},
        {"retry_after_seconds", retry_after.count()},
        {"wave_first_part", wave_first_part},
        {"wave_hold_ms", wave_hold.count()}}},
      {"timeouts",
       {{"handshake_seconds", handshake_timeout.count()},
        {"idle_seconds", idle_timeout.count()},
        {"io_seconds", io_timeout.count()},
        {"shutdown_seconds", shutdown_timeout.count()},
        {"lease_ms", lease.count()}}},
      {"categories", categories},
      {"trusted_keys", trusted_keys},
      {"workers", workers},
      {"time_zone", time_zone},
      {"cmdb", cmdb.ToJson()},
      {"smtp", smtp.url.empty() ? nlohmann::json(nullptr) : smtp.ToJson()},
      {"webhook_allow", webhook_allow},
      {"checks", {{"prometheus_url", checks_prometheus_url}, {"allow", checks_allow}}},
      {"user_token_days", user_token_days},
      {"agent_certificates", agent_certificates},
      {"agent_cert_days", agent_cert_days},
      {"metrics_public", metrics_public},
      {"retention", {{"days", retention_days}}},
      {"console",
       {{"idle_minutes", console_idle_minutes}, {"session_hours", console_session_hours}}},
      {"store", store.ToJson()}};
  if (agent_cert_lifetime_seconds != 0) {
    out["agent_cert_lifetime_seconds"] = agent_cert_lifetime_seconds;
  }
  return out;
}

Result<StoreConfig> StoreConfig::FromJson(const nlohmann::json& json, std::string_view path) {
  if (auto ok = CheckObject(json, path,
                            {{"backend", JsonType::kString},
                             {"url", JsonType::kString},
                             {"password_file", JsonType::kString},
                             {"sslmode", JsonType::kString}});
      !ok) {
    return std::unexpected(ok.error());
  }
  StoreConfig store;
  if (json.contains("backend")) store.backend = json["backend"].get<std::string>();
  if (store.backend != "sqlite" && store.backend != "postgresql") {
    return Fail(
        ErrorCode::kInvalidArgument,
        fmt::format("{}.backend: \"sqlite\" or \"postgresql\", not \"{}\"", path, store.backend));
  }
  if (json.contains("url")) store.url = json["url"].get<std::string>();
  if (json.contains("password_file"))
    store.password_file = json["password_file"].get<std::string>();
  if (json.contains("sslmode")) store.sslmode = json["sslmode"].get<std::string>();
  if (!store.postgresql()) {
    if (!store.url.empty() || !store.password_file.empty() || !store.sslmode.empty()) {
      return Fail(ErrorCode::kInvalidArgument,
                  fmt::format("{}: url, password_file and sslmode are for the postgresql "
                              "backend; the sqlite store is the data directory's coordinator.db",
                              path));
    }
    return store;
  }
  if (!store.url.starts_with("postgresql://") && !store.url.starts_with("postgres://")) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("{}.url: expected postgresql://USER@HOST:PORT/DATABASE", path));
  }
  static constexpr std::string_view kModes[] = {"disable", "allow",     "prefer",
                                                "require", "verify-ca", "verify-full"};
  if (!store.sslmode.empty() &&
      std::find(std::begin(kModes), std::end(kModes), store.sslmode) == std::end(kModes)) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("{}.sslmode: one of disable, allow, prefer, require, verify-ca, "
                            "verify-full, not \"{}\"",
                            path, store.sslmode));
  }
  return store;
}

nlohmann::json StoreConfig::ToJson() const {
  nlohmann::json out{{"backend", backend}};
  if (!url.empty()) out["url"] = url;
  if (!password_file.empty()) out["password_file"] = password_file;
  if (!sslmode.empty()) out["sslmode"] = sslmode;
  return out;
}

Result<ListenAddress> ParseListenAddress(std::string_view text) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("\"{}\" is not HOST:PORT (e.g. 127.0.0.1:8443)", text));
  }
  ListenAddress address;
  address.host = std::string(text.substr(0, colon));
  if (address.host.size() > 2 && address.host.front() == '[' && address.host.back() == ']') {
    address.host = address.host.substr(1, address.host.size() - 2);
  }
  const std::string_view port = text.substr(colon + 1);
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || value > 65535) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("\"{}\": port must be a number 0-65535", text));
  }
  address.port = static_cast<std::uint16_t>(value);
  return address;
}

}  // namespace fabu::coordinator
