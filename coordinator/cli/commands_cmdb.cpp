// `fabu cmdb ...`: the built-in CMDB — hosts as configuration items, the
// upgrade record table — and the outbox feeding outside CMDBs.
#include <fmt/format.h>

#include <iostream>
#include <memory>

#include "coordinator/cli/client.hpp"
#include "coordinator/cli/commands.hpp"
#include "coordinator/cli/release_view.hpp"

namespace fabu::cli {
namespace {

using nlohmann::json;

void PrintRecords(const json& records) {
  std::cout << fmt::format("{:<20} {:<16} {:<12} {:<12} {:<21} {:<21} {:<14} {:<8} {}\n", "HOST",
                           "PACKAGE", "FROM", "TO", "STARTED", "FINISHED", "RESULT", "RELEASE",
                           "OPERATOR");
  for (const auto& r : records) {
    std::cout << fmt::format("{:<20} {:<16} {:<12} {:<12} {:<21} {:<21} {:<14} {:<8} {}\n",
                             CellText(r["host"]), CellText(r["package"]),
                             CellText(r["from_version"]), CellText(r["to_version"]),
                             CellText(r["started"]), CellText(r["finished"]), CellText(r["result"]),
                             CellText(r["release"]), CellText(r["operator"]));
  }
}

struct Args {
  ClientOptions client;
  std::string name, host, package, release, state, reason;
  bool json = false;
};

// Runs GET `path` for `command`, printing JSON or handing the answer to `print`.
template <typename Print>
void GetAndPrint(const std::string& command, const Args& args, const std::string& path,
                 int& exit_code, Print print) {
  auto client = ApiClient::Create(args.client);
  if (!client) return ReportFailure(command, client.error(), exit_code);
  auto r = client->Get(path);
  if (!r) return ReportFailure(command, r.error(), exit_code);
  if (args.json) {
    std::cout << r->dump(2) << "\n";
    return;
  }
  print(*r);
}

std::string Query(const ApiClient& client,
                  const std::vector<std::pair<const char*, std::string>>& params) {
  std::string query;
  for (const auto& [name, value] : params) {
    if (value.empty()) continue;
    query += (query.empty() ? "?" : "&") + std::string(name) + "=" + client.Escape(value);
  }
  return query;
}

}  // namespace

void RegisterCmdbCommands(CLI::App& app, int& exit_code) {
  auto* cmdb = app.add_subcommand(
      "cmdb", "The CMDB: hosts, installed software, upgrade records, outward deliveries");
  cmdb->require_subcommand(1);

  // fabu cmdb hosts
  auto hosts_args = std::make_shared<Args>();
  auto* hosts = cmdb->add_subcommand("hosts", "Hosts as configuration items, with their software");
  hosts->add_flag("--json", hosts_args->json, "Print JSON");
  AddClientOptions(hosts, hosts_args->client);
  hosts->callback([&exit_code, hosts_args] {
    GetAndPrint("cmdb hosts", *hosts_args, "/api/v1/cmdb/hosts", exit_code, [](const json& r) {
      std::cout << fmt::format("{:<24} {:<10} {:<22} {}\n", "HOST", "AGENT", "LAST SEEN",
                               "SOFTWARE");
      for (const auto& h : r["hosts"]) {
        std::string apps;
        for (const auto& a : h["apps"]) {
          if (!apps.empty()) apps += ", ";
          apps += a.value("name", "") + " " + CellText(a["current"]);
        }
        std::cout << fmt::format("{:<24} {:<10} {:<22} {}\n", CellText(h["name"]),
                                 CellText(h["agent_version"]), CellText(h["last_seen"]),
                                 apps.empty() ? "-" : apps);
      }
    });
  });

  // fabu cmdb host NAME
  auto host_args = std::make_shared<Args>();
  auto* host = cmdb->add_subcommand("host", "One host: facts, software, upgrade history");
  host->add_option("NAME", host_args->name, "Host name")->required();
  host->add_flag("--json", host_args->json, "Print JSON");
  AddClientOptions(host, host_args->client);
  host->callback([&exit_code, host_args] {
    auto client = ApiClient::Create(host_args->client);
    if (!client) return ReportFailure("cmdb host", client.error(), exit_code);
    GetAndPrint("cmdb host", *host_args, "/api/v1/cmdb/hosts/" + client->Escape(host_args->name),
                exit_code, [](const json& h) {
                  const json& inv = h.contains("inventory") ? h["inventory"] : json::object();
                  std::cout << fmt::format("{}\n", CellText(h["name"]));
                  std::cout << fmt::format("  agent      {}\n", CellText(h["agent_version"]));
                  std::cout << fmt::format("  last seen  {}\n", CellText(h["last_seen"]));
                  if (inv.is_object()) {
                    std::cout << fmt::format("  system     {} {} {}, {} cpu(s)\n",
                                             inv.value("os", ""), inv.value("kernel", ""),
                                             inv.value("arch", ""), inv.value("cpus", 0));
                  }
                  std::string labels;
                  for (const auto& [k, v] : h["labels"].items()) {
                    labels += (labels.empty() ? "" : ",") + k + "=" + v.get<std::string>();
                  }
                  std::cout << fmt::format("  labels     {}\n", labels.empty() ? "-" : labels);
                  for (const auto& a : h["apps"]) {
                    std::cout << fmt::format("  software   {} {}\n", a.value("name", ""),
                                             CellText(a["current"]));
                  }
                  std::cout << "  upgrades\n";
                  PrintRecords(h["upgrades"]);
                });
  });

  // fabu cmdb history [--host H] [--package P] [--release R]
  auto history_args = std::make_shared<Args>();
  auto* history = cmdb->add_subcommand("history", "The upgrade record table (升级记录表)");
  history->add_option("--host", history_args->host, "Only this host");
  history->add_option("--package", history_args->package, "Only this package");
  history->add_option("--release", history_args->release, "Only this release");
  history->add_flag("--json", history_args->json, "Print JSON");
  AddClientOptions(history, history_args->client);
  history->callback([&exit_code, history_args] {
    auto client = ApiClient::Create(history_args->client);
    if (!client) return ReportFailure("cmdb history", client.error(), exit_code);
    const std::string query = Query(*client, {{"host", history_args->host},
                                              {"package", history_args->package},
                                              {"release", history_args->release}});
    GetAndPrint("cmdb history", *history_args, "/api/v1/cmdb/history" + query, exit_code,
                [](const json& r) { PrintRecords(r["records"]); });
  });

  // fabu cmdb baseline R: the release's configuration baseline (procedure
  // §6.2.1(9), §6.2.8), before the rollout and at close.
  auto baseline_args = std::make_shared<Args>();
  auto* baseline = cmdb->add_subcommand(
      "baseline", "A release's configuration baseline: each target's software before and after");
  baseline->add_option("R", baseline_args->release, "Release id")->required();
  baseline->add_flag("--json", baseline_args->json, "Print JSON (the baseline rows)");
  AddClientOptions(baseline, baseline_args->client);
  baseline->callback([&exit_code, baseline_args] {
    auto client = ApiClient::Create(baseline_args->client);
    if (!client) return ReportFailure("cmdb baseline", client.error(), exit_code);
    auto r = client->Get("/api/v1/releases/" + client->Escape(baseline_args->release) +
                         "/upgrade-records");
    if (!r) return ReportFailure("cmdb baseline", r.error(), exit_code);
    if (baseline_args->json) {
      std::cout << json{{"release", baseline_args->release}, {"baseline", (*r)["baseline"]}}.dump(2)
                << "\n";
      return;
    }
    std::cout << BaselineText((*r)["baseline"]);
  });

  // fabu cmdb outbox [--release R] [--state S]
  auto outbox_args = std::make_shared<Args>();
  auto* outbox = cmdb->add_subcommand(
      "outbox", "Deliveries to outside CMDBs: pending, failing (with the last error), delivered");
  outbox->add_option("--release", outbox_args->release, "Only this release");
  outbox->add_option("--state", outbox_args->state, "pending, failing, delivered or waived");
  outbox->add_flag("--json", outbox_args->json, "Print JSON");
  AddClientOptions(outbox, outbox_args->client);
  outbox->callback([&exit_code, outbox_args] {
    auto client = ApiClient::Create(outbox_args->client);
    if (!client) return ReportFailure("cmdb outbox", client.error(), exit_code);
    const std::string query =
        Query(*client, {{"release", outbox_args->release}, {"state", outbox_args->state}});
    GetAndPrint(
        "cmdb outbox", *outbox_args, "/api/v1/cmdb/outbox" + query, exit_code, [](const json& r) {
          std::cout << fmt::format("{:<6} {:<12} {:<10} {:<8} {:<21} {:<48} {}\n", "ID",
                                   "CONNECTOR", "STATE", "ATTEMPTS", "NEXT", "KEY", "LAST ERROR");
          for (const auto& m : r["messages"]) {
            std::cout << fmt::format("{:<6} {:<12} {:<10} {:<8} {:<21} {:<48} {}\n",
                                     m.value("id", 0), CellText(m["connector"]),
                                     CellText(m["state"]), m.value("attempts", 0),
                                     CellText(m["next_attempt"]), CellText(m["idempotency_key"]),
                                     CellText(m["last_error"]));
          }
        });
  });

  // fabu cmdb waive R --reason ...
  auto waive_args = std::make_shared<Args>();
  auto* waive = cmdb->add_subcommand(
      "waive", "Waive a release's outstanding outward deliveries, saying why (approver)");
  waive->add_option("R", waive_args->release, "Release id")->required();
  waive->add_option("--reason", waive_args->reason, "Why the outside CMDB will not get them")
      ->required();
  AddClientOptions(waive, waive_args->client);
  waive->callback([&exit_code, waive_args] {
    auto client = ApiClient::Create(waive_args->client);
    if (!client) return ReportFailure("cmdb waive", client.error(), exit_code);
    auto r = client->Post("/api/v1/releases/" + client->Escape(waive_args->release) + "/cmdb/waive",
                          {{"reason", waive_args->reason}});
    if (!r) return ReportFailure("cmdb waive", r.error(), exit_code);
    std::cout << fmt::format(
        "{} delivery(ies) of {} waived; CMDB update {}\n", r->value("waived", 0),
        waive_args->release,
        (*r)["cmdb"].value("confirmed", false) ? "confirmed" : "not confirmed yet");
  });
}

}  // namespace fabu::cli
