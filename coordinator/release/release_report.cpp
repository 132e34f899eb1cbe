#include "coordinator/release/release_report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <optional>
#include <tuple>

#include "coordinator/release/metric_check.hpp"
#include "coordinator/release/plan_export.hpp"

namespace fabu::coordinator::release {
namespace {

using nlohmann::json;
using Rows = std::vector<std::vector<std::string>>;

std::string L(Lang lang, std::string_view key) { return std::string(Label(lang, key)); }

std::string Str(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key)) return "";
  const json& v = j[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  return v.dump();
}

// A document written once and rendered as Markdown or HTML.
class Doc {
 public:
  Doc(RecordFormat format, Lang lang) : md_(format == RecordFormat::kMarkdown), lang_(lang) {}
  void Begin(const std::string& title) {
    out_ += md_ ? fmt::format("# {}\n\n", MdCell(title)) : HtmlBegin(lang_, title);
  }
  void Heading(const std::string& key, std::string_view id) {
    out_ += md_ ? fmt::format("## {}\n\n", L(lang_, key))
                : fmt::format("<h2 id=\"{}\">{}</h2>\n", id, EscapeHtml(L(lang_, key)));
  }
  void Para(const std::string& text) {
    out_ += md_ ? text + "\n\n" : "<p>" + EscapeHtml(text) + "</p>\n";
  }
  void Block(const std::string& text) {
    if (text.empty()) return Para("—");
    if (md_) {
      std::string quoted;
      std::size_t start = 0;
      while (start <= text.size()) {
        const std::size_t end = text.find('\n', start);
        quoted += "> " + text.substr(start, end == std::string::npos ? end : end - start) + "\n";
        if (end == std::string::npos) break;
        start = end + 1;
      }
      out_ += quoted + "\n";
    } else {
      out_ += "<pre>" + EscapeHtml(text) + "</pre>\n";
    }
  }
  void Table(const std::vector<std::string>& header, const Rows& rows) {
    if (rows.empty()) return Para(L(lang_, "none"));
    out_ += md_ ? MdTable(header, rows) : HtmlTable(header, rows);
  }
  void Raw(const std::string& html) {
    if (!md_) out_ += html;
  }
  std::string Finish() { return md_ ? out_ : out_ + HtmlEnd(); }

 private:
  bool md_;
  Lang lang_;
  std::string out_;
};

std::string Headline(const Release& r) {
  return fmt::format("{} {} — {} {}", r.id, r.plan.title, r.plan.product,
                     r.plan.version.ToString());
}

Rows Summary(const Release& r, Lang lang, const TimeZone& zone) {
  Rows rows = {{L(lang, "release"), r.id},
               {L(lang, "title"), r.plan.title},
               {L(lang, "product"), r.plan.product},
               {L(lang, "version"), r.plan.version.ToString()},
               {L(lang, "category"), Term(lang, TermKind::kCategory, r.plan.category)},
               {L(lang, "owner"), r.owner},
               {L(lang, "state"), Term(lang, TermKind::kState, ReleaseStateName(r.state))},
               {L(lang, "time_zone"), zone.name()}};
  if (auto window = r.ActiveWindow()) {
    rows.push_back({L(lang, "window"), zone.FormatLocal(window->start.seconds) + " — " +
                                           zone.FormatLocal(window->end.seconds)});
  }
  return rows;
}

}  // namespace

