// What the Deployer's files share (deployer.cpp, deployer_prepared.cpp,
// deployer_rollback.cpp, deployer_hooks.cpp, deployer_recovery.cpp): one
// deployment's state while it runs, and two small helpers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "agent/deploy/deployer.hpp"

namespace fabu::agent {

struct Deployer::Context {
  std::string deployment;
  DeploymentKind kind = DeploymentKind::kInstall;
  std::string package;
  std::string package_sha256;
  std::string app;
  std::optional<protocol::Version> version;   // install: the new one; rollback: the one restored
  std::optional<protocol::Version> previous;  // install: current before; rollback: the one left
  std::uint64_t next_sequence = 1;
  std::string last_output;           // tail of the last hook that ran
  std::string manifest_json;         // install: the signed manifest verified at `verified`
  std::optional<StagedTree> staged;  // install: a local file's tree, extracted before verified

  std::string VersionText() const { return version ? version->ToString() : std::string(); }
};

namespace detail {

// The previous version's text; "" for a first install.
inline std::string PreviousText(const std::optional<protocol::Version>& v) {
  return v ? v->ToString() : "";
}

// Removes an app's staged tree no deployment uses (no deployment runs), and
// the app directory when only the empty one a first install made is left.
void DiscardStagedTree(const InstallLayout& layout, const std::string& app);

}  // namespace detail
}  // namespace fabu::agent
