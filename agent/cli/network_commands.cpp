#include "agent/cli/network_commands.hpp"

#include <fmt/format.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "agent/common/log.hpp"
#include "agent/config/agent_config.hpp"
#include "agent/host/host_inventory.hpp"
#include "agent/install/install_layout.hpp"
#include "agent/net/agent_api_client.hpp"
#include "agent/net/client_identity.hpp"
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
  std::vector<std::string> servers;
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

// DATA/enroll.key: the enroll key of an enrollment not yet answered.
constexpr std::string_view kEnrollKeyFile = "enroll.key";
constexpr int kEnrollAttempts = 3;

// The key kept from an earlier attempt, or 256 new random bits (64 hex
// digits) written to `file` (0600, durably) before they are sent.
Result<std::string> LoadOrMakeEnrollKey(const fs::path& file) {
  std::error_code ec;
  if (fs::exists(file, ec)) {
    std::ifstream in(file);
    std::string key;
    std::getline(in, key);
    if (key.size() == 64 && key.find_first_not_of("0123456789abcdef") == std::string::npos) {
      return key;
    }
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("{} is not an enroll key (64 hex digits); remove it and enroll again",
                            file.string()));
  }
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    return Fail(ErrorCode::kInternal, "no random bytes for the enroll key (OpenSSL RAND_bytes)");
  }
  std::string key;
  for (unsigned char b : bytes) key += fmt::format("{:02x}", b);
  if (auto ok = WriteCredential(file, key); !ok) return std::unexpected(ok.error());
  return key;
}

// A TLS failure (the pinned CA does not match): nothing reached the
// coordinator, and trying again will not help.
bool IsTlsFailure(const Error& e) {
  return e.message().find("TLS") != std::string::npos ||
         e.message().find("certificate") != std::string::npos ||
         e.message().find("SSL") != std::string::npos;
}

