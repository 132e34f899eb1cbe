// The coordinator's configuration file, DIR/config.json.
//
//   {
//     "listen": "127.0.0.1:8443",
//     "hostnames": ["coordinator.example"],      // names in the server certificate
//     "limits": {"json_body_bytes": 1048576, "upload_bytes": 4294967296,
//                "max_connections": 30000,        // past it, agent requests get 503
//                "reserved_connections": 64,      // above the cap, for people only
//                "max_downloads": 64,             // concurrent package downloads
//                "download_queue": 4096,          // downloads waiting for one to end
//                "download_wait_seconds": 20,     // the longest one waits (0: none
//                                                 // waits; at most 50), then 503
//                "retry_after_seconds": 10,       // Retry-After of those 503s
//                "wave_first_part": 500,          // hosts in a wave's first transaction
//                                                 // (then as many, then twice: rollout_engine.hpp)
//                "wave_hold_ms": 2000},           // the longest an agent's next request waits
//                                                 // while a wave is assigned in parts
//                                                 // (0: never; at most 10000)
//     "timeouts": {"handshake_seconds": 10, "idle_seconds": 60,
//                  "io_seconds": 60, "shutdown_seconds": 10,
//                  "lease_ms": 5000},                // how long the engine's lease holds
//                                                 // (store/lease.hpp; 1000..60000)
//     "categories": ["major", "minor", "patch", "emergency"],
//     "trusted_keys": [],                         // PEM files beside DIR/trusted/*.pub
//     "workers": 4,                               // threads for store and hashing work
//     "time_zone": "Asia/Shanghai",               // IANA zone of report periods
//     "cmdb": {"connectors": [], "retry": {...}}, // outward CMDB (cmdb/cmdb_config.hpp)
//     "webhook_allow": ["https://hooks.example.org/"], // URL prefixes webhooks may go to
//                                                 // (common/webhook_allow.hpp; empty: none)
//     "checks": {"prometheus_url": "",            // the Prometheus of go-live checks
//                                                 // (release/metric_check.hpp; "": none)
//                "allow": []},                    // URL prefixes http checks may GET (as
//                                                 // webhook_allow; empty: none)
//     "user_token_days": 90,                      // how long a new or rotated user token
//                                                 // lives (auth/users.hpp; 0: no expiry)
//     "agent_certificates": "optional",           // agents' client certificates (mutual
//                                                 // TLS, hosts/agent_certificates.hpp):
//                                                 // "required" refuses enrollment without
//                                                 // a CSR and hosts without a certificate
//     "agent_cert_days": 30,                      // an agent certificate's lifetime (1-397)
//     "metrics_public": false,                    // GET /metrics without a token (true)
//                                                 // or with any user's (false)
//     "retention": {"days": 365},                 // what `gc` keeps (daemon/retention.hpp);
//                                                 // 0: keep everything forever
//     "console": {"idle_minutes": 30,             // a console session ends after this long
//                 "session_hours": 12},           // unused, and this long after sign-in
//                                                 // (auth/sessions.hpp)
//     "store": {"backend": "sqlite"}              // or {"backend": "postgresql",
//                                                 //  "url": "postgresql://fabu@db:5432/fabu",
//                                                 //  "password_file": "/etc/fabu/pgpass",
//                                                 //  "sslmode": "verify-full"} (StoreConfig)
//   }
//
// Every field is optional (defaults above); unknown fields are refused with
// the field named, so a typo cannot silently change behaviour. A value type.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "coordinator/cmdb/cmdb_config.hpp"
#include "coordinator/notify/smtp_mail.hpp"
#include "protocol/error.hpp"

