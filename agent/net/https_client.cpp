#include "agent/net/https_client.hpp"

#include <curl/curl.h>
#include <fmt/format.h>

#include <charconv>
#include <nlohmann/json.hpp>

#include "protocol/http_errors.hpp"

namespace fabu::agent {

namespace {

struct CurlFree {
  void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
};
struct SlistFree {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using CurlHandle = std::unique_ptr<CURL, CurlFree>;
using HeaderList = std::unique_ptr<curl_slist, SlistFree>;

constexpr std::size_t kErrorBodyLimit = 4096;

size_t CollectBody(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

// "bytes 100-199/200" -> 100.
std::optional<std::uint64_t> ParseContentRangeStart(std::string_view value) {
  constexpr std::string_view kUnit = "bytes ";
  if (!value.starts_with(kUnit)) return std::nullopt;
  value.remove_prefix(kUnit.size());
  std::uint64_t start = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), start);
  if (ec != std::errc() || end == value.data() + value.size() || *end != '-') return std::nullopt;
  return start;
}

}  // namespace

Error StatusError(std::string_view what, const HttpResponse& response) {
  std::string message = fmt::format("HTTP {}", response.status), code;
  const auto body = nlohmann::json::parse(response.body, nullptr, false);
  if (!body.is_discarded() && body.is_object() && body.contains("error") &&
      body["error"].is_object()) {
    const nlohmann::json& error = body["error"];
    if (error.contains("message") && error["message"].is_string()) {
      message = fmt::format("{} (HTTP {})", error["message"].get<std::string>(), response.status);
    }
    if (error.contains("code") && error["code"].is_string())
      code = error["code"].get<std::string>();
  }
  return Error(protocol::ErrorCodeForHttp(response.status, code),
               fmt::format("{}: {}", what, message));
}

struct HttpsClient::Impl {
  HttpsSettings settings;
  CurlHandle curl;
  Tick tick;
  std::optional<std::chrono::seconds> last_retry_after;

  // The Retry-After of the transfer just ended (libcurl parses the header).
  std::optional<std::chrono::seconds> RetryAfter() {
    curl_off_t seconds = 0;
    if (curl_easy_getinfo(curl.get(), CURLINFO_RETRY_AFTER, &seconds) != CURLE_OK || seconds <= 0) {
      return std::nullopt;
    }
    return std::chrono::seconds(seconds);
  }

  // State of the transfer in progress, for the callbacks.
  struct Transfer {
    Impl* self = nullptr;
    const FetchHandler* handler = nullptr;
    std::optional<std::uint64_t> range_start;
    bool started = false;
    bool streaming = false;  // a 200/206 answer being handed to the handler
    bool aborted_by_handler = false;
    HttpResponse response;
  };

  static int Progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    auto* self = static_cast<Impl*>(user);
    return (self->tick && !self->tick()) ? 1 : 0;
  }

  static size_t Header(char* data, size_t size, size_t count, void* user) {
    auto* t = static_cast<Transfer*>(user);
    std::string_view line(data, size * count);
    if (line.starts_with("HTTP/")) {
      t->range_start.reset();  // a new response (after 100 Continue)
    } else if (line.size() > 14 &&
               (line.starts_with("Content-Range:") || line.starts_with("content-range:"))) {
      std::string_view value = line.substr(14);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      t->range_start = ParseContentRangeStart(value);
    }
    return size * count;
  }

  bool Start(Transfer& t) {
    t.started = true;
    curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &t.response.status);
    t.streaming = t.response.status == 200 || t.response.status == 206;
    if (t.streaming && !t.handler->on_start(t.response.status, t.range_start)) {
      t.aborted_by_handler = true;
      return false;
    }
    return true;
  }

  static size_t Write(char* data, size_t size, size_t count, void* user) {
    auto* t = static_cast<Transfer*>(user);
    const size_t n = size * count;
    if (!t->started && !t->self->Start(*t)) return 0;
    if (!t->streaming) {
      const size_t room = kErrorBodyLimit - std::min(kErrorBodyLimit, t->response.body.size());
      t->response.body.append(data, std::min(room, n));
      return n;
    }
    if (!t->handler->on_data(std::span<const char>(data, n))) {
      t->aborted_by_handler = true;
      return 0;
    }
    if (t->self->tick && !t->self->tick()) return 0;
    return n;
  }

  // Options shared by every transfer; returns the error buffer's owner.
  void Prepare(const std::string& url, const std::string& bearer, HeaderList& headers,
               char* error_text) {
    CURL* c = curl.get();
    curl_easy_reset(c);
    if (!bearer.empty()) {
      headers.reset(
          curl_slist_append(headers.release(), ("Authorization: Bearer " + bearer).c_str()));
    }
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_CAINFO, settings.ca.c_str());
    curl_easy_setopt(c, CURLOPT_CAPATH, nullptr);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT,
                     static_cast<long>(settings.connect_timeout.count()));
    if (settings.low_speed_limit_bytes > 0) {
      curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT,
                       static_cast<long>(settings.low_speed_limit_bytes));
      curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME,
                       static_cast<long>(settings.low_speed_time.count()));
    }
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error_text);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &Impl::Progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, this);
  }

  static Error TransportError(std::string_view method, const std::string& url, CURLcode rc,
                              const char* error_text) {
    if (rc == CURLE_ABORTED_BY_CALLBACK) {
      return Error(ErrorCode::kUnavailable, fmt::format("{} {}: interrupted", method, url));
    }
    return Error(ErrorCode::kUnavailable,
                 fmt::format("{} {}: {}", method, url,
                             error_text[0] != '\0' ? error_text : curl_easy_strerror(rc)));
  }
};

