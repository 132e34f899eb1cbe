#include "coordinator/hosts/enroll_refusals.hpp"

#include "coordinator/common/json_input.hpp"
#include "protocol/timestamp.hpp"

namespace fabu::coordinator {

AuditEvent EnrollRefusals::Summary::ToAuditEvent() const {
  AuditEvent event("host.enroll-refused-summary", "source", source);
  event.detail = {{"count", count},
                  {"from", protocol::FormatRfc3339Utc(from)},
                  {"to", protocol::FormatRfc3339Utc(to)},
                  {"audited_individually", kAuditedPerWindow},
                  {"last_reason", last_reason}};
  return event;
}

std::string EnrollRefusals::AddressOf(std::string_view source) {
  if (source.starts_with('[')) {
    const auto close = source.find(']');
    if (close != std::string_view::npos) return std::string(source.substr(1, close - 1));
  }
  const auto colon = source.rfind(':');
  if (colon != std::string_view::npos && source.find(':') == colon) {
    return std::string(source.substr(0, colon));  // IPv4 "a.b.c.d:port"
  }
  return SafeExcerpt(source, 64);  // an IPv6 address without port, "unknown", ...
}

bool EnrollRefusals::Count(std::string_view source, std::int64_t now, std::string_view reason,
                           std::vector<Summary>& ended) {
  const std::string address = AddressOf(source);
  static const std::string kOthers("*");
  std::lock_guard lock(mutex_);
  auto it = windows_.find(address);
  if (it == windows_.end()) {
    const std::string& key = windows_.size() >= kMaxSources ? kOthers : address;
    it = windows_.try_emplace(key, Window{now, 0, 0, {}}).first;
  }
  Window& window = it->second;
  if (now >= window.start + kWindowSeconds || now < window.start) {
    if (window.suppressed > 0) {
      ended.push_back({it->first, window.suppressed, window.start, window.start + kWindowSeconds,
                       window.last_reason});
    }
    window = Window{now, 0, 0, {}};
  }
  if (++window.seen <= kAuditedPerWindow) return true;
  ++window.suppressed;
  window.last_reason = SafeExcerpt(reason, 160);
  return false;
}

std::vector<EnrollRefusals::Summary> EnrollRefusals::TakeEnded(std::int64_t now) {
  std::vector<Summary> ended;
  std::lock_guard lock(mutex_);
  for (auto it = windows_.begin(); it != windows_.end();) {
    const Window& window = it->second;
    if (now >= window.start + kWindowSeconds) {
      if (window.suppressed > 0) {
        ended.push_back({it->first, window.suppressed, window.start, window.start + kWindowSeconds,
                         window.last_reason});
      }
      it = windows_.erase(it);
    } else {
      ++it;
    }
  }
  return ended;
}

}  // namespace fabu::coordinator
