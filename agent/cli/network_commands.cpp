#include "agent/cli/network_commands.hpp"

#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/common/log.hpp"
#include "agent/config/agent_config.hpp"
#include "agent/host/host_inventory.hpp"
#include "agent/install/install_layout.hpp"
#include "agent/net/agent_api_client.hpp"
#include "agent/run/agent_runner.hpp"
#include "agent/run/stop_signal.hpp"
#include "packaging/keys.hpp"
#include "platform/fs/files.hpp"

namespace fabu::agent {

namespace fs = std::filesystem;

namespace {

constexpr int kExitError = 2;

int ReportError(const Error& error) {
  std::cerr << "fabu-agent: error: " << error.message() << "\n";
  return kExitError;
}

struct EnrollOptions {
  std::string server;
  std::string ca;
  std::string token;
  std::string data;
  std::string name;
  std::string labels;
  std::string apps_root = "/opt/fabu/apps";
  std::vector<std::string> trust;
};

bool IsHostName(const std::string& name) {
  return !name.empty() && name.size() <= 64 &&
         name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.-") == std::string::npos;
}

Result<std::map<std::string, std::string>> ParseLabels(const std::string& text) {
  std::map<std::string, std::string> labels;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    const std::string item = text.substr(start, end - start);
    const auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Fail(ErrorCode::kInvalidArgument,
                  fmt::format("--labels: \"{}\" is not key=value", item));
    }
    labels[item.substr(0, eq)] = item.substr(eq + 1);
    start = end + 1;
  }
  return labels;
}

Result<void> CopyFileDurably(const fs::path& from, const fs::path& to) {
  auto content = platform::ReadWholeFile(from);
  if (!content) return std::unexpected(content.error());
  return platform::WriteFileDurably(to, *content);
}

Result<std::string> Enroll(EnrollOptions o) {
  if (!o.server.starts_with("https://")) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("--server {}: the coordinator speaks HTTPS only (https://HOST:PORT)",
                            o.server));
  }
  auto ca_text = platform::ReadWholeFile(o.ca);
  if (!ca_text) return std::unexpected(ca_text.error().WithContext("--ca"));
  if (ca_text->find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("--ca {}: not a PEM certificate (use the coordinator's ca.pem from "
                            "`fabu-coordinator init`)",
                            o.ca));
  }
  if (o.name.empty()) {
    o.name = LocalHostname();
    std::ranges::transform(o.name, o.name.begin(),
                           [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  }
  if (!IsHostName(o.name)) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("host name \"{}\" is not valid ([a-z0-9.-], 1-64 characters); "
                            "choose one with --name",
                            o.name));
  }
  auto labels = ParseLabels(o.labels);
  if (!labels) return std::unexpected(labels.error());
  packaging::TrustStore trust;
  for (const auto& pem : o.trust) {
    if (auto ok = trust.AddFile(pem); !ok) {
      return std::unexpected(ok.error().WithContext(fmt::format("--trust {}", pem)));
    }
  }
  const fs::path data = fs::absolute(o.data);
  const fs::path apps_root = fs::absolute(o.apps_root);
  AgentConfig config;
  const fs::path credential_path = ResolvePath(data, config.credential);
  std::error_code ec;
  if (fs::exists(credential_path, ec) || fs::exists(data / AgentConfig::kFileName, ec)) {
    return Fail(ErrorCode::kAlreadyExists,
                fmt::format("{} is already enrolled (it holds a credential); remove the data "
                            "directory to enroll again",
                            data.string()));
  }

  auto inventory = CollectInventory(InstallLayout(apps_root));
  if (!inventory) return std::unexpected(inventory.error());
  HttpsSettings settings;
  settings.ca = o.ca;
  auto http = HttpsClient::Create(settings);
  if (!http) return std::unexpected(http.error());
  AgentApiClient api(std::move(*http), o.server, "");
  // No enroll_key: this command does not retry (see protocol/agent_api.hpp).
  protocol::EnrollRequest request{o.token, o.name, *labels, *inventory, {}};
  auto response = api.Enroll(request);
  if (!response) {
    const Error& e = response.error();
    if (e.code() == ErrorCode::kUnavailable) {
      const bool tls = e.message().find("certificate") != std::string::npos ||
                       e.message().find("SSL") != std::string::npos;
      return Fail(ErrorCode::kUnavailable,
                  fmt::format("cannot reach the coordinator at {}: {}{}", o.server, e.message(),
                              tls ? " (is --ca the coordinator's ca.pem?)" : ""));
    }
    return Fail(e.code(), fmt::format("the coordinator refused the enrollment: {}", e.message()));
  }

  // Only now the data directory: a refused enrollment leaves nothing behind.
  if (auto ok = platform::MakeDirectories(data); !ok) return std::unexpected(ok.error());
  ::chmod(data.c_str(), 0700);
  // The credential first: it is shown once, losing it would orphan the host.
  if (auto ok = WriteCredential(credential_path, response->credential); !ok) {
    return std::unexpected(ok.error());
  }
  if (auto ok = CopyFileDurably(o.ca, data / "ca.pem"); !ok) return std::unexpected(ok.error());
  if (auto ok = platform::MakeDirectories(data / "trusted"); !ok)
    return std::unexpected(ok.error());
  for (std::size_t i = 0; i < o.trust.size(); ++i) {
    const std::string name =
        fmt::format("trusted/{}-{}", i, fs::path(o.trust[i]).filename().string());
    if (auto ok = CopyFileDurably(o.trust[i], data / name); !ok) return std::unexpected(ok.error());
    config.trusted_keys.push_back(name);
  }
  config.server = o.server;
  config.name = response->name;
  config.apps_root = apps_root.string();
  if (auto ok = WriteAgentConfig(data, config); !ok) return std::unexpected(ok.error());
  std::string labels_text;
  for (const auto& [k, v] : response->labels) {
    labels_text += fmt::format("{}{}={}", labels_text.empty() ? "" : ",", k, v);
  }
  return fmt::format("enrolled as {} (labels: {}); start the agent with `fabu-agent run --data {}`",
                     response->name, labels_text.empty() ? "none" : labels_text, data.string());
}