json ReleaseReportJson(const ReleaseReportFacts& f, const TimeZone& zone) {
  const Release& r = f.release;
  json timeline = json::array();
  for (const HistoryEntry& e : r.history) {
    timeline.push_back({{"at_utc", FormatRfc3339Utc(e.at)},
                        {"at_local", zone.FormatLocal(e.at)},
                        {"action", ActionName(e.action)},
                        {"actor", e.actor},
                        {"role", RoleName(e.role)},
                        {"from", ReleaseStateName(e.from)},
                        {"to", ReleaseStateName(e.to)},
                        {"note", e.note}});
  }
  json incidents = json::array();
  for (const IncidentRecord& i : f.incidents) incidents.push_back(i.ToJson());
  json rollbacks = json::array();
  for (const HistoryEntry& e : r.history) {
    if (e.action == Action::kRollback || e.action == Action::kFinishRollback) {
      rollbacks.push_back({{"at_utc", FormatRfc3339Utc(e.at)},
                           {"action", ActionName(e.action)},
                           {"actor", e.actor},
                           {"note", e.note}});
    }
  }
  json closure = nullptr;
  if (r.closure) {
    closure = {{"by", r.closure->by},
               {"at_utc", FormatRfc3339Utc(r.closure->at)},
               {"notes", r.closure->notes},
               {"finished_in_window", r.closure->finished_in_window},
               {"cmdb", r.closure->cmdb}};
  }
  return {{"doc", "release-report"},
          {"release", r.id},
          {"title", r.plan.title},
          {"product", r.plan.product},
          {"version", r.plan.version.ToString()},
          {"category", r.plan.category},
          {"owner", r.owner},
          {"state", ReleaseStateName(r.state)},
          {"close_code", r.close_code ? json(CloseCodeName(*r.close_code)) : json(nullptr)},
          {"time_zone", zone.name()},
          {"timeline", timeline},
          {"rollout", f.rollout.value("rollout", json(nullptr))},
          {"waves", f.rollout.value("waves", json::array())},
          {"checks", f.rollout.value("checks", json::array())},
          {"measurements", f.rollout.value("measurements", json::array())},
          {"hosts", f.rollout.value("hosts", json::array())},
          {"incidents", incidents},
          {"rollbacks", rollbacks},
          {"cmdb",
           {{"confirmation", f.cmdb},
            {"upgrade_records", f.upgrade_records},
            {"baseline", f.baseline}}},
          {"notices", f.notices},
          {"closure", closure},
          {"review_notes", f.review_notes}};
}

namespace {}  // namespace

std::vector<BaselinePair> PairBaseline(const json& baseline) {
  std::map<std::string, std::map<std::string, std::pair<std::string, std::string>>> hosts;
  for (const json& row : baseline) {
    const std::string phase = Str(row, "phase");
    if (phase != "before" && phase != "after") continue;
    auto& apps = hosts[Str(row, "host")];
    const std::string app = Str(row, "app");
    if (app.empty()) continue;
    (phase == "before" ? apps[app].first : apps[app].second) = Str(row, "version");
  }
  std::vector<BaselinePair> rows;
  for (const auto& [host, apps] : hosts) {
    if (apps.empty()) rows.push_back({host, "", "", ""});
    for (const auto& [app, versions] : apps) {
      rows.push_back({host, app, versions.first, versions.second});
    }
  }
  return rows;
}

std::vector<BaselineOutside> OutsideBaseline(const json& baseline) {
  std::vector<BaselineOutside> rows;
  for (const json& row : baseline) {
    if (Str(row, "phase") != "outside") continue;
    rows.push_back({Str(row, "host"), Str(row, "app"), Str(row, "version")});
  }
  std::sort(rows.begin(), rows.end(), [](const BaselineOutside& a, const BaselineOutside& b) {
    return std::tie(a.host, a.app) < std::tie(b.host, b.app);
  });
  return rows;
}

std::vector<BaselineNotOnVersion> NotOnVersionBaseline(const json& baseline, std::string_view app) {
  std::map<std::string, BaselineNotOnVersion> hosts;
  for (const json& row : baseline) {
    const std::string phase = Str(row, "phase");
    if ((phase != "after" && phase != "outside") || Str(row, "reason").empty()) continue;
    BaselineNotOnVersion& entry = hosts[Str(row, "host")];
    entry.host = Str(row, "host");
    entry.reason = Str(row, "reason");
    if (Str(row, "app") == app) entry.version = Str(row, "version");
  }
  std::vector<BaselineNotOnVersion> rows;
  for (auto& [host, entry] : hosts) rows.push_back(std::move(entry));
  return rows;
}

