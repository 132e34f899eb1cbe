// `fabu audit list|verify`: the hash-chained audit trail (procedure §1.4).
#include <fmt/format.h>

#include <iostream>
#include <memory>

#include "coordinator/cli/client.hpp"
#include "coordinator/cli/commands.hpp"

namespace fabu::cli {

void RegisterAuditCommands(CLI::App& app, int& exit_code) {
  auto* audit = app.add_subcommand("audit", "The audit trail of every change");
  audit->require_subcommand(1);

  auto* list = audit->add_subcommand("list", "List audit entries, oldest first");
  struct ListArgs {
    ClientOptions client;
    std::string release;
    bool json = false;
  };
  auto list_args = std::make_shared<ListArgs>();
  list->add_option("--release", list_args->release, "Only entries of this release");
  list->add_flag("--json", list_args->json, "Print JSON");
  AddClientOptions(list, list_args->client);
  list->callback([&exit_code, list_args] {
    auto client = ApiClient::Create(list_args->client);
    if (!client) return ReportFailure("audit list", client.error(), exit_code);
    // Page through the log so long trails come out whole.
    nlohmann::json all = nlohmann::json::array();
    std::int64_t after = 0;
    for (;;) {
      std::string path = fmt::format("/api/v1/audit?after={}&limit=1000", after);
      if (!list_args->release.empty()) path += "&release=" + client->Escape(list_args->release);
      auto page = client->Get(path);
      if (!page) return ReportFailure("audit list", page.error(), exit_code);
      const auto& entries = (*page)["entries"];
      for (const auto& e : entries) all.push_back(e);
      if (entries.size() < 1000) break;
      after = entries.back().value("seq", std::int64_t{0});
    }
    if (list_args->json) {
      std::cout << all.dump(2) << "\n";
      return;
    }
    std::cout << fmt::format("{:>6} {:<24} {:<20} {:<16} {}\n", "SEQ", "TIME", "ACTOR", "ACTION",
                             "OBJECT");
    for (const auto& e : all) {
      std::cout << fmt::format("{:>6} {:<24} {:<20} {:<16} {} {}\n",
                               e.value("seq", std::int64_t{0}), e.value("time", ""),
                               e.value("actor", ""), e.value("action", ""),
                               e.value("object_type", ""), e.value("object_id", ""));
    }
  });

  auto* verify = audit->add_subcommand(
      "verify", "Check the hash chain; exit 0 with the entry count when intact");
  struct VerifyArgs {
    ClientOptions client;
    bool json = false;
  };
  auto verify_args = std::make_shared<VerifyArgs>();
  verify->add_flag("--json", verify_args->json, "Print JSON");
  AddClientOptions(verify, verify_args->client);
  verify->callback([&exit_code, verify_args] {
    auto client = ApiClient::Create(verify_args->client);
    if (!client) return ReportFailure("audit verify", client.error(), exit_code);
    auto result = client->Get("/api/v1/audit/verify");
    if (!result) return ReportFailure("audit verify", result.error(), exit_code);
    const bool intact = result->value("intact", false);
    if (verify_args->json) std::cout << result->dump(2) << "\n";
    if (intact) {
      if (!verify_args->json) {
        std::cout << fmt::format("audit trail intact: {} entries\n",
                                 result->value("count", std::int64_t{0}));
      }
      return;
    }
    std::cerr << fmt::format("fabu audit verify: audit trail broken at entry {}: {}\n",
                             result->value("broken_seq", std::int64_t{0}),
                             result->value("reason", ""));
    exit_code = 1;
  });
}

}  // namespace fabu::cli
