// Reading a Release back from the JSON that ReleaseToJson wrote (the store
// keeps releases in that form). The input is our own record, so anything
// missing or mistyped means a damaged store: kIntegrity, naming the field.
#include <fmt/format.h>

#include "coordinator/release/workflow.hpp"

namespace fabu::coordinator::release {
namespace {

using nlohmann::json;

// nlohmann throws on a missing key or a wrong type; ReleaseFromJson turns
// that into one error at its boundary.
UnixSeconds TimeOf(const json& value) { return value.at("unix").get<UnixSeconds>(); }

template <typename T>
T Must(Result<T> result, std::string_view field) {
  if (!result) throw std::runtime_error(fmt::format("{}: {}", field, result.error().message()));
  return std::move(*result);
}

Decision DecisionOf(const std::string& text) {
  if (text == DecisionName(Decision::kApproved)) return Decision::kApproved;
  if (text == DecisionName(Decision::kRejected)) return Decision::kRejected;
  throw std::runtime_error("decision: unknown value " + text);
}

Action ActionOf(const std::string& text) {
  for (const TransitionRule& rule : TransitionTable()) {
    if (ActionName(rule.action) == text) return rule.action;
  }
  throw std::runtime_error("action: unknown value " + text);
}

ReviewDecision DecisionFrom(const json& j) {
  ReviewDecision d;
  d.reviewer = j.at("reviewer").get<std::string>();
  d.decision = DecisionOf(j.at("decision").get<std::string>());
  d.at = TimeOf(j.at("at"));
  d.comment = j.at("comment").get<std::string>();
  d.round = j.at("round").get<int>();
  return d;
}

}  // namespace

Result<Release> ReleaseFromJson(const json& j, const PlanParseOptions& options) {
  try {
    Release r;
    r.id = j.at("id").get<std::string>();
    r.owner = j.at("owner").get<std::string>();
    r.state = Must(ParseReleaseState(j.at("state").get<std::string>()), "state");
    if (!j.at("close_code").is_null()) {
      r.close_code = Must(ParseCloseCode(j.at("close_code").get<std::string>()), "close_code");
    }
    r.plan = Must(ReleasePlanFromJson(j.at("plan"), options), "plan");
    r.created_at = TimeOf(j.at("created_at"));
    r.updated_at = TimeOf(j.at("updated_at"));
    r.review_round = j.at("review_round").get<int>();
    for (const json& d : j.at("approvals")) r.approvals.push_back(DecisionFrom(d));
    for (const json& d : j.at("rejections")) r.rejections.push_back(DecisionFrom(d));
    for (const json& t : j.at("test_reports")) {
      TestReport report;
      report.result = Must(ParseTestResult(t.at("result").get<std::string>()), "result");
      report.author = t.at("author").get<std::string>();
      report.at = TimeOf(t.at("at"));
      report.text = t.at("text").get<std::string>();
      report.round = t.at("round").get<int>();
      // Absent in reports filed before test reports named their deployment.
      if (auto it = t.find("test_deployed_at"); it != t.end())
        report.test_deployed_at = TimeOf(*it);
      if (auto it = t.find("deployments"); it != t.end()) {
        report.deployments = it->get<std::vector<std::string>>();
      }
      r.test_reports.push_back(std::move(report));
    }
    r.test_waived_ever = j.at("test_waived_ever").get<bool>();
    r.frozen_content_digest = j.at("frozen_content_digest").get<std::string>();
    r.golive_approved = j.at("golive_approved").get<bool>();
    r.approved_golive_digest = j.at("approved_golive_digest").get<std::string>();
    for (const json& h : j.at("history")) {
      HistoryEntry entry;
      entry.action = ActionOf(h.at("action").get<std::string>());
      entry.actor = h.at("actor").get<std::string>();
      entry.role = Must(ParseRole(h.at("role").get<std::string>()), "role");
      entry.at = TimeOf(h.at("at"));
      entry.from = Must(ParseReleaseState(h.at("from").get<std::string>()), "from");
      entry.to = Must(ParseReleaseState(h.at("to").get<std::string>()), "to");
      entry.note = h.at("note").get<std::string>();
      entry.at_ms = h.value("at_ms", std::int64_t{0});
      r.history.push_back(std::move(entry));
    }
    if (const json& a = j.at("acceptance"); !a.is_null()) {
      Acceptance acceptance;
      acceptance.by = a.at("by").get<std::string>();
      acceptance.at = TimeOf(a.at("at"));
      acceptance.test_waived = a.at("test_waived").get<bool>();
      acceptance.waive_reason = a.at("waive_reason").get<std::string>();
      acceptance.comment = a.at("comment").get<std::string>();
      r.acceptance = std::move(acceptance);
    }
    if (const json& g = j.at("golive_approval"); !g.is_null()) {
      GoLiveApproval approval;
      approval.by = g.at("by").get<std::string>();
      approval.at = TimeOf(g.at("at"));
      approval.comment = g.at("comment").get<std::string>();
      approval.digest = g.at("digest").get<std::string>();
      r.golive_approval = std::move(approval);
    }
    // Fields added with the rollout engine: absent from records written before it.
    if (j.contains("rollout_window") && !j.at("rollout_window").is_null()) {
      const json& w = j.at("rollout_window");
      MaintenanceWindow window;
      window.start = Must(ParseRfc3339(w.at("start").get<std::string>()), "rollout_window.start");
      window.end = Must(ParseRfc3339(w.at("end").get<std::string>()), "rollout_window.end");
      r.rollout_window = std::move(window);
    }
    if (j.contains("freeze_override") && !j.at("freeze_override").is_null()) {
      const json& f = j.at("freeze_override");
      r.freeze_override = FreezeOverride{f.at("by").get<std::string>(), TimeOf(f.at("at")),
                                         f.at("reason").get<std::string>()};
    }
    if (j.contains("rollout_finished_at") && !j.at("rollout_finished_at").is_null()) {
      r.rollout_finished_at = TimeOf(j.at("rollout_finished_at"));
    }
    if (j.contains("closure") && !j.at("closure").is_null()) {
      const json& c = j.at("closure");
      Closure closure;
      closure.by = c.at("by").get<std::string>();
      closure.at = TimeOf(c.at("at"));
      closure.notes = c.at("notes").get<std::string>();
      closure.finished_in_window = c.at("finished_in_window").get<bool>();
      closure.cmdb = c.at("cmdb").get<std::string>();
      r.closure = std::move(closure);
    }
    return r;
  } catch (const std::exception& e) {
    return std::unexpected(
        ErrorFromException(e, ErrorCode::kIntegrity, "stored release record is damaged"));
  }
}

// ---- writing ----------------------------------------------------------------

using nlohmann::json;

namespace {

json TimeJson(UnixSeconds at) { return json{{"unix", at}, {"utc", FormatRfc3339Utc(at)}}; }

json DecisionJson(const ReviewDecision& decision) {
  return json{{"reviewer", decision.reviewer},
              {"decision", DecisionName(decision.decision)},
              {"at", TimeJson(decision.at)},
              {"comment", decision.comment},
              {"round", decision.round}};
}

}  // namespace

json ReleaseToJson(const Release& release) {
  json approvals = json::array();
  for (const auto& approval : release.approvals) approvals.push_back(DecisionJson(approval));
  json rejections = json::array();
  for (const auto& rejection : release.rejections) rejections.push_back(DecisionJson(rejection));
  json reports = json::array();
  for (const TestReport& report : release.test_reports) {
    reports.push_back(json{{"result", TestResultName(report.result)},
                           {"author", report.author},
                           {"at", TimeJson(report.at)},
                           {"text", report.text},
                           {"round", report.round},
                           {"test_deployed_at", TimeJson(report.test_deployed_at)},
                           {"deployments", report.deployments}});
  }
  json history = json::array();
  for (const HistoryEntry& entry : release.history) {
    history.push_back(json{{"action", ActionName(entry.action)},
                           {"actor", entry.actor},
                           {"role", RoleName(entry.role)},
                           {"at", TimeJson(entry.at)},
                           {"from", ReleaseStateName(entry.from)},
                           {"to", ReleaseStateName(entry.to)},
                           {"note", entry.note},
                           {"at_ms", entry.at_ms}});
  }
  json out = {
      {"id", release.id},
      {"owner", release.owner},
      {"state", ReleaseStateName(release.state)},
      {"close_code", release.close_code ? json(CloseCodeName(*release.close_code)) : json(nullptr)},
      {"plan", ReleasePlanToJson(release.plan)},
      {"created_at", TimeJson(release.created_at)},
      {"updated_at", TimeJson(release.updated_at)},
      {"review_round", release.review_round},
      {"approvals", std::move(approvals)},
      {"rejections", std::move(rejections)},
      {"test_reports", std::move(reports)},
      {"test_waived_ever", release.test_waived_ever},
      {"frozen_content_digest", release.frozen_content_digest},
      {"golive_approved", release.golive_approved},
      {"approved_golive_digest", release.approved_golive_digest},
      {"history", std::move(history)},
  };
  if (release.acceptance) {
    out["acceptance"] = json{{"by", release.acceptance->by},
                             {"at", TimeJson(release.acceptance->at)},
                             {"test_waived", release.acceptance->test_waived},
                             {"waive_reason", release.acceptance->waive_reason},
                             {"comment", release.acceptance->comment}};
  } else {
    out["acceptance"] = nullptr;
  }
  if (release.golive_approval) {
    out["golive_approval"] = json{{"by", release.golive_approval->by},
                                  {"at", TimeJson(release.golive_approval->at)},
                                  {"comment", release.golive_approval->comment},
                                  {"digest", release.golive_approval->digest}};
  } else {
    out["golive_approval"] = nullptr;
  }
  out["rollout_window"] = release.rollout_window
                              ? json{{"start", release.rollout_window->start.text},
                                     {"end", release.rollout_window->end.text}}
                              : json(nullptr);
  out["freeze_override"] = release.freeze_override
                               ? json{{"by", release.freeze_override->by},
                                      {"at", TimeJson(release.freeze_override->at)},
                                      {"reason", release.freeze_override->reason}}
                               : json(nullptr);
  out["rollout_finished_at"] =
      release.rollout_finished_at > 0 ? TimeJson(release.rollout_finished_at) : json(nullptr);
  out["closure"] = release.closure
                       ? json{{"by", release.closure->by},
                              {"at", TimeJson(release.closure->at)},
                              {"notes", release.closure->notes},
                              {"finished_in_window", release.closure->finished_in_window},
                              {"cmdb", release.closure->cmdb}}
                       : json(nullptr);
  return out;
}

}  // namespace fabu::coordinator::release
