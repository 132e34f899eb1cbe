#include "agent/host/host_facts.hpp"

#include <fmt/format.h>
#include <sys/utsname.h>

#include <algorithm>
#include <cctype>

namespace fabu::agent {

HostFacts HostFacts::Detect() {
  HostFacts facts;
  struct utsname name {};
  if (::uname(&name) == 0) {
    facts.os = name.sysname;
    std::ranges::transform(facts.os, facts.os.begin(),
                           [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    facts.arch = name.machine;
  }
  return facts;
}

const std::string* HostFacts::Find(const std::string& key) const {
  if (key == "os") return &os;
  if (key == "arch") return &arch;
  auto it = extra.find(key);
  return it == extra.end() ? nullptr : &it->second;
}

Result<void> CheckTargets(const std::map<std::string, std::string>& targets,
                          const HostFacts& host) {
  for (const auto& [key, wanted] : targets) {
    const std::string* have = host.Find(key);
    if (have == nullptr) {
      return Fail(ErrorCode::kFailedPrecondition,
                  fmt::format("targets.{}: this agent knows no host fact named \"{}\"; the package "
                              "cannot be judged safe for this host",
                              key, key));
    }
    if (*have != wanted) {
      return Fail(ErrorCode::kFailedPrecondition,
                  fmt::format("targets.{}: the package is for {}={}, this host is {}={}", key, key,
                              wanted, key, *have));
    }
  }
  return {};
}

}  // namespace fabu::agent
