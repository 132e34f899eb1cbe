#include "agent/cli/local_commands.hpp"

#include <fmt/format.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <sys/stat.h>

#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "agent/common/clock.hpp"
#include "agent/deploy/deployer.hpp"
#include "agent/deploy/names.hpp"
#include "agent/hooks/hook_runner.hpp"
#include "agent/host/host_facts.hpp"
#include "agent/install/install_layout.hpp"
#include "agent/journal/journal.hpp"
#include "platform/fs/files.hpp"
#include "protocol/timestamp.hpp"

namespace fabu::agent {

namespace fs = std::filesystem;

namespace {

constexpr int kExitFailed = 1;
constexpr int kExitError = 2;

// Prints each event as one JSON line and flushes, so a process killed right
// after still leaves every line it reported.
class JsonLinesSink final : public EventSink {
 public:
  void Publish(const DeploymentEvent& event) override {
    std::cout << EventToJsonLine(event) << std::endl;
  }
};

struct EngineOptions {
  std::string data;
  std::string apps_root;
  std::vector<std::string> trust;
  std::size_t keep = 3;
  std::string hook_timeout = "300s";
  std::string health_timeout = "60s";
  int health_attempts = 3;
  std::string health_delay = "5s";
  bool no_sync = false;
};

struct DeployOptions {
  std::string package;
  std::string sha256;
  std::string deployment;
  std::string app;
  std::string observe = "0";
  std::string observe_interval = "0";
};

int ReportError(const Error& error) {
  std::cerr << "fabu-agent: error: " << error.message() << "\n";
  return kExitError;
}

// "250ms", or a duration protocol::ParseDuration reads ("30s", "5m", "0").
Result<std::chrono::milliseconds> ParseTimeout(std::string_view text, std::string_view flag) {
  if (text.ends_with("ms")) {
    try {
      std::size_t used = 0;
      const long long ms = std::stoll(std::string(text.substr(0, text.size() - 2)), &used);
      if (used == text.size() - 2 && ms >= 0) return std::chrono::milliseconds(ms);
    } catch (const std::exception&) {
    }
  } else if (auto seconds = protocol::ParseDuration(text)) {
    return std::chrono::milliseconds(*seconds * 1000);
  }
  return Fail(ErrorCode::kInvalidArgument,
              fmt::format("{}: \"{}\" is not a duration (250ms, 30s, 5m, 1h)", flag, text));
}

void AddEngineOptions(CLI::App* command, EngineOptions& o, bool trust_required) {
  command->add_option("--data", o.data, "Agent data directory (journal)")->required();
  command->add_option("--apps-root", o.apps_root, "Where applications are installed")->required();
  auto* trust =
      command->add_option("--trust", o.trust, "Trusted publisher public key (PEM), repeatable");
  if (trust_required) trust->required();
  command->add_option("--keep", o.keep, "Releases kept per app (at least 2)")
      ->capture_default_str();
  command->add_option("--hook-timeout", o.hook_timeout, "Timeout of a hook")->capture_default_str();
  command->add_option("--health-timeout", o.health_timeout, "Timeout of one health check")
      ->capture_default_str();
  command->add_option("--health-attempts", o.health_attempts, "Health check attempts")
      ->capture_default_str();
  command->add_option("--health-delay", o.health_delay, "Delay between health check attempts")
      ->capture_default_str();
  command->add_flag("--no-sync", o.no_sync, "Do not sync extracted trees (benchmarks only)");
}

// What one engine run needs, built from the options.
struct Engine {
  Journal journal;
  JsonLinesSink sink;
  ProcessHookRunner hooks;
  SystemClock clock;
  std::unique_ptr<Deployer> deployer;
};

Result<std::unique_ptr<Engine>> MakeEngine(const EngineOptions& o) {
  // Interrupted (Ctrl-C, kill), the command takes its running hook and
  // everything the hook started with it (hook_runner.hpp).
  if (auto ok = KillHooksOnTermination(); !ok) return std::unexpected(ok.error());
  DeploymentSettings settings;
  settings.apps_root = o.apps_root;
  settings.retained_releases = o.keep;
  settings.health_check_attempts = o.health_attempts;
  settings.durable = !o.no_sync;
  auto hook_timeout = ParseTimeout(o.hook_timeout, "--hook-timeout");
  if (!hook_timeout) return std::unexpected(hook_timeout.error());
  settings.hook_timeout = *hook_timeout;
  auto health_timeout = ParseTimeout(o.health_timeout, "--health-timeout");
  if (!health_timeout) return std::unexpected(health_timeout.error());
  settings.health_check_timeout = *health_timeout;
  auto health_delay = ParseTimeout(o.health_delay, "--health-delay");
  if (!health_delay) return std::unexpected(health_delay.error());
  settings.health_check_delay = *health_delay;

  packaging::TrustStore trust;
  for (const auto& pem : o.trust) {
    if (auto ok = trust.AddFile(pem); !ok) {
      return std::unexpected(ok.error().WithContext(fmt::format("--trust {}", pem)));
    }
  }
  if (auto ok = platform::MakeDirectories(o.apps_root); !ok) return std::unexpected(ok.error());
  auto journal = Journal::Open(o.data);
  if (!journal) return std::unexpected(journal.error());
  auto engine = std::unique_ptr<Engine>(new Engine{std::move(*journal), {}, {}, {}, nullptr});
  engine->deployer =
      std::make_unique<Deployer>(std::move(settings), std::move(trust), HostFacts::Detect(),
                                 engine->journal, engine->sink, engine->hooks, engine->clock);
  return engine;
}

int RunDeployment(const EngineOptions& o, DeployOptions d, DeploymentKind kind) {
  auto engine = MakeEngine(o);
  if (!engine) return ReportError(engine.error());
  if (auto recovered = (*engine)->deployer->Recover(); !recovered) {
    return ReportError(recovered.error());
  }
  if (!d.app.empty()) {
    if (auto ok = CheckAppName(d.app); !ok) return ReportError(ok.error());
  }
  if (d.deployment.empty()) {
    d.deployment = d.sha256.empty() ? fmt::format("local-{}-{}", DeploymentKindName(kind), d.app)
                                    : "local-" + d.sha256.substr(0, 16);
  }
  DeploymentRequest request;
  request.deployment = d.deployment;
  request.kind = kind;
  request.package = d.package;
  request.package_sha256 = d.sha256;
  request.app = d.app;
  auto observe = ParseTimeout(d.observe, "--observe");
  if (!observe) return ReportError(observe.error());
  auto observe_interval = ParseTimeout(d.observe_interval, "--observe-interval");
  if (!observe_interval) return ReportError(observe_interval.error());
  request.observe = std::chrono::duration_cast<std::chrono::seconds>(*observe);
  request.observe_interval = std::chrono::duration_cast<std::chrono::seconds>(*observe_interval);
  auto outcome = (*engine)->deployer->Deploy(request);
  if (!outcome) return ReportError(outcome.error());
  if (!outcome->ok(kind)) {
    std::cerr << "fabu-agent: deployment " << outcome->deployment << " "
              << StepName(outcome->final_step) << ": " << outcome->message << "\n";
    return kExitFailed;
  }
  return 0;
}

int RunRecover(const EngineOptions& o) {
  auto engine = MakeEngine(o);
  if (!engine) return ReportError(engine.error());
  auto recovered = (*engine)->deployer->Recover();
  if (!recovered) return ReportError(recovered.error());
  if (!*recovered) {
    std::cerr << "fabu-agent: nothing was in flight\n";
    return 0;
  }
  const auto& outcome = **recovered;
  std::cerr << "fabu-agent: recovered deployment " << outcome.deployment << ": "
            << StepName(outcome.final_step) << "\n";
  return 0;
}

// The status for node_exporter's textfile collector, in Prometheus' text
// format (prometheus-cpp): what is installed, the deployment in progress, the
// last one finished and how old the journal is.
std::string StatusExposition(const nlohmann::json& status, const fs::path& journal_path) {
  prometheus::Registry registry;
  auto gauge = [&registry](const std::string& name, const std::string& help) -> auto& {
    return prometheus::BuildGauge().Name(name).Help(help).Register(registry);
  };
  const nlohmann::json& journal = status["journal"];
  auto text = [](const nlohmann::json& j, const char* key) {
    return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>()
                                                                  : std::string();
  };
  if (status.contains("apps")) {
    auto& installed = gauge("fabu_agent_app_installed_info",
                            "The version each application runs (its `current` link; always 1)");
    auto& kept = gauge("fabu_agent_app_releases_kept",
                       "Releases of each application kept on disk (what a rollback can use)");
    for (const auto& app : status["apps"]) {
      const std::string name = text(app, "name");
      if (app["current"].is_string()) {
        installed.Add({{"app", name}, {"version", app["current"].get<std::string>()}}).Set(1);
      }
      kept.Add({{"app", name}}).Set(static_cast<double>(app["releases"].size()));
    }
  }
  auto& in_flight = gauge("fabu_agent_deployment_in_progress",
                          "The deployment this agent is carrying out and its step (always 1)");
  if (journal.is_object() && journal.contains("in_flight")) {
    const auto& d = journal["in_flight"];
    in_flight
        .Add({{"deployment", text(d, "deployment")},
              {"app", text(d, "app")},
              {"version", text(d, "version")},
              {"step", text(d, "step")}})
        .Set(1);
  }
  auto& last = gauge("fabu_agent_last_deployment_info",
                     "The last deployment this agent finished and how (always 1)");
  if (journal.is_object() && journal.contains("last")) {
    const auto& d = journal["last"];
    last.Add({{"deployment", text(d, "deployment")},
              {"kind", text(d, "kind")},
              {"app", text(d, "app")},
              {"outcome", text(d, "outcome")},
              {"version", text(d, "current_version")}})
        .Set(1);
  }
  gauge("fabu_agent_events_unreported",
        "Events in the journal not yet acknowledged by the coordinator")
      .Add({})
      .Set(journal.is_object() && journal.contains("events")
               ? static_cast<double>(journal["events"].size())
               : 0.0);
  struct stat st {};
  if (::stat(journal_path.c_str(), &st) == 0) {
    gauge("fabu_agent_journal_updated_timestamp_seconds",
          "When the journal last changed (a step of a deployment, an acknowledgement)")
        .Add({})
        .Set(static_cast<double>(st.st_mtime));
  }
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry.Collect());
  return out.str();
}

int RunStatus(const std::string& data, const std::string& apps_root, bool prometheus) {
  nlohmann::json status = {{"journal", nullptr}};
  const fs::path path = fs::path(data) / Journal::kFileName;
  std::error_code ec;
  if (fs::exists(path, ec)) {
    // The journal is replaced by rename, so reading it needs no lock.
    auto text = platform::ReadWholeFile(path);
    if (!text) return ReportError(text.error());
    try {
      status["journal"] = nlohmann::json::parse(*text);
    } catch (const nlohmann::json::exception& e) {
      return ReportError(ErrorFromException(e, ErrorCode::kIntegrity,
                                            fmt::format("journal {} is damaged", path.string())));
    }
  }
  if (!apps_root.empty()) {
    auto apps = InstallLayout(apps_root).Inventory();
    if (!apps) return ReportError(apps.error());
    status["apps"] = nlohmann::json::array();
    for (const auto& app : *apps) {
      nlohmann::json releases = nlohmann::json::array();
      for (const auto& v : app.releases) releases.push_back(v.ToString());
      status["apps"].push_back(
          {{"name", app.name},
           {"current", app.current ? nlohmann::json(app.current->ToString()) : nullptr},
           {"releases", releases}});
    }
  }
  if (prometheus) {
    std::cout << StatusExposition(status, path);
    return 0;
  }
  // App names are directory names: any bytes.
  std::cout << status.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  return 0;
}

int RunAck(const std::string& data, const std::string& deployment, std::uint64_t through) {
  auto journal = Journal::Open(data);
  if (!journal) return ReportError(journal.error());
  if (auto ok = journal->Acknowledge(deployment, through); !ok) return ReportError(ok.error());
  if (auto ok = journal->WriteAcknowledged(); !ok) return ReportError(ok.error());
  return 0;
}

}  // namespace

