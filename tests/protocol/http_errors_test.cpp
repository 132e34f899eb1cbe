// The one map between error codes and HTTP statuses (protocol/http_errors.hpp):
// what the coordinator answers, the CLI and the agent read back as the same
// code.
#include "protocol/http_errors.hpp"

#include <gtest/gtest.h>

namespace fabu::protocol {
namespace {

constexpr ErrorCode kAll[] = {
    ErrorCode::kInvalidArgument,  ErrorCode::kNotFound,        ErrorCode::kAlreadyExists,
    ErrorCode::kPermissionDenied, ErrorCode::kUnauthenticated, ErrorCode::kFailedPrecondition,
    ErrorCode::kConflict,         ErrorCode::kTooLarge,        ErrorCode::kIntegrity,
    ErrorCode::kUnsafe,           ErrorCode::kExpired,         ErrorCode::kIo,
    ErrorCode::kUnavailable,      ErrorCode::kInternal};

TEST(HttpErrorsTest, AClientReadsBackTheCodeTheServerAnsweredBelow500) {
  for (ErrorCode code : kAll) {
    const int status = HttpStatusFor(code);
    if (status >= 500) continue;
    EXPECT_EQ(ErrorCodeForHttp(status, ErrorCodeName(code)), code) << ErrorCodeName(code);
  }
}

TEST(HttpErrorsTest, Every5xxIsUnavailableWhateverTheBodySays) {
  EXPECT_EQ(ErrorCodeForHttp(500, "internal"), ErrorCode::kUnavailable);
  EXPECT_EQ(ErrorCodeForHttp(502), ErrorCode::kUnavailable);
  EXPECT_EQ(ErrorCodeForHttp(503, "unavailable"), ErrorCode::kUnavailable);
  EXPECT_EQ(ErrorCodeForHttp(504), ErrorCode::kUnavailable);
}

TEST(HttpErrorsTest, WithoutOurBodyTheStatusDecides) {
  EXPECT_EQ(ErrorCodeForHttp(400), ErrorCode::kInvalidArgument);
  EXPECT_EQ(ErrorCodeForHttp(401, "not-one-of-ours"), ErrorCode::kUnauthenticated);
  EXPECT_EQ(ErrorCodeForHttp(403), ErrorCode::kPermissionDenied);
  EXPECT_EQ(ErrorCodeForHttp(404), ErrorCode::kNotFound);
  EXPECT_EQ(ErrorCodeForHttp(409), ErrorCode::kConflict);
  EXPECT_EQ(ErrorCodeForHttp(413), ErrorCode::kTooLarge);
  EXPECT_EQ(ErrorCodeForHttp(416), ErrorCode::kInvalidArgument);
  EXPECT_EQ(ErrorCodeForHttp(422), ErrorCode::kIntegrity);
  EXPECT_EQ(ErrorCodeForHttp(429), ErrorCode::kUnavailable);
  EXPECT_EQ(ErrorCodeForHttp(418), ErrorCode::kInternal);
}

}  // namespace
}  // namespace fabu::protocol
