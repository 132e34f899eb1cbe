// The periodic sweep and waking the hosts given work (deployments.hpp:
// SweepDeployments, WakeHosts).
#include <fmt/format.h>
#include <soci/soci.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>
#include <map>
#include <set>

#include "coordinator/common/clock.hpp"
#include "coordinator/common/wakeup_hub.hpp"
#include "coordinator/deploy/deployment_rows.hpp"
#include "coordinator/deploy/deployments.hpp"
#include "coordinator/deploy/incidents.hpp"
#include "coordinator/deploy/rollout_engine.hpp"
#include "coordinator/store/release_records.hpp"

namespace fabu::coordinator {

using namespace detail;  // deployment_rows.hpp
using nlohmann::json;

void WakeHosts(WakeupHub& hub, const Wakeups& wakeups) {
  // A wave with parts left, started outside the sweep: hold the hub before
  // its first part is answered, until the sweep has assigned the rest (the
  // sweep's own calls have taken rollouts_to_go_on out).
  if (!wakeups.rollouts_to_go_on.empty()) hub.PassHold();
  // A host named more than once (two rollouts in one sweep, say) may have
  // several unfinished deployments: it looks again and finds the oldest.
  std::unordered_map<std::string_view, int> named;
  for (const Wakeups::Assigned& a : wakeups.assigned) ++named[a.host];
  for (const std::string& host : wakeups.hosts) ++named[host];
  // Answers are made a chunk at a time, and the chunk's wakeups sent
  // together: they reach the I/O thread at once, which sends them before it
  // reads the next requests (the steps of the hosts answered first), while
  // the next chunk is made. (All answers first delayed the whole wave by the
  // time to make them: 17,910 took 76 ms under perf.)
  constexpr std::size_t kChunk = 256;
  std::vector<std::pair<std::string, WakeupHub::Answer>> chunk;
  chunk.reserve(kChunk);
  auto send = [&] {
    for (const auto& [key, answer] : chunk) hub.Notify(key, answer);
    chunk.clear();
  };
  for (const Wakeups::Assigned& a : wakeups.assigned) {
    WakeupHub::Answer answer;
    if (named[a.host] == 1) {
      answer = std::make_shared<const std::string>(
          protocol::AssignmentResponseToJson(a.assignment).dump());
    }
    chunk.emplace_back(WakeupHub::HostKey(a.host), std::move(answer));
    if (chunk.size() == kChunk) send();
  }
  for (const std::string& host : wakeups.hosts) {
    chunk.emplace_back(WakeupHub::HostKey(host), nullptr);
  }
  if (!wakeups.rollouts_to_go_on.empty()) {
    chunk.emplace_back(std::string(WakeupHub::kSweepKey), nullptr);
  }
  send();
}

Result<Sweep> SweepDeployments(Store& store, UnixSeconds now,
                               const release::PlanParseOptions& options, WakeupHub& hub) {
  AuditOrigin origin{"fabu-coordinator", "system", "sweep", "local"};
  // Holds passed by those who started a wave (WakeHosts): ended when this
  // sweep returns, after the parts it assigns below (each on return, also on
  // an early one).
  struct PassedHolds {
    WakeupHub& hub;
    std::size_t count;
    ~PassedHolds() {
      for (; count > 0; --count) hub.EndHold();
    }
  } passed{hub, hub.TakePassedHolds()};
  // Most sweeps find nothing: look before taking a write transaction.
  auto work = store.Read([&](soci::session& sql) -> Result<bool> {
    long long overdue = 0, active = 0;
    long long at = now;
    sql << "SELECT COUNT(*) FROM deployments WHERE final = 0 AND deadline > 0 AND deadline <= :n",
        soci::use(at), soci::into(overdue);
    active = static_cast<long long>(ActiveRollouts(sql).size());
    return overdue > 0 || active > 0;
  });
  if (!work) return std::unexpected(work.error());
  if (!*work) return Sweep{};
  Wakeups wakeups;
  auto swept = store.Write(origin, [&](Transaction& tx) -> Result<Sweep> {
    Sweep sweep;
    wakeups = {};
    long long at = now;
    auto overdue = Query(tx.sql(),
                         fmt::format("SELECT {} FROM deployments WHERE final = 0 AND deadline > 0 "
                                     "AND deadline <= :n",
                                     kColumns),
                         [&](soci::statement& st) { st.exchange(soci::use(at, "n")); });
    std::vector<DeploymentEnd> ends;
    for (const DeploymentRecord& d : overdue) {
      ends.push_back({&d, DeploymentResult::kTimeout,
                      fmt::format("timeout: not final within the host timeout of {} (last step {})",
                                  protocol::FormatDuration(d.host_timeout_seconds),
                                  protocol::StepName(d.step)),
                      nullptr});
    }
    FinishDeployments(tx, ends, now);
    sweep.timed_out = overdue.size();
    // Every rollout in progress, not only those just touched: the next wave
    // may be due, a window may have opened, and after a restart the last
    // event may have been stored without the rollout having moved on.
    for (const std::string& release_id : ActiveRollouts(tx.sql())) {
      AdvanceRollout(tx, release_id, now, options, wakeups);
    }
    return sweep;
  });
  if (!swept) return swept;
  swept->transactions = 1;
  // While a part's hosts are woken here, the next part is made on the
  // committer thread, queued ahead of the steps the hosts answered first are
  // posting meanwhile (else each part waits behind thousands of them). Each
  // part assigns at least one host (AssignWave), so this ends.
  // While parts are left, the hub is held: agents' next requests (the steps
  // of the hosts told first) wait, so the committer, the I/O thread and the
  // hosts' CPU go to the wave's answers (wakeup_hub.hpp).
  std::optional<HubHold> hold;
  for (;;) {
    const std::vector<std::string> go_on = std::move(wakeups.rollouts_to_go_on);
    wakeups.rollouts_to_go_on.clear();
    if (!go_on.empty() && !hold) hold.emplace(&hub);
    std::promise<Result<Wakeups>> next_part;
    std::future<Result<Wakeups>> made = next_part.get_future();
    if (!go_on.empty()) {
      store.WriteAsync(
          origin,
          [go_on, now, options](Transaction& tx) -> Result<Wakeups> {
            Wakeups part;
            for (const std::string& release_id : go_on) {
              AdvanceRollout(tx, release_id, now, options, part);
            }
            return part;
          },
          [&next_part](Result<Wakeups> part) { next_part.set_value(std::move(part)); },
          /*ahead=*/true);
    }
    swept->woken += wakeups.assigned.size() + wakeups.hosts.size();
    WakeHosts(hub, wakeups);
    if (go_on.empty()) break;
    Result<Wakeups> part = made.get();
    if (!part) {
      // The parts before are committed and woken; the next sweep goes on.
      spdlog::error("deployment sweep: the next part of a wave: {}", part.error().message());
      break;
    }
    wakeups = std::move(*part);
    ++swept->transactions;
  }
  return swept;
}

}  // namespace fabu::coordinator
