// The JSON shape of an error response: {"error": {"code": "...", "message":
// "..."}}; its status is protocol::HttpStatusFor (protocol/http_errors.hpp),
// the map the clients read back. Pure functions.
#pragma once

#include <nlohmann/json.hpp>

#include "protocol/error.hpp"
#include "protocol/http_errors.hpp"

namespace fabu::coordinator {

using protocol::HttpStatusFor;

nlohmann::json ErrorBody(const Error& error);

}  // namespace fabu::coordinator