Result<std::string> RenderReleaseReport(const ReleaseReportFacts& f, RecordFormat format, Lang lang,
                                        const TimeZone& zone) {
  if (format == RecordFormat::kJson) return ReleaseReportJson(f, zone).dump(2) + "\n";
  if (format == RecordFormat::kCsv) {
    return Fail(ErrorCode::kInvalidArgument,
                "format: the release report is md, html or json (csv is for upgrade-records)");
  }
  const Release& r = f.release;
  Doc doc(format, lang);
  doc.Begin(fmt::format("{} — {}", L(lang, "doc.release_report"), Headline(r)));
  doc.Table({L(lang, "metric"), L(lang, "value")}, Summary(r, lang, zone));

  doc.Heading("timeline", "timeline");
  Rows timeline;
  for (const HistoryEntry& e : r.history) {
    timeline.push_back({zone.FormatLocal(e.at), Term(lang, TermKind::kAction, ActionName(e.action)),
                        e.actor, Term(lang, TermKind::kRole, RoleName(e.role)),
                        Term(lang, TermKind::kState, ReleaseStateName(e.from)),
                        Term(lang, TermKind::kState, ReleaseStateName(e.to)), e.note});
  }
  doc.Table({L(lang, "time"), L(lang, "action"), L(lang, "actor"), L(lang, "role"), L(lang, "from"),
             L(lang, "to"), L(lang, "note")},
            timeline);

  doc.Heading("waves", "waves");
  const json waves = f.rollout.value("waves", json::array());
  std::vector<Bar> bars;
  Rows wave_rows;
  for (const json& w : waves) {
    const std::string name = fmt::format("{} {}", L(lang, "wave"), Str(w, "wave"));
    const double hosts = w.value("hosts", 0.0);
    const double succeeded = w.value("succeeded", 0.0);
    bars.push_back({name, hosts > 0 ? succeeded / hosts * 100.0 : 0.0,
                    fmt::format("{}/{}", Str(w, "succeeded"), Str(w, "hosts"))});
    wave_rows.push_back({Str(w, "wave"), Str(w, "hosts"), Str(w, "threshold"),
                         Term(lang, TermKind::kWaveState, Str(w, "state")), Str(w, "succeeded"),
                         Str(w, "failed")});
  }
  doc.Raw(SvgBarChart("chart-waves", L(lang, "progress"), bars));
  doc.Table({L(lang, "wave"), L(lang, "hosts"), L(lang, "threshold"), L(lang, "state"),
             L(lang, "succeeded"), L(lang, "failed")},
            wave_rows);

  // The go-live plan's checks on metrics: each with its values as a chart
  // (HTML) and a table, every measurement of every wave.
  if (const json checks = f.rollout.value("checks", json::array()); !checks.empty()) {
    doc.Heading("checks", "checks");
    const json measurements = f.rollout.value("measurements", json::array());
    for (const json& c : checks) {
      const std::string name = Str(c, "name");
      doc.Para(fmt::format("{}: {} {} ({} × {}){}", name, Str(c, "type"), Str(c, "condition"),
                           Str(c, "count"), Str(c, "interval"),
                           c.value("dry_run", false) ? "; " + L(lang, "dry_run") : ""));
      std::vector<CheckPoint> points;
      Rows rows;
      std::map<std::string, int> per_wave;
      for (const json& m : measurements) {
        if (Str(m, "check") != name) continue;
        const std::string wave = Str(m, "wave");
        const std::string outcome = Str(m, "outcome");
        std::optional<double> value;
        if (m.contains("value") && m["value"].is_number()) value = m["value"].get<double>();
        points.push_back({fmt::format("{} {} #{}", L(lang, "wave"), wave, ++per_wave[wave]), value,
                          outcome == "pass"});
        const auto at = ParseRfc3339(Str(m, "at"));
        rows.push_back({wave, at ? zone.FormatLocal(at->seconds) : Str(m, "at"), outcome,
                        value ? fmt::format("{:.6g}", *value) : std::string(), Str(m, "detail")});
      }
      const std::string bound_text = Str(c, "condition");
      double bound = 0;
      if (auto condition = ParseCheckCondition(bound_text)) bound = condition->bound;
      doc.Raw(SvgCheckChart("chart-check-" + name, name + " " + bound_text, points, bound));
      doc.Table({L(lang, "wave"), L(lang, "time"), L(lang, "result"), L(lang, "value"),
                 L(lang, "detail")},
                rows);
    }
  }

  doc.Heading("host_results", "hosts");
  Rows host_rows;
  for (const json& h : f.rollout.value("hosts", json::array())) {
    // A moved host that was rolled back: how its rollback ended, in a
    // column of its own.
    std::string rollback;
    if (h.contains("rollback")) {
      const std::string result = Str(h["rollback"], "result");
      rollback = result.empty() ? L(lang, "in_flight") : Term(lang, TermKind::kResult, result);
    }
    const std::string result = Str(h, "result");
    host_rows.push_back({Str(h, "host"), Str(h, "wave"), Str(h, "step"),
                         Term(lang, TermKind::kResult, result), rollback, Str(h, "message"),
                         OutputExcerpt(Str(h, "output"))});
  }
  doc.Table({L(lang, "host"), L(lang, "wave"), L(lang, "step"), L(lang, "result"),
             L(lang, "rollback"), L(lang, "message"), L(lang, "output")},
            host_rows);

  doc.Heading("incidents", "incidents");
  Rows incident_rows;
  for (const IncidentRecord& i : f.incidents) {
    incident_rows.push_back(
        {i.id, i.severity, i.host, i.summary, Term(lang, TermKind::kIncidentSource, i.source),
         Term(lang, TermKind::kIncidentState, i.state), zone.FormatLocal(i.created)});
  }
  doc.Table({L(lang, "incident"), L(lang, "severity"), L(lang, "host"), L(lang, "summary"),
             L(lang, "source"), L(lang, "state"), L(lang, "opened")},
            incident_rows);

  doc.Heading("rollbacks", "rollbacks");
  Rows rollback_rows;
  for (const HistoryEntry& e : r.history) {
    if (e.action == Action::kRollback || e.action == Action::kFinishRollback) {
      rollback_rows.push_back({zone.FormatLocal(e.at),
                               Term(lang, TermKind::kAction, ActionName(e.action)), e.actor,
                               e.note});
    }
  }
  doc.Table({L(lang, "time"), L(lang, "action"), L(lang, "actor"), L(lang, "note")}, rollback_rows);

  doc.Heading("cmdb", "cmdb");
  doc.Table({L(lang, "records"), L(lang, "pending"), L(lang, "failing"), L(lang, "delivered"),
             L(lang, "waived"), L(lang, "confirmed")},
            {{Str(f.cmdb, "records"), Str(f.cmdb, "pending"), Str(f.cmdb, "failing"),
              Str(f.cmdb, "delivered"), Str(f.cmdb, "waived"),
              L(lang, f.cmdb.value("confirmed", false) ? "yes" : "no")}});
  Rows records;
  for (const json& u : f.upgrade_records) {
    records.push_back({Str(u, "host"), Str(u, "package"), Str(u, "from_version"),
                       Str(u, "to_version"), Term(lang, TermKind::kRecordKind, Str(u, "kind")),
                       Term(lang, TermKind::kResult, Str(u, "result"))});
  }
  doc.Table({L(lang, "host"), L(lang, "package"), L(lang, "from_version"), L(lang, "to_version"),
             L(lang, "kind"), L(lang, "result")},
            records);

  doc.Heading("baseline", "baseline");
  doc.Table(
      {L(lang, "host"), L(lang, "app"), L(lang, "baseline_before"), L(lang, "baseline_after")},
      [&f] {
        Rows rows;
        for (const BaselinePair& b : PairBaseline(f.baseline)) {
          rows.push_back({b.host, b.app, b.before, b.after});
        }
        return rows;
      }());
  if (const auto outside = OutsideBaseline(f.baseline); !outside.empty()) {
    doc.Para(L(lang, "baseline_outside"));
    Rows rows;
    for (const BaselineOutside& o : outside) rows.push_back({o.host, o.app, o.version});
    doc.Table({L(lang, "host"), L(lang, "app"), L(lang, "baseline_after")}, rows);
  }

  if (const auto off = NotOnVersionBaseline(f.baseline, f.release.plan.product); !off.empty()) {
    doc.Para(L(lang, "baseline_not_on_version"));
    Rows rows;
    for (const BaselineNotOnVersion& o : off) rows.push_back({o.host, o.version, o.reason});
    doc.Table({L(lang, "host"), L(lang, "baseline_after"), L(lang, "note")}, rows);
  }

  doc.Heading("notices", "notices");
  Rows notice_rows;
  std::size_t given_up = 0;
  for (const json& n : f.notices) {
    const std::string state = Str(n, "state");
    if (state == "given_up") ++given_up;
    notice_rows.push_back({Str(n, "subscription"), Term(lang, TermKind::kEvent, Str(n, "event")),
                           Term(lang, TermKind::kDelivery, state), Str(n, "attempts"),
                           Str(n, "last_error")});
  }
  if (given_up > 0) {
    doc.Para(fmt::format("⚠ {}: {}", L(lang, "notices_given_up"), given_up));
  }
  doc.Table({L(lang, "subscription"), L(lang, "event"), L(lang, "state"), L(lang, "attempts"),
             L(lang, "last_error")},
            notice_rows);

  doc.Heading("closure", "closure");
  if (r.closure) {
    doc.Table({L(lang, "metric"), L(lang, "value")},
              {{L(lang, "close_code"),
                r.close_code ? Term(lang, TermKind::kCloseCode, CloseCodeName(*r.close_code)) : ""},
               {L(lang, "closed_at"), zone.FormatLocal(r.closure->at)},
               {L(lang, "closed_by"), r.closure->by},
               {L(lang, "in_window"), L(lang, r.closure->finished_in_window ? "yes" : "no")},
               {L(lang, "cmdb"), r.closure->cmdb}});
    doc.Block(r.closure->notes);
  } else {
    doc.Para(L(lang, "not_closed"));
  }
  doc.Heading("review_notes", "review-notes");
  doc.Block(f.review_notes);
  return doc.Finish();
}

