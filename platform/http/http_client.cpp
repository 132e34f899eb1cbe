#include "platform/http/http_client.hpp"

#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "platform/http/curl_handles.hpp"
#include "protocol/http_errors.hpp"

namespace fabu::platform {

namespace {

constexpr std::size_t kErrorBodyLimit = 4096;

struct FileClose {
  void operator()(std::FILE* file) const { std::fclose(file); }
};
using File = std::unique_ptr<std::FILE, FileClose>;

struct Collected {
  std::string* out;
  std::size_t limit;
};

size_t CollectBody(char* data, size_t size, size_t count, void* user) {
  auto* c = static_cast<Collected*>(user);
  const size_t n = size * count;
  if (c->out->size() < c->limit) c->out->append(data, std::min(n, c->limit - c->out->size()));
  return n;
}

size_t CollectHeader(char* data, size_t size, size_t count, void* user) {
  auto* out = static_cast<std::string*>(user);
  const std::string_view line(data, size * count);
  if (line.starts_with("HTTP/")) {
    out->clear();  // a new answer (after 100 Continue)
  } else if (line != "\r\n") {
    out->append(line);
  }
  return size * count;
}

size_t ReadFromFile(char* buffer, size_t size, size_t count, void* user) {
  std::FILE* file = static_cast<std::FILE*>(user);
  const size_t n = std::fread(buffer, 1, size * count, file);
  if (n == 0 && std::ferror(file)) return CURL_READFUNC_ABORT;
  return n;
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

bool StartsWithNoCase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    const auto lower = [](char c) {
      return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
    };
    if (lower(text[i]) != lower(prefix[i])) return false;
  }
  return true;
}

}  // namespace

std::optional<std::string> HttpResponse::Header(std::string_view name) const {
  std::string_view rest = headers;
  while (!rest.empty()) {
    const std::size_t end = rest.find('\n');
    std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    if (line.size() > name.size() && line[name.size()] == ':' && StartsWithNoCase(line, name)) {
      std::string_view value = line.substr(name.size() + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
        value.remove_prefix(1);
      }
      while (!value.empty() && (value.back() == '\r' || value.back() == ' '))
        value.remove_suffix(1);
      return std::string(value);
    }
  }
  return std::nullopt;
}

Error StatusError(std::string_view what, const HttpResponse& response) {
  std::string message = fmt::format("HTTP {}", response.status), code;
  const auto body = nlohmann::json::parse(response.body, nullptr, false);
  if (!body.is_discarded() && body.is_object() && body.contains("error") &&
      body["error"].is_object()) {
    const nlohmann::json& error = body["error"];
    if (error.contains("message") && error["message"].is_string()) {
      message = fmt::format("{} (HTTP {})", error["message"].get<std::string>(), response.status);
    }
    if (error.contains("code") && error["code"].is_string()) {
      code = error["code"].get<std::string>();
    }
  }
  return Error(protocol::ErrorCodeForHttp(response.status, code),
               what.empty() ? message : fmt::format("{}: {}", what, message));
}

std::string UrlEscape(std::string_view text) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if ((u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kDigits[u >> 4];
      out += kDigits[u & 0xf];
    }
  }
  return out;
}

std::string FormEncode(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string out;
  for (const auto& [name, value] : fields) {
    if (!out.empty()) out += "&";
    out += UrlEscape(name) + "=" + UrlEscape(value);
  }
  return out;
}

struct HttpClient::Impl {
  HttpClientOptions options;
  CurlHandle curl;
  Tick tick;
  std::optional<std::chrono::seconds> last_retry_after;
  HttpDelivery last_delivery = HttpDelivery::kNotSent;
  long last_status = 0;

  // The Retry-After of the transfer just ended (libcurl parses the header).
  std::optional<std::chrono::seconds> RetryAfter() {
    curl_off_t seconds = 0;
    if (curl_easy_getinfo(curl.get(), CURLINFO_RETRY_AFTER, &seconds) != CURLE_OK || seconds <= 0) {
      return std::nullopt;
    }
    return std::chrono::seconds(seconds);
  }

