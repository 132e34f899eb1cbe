// Error codes map to HTTP statuses in one place.
#include "coordinator/server/error_status.hpp"

#include <gtest/gtest.h>

namespace fabu::coordinator {
namespace {

TEST(ErrorStatusTest, EachCodeHasItsStatus) {
  const std::pair<ErrorCode, int> kTable[] = {
      {ErrorCode::kInvalidArgument, 400},
      {ErrorCode::kUnauthenticated, 401},
      {ErrorCode::kPermissionDenied, 403},
      {ErrorCode::kNotFound, 404},
      {ErrorCode::kAlreadyExists, 409},
      {ErrorCode::kConflict, 409},
      {ErrorCode::kFailedPrecondition, 409},
      {ErrorCode::kTooLarge, 413},
      {ErrorCode::kIntegrity, 422},
      {ErrorCode::kUnsafe, 422},
      {ErrorCode::kExpired, 422},
      {ErrorCode::kUnavailable, 503},
      {ErrorCode::kIo, 500},
      {ErrorCode::kInternal, 500},
  };
  for (const auto& [code, status] : kTable) {
    EXPECT_EQ(HttpStatusFor(code), status) << ErrorCodeName(code);
  }
}

TEST(ErrorStatusTest, TheBodyCarriesCodeNameAndMessage) {
  const auto body = ErrorBody(Error(ErrorCode::kPermissionDenied, "needs role admin"));
  EXPECT_EQ(body.dump(), R"({"error":{"code":"permission_denied","message":"needs role admin"}})");
}

}  // namespace
}  // namespace fabu::coordinator
