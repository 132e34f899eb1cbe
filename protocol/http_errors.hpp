// The one map between fabu's error codes and HTTP statuses, used by the
// coordinator's server (code -> status) and by both of its clients, the
// `fabu` CLI and the agent (status and error body -> code).
#pragma once

#include <string_view>

#include "protocol/error.hpp"

namespace fabu::protocol {

// The status the coordinator answers an Error with.
int HttpStatusFor(ErrorCode code);

// The code a client gives an answer with `status` (not 2xx) whose JSON body
// named `body_code` ({"error": {"code": ...}}; "" when there was none or it
// was not JSON). Every 5xx is kUnavailable, whatever the body says: the
// coordinator (or what stands before it) failed, and the request may pass
// later. Otherwise the body's code when it is one of ours, else the status's.
ErrorCode ErrorCodeForHttp(long status, std::string_view body_code = {});

}  // namespace fabu::protocol
