// Who acts on what the domain raises (store.hpp, EventBus): the daemon's
// wiring of the modules that must not know each other (docs/architecture.md
// "Modules and their dependencies").
//   - ReleaseChanged (store/release_records.hpp) -> the notices of the
//     transition (notify/notices.hpp);
//   - DeploymentEnded (deploy/deployments.hpp) -> the upgrade record and its
//     outbox messages (cmdb/cmdb.hpp).
#pragma once

#include "coordinator/store/store.hpp"

namespace fabu::coordinator {

// Subscribes every listener above; call once, before the store's first write.
void SubscribeListeners(EventBus& events);

}  // namespace fabu::coordinator
