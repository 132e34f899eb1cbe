// `fabu-agent`: the daemon on a customer host. This file only wires the
// subcommands; the engine lives in fabu_agent_core, the networked `enroll`
// and `run` in fabu_agent_net.
#include <CLI/CLI.hpp>

#include "agent/cli/local_commands.hpp"
#include "agent/cli/network_commands.hpp"
#include "protocol/build_info.hpp"

int main(int argc, char** argv) {
  // stdout carries events (JSON lines); logs go to stderr (agent/common/log.hpp).
  CLI::App app{"fabu-agent: installs signed fabu packages on this host, crash-safe"};
  app.require_subcommand(1);
  app.set_version_flag("--version", fabu::VersionLine("fabu-agent"));
  int exit_code = 0;
  fabu::agent::RegisterLocalCommands(app, exit_code);
  fabu::agent::RegisterNetworkCommands(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}
