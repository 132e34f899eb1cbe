#include "coordinator/hosts/credential_cache.hpp"

#include <utility>

namespace fabu::coordinator {

std::optional<std::string> CredentialCache::Find(std::string_view credential) const {
  auto identity = FindValue(credential);
  if (!identity) return std::nullopt;
  return std::move(identity->host);
}

void CredentialCache::Remember(std::string_view credential, std::string host,
                               std::uint64_t generation) {
  AgentIdentity identity;
  identity.host = std::move(host);
  Remember(credential, std::move(identity), generation);
}

}  // namespace fabu::coordinator
