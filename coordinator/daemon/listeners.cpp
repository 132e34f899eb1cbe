#include "coordinator/daemon/listeners.hpp"

#include "coordinator/cmdb/cmdb.hpp"
#include "coordinator/deploy/deployments.hpp"
#include "coordinator/deploy/rollout_engine.hpp"
#include "coordinator/hosts/hosts.hpp"
#include "coordinator/notify/notices.hpp"
#include "coordinator/store/release_records.hpp"

namespace fabu::coordinator {

namespace {

void NotifyAfterCommit(Transaction& tx, WakeupHub& wakeups, std::string_view release_id) {
  tx.AfterCommit([&wakeups, key = WakeupHub::ReleaseKey(release_id)] { wakeups.Notify(key); });
}

}  // namespace

void SubscribeListeners(EventBus& events, WakeupHub* wakeups) {
  events.Subscribe<ReleaseChanged>(
      [](Transaction& tx, const ReleaseChanged& e) { EnqueueNotices(tx, e.before, e.after); });
  events.Subscribe<DeploymentsEnded>(
      [](Transaction& tx, const DeploymentsEnded& e) { RecordDeploymentEnds(tx, e.ends, e.now); });
  events.Subscribe<HostEnrolled>(
      [](Transaction& tx, const HostEnrolled& e) { JoinLateHost(tx, e.host, e.labels, e.now); });
  if (wakeups == nullptr) return;
  events.Subscribe<ReleaseChanged>([wakeups](Transaction& tx, const ReleaseChanged& e) {
    NotifyAfterCommit(tx, *wakeups, e.after.id);
  });
  events.Subscribe<ReleaseProgressed>([wakeups](Transaction& tx, const ReleaseProgressed& e) {
    NotifyAfterCommit(tx, *wakeups, e.release_id);
  });
}

}  // namespace fabu::coordinator
