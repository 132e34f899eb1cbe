// The local subcommands of `fabu-agent`, which drive the deployment engine
// on this host without a coordinator (tests, operators, crash drills):
//
//   install  --data DIR --apps-root DIR --trust PUB... --package FILE --sha256 HEX
//            [--deployment ID] [settings]
//   rollback --data DIR --apps-root DIR (--app NAME | --package FILE --sha256 HEX
//            --trust PUB...) [--deployment ID] [settings]
//   recover  --data DIR --apps-root DIR [settings]
//   status   --data DIR [--apps-root DIR]
//   ack      --data DIR --deployment ID --through SEQ
//
// install and rollback first recover an interrupted deployment. Events are
// printed to stdout as JSON lines as they happen; logs go to stderr. Exit
// status: 0 when the deployment did what was asked (recover: nothing left in
// flight), 1 when it failed or was rolled back, 2 on a usage or agent error.
//
// The networked `run` and `enroll` subcommands register beside these.
#pragma once

#include <CLI/CLI.hpp>

namespace fabu::agent {

void RegisterLocalCommands(CLI::App& app, int& exit_code);

}  // namespace fabu::agent
