// `fabu user add|list|disable`: people and their roles (procedure §4.4).
#include <fmt/format.h>

#include <iostream>
#include <memory>

#include "coordinator/cli/client.hpp"
#include "coordinator/cli/commands.hpp"

namespace fabu::cli {

void RegisterUserCommands(CLI::App& app, int& exit_code) {
  auto* user = app.add_subcommand("user", "People, their roles and tokens");
  user->require_subcommand(1);

  auto* add = user->add_subcommand("add", "Add a user; prints the new token, once (admin only)");
  struct AddArgs {
    ClientOptions client;
    std::string name;
    std::string role;
  };
  auto add_args = std::make_shared<AddArgs>();
  add->add_option("NAME", add_args->name, "User name, e.g. wang.approver")->required();
  add->add_option("--role", add_args->role, "admin|approver|release_manager|tester|viewer")
      ->required();
  AddClientOptions(add, add_args->client);
  add->callback([&exit_code, add_args] {
    auto client = ApiClient::Create(add_args->client);
    if (!client) return ReportFailure("user add", client.error(), exit_code);
    auto created =
        client->Post("/api/v1/users", {{"name", add_args->name}, {"role", add_args->role}});
    if (!created) return ReportFailure("user add", created.error(), exit_code);
    std::cout << created->value("token", "") << "\n";
  });

  auto* list = user->add_subcommand("list", "List users");
  struct ListArgs {
    ClientOptions client;
    bool json = false;
  };
  auto list_args = std::make_shared<ListArgs>();
  list->add_flag("--json", list_args->json, "Print JSON");
  AddClientOptions(list, list_args->client);
  list->callback([&exit_code, list_args] {
    auto client = ApiClient::Create(list_args->client);
    if (!client) return ReportFailure("user list", client.error(), exit_code);
    auto users = client->Get("/api/v1/users");
    if (!users) return ReportFailure("user list", users.error(), exit_code);
    const auto& items = (*users)["users"];
    if (list_args->json) {
      std::cout << items.dump(2) << "\n";
      return;
    }
    std::cout << fmt::format("{:<24} {:<16} {:<9} {}\n", "NAME", "ROLE", "STATE", "CREATED");
    for (const auto& u : items) {
      std::cout << fmt::format("{:<24} {:<16} {:<9} {}\n", u.value("name", ""), u.value("role", ""),
                               u.value("disabled", false) ? "disabled" : "active",
                               u.value("created", ""));
    }
  });

  auto* disable = user->add_subcommand("disable", "Disable a user: the token stops working");
  struct DisableArgs {
    ClientOptions client;
    std::string name;
  };
  auto disable_args = std::make_shared<DisableArgs>();
  disable->add_option("NAME", disable_args->name, "User name")->required();
  AddClientOptions(disable, disable_args->client);
  disable->callback([&exit_code, disable_args] {
    auto client = ApiClient::Create(disable_args->client);
    if (!client) return ReportFailure("user disable", client.error(), exit_code);
    auto done = client->Post("/api/v1/users/" + client->Escape(disable_args->name) + "/disable",
                             nlohmann::json::object());
    if (!done) return ReportFailure("user disable", done.error(), exit_code);
    std::cout << "user " << disable_args->name << " disabled\n";
  });
}

}  // namespace fabu::cli
