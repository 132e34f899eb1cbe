// What the agent knows about its host, for a package's `targets` constraints
// and (later) the inventory it reports.
//
// A value type. `Detect` asks uname(2); it does not fail (unknown parts are
// left empty, which matches no constraint).
#pragma once

#include <map>
#include <string>

#include "protocol/error.hpp"

namespace fabu::agent {

struct HostFacts {
  std::string os;    // "linux" (uname sysname, lower case)
  std::string arch;  // "x86_64", "aarch64" (uname machine)
  // Further facts a target may constrain (e.g. "distro"); none by default.
  std::map<std::string, std::string> extra;

  static HostFacts Detect();

  // The fact named `key` ("os", "arch" or an extra one), or nullptr.
  const std::string* Find(const std::string& key) const;
};

// Succeeds when every constraint of a manifest's `targets` names a known fact
// with the same value; the error names the first constraint that fails.
Result<void> CheckTargets(const std::map<std::string, std::string>& targets, const HostFacts& host);

}  // namespace fabu::agent
