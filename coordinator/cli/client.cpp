#include "coordinator/cli/client.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <iostream>

#include "platform/http/http_client.hpp"

namespace fabu::cli {

struct ApiClient::Impl {
  ClientOptions options;
  platform::HttpClient http;
  std::size_t current = 0;  // the server that answered last

  // Sends `request` (its url a path) to the current server, then to the
  // next while it is safe to: see the file comment. An upload's body is a
  // file that Send opens anew for each try, so it restarts whole on the
  // next server; a body in memory is sent again as is.
  Result<platform::HttpResponse> SendToAServer(platform::HttpRequest request) {
    const std::string path = request.url;
    const std::size_t count = options.servers.size();
    std::vector<std::string> failures;
    for (std::size_t tried = 0; tried < count; ++tried) {
      request.url = options.servers[current] + path;
      auto response = http.Send(request);
      const bool not_sent = !response && response.error().code() == ErrorCode::kUnavailable &&
                            http.last_delivery() == platform::HttpDelivery::kNotSent;
      const bool busy = response && response->status == 503;
      if (count == 1 || (!not_sent && !busy)) return response;
      failures.push_back(
          busy ? platform::StatusError(fmt::format("{} {}", request.method, request.url), *response)
                     .message()
               : response.error().message());
      current = (current + 1) % count;
      if (tried + 1 < count) {
        std::cerr << fmt::format("fabu: {}; trying {}\n", failures.back(),
                                 options.servers[current]);
      }
    }
    return Fail(ErrorCode::kUnavailable, fmt::format("none of the {} coordinators answered: {}",
                                                     count, fmt::join(failures, "; ")));
  }

  Result<nlohmann::json> Perform(platform::HttpRequest request) {
    const std::string method = request.method;
    const std::string path = request.url;
    auto response = SendToAServer(std::move(request));
    if (!response) return std::unexpected(response.error());
    if (response->status < 200 || response->status >= 300) {
      return std::unexpected(platform::StatusError("", *response));
    }
    nlohmann::json body = nlohmann::json::parse(response->body, nullptr, false);
    if (body.is_discarded()) {
      return Fail(ErrorCode::kUnavailable, fmt::format("{} {}{}: the answer is not JSON", method,
                                                       options.servers[current], path));
    }
    return body;
  }

  platform::HttpRequest Request(std::string method, const std::string& path) const {
    platform::HttpRequest request;
    request.method = std::move(method);
    request.url = path;  // SendToAServer puts the server before it
    request.bearer = options.token;
    request.headers = {"Accept: application/json"};
    return request;
  }
};

void AddClientOptions(CLI::App* command, ClientOptions& options) {
  command
      ->add_option("--server", options.servers,
                   "Coordinator URL, https://HOST:PORT; repeat it (or separate URLs by commas) "
                   "for several coordinators of one installation: a request that cannot reach "
                   "one, or finds it busy (503), goes to the next")
      ->envname("FABU_SERVER")
      ->delimiter(',');
  command->add_option("--token", options.token, "Bearer token")->envname("FABU_TOKEN");
  command->add_option("--ca", options.ca, "CA certificate to pin (the coordinator's ca.pem)")
      ->envname("FABU_CA");
}

Result<ApiClient> ApiClient::Create(const ClientOptions& options) {
  ClientOptions checked = options;
  std::erase_if(checked.servers, [](const std::string& s) { return s.empty(); });
  if (checked.servers.empty()) {
    return Fail(ErrorCode::kInvalidArgument,
                "no coordinator given: use --server https://HOST:PORT or set FABU_SERVER");
  }
  for (std::string& server : checked.servers) {
    if (server.rfind("https://", 0) != 0) {
      return Fail(ErrorCode::kInvalidArgument,
                  fmt::format("--server {}: the coordinator speaks HTTPS only (https://HOST:PORT)",
                              server));
    }
    while (server.back() == '/') server.pop_back();
  }
  if (options.ca.empty()) {
    return Fail(ErrorCode::kInvalidArgument,
                "no CA to pin: use --ca DIR/ca.pem (from fabu-coordinator init) or set FABU_CA");
  }
  std::error_code ec;
  if (!std::filesystem::is_regular_file(options.ca, ec)) {
    return Fail(ErrorCode::kInvalidArgument, fmt::format("--ca {}: no such file", options.ca));
  }
  // Only https, the CA pinned, the environment's proxy if any; no timeout
  // on the whole request (an upload takes what it takes), but a server
  // silent for a minute is given up.
  platform::HttpClientOptions http;
  http.ca_file = options.ca;
  http.proxy_from_environment = true;
  http.low_speed_limit_bytes = 1;
  http.low_speed_time = std::chrono::seconds(60);
  auto client = platform::HttpClient::Create(std::move(http));
  if (!client) return std::unexpected(client.error());
  auto impl = std::make_unique<Impl>(Impl{std::move(checked), std::move(*client)});
  return ApiClient(std::move(impl));
}

ApiClient::ApiClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ApiClient::ApiClient(ApiClient&&) noexcept = default;
ApiClient& ApiClient::operator=(ApiClient&&) noexcept = default;
ApiClient::~ApiClient() = default;

Result<nlohmann::json> ApiClient::Get(const std::string& path) {
  return impl_->Perform(impl_->Request("GET", path));
}

Result<nlohmann::json> ApiClient::Post(const std::string& path, const nlohmann::json& body) {
  platform::HttpRequest request = impl_->Request("POST", path);
  request.headers.emplace_back("Content-Type: application/json");
  request.body = body.dump();
  return impl_->Perform(std::move(request));
}

Result<nlohmann::json> ApiClient::Upload(const std::string& path,
                                         const std::filesystem::path& file) {
  platform::HttpRequest request = impl_->Request("POST", path);
  request.headers.emplace_back("Content-Type: application/octet-stream");
  request.body_file = file;
  return impl_->Perform(std::move(request));
}

std::string ApiClient::Escape(std::string_view text) const { return platform::UrlEscape(text); }

std::string CellText(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>().empty() ? "-" : value.get<std::string>();
  if (value.is_null()) return "-";
  return value.dump();
}

void ReportFailure(std::string_view command, const Error& error, int& exit_code) {
  std::cerr << "fabu " << command << ": " << error.message() << "\n";
  exit_code = 1;
}

}  // namespace fabu::cli
