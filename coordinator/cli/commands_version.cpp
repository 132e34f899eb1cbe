// `fabu version next|check`: the version policy of procedure §6.1.3.
#include <iostream>
#include <memory>
#include <string>

#include "coordinator/cli/commands.hpp"
#include "protocol/version.hpp"

namespace fabu::cli {

void RegisterVersionCommands(CLI::App& app, int& exit_code) {
  auto* version = app.add_subcommand("version", "Version numbers Va.b.c.d and their rules");
  version->require_subcommand(1);

  auto* next = version->add_subcommand("next", "Print the version that follows V after a change");
  // Option storage is owned by the callback, which CLI11 keeps for the App's life.
  auto next_from = std::make_shared<std::string>();
  auto change = std::make_shared<std::string>();
  next->add_option("V", *next_from, "Current version, e.g. V1.3.0.12")->required();
  next->add_option("--change", *change, "major|feature|spec|build")->required();
  next->callback([&exit_code, next_from, change] {
    auto current = protocol::Version::Parse(*next_from);
    if (!current) {
      std::cerr << "fabu version next: " << current.error().message() << "\n";
      exit_code = 2;
      return;
    }
    auto kind = protocol::ParseVersionChange(*change);
    if (!kind) {
      std::cerr << "fabu version next: --change: " << kind.error().message() << "\n";
      exit_code = 2;
      return;
    }
    auto result = protocol::NextVersion(*current, *kind);
    if (!result) {
      std::cerr << "fabu version next: " << result.error().message() << "\n";
      exit_code = 1;
      return;
    }
    std::cout << result->ToString() << "\n";
  });

  auto* check = version->add_subcommand("check", "Exit 0 when NEXT may be released after PREV");
  auto prev_text = std::make_shared<std::string>();
  auto next_text = std::make_shared<std::string>();
  check->add_option("PREV", *prev_text, "Last released version")->required();
  check->add_option("NEXT", *next_text, "Proposed version")->required();
  check->callback([&exit_code, prev_text, next_text] {
    auto prev = protocol::Version::Parse(*prev_text);
    if (!prev) {
      std::cerr << "fabu version check: PREV: " << prev.error().message() << "\n";
      exit_code = 2;
      return;
    }
    auto next_version = protocol::Version::Parse(*next_text);
    if (!next_version) {
      std::cerr << "fabu version check: NEXT: " << next_version.error().message() << "\n";
      exit_code = 2;
      return;
    }
    auto ok = protocol::CheckSuccession(*prev, *next_version);
    if (!ok) {
      std::cerr << "fabu version check: " << ok.error().message() << "\n";
      exit_code = 1;
      return;
    }
    std::cout << next_version->ToString() << " may follow " << prev->ToString() << "\n";
  });
}

}  // namespace fabu::cli
