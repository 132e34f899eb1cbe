// The agent's answer to a pre-flight question (protocol PreflightRequest):
// could this host install that package now? Nothing is downloaded, extracted
// or run; the answer comes from what the host knows of itself:
//   - free space: the package file in the downloads directory and its tree
//     in the apps root, with a margin of a fifth (both together when they
//     share a file system);
//   - the package's targets (os, arch, ...) match this host's facts;
//   - the version installed now allows it (no downgrade);
//   - the publisher key that signed it is one this agent trusts;
//   - the apps root is writable (a file is made and removed in it);
//   - no other deployment is in progress here.
// Each check that fails adds a reason in words; ready when there is none.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "agent/host/host_facts.hpp"
#include "packaging/keys.hpp"
#include "protocol/agent_api.hpp"

namespace fabu::agent {

struct PreflightContext {
  std::filesystem::path apps_root;
  std::filesystem::path downloads;  // where the package file would go
  const packaging::TrustStore* trust = nullptr;
  HostFacts host;
  // The deployment in progress here, if any (the journal's in-flight one).
  std::optional<std::string> in_flight;
};

protocol::PreflightAnswer AnswerPreflight(const protocol::PreflightRequest& request,
                                          const PreflightContext& context);

}  // namespace fabu::agent
