// `fabu package upload|list|show`: signed packages on the coordinator.
#include <fmt/format.h>

#include <iostream>
#include <memory>

#include "coordinator/cli/client.hpp"
#include "coordinator/cli/commands.hpp"

namespace fabu::cli {

void RegisterPackageCommands(CLI::App& app, int& exit_code) {
  auto* package = app.add_subcommand("package", "Signed packages held by the coordinator");
  package->require_subcommand(1);

  auto* upload = package->add_subcommand(
      "upload", "Upload a .fabu package; prints its id (SHA-256). Uploading twice is harmless");
  struct UploadArgs {
    ClientOptions client;
    std::string file;
  };
  auto upload_args = std::make_shared<UploadArgs>();
  upload->add_option("FILE", upload_args->file, "The package file")->required();
  AddClientOptions(upload, upload_args->client);
  upload->callback([&exit_code, upload_args] {
    auto client = ApiClient::Create(upload_args->client);
    if (!client) return ReportFailure("package upload", client.error(), exit_code);
    auto stored = client->Upload("/api/v1/packages", upload_args->file);
    if (!stored) {
      return ReportFailure(fmt::format("package upload {}", upload_args->file), stored.error(),
                           exit_code);
    }
    std::cout << stored->value("id", "") << "\n";
  });

  auto* list = package->add_subcommand("list", "List stored packages");
  struct ListArgs {
    ClientOptions client;
    bool json = false;
  };
  auto list_args = std::make_shared<ListArgs>();
  list->add_flag("--json", list_args->json, "Print JSON");
  AddClientOptions(list, list_args->client);
  list->callback([&exit_code, list_args] {
    auto client = ApiClient::Create(list_args->client);
    if (!client) return ReportFailure("package list", client.error(), exit_code);
    auto packages = client->Get("/api/v1/packages");
    if (!packages) return ReportFailure("package list", packages.error(), exit_code);
    const auto& items = (*packages)["packages"];
    if (list_args->json) {
      std::cout << items.dump(2) << "\n";
      return;
    }
    std::cout << fmt::format("{:<64} {:<20} {:<14} {:>12} {}\n", "ID", "NAME", "VERSION", "SIZE",
                             "UPLOADED");
    for (const auto& p : items) {
      std::cout << fmt::format("{:<64} {:<20} {:<14} {:>12} {}\n", p.value("id", ""),
                               p.value("name", ""), p.value("version", ""),
                               p.value("size", std::uint64_t{0}), p.value("uploaded", ""));
    }
  });

  auto* show = package->add_subcommand("show", "Show one package and its manifest");
  struct ShowArgs {
    ClientOptions client;
    std::string id;
    bool json = false;
  };
  auto show_args = std::make_shared<ShowArgs>();
  show->add_option("ID", show_args->id, "Package id (SHA-256)")->required();
  show->add_flag("--json", show_args->json, "Print JSON");
  AddClientOptions(show, show_args->client);
  show->callback([&exit_code, show_args] {
    auto client = ApiClient::Create(show_args->client);
    if (!client) return ReportFailure("package show", client.error(), exit_code);
    auto p = client->Get("/api/v1/packages/" + client->Escape(show_args->id));
    if (!p) return ReportFailure("package show", p.error(), exit_code);
    if (show_args->json) {
      std::cout << p->dump(2) << "\n";
      return;
    }
    std::cout << fmt::format(
        "id:        {}\nname:      {}\nversion:   {}\nsize:      {}\n"
        "key id:    {}\nuploaded:  {} by {}\n",
        p->value("id", ""), p->value("name", ""), p->value("version", ""),
        p->value("size", std::uint64_t{0}), p->value("key_id", ""), p->value("uploaded", ""),
        p->value("uploaded_by", ""));
  });
}

}  // namespace fabu::cli
