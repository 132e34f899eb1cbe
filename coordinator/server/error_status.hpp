// The one place where fabu error codes become HTTP statuses, and the JSON
// shape of an error response: {"error": {"code": "...", "message": "..."}}.
// Pure functions.
#pragma once

#include <nlohmann/json.hpp>

#include "protocol/error.hpp"

namespace fabu::coordinator {

int HttpStatusFor(ErrorCode code);

nlohmann::json ErrorBody(const Error& error);

}  // namespace fabu::coordinator
