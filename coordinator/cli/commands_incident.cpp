// `fabu incident ...` (procedure §6.2.10) and `fabu release
// review-notes`: what went wrong after a release, and what was learned.
#include <fmt/format.h>

#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "coordinator/cli/client.hpp"
#include "coordinator/cli/commands.hpp"

namespace fabu::cli {
namespace {

using nlohmann::json;

void PrintIncidents(const json& list) {
  std::cout << fmt::format("{:<6} {:<8} {:<4} {:<7} {:<12} {:<20} {:<21} {}\n", "ID", "RELEASE",
                           "SEV", "STATE", "SOURCE", "HOST", "OPENED", "SUMMARY");
  for (const auto& i : list) {
    std::cout << fmt::format("{:<6} {:<8} {:<4} {:<7} {:<12} {:<20} {:<21} {}\n", CellText(i["id"]),
                             CellText(i["release"]), CellText(i["severity"]), CellText(i["state"]),
                             CellText(i["source"]), CellText(i["host"]), CellText(i["created_utc"]),
                             CellText(i["summary"]));
  }
}

}  // namespace

void RegisterIncidentCommands(CLI::App& app, int& exit_code) {
  struct Args {
    ClientOptions client;
    std::string id, release, severity, summary, host, file;
    bool json = false;
  };
  auto* incident = app.add_subcommand("incident", "Incidents caused by releases (§6.2.10)");
  incident->require_subcommand(1);

  auto add_args = std::make_shared<Args>();
  auto* add = incident->add_subcommand("add", "Record an incident against a release");
  add->add_option("--release", add_args->release, "Release id")->required();
  add->add_option("--severity", add_args->severity, "P1 (worst) .. P4")
      ->required()
      ->check(CLI::IsMember({"P1", "P2", "P3", "P4"}));
  add->add_option("--summary", add_args->summary, "What happened")->required();
  add->add_option("--host", add_args->host, "The host it happened on, if one");
  add->add_flag("--json", add_args->json, "Print JSON");
  AddClientOptions(add, add_args->client);
  add->callback([&exit_code, add_args] {
    auto client = ApiClient::Create(add_args->client);
    if (!client) return ReportFailure("incident add", client.error(), exit_code);
    auto r = client->Post("/api/v1/incidents", {{"release", add_args->release},
                                                {"severity", add_args->severity},
                                                {"summary", add_args->summary},
                                                {"host", add_args->host}});
    if (!r) return ReportFailure("incident add", r.error(), exit_code);
    if (add_args->json) {
      std::cout << r->dump(2) << "\n";
    } else {
      std::cout << fmt::format("{} recorded against {} ({})\n", CellText((*r)["id"]),
                               CellText((*r)["release"]), CellText((*r)["severity"]));
    }
  });

  auto list_args = std::make_shared<Args>();
  auto* list = incident->add_subcommand("list", "List incidents, oldest first");
  list->add_option("--release", list_args->release, "Only those of this release");
  list->add_flag("--json", list_args->json, "Print JSON");
  AddClientOptions(list, list_args->client);
  list->callback([&exit_code, list_args] {
    auto client = ApiClient::Create(list_args->client);
    if (!client) return ReportFailure("incident list", client.error(), exit_code);
    std::string path = "/api/v1/incidents";
    if (!list_args->release.empty()) path += "?release=" + client->Escape(list_args->release);
    auto r = client->Get(path);
    if (!r) return ReportFailure("incident list", r.error(), exit_code);
    if (list_args->json) {
      std::cout << r->dump(2) << "\n";
    } else {
      PrintIncidents((*r)["incidents"]);
    }
  });

  auto close_args = std::make_shared<Args>();
  auto* close = incident->add_subcommand("close", "Close an incident");
  close->add_option("ID", close_args->id, "Incident id (I-3)")->required();
  close->add_flag("--json", close_args->json, "Print JSON");
  AddClientOptions(close, close_args->client);
  close->callback([&exit_code, close_args] {
    auto client = ApiClient::Create(close_args->client);
    if (!client) return ReportFailure("incident close", client.error(), exit_code);
    auto r = client->Post("/api/v1/incidents/" + client->Escape(close_args->id) + "/close",
                          json::object());
    if (!r) return ReportFailure("incident close", r.error(), exit_code);
    if (close_args->json) {
      std::cout << r->dump(2) << "\n";
    } else {
      std::cout << fmt::format("{} closed\n", CellText((*r)["id"]));
    }
  });

  // fabu release review-notes R --file NOTES.md
  CLI::App* release = app.get_subcommand("release");
  auto notes_args = std::make_shared<Args>();
  auto* notes = release->add_subcommand(
      "review-notes", "Store the review notes of a release (the failed-release review)");
  notes->add_option("R", notes_args->id, "Release id")->required();
  notes->add_option("--file", notes_args->file, "The notes (Markdown)")->required();
  AddClientOptions(notes, notes_args->client);
  notes->callback([&exit_code, notes_args] {
    std::ifstream in(notes_args->file, std::ios::binary);
    if (!in) {
      return ReportFailure(
          "release review-notes",
          Error(ErrorCode::kNotFound, "--file " + notes_args->file + ": cannot open"), exit_code);
    }
    std::ostringstream text;
    text << in.rdbuf();
    auto client = ApiClient::Create(notes_args->client);
    if (!client) return ReportFailure("release review-notes", client.error(), exit_code);
    auto r = client->Post("/api/v1/releases/" + client->Escape(notes_args->id) + "/review-notes",
                          {{"notes", text.str()}});
    if (!r) return ReportFailure("release review-notes", r.error(), exit_code);
    std::cout << fmt::format("review notes of {} stored\n", notes_args->id);
  });
}

}  // namespace fabu::cli
