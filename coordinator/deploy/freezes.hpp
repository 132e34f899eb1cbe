// Freeze periods (procedure §6.1.1(8)): no rollout starts or continues
// inside one on the hosts it covers (docs/coordinator.md "The rollout").
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/release/rollout_decision.hpp"
#include "coordinator/store/store.hpp"
#include "protocol/timestamp.hpp"

namespace fabu::coordinator {

using protocol::Timestamp;
using protocol::UnixSeconds;

// A freeze period: no rollout starts or continues inside it on
// hosts matching its selector (every host when empty).
struct Freeze {
  std::string id;  // "F-3"
  Timestamp from;
  Timestamp to;
  std::string reason;
  std::string selector;  // "k=v,..." or ""
  std::string created;
  std::string created_by;
  nlohmann::json ToJson() const;
};

// kInvalidArgument for an empty reason, to <= from, or a bad selector.
Result<Freeze> AddFreeze(Transaction& tx, Timestamp from, Timestamp to, std::string reason,
                         std::string selector);
// Freezes not removed, by start; with `active_at` > 0 only those in force then.
std::vector<Freeze> ListFreezes(soci::session& sql, UnixSeconds active_at = 0);
// kNotFound for an unknown or already removed id.
Result<Freeze> RemoveFreeze(Transaction& tx, const std::string& id);
// The freeze in force at `now` that covers any of `hosts`, if one does.
std::optional<Freeze> FreezeCovering(soci::session& sql, const std::vector<std::string>& hosts,
                                     UnixSeconds now);

// The same, as the rollout decision takes it.
std::optional<release::FreezeInForce> FreezeOn(soci::session& sql,
                                               const std::vector<std::string>& hosts,
                                               UnixSeconds now);

}  // namespace fabu::coordinator
