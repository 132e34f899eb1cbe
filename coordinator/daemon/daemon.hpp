// The commands of `fabu-coordinator`: init, serve, trust add.
//
// Each returns an Error naming what went wrong; main.cpp prints it and sets
// the exit status. Serve blocks until SIGTERM/SIGINT (http_server.hpp).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "protocol/error.hpp"

namespace fabu::coordinator {

struct InitOptions {
  std::filesystem::path data;
  std::optional<std::string> listen;
  std::vector<std::string> hostnames;
};

// Creates a data directory (data_dir.hpp) with its store, CA, server
// certificate, config and the first admin user `admin`. Returns the admin's
// token (shown once). Refuses (kAlreadyExists) a directory that already holds
// a store or keys; on any failure removes what it created.
Result<std::string> InitDataDir(const InitOptions& options);

struct ServeOptions {
  std::filesystem::path data;
  std::optional<std::string> listen;  // overrides the config's
};

Result<void> Serve(const ServeOptions& options);

// Trusts a publisher public key (PEM); returns its key id.
Result<std::string> TrustAdd(const std::filesystem::path& data, const std::filesystem::path& pem);

}  // namespace fabu::coordinator
