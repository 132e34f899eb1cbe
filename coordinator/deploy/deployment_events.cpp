// An agent's events stored and what follows from them (deployments.hpp:
// StoreEvents, StoreEventPosts, EndDeploymentsOfHost).
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
#include "coordinator/store/dialect.hpp"
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

// Text as PostgreSQL's text column can hold it: without NUL bytes.
std::string WithoutNul(std::string_view text) {
  std::string out(text);
  std::erase(out, '\0');
  return out;
}

// Events, each row a JSON object (StoreEventPosts); returns the keys of those
// stored (an event stored before is not stored again).
struct InsertEventsStatement {
  explicit InsertEventsStatement(soci::session& sql) : st(sql) {
    static constexpr JsonColumn kRows[] = {{"d"}, {"s", true}, {"st"}, {"f"},       {"a"},
                                           {"v"}, {"m"},       {"o"},  {"t", true}, {"r"}};
    st.exchange(soci::into(deployment));
    st.exchange(soci::into(sequence));
    st.exchange(soci::use(rows, "rows"));
    st.alloc();
    // "WHERE true": SQLite reads ON CONFLICT after a SELECT only behind a WHERE.
    st.prepare(fmt::format(
        "INSERT INTO deployment_events (deployment, sequence, step, failed_step, app, version, "
        "message, output, time, received) SELECT d, s, st, f, a, v, m, o, t, r FROM {} WHERE true "
        "ON CONFLICT (deployment, sequence) DO NOTHING RETURNING deployment, sequence",
        JsonRowsSql(BackendOf(sql), "rows", kRows, "e")));
    st.define_and_bind();
  }
  std::string rows, deployment;
  long long sequence = 0;
  soci::statement st;
};

// The highest sequence of each of the deployments (a JSON array of {"id": ...}).
struct HighestManyStatement {
  explicit HighestManyStatement(soci::session& sql) : st(sql) {
    static constexpr JsonColumn kIds[] = {{"id"}};
    st.exchange(soci::into(deployment));
    st.exchange(soci::into(highest));
    st.exchange(soci::use(ids, "ids"));
    st.alloc();
    st.prepare(
        fmt::format("SELECT deployment, MAX(sequence) FROM deployment_events WHERE deployment IN "
                    "(SELECT id FROM {}) GROUP BY deployment",
                    JsonRowsSql(BackendOf(sql), "ids", kIds, "i")));
    st.define_and_bind();
  }
  std::string ids, deployment;
  long long highest = 0;
  soci::statement st;
};

// Deployments' step, message, last sequence and start, each row a JSON object.
struct UpdateStepsStatement {
  explicit UpdateStepsStatement(soci::session& sql) : st(sql) {
    static constexpr JsonColumn kRows[] = {{"id"}, {"st"}, {"m"}, {"s", true}, {"b", true}};
    st.exchange(soci::use(rows, "rows"));
    st.alloc();
    st.prepare(fmt::format(
        "UPDATE deployments SET step = u.st, message = u.m, last_sequence = u.s, started = u.b "
        "FROM {} WHERE deployments.id = u.id",
        JsonRowsSql(BackendOf(sql), "rows", kRows, "u")));
    st.define_and_bind();
  }
  std::string rows;
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

}  // namespace

using namespace detail;  // deployment_rows.hpp
using nlohmann::json;
using protocol::Step;

Result<protocol::EventAck> StoreEvents(Transaction& tx, std::string_view host,
                                       const protocol::EventBatch& batch, UnixSeconds now,
                                       const release::PlanParseOptions& options, Wakeups& wakeups) {
  const EventPost post{std::string(host), batch, tx.origin()};
  return std::move(StoreEventPosts(tx, std::span(&post, 1), now, options, wakeups).front());
}

