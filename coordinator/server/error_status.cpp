#include "coordinator/server/error_status.hpp"

#include <string>

namespace fabu::coordinator {

int HttpStatusFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return 400;
    case ErrorCode::kUnauthenticated:
      return 401;
    case ErrorCode::kPermissionDenied:
      return 403;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kAlreadyExists:
    case ErrorCode::kConflict:
    case ErrorCode::kFailedPrecondition:
      return 409;
    case ErrorCode::kTooLarge:
      return 413;
    case ErrorCode::kIntegrity:
    case ErrorCode::kUnsafe:
    case ErrorCode::kExpired:
      return 422;
    case ErrorCode::kUnavailable:
      return 503;
    case ErrorCode::kIo:
    case ErrorCode::kInternal:
      return 500;
  }
  return 500;
}

nlohmann::json ErrorBody(const Error& error) {
  return {{"error",
           {{"code", std::string(ErrorCodeName(error.code()))}, {"message", error.message()}}}};
}

}  // namespace fabu::coordinator
