// `fabu release status|pause|resume|abort|gate|rollback|reschedule|override-freeze`
// and `fabu freeze add|list|remove`: following and steering a production
// rollout. Each verb posts to /api/v1/releases/R/<verb> and
// prints where the rollout stands afterwards.
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <utility>

#include "coordinator/cli/client.hpp"
#include "coordinator/cli/commands.hpp"
#include "coordinator/cli/host_output.hpp"

namespace fabu::cli {
namespace {

using nlohmann::json;

// The status as a person reads it: the waves, the hosts, and why it waits.
void PrintStatus(const json& s) {
  std::cout << fmt::format("{} is {}\n", s.value("release", ""), s.value("state", ""));
  if (s["rollout"].is_null()) {
    std::cout << "  no production rollout yet\n";
    return;
  }
  const json& rollout = s["rollout"];
  std::cout << fmt::format("  rollout started {}, finished {}{}\n", CellText(rollout["started"]),
                           CellText(rollout["finished"]),
                           rollout.value("aborted", false) ? " (aborted)" : "");
  if (!s.value("waiting", "").empty()) {
    std::cout << fmt::format("  waiting: {}\n", s.value("waiting", ""));
  }
  std::cout << fmt::format("  {:<5} {:<10} {:>5} {:>9} {:>10} {:>7} {:>10}\n", "WAVE", "STATE",
                           "HOSTS", "FINAL", "SUCCEEDED", "FAILED", "TOLERATED");
  for (const auto& w : s["waves"]) {
    std::cout << fmt::format(
        "  {:<5} {:<10} {:>5} {:>9} {:>10} {:>7} {:>10}{}\n", w.value("wave", 0),
        w.value("state", ""), w.value("hosts", 0), w.value("final", 0), w.value("succeeded", 0),
        w.value("failed", 0), w.value("threshold", 0),
        w.value("catch_up", false) ? "  catch-up wave (hosts joined late)" : "");
  }
  std::cout << fmt::format("  {:<24} {:<5} {:<22} {:<22} {}\n", "HOST", "WAVE", "STEP", "RESULT",
                           "MESSAGE");
  for (const auto& h : s["hosts"]) {
    std::string result = h.value("result", "");
    std::string step = h.value("step", "");
    std::string message = h.value("message", "");
    std::string output = h.value("output", "");
    if (h.contains("rollback")) {
      const json& rb = h["rollback"];
      step = "rollback:" + rb.value("step", "");
      result = rb.value("result", "").empty() ? result : "restore " + rb.value("result", "");
      if (!rb.value("message", "").empty()) message = rb.value("message", "");
      if (!rb.value("output", "").empty()) output = rb.value("output", "");
    }
    std::cout << fmt::format("  {:<24} {:<5} {:<22} {:<22} {}\n", h.value("host", ""),
                             h.value("wave", 0), step, result.empty() ? "-" : result, message);
    if (h.contains("joined_late")) {
      std::cout << fmt::format("    joined late at {}, into wave {}\n", h.value("joined_late", ""),
                               h.value("wave", 0));
    }
    PrintOutputLine(output);
  }
  const json checks = s.value("checks", json::array());
  if (!checks.empty()) {
    std::cout << "  checks on metrics (after each wave, before the next):\n";
    const json measurements = s.value("measurements", json::array());
    for (const auto& c : checks) {
      const std::string name = c.value("name", "");
      std::cout << fmt::format(
          "  {:<24} {} {}, {} x {}{}{}\n", name, c.value("type", ""), c.value("condition", ""),
          c.value("count", 0), c.value("interval", ""),
          c.value("dry_run", false) ? ", dry run" : "",
          c.contains("verdict") ? fmt::format(": wave {} {} ({})", c.value("wave", 0),
                                              c.value("verdict", ""), c.value("summary", ""))
                                : "");
      // Its values in the order taken, by wave: "wave 1: 0.01 0.02 x(error)".
      std::map<long long, std::string> by_wave;
      for (const auto& m : measurements) {
        if (m.value("check", "") != name) continue;
        std::string& line = by_wave[m.value("wave", 0LL)];
        const std::string outcome = m.value("outcome", "");
        const std::string value =
            m["value"].is_number() ? fmt::format("{:.4g}", m["value"].get<double>()) : "-";
        line += outcome == "pass" ? " " + value : fmt::format(" {}({})", value, outcome);
      }
      for (const auto& [wave, line] : by_wave) {
        std::cout << fmt::format("    wave {}:{}\n", wave, line);
      }
    }
  }
  const json late = s.value("not_in_release", json::array());
  if (!late.empty()) {
    std::cout << fmt::format(
        "  not in this release ({} host(s) matching its targets now; not deployed to):\n",
        late.size());
    for (const auto& h : late) {
      std::cout << fmt::format("  {:<24} {}\n", h.value("host", ""), h.value("reason", ""));
    }
  }
}

struct SteerArgs {
  ClientOptions client;
  std::string id;
  std::string reason;
  std::string comment;
  std::string start;
  std::string end;
  bool confirm = false;
  bool failed = false;
  std::vector<std::string> hosts;
  bool json = false;
  bool watch = false;
  double interval_seconds = 2;
};

// Exit statuses of `release status --watch` (README, "Exit status").
constexpr int kWatchDeployed = 0;
constexpr int kWatchEndedOtherwise = 3;  // failed, rolled back, cancelled
constexpr int kWatchDecision = 4;        // paused, or a control point waits for a person

// Where a watch stops: a final state, or a decision a person must take. The
// status code and the line saying why; nullopt while the rollout goes on.
std::optional<std::pair<int, std::string>> WatchEnd(const json& s) {
  const std::string state = s.value("state", "");
  if (state == "deployed" || state == "closed") {
    return std::pair{kWatchDeployed, fmt::format("{} is {}", s.value("release", ""), state)};
  }
  if (state == "failed" || state == "rolled_back" || state == "cancelled") {
    return std::pair{kWatchEndedOtherwise, fmt::format("{} is {}", s.value("release", ""), state)};
  }
  const std::string waiting = s.value("waiting", "");
  if (state == "paused" || waiting.find("release gate") != std::string::npos) {
    return std::pair{kWatchDecision, fmt::format("{} needs a decision: {}", s.value("release", ""),
                                                 waiting.empty() ? state : waiting)};
  }
  return std::nullopt;
}

// A wave's progress out of its hosts, as a bar: '#' succeeded, 'x' failed,
// '.' not final yet (pending or in progress).
std::string WaveBar(const json& w) {
  constexpr std::int64_t kWidth = 20;
  const std::int64_t hosts = std::max<std::int64_t>(1, w.value("hosts", std::int64_t{0}));
  const std::int64_t succeeded = w.value("succeeded", std::int64_t{0});
  const std::int64_t failed = w.value("failed", std::int64_t{0});
  const std::int64_t final_hosts = w.value("final", std::int64_t{0});
  const std::int64_t ok_cells = succeeded * kWidth / hosts;
  // A failure shows even when it is a small share.
  const std::int64_t failed_cells = std::min(
      kWidth - ok_cells, failed == 0 ? 0 : std::max<std::int64_t>(1, failed * kWidth / hosts));
  std::string bar(static_cast<std::size_t>(ok_cells), '#');
  bar += std::string(static_cast<std::size_t>(failed_cells), 'x');
  bar += std::string(static_cast<std::size_t>(kWidth) - bar.size(), '.');
  return fmt::format("[{}] {} succeeded, {} failed, {} not final, of {}", bar, succeeded, failed,
                     w.value("hosts", std::int64_t{0}) - final_hosts, w.value("hosts", 0));
}

// `release status --watch`: on a terminal the status is redrawn in place
// every interval; otherwise a line is printed only when something changed.
int WatchStatus(ApiClient& client, const SteerArgs& args) {
  const bool terminal = ::isatty(STDOUT_FILENO) == 1;
  const auto interval = std::chrono::milliseconds(
      static_cast<std::int64_t>(std::clamp(args.interval_seconds, 0.2, 60.0) * 1000));
  std::string last_line;
  while (true) {
    auto r = client.Get("/api/v1/releases/" + client.Escape(args.id) + "/status");
    if (!r) {
      std::cerr << "fabu release status: " << r.error().message() << "\n";
      return 1;
    }
    const json& s = *r;
    if (terminal) {
      std::cout << "\x1b[H\x1b[2J";  // home, clear: redraw in place
      PrintStatus(s);
      for (const auto& w : s.value("waves", json::array())) {
        std::cout << fmt::format("  wave {:<3} {}\n", w.value("wave", 0), WaveBar(w));
      }
    } else {
      std::string line = fmt::format("{} {}", s.value("release", ""), s.value("state", ""));
      for (const auto& w : s.value("waves", json::array())) {
        line +=
            fmt::format(" | wave {} {} {}/{} failed {}", w.value("wave", 0), w.value("state", ""),
                        w.value("succeeded", 0), w.value("hosts", 0), w.value("failed", 0));
      }
      if (!s.value("waiting", "").empty()) line += " | waiting: " + s.value("waiting", "");
      if (line != last_line) std::cout << line << "\n";
      last_line = std::move(line);
    }
    std::cout.flush();
    if (auto end = WatchEnd(s)) {
      std::cout << end->second << "\n";
      return end->first;
    }
    std::this_thread::sleep_for(interval);
  }
}

// One rollout verb: which options it takes and what it posts.
struct SteerVerb {
  const char* name;
  const char* help;
  bool reason;   // --reason, required
  bool comment;  // --comment, optional
  bool window;   // --start, --end
  bool confirm;  // --confirm
  bool failed;   // --failed (required), --hosts
};

constexpr SteerVerb kSteerVerbs[] = {
    {"pause", "Pause a rollout: nothing new starts; hosts in flight finish", true, false, false,
     false, false},
    {"resume",
     "Resume a paused rollout, go on past a wave that failed its threshold, or take back an "
     "abort and go on with the wave it stopped (the release was failed)",
     false, true, false, false, false},
    {"abort", "Assign nothing more; hosts in flight finish, then the rollout ends failed", true,
     false, false, false, false},
    {"gate", "Confirm a control point between waves (between_waves: gate)", false, true, false,
     true, false},
    {"rollback", "Tell every host that moved to restore its previous release", true, false, false,
     false, false},
    {"reschedule", "Give a rollout stopped by its closed window a new window", false, false, true,
     false, false},
    {"override-freeze", "Let an emergency release start or continue inside a freeze (approver)",
     true, false, false, false, false},
    {"retry",
     "Deploy the failed hosts again (--failed; all of them, or those of --hosts): of the wave "
     "that failed, or of every wave once the rollout ended deployed with failed hosts; hosts "
     "that succeeded are not touched, and the wave is judged on the new results",
     true, false, false, false, true},
};

json BodyOf(const SteerVerb& verb, const SteerArgs& args) {
  json body = json::object();
  if (verb.reason) body["reason"] = args.reason;
  if (verb.comment && !args.comment.empty()) body["comment"] = args.comment;
  if (verb.window) {
    body["start"] = args.start;
    body["end"] = args.end;
  }
  if (verb.confirm) body["confirm"] = args.confirm;
  if (verb.failed && !args.hosts.empty()) body["hosts"] = args.hosts;
  return body;
}

}  // namespace

void RegisterRolloutCommands(CLI::App& app, int& exit_code) {
  CLI::App* release = app.get_subcommand("release");

  auto status_args = std::make_shared<SteerArgs>();
  auto* status = release->add_subcommand(
      "status", "Where a rollout stands: wave by wave, host by host, and why it waits");
  status->add_option("R", status_args->id, "Release id")->required();
  auto* json_flag = status->add_flag("--json", status_args->json, "Print JSON");
  auto* watch_flag =
      status
          ->add_flag("--watch", status_args->watch,
                     "Follow the rollout until it ends or needs a decision (exit 0 deployed, 3 "
                     "ended otherwise, 4 a decision waits)")
          ->excludes(json_flag);
  status
      ->add_option("--interval", status_args->interval_seconds,
                   "Seconds between looks with --watch (default 2)")
      ->check(CLI::Range(0.2, 60.0))
      ->needs(watch_flag);
  AddClientOptions(status, status_args->client);
  status->callback([&exit_code, status_args] {
    auto client = ApiClient::Create(status_args->client);
    if (!client) return ReportFailure("release status", client.error(), exit_code);
    if (status_args->watch) {
      exit_code = WatchStatus(*client, *status_args);
      return;
    }
    auto r = client->Get("/api/v1/releases/" + client->Escape(status_args->id) + "/status");
    if (!r) return ReportFailure("release status", r.error(), exit_code);
    if (status_args->json) {
      std::cout << r->dump(2) << "\n";
    } else {
      PrintStatus(*r);
    }
  });

  // Pre-flight (procedure §6.2.5): whether each production target could
  // install the release now.
  struct PreflightArgs {
    ClientOptions client;
    std::string id;
    bool show = false;
    bool override = false;
    std::string reason;
    int wait_seconds = 30;
    bool json = false;
  };
  auto preflight_args = std::make_shared<PreflightArgs>();
  auto* preflight = release->add_subcommand(
      "preflight",
      "Ask every production target whether it could install the release now (free space, "
      "targets, installed version, publisher key, apps root, other deployments), and wait for "
      "the answers");
  preflight->add_option("R", preflight_args->id, "Release id")->required();
  auto* show_flag =
      preflight->add_flag("--show", preflight_args->show, "Show the latest round; ask nothing");
  auto* override_flag =
      preflight
          ->add_flag("--override", preflight_args->override,
                     "An approver lets `release start` go on despite the latest round's \"would "
                     "fail\" answers (needs --reason)")
          ->excludes(show_flag);
  preflight->add_option("--reason", preflight_args->reason, "Why (recorded)")->needs(override_flag);
  preflight
      ->add_option("--wait", preflight_args->wait_seconds,
                   "Seconds to wait for the answers (default 30; 0: do not wait)")
      ->check(CLI::Range(0, 120));
  preflight->add_flag("--json", preflight_args->json, "Print JSON");
  AddClientOptions(preflight, preflight_args->client);
  preflight->callback([&exit_code, preflight_args] {
    const PreflightArgs& a = *preflight_args;
    if (a.override && a.reason.empty()) {
      std::cerr << "fabu: release preflight --override: --reason is required\n";
      exit_code = 2;
      return;
    }
    auto client = ApiClient::Create(a.client);
    if (!client) return ReportFailure("release preflight", client.error(), exit_code);
    const std::string path = "/api/v1/releases/" + client->Escape(a.id) + "/preflight";
    Result<json> r = a.show ? client->Get(path)
                     : a.override
                         ? client->Post(path, json{{"override", true}, {"reason", a.reason}})
                         : client->Post(path, json::object());
    if (!r) return ReportFailure("release preflight", r.error(), exit_code);
    // Wait until every host answered (or is unknown), or the time is up.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(a.wait_seconds);
    while (!a.show && !a.override && (*r)["preflight"].is_object() &&
           (*r)["preflight"].value("waiting", 0) > 0 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      auto again = client->Get(path);
      if (!again) return ReportFailure("release preflight", again.error(), exit_code);
      r = std::move(again);
    }
    const json& p = (*r)["preflight"];
    if (a.json) {
      std::cout << r->dump(2) << "\n";
    } else if (p.is_null()) {
      std::cout << fmt::format("{}: no pre-flight yet (no production target, or never asked)\n",
                               a.id);
    } else {
      std::cout << fmt::format(
          "{} pre-flight {} asked {} by {}: {} ready, {} would fail, {} "
          "unknown, {} waiting\n",
          a.id, p.value("id", ""), p.value("asked", ""), p.value("asked_by", ""),
          p.value("ready", 0), p.value("would_fail", 0), p.value("unknown", 0),
          p.value("waiting", 0));
      if (p["override"].is_object()) {
        std::cout << fmt::format("  overridden by {} at {}: {}\n", p["override"].value("by", ""),
                                 p["override"].value("at", ""), p["override"].value("reason", ""));
      }
      std::cout << fmt::format("  {:<24} {:<11} {:<12} {:<14} {}\n", "HOST", "STATE", "FREE",
                               "INSTALLED", "WHY NOT");
      for (const auto& h : p["hosts"]) {
        std::string why;
        for (const auto& reason : h["reasons"]) {
          why += (why.empty() ? "" : "; ") + reason.get<std::string>();
        }
        const std::string free =
            h.contains("free_bytes")
                ? fmt::format("{:.1f} MiB", h["free_bytes"].get<double>() / (1024.0 * 1024.0))
                : "-";
        std::cout << fmt::format(
            "  {:<24} {:<11} {:<12} {:<14} {}\n", h.value("host", ""), h.value("state", ""), free,
            h.value("installed_version", "").empty() ? "-" : h.value("installed_version", ""), why);
      }
    }
    // Exit 3 when a host would fail and no override lets the start go on.
    if (p.is_object() && p.value("would_fail", 0) > 0 && p["override"].is_null()) exit_code = 3;
  });

  for (const SteerVerb& verb : kSteerVerbs) {
    auto args = std::make_shared<SteerArgs>();
    auto* cmd = release->add_subcommand(verb.name, verb.help);
    cmd->add_option("R", args->id, "Release id")->required();
    if (verb.reason) cmd->add_option("--reason", args->reason, "Why (recorded)")->required();
    if (verb.comment) cmd->add_option("--comment", args->comment, "A comment (recorded)");
    if (verb.window) {
      cmd->add_option("--start", args->start,
                      "Window start: 2026-12-01T20:00:00+08:00, or a date (the coordinator's zone)")
          ->required();
      cmd->add_option("--end", args->end,
                      "Window end: 2026-12-01T22:00:00+08:00, or a date (the coordinator's zone)")
          ->required();
    }
    if (verb.confirm) {
      cmd->add_flag("--confirm", args->confirm, "Confirm the control point")->required();
    }
    if (verb.failed) {
      cmd->add_flag("--failed", args->failed, "Deploy the failed hosts again (the only kind)")
          ->required();
      cmd->add_option("--hosts", args->hosts, "Only these of the failed hosts: H1,H2,...")
          ->delimiter(',');
    }
    cmd->add_flag("--json", args->json, "Print the rollout status as JSON");
    AddClientOptions(cmd, args->client);
    cmd->callback([&exit_code, args, &verb] {
      const std::string command = fmt::format("release {}", verb.name);
      auto client = ApiClient::Create(args->client);
      if (!client) return ReportFailure(command, client.error(), exit_code);
      auto r =
          client->Post(fmt::format("/api/v1/releases/{}/{}", client->Escape(args->id), verb.name),
                       BodyOf(verb, *args));
      if (!r) return ReportFailure(command, r.error(), exit_code);
      if (args->json) {
        std::cout << r->dump(2) << "\n";
      } else {
        PrintStatus(*r);
      }
    });
  }

  // close
  struct CloseArgs {
    ClientOptions client;
    std::string id, code, notes;
    bool json = false;
  };
  auto close_args = std::make_shared<CloseArgs>();
  auto* close = release->add_subcommand(
      "close", "Close a release once its CMDB update is confirmed (§6.2.9); read-only afterwards");
  close->add_option("R", close_args->id, "Release id")->required();
  close->add_option("--code", close_args->code,
                    "success, partial, failed or rolled_back (default: what the outcome says)");
  close->add_option("--notes", close_args->notes, "Closing notes (recorded)");
  close->add_flag("--json", close_args->json, "Print the release as JSON");
  AddClientOptions(close, close_args->client);
  close->callback([&exit_code, close_args] {
    auto client = ApiClient::Create(close_args->client);
    if (!client) return ReportFailure("release close", client.error(), exit_code);
    json body = json::object();
    if (!close_args->code.empty()) body["code"] = close_args->code;
    if (!close_args->notes.empty()) body["notes"] = close_args->notes;
    auto r = client->Post("/api/v1/releases/" + client->Escape(close_args->id) + "/close", body);
    if (!r) return ReportFailure("release close", r.error(), exit_code);
    if (close_args->json) {
      std::cout << r->dump(2) << "\n";
      return;
    }
    const json& closure = (*r)["closure"];
    std::cout << fmt::format(
        "{} is closed: {}; CMDB {}; {} the planned window\n", r->value("id", ""),
        r->value("close_code", ""), closure.value("cmdb", ""),
        closure.value("finished_in_window", false) ? "finished inside" : "finished after");
  });

  // freeze
  auto* freeze = app.add_subcommand("freeze", "Freeze periods: no rollout starts or continues");
  freeze->require_subcommand(1);

  struct FreezeArgs {
    ClientOptions client;
    std::string from, to, reason, selector, id;
    bool json = false;
  };
  auto add_args = std::make_shared<FreezeArgs>();
  auto* add = freeze->add_subcommand("add", "Add a freeze period");
  add->add_option("--from", add_args->from,
                  "Start: 2026-12-01T00:00:00+08:00, or a date (the coordinator's zone)")
      ->required();
  add->add_option("--to", add_args->to,
                  "End: 2026-12-08T00:00:00+08:00, or a date (the coordinator's zone)")
      ->required();
  add->add_option("--reason", add_args->reason, "Why (shown to whoever is blocked)")->required();
  add->add_option("--selector", add_args->selector,
                  "Only hosts with these labels: k=v,... (default: every host)");
  AddClientOptions(add, add_args->client);
  add->callback([&exit_code, add_args] {
    auto client = ApiClient::Create(add_args->client);
    if (!client) return ReportFailure("freeze add", client.error(), exit_code);
    json body = {{"from", add_args->from}, {"to", add_args->to}, {"reason", add_args->reason}};
    if (!add_args->selector.empty()) body["selector"] = add_args->selector;
    auto r = client->Post("/api/v1/freezes", body);
    if (!r) return ReportFailure("freeze add", r.error(), exit_code);
    std::cout << r->value("id", "") << "\n";
  });

  auto list_args = std::make_shared<FreezeArgs>();
  auto* list = freeze->add_subcommand("list", "Freeze periods not removed");
  list->add_flag("--json", list_args->json, "Print JSON");
  AddClientOptions(list, list_args->client);
  list->callback([&exit_code, list_args] {
    auto client = ApiClient::Create(list_args->client);
    if (!client) return ReportFailure("freeze list", client.error(), exit_code);
    auto r = client->Get("/api/v1/freezes");
    if (!r) return ReportFailure("freeze list", r.error(), exit_code);
    if (list_args->json) {
      std::cout << r->dump(2) << "\n";
      return;
    }
    std::cout << fmt::format("{:<6} {:<26} {:<26} {:<20} {}\n", "ID", "FROM", "TO", "SELECTOR",
                             "REASON");
    for (const auto& f : (*r)["freezes"]) {
      std::cout << fmt::format("{:<6} {:<26} {:<26} {:<20} {}\n", f.value("id", ""),
                               f.value("from", ""), f.value("to", ""),
                               f.value("selector", "").empty() ? "(all)" : f.value("selector", ""),
                               f.value("reason", ""));
    }
  });

  auto remove_args = std::make_shared<FreezeArgs>();
  auto* remove = freeze->add_subcommand("remove", "Remove a freeze period");
  remove->add_option("ID", remove_args->id, "Freeze id (F-n)")->required();
  AddClientOptions(remove, remove_args->client);
  remove->callback([&exit_code, remove_args] {
    auto client = ApiClient::Create(remove_args->client);
    if (!client) return ReportFailure("freeze remove", client.error(), exit_code);
    auto r = client->Post("/api/v1/freezes/" + client->Escape(remove_args->id) + "/remove",
                          json::object());
    if (!r) return ReportFailure("freeze remove", r.error(), exit_code);
    std::cout << fmt::format("removed {}\n", r->value("id", ""));
  });
}

}  // namespace fabu::cli