void RegisterLocalCommands(CLI::App& app, int& exit_code) {
  {
    auto o = std::make_shared<EngineOptions>();
    auto d = std::make_shared<DeployOptions>();
    auto* install = app.add_subcommand("install", "Deploy a downloaded package on this host");
    AddEngineOptions(install, *o, /*trust_required=*/true);
    install->add_option("--package", d->package, "The package file")->required();
    install->add_option("--sha256", d->sha256, "Its expected SHA-256 (the package id)")->required();
    install->add_option("--deployment", d->deployment, "Deployment id (default local-<sha256>)");
    install
        ->add_option("--observe", d->observe,
                     "After the health check passed, keep re-running it this long (30s, 5m)")
        ->capture_default_str();
    install
        ->add_option("--observe-interval", d->observe_interval,
                     "How often to re-run it while observing (0: once, at the end)")
        ->capture_default_str();
    install->callback(
        [o, d, &exit_code] { exit_code = RunDeployment(*o, *d, DeploymentKind::kInstall); });
  }
  {
    auto o = std::make_shared<EngineOptions>();
    auto d = std::make_shared<DeployOptions>();
    auto* rollback =
        app.add_subcommand("rollback", "Restore the previous release kept on this host");
    AddEngineOptions(rollback, *o, /*trust_required=*/false);
    rollback->add_option("--app", d->app, "The application to roll back");
    rollback->add_option("--package", d->package,
                         "A package of the kept version to restore (verified with --trust)");
    rollback->add_option("--sha256", d->sha256, "Its expected SHA-256");
    rollback->add_option("--deployment", d->deployment, "Deployment id");
    rollback->callback(
        [o, d, &exit_code] { exit_code = RunDeployment(*o, *d, DeploymentKind::kRollback); });
  }
  {
    auto o = std::make_shared<EngineOptions>();
    auto* recover =
        app.add_subcommand("recover", "Finish a deployment interrupted by a crash, if any");
    AddEngineOptions(recover, *o, /*trust_required=*/false);
    recover->callback([o, &exit_code] { exit_code = RunRecover(*o); });
  }
  {
    auto data = std::make_shared<std::string>();
    auto apps_root = std::make_shared<std::string>();
    auto prometheus = std::make_shared<bool>(false);
    auto* status = app.add_subcommand("status", "Print the journal and what is installed (JSON)");
    status->add_option("--data", *data, "Agent data directory")->required();
    status->add_option("--apps-root", *apps_root, "Also list installed applications");
    status->add_flag("--prometheus", *prometheus,
                     "Print it in Prometheus' text format, for node_exporter's textfile collector");
    status->callback([data, apps_root, prometheus, &exit_code] {
      exit_code = RunStatus(*data, *apps_root, *prometheus);
    });
  }
  {
    auto data = std::make_shared<std::string>();
    auto deployment = std::make_shared<std::string>();
    auto through = std::make_shared<std::uint64_t>(0);
    auto* ack = app.add_subcommand("ack", "Drop reported events from the journal");
    ack->add_option("--data", *data, "Agent data directory")->required();
    ack->add_option("--deployment", *deployment, "Deployment id")->required();
    ack->add_option("--through", *through, "Last sequence number received")->required();
    ack->callback([data, deployment, through, &exit_code] {
      exit_code = RunAck(*data, *deployment, *through);
    });
  }
}

}  // namespace fabu::agent
