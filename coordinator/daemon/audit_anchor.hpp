// The audit chain anchored outside the store (audit/checkpoints.hpp,
// docs/security.md): the daemon's checkpoint writer, and the offline check
// `fabu-coordinator audit verify --data DIR --checkpoint FILE`.
#pragma once

#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/audit/checkpoints.hpp"
#include "coordinator/common/data_dir.hpp"
#include "protocol/error.hpp"

namespace fabu::coordinator {

class Store;

// Writes checkpoints of `store` to data.checkpoints(), each also logged.
// Safe to call from the periodic work and at shutdown (one at a time).
class CheckpointWriter {
 public:
  // Loads the checkpoint key, or makes it (with a log line) when missing.
  static Result<std::unique_ptr<CheckpointWriter>> Open(const DataDir& data, Store& store);

  // Takes a checkpoint; unless `always`, only when the head or the users
  // moved since the last one this writer took. True when one was written.
  Result<bool> Write(const std::string& reason, bool always);

 private:
  CheckpointWriter(const DataDir& data, Store& store, packaging::SigningKey key);
  DataDir data_;
  Store& store_;
  packaging::SigningKey key_;
  std::mutex mutex_;
  std::optional<AuditCheckpoint> last_;
};

struct AnchoredVerifyOptions {
  std::filesystem::path data;
  std::filesystem::path checkpoints;  // the checkpoint file (a copy kept off the host)
  std::filesystem::path public_key;   // "": DIR/audit-checkpoint.pub
};

struct AnchoredVerification {
  bool ok = true;
  std::vector<std::string> problems;  // each a sentence for a person
  std::vector<std::string> notes;     // what passed
};

// Checks the chain (VerifyAudit), every checkpoint's signature and that its
// (seq, hash) is still in the chain, and the users against the latest
// checkpoint. Reads the store only.
Result<AnchoredVerification> VerifyAnchoredAudit(const AnchoredVerifyOptions& options);

}  // namespace fabu::coordinator