std::vector<Result<protocol::EventAck>> StoreEventPosts(Transaction& tx,
                                                        std::span<const EventPost> posts,
                                                        UnixSeconds now,
                                                        const release::PlanParseOptions& options,
                                                        Wakeups& wakeups) {
  std::vector<Result<protocol::EventAck>> answers(posts.size());
  // Every deployment named, read at once.
  std::map<std::string, DeploymentRecord> deployments;
  {
    std::vector<std::string> ids;
    std::set<std::string_view> named;
    for (const EventPost& post : posts) {
      for (const protocol::DeploymentEvent& e : post.batch.events) {
        if (named.insert(e.deployment).second) ids.push_back(e.deployment);
      }
    }
    deployments = FindDeployments(tx, ids);
  }
  // Every event of a POST must be its host's before anything of it is stored.
  std::vector<bool> accepted(posts.size(), false);
  for (std::size_t i = 0; i < posts.size(); ++i) {
    accepted[i] = true;
    for (const protocol::DeploymentEvent& e : posts[i].batch.events) {
      auto d = deployments.find(e.deployment);
      if (d == deployments.end() || d->second.host != posts[i].host) {
        answers[i] = Fail(
            ErrorCode::kPermissionDenied,
            fmt::format("deployment {} is not assigned to host {}", e.deployment, posts[i].host));
        accepted[i] = false;
        break;
      }
    }
  }

  // Every accepted event in one INSERT; it returns those not stored before.
  // The first of two events with the same key in this write is the one kept.
  // (deployment, sequence) -> the event and the POST that brought it
  using Stored = std::pair<const protocol::DeploymentEvent*, std::size_t>;
  std::map<std::pair<std::string, long long>, Stored> events;
  std::map<std::string, std::size_t> last_post;  // deployment -> the last POST naming it
  {
    json rows = json::array();
    const std::string received = tx.clock().Utc();
    for (std::size_t i = 0; i < posts.size(); ++i) {
      if (!accepted[i]) continue;
      for (const protocol::DeploymentEvent& e : posts[i].batch.events) {
        last_post[e.deployment] = i;
        const auto key = std::pair(e.deployment, static_cast<long long>(e.sequence));
        if (!events.emplace(key, Stored{&e, i}).second) continue;
        rows.push_back({{"d", e.deployment},
                        {"s", key.second},
                        {"st", protocol::StepName(e.step)},
                        {"f", e.failed_step ? protocol::StepName(*e.failed_step) : ""},
                        {"a", WithoutNul(e.app)},
                        {"v", WithoutNul(e.version)},
                        {"m", WithoutNul(e.message)},
                        {"o", WithoutNul(e.output)},
                        {"t", e.time},
                        {"r", received}});
      }
    }
    std::map<std::pair<std::string, long long>, Stored> stored_events;
    if (!rows.empty()) {
      InsertEventsStatement& insert = tx.Cached<InsertEventsStatement>();
      insert.rows = rows.dump();
      insert.st.execute(false);
      while (insert.st.fetch()) {
        const auto key = std::pair(insert.deployment, insert.sequence);
        stored_events.emplace(key, events.at(key));
      }
    }
    events.swap(stored_events);
  }
  std::map<std::string, std::size_t> stored;
  std::set<std::string> progressed;
  for (const auto& [key, brought] : events) {
    const protocol::DeploymentEvent* e = brought.first;
    ++stored[key.first];
    const DeploymentRecord& d = deployments.at(key.first);
    progressed.insert(d.release_id);
    if (e->step == Step::kFailed && e->failed_step && *e->failed_step == Step::kObserving) {
      // A release that passed its health check and then failed while observed
      // is an incident caused by the release (procedure §6.2.10).
      Transaction as = tx.As(posts[brought.second].origin);
      RecordIncident(as, d.release_id, d.host, kObservationSeverity,
                     fmt::format("{} {} failed its health check while observed on {}: {}", d.app,
                                 d.version, d.host, WithoutNul(e->message)),
                     kIncidentFromObservation, now);
    }
  }
  for (const std::string& release_id : progressed) tx.Raise(ReleaseProgressed{release_id});

  // Each named deployment's highest sequence now: what its POSTs are told
  // was received.
  std::map<std::string, long long> highest;
  if (!last_post.empty()) {
    json ids = json::array();
    for (const auto& [id, post] : last_post) ids.push_back({{"id", id}});
    HighestManyStatement& max = tx.Cached<HighestManyStatement>();
    max.ids = ids.dump();
    max.st.execute(false);
    while (max.st.fetch()) highest[max.deployment] = max.highest;
  }

  // The deployments that moved: their step and message are their latest
  // event's (usually one of those just stored), all in one UPDATE.
  json updates = json::array();
  std::vector<std::pair<AuditOrigin, AuditEvent>> audits;
  struct Ending {
    DeploymentRecord* deployment;
    DeploymentResult result;
    std::string message;
    std::string step;
  };
  std::vector<Ending> endings;
  for (auto& [id, d] : deployments) {
    auto count = stored.find(id);
    if (count == stored.end() || d.IsFinal()) continue;  // nothing new, or already decided
    const long long top = highest[id];
    std::string step_text, failed_text, message;
    if (auto latest = events.find({id, top}); latest != events.end()) {
      const protocol::DeploymentEvent& e = *latest->second.first;
      step_text = protocol::StepName(e.step);
      failed_text = e.failed_step ? protocol::StepName(*e.failed_step) : "";
      message = WithoutNul(e.message);
    } else {
      // Stored before (this write filled a gap below it).
      LatestEventStatement& latest_event = tx.Cached<LatestEventStatement>();
      latest_event.key = id;
      latest_event.sequence = top;
      latest_event.st.execute(true);
      step_text = latest_event.step;
      failed_text = latest_event.failed_step;
      message = latest_event.message;
      StatementCache::Finish(latest_event.st);
    }
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
      latest.key = id;
      latest.indicator = soci::i_null;
      latest.st.execute(true);
      const bool found = latest.st.got_data() && latest.indicator == soci::i_ok;
      message = found ? latest.message : d.message;
      StatementCache::Finish(latest.st);
    }
    updates.push_back({{"id", id},
                       {"st", step_text},
                       {"m", message},
                       {"s", top},
                       {"b", d.started > 0 ? d.started : now}});
    AuditEvent event("deployment.events", "deployment", id);
    event.release_id = d.release_id;
    event.detail = {{"host", d.host},
                    {"stored", count->second},
                    {"through", top},
                    {"from", protocol::StepName(d.step)},
                    {"to", step_text}};
    audits.emplace_back(posts[last_post.at(id)].origin, std::move(event));
    if (auto result = step ? FinalResultOf(*step, failed_step) : std::nullopt) {
      if (step) d.step = *step;
      endings.push_back({&d, *result, message, step_text});
    }
  }
  if (!updates.empty()) {
    UpdateStepsStatement& update = tx.Cached<UpdateStepsStatement>();
    update.rows = updates.dump();
    update.st.execute(true);
  }
  if (!audits.empty()) tx.AuditAll(audits);

  // A deployment's end, and what it decides of its rollout, are on behalf of
  // the request that reported it.
  std::vector<DeploymentEnd> ends;
  std::map<std::string, const AuditOrigin*> rollouts_to_check;
  for (const Ending& ending : endings) {
    DeploymentRecord& d = *ending.deployment;
    const AuditOrigin& origin = posts[last_post.at(d.id)].origin;
    ends.push_back({&d, ending.result, ending.message, &origin});
    const platform::log::Scope scope(
        platform::log::Fields().Release(d.release_id).Host(d.host).Deployment(d.id));
    spdlog::log(d.step == Step::kSucceeded ? spdlog::level::info : spdlog::level::warn,
                "deployment {} of {} on {}: {}{}{}", d.id, d.release_id, d.host, ending.step,
                ending.message.empty() ? "" : ": ", ending.message);
    if (d.environment == kProductionEnvironment) rollouts_to_check[d.release_id] = &origin;
  }
  FinishDeployments(tx, ends, now);
  for (const auto& [release_id, origin] : rollouts_to_check) {
    Transaction as = tx.As(*origin);
    AdvanceRollout(as, release_id, now, options, wakeups, NextPart::kLeaveToTheSweep);
  }

  for (std::size_t i = 0; i < posts.size(); ++i) {
    if (!accepted[i]) continue;
    protocol::EventAck ack;
    for (const protocol::DeploymentEvent& e : posts[i].batch.events) {
      auto top = highest.find(e.deployment);
      ack.through[e.deployment] =
          static_cast<std::uint64_t>(top == highest.end() ? 0 : top->second);
    }
    answers[i] = std::move(ack);
  }
  return answers;
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
  std::vector<DeploymentEnd> ends;
  for (const DeploymentRecord& d : open) {
    ends.push_back({&d, DeploymentResult::kHostRemoved, why, nullptr});
    if (d.environment == kProductionEnvironment) releases.insert(d.release_id);
  }
  FinishDeployments(tx, ends, now);
  for (const std::string& release_id : releases) {
    AdvanceRollout(tx, release_id, now, options, wakeups, NextPart::kLeaveToTheSweep);
  }
}

}  // namespace fabu::coordinator
