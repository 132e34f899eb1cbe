// Agent credentials the store has accepted, kept in memory so that the HTTP
// server can authenticate an agent's request on its I/O thread, without a
// store read on the worker pool (before this cache, every agent request paid that
// hand-off, a quarter of the coordinator's CPU under a fleet's load).
//
// Keyed by the credential's SHA-256 (the store's key too): the secret itself
// is not kept. Only credentials the store accepted are remembered; a removed
// host must not pass, so RemoveHost's route calls ForgetAll once its removal
// is committed. A lookup that raced the removal cannot put the credential
// back: Remember takes the Generation read before the store was asked, and
// ForgetAll moves the generation on. Re-enrolling a host needs its removal
// first, and a new credential is not in the cache until used. With several
// coordinators, a removal on one reaches the others' caches through their
// signals (store/peer_signals.hpp), within milliseconds of its commit.
//
// Thread-safe; Find takes a shared lock only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "coordinator/hosts/agent_certificates.hpp"

namespace fabu::coordinator {

class CredentialCache {
 public:
  // At most this many credentials are kept; past it the cache starts over.
  explicit CredentialCache(std::size_t capacity = 1 << 20) : capacity_(capacity) {}

  // The host of `credential`, when the store accepted it and nothing was
  // forgotten since.
  std::optional<std::string> Find(std::string_view credential) const;
  // The same with the certificate the host must present (agent_certificates.hpp).
  std::optional<AgentIdentity> FindIdentity(std::string_view credential) const;
  // Read before asking the store; hand it to Remember.
  std::uint64_t Generation() const;
  // Remembers that the store accepted `credential` for `host`, unless
  // ForgetAll ran since `generation` was read.
  void Remember(std::string_view credential, std::string host, std::uint64_t generation);
  void Remember(std::string_view credential, AgentIdentity identity, std::uint64_t generation);
  // Drops every credential (a host was removed, or its certificate renewed),
  // and tells the other coordinators through the hook, if one is set.
  void ForgetAll();
  // The same, told by another coordinator (the hook is not called).
  void ForgetAllFromPeer();
  // Called by every ForgetAll (several coordinators: docs/ha.md); set once,
  // before the daemon serves. Must be quick and thread-safe.
  void SetOnForgetAll(std::function<void()> hook) { on_forget_all_ = std::move(hook); }
  std::size_t size() const;

 private:
  const std::size_t capacity_;
  mutable std::shared_mutex mutex_;
  std::uint64_t generation_ = 0;
  std::unordered_map<std::string, AgentIdentity> hosts_;  // SHA-256 (hex) -> host
  std::function<void()> on_forget_all_;
};

}  // namespace fabu::coordinator
