// What the daemon's own watch over the audit chain found last
// (AuditWatch, daemon/audit_anchor.hpp), kept for whoever asks between its
// checks: `GET /api/v1/audit/watch` answers from it at once, where a check
// of the whole chain reads every entry (seconds at a few hundred thousand).
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

namespace fabu::coordinator {

struct AuditCheckResult {
  bool intact = true;
  std::int64_t verified_seq = 0;  // the last entry found whole
  std::string reason;             // when broken: what is wrong, naming the entry
  std::int64_t at = 0;            // when it was made (Unix seconds)
};

// Written by the watch's thread, read by request handlers.
class LastAuditCheck {
 public:
  explicit LastAuditCheck(std::int64_t every_seconds) : every_seconds_(every_seconds) {}
  // How often the watch checks.
  std::int64_t every_seconds() const { return every_seconds_; }

  void Set(AuditCheckResult result) {
    std::lock_guard lock(mutex_);
    last_ = std::move(result);
  }
  // Nothing before the watch's first check has ended.
  std::optional<AuditCheckResult> Get() const {
    std::lock_guard lock(mutex_);
    return last_;
  }

 private:
  const std::int64_t every_seconds_;
  mutable std::mutex mutex_;
  std::optional<AuditCheckResult> last_;
};

}  // namespace fabu::coordinator
