// The CMDB connectors' HTTP client: one POST with libcurl.
//
// http:// and https:// are accepted; for https the server certificate is
// checked against `ca_file` when given, else the system's CA store, and the
// host name must match. Every call uses its own handle, so concurrent calls
// are safe. Transport failures (refused, timeout, TLS) are kUnavailable
// with libcurl's words; any HTTP status is a response, not an error.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "protocol/error.hpp"

namespace fabu::coordinator {

struct HttpPostRequest {
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;
  std::string ca_file;  // PEM; "" for the system's CAs
  std::chrono::seconds timeout{30};
};

struct HttpPostResponse {
  long status = 0;
  std::string body;
};

Result<HttpPostResponse> HttpPost(const HttpPostRequest& request);

// application/x-www-form-urlencoded body of `fields`, escaped by libcurl.
std::string FormEncode(const std::vector<std::pair<std::string, std::string>>& fields);

}  // namespace fabu::coordinator
