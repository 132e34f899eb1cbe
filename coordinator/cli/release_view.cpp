#include "coordinator/cli/release_view.hpp"

#include <fmt/format.h>

#include <map>
#include <sstream>
#include <tuple>

#include "coordinator/release/release_plan.hpp"
#include "coordinator/release/release_report.hpp"

namespace fabu::cli {
namespace {

using nlohmann::json;

std::string Text(const json& object, const char* key) {
  if (!object.is_object()) return {};
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string TimeText(const json& t) { return t.is_object() ? Text(t, "utc") : std::string(); }

std::string Joined(const json& list, std::string_view separator) {
  std::string out;
  if (!list.is_array()) return out;
  for (const auto& item : list) {
    if (!item.is_string()) continue;
    out += (out.empty() ? "" : std::string(separator)) + item.get<std::string>();
  }
  return out;
}

// A plan part's text under its title, indented; "(empty)" when it says nothing.
void Part(std::ostringstream& out, const std::string& text) {
  if (coordinator::release::IsBlank(text)) {
    out << "     (empty)\n";
    return;
  }
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) out << "     " << line << "\n";
}

// The latest attempt of each host in `environment`, counted by result:
// "2 hosts: 1 succeeded, 1 in progress". Empty when there is none.
std::string HostCount(const json& hosts, std::string_view environment) {
  std::map<std::string, std::tuple<int, std::string, bool>> latest;  // host -> attempt, result
  if (hosts.is_array()) {
    for (const auto& d : hosts) {
      if (Text(d, "environment") != environment) continue;
      const int attempt = d.value("attempt", 0);
      auto [it, added] =
          latest.try_emplace(Text(d, "host"), attempt, Text(d, "result"), d.value("final", false));
      if (!added && std::get<0>(it->second) <= attempt) {
        it->second = {attempt, Text(d, "result"), d.value("final", false)};
      }
    }
  }
  if (latest.empty()) return {};
  std::map<std::string, int> by_result;
  for (const auto& [host, entry] : latest) {
    ++by_result[std::get<2>(entry) ? std::get<1>(entry) : std::string("in progress")];
  }
  std::string counts;
  for (const auto& [result, n] : by_result) {
    counts += fmt::format("{}{} {}", counts.empty() ? "" : ", ", n, result);
  }
  return fmt::format("{} host{}: {}", latest.size(), latest.size() == 1 ? "" : "s", counts);
}

void Header(std::ostringstream& out, const json& r) {
  const json& plan = r["plan"];
  out << fmt::format("{}  {}\n", Text(r, "id"), Text(plan, "title"));
  out << fmt::format("  product   {} {}  ({})\n", Text(plan, "product"), Text(plan, "version"),
                     Text(plan, "category"));
  const std::string code = Text(r, "close_code");
  out << fmt::format("  state     {}{}\n", Text(r, "state"), code.empty() ? "" : " (" + code + ")");
  out << fmt::format("  owner     {}\n", Text(r, "owner"));
  out << fmt::format("  changes   {}\n", Joined(plan["change_refs"], ", "));
  if (plan["packages"].is_array()) {
    for (const auto& p : plan["packages"]) {
      out << "  package   " << (p.is_string() ? p.get<std::string>() : p.dump()) << "\n";
    }
  }
  out << fmt::format("  targets   {}\n", Text(plan["targets"], "selector"));
}

void Parts(std::ostringstream& out, const json& plan) {
  out << "\nPlan (发布方案)\n";
  int n = 0;
  for (const auto& info : coordinator::release::PlanSections()) {
    out << fmt::format("  {}. {} ({})\n", ++n, info.title_en, info.title_zh);
    Part(out, Text(plan["plan"], std::string(info.key).c_str()));
  }
}

void Review(std::ostringstream& out, const json& r) {
  out << fmt::format("\nReview (round {})\n", r.value("review_round", 0));
  const json& reviewers = r["plan"]["reviewers"];
  if (!reviewers.is_array() || reviewers.empty()) out << "  no reviewers named\n";
  for (const auto& reviewer : reviewers.is_array() ? reviewers : json::array()) {
    const std::string name = reviewer.is_string() ? reviewer.get<std::string>() : "";
    std::string status = "pending";
    for (const auto& a : r["approvals"]) {
      if (Text(a, "reviewer") != name) continue;
      status = "approved " + TimeText(a["at"]);
      if (!Text(a, "comment").empty()) status += ": " + Text(a, "comment");
    }
    out << fmt::format("  {:<18} {}\n", name, status);
  }
  for (const auto& rej : r["rejections"]) {
    out << fmt::format("  rejected by {} at {} (round {}): {}\n", Text(rej, "reviewer"),
                       TimeText(rej["at"]), rej.value("round", 0), Text(rej, "comment"));
  }
}

void Test(std::ostringstream& out, const json& r, const json& hosts) {
  out << "\nTest (发布测试)\n";
  std::string started;
  for (const auto& h : r["history"]) {
    if (Text(h, "action") == "test-deploy") started = TimeText(h["at"]);
  }
  const std::string counted = HostCount(hosts, "test");
  if (started.empty()) {
    out << "  deployment  none yet (fabu release test R)\n";
  } else {
    out << fmt::format("  deployment  started {}{}\n", started,
                       counted.empty() ? "" : " on " + counted);
  }
  for (const auto& t : r["test_reports"]) {
    out << fmt::format("  report      {} by {} at {} (round {})\n", Text(t, "result"),
                       Text(t, "author"), TimeText(t["at"]), t.value("round", 0));
    if (!TimeText(t["test_deployed_at"]).empty()) {
      out << fmt::format("              on the test deployment of {}: {}\n",
                         TimeText(t["test_deployed_at"]), Joined(t["deployments"], ", "));
    }
  }
  if (r["acceptance"].is_object()) {
    const json& a = r["acceptance"];
    out << fmt::format("  accepted    by {} at {}{}\n", Text(a, "by"), TimeText(a["at"]),
                       a.value("test_waived", false)
                           ? " — TEST WAIVED (emergency): " + Text(a, "waive_reason")
                           : "");
  }
}

void GoLive(std::ostringstream& out, const json& r) {
  out << "\nGo-live plan (上线方案)\n";
  const json& g = r["plan"]["golive"];
  if (!g.is_object()) {
    out << "  not set yet (the plan's \"golive\", or fabu release schedule R --file GOLIVE.yaml)\n";
    return;
  }
  out << fmt::format("  window         {} .. {}\n", Text(g["window"], "start"),
                     Text(g["window"], "end"));
  out << fmt::format("  waves          {}\n", Joined(g["waves"], ", "));
  out << fmt::format("  max failures   {}\n", Text(g, "max_failures"));
  out << fmt::format("  between waves  {}\n", Text(g, "between_waves"));
  out << fmt::format("  host timeout   {}\n", Text(g, "host_timeout"));
  out << fmt::format("  auto rollback  {}\n", g.value("auto_rollback", false) ? "yes" : "no");
  if (Text(g, "observe") == "0s") {
    out << "  observe        no\n";
  } else {
    out << fmt::format("  observe        {} (checked every {})\n", Text(g, "observe"),
                       Text(g, "observe_interval"));
  }
  if (!r.value("golive_approved", false)) {
    out << "  approved       not yet (fabu release approve-golive R)\n";
  } else if (r["golive_approval"].is_object()) {
    const json& a = r["golive_approval"];
    out << fmt::format("  approved       by {} at {}{}\n", Text(a, "by"), TimeText(a["at"]),
                       Text(a, "comment").empty() ? "" : ": " + Text(a, "comment"));
  } else {
    out << "  approved       with the plan, in its review\n";
  }
}

void Rollout(std::ostringstream& out, const json& r, const json& hosts) {
  const std::string counted = HostCount(hosts, "production");
  const bool started = !counted.empty() || r["rollout_window"].is_object();
  if (!started && !r["closure"].is_object()) return;
  out << "\nRollout\n";
  if (r["rollout_window"].is_object()) {
    out << fmt::format("  window      {} .. {}\n", Text(r["rollout_window"], "start"),
                       Text(r["rollout_window"], "end"));
  }
  if (r["freeze_override"].is_object()) {
    const json& f = r["freeze_override"];
    out << fmt::format("  freeze      overridden by {} at {}: {}\n", Text(f, "by"),
                       TimeText(f["at"]), Text(f, "reason"));
  }
  if (!counted.empty()) out << "  production  " << counted << "\n";
  if (!TimeText(r["rollout_finished_at"]).empty()) {
    out << "  finished    " << TimeText(r["rollout_finished_at"]) << "\n";
  }
  if (r["closure"].is_object()) {
    const json& c = r["closure"];
    out << fmt::format("  closed      by {} at {} ({}; {})\n", Text(c, "by"), TimeText(c["at"]),
                       c.value("finished_in_window", false) ? "finished inside the window"
                                                            : "not finished inside the window",
                       Text(c, "cmdb"));
    if (!Text(c, "notes").empty()) out << "  notes       " << Text(c, "notes") << "\n";
  }
}

void History(std::ostringstream& out, const json& r) {
  out << "\nHistory\n";
  for (const auto& h : r["history"]) {
    const std::string note = Text(h, "note");
    out << fmt::format("  {}  {:<15} {:<16} {} -> {}{}\n", TimeText(h["at"]), Text(h, "action"),
                       Text(h, "actor"), Text(h, "from"), Text(h, "to"),
                       note.empty() ? "" : "  " + note);
  }
}

}  // namespace

std::string ReleaseText(const json& release, const json& hosts) {
  std::ostringstream out;
  Header(out, release);
  Parts(out, release["plan"]);
  Review(out, release);
  Test(out, release, hosts);
  GoLive(out, release);
  Rollout(out, release, hosts);
  History(out, release);
  return out.str();
}

std::string BaselineText(const json& baseline) {
  const auto pairs = coordinator::release::PairBaseline(baseline);
  std::ostringstream out;
  if (pairs.empty()) {
    out << "no baseline taken yet: the before-baseline is taken when the rollout starts, the "
           "after-baseline at close\n";
    return out.str();
  }
  std::map<std::string, std::string> taken;  // phase -> when
  for (const auto& row : baseline) taken.try_emplace(Text(row, "phase"), Text(row, "taken"));
  for (const char* phase : {"before", "after"}) {
    out << fmt::format(
        "{:<6}  {}\n", phase,
        taken.contains(phase) ? "taken " + taken[phase] : std::string("not taken yet"));
  }
  auto line = [&out](const std::string& host, const std::string& app, const std::string& before,
                     const std::string& after, std::string_view mark) {
    std::string text =
        fmt::format("{:<24} {:<20} {:<16} {:<16} {}", host, app, before, after, mark);
    text.erase(text.find_last_not_of(' ') + 1);
    out << text << "\n";
  };
  auto cell = [](const std::string& text) { return text.empty() ? std::string("-") : text; };
  line("HOST", "APP", "BEFORE", "AFTER", "");
  for (const auto& p : pairs) {
    const bool changed = !p.app.empty() && taken.contains("after") && p.before != p.after;
    line(p.host, cell(p.app), cell(p.before), cell(p.after), changed ? "changed" : "");
  }
  if (const auto outside = coordinator::release::OutsideBaseline(baseline); !outside.empty()) {
    out << "not in this release (matching the targets at close; not deployed to):\n";
    for (const auto& o : outside) {
      line(o.host, cell(o.app), "-", cell(o.version), "not in release");
    }
  }
  std::map<std::string, std::string> why;  // host -> reason
  for (const auto& row : baseline) {
    const std::string reason = Text(row, "reason");
    if (!reason.empty()) why[Text(row, "host")] = reason;
  }
  if (!why.empty()) {
    out << "not on the release's version at close:\n";
    for (const auto& [host, reason] : why) out << fmt::format("{:<24} {}\n", host, reason);
  }
  return out.str();
}

}  // namespace fabu::cli
