// An agent's events stored and what follows from them (deployments.hpp:
// StoreEvents, EndDeploymentsOfHost).
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
#include "platform/log/log.hpp"

namespace fabu::coordinator {
namespace {

using namespace detail;  // deployment_rows.hpp
using nlohmann::json;
using protocol::Step;

// The steps reported after a step failed: the failure's reason stays the
// deployment's message through them.
bool FollowsAFailure(Step step) {
  return step == Step::kFailed || step == Step::kRollingBack || step == Step::kRolledBack ||
         step == Step::kRollbackFailed;
}

struct InsertEventStatement {
  explicit InsertEventStatement(soci::session& sql)
      : st((sql.prepare << "INSERT INTO deployment_events (deployment, sequence, step, "
                           "failed_step, app, version, message, output, time, received) VALUES "
                           "(:d, :s, :st, :f, :a, :v, :m, :o, :t, :r) "
                           "ON CONFLICT (deployment, sequence) DO NOTHING",
            soci::use(deployment), soci::use(sequence), soci::use(step), soci::use(failed_step),
            soci::use(app), soci::use(version), soci::use(message), soci::use(output),
            soci::use(time), soci::use(received))) {}
  std::string deployment, step, failed_step, app, version, message, output, received;
  long long sequence = 0, time = 0;
  soci::statement st;
};

struct HighestStatement {
  explicit HighestStatement(soci::session& sql)
      : st((sql.prepare << "SELECT MAX(sequence) FROM deployment_events WHERE deployment = :d",
            soci::use(key), soci::into(highest, ind))) {}
  std::string key;
  long long highest = 0;
  soci::indicator ind = soci::i_null;
  soci::statement st;
};

struct LatestEventStatement {
  explicit LatestEventStatement(soci::session& sql)
      : st((sql.prepare << "SELECT step, failed_step, message FROM deployment_events WHERE "
                           "deployment = :d AND sequence = :s",
            soci::use(key), soci::use(sequence), soci::into(step), soci::into(failed_step),
            soci::into(message))) {}
  std::string key, step, failed_step, message;
  long long sequence = 0;
  soci::statement st;
};

// The latest event of a deployment saying something.
struct LatestMessageStatement {
  explicit LatestMessageStatement(soci::session& sql)
      : st((sql.prepare << "SELECT message FROM deployment_events WHERE deployment = :d AND "
                           "message <> '' ORDER BY sequence DESC LIMIT 1",
            soci::use(key), soci::into(message, indicator))) {}
  std::string key, message;
  soci::indicator indicator = soci::i_null;
  soci::statement st;
};

struct UpdateStepStatement {
  explicit UpdateStepStatement(soci::session& sql)
      : st((sql.prepare << "UPDATE deployments SET step = :st, message = :m, last_sequence = :s, "
                           "started = :b WHERE id = :id",
            soci::use(step), soci::use(message), soci::use(sequence), soci::use(started),
            soci::use(key))) {}
  std::string step, message, key;
  long long sequence = 0, started = 0;
  soci::statement st;
};

}  // namespace

using namespace detail;  // deployment_rows.hpp
using nlohmann::json;
using protocol::Step;

Result<protocol::EventAck> StoreEvents(Transaction& tx, std::string_view host,
                                       const protocol::EventBatch& batch, UnixSeconds now,
                                       const release::PlanParseOptions& options, Wakeups& wakeups) {
  // Every event must be this host's before anything is stored.
  std::map<std::string, DeploymentRecord> deployments;
  for (const protocol::DeploymentEvent& e : batch.events) {
    if (deployments.contains(e.deployment)) continue;
    auto d = FindDeployment(tx, e.deployment);
    if (!d || d->host != host) {
      return Fail(ErrorCode::kPermissionDenied,
                  fmt::format("deployment {} is not assigned to host {}", e.deployment, host));
    }
    deployments.emplace(e.deployment, std::move(*d));
  }
  std::map<std::string, std::size_t> stored;
  const std::string received = tx.clock().Utc();
  InsertEventStatement& row = tx.Cached<InsertEventStatement>();
  row.received = received;
  for (const protocol::DeploymentEvent& e : batch.events) {
    row.deployment = e.deployment;
    row.step = protocol::StepName(e.step);
    row.failed_step = e.failed_step ? protocol::StepName(*e.failed_step) : "";
    row.app = e.app;
    row.version = e.version;
    row.message = e.message;
    row.output = e.output;
    row.sequence = static_cast<long long>(e.sequence);
    row.time = e.time;
    row.st.execute(true);
    if (row.st.get_affected_rows() == 0) continue;  // stored before
    ++stored[e.deployment];
    if (e.step == Step::kFailed && e.failed_step && *e.failed_step == Step::kObserving) {
      // A release that passed its health check and then failed while observed
      // is an incident caused by the release (procedure §6.2.10).
      const DeploymentRecord& d = deployments.at(e.deployment);
      RecordIncident(tx, d.release_id, d.host, kObservationSeverity,
                     fmt::format("{} {} failed its health check while observed on {}: {}", d.app,
                                 d.version, d.host, e.message),
                     kIncidentFromObservation, now);
    }
  }

  std::set<std::string> progressed;
  for (const auto& [id, count] : stored) progressed.insert(deployments.at(id).release_id);
  for (const std::string& release_id : progressed) tx.Raise(ReleaseProgressed{release_id});

  protocol::EventAck ack;
  std::set<std::string> rollouts_to_check;
  for (auto& [id, d] : deployments) {
    std::string key = id;
    HighestStatement& max = tx.Cached<HighestStatement>();
    max.key = key;
    max.ind = soci::i_null;
    max.st.execute(true);
    const long long highest = max.ind == soci::i_ok ? max.highest : 0;
    StatementCache::Finish(max.st);
    ack.through[id] = static_cast<std::uint64_t>(highest);
    if (!stored.contains(id) || d.IsFinal()) continue;  // nothing new, or already decided

    LatestEventStatement& latest_event = tx.Cached<LatestEventStatement>();
    latest_event.key = key;
    latest_event.sequence = highest;
    latest_event.st.execute(true);
    std::string step_text = latest_event.step, failed_text = latest_event.failed_step,
                message = latest_event.message;
    StatementCache::Finish(latest_event.st);
    auto step = protocol::ParseStep(step_text);
    std::optional<Step> failed_step;
    if (!failed_text.empty()) {
      if (auto parsed = protocol::ParseStep(failed_text)) failed_step = *parsed;
    }
    // The message is the current step's: a host in a step shows what that
    // step said (or nothing), never an earlier step's words. Only once a
    // step failed does the failure's reason outlive the rollback steps that
    // follow it without words of their own.
    if (message.empty() && step && FollowsAFailure(*step)) {
      LatestMessageStatement& latest = tx.Cached<LatestMessageStatement>();
      latest.key = key;
      latest.indicator = soci::i_null;
      latest.st.execute(true);
      const bool found = latest.st.got_data() && latest.indicator == soci::i_ok;
      message = found ? latest.message : d.message;
      StatementCache::Finish(latest.st);
    }
    const auto result = step ? FinalResultOf(*step, failed_step) : std::nullopt;
    UpdateStepStatement& update = tx.Cached<UpdateStepStatement>();
    update.step = step_text;
    update.message = message;
    update.sequence = highest;
    update.started = d.started > 0 ? d.started : now;
    update.key = key;
    update.st.execute(true);
    AuditEvent event("deployment.events", "deployment", id);
    event.release_id = d.release_id;
    event.detail = {{"host", d.host},
                    {"stored", stored[id]},
                    {"through", highest},
                    {"from", protocol::StepName(d.step)},
                    {"to", step_text}};
    tx.Audit(event);
    if (result) {
      if (step) d.step = *step;
      FinishDeployment(tx, d, *result, message, now);
      const platform::log::Scope scope(
          platform::log::Fields().Release(d.release_id).Host(d.host).Deployment(id));
      spdlog::log(d.step == Step::kSucceeded ? spdlog::level::info : spdlog::level::warn,
                  "deployment {} of {} on {}: {}{}{}", id, d.release_id, d.host, step_text,
                  message.empty() ? "" : ": ", message);
      if (d.environment == kProductionEnvironment) rollouts_to_check.insert(d.release_id);
    }
  }
  for (const std::string& release_id : rollouts_to_check) {
    AdvanceRollout(tx, release_id, now, options, wakeups, NextPart::kLeaveToTheSweep);
  }
  return ack;
}

void EndDeploymentsOfHost(Transaction& tx, std::string_view host, UnixSeconds now,
                          const release::PlanParseOptions& options, Wakeups& wakeups,
                          std::string_view revoked_reason) {
  std::string key(host);
  const std::string why = revoked_reason.empty()
                              ? fmt::format("host {} was removed", host)
                              : fmt::format("host {} was revoked: {}", host, revoked_reason);
  auto open = Query(
      tx.sql(), fmt::format("SELECT {} FROM deployments WHERE host = :h AND final = 0", kColumns),
      [&](soci::statement& st) { st.exchange(soci::use(key, "h")); });
  std::set<std::string> releases;
  for (const DeploymentRecord& d : open) {
    FinishDeployment(tx, d, DeploymentResult::kHostRemoved, why, now);
    if (d.environment == kProductionEnvironment) releases.insert(d.release_id);
  }
  for (const std::string& release_id : releases) {
    AdvanceRollout(tx, release_id, now, options, wakeups, NextPart::kLeaveToTheSweep);
  }
}

}  // namespace fabu::coordinator
