// What a host reported, read back: the answer to "why did this host fail?"
// (docs/coordinator.md, "Following a rollout").
//
// The agent sends, with a `failed` event, the last bytes (at most 4 KiB) of
// what the failing hook or health check printed
// on stdout and stderr. They are stored with the event (deployment_events),
// shown beside the host in `fabu release hosts` and `release status`, in the
// release report, and whole in `fabu release host R HOST`, the host's
// timeline. Read-only; SOCI exceptions propagate to the Store boundary.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/deploy/deployments.hpp"
#include "protocol/deployment_event.hpp"

namespace fabu::coordinator {

// One event of a deployment as it was stored.
struct ReportedEvent {
  std::uint64_t sequence = 0;
  protocol::Step step = protocol::Step::kAssigned;
  std::optional<protocol::Step> failed_step;
  std::string message;
  std::string output;    // the failing hook's output tail; may be ""
  UnixSeconds time = 0;  // the agent's clock
  std::string received;  // the coordinator's clock, RFC 3339
  nlohmann::json ToJson() const;
};

// Every event of `deployment_id`, in sequence order.
std::vector<ReportedEvent> DeploymentEvents(soci::session& sql, const std::string& deployment_id);

// For each deployment of `release_id` that reported a failed step with
// output: its id -> that output (of its latest `failed` event).
std::map<std::string, std::string> FailureOutputs(soci::session& sql,
                                                  const std::string& release_id);
// The same for the deployments `ids` only (one indexed probe each): what a
// page of a status shows, where the whole release may hold thousands.
std::map<std::string, std::string> FailureOutputs(soci::session& sql,
                                                  const std::vector<std::string>& ids);

// `host`'s deployments of `release_id` (test and production, install and
// rollback, oldest first), each with its events: ToJson plus "events".
// kNotFound when the host has none.
Result<nlohmann::json> HostTimeline(soci::session& sql, const std::string& release_id,
                                    const std::string& host);

}  // namespace fabu::coordinator
