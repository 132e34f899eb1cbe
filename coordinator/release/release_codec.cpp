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
    return Fail(ErrorCode::kIntegrity,
                std::string("stored release record is damaged: ") + e.what());
  }
}

}  // namespace fabu::coordinator::release
