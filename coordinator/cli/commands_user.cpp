// `fabu user add|list|disable|token rotate`: people, their roles and tokens
// (procedure §4.4).
#include <fmt/format.h>

#include <cstdint>
#include <iostream>
#include <memory>
#include <optional>

#include "coordinator/cli/client.hpp"
#include "coordinator/cli/commands.hpp"

namespace fabu::cli {

namespace {

// "until 2027-03-05T10:00:00Z" or "without expiry", of a user as the API shows one.
std::string TokenValidity(const nlohmann::json& user) {
  const auto it = user.find("token_expires");
  if (it == user.end() || !it->is_string()) return "without expiry";
  return "until " + it->get<std::string>();
}

}  // namespace

void RegisterUserCommands(CLI::App& app, int& exit_code) {
  auto* user = app.add_subcommand("user", "People, their roles and tokens");
  user->require_subcommand(1);

  auto* add = user->add_subcommand("add", "Add a user; prints the new token, once (admin only)");
  struct AddArgs {
    ClientOptions client;
    std::string name;
    std::string role;
    std::optional<std::int64_t> token_days;
  };
  auto add_args = std::make_shared<AddArgs>();
  add->add_option("NAME", add_args->name, "User name, e.g. wang.approver")->required();
  add->add_option("--role", add_args->role, "admin|approver|release_manager|tester|viewer")
      ->required();
  add->add_option("--token-days", add_args->token_days,
                  "Days the token lives (0: no expiry; default: the coordinator's "
                  "user_token_days, 90)");
  AddClientOptions(add, add_args->client);
  add->callback([&exit_code, add_args] {
    auto client = ApiClient::Create(add_args->client);
    if (!client) return ReportFailure("user add", client.error(), exit_code);
    nlohmann::json body = {{"name", add_args->name}, {"role", add_args->role}};
    if (add_args->token_days) body["token_days"] = *add_args->token_days;
    auto created = client->Post("/api/v1/users", body);
    if (!created) return ReportFailure("user add", created.error(), exit_code);
    std::cout << created->value("token", "") << "\n";
    std::cerr << fmt::format("user {} ({}): the token above is shown once and works {}\n",
                             add_args->name, created->value("role", ""), TokenValidity(*created));
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
    std::cout << fmt::format("{:<24} {:<16} {:<9} {:<21} {}\n", "NAME", "ROLE", "STATE", "CREATED",
                             "TOKEN EXPIRES");
    for (const auto& u : items) {
      const auto expires = u.find("token_expires");
      std::cout << fmt::format(
          "{:<24} {:<16} {:<9} {:<21} {}\n", u.value("name", ""), u.value("role", ""),
          u.value("disabled", false) ? "disabled" : "active", u.value("created", ""),
          expires != u.end() && expires->is_string() ? expires->get<std::string>() : "never");
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

  auto* token = user->add_subcommand("token", "A user's bearer token");
  token->require_subcommand(1);
  auto* rotate = token->add_subcommand(
      "rotate",
      "Replace a user's token by a new one, printed once; the old one stops at once (your own, "
      "or anyone's as admin)");
  struct RotateArgs {
    ClientOptions client;
    std::string name;
    std::optional<std::int64_t> token_days;
  };
  auto rotate_args = std::make_shared<RotateArgs>();
  rotate->add_option("NAME", rotate_args->name, "User name")->required();
  rotate->add_option("--token-days", rotate_args->token_days,
                     "Days the new token lives (0: no expiry; default: the coordinator's "
                     "user_token_days, 90)");
  AddClientOptions(rotate, rotate_args->client);
  rotate->callback([&exit_code, rotate_args] {
    auto client = ApiClient::Create(rotate_args->client);
    if (!client) return ReportFailure("user token rotate", client.error(), exit_code);
    nlohmann::json body = nlohmann::json::object();
    if (rotate_args->token_days) body["token_days"] = *rotate_args->token_days;
    auto rotated =
        client->Post("/api/v1/users/" + client->Escape(rotate_args->name) + "/token", body);
    if (!rotated) return ReportFailure("user token rotate", rotated.error(), exit_code);
    std::cout << rotated->value("token", "") << "\n";
    std::cerr << fmt::format(
        "user {}: the token above is shown once and works {}; the old token no longer works\n",
        rotate_args->name, TokenValidity(*rotated));
  });
}

}  // namespace fabu::cli
