#include "protocol/error.hpp"

namespace fabu {

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid_argument";
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kAlreadyExists:
      return "already_exists";
    case ErrorCode::kPermissionDenied:
      return "permission_denied";
    case ErrorCode::kUnauthenticated:
      return "unauthenticated";
    case ErrorCode::kFailedPrecondition:
      return "failed_precondition";
    case ErrorCode::kConflict:
      return "conflict";
    case ErrorCode::kTooLarge:
      return "too_large";
    case ErrorCode::kIntegrity:
      return "integrity";
    case ErrorCode::kUnsafe:
      return "unsafe";
    case ErrorCode::kExpired:
      return "expired";
    case ErrorCode::kIo:
      return "io";
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kInternal:
      return "internal";
  }
  return "unknown";
}

std::string ExceptionReason(const std::exception& e) {
  std::string_view what = e.what();
  // nlohmann::json: "[json.exception.parse_error.101] parse error at ..."
  if (what.starts_with("[json.exception.")) {
    const std::size_t close = what.find("] ");
    if (close != std::string_view::npos) what.remove_prefix(close + 2);
  }
  return std::string(what);
}

Error ErrorFromException(const std::exception& e, ErrorCode code, std::string_view context) {
  std::string reason = ExceptionReason(e);
  if (context.empty()) return Error(code, std::move(reason));
  return Error(code, std::string(context) + ": " + reason);
}

Error Error::WithContext(std::string_view context) const& {
  return Error(code_, std::string(context) + ": " + message_);
}

Error Error::WithContext(std::string_view context) && {
  message_.insert(0, std::string(context) + ": ");
  return std::move(*this);
}

}  // namespace fabu
