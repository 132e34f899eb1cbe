// The networked subcommands of `fabu-agent`:
//
//   enroll --server URL --ca CA.pem --token T --data DIR [--name NAME]
//          [--labels k=v,...] [--apps-root DIR] [--trust PUB ...]
//     Registers this host with the coordinator and keeps what `run` needs in
//     DIR: credential (0600), ca.pem, trusted/*.pub and agent.json (see
//     agent/config/agent_config.hpp). Refuses a DIR already enrolled.
//   run --data DIR
//     The daemon (agent/run/agent_runner.hpp); exits 0 on SIGTERM/SIGINT.
//
// Exit status: 0 on success, 2 on an error (printed to stderr, naming what was
// wrong and what to do). `run` exits 77 (NOPERM in `systemctl status`) when the
// coordinator refuses the credential (HTTP 401: the host was removed by
// `fabu host remove`): the unit does not restart it (RestartPreventExitStatus=77
// in packaging/systemd/fabu-agent.service) and the log says to enroll again.
#pragma once

#include <CLI/CLI.hpp>

namespace fabu::agent {

// `run`'s exit status when the coordinator refuses the credential: restarting
// cannot help, so the unit names it in RestartPreventExitStatus.
inline constexpr int kExitCredentialRefused = 77;

void RegisterNetworkCommands(CLI::App& app, int& exit_code);

}  // namespace fabu::agent
