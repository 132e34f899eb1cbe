#include "agent/config/agent_config.hpp"

#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "platform/fs/files.hpp"

namespace fabu::agent {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

Error FieldError(std::string_view field, std::string_view what) {
  return Error(ErrorCode::kInvalidArgument,
               fmt::format("{}: {}: {}", AgentConfig::kFileName, field, what));
}

Result<void> ReadString(const json& j, const char* field, std::string& out, bool required) {
  if (!j.contains(field)) {
    if (required) return std::unexpected(FieldError(field, "is required"));
    return {};
  }
  if (!j.at(field).is_string()) return std::unexpected(FieldError(field, "must be a string"));
  out = j.at(field).get<std::string>();
  if (required && out.empty()) return std::unexpected(FieldError(field, "must not be empty"));
  return {};
}

template <typename Int>
Result<void> ReadInt(const json& j, const char* field, Int& out, std::int64_t min,
                     std::int64_t max) {
  if (!j.contains(field)) return {};
  const json& v = j.at(field);
  if (!v.is_number_integer()) return std::unexpected(FieldError(field, "must be an integer"));
  const auto n = v.get<std::int64_t>();
  if (n < min || n > max) {
    return std::unexpected(FieldError(field, fmt::format("{} is outside {}..{}", n, min, max)));
  }
  out = static_cast<Int>(n);
  return {};
}

// "server" (one URL) or "servers" (a non-empty array of them), not both.
Result<void> ReadServers(const json& j, std::vector<std::string>& out) {
  const bool one = j.contains("server"), several = j.contains("servers");
  if (one && several) {
    return std::unexpected(FieldError("servers", "give either server or servers, not both"));
  }
  if (one) {
    std::string server;
    if (auto ok = ReadString(j, "server", server, true); !ok) return ok;
    out = {server};
  } else if (several) {
    const json& list = j.at("servers");
    if (!list.is_array() || list.empty()) {
      return std::unexpected(FieldError("servers", "must be a non-empty array of URLs"));
    }
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (!list[i].is_string()) {
        return std::unexpected(FieldError(fmt::format("servers[{}]", i), "must be a string"));
      }
      out.push_back(list[i].get<std::string>());
    }
  } else {
    return std::unexpected(FieldError("server", "is required (or servers)"));
  }
  for (std::size_t i = 0; i < out.size(); ++i) {
    const std::string field = one ? std::string("server") : fmt::format("servers[{}]", i);
    if (!out[i].starts_with("https://") || out[i].size() == 8) {
      return std::unexpected(
          FieldError(field, fmt::format("\"{}\" is not an https:// URL", out[i])));
    }
    if (std::ranges::find(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(i), out[i]) !=
        out.begin() + static_cast<std::ptrdiff_t>(i)) {
      return std::unexpected(FieldError(field, fmt::format("\"{}\" is given twice", out[i])));
    }
  }
  return {};
}

}  // namespace

