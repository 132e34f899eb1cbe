// Owning handles for libcurl objects and its one-time initialization, for
// the HTTP client (http_client.hpp) and the one other libcurl user, the
// notices' SMTP mailer (coordinator/notify/smtp_mail.cpp).
#pragma once

#include <curl/curl.h>

#include <memory>

#include "protocol/error.hpp"

namespace fabu::platform {

struct CurlFree {
  void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
};
struct SlistFree {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using CurlHandle = std::unique_ptr<CURL, CurlFree>;
using CurlList = std::unique_ptr<curl_slist, SlistFree>;  // headers, or mail recipients

// Appends `line` to `list` (libcurl copies it).
inline void Append(CurlList& list, const char* line) {
  list.reset(curl_slist_append(list.release(), line));
}

// A new easy handle; libcurl is initialized on the first call (thread-safe).
// kInternal when libcurl cannot be initialized or a handle cannot be made.
Result<CurlHandle> NewCurlHandle();

}  // namespace fabu::platform
