// The agent's HTTPS client: libcurl with the coordinator's CA pinned
// (docs/agent.md). The agent never includes coordinator/ code; this
// is its own small adapter.
//
// Every transfer: https only (no redirects to other schemes), peer and host
// verified against `ca` alone (no system store), no proxy taken from the
// environment, a connect timeout, and a low-speed limit (bytes/s over a
// window) so a stalled peer is abandoned. Requests carry
// "Authorization: Bearer <credential>" when a credential is given.
//
// A client owns one CURL handle (connections are reused between requests) and
// is used by one thread at a time. Errors: kUnavailable when the peer could
// not be reached or the transfer broke (the message says why, from libcurl),
// kInvalidArgument for a URL that is not https. HTTP statuses are returned,
// not turned into errors, except by StatusError.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "protocol/error.hpp"

namespace fabu::agent {

struct HttpsSettings {
  std::string ca;  // PEM file of the CA to pin
  std::chrono::seconds connect_timeout{15};
  std::int64_t low_speed_limit_bytes = 1024;  // 0: no limit
  std::chrono::seconds low_speed_time{60};
};

struct HttpResponse {
  long status = 0;
  // The Retry-After of the answer (as seconds), when it had one.
  std::optional<std::chrono::seconds> retry_after;
  std::string body;  // JSON answer (or, for a failed Fetch, up to 4 KiB of the error body)
};

// The error an HTTP status means, with the coordinator's message when its
// body is {"error": {"message": ...}}: "POST /x: <message> (HTTP 403)".
Error StatusError(std::string_view what, const HttpResponse& response);

class HttpsClient {
 public:
  // Called about once a second and on every chunk during a transfer; return
  // false to abandon the transfer (it then fails with kUnavailable).
  using Tick = std::function<bool()>;
  // Receives the body of a 200/206 answer to Fetch; `status` and the start of
  // the Content-Range (206 only) come first via OnStart. Returning false
  // aborts the transfer.
  struct FetchHandler {
    std::function<bool(long status, std::optional<std::uint64_t> range_start)> on_start;
    std::function<bool(std::span<const char> bytes)> on_data;
  };

  static Result<HttpsClient> Create(HttpsSettings settings);
  HttpsClient(HttpsClient&&) noexcept;
  HttpsClient& operator=(HttpsClient&&) noexcept;
  ~HttpsClient();

  void set_tick(Tick tick);

  // The Retry-After of the last answer (Request or Fetch), as a 503 of an
  // overloaded coordinator carries it; nullopt when it had none.
  std::optional<std::chrono::seconds> last_retry_after() const;

  // GET (body == nullptr) or POST of a JSON body. `timeout` bounds the whole
  // request (a long poll passes its wait plus a margin).
  Result<HttpResponse> Request(std::string_view method, const std::string& url,
                               const std::string* json_body, const std::string& bearer,
                               std::chrono::seconds timeout);

  // GET `url` streaming the body to `handler`, asking for the bytes from
  // `offset` on (Range: bytes=N-) when offset > 0. An answer other than
  // 200/206 is returned with its body and never reaches on_data.
  Result<HttpResponse> Fetch(const std::string& url, const std::string& bearer,
                             std::uint64_t offset, const FetchHandler& handler);

 private:
  struct Impl;
  explicit HttpsClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fabu::agent
