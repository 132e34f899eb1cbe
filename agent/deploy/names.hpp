// Names the agent receives from the network (an assignment) or a command
// line, checked before any of them touches the file system or a command.
//
// The agent trusts only its own keys, never the coordinator (docs/agent.md,
// "What the agent checks"): an app is a path under the apps root and a
// package id a file name under DIR/downloads, so a name that is not one
// (`../..`, `/etc`, a version holding '/', control characters) is refused
// before anything is done with it. App names follow the package-name rule of
// packaging/manifest.hpp (CheckPackageName) and versions protocol::Version;
// there is no second rule set here. Deployment and release ids, which the
// coordinator makes ("R-12-1-web-01"), are 1 to 128 of [A-Za-z0-9._:-]
// starting with a letter or digit: they name nothing on disk, but they go
// into the journal, the events and the log.
#pragma once

#include <string_view>

#include "protocol/agent_api.hpp"
#include "protocol/error.hpp"

namespace fabu::agent {

inline constexpr std::size_t kMaxIdLength = 128;

// `what` names the field in the message ("deployment id", "release").
Result<void> CheckDeploymentId(std::string_view id, std::string_view what = "deployment id");

// packaging::CheckPackageName, the error naming the field.
Result<void> CheckAppName(std::string_view app);

// A package id is the SHA-256 of the package file: 64 lower-case hex digits.
bool IsPackageId(std::string_view id);
Result<void> CheckPackageId(std::string_view id);

// Every name of an assignment, for either kind: the deployment and release
// ids, the app (required for a rollback without a package), the version
// (when given), the package id (required for an install). The first
// problem found, its message quoting the value.
Result<void> CheckAssignment(const protocol::Assignment& assignment);

}  // namespace fabu::agent
