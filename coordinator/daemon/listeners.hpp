// Who acts on what the domain raises (store.hpp, EventBus): the daemon's
// wiring of the modules that must not know each other (docs/architecture.md
// "Modules and their dependencies").
//   - ReleaseChanged (store/release_records.hpp) -> the notices of the
//     transition (notify/notices.hpp);
//   - DeploymentsEnded (deploy/deployments.hpp) -> the upgrade records and
//     their outbox messages (cmdb/cmdb.hpp);
//   - HostEnrolled (hosts/hosts.hpp) -> a rollout that takes late joiners
//     adds the host (deploy/rollout_engine.hpp JoinLateHost);
//   - ReleaseProgressed (deploy/deployments.hpp) and ReleaseChanged -> once
//     committed, `wakeups` is notified under the release's key
//     (WakeupHub::ReleaseKey), so a long poll of its status answers.
#pragma once

#include "coordinator/common/wakeup_hub.hpp"
#include "coordinator/store/store.hpp"

namespace fabu::coordinator {

// Subscribes every listener above; call once, before the store's first
// write. `wakeups` (may be null: nobody follows releases live) outlives the
// store's writes.
void SubscribeListeners(EventBus& events, WakeupHub* wakeups = nullptr);

}  // namespace fabu::coordinator
