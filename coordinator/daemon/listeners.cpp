#include "coordinator/daemon/listeners.hpp"

#include "coordinator/cmdb/cmdb.hpp"
#include "coordinator/deploy/deployments.hpp"
#include "coordinator/notify/notices.hpp"
#include "coordinator/store/release_records.hpp"

namespace fabu::coordinator {

void SubscribeListeners(EventBus& events) {
  events.Subscribe<ReleaseChanged>(
      [](Transaction& tx, const ReleaseChanged& e) { EnqueueNotices(tx, e.before, e.after); });
  events.Subscribe<DeploymentEnded>([](Transaction& tx, const DeploymentEnded& e) {
    RecordDeploymentEnd(tx, e.deployment, e.result, e.now);
  });
}

}  // namespace fabu::coordinator
