// /api/v1/releases/{id}/test, /start, /hosts, /status and the verbs that steer
// a rollout (pause, resume, abort, gate, rollback, reschedule,
// override-freeze), and /api/v1/freezes (docs/api.md).
//
// A person's transition, what it tells the rollout engine, and the engine's
// next step are one store transaction; the agents given work are woken after
// it committed.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <limits>

#include "coordinator/api/api_context.hpp"
#include "coordinator/cmdb/cmdb.hpp"
#include "coordinator/common/json_input.hpp"
#include "coordinator/common/webhook_allow.hpp"
#include "coordinator/deploy/deployments.hpp"
#include "coordinator/deploy/host_timeline.hpp"
#include "coordinator/deploy/preflight.hpp"
#include "coordinator/deploy/rollout_engine.hpp"
#include "coordinator/hosts/hosts.hpp"
#include "coordinator/release/time_zone.hpp"
#include "coordinator/store/release_records.hpp"

namespace fabu::coordinator {
namespace {

using nlohmann::json;
namespace rel = release;

// The longest a long poll of a release's status waits.
constexpr std::int64_t kMaxStatusWaitSeconds = 30;
// The most hosts one page of a status lists (host_limit), and the furthest
// page (host_offset).
constexpr std::int64_t kMaxHostLimit = 1'000'000;
constexpr std::int64_t kMaxHostOffset = 100'000'000;

using Operation = Result<rel::Release> (*)(const rel::Release&, const rel::Actor&, rel::Instant,
                                           std::size_t);

// Whether the go-live plan's checks on metrics can be measured here (before
// a rollout starts, so that none waits on a check that can never be made):
// a prometheus check needs checks.prometheus_url, an http check a URL under
// checks.allow (config.json).
Result<void> ChecksCanRun(const rel::Release& release, const CoordinatorConfig& config) {
  if (!release.plan.golive) return {};
  for (const rel::MetricCheck& check : release.plan.golive->checks) {
    if (check.kind == rel::MetricCheck::Kind::kPrometheus && config.checks_prometheus_url.empty()) {
      return Fail(ErrorCode::kFailedPrecondition,
                  fmt::format("cannot start release {}: check {} queries Prometheus and no "
                              "Prometheus is configured (checks.prometheus_url in config.json)",
                              release.id, check.name));
    }
    if (check.kind == rel::MetricCheck::Kind::kHttp) {
      if (auto ok = CheckWebhookTarget(check.url, config.checks_allow); !ok) {
        return Fail(ErrorCode::kFailedPrecondition,
                    fmt::format("cannot start release {}: check {} goes to {}, which is not under "
                                "checks.allow in config.json",
                                release.id, check.name, check.url));
      }
    }
  }
  return {};
}

// Moves release `id` with `operation` and deploys it to its targets labelled
// env=`environment`: all of them at once for a test deployment, wave by wave
// (the rollout engine) in production.
Result<Response> Deploy(const ApiContext& api, RequestContext& ctx, std::string_view environment,
                        Operation operation) {
  const std::string id = ctx.path_params.at("id");
  struct Outcome {
    rel::Release release;
    std::vector<DeploymentRecord> made;
  };
  Wakeups wake;
  auto outcome = api.store.Write(ctx.Origin(), [&](Transaction& tx) -> Result<Outcome> {
    wake = {};
    auto before = LoadRelease(tx.sql(), id, PlanOptions(api));
    if (!before) return std::unexpected(before.error());
    LabelSelector selector;
    if (before->plan.targets) selector = before->plan.targets->labels;
    selector.emplace_back("env", std::string(environment));
    std::vector<std::string> hosts;
    for (const MatchingHost& host : MatchingHosts(tx.sql(), selector)) hosts.push_back(host.name);
    const rel::Instant now = NowInstant(api);
    auto after = operation(*before, ActorOf(ctx), now, hosts.size());
    if (!after) return std::unexpected(after.error());
    auto package = FindPackage(tx.sql(), after->plan.packages.front());
    if (!package) {
      return std::unexpected(package.error().WithContext(
          fmt::format("release {} names package {}", id, after->plan.packages.front())));
    }
    SaveTransition(tx, *before, *after, {{"environment", environment}, {"hosts", hosts}});
    if (environment == kProductionEnvironment) {
      if (auto ok = ChecksCanRun(*after, api.config); !ok) return std::unexpected(ok.error());
      if (auto ok = CheckPreflightAllowsStart(tx.sql(), id, tx.clock().Seconds()); !ok) {
        return std::unexpected(ok.error());
      }
      // The CMDB's baseline of every target's software before anything moves.
      if (auto taken = TakeBaseline(tx, id, kBaselineBefore, hosts, now); !taken) {
        return std::unexpected(taken.error());
      }
      if (auto begun = BeginRollout(tx, *after, *package, hosts, now, PlanOptions(api), wake,
                                    api.config.wave_first_part);
          !begun) {
        return std::unexpected(begun.error());
      }
      std::vector<DeploymentRecord> first_part;
      for (DeploymentRecord& d : ListDeployments(tx.sql(), id)) {
        if (d.environment == kProductionEnvironment) first_part.push_back(std::move(d));
      }
      return Outcome{std::move(*after), std::move(first_part)};
    }
    auto made = CreateDeployments(tx, *after, *package, hosts, environment, now);
    for (const DeploymentRecord& d : made) wake.hosts.push_back(d.host);
    return Outcome{std::move(*after), std::move(made)};
  });
  if (!outcome) return std::unexpected(outcome.error());
  WakeHosts(api.wakeups, wake);
  json deployments = json::array();
  for (const DeploymentRecord& d : outcome->made) deployments.push_back(d.ToJson());
  return Response::Ok(
      {{"release", rel::ReleaseToJson(outcome->release)}, {"deployments", deployments}});
}

// A string member of the body: required ones must be non-blank.
Result<std::string> StringField(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return std::string();
  return it->get<std::string>();
}

// What a verb does beyond the release's transition, in the same transaction.
using RolloutEffect = Result<void> (*)(soci::session&, const std::string& release_id);

// The same for a verb that makes deployments: given the transaction, the
// release as the transition left it, the body and the time, it may add hosts
// to wake and fields to the answer (the rollout status).
using DeployingEffect =
    std::function<Result<void>(Transaction&, const rel::Release& after, const json& body,
                               rel::Instant now, Wakeups& wake, json& answer)>;

// Applies a person's verb to release `id`: `step` makes the transition,
// `effect` tells the engine, and the engine takes its next step at once.
template <typename Step>
Result<Response> Steer(const ApiContext& api, RequestContext& ctx,
                       std::initializer_list<FieldRule> rules, Step&& step,
                       const DeployingEffect& effect) {
  const std::string id = ctx.path_params.at("id");
  auto body = ctx.Json();
  if (!body) return std::unexpected(body.error());
  if (auto ok = CheckObject(*body, "", rules); !ok) return std::unexpected(ok.error());
  Wakeups wake;
  auto saved = api.store.Write(ctx.Origin(), [&](Transaction& tx) -> Result<json> {
    wake = {};
    auto before = LoadRelease(tx.sql(), id, PlanOptions(api));
    if (!before) return std::unexpected(before.error());
    const rel::Instant now = NowInstant(api);
    auto after = step(*before, ActorOf(ctx), now, *body);
    if (!after) return std::unexpected(after.error());
    json answer = json::object();
    if (effect) {
      if (auto ok = effect(tx, *after, *body, now, wake, answer); !ok) {
        return std::unexpected(ok.error());
      }
    }
    SaveTransition(tx, *before, *after, *body);
    AdvanceRollout(tx, id, now, PlanOptions(api), wake);
    auto current = LoadRelease(tx.sql(), id, PlanOptions(api));
    if (!current) return std::unexpected(current.error());
    auto status = RolloutStatus(tx.sql(), *current, now);
    if (!status) return std::unexpected(status.error());
    status->update(answer);
    return status;
  });
  if (!saved) return std::unexpected(saved.error());
  WakeHosts(api.wakeups, wake);
  return Response::Ok(*saved);
}

template <typename Step>
Result<Response> Steer(const ApiContext& api, RequestContext& ctx,
                       std::initializer_list<FieldRule> rules, Step&& step, RolloutEffect effect) {
  DeployingEffect wrapped;
  if (effect != nullptr) {
    wrapped = [effect](Transaction& tx, const rel::Release& after, const json&, rel::Instant,
                       Wakeups&, json&) { return effect(tx.sql(), after.id); };
  }
  return Steer(api, ctx, rules, std::forward<Step>(step), wrapped);
}

Result<void> PausedByPerson(soci::session& sql, const std::string& id) {
  SetPauseKind(sql, id, kPausedByPerson);
  return {};
}

Result<void> ClearPause(soci::session& sql, const std::string& id) {
  SetPauseKind(sql, id, "");
  return {};
}

Result<void> Aborted(soci::session& sql, const std::string& id) {
  MarkAborted(sql, id);
  return {};
}

Result<void> GatePassed(soci::session& sql, const std::string& id) { return PassGate(sql, id); }

// What closing needs from the store: how the hosts ended and whether the
// CMDB update is confirmed (procedure §6.2.8).
rel::CloseFacts CloseFactsOf(soci::session& sql, const std::string& id) {
  rel::CloseFacts facts;
  const RolloutTally tally = TallyRollout(sql, id);
  facts.hosts_succeeded = tally.succeeded;
  facts.hosts_failed = tally.failed;
  const CmdbConfirmation cmdb = ConfirmationOf(sql, id);
  facts.cmdb_confirmed = cmdb.confirmed;
  if (cmdb.confirmed) {
    facts.cmdb_summary =
        fmt::format("confirmed: {} upgrade record(s), {} delivered", cmdb.records, cmdb.delivered);
    if (cmdb.waived > 0) facts.cmdb_summary += fmt::format(", {} waived", cmdb.waived);
  } else {
    facts.cmdb_summary = fmt::format(
        "{} final deployment(s) without an upgrade record, {} delivery(ies) pending, "
        "{} failing",
        cmdb.unrecorded, cmdb.pending, cmdb.failing);
  }
  return facts;
}

}  // namespace

void RegisterRolloutRoutes(Router& router, const ApiContext& api) {
  using R = Role;

  router.Add(Method::kPost, "/api/v1/releases/{id}/test",
             RouteOptions::ForRoles({R::kAdmin, R::kReleaseManager, R::kTester},
                                    "deploying a release to its test hosts"),
             [api](RequestContext& ctx) -> Result<Response> {
               return Deploy(api, ctx, kTestEnvironment, &rel::StartTestDeployment);
             });

  router.Add(Method::kPost, "/api/v1/releases/{id}/start",
             RouteOptions::ForRoles({R::kAdmin, R::kReleaseManager}, "starting a rollout"),
             [api](RequestContext& ctx) -> Result<Response> {
               return Deploy(api, ctx, kProductionEnvironment, &rel::StartRollout);
             });

  const auto steer_roles =
      RouteOptions::ForRoles({R::kAdmin, R::kReleaseManager, R::kApprover}, "steering a rollout");
  using Body = const json&;

  router.Add(Method::kPost, "/api/v1/releases/{id}/pause", steer_roles,
             [api](RequestContext& ctx) -> Result<Response> {
               return Steer(
                   api, ctx, {{"reason", JsonType::kString, true}},
                   [](const rel::Release& r, const rel::Actor& a, rel::Instant at, Body b) {
                     return rel::PauseRollout(r, a, at, b.at("reason").get<std::string>());
                   },
                   &PausedByPerson);
             });

  router.Add(Method::kPost, "/api/v1/releases/{id}/resume", steer_roles,
             [api](RequestContext& ctx) -> Result<Response> {
               return Steer(
                   api, ctx, {{"comment", JsonType::kString}},
                   [](const rel::Release& r, const rel::Actor& a, rel::Instant at,
                      Body b) -> Result<rel::Release> {
                     auto comment = StringField(b, "comment");
                     return rel::ResumeRollout(r, a, at, *comment);
                   },
                   // From failed, a person goes on past the failed wave, or
                   // with the wave an abort stopped.
                   [](soci::session& sql, const std::string& id) -> Result<void> {
                     AcceptCurrentWave(sql, id);
                     return {};
                   });
             });

  // The failed hosts of the wave that failed, deployed again (all of them,
  // or those of "hosts"); the wave is judged on their new results.
  router.Add(
      Method::kPost, "/api/v1/releases/{id}/retry", steer_roles,
      [api](RequestContext& ctx) -> Result<Response> {
        return Steer(
            api, ctx, {{"reason", JsonType::kString, true}, {"hosts", JsonType::kArray}},
            [](const rel::Release& r, const rel::Actor& a, rel::Instant at, Body b) {
              return rel::RetryRollout(r, a, at, b.at("reason").get<std::string>());
            },
            DeployingEffect([](Transaction& tx, const rel::Release& after, const json& body,
                               rel::Instant now, Wakeups& wake, json& answer) -> Result<void> {
              std::vector<std::string> only;
              for (const auto& host : body.value("hosts", json::array())) {
                if (!host.is_string()) {
                  return Fail(ErrorCode::kInvalidArgument,
                              "hosts: expected an array of host names");
                }
                only.push_back(host.get<std::string>());
              }
              auto retried = RetryFailedHosts(tx, after, only, now, wake);
              if (!retried) return std::unexpected(retried.error());
              answer["retried"] = *retried;
              return {};
            }));
      });

  router.Add(Method::kPost, "/api/v1/releases/{id}/abort", steer_roles,
             [api](RequestContext& ctx) -> Result<Response> {
               return Steer(
                   api, ctx, {{"reason", JsonType::kString, true}},
                   [](const rel::Release& r, const rel::Actor& a, rel::Instant at, Body b) {
                     return rel::AbortRollout(r, a, at, b.at("reason").get<std::string>());
                   },
                   &Aborted);
             });

  router.Add(Method::kPost, "/api/v1/releases/{id}/gate", steer_roles,
             [api](RequestContext& ctx) -> Result<Response> {
               return Steer(
                   api, ctx,
                   {{"confirm", JsonType::kBoolean, true}, {"comment", JsonType::kString}},
                   [](const rel::Release& r, const rel::Actor& a, rel::Instant at,
                      Body b) -> Result<rel::Release> {
                     if (!b.at("confirm").get<bool>()) {
                       return Fail(ErrorCode::kInvalidArgument,
                                   "confirm: a control point is passed only with "
                                   "\"confirm\": true (--confirm)");
                     }
                     return rel::ConfirmGate(r, a, at, *StringField(b, "comment"));
                   },
                   &GatePassed);
             });

  router.Add(Method::kPost, "/api/v1/releases/{id}/rollback", steer_roles,
             [api](RequestContext& ctx) -> Result<Response> {
               return Steer(
                   api, ctx, {{"reason", JsonType::kString, true}},
                   [](const rel::Release& r, const rel::Actor& a, rel::Instant at, Body b) {
                     return rel::StartRollback(r, a, at, b.at("reason").get<std::string>());
                   },
                   &ClearPause);
             });

  router.Add(Method::kPost, "/api/v1/releases/{id}/reschedule", steer_roles,
             [api](RequestContext& ctx) -> Result<Response> {
               auto zone = rel::TimeZone::Load(api.config.time_zone);
               if (!zone) return std::unexpected(zone.error());
               return Steer(
                   api, ctx, {{"start", JsonType::kString, true}, {"end", JsonType::kString, true}},
                   [&zone](const rel::Release& r, const rel::Actor& a, rel::Instant at,
                           Body b) -> Result<rel::Release> {
                     auto start = rel::ParseTimeArgument(b.at("start").get<std::string>(), *zone);
                     if (!start) return std::unexpected(start.error().WithContext("start"));
                     auto end = rel::ParseTimeArgument(b.at("end").get<std::string>(), *zone);
                     if (!end) return std::unexpected(end.error().WithContext("end"));
                     return rel::RescheduleWindow(r, a, at, rel::MaintenanceWindow{*start, *end});
                   },
                   // The engine resumes by itself once the new window opens.
                   [](soci::session& sql, const std::string& id) -> Result<void> {
                     SetPauseKind(sql, id, kPausedByWindow);
                     return {};
                   });
             });

  router.Add(Method::kPost, "/api/v1/releases/{id}/override-freeze",
             RouteOptions::ForRoles({R::kApprover}, "overriding a freeze"),
             [api](RequestContext& ctx) -> Result<Response> {
               return Steer(
                   api, ctx, {{"reason", JsonType::kString, true}},
                   [](const rel::Release& r, const rel::Actor& a, rel::Instant at, Body b) {
                     return rel::OverrideFreeze(r, a, at, b.at("reason").get<std::string>());
                   },
                   nullptr);
             });

  router.Add(
      Method::kPost, "/api/v1/releases/{id}/close",
      RouteOptions::ForRoles({R::kAdmin, R::kReleaseManager}, "closing a release"),
      [api](RequestContext& ctx) -> Result<Response> {
        const std::string id = ctx.path_params.at("id");
        auto body = ctx.Json();
        if (!body) return std::unexpected(body.error());
        if (auto ok =
                CheckObject(*body, "", {{"code", JsonType::kString}, {"notes", JsonType::kString}});
            !ok) {
          return std::unexpected(ok.error());
        }
        std::optional<rel::CloseCode> code;
        if (auto text = StringField(*body, "code"); !text->empty()) {
          auto parsed = rel::ParseCloseCode(*text);
          if (!parsed) return std::unexpected(parsed.error().WithContext("code"));
          code = *parsed;
        }
        auto closed = api.store.Write(ctx.Origin(), [&](Transaction& tx) -> Result<rel::Release> {
          auto before = LoadRelease(tx.sql(), id, PlanOptions(api));
          if (!before) return before;
          const rel::Instant now = NowInstant(api);
          const rel::CloseFacts facts = CloseFactsOf(tx.sql(), id);
          auto after = rel::CloseRelease(*before, ActorOf(ctx), now, code,
                                         *StringField(*body, "notes"), facts);
          if (!after) return after;
          // The CMDB's baseline after the rollout: what the agents report now,
          // with why each host not on the release's version is not.
          const auto not_on_version = HostsNotOnVersion(tx.sql(), *before);
          if (auto taken = TakeBaseline(tx, id, kBaselineAfter, RolloutTargets(tx.sql(), id), now,
                                        not_on_version);
              !taken) {
            return std::unexpected(taken.error());
          }
          // ...and of the hosts that match its targets but were not in it.
          std::vector<std::string> outside;
          for (const HostNotInRelease& h : HostsNotInRelease(tx.sql(), *before)) {
            outside.push_back(h.host);
          }
          if (auto taken = TakeBaseline(tx, id, kBaselineOutside, outside, now, not_on_version);
              !taken) {
            return std::unexpected(taken.error());
          }
          SaveTransition(tx, *before, *after,
                         {{"code", rel::CloseCodeName(*after->close_code)},
                          {"cmdb", facts.cmdb_summary},
                          {"hosts_succeeded", facts.hosts_succeeded},
                          {"hosts_failed", facts.hosts_failed},
                          {"finished_in_window", after->closure->finished_in_window}});
          return after;
        });
        if (!closed) return std::unexpected(closed.error());
        return Response::Ok(rel::ReleaseToJson(*closed));
      });

  // With ?wait=S&revision=N, a long poll: answered at once when the
  // release's status changed since the answer that said revision N, else
  // when it changes (a deployment made, a step stored, a deployment ended, a
  // transition: WakeupHub::ReleaseKey), at most S (<= 30) seconds later. The
  // revision counts changes since this coordinator started, so after a
  // restart the first poll answers at once.
  router.Add(
      Method::kGet, "/api/v1/releases/{id}/status", RouteOptions::AnyUser(),
      [api](RequestContext& ctx) -> Result<Response> {
        const std::string id = ctx.path_params.at("id");
        auto wait = QueryNumber(ctx, "wait", 0, 0, kMaxStatusWaitSeconds);
        if (!wait) return std::unexpected(wait.error());
        auto seen = QueryNumber(ctx, "revision", 0, 0, std::numeric_limits<std::int64_t>::max());
        if (!seen) return std::unexpected(seen.error());
        StatusHostPage page;
        page.filter = ctx.Query("hosts").value_or("");
        if (auto ok = CheckStatusFilter(page.filter); !ok) return std::unexpected(ok.error());
        auto offset = QueryNumber(ctx, "host_offset", 0, 0, kMaxHostOffset);
        if (!offset) return std::unexpected(offset.error());
        auto limit = QueryNumber(ctx, "host_limit", 0, 0, kMaxHostLimit);
        if (!limit) return std::unexpected(limit.error());
        page.offset = static_cast<std::size_t>(*offset);
        if (ctx.Query("host_limit")) page.limit = static_cast<std::size_t>(*limit);
        const std::string key = WakeupHub::ReleaseKey(id);
        // Read before looking at the store: a change after this wakes us.
        const std::uint64_t revision = api.wakeups.Generation(key);
        auto status = api.store.Read([&](soci::session& sql) -> Result<json> {
          auto r = LoadRelease(sql, id, PlanOptions(api));
          if (!r) return std::unexpected(r.error());
          return RolloutStatus(sql, *r, Now(api), page);
        });
        if (!status) return std::unexpected(status.error());
        (*status)["revision"] = revision;
        const bool unchanged =
            ctx.Query("revision") && static_cast<std::uint64_t>(*seen) == revision;
        if (*wait == 0 || !unchanged) return Response::Ok(std::move(*status));
        const auto until =
            ctx.wait_until.value_or(std::chrono::steady_clock::now() + std::chrono::seconds(*wait));
        return Response::Wait(key, revision, until, std::move(*status));
      });

  router.Add(Method::kGet, "/api/v1/freezes", RouteOptions::AnyUser(),
             [api](RequestContext& ctx) -> Result<Response> {
               (void)ctx;
               auto listed = api.store.Read([&](soci::session& sql) -> Result<json> {
                 json items = json::array();
                 for (const Freeze& f : ListFreezes(sql)) items.push_back(f.ToJson());
                 return json{{"freezes", items}};
               });
               if (!listed) return std::unexpected(listed.error());
               return Response::Ok(*listed);
             });

  router.Add(Method::kPost, "/api/v1/freezes",
             RouteOptions::ForRoles({R::kAdmin, R::kApprover, R::kReleaseManager},
                                    "adding a freeze period"),
             [api](RequestContext& ctx) -> Result<Response> {
               auto body = ctx.Json();
               if (!body) return std::unexpected(body.error());
               if (auto ok = CheckObject(*body, "",
                                         {{"from", JsonType::kString, true},
                                          {"to", JsonType::kString, true},
                                          {"reason", JsonType::kString, true},
                                          {"selector", JsonType::kString}});
                   !ok) {
                 return std::unexpected(ok.error());
               }
               auto zone = rel::TimeZone::Load(api.config.time_zone);
               if (!zone) return std::unexpected(zone.error());
               auto from = rel::ParseTimeArgument(body->at("from").get<std::string>(), *zone);
               if (!from) return std::unexpected(from.error().WithContext("from"));
               auto to = rel::ParseTimeArgument(body->at("to").get<std::string>(), *zone);
               if (!to) return std::unexpected(to.error().WithContext("to"));
               auto added = api.store.Write(ctx.Origin(), [&](Transaction& tx) {
                 return AddFreeze(tx, *from, *to, body->at("reason").get<std::string>(),
                                  *StringField(*body, "selector"));
               });
               if (!added) return std::unexpected(added.error());
               return Response::Created(added->ToJson());
             });

  router.Add(Method::kPost, "/api/v1/freezes/{id}/remove",
             RouteOptions::ForRoles({R::kAdmin, R::kApprover, R::kReleaseManager},
                                    "removing a freeze period"),
             [api](RequestContext& ctx) -> Result<Response> {
               const std::string id = ctx.path_params.at("id");
               auto removed = api.store.Write(
                   ctx.Origin(), [&](Transaction& tx) { return RemoveFreeze(tx, id); });
               if (!removed) return std::unexpected(removed.error());
               return Response::Ok(removed->ToJson());
             });

  // Pre-flight (deploy/preflight.hpp): a new round on the production
  // targets, or, with "override": true, an approver's override of the
  // latest round's "would fail" answers (with a reason).
  router.Add(
      Method::kPost, "/api/v1/releases/{id}/preflight",
      RouteOptions::ForRoles({R::kAdmin, R::kReleaseManager, R::kApprover},
                             "asking for a pre-flight"),
      [api](RequestContext& ctx) -> Result<Response> {
        const std::string id = ctx.path_params.at("id");
        auto body = ctx.Json();
        if (!body) return std::unexpected(body.error());
        if (auto ok = CheckObject(
                *body, "", {{"override", JsonType::kBoolean}, {"reason", JsonType::kString}});
            !ok) {
          return std::unexpected(ok.error());
        }
        const bool override = body->value("override", false);
        const rel::Actor actor = ActorOf(ctx);
        if (override && actor.role != rel::Role::kApprover && actor.role != rel::Role::kAdmin) {
          return Fail(ErrorCode::kPermissionDenied,
                      "overriding a pre-flight needs the approver role");
        }
        Wakeups wake;
        auto done = api.store.Write(ctx.Origin(), [&](Transaction& tx) -> Result<json> {
          wake = {};
          auto release = LoadRelease(tx.sql(), id, PlanOptions(api));
          if (!release) return std::unexpected(release.error());
          const UnixSeconds now = tx.clock().Seconds();
          if (override) {
            if (auto ok = OverridePreflight(tx, id, actor.name, body->value("reason", ""), now);
                !ok) {
              return std::unexpected(ok.error());
            }
          } else {
            using S = rel::ReleaseState;
            if (release->state == S::kDeploying || release->state == S::kPaused ||
                release->state == S::kRollingBack || release->state == S::kClosed ||
                release->state == S::kCancelled) {
              return Fail(ErrorCode::kFailedPrecondition,
                          fmt::format("release {} is {}: pre-flight is for a release not "
                                      "started yet",
                                      id, rel::ReleaseStateName(release->state)));
            }
            auto round = AskPreflightOfTargets(tx, *release, now, actor.name, wake);
            if (!round) return std::unexpected(round.error());
          }
          return PreflightStatus(tx.sql(), id, now);
        });
        if (!done) return std::unexpected(done.error());
        WakeHosts(api.wakeups, wake);
        return Response::Ok({{"release", id}, {"preflight", *done}});
      });

  // ?host_limit=N: the first N hosts only, those that would fail first
  // (then unknown, waiting, ready; by name within each), and `hosts_total`;
  // the counts are always the whole round's.
  router.Add(Method::kGet, "/api/v1/releases/{id}/preflight", RouteOptions::AnyUser(),
             [api](RequestContext& ctx) -> Result<Response> {
               const std::string id = ctx.path_params.at("id");
               auto limit = QueryNumber(ctx, "host_limit", 0, 0, kMaxHostLimit);
               if (!limit) return std::unexpected(limit.error());
               auto status = api.store.Read([&](soci::session& sql) -> Result<json> {
                 auto r = LoadRelease(sql, id, PlanOptions(api));
                 if (!r) return std::unexpected(r.error());
                 return PreflightStatus(
                     sql, id, api.store.clock().Seconds(),
                     ctx.Query("host_limit")
                         ? std::optional<std::size_t>(static_cast<std::size_t>(*limit))
                         : std::nullopt);
               });
               if (!status) return std::unexpected(status.error());
               return Response::Ok({{"release", id}, {"preflight", *status}});
             });

  router.Add(Method::kGet, "/api/v1/releases/{id}/hosts", RouteOptions::AnyUser(),
             [api](RequestContext& ctx) -> Result<Response> {
               const std::string id = ctx.path_params.at("id");
               // ?environment=test|production: that deployment's hosts only.
               const std::string environment = ctx.Query("environment").value_or("");
               if (!environment.empty() && environment != kTestEnvironment &&
                   environment != kProductionEnvironment) {
                 return Fail(ErrorCode::kInvalidArgument,
                             fmt::format("environment: \"{}\" or \"{}\", not \"{}\"",
                                         kTestEnvironment, kProductionEnvironment, environment));
               }
               auto listed = api.store.Read([&](soci::session& sql) -> Result<json> {
                 auto r = LoadRelease(sql, id, PlanOptions(api));
                 if (!r) return std::unexpected(r.error());
                 const auto outputs = FailureOutputs(sql, id);
                 json hosts = json::array();
                 for (const DeploymentRecord& d : ListDeployments(sql, id, environment)) {
                   json entry = d.ToJson();
                   auto output = outputs.find(d.id);
                   entry["output"] = output == outputs.end() ? "" : output->second;
                   hosts.push_back(std::move(entry));
                 }
                 return json{
                     {"release", id}, {"state", rel::ReleaseStateName(r->state)}, {"hosts", hosts}};
               });
               if (!listed) return std::unexpected(listed.error());
               return Response::Ok(*listed);
             });

  // One host's timeline in a release: every deployment and every event
  // with the hook output it carried.
  router.Add(Method::kGet, "/api/v1/releases/{id}/hosts/{host}", RouteOptions::AnyUser(),
             [api](RequestContext& ctx) -> Result<Response> {
               const std::string id = ctx.path_params.at("id");
               const std::string host = ctx.path_params.at("host");
               auto timeline = api.store.Read([&](soci::session& sql) -> Result<json> {
                 auto r = LoadRelease(sql, id, PlanOptions(api));
                 if (!r) return std::unexpected(r.error());
                 auto deployments = HostTimeline(sql, id, host);
                 if (!deployments) return std::unexpected(deployments.error());
                 return json{{"release", id},
                             {"state", rel::ReleaseStateName(r->state)},
                             {"host", host},
                             {"deployments", std::move(*deployments)}};
               });
               if (!timeline) return std::unexpected(timeline.error());
               return Response::Ok(*timeline);
             });
}

}  // namespace fabu::coordinator