std::string AgentConfigToJson(const AgentConfig& c) {
  json j = json::object();
  j["format"] = AgentConfig::kFormat;
  if (c.servers.size() == 1) {
    j["server"] = c.servers.front();
  } else {
    j["servers"] = c.servers;
  }
  j["name"] = c.name;
  j["ca"] = c.ca;
  j["credential"] = c.credential;
  j["apps_root"] = c.apps_root;
  j["trusted_keys"] = c.trusted_keys;
  j["poll_wait_seconds"] = c.poll_wait_seconds;
  j["retained_releases"] = c.retained_releases;
  j["hook_timeout_seconds"] = c.hook_timeout_seconds;
  j["health_check_timeout_seconds"] = c.health_check_timeout_seconds;
  j["health_check_attempts"] = c.health_check_attempts;
  j["health_check_delay_seconds"] = c.health_check_delay_seconds;
  j["backoff_initial_seconds"] = c.backoff_initial_seconds;
  j["backoff_cap_seconds"] = c.backoff_cap_seconds;
  j["connect_timeout_seconds"] = c.connect_timeout_seconds;
  j["low_speed_limit_bytes"] = c.low_speed_limit_bytes;
  j["low_speed_time_seconds"] = c.low_speed_time_seconds;
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

Result<AgentConfig> AgentConfigFromJson(std::string_view text) {
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("{}: not valid JSON", AgentConfig::kFileName));
  }
  if (!j.is_object()) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("{}: must be a JSON object", AgentConfig::kFileName));
  }
  static const char* const kKnown[] = {"format",
                                       "server",
                                       "servers",
                                       "name",
                                       "ca",
                                       "credential",
                                       "apps_root",
                                       "trusted_keys",
                                       "poll_wait_seconds",
                                       "retained_releases",
                                       "hook_timeout_seconds",
                                       "health_check_timeout_seconds",
                                       "health_check_attempts",
                                       "health_check_delay_seconds",
                                       "backoff_initial_seconds",
                                       "backoff_cap_seconds",
                                       "connect_timeout_seconds",
                                       "low_speed_limit_bytes",
                                       "low_speed_time_seconds"};
  for (const auto& [key, value] : j.items()) {
    if (std::ranges::find_if(kKnown, [&](const char* k) { return key == k; }) == std::end(kKnown)) {
      return std::unexpected(FieldError(key, "unknown field"));
    }
  }
  int format = 0;
  if (!j.contains("format")) return std::unexpected(FieldError("format", "is required"));
  if (auto ok = ReadInt(j, "format", format, 0, 1000); !ok) return std::unexpected(ok.error());
  if (format != AgentConfig::kFormat) {
    return std::unexpected(
        FieldError("format", fmt::format("{} is not supported (this agent reads format {})", format,
                                         AgentConfig::kFormat)));
  }
  AgentConfig c;
  for (auto ok : {ReadString(j, "name", c.name, true), ReadString(j, "ca", c.ca, true),
                  ReadString(j, "credential", c.credential, true),
                  ReadString(j, "apps_root", c.apps_root, true)}) {
    if (!ok) return std::unexpected(ok.error());
  }
  if (auto ok = ReadServers(j, c.servers); !ok) return std::unexpected(ok.error());
  if (j.contains("trusted_keys")) {
    const json& keys = j.at("trusted_keys");
    if (!keys.is_array()) return std::unexpected(FieldError("trusted_keys", "must be an array"));
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (!keys[i].is_string() || keys[i].get<std::string>().empty()) {
        return std::unexpected(
            FieldError(fmt::format("trusted_keys[{}]", i), "must be a non-empty string"));
      }
      c.trusted_keys.push_back(keys[i].get<std::string>());
    }
  }
  constexpr std::int64_t kDay = 86'400;
  for (auto ok :
       {ReadInt(j, "poll_wait_seconds", c.poll_wait_seconds, 1, 60),
        ReadInt(j, "retained_releases", c.retained_releases, 2, 1000),
        ReadInt(j, "hook_timeout_seconds", c.hook_timeout_seconds, 1, kDay),
        ReadInt(j, "health_check_timeout_seconds", c.health_check_timeout_seconds, 1, kDay),
        ReadInt(j, "health_check_attempts", c.health_check_attempts, 1, 100),
        ReadInt(j, "health_check_delay_seconds", c.health_check_delay_seconds, 0, kDay),
        ReadInt(j, "backoff_initial_seconds", c.backoff_initial_seconds, 1, kDay),
        ReadInt(j, "backoff_cap_seconds", c.backoff_cap_seconds, 1, kDay),
        ReadInt(j, "connect_timeout_seconds", c.connect_timeout_seconds, 1, 600),
        ReadInt(j, "low_speed_limit_bytes", c.low_speed_limit_bytes, 0, std::int64_t{1} << 40),
        ReadInt(j, "low_speed_time_seconds", c.low_speed_time_seconds, 1, kDay)}) {
    if (!ok) return std::unexpected(ok.error());
  }
  return c;
}

Result<AgentConfig> ReadAgentConfig(const fs::path& data_dir) {
  const fs::path path = data_dir / AgentConfig::kFileName;
  auto text = platform::ReadWholeFile(path);
  if (!text) {
    if (text.error().code() == ErrorCode::kNotFound) {
      return Fail(ErrorCode::kNotFound,
                  fmt::format("{} does not exist: this data directory is not enrolled (run "
                              "`fabu-agent enroll --data {}` first)",
                              path.string(), data_dir.string()));
    }
    return std::unexpected(text.error());
  }
  return WithContext(AgentConfigFromJson(*text), data_dir.string());
}

Result<void> WriteAgentConfig(const fs::path& data_dir, const AgentConfig& config) {
  return platform::WriteFileDurably(data_dir / AgentConfig::kFileName, AgentConfigToJson(config));
}

fs::path ResolvePath(const fs::path& data_dir, const std::string& path) {
  const fs::path p(path);
  return p.is_absolute() ? p : data_dir / p;
}

Result<std::string> ReadCredential(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return Fail(ErrorCode::kNotFound,
                fmt::format("cannot read the agent credential {}: not enrolled? (run `fabu-agent "
                            "enroll`)",
                            path.string()));
  }
  if ((st.st_mode & 077) != 0) {
    return Fail(ErrorCode::kUnsafe,
                fmt::format("the agent credential {} is readable by others (mode {:o}); "
                            "chmod 600 it",
                            path.string(), st.st_mode & 0777));
  }
  auto text = platform::ReadWholeFile(path);
  if (!text) return std::unexpected(text.error());
  std::string credential = *text;
  while (!credential.empty() && (credential.back() == '\n' || credential.back() == '\r')) {
    credential.pop_back();
  }
  if (credential.size() != 64 ||
      credential.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
    return Fail(
        ErrorCode::kIntegrity,
        fmt::format("the agent credential {} is damaged (expected 64 hex digits)", path.string()));
  }
  return credential;
}

Result<void> WriteCredential(const fs::path& path, const std::string& credential) {
  return platform::WriteFileDurably(path, credential + "\n", 0600);
}

}  // namespace fabu::agent
