#include "coordinator/hosts/credential_cache.hpp"

#include <mutex>

#include "coordinator/auth/users.hpp"

namespace fabu::coordinator {

std::optional<std::string> CredentialCache::Find(std::string_view credential) const {
  auto identity = FindIdentity(credential);
  if (!identity) return std::nullopt;
  return std::move(identity->host);
}

std::optional<AgentIdentity> CredentialCache::FindIdentity(std::string_view credential) const {
  const std::string hash = HashToken(credential);
  std::shared_lock lock(mutex_);
  auto it = hosts_.find(hash);
  if (it == hosts_.end()) return std::nullopt;
  return it->second;
}

std::uint64_t CredentialCache::Generation() const {
  std::shared_lock lock(mutex_);
  return generation_;
}

void CredentialCache::Remember(std::string_view credential, std::string host,
                               std::uint64_t generation) {
  AgentIdentity identity;
  identity.host = std::move(host);
  Remember(credential, std::move(identity), generation);
}

void CredentialCache::Remember(std::string_view credential, AgentIdentity identity,
                               std::uint64_t generation) {
  std::string hash = HashToken(credential);
  std::unique_lock lock(mutex_);
  if (generation != generation_) return;
  if (hosts_.size() >= capacity_) hosts_.clear();
  hosts_.insert_or_assign(std::move(hash), std::move(identity));
}

void CredentialCache::ForgetAll() {
  ForgetAllFromPeer();
  if (on_forget_all_) on_forget_all_();
}

void CredentialCache::ForgetAllFromPeer() {
  std::unique_lock lock(mutex_);
  ++generation_;
  hosts_.clear();
}

std::size_t CredentialCache::size() const {
  std::shared_lock lock(mutex_);
  return hosts_.size();
}

}  // namespace fabu::coordinator
