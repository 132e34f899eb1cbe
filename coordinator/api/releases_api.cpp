// /api/v1/releases: release plans through the procedure (procedure §6.2.1-§6.2.5).
//
// Every verb loads the release, applies the pure workflow operation
// (coordinator/release/workflow.hpp) and saves the result with its audit entry
// in one store transaction, so a refused step changes nothing and two
// approvers acting at once are applied one after the other.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <map>

#include "coordinator/api/api_context.hpp"
#include "coordinator/auth/users.hpp"
#include "coordinator/cmdb/cmdb.hpp"
#include "coordinator/cmdb/upgrade_export.hpp"
#include "coordinator/common/json_input.hpp"
#include "coordinator/deploy/deployments.hpp"
#include "coordinator/deploy/preflight.hpp"
#include "coordinator/deploy/rollout_engine.hpp"
#include "coordinator/notify/notices.hpp"
#include "coordinator/packages/package_store.hpp"
#include "coordinator/records/records_store.hpp"
#include "coordinator/release/plan_export.hpp"
#include "coordinator/release/release_report.hpp"
#include "coordinator/release/workflow.hpp"
#include "coordinator/store/release_records.hpp"

namespace fabu::coordinator {
namespace {

using nlohmann::json;
namespace rel = release;

// Every package a plan names must be stored here.
Result<void> CheckPackagesStored(soci::session& sql, const rel::ReleasePlan& plan) {
  for (std::size_t i = 0; i < plan.packages.size(); ++i) {
    if (!PackageExists(sql, plan.packages[i])) {
      return Fail(ErrorCode::kInvalidArgument,
                  fmt::format("packages[{}]: no package {} on this coordinator (upload it with "
                              "`fabu package upload FILE`)",
                              i, plan.packages[i]));
    }
  }
  return {};
}

// Every reviewer must be an enabled user with role approver.
Result<void> CheckReviewers(soci::session& sql, const rel::ReleasePlan& plan) {
  for (std::size_t i = 0; i < plan.reviewers.size(); ++i) {
    auto user = FindUser(sql, plan.reviewers[i]);
    if (!user) {
      return Fail(
          ErrorCode::kFailedPrecondition,
          fmt::format("reviewers[{}]: {} is not a user of this coordinator", i, plan.reviewers[i]));
    }
    if (user->disabled) {
      return Fail(ErrorCode::kFailedPrecondition,
                  fmt::format("reviewers[{}]: {} is disabled", i, plan.reviewers[i]));
    }
    if (user->role != Role::kApprover) {
      return Fail(ErrorCode::kFailedPrecondition,
                  fmt::format("reviewers[{}]: {} has role {}; reviewers must be approvers", i,
                              plan.reviewers[i], RoleName(user->role)));
    }
  }
  return {};
}

Result<rel::ReleasePlan> PlanFromBody(const RequestContext& ctx, const ApiContext& api) {
  auto body = ctx.Json();
  if (!body) return std::unexpected(body.error());
  return rel::ReleasePlanFromJson(*body, PlanOptions(api));
}

std::string CommentOf(const json& body) {
  auto it = body.find("comment");
  return it != body.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The test deployment of this review round a tester reports on: the latest
// deployment of each test host made since the round's submit (procedure
// §6.2.3). Empty when the round has none.
rel::TestRun TestRunOf(soci::session& sql, const rel::Release& release) {
  rel::TestRun run;
  if (!rel::LatestTestDeployment(release)) return run;
  const rel::UnixSeconds since = rel::ReviewRoundStart(release);
  std::map<std::string, DeploymentRecord> latest;  // by host; ids grow with time
  for (DeploymentRecord& d : ListDeployments(sql, release.id)) {
    if (d.environment != kTestEnvironment || d.created < since) continue;
    auto it = latest.find(d.host);
    if (it == latest.end() || it->second.created <= d.created) latest[d.host] = std::move(d);
  }
  for (const auto& [host, d] : latest) {
    run.deployments.push_back(d.id);
    if (!d.Succeeded()) {
      run.not_succeeded.push_back(
          fmt::format("{} ({})", host, d.IsFinal() ? d.ResultText() : protocol::StepName(d.step)));
    }
  }
  return run;
}

// Applies `step` to release `id` in one transaction and audits it as `action`.
template <typename Step>
Result<Response> Mutate(const ApiContext& api, RequestContext& ctx, std::string_view action,
                        json detail, Step&& step, bool ask_preflight = false) {
  const std::string id = ctx.path_params.at("id");
  Wakeups wake;
  auto saved = api.store.Write(ctx.Origin(), [&](Transaction& tx) -> Result<rel::Release> {
    wake = {};
    auto before = LoadRelease(tx.sql(), id, PlanOptions(api));
    if (!before) return before;
    auto after = step(tx.sql(), *before, ActorOf(ctx), NowInstant(api));
    if (!after) return after;
    SaveTransition(tx, *before, *after, std::move(detail), action);
    if (ask_preflight) {
      // The reviewers see whether the targets could take it (deploy/preflight.hpp);
      // a release whose package or targets are not there yet is asked later.
      auto round = AskPreflightOfTargets(tx, *after, tx.clock().Seconds(), ActorOf(ctx).name, wake);
      if (!round) {
        spdlog::info("release {}: no pre-flight at {}: {}", id, action, round.error().message());
      }
    }
    return after;
  });
  if (!saved) return std::unexpected(saved.error());
  WakeHosts(api.wakeups, wake);
  return Response::Ok(rel::ReleaseToJson(*saved));
}

// Reads an optional string field, refusing other types.
Result<std::string> OptionalString(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return std::string();
  if (!it->is_string()) {
    return Fail(ErrorCode::kInvalidArgument, fmt::format("{}: must be a string", name));
  }
  return it->get<std::string>();
}

// The upgrade record table (升级记录表) of release `id` as csv, md, html or
// json, in lang=en|zh-CN.
Result<Response> ExportUpgradeRecordsOf(const ApiContext& api, const RequestContext& ctx) {
  const std::string id = ctx.path_params.at("id");
  const std::string format = ctx.Query("format").value_or("csv");
  auto lang = rel::ParseLang(ctx.Query("lang").value_or("en"));
  if (!lang) return std::unexpected(lang.error());
  auto content = api.store.Read([&](soci::session& sql) -> Result<std::string> {
    auto r = LoadRelease(sql, id, PlanOptions(api));
    if (!r) return std::unexpected(r.error());
    UpgradeFilter filter;
    filter.release_id = id;
    filter.limit = 1'000'000;
    return ExportUpgradeRecords(id, ListUpgradeRecords(sql, filter), ConfirmationOf(sql, id),
                                format, *lang);
  });
  if (!content) return std::unexpected(content.error());
  return Response::Ok({{"id", id},
                       {"doc", "upgrade-records"},
                       {"format", format},
                       {"lang", rel::LangTag(*lang)},
                       {"content", *content}});
}

// The release report (发布报告) or the release test report (发布测试报告) of
// release `id` as md, html or json, in the coordinator's time zone.
Result<Response> ExportRecordOf(const ApiContext& api, const RequestContext& ctx,
                                const std::string& doc) {
  const std::string id = ctx.path_params.at("id");
  auto format = rel::ParseRecordFormat(ctx.Query("format").value_or("md"));
  if (!format) return std::unexpected(format.error());
  auto lang = rel::ParseLang(ctx.Query("lang").value_or("en"));
  if (!lang) return std::unexpected(lang.error());
  auto zone = rel::TimeZone::Load(api.config.time_zone);
  if (!zone) return std::unexpected(zone.error());
  auto facts = api.store.Read([&](soci::session& sql) -> Result<rel::ReleaseReportFacts> {
    auto r = LoadRelease(sql, id, PlanOptions(api));
    if (!r) return std::unexpected(r.error());
    rel::ReleaseReportFacts f;
    f.release = std::move(*r);
    if (doc == "test-report") return f;
    auto status = RolloutStatus(sql, f.release, Now(api));
    if (!status) return std::unexpected(status.error());
    f.rollout = std::move(*status);
    f.incidents = ListIncidents(sql, id);
    UpgradeFilter filter;
    filter.release_id = id;
    filter.limit = 1'000'000;
    for (const UpgradeRecord& u : ListUpgradeRecords(sql, filter)) {
      f.upgrade_records.push_back(u.ToJson());
    }
    f.cmdb = ConfirmationOf(sql, id).ToJson();
    for (const BaselineRow& row : ListBaseline(sql, id)) {
      f.baseline.push_back(row.ToJson());
    }
    OutboxFilter outbox;
    outbox.release_id = id;
    outbox.limit = 1'000'000;
    for (const OutboxMessage& m : ListOutbox(sql, outbox)) {
      if (!m.connector.starts_with(kNoticeConnectorPrefix)) continue;
      const json payload = json::parse(m.payload, nullptr, false);
      f.notices.push_back(
          {{"subscription", m.connector.substr(kNoticeConnectorPrefix.size())},
           {"event", payload.is_object() ? payload.value("event", "") : std::string()},
           {"state", m.state},
           {"attempts", m.attempts},
           {"last_error", m.last_error}});
    }
    if (auto notes = GetReviewNotes(sql, id)) f.review_notes = notes->notes;
    return f;
  });
  if (!facts) return std::unexpected(facts.error());
  auto content = doc == "test-report" ? rel::RenderTestReport(facts->release, *format, *lang, *zone)
                                      : rel::RenderReleaseReport(*facts, *format, *lang, *zone);
  if (!content) return std::unexpected(content.error());
  return Response::Ok({{"id", id},
                       {"doc", doc},
                       {"format", ctx.Query("format").value_or("md")},
                       {"lang", rel::LangTag(*lang)},
                       {"content", *content}});
}

}  // namespace

void RegisterReleaseRoutes(Router& router, const ApiContext& api) {
  using R = Role;

  router.Add(
      Method::kPost, "/api/v1/releases",
      RouteOptions::ForRoles({R::kAdmin, R::kReleaseManager}, "creating a release"),
      [api](RequestContext& ctx) -> Result<Response> {
        auto plan = PlanFromBody(ctx, api);
        if (!plan) return std::unexpected(plan.error());
        auto created = api.store.Write(ctx.Origin(), [&](Transaction& tx) -> Result<rel::Release> {
          if (auto ok = CheckPackagesStored(tx.sql(), *plan); !ok) {
            return std::unexpected(ok.error());
          }
          auto r = rel::CreateRelease(NextReleaseId(tx.sql()), ActorOf(ctx), Now(api), *plan);
          if (!r) return r;
          InsertRelease(tx.sql(), *r);
          AuditEvent event("release.create", "release", r->id);
          event.release_id = r->id;
          event.after = rel::ReleaseToJson(*r);
          tx.Audit(event);
          return r;
        });
        if (!created) return std::unexpected(created.error());
        return Response::Created(rel::ReleaseToJson(*created));
      });

  router.Add(Method::kGet, "/api/v1/releases", RouteOptions::AnyUser(),
             [api](RequestContext& ctx) -> Result<Response> {
               ReleaseFilter filter;
               if (auto state = ctx.Query("state")) {
                 auto parsed = rel::ParseReleaseState(*state);
                 if (!parsed) return std::unexpected(parsed.error().WithContext("state"));
                 filter.state = *parsed;
               }
               filter.change_ref = ctx.Query("change");
               filter.product = ctx.Query("product");
               auto list =
                   api.store.Read([&](soci::session& sql) -> Result<std::vector<ReleaseSummary>> {
                     return ListReleases(sql, filter);
                   });
               if (!list) return std::unexpected(list.error());
               json items = json::array();
               for (const ReleaseSummary& s : *list) items.push_back(s.ToJson());
               return Response::Ok({{"releases", items}});
             });

  router.Add(Method::kGet, "/api/v1/releases/{id}", RouteOptions::AnyUser(),
             [api](RequestContext& ctx) -> Result<Response> {
               const std::string id = ctx.path_params.at("id");
               auto r = api.store.ReadCached([&](soci::session& sql, StatementCache& statements) {
                 return LoadRelease(sql, statements, id, PlanOptions(api));
               });
               if (!r) return std::unexpected(r.error());
               return Response::Ok(rel::ReleaseToJson(*r));
             });

  // Replaces the plan (fabu release update).
  router.Add(Method::kPost, "/api/v1/releases/{id}/plan",
             RouteOptions::ForRoles({R::kAdmin, R::kReleaseManager}, "updating a release"),
             [api](RequestContext& ctx) -> Result<Response> {
               auto plan = PlanFromBody(ctx, api);
               if (!plan) return std::unexpected(plan.error());
               return Mutate(api, ctx, "update", json::object(),
                             [&](soci::session& sql, const rel::Release& r, const rel::Actor& a,
                                 rel::Instant at) -> Result<rel::Release> {
                               if (auto ok = CheckPackagesStored(sql, *plan); !ok) {
                                 return std::unexpected(ok.error());
                               }
                               return rel::UpdateRelease(r, a, at, *plan);
                             });
             });

  router.Add(Method::kPost, "/api/v1/releases/{id}/submit",
             RouteOptions::ForRoles({R::kAdmin, R::kReleaseManager}, "submitting a release"),
             [api](RequestContext& ctx) -> Result<Response> {
               return Mutate(
                   api, ctx, "submit", json::object(),
                   [](soci::session& sql, const rel::Release& r, const rel::Actor& a,
                      rel::Instant at) -> Result<rel::Release> {
                     if (auto ok = CheckReviewers(sql, r.plan); !ok) {
                       return std::unexpected(ok.error());
                     }
                     if (auto ok = CheckPackagesStored(sql, r.plan); !ok) {
                       return std::unexpected(ok.error());
                     }
                     std::vector<rel::PackageIdentity> packages;
                     for (const std::string& package_id : r.plan.packages) {
                       auto p = FindPackage(sql, package_id);
                       if (!p) return std::unexpected(p.error());
                       packages.push_back({p->id, p->name, p->version});
                     }
                     return rel::SubmitRelease(r, a, at, LastReleasedVersion(sql, r.plan.product),
                                               packages);
                   },
                   /*ask_preflight=*/true);
             });

  router.Add(Method::kPost, "/api/v1/releases/{id}/approve",
             RouteOptions::ForRoles({R::kApprover}, "approving a release"),
             [api](RequestContext& ctx) -> Result<Response> {
               auto body = ctx.Json();
               if (!body) return std::unexpected(body.error());
               const std::string comment = CommentOf(*body);
               return Mutate(
                   api, ctx, "approve", {{"comment", comment}},
                   [&](soci::session&, const rel::Release& r, const rel::Actor& a,
                       rel::Instant at) { return rel::ApproveRelease(r, a, at, comment); });
             });

  router.Add(Method::kPost, "/api/v1/releases/{id}/reject",
             RouteOptions::ForRoles({R::kApprover}, "rejecting a release"),
             [api](RequestContext& ctx) -> Result<Response> {
               auto body = ctx.Json();
               if (!body) return std::unexpected(body.error());
               const std::string comment = CommentOf(*body);
               return Mutate(
                   api, ctx, "reject", {{"comment", comment}},
                   [&](soci::session&, const rel::Release& r, const rel::Actor& a,
                       rel::Instant at) { return rel::RejectRelease(r, a, at, comment); });
             });

  router.Add(
      Method::kPost, "/api/v1/releases/{id}/test-report",
      RouteOptions::ForRoles({R::kTester}, "filing a test report"),
      [api](RequestContext& ctx) -> Result<Response> {
        auto body = ctx.Json();
        if (!body) return std::unexpected(body.error());
        if (auto ok = CheckObject(
                *body, "",
                {{"result", JsonType::kString, true}, {"report", JsonType::kString, true}});
            !ok) {
          return std::unexpected(ok.error());
        }
        auto result = rel::ParseTestResult((*body)["result"].get<std::string>());
        if (!result) return std::unexpected(result.error().WithContext("result"));
        const std::string report = (*body)["report"].get<std::string>();
        return Mutate(
            api, ctx, "test-report",
            {{"result", rel::TestResultName(*result)},
             {"report_sha256", ObjectDigest(json(report))}},
            [&](soci::session& sql, const rel::Release& r, const rel::Actor& a, rel::Instant at) {
              return rel::FileTestReport(r, a, at, *result, report, TestRunOf(sql, r));
            });
      });

  router.Add(Method::kPost, "/api/v1/releases/{id}/accept",
             RouteOptions::ForRoles({R::kApprover}, "accepting a release"),
             [api](RequestContext& ctx) -> Result<Response> {
               auto body = ctx.Json();
               if (!body) return std::unexpected(body.error());
               if (auto ok = CheckObject(*body, "",
                                         {{"waive_test", JsonType::kBoolean, false},
                                          {"reason", JsonType::kString, false},
                                          {"comment", JsonType::kString, false}});
                   !ok) {
                 return std::unexpected(ok.error());
               }
               rel::AcceptOptions options;
               options.waive_test = body->value("waive_test", false);
               options.reason = body->value("reason", "");
               options.comment = body->value("comment", "");
               return Mutate(
                   api, ctx, "accept",
                   {{"waive_test", options.waive_test}, {"reason", options.reason}},
                   [&](soci::session&, const rel::Release& r, const rel::Actor& a,
                       rel::Instant at) { return rel::AcceptRelease(r, a, at, options); });
             });

  // Sets or replaces the go-live plan (fabu release schedule --file).
  router.Add(Method::kPost, "/api/v1/releases/{id}/golive",
             RouteOptions::ForRoles({R::kAdmin, R::kReleaseManager}, "setting a go-live plan"),
             [api](RequestContext& ctx) -> Result<Response> {
               auto body = ctx.Json();
               if (!body) return std::unexpected(body.error());
               auto golive = rel::GoLivePlanFromJson(*body, "golive");
               if (!golive) return std::unexpected(golive.error());
               return Mutate(api, ctx, "set-golive", json::object(),
                             [&](soci::session&, const rel::Release& r, const rel::Actor& a,
                                 rel::Instant at) { return rel::SetGoLive(r, a, at, *golive); });
             });

  router.Add(Method::kPost, "/api/v1/releases/{id}/approve-golive",
             RouteOptions::ForRoles({R::kApprover}, "approving a go-live plan"),
             [api](RequestContext& ctx) -> Result<Response> {
               auto body = ctx.Json();
               if (!body) return std::unexpected(body.error());
               const std::string comment = CommentOf(*body);
               return Mutate(
                   api, ctx, "approve-golive", {{"comment", comment}},
                   [&](soci::session&, const rel::Release& r, const rel::Actor& a,
                       rel::Instant at) { return rel::ApproveGoLive(r, a, at, comment); });
             });

  router.Add(Method::kPost, "/api/v1/releases/{id}/schedule",
             RouteOptions::ForRoles({R::kAdmin, R::kReleaseManager}, "scheduling a release"),
             [api](RequestContext& ctx) -> Result<Response> {
               return Mutate(
                   api, ctx, "schedule", json::object(),
                   [](soci::session&, const rel::Release& r, const rel::Actor& a, rel::Instant at) {
                     return rel::ScheduleRelease(r, a, at);
                   },
                   /*ask_preflight=*/true);
             });

  router.Add(Method::kPost, "/api/v1/releases/{id}/cancel",
             RouteOptions::ForRoles({R::kAdmin, R::kReleaseManager}, "cancelling a release"),
             [api](RequestContext& ctx) -> Result<Response> {
               auto body = ctx.Json();
               if (!body) return std::unexpected(body.error());
               auto reason = OptionalString(*body, "reason");
               if (!reason) return std::unexpected(reason.error());
               return Mutate(
                   api, ctx, "cancel", {{"reason", *reason}},
                   [&](soci::session&, const rel::Release& r, const rel::Actor& a,
                       rel::Instant at) { return rel::CancelRelease(r, a, at, *reason); });
             });

  // The release plan document (发布方案) as Markdown, HTML or JSON, in
  // lang=en|zh-CN; doc= the other records.
  router.Add(
      Method::kGet, "/api/v1/releases/{id}/export", RouteOptions::AnyUser(),
      [api](RequestContext& ctx) -> Result<Response> {
        const std::string id = ctx.path_params.at("id");
        const std::string doc = ctx.Query("doc").value_or("plan");
        if (doc == "upgrade-records") return ExportUpgradeRecordsOf(api, ctx);
        if (doc == "test-report" || doc == "release-report") {
          return ExportRecordOf(api, ctx, doc);
        }
        if (doc != "plan") {
          return Fail(ErrorCode::kInvalidArgument,
                      fmt::format("doc: \"{}\" is not a document fabu exports "
                                  "(available: plan, test-report, release-report, "
                                  "upgrade-records)",
                                  doc));
        }
        auto format = rel::ParseExportFormat(ctx.Query("format").value_or("md"));
        if (!format) return std::unexpected(format.error().WithContext("format"));
        auto lang = rel::ParseLang(ctx.Query("lang").value_or("en"));
        if (!lang) return std::unexpected(lang.error());
        struct Loaded {
          rel::Release release;
          rel::PackageCatalog catalog;
          json preflight;
        };
        auto loaded = api.store.Read([&](soci::session& sql) -> Result<Loaded> {
          auto r = LoadRelease(sql, id, PlanOptions(api));
          if (!r) return std::unexpected(r.error());
          Loaded out{std::move(*r), {}, PreflightStatus(sql, id, api.store.clock().Seconds())};
          for (const std::string& package_id : out.release.plan.packages) {
            auto p = FindPackage(sql, package_id);
            if (p) out.catalog[package_id] = {p->name, p->version, p->size};
          }
          return out;
        });
        if (!loaded) return std::unexpected(loaded.error());
        return Response::Ok({{"id", id},
                             {"doc", doc},
                             {"format", ctx.Query("format").value_or("md")},
                             {"lang", rel::LangTag(*lang)},
                             {"content", rel::ExportPlan(loaded->release, *format, loaded->catalog,
                                                         *lang, loaded->preflight)}});
      });
}

}  // namespace fabu::coordinator
