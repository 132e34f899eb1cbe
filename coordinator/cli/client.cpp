#include "coordinator/cli/client.hpp"

#include <curl/curl.h>
#include <fmt/format.h>

#include <cstdio>
#include <iostream>

#include "coordinator/common/curl_handles.hpp"
#include "protocol/http_errors.hpp"

namespace fabu::cli {
namespace {

using coordinator::CurlHandle;
using coordinator::HeaderList;

struct FileClose {
  void operator()(std::FILE* file) const { std::fclose(file); }
};
using File = std::unique_ptr<std::FILE, FileClose>;

size_t CollectBody(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

size_t ReadFromFile(char* buffer, size_t size, size_t count, void* user) {
  std::FILE* file = static_cast<std::FILE*>(user);
  const size_t n = std::fread(buffer, 1, size * count, file);
  if (n == 0 && std::ferror(file)) return CURL_READFUNC_ABORT;
  return n;
}

}  // namespace

struct ApiClient::Impl {
  ClientOptions options;
  CurlHandle curl;

  Result<nlohmann::json> Perform(const std::string& method, const std::string& path,
                                 const std::string* json_body, std::FILE* upload,
                                 std::uint64_t upload_size) {
    CURL* c = curl.get();
    curl_easy_reset(c);
    const std::string url = options.server + path;
    std::string response;
    char error_text[CURL_ERROR_SIZE] = "";
    HeaderList headers;
    auto add_header = [&headers](const std::string& line) {
      headers.reset(curl_slist_append(headers.release(), line.c_str()));
    };
    add_header("Accept: application/json");
    if (!options.token.empty()) add_header("Authorization: Bearer " + options.token);
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(c, CURLOPT_CAINFO, options.ca.c_str());
    curl_easy_setopt(c, CURLOPT_CAPATH, nullptr);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 15L);
    // Give up on a server silent for a minute, however long an upload takes.
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error_text);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, CollectBody);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &response);
    if (method == "POST") {
      curl_easy_setopt(c, CURLOPT_POST, 1L);
      if (upload != nullptr) {
        add_header("Content-Type: application/octet-stream");
        curl_easy_setopt(c, CURLOPT_READFUNCTION, ReadFromFile);
        curl_easy_setopt(c, CURLOPT_READDATA, upload);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(upload_size));
      } else {
        add_header("Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, json_body->c_str());
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                         static_cast<curl_off_t>(json_body->size()));
      }
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
    const CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
      return Fail(ErrorCode::kUnavailable,
                  fmt::format("{} {}: {}", method, url,
                              error_text[0] != '\0' ? error_text : curl_easy_strerror(rc)));
    }
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    nlohmann::json body = nlohmann::json::parse(response, nullptr, false);
    if (status < 200 || status >= 300) {
      std::string message = fmt::format("HTTP {}", status), code;
      if (!body.is_discarded() && body.contains("error") && body["error"].is_object()) {
        const nlohmann::json& error = body["error"];
        if (error.contains("message") && error["message"].is_string()) {
          message = error["message"].get<std::string>();
        }
        if (error.contains("code") && error["code"].is_string()) {
          code = error["code"].get<std::string>();
        }
      }
      return Fail(protocol::ErrorCodeForHttp(status, code),
                  fmt::format("{} (HTTP {})", message, status));
    }
    if (body.is_discarded()) {
      return Fail(ErrorCode::kUnavailable,
                  fmt::format("{} {}: the answer is not JSON", method, url));
    }
    return body;
  }
};

void AddClientOptions(CLI::App* command, ClientOptions& options) {
  command->add_option("--server", options.server, "Coordinator URL, https://HOST:PORT")
      ->envname("FABU_SERVER");
  command->add_option("--token", options.token, "Bearer token")->envname("FABU_TOKEN");
  command->add_option("--ca", options.ca, "CA certificate to pin (the coordinator's ca.pem)")
      ->envname("FABU_CA");
}

Result<ApiClient> ApiClient::Create(const ClientOptions& options) {
  if (options.server.empty()) {
    return Fail(ErrorCode::kInvalidArgument,
                "no coordinator given: use --server https://HOST:PORT or set FABU_SERVER");
  }
  if (options.server.rfind("https://", 0) != 0) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("--server {}: the coordinator speaks HTTPS only (https://HOST:PORT)",
                            options.server));
  }
  if (options.ca.empty()) {
    return Fail(ErrorCode::kInvalidArgument,
                "no CA to pin: use --ca DIR/ca.pem (from fabu-coordinator init) or set FABU_CA");
  }
  std::error_code ec;
  if (!std::filesystem::is_regular_file(options.ca, ec)) {
    return Fail(ErrorCode::kInvalidArgument, fmt::format("--ca {}: no such file", options.ca));
  }
  static const CURLcode kGlobal = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (kGlobal != CURLE_OK) return Fail(ErrorCode::kInternal, "libcurl failed to initialize");
  CurlHandle curl(curl_easy_init());
  if (!curl) return Fail(ErrorCode::kInternal, "libcurl: cannot make a handle");
  auto impl = std::make_unique<Impl>(Impl{options, std::move(curl)});
  while (!impl->options.server.empty() && impl->options.server.back() == '/') {
    impl->options.server.pop_back();
  }
  return ApiClient(std::move(impl));
}

ApiClient::ApiClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ApiClient::ApiClient(ApiClient&&) noexcept = default;
ApiClient& ApiClient::operator=(ApiClient&&) noexcept = default;
ApiClient::~ApiClient() = default;

Result<nlohmann::json> ApiClient::Get(const std::string& path) {
  return impl_->Perform("GET", path, nullptr, nullptr, 0);
}

Result<nlohmann::json> ApiClient::Post(const std::string& path, const nlohmann::json& body) {
  const std::string text = body.dump();
  return impl_->Perform("POST", path, &text, nullptr, 0);
}

Result<nlohmann::json> ApiClient::Upload(const std::string& path,
                                         const std::filesystem::path& file) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(file, ec);
  if (ec) return Fail(ErrorCode::kNotFound, fmt::format("{}: {}", file.string(), ec.message()));
  File handle(std::fopen(file.c_str(), "rb"));
  if (!handle) return Fail(ErrorCode::kIo, fmt::format("cannot open {}", file.string()));
  return impl_->Perform("POST", path, nullptr, handle.get(), size);
}

std::string ApiClient::Escape(std::string_view text) const {
  char* escaped = curl_easy_escape(impl_->curl.get(), text.data(), static_cast<int>(text.size()));
  if (escaped == nullptr) return std::string(text);
  std::string out(escaped);
  curl_free(escaped);
  return out;
}

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