namespace fabu::coordinator {

// The longest retention period config.json accepts: 100 years.
inline constexpr int kMaxRetentionDays = 36500;
// The longest console session timeouts config.json accepts: a day idle, a month in all.
inline constexpr int kMaxConsoleIdleMinutes = 24 * 60;
inline constexpr int kMaxConsoleSessionHours = 30 * 24;
// An agent's client certificate lives at most 397 days (the CA/Browser
// Forum's bound for TLS certificates), at least a day (or, for tests,
// kMinAgentCertSeconds through agent_cert_lifetime_seconds).
inline constexpr std::int64_t kMaxAgentCertDays = 397;
inline constexpr std::int64_t kMinAgentCertSeconds = 10;

// Where the store is (docs/coordinator.md "PostgreSQL as the store"): the
// SQLite file of the data directory (the default), or a PostgreSQL database.
// The password is never here: it is read from `password_file`, or libpq finds
// it (PGPASSFILE, ~/.pgpass); a URL that carries one is refused.
struct StoreConfig {
  std::string backend = "sqlite";  // "sqlite" or "postgresql"
  std::string url;                 // postgresql: a libpq URI, postgresql://USER@HOST:PORT/DB
  std::string password_file;       // postgresql: a file holding the password alone
  std::string sslmode;             // postgresql: libpq's sslmode ("" leaves libpq's default)
  bool postgresql() const { return backend == "postgresql"; }
  static Result<StoreConfig> FromJson(const nlohmann::json& json, std::string_view path);
  nlohmann::json ToJson() const;
};

struct CoordinatorConfig {
  std::string listen = "127.0.0.1:8443";
  std::vector<std::string> hostnames;
  std::uint64_t json_body_limit = 1 << 20;
  std::uint64_t upload_limit = std::uint64_t{4} << 30;
  std::chrono::seconds handshake_timeout{10};
  std::chrono::seconds idle_timeout{60};
  std::chrono::seconds io_timeout{60};
  std::chrono::seconds shutdown_timeout{10};
  std::chrono::milliseconds lease{5000};  // Lease length (store/lease.hpp)
  std::uint64_t max_connections = 30000;
  std::uint64_t reserved_connections = 64;
  std::uint64_t max_downloads = 64;
  std::uint64_t download_queue = 4096;
  std::chrono::seconds download_wait{20};
  std::chrono::seconds retry_after{10};
  std::uint64_t wave_first_part = 500;        // kDefaultFirstWavePart
  std::chrono::milliseconds wave_hold{2000};  // ServerSettings::hold_limit
  std::vector<std::string> categories = {"major", "minor", "patch", "emergency"};
  std::vector<std::string> trusted_keys;
  int workers = 4;
  std::string time_zone = "Asia/Shanghai";  // checked against the system tz database
  CmdbConfig cmdb;
  SmtpConfig smtp;  // e-mail of release notices; url "" when not configured
  // Prefixes every webhook target (notice subscriptions, CMDB webhook
  // connectors) must start with; empty: no webhook is allowed.
  std::vector<std::string> webhook_allow;
  // The go-live plan's checks on metrics: the Prometheus of `prometheus`
  // checks ("" when none is configured: such checks are refused at start),
  // and the URL prefixes `http` checks may GET (the rules of webhook_allow).
  std::string checks_prometheus_url;
  std::vector<std::string> checks_allow;
  std::int64_t user_token_days = 90;  // kDefaultTokenDays
  // Agents' client certificates: "optional" or "required". Absent from an
  // older config.json: "optional" (an upgrade shuts no host out); `init`
  // writes "required" unless told otherwise (daemon.hpp InitOptions).
  std::string agent_certificates = "optional";
  std::int64_t agent_cert_days = 30;  // 1 to kMaxAgentCertDays
  // For tests and short-lived lab certificates only: when not 0, the
  // lifetime in seconds (kMinAgentCertSeconds to a day), instead of
  // agent_cert_days. Written back only when set.
  std::int64_t agent_cert_lifetime_seconds = 0;
  std::int64_t AgentCertLifetimeSeconds() const {
    return agent_cert_lifetime_seconds != 0 ? agent_cert_lifetime_seconds : agent_cert_days * 86400;
  }
  bool metrics_public = false;
  // The retention period, in days (daemon/retention.hpp): deployment events
  // older than it are summarised, and packages no release open or closed
  // within it names (nor any host could roll back to) are removed. 0: keep
  // everything forever.
  int retention_days = 365;
  // The web console's sessions (auth/sessions.hpp): idle and absolute timeouts.
  int console_idle_minutes = 30;   // 1 to kMaxConsoleIdleMinutes
  int console_session_hours = 12;  // 1 to kMaxConsoleSessionHours
  StoreConfig store;

  static Result<CoordinatorConfig> FromJson(const nlohmann::json& json);
  static Result<CoordinatorConfig> Load(const std::filesystem::path& path);
  nlohmann::json ToJson() const;
};

// Splits "HOST:PORT" ("[::1]:8443" for IPv6). kInvalidArgument naming the text.
struct ListenAddress {
  std::string host;
  std::uint16_t port = 0;
};
Result<ListenAddress> ParseListenAddress(std::string_view text);

}  // namespace fabu::coordinator