  // State of a Fetch in progress, for the callbacks.
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
    } else if (StartsWithNoCase(line, "content-range:")) {
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

  Result<void> CheckUrl(std::string_view method, const std::string& url) const {
    if (url.starts_with("https://")) return {};
    if (options.allow_plain_http && url.starts_with("http://")) return {};
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("{} {}: not an {} URL", method, url,
                            options.allow_plain_http ? "http:// or https://" : "https://"));
  }

  // Options shared by every transfer.
  void Prepare(const std::string& url, const std::string& bearer, CurlList& headers,
               char* error_text) {
    CURL* c = curl.get();
    curl_easy_reset(c);
    if (!bearer.empty()) Append(headers, ("Authorization: Bearer " + bearer).c_str());
    const char* protocols = options.allow_plain_http ? "http,https" : "https";
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, protocols);
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, protocols);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    if (!options.ca_file.empty()) {
      curl_easy_setopt(c, CURLOPT_CAINFO, options.ca_file.c_str());
      curl_easy_setopt(c, CURLOPT_CAPATH, nullptr);
    }
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!options.client_cert_file.empty() &&
        (options.client_cert_origins.empty() ||
         std::ranges::any_of(options.client_cert_origins,
                             [&](const std::string& origin) { return url.starts_with(origin); }))) {
      curl_easy_setopt(c, CURLOPT_SSLCERT, options.client_cert_file.c_str());
      curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
      curl_easy_setopt(c, CURLOPT_SSLKEY, options.client_key_file.c_str());
      curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
    }
    if (!options.proxy_from_environment) curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, static_cast<long>(options.connect_timeout.count()));
    if (options.low_speed_limit_bytes > 0) {
      curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT,
                       static_cast<long>(options.low_speed_limit_bytes));
      curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME,
                       static_cast<long>(options.low_speed_time.count()));
    }
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error_text);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &Impl::Progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, this);
    last_retry_after.reset();
    last_delivery = HttpDelivery::kNotSent;
    last_status = 0;
  }

  // Records how far a transfer that failed got: nothing of the request
  // sent (libcurl counts the request's bytes as it sends them) or more.
  void NoteFailure() {
    long sent = 0;
    curl_easy_getinfo(curl.get(), CURLINFO_REQUEST_SIZE, &sent);
    last_delivery = sent > 0 ? HttpDelivery::kCutShort : HttpDelivery::kNotSent;
  }

  // "GET URL: <what failed> (<libcurl's words>)".
  Error TransportError(std::string_view method, const std::string& url, CURLcode rc,
                       const char* error_text) {
    const std::string detail = error_text[0] != '\0' ? error_text : curl_easy_strerror(rc);
    std::string what;
    switch (rc) {
      case CURLE_ABORTED_BY_CALLBACK:
        return Error(ErrorCode::kUnavailable, fmt::format("{} {}: interrupted", method, url));
      case CURLE_COULDNT_CONNECT: {
        long os_errno = 0;
        curl_easy_getinfo(curl.get(), CURLINFO_OS_ERRNO, &os_errno);
        what = os_errno == ECONNREFUSED ? "connection refused" : "cannot connect";
        break;
      }
      case CURLE_COULDNT_RESOLVE_HOST:
        what = "cannot resolve the host name";
        break;
      case CURLE_COULDNT_RESOLVE_PROXY:
        what = "cannot resolve the proxy's host name";
        break;
      case CURLE_OPERATION_TIMEDOUT:
        what = "timed out";
        break;
      case CURLE_PEER_FAILED_VERIFICATION:
        what = fmt::format("TLS: the server's certificate does not verify against {}",
                           options.ca_file.empty() ? std::string("the system's CAs")
                                                   : "the pinned CA " + options.ca_file);
        break;
      case CURLE_SSL_CERTPROBLEM:
        what = fmt::format("TLS: cannot use the client certificate {} with the key {}",
                           options.client_cert_file, options.client_key_file);
        break;
      case CURLE_SSL_CACERT_BADFILE:
        what = fmt::format("TLS: cannot read the CA file {}", options.ca_file);
        break;
      case CURLE_SSL_CONNECT_ERROR:
        what = "TLS handshake failed";
        break;
      case CURLE_SEND_ERROR:
      case CURLE_RECV_ERROR:
      case CURLE_GOT_NOTHING:
      case CURLE_PARTIAL_FILE:
        what = "the connection broke";
        break;
      case CURLE_READ_ERROR:
        what = "cannot read the body to send";
        break;
      default:
        return Error(ErrorCode::kUnavailable, fmt::format("{} {}: {}", method, url, detail));
    }
    return Error(ErrorCode::kUnavailable, fmt::format("{} {}: {} ({})", method, url, what, detail));
  }
};

Result<HttpClient> HttpClient::Create(HttpClientOptions options) {
  auto curl = NewCurlHandle();
  if (!curl) return std::unexpected(curl.error());
  return HttpClient(std::make_unique<Impl>(Impl{std::move(options), std::move(*curl), {}, {}}));
}

