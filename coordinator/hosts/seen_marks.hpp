// When each host was last seen (hosts.last_seen), as its agent's polls say,
// written together.
//
// A poll notes its host here; the daemon writes what was noted once a
// second, in one write for every host (TouchHosts), where a write per poll
// would cost an idle fleet of 5,000 agents, re-polling every half minute, a
// couple of hundred transactions a second, each a few round trips on
// PostgreSQL. A host this coordinator noted less than `every` seconds ago
// is not noted again, so most polls cost nothing here. The row keeps
// last_seen to within `every` seconds and a second. Thread-safe.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "coordinator/audit/audit_log.hpp"
#include "coordinator/store/store.hpp"
#include "protocol/error.hpp"
#include "protocol/timestamp.hpp"

namespace fabu::coordinator {

// A host is marked seen at most this often by one coordinator (a poll or an
// events POST: a deployment posts a step every few seconds).
inline constexpr std::int64_t kSeenEverySeconds = 30;

class SeenMarks {
 public:
  explicit SeenMarks(std::int64_t every_seconds = kSeenEverySeconds) : every_(every_seconds) {}
  SeenMarks(const SeenMarks&) = delete;
  SeenMarks& operator=(const SeenMarks&) = delete;

  // `host` was seen at `now`: noted for the next write, unless it was noted
  // less than `every` seconds before.
  void Note(std::string_view host, protocol::UnixSeconds now);

  // Marks every host noted since the last write seen at `now`, in one
  // write; the number of hosts it held. A failed write is logged by the
  // caller; its hosts are noted again by their next poll.
  Result<std::size_t> Write(Store& store, const AuditOrigin& origin, protocol::UnixSeconds now);

 private:
  const std::int64_t every_;
  std::mutex mutex_;  // guards the two below
  std::unordered_map<std::string, protocol::UnixSeconds> noted_at_;
  std::vector<std::string> noted_;  // since the last write
};

}  // namespace fabu::coordinator
