// `fabu enroll-token create`, `fabu hosts list`, `fabu host remove|revoke`: the
// hosts agents run on and how they enroll.
#include <fmt/format.h>

#include <iostream>
#include <memory>

#include "coordinator/cli/client.hpp"
#include "coordinator/cli/commands.hpp"
#include "coordinator/release/release_plan.hpp"

namespace fabu::cli {
namespace {

using nlohmann::json;

std::string LabelText(const json& labels) {
  std::string out;
  for (const auto& [key, value] : labels.items()) {
    if (!out.empty()) out += ",";
    out += key + "=" + value.get<std::string>();
  }
  return out.empty() ? "-" : out;
}

std::string AppsText(const json& apps) {
  std::string out;
  for (const auto& app : apps) {
    if (!out.empty()) out += ",";
    const std::string current = app.value("current", "");
    out += app.value("name", "") + "@" + (current.empty() ? "-" : current);
  }
  return out.empty() ? "-" : out;
}

}  // namespace

void RegisterHostCommands(CLI::App& app, int& exit_code) {
  // fabu enroll-token create
  auto* token = app.add_subcommand("enroll-token", "One-time tokens that let agents enroll");
  token->require_subcommand(1);
  struct TokenArgs {
    ClientOptions client;
    std::string labels;
    std::int64_t uses = 1;
    std::string ttl = "1h";
  };
  auto token_args = std::make_shared<TokenArgs>();
  auto* create = token->add_subcommand(
      "create", "Make an enrollment token; prints it alone (admin or release_manager)");
  create->add_option("--labels", token_args->labels,
                     "Labels the enrolled hosts get, e.g. env=production,site=gz");
  create->add_option("--uses", token_args->uses, "How many hosts may enroll with it (default 1)");
  create->add_option("--ttl", token_args->ttl,
                     "How long it is valid, e.g. 30m, 1h, 2d (default 1h)");
  AddClientOptions(create, token_args->client);
  create->callback([&exit_code, token_args] {
    json body = {{"uses", token_args->uses}, {"ttl", token_args->ttl}};
    json labels = json::object();
    if (!token_args->labels.empty()) {
      auto parsed = coordinator::release::TargetSelector::Parse(token_args->labels);
      if (!parsed) {
        return ReportFailure("enroll-token create", parsed.error().WithContext("--labels"),
                             exit_code);
      }
      for (const auto& [key, value] : parsed->labels) labels[key] = value;
    }
    body["labels"] = labels;
    auto client = ApiClient::Create(token_args->client);
    if (!client) return ReportFailure("enroll-token create", client.error(), exit_code);
    auto created = client->Post("/api/v1/enroll-tokens", body);
    if (!created) return ReportFailure("enroll-token create", created.error(), exit_code);
    std::cout << created->value("token", "") << "\n";
  });

  // fabu enroll-token list
  struct TokenListArgs {
    ClientOptions client;
    bool json = false;
  };
  auto token_list_args = std::make_shared<TokenListArgs>();
  auto* token_list = token->add_subcommand(
      "list", "Enrollment tokens by id (never the token): state, uses, expiry, who made them");
  token_list->add_flag("--json", token_list_args->json, "Print JSON");
  AddClientOptions(token_list, token_list_args->client);
  token_list->callback([&exit_code, token_list_args] {
    auto client = ApiClient::Create(token_list_args->client);
    if (!client) return ReportFailure("enroll-token list", client.error(), exit_code);
    auto listed = client->Get("/api/v1/enroll-tokens");
    if (!listed) return ReportFailure("enroll-token list", listed.error(), exit_code);
    const json& tokens = (*listed)["tokens"];
    if (token_list_args->json) {
      std::cout << tokens.dump(2) << "\n";
      return;
    }
    std::cout << fmt::format("{:<13} {:<8} {:<5} {:<21} {:<32} {}\n", "ID", "STATE", "USES",
                             "EXPIRES", "LABELS", "CREATED BY");
    for (const auto& t : tokens) {
      std::string state = t.value("state", "");
      if (state == "revoked") state += " by " + t.value("revoked_by", "");
      std::cout << fmt::format("{:<13} {:<8} {:<5} {:<21} {:<32} {}\n", t.value("id", ""), state,
                               fmt::format("{}/{}", t.value("uses", 0), t.value("uses_allowed", 0)),
                               t.value("expires", ""), LabelText(t["labels"]),
                               t.value("created_by", ""));
    }
  });

  // fabu enroll-token revoke ID --reason
  struct RevokeArgs {
    ClientOptions client;
    std::string id, reason;
  };
  auto revoke_args = std::make_shared<RevokeArgs>();
  auto* revoke = token->add_subcommand(
      "revoke", "Revoke an enrollment token: no host enrolls with it any more");
  revoke->add_option("ID", revoke_args->id, "The token's id, as `enroll-token list` shows it")
      ->required();
  revoke->add_option("--reason", revoke_args->reason, "Why (kept in the audit trail)")->required();
  AddClientOptions(revoke, revoke_args->client);
  revoke->callback([&exit_code, revoke_args] {
    auto client = ApiClient::Create(revoke_args->client);
    if (!client) return ReportFailure("enroll-token revoke", client.error(), exit_code);
    auto revoked =
        client->Post("/api/v1/enroll-tokens/" + client->Escape(revoke_args->id) + "/revoke",
                     json{{"reason", revoke_args->reason}});
    if (!revoked) return ReportFailure("enroll-token revoke", revoked.error(), exit_code);
    std::cout << fmt::format("enrollment token {} revoked; hosts enrolled with it stay\n",
                             revoked->value("id", ""));
  });

  // fabu hosts list
  auto* hosts = app.add_subcommand("hosts", "Enrolled hosts");
  hosts->require_subcommand(1);
  struct ListArgs {
    ClientOptions client;
    std::string selector;
    bool json = false;
  };
  auto list_args = std::make_shared<ListArgs>();
  auto* list =
      hosts->add_subcommand("list", "List hosts: labels, last seen, agent, installed apps");
  list->add_option("--selector", list_args->selector, "Only hosts with these labels: k=v,...");
  list->add_flag("--json", list_args->json, "Print JSON");
  AddClientOptions(list, list_args->client);
  list->callback([&exit_code, list_args] {
    auto client = ApiClient::Create(list_args->client);
    if (!client) return ReportFailure("hosts list", client.error(), exit_code);
    std::string path = "/api/v1/hosts";
    if (!list_args->selector.empty()) path += "?selector=" + client->Escape(list_args->selector);
    auto listed = client->Get(path);
    if (!listed) return ReportFailure("hosts list", listed.error(), exit_code);
    const json& items = (*listed)["hosts"];
    if (list_args->json) {
      std::cout << items.dump(2) << "\n";
      return;
    }
    std::cout << fmt::format("{:<24} {:<32} {:<22} {:<10} {:<22} {}\n", "NAME", "LABELS",
                             "LAST SEEN", "AGENT", "CERTIFICATE UNTIL", "APPS");
    for (const auto& h : items) {
      // A host without a client certificate uses its credential alone
      // (docs/security.md): "none".
      const json certificate = h.value("certificate", json());
      const std::string cert_text = certificate.is_object()
                                        ? certificate.value("not_after", std::string("?"))
                                        : std::string("none");
      std::cout << fmt::format(
          "{:<24} {:<32} {:<22} {:<10} {:<22} {}\n", h.value("name", ""), LabelText(h["labels"]),
          h["last_seen"].is_string() ? h["last_seen"].get<std::string>() : std::string("-"),
          h.value("agent_version", "").empty() ? "-" : h.value("agent_version", ""), cert_text,
          AppsText(h["apps"]));
    }
  });

  // fabu host remove
  auto* host = app.add_subcommand("host", "One enrolled host");
  host->require_subcommand(1);
  struct RemoveArgs {
    ClientOptions client;
    std::string name;
  };
  auto remove_args = std::make_shared<RemoveArgs>();
  auto* remove = host->add_subcommand(
      "remove", "Remove a host (admin): its credential stops working; its name may enroll again");
  remove->add_option("NAME", remove_args->name, "Host name")->required();
  AddClientOptions(remove, remove_args->client);
  remove->callback([&exit_code, remove_args] {
    auto client = ApiClient::Create(remove_args->client);
    if (!client) return ReportFailure("host remove", client.error(), exit_code);
    auto done = client->Post("/api/v1/hosts/" + client->Escape(remove_args->name) + "/remove",
                             json::object());
    if (!done) return ReportFailure("host remove", done.error(), exit_code);
    std::cout << "host " << remove_args->name << " removed\n";
  });

  // fabu host revoke
  struct HostRevokeArgs {
    ClientOptions client;
    std::string name;
    std::string reason;
  };
  auto host_revoke_args = std::make_shared<HostRevokeArgs>();
  auto* host_revoke = host->add_subcommand(
      "revoke",
      "Revoke a host no longer trusted (admin): its credential is refused from now on, its "
      "unfinished deployments end, and only a new enrollment token brings it back");
  host_revoke->add_option("NAME", host_revoke_args->name, "Host name")->required();
  host_revoke
      ->add_option("--reason", host_revoke_args->reason,
                   "Why (kept in the audit trail and the host's record)")
      ->required();
  AddClientOptions(host_revoke, host_revoke_args->client);
  host_revoke->callback([&exit_code, host_revoke_args] {
    auto client = ApiClient::Create(host_revoke_args->client);
    if (!client) return ReportFailure("host revoke", client.error(), exit_code);
    auto done = client->Post("/api/v1/hosts/" + client->Escape(host_revoke_args->name) + "/revoke",
                             json{{"reason", host_revoke_args->reason}});
    if (!done) return ReportFailure("host revoke", done.error(), exit_code);
    std::cout << "host " << host_revoke_args->name << " revoked at "
              << done->value("removed_at", "") << "\n";
  });
}

}  // namespace fabu::cli
