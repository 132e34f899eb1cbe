// The audit chain anchored outside the store (audit/checkpoints.hpp,
// docs/security.md): the daemon's checkpoint writer, and the offline check
// `fabu-coordinator audit verify --data DIR --checkpoint FILE`.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
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

// The daemon's watch over the audit chain while it runs: each Check
// verifies the entries written since the last one (VerifyAuditFrom; the
// first Check verifies the whole chain), so a chain cut or rewritten under a
// running coordinator is found within one interval rather than at the next
// offline `audit verify`. What it finds is logged (an error while broken)
// and handed to `report` (the metrics).
class AuditWatch {
 public:
  struct Finding {
    bool intact = true;
    std::int64_t verified_seq = 0;  // the last entry found whole (before the break, if any)
    std::int64_t checked = 0;       // entries this check read
    std::string reason;             // when broken: what is wrong, naming the entry
  };
  using Report = std::function<void(const Finding&)>;

  AuditWatch(Store& store, Report report) : store_(store), report_(std::move(report)) {}

  // One check; safe to call from the periodic work (one at a time).
  Finding Check();

 private:
  Store& store_;
  Report report_;
  std::mutex mutex_;
  std::int64_t verified_seq_ = 0;  // where the next check starts, and its hash
  std::string verified_hash_;
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
