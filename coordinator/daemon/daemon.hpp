// The commands of `fabu-coordinator`: init, serve, trust add.
//
// Each returns an Error naming what went wrong; main.cpp prints it and sets
// the exit status. Serve blocks until SIGTERM/SIGINT (http_server.hpp).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/config/config.hpp"
#include "coordinator/daemon/retention.hpp"
#include "protocol/error.hpp"

namespace fabu::coordinator {

struct InitOptions {
  std::filesystem::path data;
  std::optional<std::string> listen;
  std::vector<std::string> hostnames;
  // The store (config.json "store"): SQLite in the data directory by
  // default; a PostgreSQL database that must exist and hold no store yet.
  StoreConfig store;
  // config.json "agent_certificates": "required" (a new installation's
  // default: every agent proves itself with its certificate) or "optional"
  // (clients that enroll without a CSR, such as test and load generators,
  // keep working with their credential alone).
  std::string agent_certificates = "required";
};

// Creates a data directory (data_dir.hpp) with its store, CA, server
// certificate, config and the first admin user `admin`. Returns the admin's
// token (shown once). Refuses (kAlreadyExists) a directory that already holds
// a store or keys; on any failure removes what it created.
Result<std::string> InitDataDir(const InitOptions& options);

struct JoinOptions {
  std::filesystem::path data;  // the new coordinator's data directory (made)
  // A copy of the data directory of a coordinator of the installation (its
  // config.json, ca.pem, ca.key, secret.key and trusted/ are read).
  std::filesystem::path from;
  std::optional<std::string> listen;   // else the copied config's
  std::vector<std::string> hostnames;  // this coordinator's names and addresses
  std::string store_password_file;     // else the copied config's
};

// Makes a data directory for one more coordinator of an installation whose
// store is in PostgreSQL (docs/ha.md): the same config (listen replaced), CA,
// sealing key and trusted keys as `from`, and a server certificate of its own
// from the shared CA, naming `hostnames` and the installation's (config.json
// "hostnames": the shared service name). Checks that the store is reachable
// and holds a store; audited "coordinator.join". Refuses an SQLite
// installation (kFailedPrecondition), and a directory that already holds a
// coordinator (kAlreadyExists); on any failure removes what it made.
Result<void> JoinInstallation(const JoinOptions& options);

struct ServeOptions {
  std::filesystem::path data;
  std::optional<std::string> listen;  // overrides the config's
  // What fabu_build_info says (the executable's), for the metrics.
  std::string version = "unknown";
  std::string commit = "unknown";
};

Result<void> Serve(const ServeOptions& options);

// Trusts a publisher public key (PEM); returns its key id.
Result<std::string> TrustAdd(const std::filesystem::path& data, const std::filesystem::path& pem);

// The trusted publisher keys, one line each: "<key id>  <file>" and, for a
// key from config.json, "  (config.json trusted_keys)".
Result<std::string> TrustList(const std::filesystem::path& data);

// Stops trusting the key `key_id` (DIR/trusted/<key_id>.pub): the next upload
// signed by it is refused; stored packages stay. Audited "trust.remove" with
// `reason`, which may not be blank.
Result<void> TrustRemove(const std::filesystem::path& data, const std::string& key_id,
                         const std::string& reason);

// Runs the retention rules (retention.hpp) on the data directory with its
// config.json's retention.days, audited "retention.gc" by the local command
// `gc`. Safe while the daemon serves the same directory.
Result<GcSummary> Gc(const std::filesystem::path& data);

}  // namespace fabu::coordinator
