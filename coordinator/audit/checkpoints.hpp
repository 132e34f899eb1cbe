// Signed checkpoints of the audit chain, kept outside the store
// (docs/security.md, docs/coordinator.md "The audit trail").
//
// The chain and its audit_head live in the database: whoever can write the
// database can cut the tail of the log and rewrite audit_head to match, and
// the chain alone cannot tell. A checkpoint records the head (seq and hash)
// and a digest of the users and their roles, which the chain does not cover,
// at a moment, signed with an Ed25519 key (packaging/keys.hpp) the
// coordinator keeps in its data directory apart from the database. The
// daemon appends one JSON line per checkpoint to a file the store never
// touches and logs the same line; a checkpoint that no longer matches the
// chain shows that the trail was cut or rewritten after it was taken.
//
// Pure format, signature and file I/O: what a checkpoint records is read from
// the store by the daemon.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "packaging/keys.hpp"
#include "protocol/error.hpp"

namespace fabu::coordinator {

struct AuditCheckpoint {
  std::int64_t seq = 0;                 // the last entry of the chain (0: empty chain)
  std::string hash;                     // its hash (kGenesisHash for an empty chain)
  std::string users_sha256;             // ObjectDigest of the users roster (see UsersRosterDigest)
  std::optional<nlohmann::json> users;  // the roster itself, when it changed since the last line
  std::string time;                     // RFC 3339 UTC, the coordinator's clock
  std::string reason;                   // "start", "periodic", "shutdown"
  std::string key_id;                   // the signing key's id (packaging/keys.hpp)
  std::string signature;                // hex Ed25519 signature over SignedContent()

  // A fixed prefix and the compact JSON (sorted keys) of every field but the
  // signature.
  std::string SignedContent() const;
  nlohmann::json ToJson() const;
  static Result<AuditCheckpoint> FromJson(const nlohmann::json& json);
};

// The digest a checkpoint records of a roster {"name": {"role": R,
// "disabled": B}, ...}.
std::string UsersRosterDigest(const nlohmann::json& roster);

// Fills key_id and signature.
Result<void> SignCheckpoint(AuditCheckpoint& checkpoint, const packaging::SigningKey& key);

// kFailedPrecondition naming the key or saying the signature does not match.
Result<void> VerifyCheckpoint(const AuditCheckpoint& checkpoint, const packaging::PublicKey& key);

// Loads PREFIX.key, or makes a new key pair (PREFIX.key 0600, PREFIX.pub)
// when there is none; `created` tells which.
Result<packaging::SigningKey> LoadOrCreateCheckpointKey(const std::filesystem::path& prefix,
                                                        bool& created);

// Appends one line to `file` (created 0600, opened O_APPEND, never
// truncated) and fsyncs it (and the directory when the file was new).
Result<void> AppendCheckpoint(const std::filesystem::path& file, const AuditCheckpoint& checkpoint);

// One checkpoint of a file and the line it was read from (1-based).
struct CheckpointLine {
  int line = 0;
  AuditCheckpoint checkpoint;
};

// Every checkpoint of `file`, in order; an unreadable line is an error naming
// it (a line cut short by a crash at the very end is skipped).
Result<std::vector<CheckpointLine>> ReadCheckpoints(const std::filesystem::path& file);

}  // namespace fabu::coordinator
