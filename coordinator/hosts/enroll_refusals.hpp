// How refused enrollments reach the audit trail (docs/coordinator.md, "The
// audit trail"). Enrollment is public: anyone can send refusals, and one
// audit entry per refusal would let anyone fill the coordinator's disk.
//
// Per source address (the peer's IP, port left out) and per window of
// kWindowSeconds, the first kAuditedPerWindow refusals are audited one by one
// (host.enroll-refused); the rest are only counted, and one summary entry
// (host.enroll-refused-summary: the count, the window, the last reason) is
// written when the window has ended: at the address's next refusal, by the
// daemon's periodic flush, or at shutdown. At most kMaxSources addresses are
// tracked at once; past that, new addresses share one window under "*".
//
// Thread-safe (one mutex; Count is a map lookup).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/audit/audit_log.hpp"

namespace fabu::coordinator {

class EnrollRefusals {
 public:
  static constexpr std::size_t kAuditedPerWindow = 10;
  static constexpr std::int64_t kWindowSeconds = 60;
  static constexpr std::size_t kMaxSources = 4096;

  struct Summary {
    std::string source;             // the address, or "*"
    std::int64_t count = 0;         // refusals not audited one by one
    std::int64_t from = 0, to = 0;  // the window, seconds since the epoch
    std::string last_reason;
    AuditEvent ToAuditEvent() const;
  };

  // One more refusal from `source` ("ip:port", "[v6]:port" or an address) at
  // `now`. True: audit it on its own. A window of this address that has
  // ended with unaudited refusals is appended to `ended`, to be written now.
  bool Count(std::string_view source, std::int64_t now, std::string_view reason,
             std::vector<Summary>& ended);

  // Windows ended by `now` that hold unaudited refusals (all of them when
  // `now` is past every window: at shutdown), forgetting every ended window.
  std::vector<Summary> TakeEnded(std::int64_t now);

  // The address of a peer "ip:port" / "[v6]:port" (as RequestContext::source).
  static std::string AddressOf(std::string_view source);

 private:
  struct Window {
    std::int64_t start = 0;
    std::size_t seen = 0;
    std::int64_t suppressed = 0;
    std::string last_reason;
  };
  std::mutex mutex_;
  std::map<std::string, Window, std::less<>> windows_;
};

}  // namespace fabu::coordinator