Result<HttpsClient> HttpsClient::Create(HttpsSettings settings) {
  static const CURLcode kGlobal = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (kGlobal != CURLE_OK) return Fail(ErrorCode::kInternal, "libcurl failed to initialize");
  CurlHandle curl(curl_easy_init());
  if (!curl) return Fail(ErrorCode::kInternal, "libcurl: cannot make a handle");
  return HttpsClient(std::make_unique<Impl>(Impl{std::move(settings), std::move(curl), {}, {}}));
}

HttpsClient::HttpsClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpsClient::HttpsClient(HttpsClient&&) noexcept = default;
HttpsClient& HttpsClient::operator=(HttpsClient&&) noexcept = default;
HttpsClient::~HttpsClient() = default;

void HttpsClient::set_tick(Tick tick) { impl_->tick = std::move(tick); }

std::optional<std::chrono::seconds> HttpsClient::last_retry_after() const {
  return impl_->last_retry_after;
}

Result<HttpResponse> HttpsClient::Request(std::string_view method, const std::string& url,
                                          const std::string* json_body, const std::string& bearer,
                                          std::chrono::seconds timeout) {
  if (!url.starts_with("https://")) {
    return Fail(ErrorCode::kInvalidArgument, fmt::format("{}: not an https:// URL", url));
  }
  CURL* c = impl_->curl.get();
  char error_text[CURL_ERROR_SIZE] = "";
  HeaderList headers;
  impl_->Prepare(url, bearer, headers, error_text);
  impl_->last_retry_after.reset();
  headers.reset(curl_slist_append(headers.release(), "Accept: application/json"));
  HttpResponse response;
  curl_easy_setopt(c, CURLOPT_TIMEOUT, static_cast<long>(timeout.count()));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, CollectBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &response.body);
  if (json_body != nullptr) {
    headers.reset(curl_slist_append(headers.release(), "Content-Type: application/json"));
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, json_body->c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(json_body->size()));
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  const CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) return std::unexpected(Impl::TransportError(method, url, rc, error_text));
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response.status);
  response.retry_after = impl_->RetryAfter();
  impl_->last_retry_after = response.retry_after;
  return response;
}

Result<HttpResponse> HttpsClient::Fetch(const std::string& url, const std::string& bearer,
                                        std::uint64_t offset, const FetchHandler& handler) {
  if (!url.starts_with("https://")) {
    return Fail(ErrorCode::kInvalidArgument, fmt::format("{}: not an https:// URL", url));
  }
  CURL* c = impl_->curl.get();
  char error_text[CURL_ERROR_SIZE] = "";
  HeaderList headers;
  impl_->Prepare(url, bearer, headers, error_text);
  impl_->last_retry_after.reset();
  Impl::Transfer transfer;
  transfer.self = impl_.get();
  transfer.handler = &handler;
  if (offset > 0) {
    headers.reset(
        curl_slist_append(headers.release(), fmt::format("Range: bytes={}-", offset).c_str()));
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &Impl::Header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &transfer);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Impl::Write);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &transfer);
  const CURLcode rc = curl_easy_perform(c);
  if (transfer.aborted_by_handler) {
    return Fail(ErrorCode::kUnavailable, fmt::format("GET {}: abandoned by the receiver", url));
  }
  if (rc != CURLE_OK) return std::unexpected(Impl::TransportError("GET", url, rc, error_text));
  transfer.response.retry_after = impl_->RetryAfter();
  impl_->last_retry_after = transfer.response.retry_after;
  // An empty body never reached Write: tell the handler now.
  if (!transfer.started && !impl_->Start(transfer)) {
    return Fail(ErrorCode::kUnavailable, fmt::format("GET {}: abandoned by the receiver", url));
  }
  return transfer.response;
}

}  // namespace fabu::agent
