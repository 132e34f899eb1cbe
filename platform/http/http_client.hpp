// fabu's one HTTP client (libcurl): the agent's calls to the coordinator and
// its package downloads, the `fabu` CLI's calls and uploads, and the
// coordinator's outbound POSTs (CMDB connectors, webhook notices) all go
// through it (docs/architecture.md, "Modules and their dependencies").
//
// Every transfer:
//   - https only, unless the options allow http too (the outbound POSTs);
//     redirects are never followed, so a bearer token or credential goes
//     only to the URL the caller chose;
//   - TLS peer and host name verified: against `ca_file` alone when given
//     (the pinned CA, no system store), else against the system's CA bundle;
//   - a proxy only when the options take it from the environment
//     (http_proxy, https_proxy, no_proxy); otherwise never one;
//   - a client certificate (mutual TLS) when the options give one, to the
//     origin they name only;
//   - a connect timeout, an optional low-speed limit (bytes/s over a window,
//     so a stalled peer is abandoned) and an optional whole-request timeout.
//
// Errors: kInvalidArgument for a URL of a scheme not allowed; kUnavailable
// when the peer could not be reached or the transfer broke, the message
// naming the method, the URL and what failed ("connection refused", "timed
// out", "TLS: the server's certificate does not verify against ...") with
// libcurl's own words after it. An HTTP status is a response, not an error:
// StatusError turns one into the Error protocol/http_errors.hpp maps it to.
//
// A client owns one CURL handle (connections are kept and reused between
// requests) and is used by one thread at a time; make one per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/error.hpp"

namespace fabu::platform {

struct HttpClientOptions {
  // PEM file of the CA to pin (only it is trusted); "" for the system's CAs.
  std::string ca_file;
  // Accept http:// URLs as well as https:// ones.
  bool allow_plain_http = false;
  // Use the proxy the environment names; false: never a proxy.
  bool proxy_from_environment = false;
  std::chrono::seconds connect_timeout{15};
  // Abandon a transfer slower than this many bytes/s over low_speed_time;
  // 0: no limit.
  std::int64_t low_speed_limit_bytes = 0;
  std::chrono::seconds low_speed_time{60};
  // A client certificate and its private key (PEM files) presented in the
  // TLS handshake (mutual TLS), only to URLs that start with one of
  // `client_cert_origins` ("https://host:port/" each; none: every URL). The
  // agent presents its certificate to its coordinators alone, never to a
  // mirror.
  std::string client_cert_file;
  std::string client_key_file;
  std::vector<std::string> client_cert_origins;
};

// How far the last request got, for a caller that may send it to another
// server instead: only a request the server never saw is safe to repeat
// elsewhere whatever it does.
enum class HttpDelivery {
  kAnswered,  // an HTTP answer came, whole (any status)
  kNotSent,   // failed before any byte of the request was sent: refused,
              // unresolvable, connect timeout, TLS handshake failed
  kCutShort,  // failed after the request went out (reset, closed, timed out,
              // an answer cut short): the server may have acted on it
};

struct HttpRequest {
  std::string method = "GET";  // "GET", "POST" or "DELETE"
  std::string url;
  std::string bearer;                // sent as "Authorization: Bearer <bearer>" when not ""
  std::vector<std::string> headers;  // "Name: value"
  std::string body;                  // a POST's body, in memory...
  std::filesystem::path body_file;   // ...or streamed from this file when not empty
  std::chrono::seconds timeout{0};   // bounds the whole exchange; 0: no bound
  // Keep at most this much of the answer's body (the rest is read and dropped).
  std::size_t max_response_bytes = std::numeric_limits<std::size_t>::max();
};

struct HttpResponse {
  long status = 0;
  // The Retry-After of the answer (as seconds), when it had one.
  std::optional<std::chrono::seconds> retry_after;
  std::string body;  // (for a failed Fetch, up to 4 KiB of the error body)
  // The answer's header lines ("Name: value\r\n" each; of the last answer
  // when there were several, as after a 100 Continue). Send only.
  std::string headers;

  // The value of header `name` (any case), without surrounding blanks;
  // nullopt when the answer had none.
  std::optional<std::string> Header(std::string_view name) const;
};

// The error an HTTP status means (protocol::ErrorCodeForHttp), with the
// server's message when the body is {"error": {"message": ..., "code": ...}}:
// "<what>: <message> (HTTP 403)", or "<message> (HTTP 403)" when `what` is "".
Error StatusError(std::string_view what, const HttpResponse& response);

// Percent-encodes everything but RFC 3986's unreserved characters: one path
// segment or query value.
std::string UrlEscape(std::string_view text);

// An application/x-www-form-urlencoded body of `fields`.
std::string FormEncode(const std::vector<std::pair<std::string, std::string>>& fields);

class HttpClient {
 public:
  // Called about once a second and on every chunk during a transfer; return
  // false to abandon the transfer (it then fails with kUnavailable).
  using Tick = std::function<bool()>;
  // Receives the body of a 200/206 answer to Fetch: first on_start with the
  // status and the start of the Content-Range (206 only), then the bytes.
  // Returning false from either aborts the transfer.
  struct FetchHandler {
    std::function<bool(long status, std::optional<std::uint64_t> range_start)> on_start;
    std::function<bool(std::span<const char> bytes)> on_data;
  };

  static Result<HttpClient> Create(HttpClientOptions options);
  HttpClient(HttpClient&&) noexcept;
  HttpClient& operator=(HttpClient&&) noexcept;
  ~HttpClient();

  void set_tick(Tick tick);

  // The Retry-After of the last answer (Send or Fetch), as a 503 of an
  // overloaded server carries it; nullopt when it had none.
  std::optional<std::chrono::seconds> last_retry_after() const;
  // How far the last Send or Fetch got (HttpDelivery), and the HTTP status
  // of its answer (0 when none came). A URL refused before any transfer
  // (its scheme) counts as kNotSent.
  HttpDelivery last_delivery() const;
  long last_status() const;

  // One request; the answer whatever its status.
  Result<HttpResponse> Send(const HttpRequest& request);

  // GET `url` streaming the body to `handler`, asking for the bytes from
  // `offset` on (Range: bytes=N-) when offset > 0. An answer other than
  // 200/206 is returned with (up to 4 KiB of) its body and never reaches
  // on_data. Not bounded by a whole-request timeout: the low-speed limit
  // and the tick end a stalled one.
  Result<HttpResponse> Fetch(const std::string& url, const std::string& bearer,
                             std::uint64_t offset, const FetchHandler& handler);

 private:
  struct Impl;
  explicit HttpClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fabu::platform