Result<std::string> Enroll(EnrollOptions o) {
  for (std::string& server : o.servers) {
    if (!server.starts_with("https://")) {
      return Fail(ErrorCode::kInvalidArgument,
                  fmt::format("--server {}: the coordinator speaks HTTPS only (https://HOST:PORT)",
                              server));
    }
    while (server.back() == '/') server.pop_back();
  }
  for (std::size_t i = 0; i < o.servers.size(); ++i) {
    if (std::ranges::count(o.servers, o.servers[i]) > 1) {
      return Fail(ErrorCode::kInvalidArgument,
                  fmt::format("--server {} is given twice", o.servers[i]));
    }
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
  // The coordinator's CA pinned, never a proxy, a stalled peer abandoned
  // (docs/agent.md).
  platform::HttpClientOptions settings;
  settings.ca_file = o.ca;
  settings.low_speed_limit_bytes = 1024;
  auto http = platform::HttpClient::Create(settings);
  if (!http) return std::unexpected(http.error());
  AgentApiClient api(std::move(*http), o.servers, "");

  // The enroll key goes into the data directory before the request, so that
  // an answer lost on the way (the enrollment committed, the connection
  // dropped) can be asked for again: the same token, name and key get the
  // same answer (docs/agent.md, "On a customer server: enroll and run").
  const bool made_data = !fs::exists(data, ec);
  if (auto ok = platform::MakeDirectories(data); !ok) return std::unexpected(ok.error());
  ::chmod(data.c_str(), 0700);
  const fs::path key_file = data / kEnrollKeyFile;
  auto key = LoadOrMakeEnrollKey(key_file);
  if (!key) return std::unexpected(key.error());
  // Nothing left behind when there is no enrollment to come back to.
  const auto forget = [&] {
    fs::remove(key_file, ec);
    ForgetPendingKey(data);
    if (made_data) fs::remove(data, ec);
  };
  // The host's own key for its client certificate (mutual TLS), kept with
  // the enroll key so that a retry asks for the same key's certificate.
  auto csr = PendingCertificateRequest(data, o.name);
  if (!csr) {
    forget();
    return std::unexpected(csr.error());
  }

  protocol::EnrollRequest request{o.token, o.name, *labels, *inventory, *key, *csr};
  // A dropped connection or a timeout is retried with the same key, a few
  // times, before the operator is asked to run the command again. A
  // coordinator that is away (no answer, or 503) is left for the next
  // --server at once (the same key makes the enrollment the same on any of
  // them); the pause comes after each round of them all. A TLS failure is
  // not retried on the same coordinator: trying again will not help.
  const std::size_t count = api.servers().size();
  const int attempts = kEnrollAttempts * static_cast<int>(count);
  std::map<std::string, Error> failures;  // the last error of each coordinator
  const auto all_tls = [&] {
    return failures.size() == count &&
           std::ranges::all_of(failures, [](const auto& f) { return IsTlsFailure(f.second); });
  };
  auto response = api.Enroll(request);
  for (int attempt = 1;
       attempt < attempts && !response && response.error().code() == ErrorCode::kUnavailable;
       ++attempt) {
    const Error& e = response.error();
    failures.insert_or_assign(api.server(), e);
    if (all_tls()) break;
    if (api.NoteFailure(e)) {
      log::Warn("enrollment: {}; trying {}", e.message(), api.server());
      if (api.server() == api.servers().front()) {
        std::this_thread::sleep_for(std::chrono::seconds(attempt / static_cast<int>(count)));
      }
    } else {
      if (IsTlsFailure(e)) break;
      log::Warn("enrollment: {}; retrying ({} of {})", e.message(), attempt + 1, attempts);
      std::this_thread::sleep_for(std::chrono::seconds(attempt));
    }
    response = api.Enroll(request);
  }
  if (!response) {
    const Error& e = response.error();
    if (e.code() == ErrorCode::kUnavailable) {
      failures.insert_or_assign(api.server(), e);
      std::string where, why;
      for (const std::string& server : api.servers()) {
        auto it = failures.find(server);
        if (it == failures.end()) continue;
        where += fmt::format("{}{}", where.empty() ? "" : ", ", server);
        why += fmt::format("{}{}", why.empty() ? "" : "; ", it->second.message());
      }
      const std::string what = failures.size() == 1
                                   ? fmt::format("the coordinator at {}", where)
                                   : fmt::format("any of the coordinators ({})", where);
      if (all_tls() || (count == 1 && IsTlsFailure(e))) {
        forget();
        return Fail(
            ErrorCode::kUnavailable,
            fmt::format("cannot reach {}: {} (is --ca the coordinator's ca.pem?)", what, why));
      }
      return Fail(ErrorCode::kUnavailable,
                  fmt::format("cannot reach {}: {}; run the same command "
                              "again: it repeats this enrollment with {}, so a retry gets the "
                              "same answer even if the first one was lost",
                              what, why, key_file.string()));
    }
    forget();
    return Fail(e.code(), fmt::format("the coordinator refused the enrollment: {}", e.message()));
  }

  // The credential first: it is shown once, losing it would orphan the host.
  if (auto ok = WriteCredential(credential_path, response->credential); !ok) {
    return std::unexpected(ok.error());
  }
  if (!response->certificate.empty()) {
    if (auto ok = StoreClientIdentity(data, response->certificate); !ok) {
      return std::unexpected(ok.error().WithContext("storing the client certificate"));
    }
  } else {
    // Answered without a certificate (the repeat of an enrollment made
    // without a CSR): the host uses its credential alone.
    ForgetPendingKey(data);
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
  config.servers = o.servers;
  config.name = response->name;
  config.apps_root = apps_root.string();
  if (auto ok = WriteAgentConfig(data, config); !ok) return std::unexpected(ok.error());
  fs::remove(key_file, ec);  // enrolled: there is nothing left to repeat
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
  if (auto ok = (*runner)->Run(); !ok) {
    if (ok.error().code() != ErrorCode::kUnauthenticated) return ReportError(ok.error());
    log::Error(
        "the coordinator refused this host's credential: {}. fabu-agent exits with status {} and "
        "will not be restarted (fabu-agent.service: RestartPreventExitStatus={}). To enroll "
        "again: move {} aside, run `fabu-agent enroll` with a new token, then start the agent "
        "(`systemctl start fabu-agent`)",
        ok.error().message(), kExitCredentialRefused, kExitCredentialRefused,
        fs::absolute(data).string());
    return kExitCredentialRefused;
  }
  return 0;
}

}  // namespace

void RegisterNetworkCommands(CLI::App& app, int& exit_code) {
  {
    auto o = std::make_shared<EnrollOptions>();
    auto* enroll = app.add_subcommand("enroll", "Register this host with a coordinator");
    enroll
        ->add_option("--server", o->servers,
                     "Coordinator URL, https://HOST:PORT; repeat it for each coordinator of "
                     "the installation (the first that answers enrolls the host)")
        ->required();
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
    auto log_format = std::make_shared<std::string>();
    run->add_option("--log-format", *log_format,
                    "text, json (lines on stderr) or journal (systemd; the default when stderr "
                    "is the journal)");
    run->callback([data, log_format, &exit_code] {
      if (!log_format->empty()) {
        auto format = platform::log::ParseFormat(*log_format);
        if (!format) {
          std::cerr << "fabu-agent run: " << format.error().message() << "\n";
          exit_code = 2;
          return;
        }
        log::SetFormat(*format);
      }
      exit_code = Run(*data);
    });
  }
}

}  // namespace fabu::agent
