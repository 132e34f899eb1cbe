// Command groups of the `fabu` CLI.
//
// Each Register* function adds its subcommands to `app`. A command's callback
// sets `exit_code` (0 on success); the CLI prints results on stdout and every
// failure, one clear line, on stderr.
#pragma once

#include <CLI/CLI.hpp>

namespace fabu::cli {

void RegisterVersionCommands(CLI::App& app, int& exit_code);
void RegisterPackCommands(CLI::App& app, int& exit_code);
// Clients of the coordinator API (client.hpp): user, package, audit.
void RegisterUserCommands(CLI::App& app, int& exit_code);
void RegisterPackageCommands(CLI::App& app, int& exit_code);
void RegisterAuditCommands(CLI::App& app, int& exit_code);
void RegisterReleaseCommands(CLI::App& app, int& exit_code);
void RegisterHostCommands(CLI::App& app, int& exit_code);
// Adds the rollout verbs to `release` (call after RegisterReleaseCommands) and `freeze`.
void RegisterRolloutCommands(CLI::App& app, int& exit_code);
void RegisterCmdbCommands(CLI::App& app, int& exit_code);
void RegisterNotifyCommands(CLI::App& app, int& exit_code);
void RegisterReportCommands(CLI::App& app, int& exit_code);
// `incident ...`, and `release review-notes` (call after RegisterReleaseCommands).
void RegisterIncidentCommands(CLI::App& app, int& exit_code);

}  // namespace fabu::cli
