// The coordinator's outbound POSTs (the CMDB connectors, the webhook
// notices), made with the one HTTP client (platform/http).
//
// http:// and https:// are accepted; for https the certificate is verified
// against `ca_file` alone when given, else against the system's CAs; the
// environment's proxy is used if it names one; no redirect is followed;
// 10 s to connect, request.timeout for the whole exchange; at most 1 MiB of
// the answer is kept (enough for an error message). Any HTTP status is a
// response; a transport failure is kUnavailable naming the URL and what
// failed. Which URLs a webhook may go to is checked before, when the
// configuration is read (common/webhook_allow.hpp). Every call has its own
// client, so concurrent calls are safe.
#pragma once

#include <string>

#include "platform/http/http_client.hpp"
#include "protocol/error.hpp"

namespace fabu::coordinator {

// POSTs `request` (its method is set to POST).
Result<platform::HttpResponse> PostOutbound(platform::HttpRequest request,
                                            const std::string& ca_file);

}  // namespace fabu::coordinator
