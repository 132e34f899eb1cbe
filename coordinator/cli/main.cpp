// `fabu`: the release managers' command line.
#include <iostream>

#include "coordinator/cli/commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"fabu: release plans, signed packages and their rollout"};
  app.require_subcommand(1);
  app.set_version_flag("--fabu-version", "fabu 0.1.0");
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
    // --help and --fabu-version exit 0; every usage error exits 2 (README.md).
    return app.exit(e) == 0 ? 0 : 2;
  }
  return exit_code;
}
