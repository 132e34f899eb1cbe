#include "protocol/http_errors.hpp"

#include <array>

namespace fabu::protocol {

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

ErrorCode ErrorCodeForHttp(long status, std::string_view body_code) {
  if (status >= 500) return ErrorCode::kUnavailable;
  constexpr std::array kAll = {
      ErrorCode::kInvalidArgument,  ErrorCode::kNotFound,        ErrorCode::kAlreadyExists,
      ErrorCode::kPermissionDenied, ErrorCode::kUnauthenticated, ErrorCode::kFailedPrecondition,
      ErrorCode::kConflict,         ErrorCode::kTooLarge,        ErrorCode::kIntegrity,
      ErrorCode::kUnsafe,           ErrorCode::kExpired,         ErrorCode::kIo,
      ErrorCode::kUnavailable,      ErrorCode::kInternal};
  if (!body_code.empty()) {
    for (ErrorCode code : kAll) {
      if (ErrorCodeName(code) == body_code) return code;
    }
  }
  switch (status) {
    case 400:
    case 416:
      return ErrorCode::kInvalidArgument;
    case 401:
      return ErrorCode::kUnauthenticated;
    case 403:
      return ErrorCode::kPermissionDenied;
    case 404:
      return ErrorCode::kNotFound;
    case 409:
      return ErrorCode::kConflict;
    case 413:
      return ErrorCode::kTooLarge;
    case 422:
      return ErrorCode::kIntegrity;
    case 429:
      return ErrorCode::kUnavailable;
    default:
      return ErrorCode::kInternal;
  }
}

}  // namespace fabu::protocol
