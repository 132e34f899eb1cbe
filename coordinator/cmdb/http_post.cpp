#include "coordinator/cmdb/http_post.hpp"

#include <curl/curl.h>
#include <fmt/format.h>

#include <memory>

#include "coordinator/common/curl_handles.hpp"

namespace fabu::coordinator {
namespace {

// Keep at most this much of an answer: enough for an error message.
constexpr std::size_t kMaxBody = 1 << 20;

size_t CollectBody(char* data, size_t size, size_t count, void* user) {
  auto* out = static_cast<std::string*>(user);
  const size_t n = size * count;
  if (out->size() < kMaxBody) out->append(data, std::min(n, kMaxBody - out->size()));
  return n;
}

Result<CurlHandle> NewHandle() {
  static const CURLcode kGlobal = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (kGlobal != CURLE_OK) return Fail(ErrorCode::kInternal, "libcurl failed to initialize");
  CurlHandle curl(curl_easy_init());
  if (!curl) return Fail(ErrorCode::kInternal, "libcurl: cannot make a handle");
  return curl;
}

}  // namespace

Result<HttpPostResponse> HttpPost(const HttpPostRequest& request) {
  auto handle = NewHandle();
  if (!handle) return std::unexpected(handle.error());
  CURL* c = handle->get();
  HttpPostResponse response;
  char error_text[CURL_ERROR_SIZE] = "";
  HeaderList headers;
  for (const std::string& line : request.headers) {
    headers.reset(curl_slist_append(headers.release(), line.c_str()));
  }
  curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  if (!request.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, request.ca_file.c_str());
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, static_cast<long>(request.timeout.count()));
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error_text);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, CollectBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &response.body);
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, request.body.c_str());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  const CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    return Fail(ErrorCode::kUnavailable,
                fmt::format("POST {}: {}", request.url,
                            error_text[0] != '\0' ? error_text : curl_easy_strerror(rc)));
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

std::string FormEncode(const std::vector<std::pair<std::string, std::string>>& fields) {
  auto handle = NewHandle();
  std::string out;
  for (const auto& [name, value] : fields) {
    if (!out.empty()) out += "&";
    for (const std::string* part : {&name, &value}) {
      char* escaped = curl_easy_escape(handle ? handle->get() : nullptr, part->data(),
                                       static_cast<int>(part->size()));
      if (escaped != nullptr) {
        out += escaped;
        curl_free(escaped);
      }
      if (part == &name) out += "=";
    }
  }
  return out;
}

}  // namespace fabu::coordinator
