#include "coordinator/cmdb/delivery.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "coordinator/cmdb/outbox_signal.hpp"
#include "coordinator/common/clock.hpp"
#include "protocol/timestamp.hpp"

namespace fabu::coordinator {
namespace {

const AuditOrigin kWorkerOrigin{"fabu-coordinator", "system", "cmdb-delivery", "local"};

// Release notices (notify/notices.hpp) share one connector for all subscriptions.
std::string ConnectorOf(const OutboxMessage& m) {
  return m.connector.starts_with(kNoticeConnectorPrefix) ? std::string(kNoticeConnectorPrefix)
                                                         : m.connector;
}

bool IsNotice(const OutboxMessage& m) { return m.connector.starts_with(kNoticeConnectorPrefix); }

// When `m` was queued; 0 when its stamp cannot be read (then it is never
// given up for its age).
UnixSeconds QueuedAt(const OutboxMessage& m) {
  auto at = protocol::ParseRfc3339(m.created);
  return at ? at->seconds : 0;
}

}  // namespace

std::int64_t RetryDelaySeconds(const RetryPolicy& policy, std::int64_t attempts, double unit) {
  const double initial = static_cast<double>(policy.initial.count());
  const double cap = static_cast<double>(policy.max.count());
  const double exponent = static_cast<double>(std::clamp<std::int64_t>(attempts - 1, 0, 62));
  const double full = std::min(cap, initial * std::pow(2.0, exponent));
  const double drawn = full / 2 + std::clamp(unit, 0.0, 1.0) * (full / 2);
  return std::max<std::int64_t>(1, static_cast<std::int64_t>(std::llround(drawn)));
}

Result<DeliveryPass> DeliverDue(Store& store,
                                const std::vector<std::unique_ptr<Connector>>& connectors,
                                const RetryPolicy& policy, std::function<UnixSeconds()> now,
                                std::mt19937_64& random, const std::atomic<bool>& stop,
                                const Lease* lease) {
  std::map<std::string, Connector*> by_name;
  for (const auto& c : connectors) by_name[c->name()] = c.get();
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  DeliveryPass pass;
  // Connectors whose head failed in this pass: their queue waits.
  std::map<std::string, bool> blocked;
  for (;;) {
    auto heads = store.Read(
        [](soci::session& sql) -> Result<std::vector<OutboxMessage>> { return OutboxHeads(sql); });
    if (!heads) return std::unexpected(heads.error());
    bool progressed = false;
    for (const OutboxMessage& m : *heads) {
      if (stop) return pass;
      // Another coordinator may have taken the deliveries over.
      if (lease != nullptr && !lease->held()) return pass;
      if (blocked[m.connector]) continue;
      const UnixSeconds at = now();
      if (m.next_attempt > at) {
        pass.next_due = std::min(pass.next_due.value_or(m.next_attempt), m.next_attempt);
        continue;
      }
      Result<void> sent = Fail(ErrorCode::kFailedPrecondition,
                               fmt::format("no connector \"{}\" in config.json cmdb.connectors "
                                           "(configure it again, or waive the release's "
                                           "deliveries)",
                                           m.connector));
      if (auto it = by_name.find(ConnectorOf(m)); it != by_name.end())
        sent = it->second->Deliver(m);
      const std::int64_t delay = RetryDelaySeconds(policy, m.attempts + 1, unit(random));
      const UnixSeconds queued = QueuedAt(m);
      const bool give_up =
          !sent && IsNotice(m) && queued > 0 && now() - queued >= policy.notice_give_up.count();
      auto marked = store.Write(kWorkerOrigin, [&](Transaction& tx) -> Result<void> {
        if (sent) {
          MarkDelivered(tx, m.id, tx.clock().Utc());
        } else if (give_up) {
          MarkGivenUp(tx, m.id, sent.error().message());
        } else {
          MarkFailed(tx, m.id, sent.error().message(), now() + delay);
        }
        return {};
      });
      if (!marked) return std::unexpected(marked.error());
      if (sent) {
        ++pass.delivered;
        progressed = true;
      } else if (give_up) {
        ++pass.failed;
        ++pass.given_up;
        spdlog::error("notice {} via {} given up after {} attempts over {} s: {}", m.id,
                      m.connector, m.attempts + 1, now() - queued, sent.error().message());
      } else {
        ++pass.failed;
        // A notice holds back no other message; a CMDB message holds back
        // the later ones of its connector.
        if (!IsNotice(m)) blocked[m.connector] = true;
        pass.next_due = std::min(pass.next_due.value_or(now() + delay), now() + delay);
        spdlog::warn("cmdb delivery {} via {} (attempt {}) failed, retry in {} s: {}", m.id,
                     m.connector, m.attempts + 1, delay, sent.error().message());
      }
    }
    if (!progressed) break;
  }
  return pass;
}

DeliveryWorker::DeliveryWorker(Store& store, std::vector<std::unique_ptr<Connector>> connectors,
                               RetryPolicy policy, std::chrono::milliseconds poll,
                               const Lease* lease)
    : store_(store),
      connectors_(std::move(connectors)),
      policy_(policy),
      poll_(poll),
      lease_(lease) {}

DeliveryWorker::~DeliveryWorker() { Stop(); }

void DeliveryWorker::Start() {
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
}

void DeliveryWorker::Stop() {
  stop_ = true;
  WakeOutboxWaiters();
  if (thread_.joinable()) thread_.join();
}

void DeliveryWorker::Run() {
  std::mt19937_64 random(std::random_device{}());
  std::uint64_t rings = OutboxRings();
  while (!stop_) {
    std::optional<Fence> fence;
    if (lease_ != nullptr) {
      fence = lease_->fence();
      if (!fence) {
        // Another coordinator delivers; look again in a second.
        rings = WaitForOutbox(rings, std::chrono::seconds(1));
        continue;
      }
    }
    // Its writes are made as the lease's holder (lease.hpp).
    FenceScope fenced(std::move(fence));
    auto pass = DeliverDue(
        store_, connectors_, policy_, [this] { return store_.clock().Seconds(); }, random, stop_,
        lease_);
    std::chrono::milliseconds wait = poll_;
    if (!pass) {
      spdlog::error("cmdb delivery: {}", pass.error().message());
    } else {
      if (pass->delivered > 0) spdlog::info("cmdb delivery: {} delivered", pass->delivered);
      if (pass->next_due) {
        const auto until = std::chrono::seconds(
            std::max<UnixSeconds>(0, *pass->next_due - store_.clock().Seconds()));
        wait = std::min(wait, std::chrono::duration_cast<std::chrono::milliseconds>(until) +
                                  std::chrono::milliseconds(50));
      }
    }
    if (stop_) break;
    rings = WaitForOutbox(rings, wait);
  }
}

}  // namespace fabu::coordinator
