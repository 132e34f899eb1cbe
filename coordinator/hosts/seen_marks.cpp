#include "coordinator/hosts/seen_marks.hpp"

#include <span>
#include <utility>

#include "coordinator/hosts/hosts.hpp"

namespace fabu::coordinator {

void SeenMarks::Note(std::string_view host, protocol::UnixSeconds now) {
  std::lock_guard lock(mutex_);
  auto [at, added] = noted_at_.try_emplace(std::string(host), now);
  if (!added) {
    if (now - at->second < every_) return;
    at->second = now;
  }
  noted_.push_back(at->first);
}

Result<std::size_t> SeenMarks::Write(Store& store, const AuditOrigin& origin,
                                     protocol::UnixSeconds now) {
  std::vector<std::string> hosts;
  {
    std::lock_guard lock(mutex_);
    hosts.swap(noted_);
    // What would be noted again anyway: the map holds no more than the
    // hosts seen in the last `every` seconds (a removed host's goes too).
    std::erase_if(noted_at_, [&](const auto& entry) { return now - entry.second >= every_; });
  }
  if (hosts.empty()) return 0;
  auto written = store.Write(origin, [&](Transaction& tx) -> Result<void> {
    // Decided above: only a row marked at `now` already is left alone.
    TouchHosts(tx, std::span<const std::string>(hosts), now, 0);
    return {};
  });
  if (!written) {
    // Noted again by the host's next poll.
    std::lock_guard lock(mutex_);
    for (const std::string& host : hosts) noted_at_.erase(host);
    return std::unexpected(written.error());
  }
  return hosts.size();
}

}  // namespace fabu::coordinator
