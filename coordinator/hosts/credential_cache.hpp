// Agent credentials the store has accepted (auth/secret_cache.hpp), so that
// the HTTP server can authenticate an agent's request on its I/O thread,
// without a store read on the worker pool (before this cache, every agent
// request paid that hand-off, a quarter of the coordinator's CPU under a
// fleet's load).
//
// A removed host must not pass, so RemoveHost's route calls ForgetAll once
// its removal is committed, and so does a certificate's renewal. Re-enrolling
// a host needs its removal first, and a new credential is not in the cache
// until used. An entry lives until ForgetAll.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "coordinator/auth/secret_cache.hpp"
#include "coordinator/hosts/agent_certificates.hpp"

namespace fabu::coordinator {

class CredentialCache : public SecretCache<AgentIdentity> {
 public:
  using SecretCache::Remember;
  using SecretCache::SecretCache;

  // The host of `credential`, when the store accepted it and nothing was
  // forgotten since.
  std::optional<std::string> Find(std::string_view credential) const;
  // The same with the certificate the host must present (agent_certificates.hpp).
  std::optional<AgentIdentity> FindIdentity(std::string_view credential) const {
    return FindValue(credential);
  }
  // Remembers that the store accepted `credential` for `host` (no certificate).
  void Remember(std::string_view credential, std::string host, std::uint64_t generation);
};

}  // namespace fabu::coordinator
