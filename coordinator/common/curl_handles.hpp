// Owning handles for libcurl objects, shared by the coordinator's libcurl
// users (the CLI's client, the CMDB webhook/iTop poster, the SMTP mailer).
#pragma once

#include <curl/curl.h>

#include <memory>

namespace fabu::coordinator {

struct CurlFree {
  void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
};
struct SlistFree {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using CurlHandle = std::unique_ptr<CURL, CurlFree>;
using HeaderList = std::unique_ptr<curl_slist, SlistFree>;  // also a recipient list

}  // namespace fabu::coordinator