int Run(const std::string& data) {
  auto stop = StopSignal::Install();
  if (!stop) return ReportError(stop.error());
  auto runner = AgentRunner::Create(fs::absolute(data), **stop);
  if (!runner) return ReportError(runner.error());
  if (auto ok = (*runner)->Run(); !ok) return ReportError(ok.error());
  return 0;
}

}  // namespace

void RegisterNetworkCommands(CLI::App& app, int& exit_code) {
  {
    auto o = std::make_shared<EnrollOptions>();
    auto* enroll = app.add_subcommand("enroll", "Register this host with a coordinator");
    enroll->add_option("--server", o->server, "Coordinator URL, https://HOST:PORT")->required();
    enroll->add_option("--ca", o->ca, "The coordinator's CA certificate (ca.pem) to pin")
        ->required();
    enroll->add_option("--token", o->token, "Enrollment token (fabu enroll-token create)")
        ->required();
    enroll->add_option("--data", o->data, "Agent data directory")->required();
    enroll->add_option("--name", o->name, "Host name in fabu (default: the hostname)");
    enroll->add_option("--labels", o->labels, "Labels, k=v,k2=v2");
    enroll->add_option("--apps-root", o->apps_root, "Where applications are installed")
        ->capture_default_str();
    enroll->add_option("--trust", o->trust, "Trusted publisher public key (PEM), repeatable");
    enroll->callback([o, &exit_code] {
      auto done = Enroll(*o);
      if (!done) {
        exit_code = ReportError(done.error());
        return;
      }
      std::cout << *done << "\n";
      exit_code = 0;
    });
  }
  {
    auto data = std::make_shared<std::string>();
    auto* run = app.add_subcommand("run", "Run the agent: poll the coordinator and deploy");
    run->add_option("--data", *data, "Agent data directory (enrolled)")->required();
    run->callback([data, &exit_code] { exit_code = Run(*data); });
  }
}

}  // namespace fabu::agent
