#include "platform/http/curl_handles.hpp"

namespace fabu::platform {

Result<CurlHandle> NewCurlHandle() {
  static const CURLcode kGlobal = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (kGlobal != CURLE_OK) return Fail(ErrorCode::kInternal, "libcurl failed to initialize");
  CurlHandle curl(curl_easy_init());
  if (!curl) return Fail(ErrorCode::kInternal, "libcurl: cannot make a handle");
  return curl;
}

}  // namespace fabu::platform
