// The `fabu` CLI's HTTPS client of the coordinator API (platform/http).
//
// The server URL, bearer token and pinned CA come from --server/--token/--ca
// or FABU_SERVER/FABU_TOKEN/FABU_CA. Only https:// URLs are accepted, the
// server certificate must chain to the pinned CA and match the host.
// Requests and responses are JSON; uploads stream a file (never read whole
// into memory). A non-2xx answer becomes an Error carrying the server's
// message, with the code the HTTP status stands for.
//
// Several coordinators of one installation: --server may be repeated (or
// list URLs separated by commas, as FABU_SERVER may). A request goes to the
// current server, the first to begin with; when it could not be sent there
// (nothing of it reached the server: refused, unresolvable, connect timeout,
// TLS handshake failed) or the answer was a 503 (which a coordinator sends
// before it does anything), it is sent to the next one, each tried once,
// and the one that answered stays current. A request that reached a server
// and then failed (reset, timed out, cut short) is not repeated: the server
// may have acted on it. Each move is said on stderr, naming the server that
// failed; when none answered, the error names every server with its failure.
//
// ApiClient owns one platform::HttpClient (calls share a connection); it is
// not thread-safe.
#pragma once

#include <CLI/CLI.hpp>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "protocol/error.hpp"

namespace fabu::cli {

struct ClientOptions {
  std::vector<std::string> servers;  // https://HOST:PORT each, in the order to try
  std::string token;
  std::string ca;  // PEM file of the CA to pin
};

// Adds --server, --token and --ca (with their environment variables) to `command`.
void AddClientOptions(CLI::App* command, ClientOptions& options);

class ApiClient {
 public:
  static Result<ApiClient> Create(const ClientOptions& options);
  ApiClient(ApiClient&&) noexcept;
  ApiClient& operator=(ApiClient&&) noexcept;
  ~ApiClient();

  Result<nlohmann::json> Get(const std::string& path);
  Result<nlohmann::json> Post(const std::string& path, const nlohmann::json& body);
  // POSTs the file as application/octet-stream, streamed from disk.
  Result<nlohmann::json> Upload(const std::string& path, const std::filesystem::path& file);

  // Percent-encodes one path segment or query value.
  std::string Escape(std::string_view text) const;

 private:
  struct Impl;
  explicit ApiClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Runs `action` and reports an Error on stderr as "fabu COMMAND: message",
// setting exit_code to 1.
void ReportFailure(std::string_view command, const Error& error, int& exit_code);

// A JSON value as a table cell: a string as is, "-" for null or an empty
// string, anything else as JSON.
std::string CellText(const nlohmann::json& value);

}  // namespace fabu::cli