HttpClient::HttpClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;
HttpClient::~HttpClient() = default;

void HttpClient::set_tick(Tick tick) { impl_->tick = std::move(tick); }

std::optional<std::chrono::seconds> HttpClient::last_retry_after() const {
  return impl_->last_retry_after;
}

HttpDelivery HttpClient::last_delivery() const { return impl_->last_delivery; }

long HttpClient::last_status() const { return impl_->last_status; }

Result<HttpResponse> HttpClient::Send(const HttpRequest& request) {
  const std::string& url = request.url;
  if (request.method != "GET" && request.method != "POST" && request.method != "DELETE") {
    return Fail(ErrorCode::kInternal, fmt::format("{} {}: the HTTP client sends GET, POST or "
                                                  "DELETE only",
                                                  request.method, url));
  }
  impl_->last_delivery = HttpDelivery::kNotSent;
  impl_->last_status = 0;
  if (auto ok = impl_->CheckUrl(request.method, url); !ok) return std::unexpected(ok.error());
  CURL* c = impl_->curl.get();
  char error_text[CURL_ERROR_SIZE] = "";
  CurlList headers;
  impl_->Prepare(url, request.bearer, headers, error_text);
  for (const std::string& line : request.headers) Append(headers, line.c_str());
  HttpResponse response;
  Collected collected{&response.body, request.max_response_bytes};
  if (request.timeout.count() > 0) {
    curl_easy_setopt(c, CURLOPT_TIMEOUT, static_cast<long>(request.timeout.count()));
  }
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, CollectBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &collected);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, CollectHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &response.headers);
  File upload;
  if (request.method == "DELETE") curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
  if (request.method == "POST") {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    if (!request.body_file.empty()) {
      std::error_code ec;
      const auto size = std::filesystem::file_size(request.body_file, ec);
      if (ec) {
        return Fail(ErrorCode::kNotFound,
                    fmt::format("{}: {}", request.body_file.string(), ec.message()));
      }
      upload.reset(std::fopen(request.body_file.c_str(), "rb"));
      if (!upload) {
        return Fail(ErrorCode::kIo, fmt::format("cannot open {}", request.body_file.string()));
      }
      curl_easy_setopt(c, CURLOPT_READFUNCTION, ReadFromFile);
      curl_easy_setopt(c, CURLOPT_READDATA, upload.get());
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(size));
    } else {
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, request.body.c_str());
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(request.body.size()));
    }
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  const CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    impl_->NoteFailure();
    return std::unexpected(impl_->TransportError(request.method, url, rc, error_text));
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response.status);
  impl_->last_delivery = HttpDelivery::kAnswered;
  impl_->last_status = response.status;
  response.retry_after = impl_->RetryAfter();
  impl_->last_retry_after = response.retry_after;
  return response;
}

Result<HttpResponse> HttpClient::Fetch(const std::string& url, const std::string& bearer,
                                       std::uint64_t offset, const FetchHandler& handler) {
  impl_->last_delivery = HttpDelivery::kNotSent;
  impl_->last_status = 0;
  if (auto ok = impl_->CheckUrl("GET", url); !ok) return std::unexpected(ok.error());
  CURL* c = impl_->curl.get();
  char error_text[CURL_ERROR_SIZE] = "";
  CurlList headers;
  impl_->Prepare(url, bearer, headers, error_text);
  Impl::Transfer transfer;
  transfer.self = impl_.get();
  transfer.handler = &handler;
  if (offset > 0) Append(headers, fmt::format("Range: bytes={}-", offset).c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &Impl::Header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &transfer);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Impl::Write);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &transfer);
  const CURLcode rc = curl_easy_perform(c);
  if (transfer.aborted_by_handler) {
    impl_->NoteFailure();
    return Fail(ErrorCode::kUnavailable, fmt::format("GET {}: abandoned by the receiver", url));
  }
  if (rc != CURLE_OK) {
    impl_->NoteFailure();
    return std::unexpected(impl_->TransportError("GET", url, rc, error_text));
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &impl_->last_status);
  impl_->last_delivery = HttpDelivery::kAnswered;
  transfer.response.retry_after = impl_->RetryAfter();
  impl_->last_retry_after = transfer.response.retry_after;
  // An empty body never reached Write: tell the handler now.
  if (!transfer.started && !impl_->Start(transfer)) {
    return Fail(ErrorCode::kUnavailable, fmt::format("GET {}: abandoned by the receiver", url));
  }
  return transfer.response;
}

}  // namespace fabu::platform
