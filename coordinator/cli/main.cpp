// `fabu`: the release managers' command line.
#include <iostream>
#include <string>
#include <vector>

#include "coordinator/cli/commands.hpp"
#include "protocol/build_info.hpp"

namespace {

// The innermost command the words named: `fabu release` in
// `fabu release frobnicate`.
CLI::App* Innermost(CLI::App& app) {
  CLI::App* at = &app;
  for (auto parsed = at->get_subcommands(); !parsed.empty(); parsed = at->get_subcommands()) {
    at = parsed.front();
  }
  return at;
}

std::string CommandPath(const CLI::App* app) {
  std::string path = app->get_name();
  for (const CLI::App* up = app->get_parent(); up != nullptr; up = up->get_parent()) {
    path = up->get_name() + " " + path;
  }
  return path;
}

// For a word that is not a command where one was expected, or no command at
// all: which word, and the commands there are. False when the error is of
// another kind (CLI11's own message then says what was wrong).
bool ExplainUnknownCommand(CLI::App& app, const CLI::ParseError& e) {
  const bool extra = dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr;
  const bool missing = dynamic_cast<const CLI::RequiredError*>(&e) != nullptr &&
                       std::string(e.what()).find("subcommand") != std::string::npos;
  if (!extra && !missing) return false;
  CLI::App* at = Innermost(app);
  // Hidden commands (an empty group) are not offered.
  const auto subcommands =
      at->get_subcommands([](CLI::App* sub) { return !sub->get_group().empty(); });
  if (subcommands.empty()) return false;
  std::string names;
  for (const CLI::App* sub : subcommands) {
    names += (names.empty() ? "" : ", ") + sub->get_name();
  }
  const std::vector<std::string> words = at->remaining();
  if (!words.empty()) {
    std::cerr << CommandPath(at) << ": unknown command \"" << words.front()
              << "\"; the commands are: " << names << "\n";
  } else {
    std::cerr << CommandPath(at) << ": which command? The commands are: " << names << "\n";
  }
  std::cerr << "Run with --help for more information.\n";
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"fabu: release plans, signed packages and their rollout", "fabu"};
  app.require_subcommand(1);
  app.set_version_flag("--version", fabu::VersionLine("fabu"));
  int exit_code = 0;
  fabu::cli::RegisterVersionCommands(app, exit_code);
  fabu::cli::RegisterPackCommands(app, exit_code);
  fabu::cli::RegisterUserCommands(app, exit_code);
  fabu::cli::RegisterPackageCommands(app, exit_code);
  fabu::cli::RegisterAuditCommands(app, exit_code);
  fabu::cli::RegisterReleaseCommands(app, exit_code);
  fabu::cli::RegisterRolloutCommands(app, exit_code);
  fabu::cli::RegisterHostCommands(app, exit_code);
  fabu::cli::RegisterCmdbCommands(app, exit_code);
  fabu::cli::RegisterNotifyCommands(app, exit_code);
  fabu::cli::RegisterReportCommands(app, exit_code);
  fabu::cli::RegisterIncidentCommands(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every usage error exits 2 (README.md).
    if (ExplainUnknownCommand(app, e)) return 2;
    return app.exit(e) == 0 ? 0 : 2;
  }
  return exit_code;
}