json TestReportJson(const Release& r) {
  json reports = json::array();
  for (const TestReport& t : r.test_reports) {
    reports.push_back(
        {{"result", TestResultName(t.result)},
         {"author", t.author},
         {"at_utc", FormatRfc3339Utc(t.at)},
         {"round", t.round},
         {"test_deployed_at_utc",
          t.test_deployed_at == 0 ? json(nullptr) : json(FormatRfc3339Utc(t.test_deployed_at))},
         {"deployments", t.deployments},
         {"text", t.text}});
  }
  json acceptance = nullptr;
  if (r.acceptance) {
    acceptance = {{"by", r.acceptance->by},
                  {"at_utc", FormatRfc3339Utc(r.acceptance->at)},
                  {"test_waived", r.acceptance->test_waived},
                  {"waive_reason", r.acceptance->waive_reason},
                  {"comment", r.acceptance->comment}};
  }
  return {{"doc", "test-report"},
          {"release", r.id},
          {"title", r.plan.title},
          {"product", r.plan.product},
          {"version", r.plan.version.ToString()},
          {"test_waived_ever", r.test_waived_ever},
          {"test_reports", reports},
          {"acceptance", acceptance}};
}

Result<std::string> RenderTestReport(const Release& r, RecordFormat format, Lang lang,
                                     const TimeZone& zone) {
  if (format == RecordFormat::kJson) return TestReportJson(r).dump(2) + "\n";
  if (format == RecordFormat::kCsv) {
    return Fail(ErrorCode::kInvalidArgument,
                "format: the test report is md, html or json (csv is for upgrade-records)");
  }
  Doc doc(format, lang);
  doc.Begin(fmt::format("{} — {}", L(lang, "doc.test_report"), Headline(r)));
  doc.Table({L(lang, "metric"), L(lang, "value")}, Summary(r, lang, zone));
  doc.Heading("tests", "tests");
  if (r.test_reports.empty()) doc.Para(L(lang, "none"));
  for (const TestReport& t : r.test_reports) {
    std::string tested = "—";
    if (!t.deployments.empty()) {
      tested = zone.FormatLocal(t.test_deployed_at) + ":";
      for (const std::string& d : t.deployments) tested += " " + d;
    }
    doc.Table({L(lang, "result"), L(lang, "author"), L(lang, "time"), L(lang, "round"),
               L(lang, "test_deployment")},
              {{Term(lang, TermKind::kTestResult, TestResultName(t.result)), t.author,
                zone.FormatLocal(t.at), std::to_string(t.round), tested}});
    doc.Block(t.text);
  }
  doc.Heading("acceptance", "acceptance");
  if (r.acceptance) {
    Rows rows = {{L(lang, "accepted_by"), r.acceptance->by},
                 {L(lang, "time"), zone.FormatLocal(r.acceptance->at)},
                 {L(lang, "comment"), r.acceptance->comment}};
    if (r.acceptance->test_waived) {
      rows.push_back({L(lang, "waive_reason"), "⚠ " + r.acceptance->waive_reason});
    }
    doc.Table({L(lang, "metric"), L(lang, "value")}, rows);
  } else {
    doc.Para(L(lang, "none"));
  }
  return doc.Finish();
}

}  // namespace fabu::coordinator::release
