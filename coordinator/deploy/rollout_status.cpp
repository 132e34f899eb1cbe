#include <fmt/format.h>

#include <map>
#include <set>

#include "coordinator/deploy/host_timeline.hpp"
#include "coordinator/deploy/rollout_checks.hpp"
#include "coordinator/deploy/rollout_engine.hpp"
#include "coordinator/deploy/rollout_rows.hpp"
#include "coordinator/hosts/hosts.hpp"

namespace fabu::coordinator {

using nlohmann::json;

std::vector<HostNotInRelease> HostsNotInRelease(soci::session& sql, const rel::Release& release) {
  std::vector<HostNotInRelease> out;
  auto row = LoadRollout(sql, release.id);
  if (!row) return out;
  // The targets as `release start` chose them (rollout_api.cpp), now.
  LabelSelector selector;
  if (release.plan.targets) selector = release.plan.targets->labels;
  selector.emplace_back("env", std::string(kProductionEnvironment));
  const std::string started = protocol::FormatRfc3339Utc(row->started);
  for (const MatchingHost& host : MatchingHosts(sql, selector, release.id)) {
    // To the second ("YYYY-MM-DDTHH:MM:SS" of RFC 3339 UTC compares as the time).
    const bool enrolled_since = host.enrolled.substr(0, 19) >= started.substr(0, 19);
    out.push_back({host.name, host.enrolled,
                   enrolled_since
                       ? fmt::format("enrolled at {}, after the rollout started", host.enrolled)
                       : std::string("did not match the targets when the rollout started")});
  }
  return out;
}

std::map<std::string, std::string> HostsNotOnVersion(soci::session& sql,
                                                     const rel::Release& release) {
  std::map<std::string, std::string> out;
  auto row = LoadRollout(sql, release.id);
  if (!row) return out;
  const HostDeployments deployments = LoadHostDeployments(sql, release.id);
  for (const RolloutHost& h : LoadRolloutHosts(sql, release.id)) {
    const std::string late = h.joined > 0
                                 ? fmt::format("joined late (at {}, into wave {}) ",
                                               protocol::FormatRfc3339Utc(h.joined), h.wave + 1)
                                 : std::string();
    auto install = deployments.install.find(h.host);
    auto rollback = deployments.rollback.find(h.host);
    std::string why;
    if (install == deployments.install.end()) {
      why = fmt::format("{}not deployed: the rollout {} before wave {}", late,
                        row->aborted != 0 ? "was aborted" : "ended", h.wave + 1);
    } else if (!install->second.IsFinal()) {
      why = fmt::format("{}its deployment {} was not final at close", late, install->second.id);
    } else if (!install->second.Succeeded()) {
      why = fmt::format("{}{} at step {}{}{}", late, install->second.ResultText(),
                        protocol::StepName(install->second.step),
                        install->second.message.empty() ? "" : ": ", install->second.message);
    } else if (rollback != deployments.rollback.end()) {
      why =
          rollback->second.result == DeploymentResult::kRolledBack
              ? fmt::format("{}rolled back to its previous release", late)
              : fmt::format("{}rollback {}{}{}", late, rollback->second.ResultText(),
                            rollback->second.message.empty() ? "" : ": ", rollback->second.message);
    }
    if (!why.empty()) out[h.host] = std::move(why);
  }
  for (const HostNotInRelease& h : HostsNotInRelease(sql, release)) {
    out[h.host] = fmt::format("not in this release: {}", h.reason);
  }
  return out;
}

namespace {

// The filter of StatusHostPage a host of the rollout falls in.
std::string_view HostState(const DeploymentState* install, const DeploymentState* rollback) {
  if (install == nullptr) return "pending";
  if (!install->result || (rollback != nullptr && !rollback->result)) return "active";
  if (rollback != nullptr || *install->result != DeploymentResult::kSucceeded) return "failed";
  return "succeeded";
}

}  // namespace

Result<void> CheckStatusFilter(std::string_view filter) {
  if (filter.empty() || filter == "pending" || filter == "active" || filter == "succeeded" ||
      filter == "failed") {
    return {};
  }
  return Fail(
      ErrorCode::kInvalidArgument,
      fmt::format("hosts filter \"{}\" is not one of pending, active, succeeded, failed", filter));
}

Result<json> RolloutStatus(soci::session& sql, const rel::Release& release, UnixSeconds now,
                           const StatusHostPage& page) {
  json out = {{"release", release.id},
              {"state", rel::ReleaseStateName(release.state)},
              {"now", protocol::FormatRfc3339Utc(now)}};
  auto row = LoadRollout(sql, release.id);
  if (!row) {
    out["rollout"] = nullptr;
    out["waiting"] = "";
    return out;
  }
  const auto hosts = LoadRolloutHosts(sql, release.id);
  const HostDeploymentStates states = LoadHostDeploymentStates(sql, release.id);
  json waves = json::array();
  for (std::size_t w = 0; w < row->wave_count(); ++w) {
    const long long wave = static_cast<long long>(w);
    const rel::WaveTally count = CountWave(hosts, states, wave);
    std::string state;
    if (wave > row->current_wave) {
      state = "pending";
    } else if (count.final < count.hosts) {
      state = "running";
    } else if (count.failed > row->waves[w].max_failures && row->accepted_wave < wave) {
      state = "failed";
    } else {
      state = count.failed > row->waves[w].max_failures ? "accepted" : "succeeded";
    }
    const std::size_t planned = release.plan.golive ? release.plan.golive->waves.size() : 0;
    waves.push_back({{"wave", w + 1},
                     {"catch_up", planned > 0 && w >= planned},
                     {"hosts", count.hosts},
                     {"threshold", row->waves[w].max_failures},
                     {"state", state},
                     {"assigned", count.assigned},
                     {"final", count.final},
                     {"succeeded", count.succeeded},
                     {"failed", count.failed}});
  }
  // The page of hosts: chosen from the states, shown from whole records.
  std::vector<const RolloutHost*> shown;
  std::size_t matching = 0;
  for (const RolloutHost& h : hosts) {
    if (!page.filter.empty()) {
      auto install = states.install.find(h.host);
      auto rollback = states.rollback.find(h.host);
      const std::string_view state =
          HostState(install == states.install.end() ? nullptr : &install->second,
                    rollback == states.rollback.end() ? nullptr : &rollback->second);
      if (state != page.filter) continue;
    }
    const std::size_t index = matching++;
    if (index < page.offset || index - page.offset >= page.limit) continue;
    shown.push_back(&h);
  }
  std::vector<std::string> shown_names;
  for (const RolloutHost* h : shown) shown_names.push_back(h->host);
  const HostDeployments deployments = LoadHostDeploymentsOf(sql, release.id, shown_names);
  // The hook outputs of the page's deployments that did not succeed.
  std::vector<std::string> unsucceeded;
  for (const std::string& host : shown_names) {
    for (const auto* kind : {&deployments.install, &deployments.rollback}) {
      auto it = kind->find(host);
      if (it != kind->end() && !it->second.Succeeded()) unsucceeded.push_back(it->second.id);
    }
  }
  const std::map<std::string, std::string> outputs = FailureOutputs(sql, unsucceeded);
  auto output_of = [&](const DeploymentRecord& d) {
    auto it = outputs.find(d.id);
    return it == outputs.end() ? std::string() : it->second;
  };
  json host_rows = json::array();
  for (const RolloutHost* shown_host : shown) {
    const RolloutHost& h = *shown_host;
    auto install = deployments.install.find(h.host);
    auto rollback = deployments.rollback.find(h.host);
    json entry = {{"host", h.host}, {"wave", h.wave + 1}};
    if (h.joined > 0) entry["joined_late"] = protocol::FormatRfc3339Utc(h.joined);
    if (install == deployments.install.end()) {
      entry["step"] = "pending";
      entry["result"] = "";
      entry["message"] = "";
    } else {
      entry["step"] = protocol::StepName(install->second.step);
      entry["result"] = install->second.ResultText();
      entry["message"] = install->second.message;
      entry["output"] = output_of(install->second);
      entry["from_version"] = install->second.from_version;
      entry["deployment"] = install->second.id;
    }
    if (rollback != deployments.rollback.end()) {
      entry["rollback"] = {{"deployment", rollback->second.id},
                           {"step", protocol::StepName(rollback->second.step)},
                           {"result", rollback->second.ResultText()},
                           {"message", rollback->second.message},
                           {"output", output_of(rollback->second)}};
    }
    host_rows.push_back(std::move(entry));
  }
  out["rollout"] = {{"waves_planned", row->wave_count()},
                    {"current_wave", row->current_wave + 1},
                    {"aborted", row->aborted != 0},
                    {"pause_kind", row->pause_kind},
                    {"started", protocol::FormatRfc3339Utc(row->started)},
                    {"finished", row->finished > 0 ? json(protocol::FormatRfc3339Utc(row->finished))
                                                   : json(nullptr)}};
  out["waves"] = std::move(waves);
  out["hosts"] = std::move(host_rows);
  out["hosts_total"] = hosts.size();
  out["hosts_matching"] = matching;
  std::string waiting = row->waiting;
  if (release.state == rel::ReleaseState::kPaused && row->pause_kind == kPausedByPerson) {
    for (auto it = release.history.rbegin(); it != release.history.rend(); ++it) {
      if (it->action == rel::Action::kPause) {
        waiting = fmt::format("paused by {}: {}; `fabu release resume {}` goes on", it->actor,
                              it->note, release.id);
        break;
      }
    }
  }
  out["waiting"] = waiting;

  // The go-live plan's checks on metrics: each with where it stands for the
  // current wave (once its hosts are final), and every measurement taken.
  json checks = json::array();
  if (release.plan.golive) {
    const auto judged = WaveChecks(sql, release.id, release.plan.golive->checks, row->current_wave,
                                   row->wave_done_at);
    for (std::size_t i = 0; i < release.plan.golive->checks.size(); ++i) {
      json entry = rel::MetricCheckToJson(release.plan.golive->checks[i]);
      if (i < judged.size()) {  // the current wave's hosts are final: measured
        entry["wave"] = row->current_wave + 1;
        entry["verdict"] = rel::CheckVerdictStateName(judged[i].verdict.state);
        entry["summary"] = judged[i].verdict.summary;
      }
      checks.push_back(std::move(entry));
    }
  }
  out["checks"] = std::move(checks);
  out["measurements"] = ReleaseMeasurements(sql, release.id);

  json late = json::array();
  for (const HostNotInRelease& h : HostsNotInRelease(sql, release)) {
    late.push_back({{"host", h.host}, {"enrolled", h.enrolled}, {"reason", h.reason}});
  }
  out["not_in_release"] = std::move(late);
  return out;
}

}  // namespace fabu::coordinator
