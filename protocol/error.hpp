// The error model of fabu.
//
// Every fallible function returns `Result<T>` (std::expected<T, Error>). An
// Error carries a code, which says what kind of failure it is (and which a
// server maps to an HTTP status), and a message meant for a person: it names
// the field, file or rule at fault and, where it helps, what to do. Callers add
// context on the way up with `WithContext`, so the final message reads from the
// outermost operation to the root cause:
//   "verifying c3m-video-V1.3.0.12.fabu: manifest.sig: signature does not match".
//
// Error is a plain value type; it is safe to copy between threads.
#pragma once

#include <exception>
#include <expected>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace fabu {

enum class ErrorCode {
  kInvalidArgument,     // malformed input from a person or a peer
  kNotFound,            // a named thing does not exist
  kAlreadyExists,       // refusing to overwrite
  kPermissionDenied,    // authenticated but not allowed
  kUnauthenticated,     // no or unknown credentials
  kFailedPrecondition,  // a guard of the procedure is not met
  kConflict,            // illegal state transition, concurrent change
  kTooLarge,            // beyond a declared or configured limit
  kIntegrity,           // signature, digest, size or list mismatch: tampering
  kUnsafe,              // content refused for safety (path escape, device file)
  kExpired,             // past an expiry time
  kIo,                  // the operating system said no
  kUnavailable,         // a peer could not be reached
  kInternal,            // a bug: an invariant did not hold
};

// Stable, lower-case name of a code, for logs and JSON ("integrity", ...).
std::string_view ErrorCodeName(ErrorCode code);

class Error {
 public:
  Error(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // Returns this error with `context` prepended: "context: message".
  Error WithContext(std::string_view context) const&;
  Error WithContext(std::string_view context) &&;

 private:
  ErrorCode code_;
  std::string message_;
};

template <typename T>
using Result = std::expected<T, Error>;

// Shorthand for `std::unexpected(Error(code, message))`.
inline std::unexpected<Error> Fail(ErrorCode code, std::string message) {
  return std::unexpected(Error(code, std::move(message)));
}

// Adds context to the error of a Result, passing a value through untouched.
template <typename T>
Result<T> WithContext(Result<T>&& result, std::string_view context) {
  if (!result) return std::unexpected(std::move(result.error()).WithContext(context));
  return std::move(result);
}

// Exceptions. fabu's own functions do not throw: one that can fail returns
// Result. The libraries it calls do throw: SOCI on any database error,
// nlohmann::json on malformed text or a value of the wrong type, yaml-cpp,
// Boost.Asio. Their exceptions are caught at a few boundaries
// (docs/architecture.md, "The error model") and become Errors only through
// ErrorFromException, so every such message is made one way: "context:
// reason", the reason without the library's internal tag (nlohmann's
// "[json.exception.type_error.302] "). A function that lets a library's
// exception through says so where it is declared (the store's callbacks:
// "SOCI exceptions propagate to the Store boundary").
Error ErrorFromException(const std::exception& e, ErrorCode code, std::string_view context);

// The library's reason of `e`, without its internal tag.
std::string ExceptionReason(const std::exception& e);

// f() -> Result<T>; an exception it throws is returned as
// ErrorFromException(e, code, context).
template <typename F>
auto CatchAsError(ErrorCode code, std::string_view context, F&& f) -> std::invoke_result_t<F> {
  try {
    return std::forward<F>(f)();
  } catch (const std::exception& e) {
    return std::unexpected(ErrorFromException(e, code, context));
  }
}

}  // namespace fabu
