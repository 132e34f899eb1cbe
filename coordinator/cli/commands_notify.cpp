// `fabu notify ...`: subscriptions to release notices — a webhook or an
// e-mail address told when releases are scheduled, started, paused,
// rolled back, completed or closed.
#include <fmt/format.h>

#include <iostream>
#include <memory>

#include "coordinator/cli/client.hpp"
#include "coordinator/cli/commands.hpp"

namespace fabu::cli {
namespace {

using nlohmann::json;

struct Args {
  ClientOptions client;
  std::string events, webhook, secret, email, tz, lang, id;
  bool json = false;
};

}  // namespace

void RegisterNotifyCommands(CLI::App& app, int& exit_code) {
  auto* notify = app.add_subcommand("notify", "Release notices by webhook or e-mail");
  notify->require_subcommand(1);

  // fabu notify add --events E,... (--webhook URL [--secret S] | --email ADDR) [--tz Area/City]
  //                 [--lang en|zh-CN]
  auto add_args = std::make_shared<Args>();
  auto* add =
      notify->add_subcommand("add", "Subscribe a webhook or an e-mail address; prints its id");
  add->add_option("--events", add_args->events,
                  "Comma-separated: scheduled,started,paused,rolled_back,completed,closed")
      ->required();
  auto* webhook = add->add_option("--webhook", add_args->webhook, "URL to POST the notice to");
  add->add_option("--secret", add_args->secret, "HMAC key for X-Fabu-Signature")->needs(webhook);
  auto* email = add->add_option("--email", add_args->email, "Address to mail the notice to");
  webhook->excludes(email);
  add->add_option("--tz", add_args->tz,
                  "Time zone of the times in the notice (default: the coordinator's)");
  add->add_option("--lang", add_args->lang,
                  "Language of the notices: en (default) or zh-CN, the procedure's terms")
      ->check(CLI::IsMember({"en", "zh-CN"}));
  AddClientOptions(add, add_args->client);
  add->callback([&exit_code, add_args] {
    if (add_args->webhook.empty() == add_args->email.empty()) {
      return ReportFailure(
          "notify add",
          Error(ErrorCode::kInvalidArgument, "give one of --webhook URL or --email ADDR"),
          exit_code);
    }
    json events = json::array();
    std::size_t start = 0;
    const std::string& text = add_args->events;
    while (start <= text.size()) {
      std::size_t end = text.find(',', start);
      if (end == std::string::npos) end = text.size();
      if (end > start) events.push_back(text.substr(start, end - start));
      start = end + 1;
    }
    json body = {{"events", events}};
    if (!add_args->webhook.empty()) {
      body["webhook"] = add_args->webhook;
      if (!add_args->secret.empty()) body["secret"] = add_args->secret;
    } else {
      body["email"] = add_args->email;
    }
    if (!add_args->tz.empty()) body["time_zone"] = add_args->tz;
    if (!add_args->lang.empty()) body["lang"] = add_args->lang;
    auto client = ApiClient::Create(add_args->client);
    if (!client) return ReportFailure("notify add", client.error(), exit_code);
    auto r = client->Post("/api/v1/notify/subscriptions", body);
    if (!r) return ReportFailure("notify add", r.error(), exit_code);
    std::cout << r->value("id", "") << "\n";
  });

  // fabu notify list [--json]
  auto list_args = std::make_shared<Args>();
  auto* list = notify->add_subcommand("list", "The active subscriptions");
  list->add_flag("--json", list_args->json, "Print JSON");
  AddClientOptions(list, list_args->client);
  list->callback([&exit_code, list_args] {
    auto client = ApiClient::Create(list_args->client);
    if (!client) return ReportFailure("notify list", client.error(), exit_code);
    auto r = client->Get("/api/v1/notify/subscriptions");
    if (!r) return ReportFailure("notify list", r.error(), exit_code);
    if (list_args->json) {
      std::cout << r->dump(2) << "\n";
      return;
    }
    std::cout << fmt::format("{:<6} {:<8} {:<40} {:<16} {:<6} {}\n", "ID", "CHANNEL", "TARGET",
                             "TIME ZONE", "LANG", "EVENTS");
    for (const auto& s : (*r)["subscriptions"]) {
      std::string events;
      for (const auto& e : s["events"])
        events += (events.empty() ? "" : ",") + e.get<std::string>();
      std::cout << fmt::format("{:<6} {:<8} {:<40} {:<16} {:<6} {}\n", s.value("id", ""),
                               s.value("channel", ""), s.value("target", ""),
                               s.value("time_zone", ""), s.value("lang", "en"), events);
    }
  });

  // fabu notify remove ID
  auto remove_args = std::make_shared<Args>();
  auto* remove =
      notify->add_subcommand("remove", "Remove a subscription; its unsent notices are waived");
  remove->add_option("ID", remove_args->id, "Subscription id (N-1)")->required();
  AddClientOptions(remove, remove_args->client);
  remove->callback([&exit_code, remove_args] {
    auto client = ApiClient::Create(remove_args->client);
    if (!client) return ReportFailure("notify remove", client.error(), exit_code);
    auto r =
        client->Post("/api/v1/notify/subscriptions/" + client->Escape(remove_args->id) + "/remove",
                     json::object());
    if (!r) return ReportFailure("notify remove", r.error(), exit_code);
    std::cout << "removed " << remove_args->id << "\n";
  });
}

}  // namespace fabu::cli
