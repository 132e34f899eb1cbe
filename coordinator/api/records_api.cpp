// The records: /api/v1/reports (the period report and its KPIs),
// /api/v1/incidents (§6.2.10), and a release's review notes. Reports are
// computed on each request from the store (release records, incidents,
// review notes) in the coordinator's configured time zone.
#include <fmt/format.h>

#include <chrono>

#include "coordinator/api/api_context.hpp"
#include "coordinator/common/json_input.hpp"
#include "coordinator/records/records_store.hpp"
#include "coordinator/release/kpi.hpp"
#include "coordinator/release/report_export.hpp"

namespace fabu::coordinator {
namespace {

using nlohmann::json;
namespace rel = release;

// The period of ?month=YYYY-MM or ?from=DATE&to=DATE (one of the two).
Result<rel::Period> PeriodOf(const RequestContext& ctx, const rel::TimeZone& zone) {
  auto month = ctx.Query("month");
  auto from = ctx.Query("from");
  auto to = ctx.Query("to");
  if (month && (from || to)) {
    return Fail(ErrorCode::kInvalidArgument,
                "month: give either month=YYYY-MM or from=DATE&to=DATE, not both");
  }
  if (month) return rel::MonthPeriod(*month, zone);
  if (!from || !to) {
    return Fail(ErrorCode::kInvalidArgument,
                "month: missing; give month=YYYY-MM, or from=YYYY-MM-DD and to=YYYY-MM-DD "
                "(to excluded)");
  }
  return rel::DatePeriod(*from, *to, zone);
}

Result<std::string> StringField(const json& body, const char* name) {
  return body.contains(name) && body[name].is_string() ? body[name].get<std::string>()
                                                       : std::string();
}

}  // namespace

void RegisterRecordsRoutes(Router& router, const ApiContext& api) {
  using R = Role;

  // The period report: JSON by default; with format=csv|md|html the rendered
  // document in {"content": ...} (lang=en|zh-CN).
  router.Add(Method::kGet, "/api/v1/reports", RouteOptions::AnyUser(),
             [api](RequestContext& ctx) -> Result<Response> {
               auto zone = rel::TimeZone::Load(api.config.time_zone);
               if (!zone) return std::unexpected(zone.error());
               auto period = PeriodOf(ctx, *zone);
               if (!period) return std::unexpected(period.error());
               auto format = rel::ParseRecordFormat(ctx.Query("format").value_or("json"));
               if (!format) return std::unexpected(format.error());
               auto lang = rel::ParseLang(ctx.Query("lang").value_or("en"));
               if (!lang) return std::unexpected(lang.error());
               std::vector<std::string> unreadable;
               auto inputs = api.store.Read([&](soci::session& sql) -> Result<rel::ReportInputs> {
                 return LoadReportInputs(sql, PlanOptions(api), &unreadable);
               });
               if (!inputs) return std::unexpected(inputs.error());
               if (!unreadable.empty()) {
                 // A report that silently left a release out would not be true.
                 return Fail(ErrorCode::kIntegrity,
                             fmt::format("cannot report: {} release record(s) unreadable: {}",
                                         unreadable.size(), unreadable.front()));
               }
               const rel::PeriodReport report = rel::ComputeReport(*inputs, *period, *zone);
               if (*format == rel::RecordFormat::kJson) {
                 return Response::Ok(rel::ReportToJson(report));
               }
               return Response::Ok({{"period", report.period.label},
                                    {"format", ctx.Query("format").value_or("json")},
                                    {"lang", rel::LangTag(*lang)},
                                    {"content", rel::RenderReport(report, *format, *lang, *zone)}});
             });

  router.Add(Method::kGet, "/api/v1/incidents", RouteOptions::AnyUser(),
             [api](RequestContext& ctx) -> Result<Response> {
               auto list = api.store.Read(
                   [&](soci::session& sql) -> Result<std::vector<rel::IncidentRecord>> {
                     return ListIncidents(sql, ctx.Query("release"));
                   });
               if (!list) return std::unexpected(list.error());
               json items = json::array();
               for (const auto& i : *list) items.push_back(i.ToJson());
               return Response::Ok({{"incidents", items}});
             });

  router.Add(Method::kPost, "/api/v1/incidents",
             RouteOptions::ForRoles({R::kAdmin, R::kReleaseManager, R::kApprover, R::kTester},
                                    "recording an incident"),
             [api](RequestContext& ctx) -> Result<Response> {
               auto body = ctx.Json();
               if (!body) return std::unexpected(body.error());
               if (auto ok = CheckObject(*body, "",
                                         {{"release", JsonType::kString, true},
                                          {"severity", JsonType::kString, true},
                                          {"summary", JsonType::kString, true},
                                          {"host", JsonType::kString, false}});
                   !ok) {
                 return std::unexpected(ok.error());
               }
               const std::string release_id = (*body)["release"].get<std::string>();
               const std::string severity = (*body)["severity"].get<std::string>();
               const std::string summary = (*body)["summary"].get<std::string>();
               const std::string host = *StringField(*body, "host");
               auto added = api.store.Write(
                   ctx.Origin(), [&](Transaction& tx) -> Result<rel::IncidentRecord> {
                     return AddIncident(tx, release_id, host, severity, summary, Now(api));
                   });
               if (!added) return std::unexpected(added.error());
               return Response::Created(added->ToJson());
             });

  router.Add(
      Method::kPost, "/api/v1/incidents/{id}/close",
      RouteOptions::ForRoles({R::kAdmin, R::kReleaseManager, R::kApprover}, "closing an incident"),
      [api](RequestContext& ctx) -> Result<Response> {
        const std::string id = ctx.path_params.at("id");
        auto closed =
            api.store.Write(ctx.Origin(), [&](Transaction& tx) -> Result<rel::IncidentRecord> {
              return CloseIncident(tx, id, Now(api));
            });
        if (!closed) return std::unexpected(closed.error());
        return Response::Ok(closed->ToJson());
      });

  router.Add(
      Method::kPost, "/api/v1/releases/{id}/review-notes",
      RouteOptions::ForRoles({R::kAdmin, R::kReleaseManager, R::kApprover}, "writing review notes"),
      [api](RequestContext& ctx) -> Result<Response> {
        const std::string id = ctx.path_params.at("id");
        auto body = ctx.Json();
        if (!body) return std::unexpected(body.error());
        if (auto ok = CheckObject(*body, "", {{"notes", JsonType::kString, true}}); !ok) {
          return std::unexpected(ok.error());
        }
        const std::string notes = (*body)["notes"].get<std::string>();
        auto saved = api.store.Write(
            ctx.Origin(), [&](Transaction& tx) { return SetReviewNotes(tx, id, notes, Now(api)); });
        if (!saved) return std::unexpected(saved.error());
        return Response::Ok({{"release", saved->release_id},
                             {"notes", saved->notes},
                             {"updated_utc", rel::FormatRfc3339Utc(saved->updated)},
                             {"updated_by", saved->updated_by}});
      });
}

}  // namespace fabu::coordinator
