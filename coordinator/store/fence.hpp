// Fenced writes: writes made on behalf of a lease (lease.hpp), checked by
// the store inside their own transaction (Store::CommitGroup).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "protocol/error.hpp"

namespace soci {
class session;
}

namespace fabu::coordinator {

// What a fenced write must find in the `leases` row (Store: FenceScope).
struct Fence {
  std::string name;
  std::string holder;
  std::int64_t token = 0;
};

// Checks `fence` against the leases row, in the writing transaction; an
// error (kFailedPrecondition) names who holds the lease now. Throws what
// SOCI throws.
Result<void> CheckFence(soci::session& sql, const Fence& fence);

// Marks the writes this thread queues (Store::Write, WriteAsync) while the
// scope lives as made on behalf of `fence`: the store checks each against
// the leases row before its callback runs (CheckFence). Scopes nest; the
// innermost wins. A null fence lifts the marking.
class FenceScope {
 public:
  explicit FenceScope(std::optional<Fence> fence);
  ~FenceScope();
  FenceScope(const FenceScope&) = delete;
  FenceScope& operator=(const FenceScope&) = delete;
  // The fence of the innermost scope on this thread, if any.
  static const Fence* Current();

 private:
  std::optional<Fence> fence_;
  const FenceScope* outer_;
};

}  // namespace fabu::coordinator
