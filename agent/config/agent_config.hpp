// The networked agent's configuration: DIR/agent.json, written by
// `fabu-agent enroll` and read by `fabu-agent run`.
//
// Format 1 (every field present when written; on read, absent fields take the
// defaults below, unknown fields and wrong types are errors naming the field):
//
//   {
//     "format": 1,
//     "server": "https://coordinator.example:8443",  // one coordinator, or:
//     "servers": ["https://coord-1.example:8443",     // several, serving one
//                 "https://coord-2.example:8443"],    // installation
//     // (exactly one of the two; written as "server" when there is one, so
//     // such a file reads the same in every agent version)
//     "name": "web-1",                       // the host's name in fabu
//     "ca": "ca.pem",                        // pinned CA, relative to DIR
//     "credential": "credential",            // bearer credential (0600), relative to DIR
//     "apps_root": "/opt/fabu/apps",
//     "trusted_keys": ["trusted/0-publisher.pub"],  // relative to DIR
//     "poll_wait_seconds": 30,               // 1..60
//     "retained_releases": 3,                // >= 2
//     "hook_timeout_seconds": 300,
//     "health_check_timeout_seconds": 60,
//     "health_check_attempts": 3,            // >= 1
//     "health_check_delay_seconds": 5,
//     "backoff_initial_seconds": 1,
//     "backoff_cap_seconds": 60,
//     "connect_timeout_seconds": 15,
//     "low_speed_limit_bytes": 1024,         // a download slower than this ...
//     "low_speed_time_seconds": 60           // ... for this long is abandoned
//   }
//
// The coordinators are tried in the order given: the agent starts with the
// first and moves on to the next (round robin) when the one it talks to
// cannot be reached or answers 503 (agent_api_client.hpp).
//
// Relative paths are resolved against the data directory (ResolvePath), so a
// data directory can be moved as a whole. A value type.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "protocol/error.hpp"

namespace fabu::agent {

struct AgentConfig {
  static constexpr std::string_view kFileName = "agent.json";
  static constexpr int kFormat = 1;

  std::vector<std::string> servers;  // https:// URLs, at least one
  std::string name;
  std::string ca = "ca.pem";
  std::string credential = "credential";
  std::string apps_root = "/opt/fabu/apps";
  std::vector<std::string> trusted_keys;
  int poll_wait_seconds = 30;
  int retained_releases = 3;
  int hook_timeout_seconds = 300;
  int health_check_timeout_seconds = 60;
  int health_check_attempts = 3;
  int health_check_delay_seconds = 5;
  int backoff_initial_seconds = 1;
  int backoff_cap_seconds = 60;
  int connect_timeout_seconds = 15;
  std::int64_t low_speed_limit_bytes = 1024;
  int low_speed_time_seconds = 60;

  friend bool operator==(const AgentConfig&, const AgentConfig&) = default;
};

std::string AgentConfigToJson(const AgentConfig& config);
// Strict: the error names the field ("agent.json: poll_wait_seconds: ...").
Result<AgentConfig> AgentConfigFromJson(std::string_view text);

// Reads DIR/agent.json; a missing file says to run `fabu-agent enroll`.
Result<AgentConfig> ReadAgentConfig(const std::filesystem::path& data_dir);
// Writes DIR/agent.json durably.
Result<void> WriteAgentConfig(const std::filesystem::path& data_dir, const AgentConfig& config);

// `path` as is when absolute, else under `data_dir`.
std::filesystem::path ResolvePath(const std::filesystem::path& data_dir, const std::string& path);

// The bearer credential: DIR/<config.credential>, 64 hex digits, which must
// not be readable by group or others.
Result<std::string> ReadCredential(const std::filesystem::path& path);
// Writes it durably with mode 0600.
Result<void> WriteCredential(const std::filesystem::path& path, const std::string& credential);

}  // namespace fabu::agent
