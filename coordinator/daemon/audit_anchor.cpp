#include "coordinator/daemon/audit_anchor.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <soci/soci.h>
#include <spdlog/spdlog.h>

#include <set>

#include "coordinator/audit/audit_log.hpp"
#include "coordinator/auth/users.hpp"
#include "coordinator/common/clock.hpp"
#include "coordinator/config/config.hpp"
#include "coordinator/daemon/store_target.hpp"
#include "coordinator/store/store.hpp"

namespace fabu::coordinator {
namespace {

struct ChainState {
  std::int64_t seq = 0;
  std::string hash;
  nlohmann::json users;
};

ChainState ReadChainState(soci::session& sql) {
  ChainState state;
  const auto head = ReadAuditHead(sql);
  state.seq = head ? head->seq : 0;
  state.hash = head ? head->hash : std::string(kGenesisHash);
  state.users = UsersRoster(sql);
  return state;
}

std::string Short(const std::string& hash) { return hash.substr(0, 16); }

// Entries AuditWatch checks in one read of the store.
constexpr std::int64_t kAuditCheckPart = 20'000;

std::string Describe(const CheckpointLine& line) {
  return fmt::format("checkpoint on line {} ({}, {}, entry {})", line.line, line.checkpoint.time,
                     line.checkpoint.reason, line.checkpoint.seq);
}

std::string DescribeUser(const nlohmann::json& user) {
  if (!user.is_object()) return "?";
  std::string text = user.value("role", "?");
  if (user.value("disabled", false)) text += ", disabled";
  return text;
}

// The users that differ between two rosters, each named with what changed.
std::vector<std::pair<std::string, std::string>> DiffRosters(const nlohmann::json& before,
                                                             const nlohmann::json& now) {
  std::vector<std::pair<std::string, std::string>> changes;
  for (const auto& [name, user] : before.items()) {
    if (!now.contains(name)) {
      changes.emplace_back(name, fmt::format("{} ({}) was removed", name, DescribeUser(user)));
    } else if (now[name] != user) {
      const auto& after = now[name];
      if (after.value("token", "") != user.value("token", "") &&
          DescribeUser(after) == DescribeUser(user)) {
        changes.emplace_back(name, fmt::format("{}: token replaced", name));
      } else {
        changes.emplace_back(
            name,
            fmt::format(
                "{}: {} -> {}{}", name, DescribeUser(user), DescribeUser(after),
                after.value("token", "") != user.value("token", "") ? ", token replaced" : ""));
      }
    }
  }
  for (const auto& [name, user] : now.items()) {
    if (!before.contains(name)) {
      changes.emplace_back(name, fmt::format("{} ({}) was added", name, DescribeUser(user)));
    }
  }
  return changes;
}

}  // namespace

CheckpointWriter::CheckpointWriter(const DataDir& data, Store& store, packaging::SigningKey key)
    : data_(data), store_(store), key_(std::move(key)) {}

Result<std::unique_ptr<CheckpointWriter>> CheckpointWriter::Open(const DataDir& data,
                                                                 Store& store) {
  bool created = false;
  auto key = LoadOrCreateCheckpointKey(data.checkpoint_key_prefix(), created);
  if (!key) return std::unexpected(key.error().WithContext("the audit checkpoint key"));
  if (created) {
    std::error_code ec;
    if (std::filesystem::exists(data.checkpoints(), ec)) {
      spdlog::warn(
          "made a new audit checkpoint key {} ({}.key): the checkpoints already in {} "
          "verify only with the public key that signed them",
          key->public_key().key_id(), data.checkpoint_key_prefix().string(),
          data.checkpoints().string());
    } else {
      spdlog::info("made the audit checkpoint key {} ({}.pub: keep a copy off this host)",
                   key->public_key().key_id(), data.checkpoint_key_prefix().string());
    }
  }
  return std::unique_ptr<CheckpointWriter>(new CheckpointWriter(data, store, std::move(*key)));
}

Result<bool> CheckpointWriter::Write(const std::string& reason, bool always) {
  std::lock_guard lock(mutex_);
  auto state =
      store_.Read([](soci::session& sql) -> Result<ChainState> { return ReadChainState(sql); });
  if (!state) return std::unexpected(state.error());
  AuditCheckpoint checkpoint;
  checkpoint.seq = state->seq;
  checkpoint.hash = state->hash;
  checkpoint.users_sha256 = UsersRosterDigest(state->users);
  if (!always && last_ && last_->seq == checkpoint.seq && last_->hash == checkpoint.hash &&
      last_->users_sha256 == checkpoint.users_sha256) {
    return false;
  }
  // The roster itself only when it changed, so that a verifier can name
  // what changed without every line carrying every user.
  if (!last_ || last_->users_sha256 != checkpoint.users_sha256) checkpoint.users = state->users;
  checkpoint.time = store_.clock().Utc();
  checkpoint.reason = reason;
  if (auto ok = SignCheckpoint(checkpoint, key_); !ok) return std::unexpected(ok.error());
  if (auto ok = AppendCheckpoint(data_.checkpoints(), checkpoint); !ok) {
    return std::unexpected(ok.error());
  }
  // The journal's copy of the same line: a second place, shipped off the
  // host with the log.
  spdlog::info("audit checkpoint {}", checkpoint.ToJson().dump());
  last_ = std::move(checkpoint);
  return true;
}

AuditWatch::Finding AuditWatch::Check() {
  std::lock_guard lock(mutex_);
  if (verified_hash_.empty()) verified_hash_ = std::string(kGenesisHash);
  Finding finding;
  // In parts of kAuditCheckPart entries, each its own read, so that a long
  // chain (the first check reads it whole) never holds the store's reading
  // session for long: a part takes about a tenth of a second.
  Result<AuditVerification> checked = Fail(ErrorCode::kInternal, "not checked");
  for (;;) {
    checked = store_.Read([this](soci::session& sql) -> Result<AuditVerification> {
      return VerifyAuditFrom(sql, verified_seq_, verified_hash_, kAuditCheckPart);
    });
    if (!checked || !checked->intact || checked->reached_head) break;
    finding.checked += checked->count;
    verified_seq_ = checked->last_seq;
    verified_hash_ = checked->last_hash;
  }
  if (!checked) {
    // The store could not be read: nothing is known, so nothing is reported.
    spdlog::error("audit chain check: {}", checked.error().message());
    finding.verified_seq = verified_seq_;
    finding.intact = true;
    finding.reason = checked.error().message();
    return finding;
  }
  finding.intact = checked->intact;
  finding.checked += checked->count;
  if (checked->intact) {
    verified_seq_ = checked->last_seq;
    verified_hash_ = checked->last_hash;
  } else {
    // Stays where it was: the next check finds the same break, so the
    // figure stays "broken" until someone looks (`audit verify`).
    finding.reason = checked->reason;
    spdlog::error(
        "the audit chain is broken: {}; `fabu-coordinator audit verify` with the checkpoint "
        "file tells what changed",
        checked->reason);
  }
  finding.verified_seq = checked->last_seq;
  if (report_) report_(finding);
  return finding;
}

Result<AnchoredVerification> VerifyAnchoredAudit(const AnchoredVerifyOptions& options) {
  const DataDir data{options.data};
  std::error_code ec;
  // The store config.json names (SQLite when there is no config.json).
  StoreConfig store_config;
  if (std::filesystem::is_regular_file(data.config(), ec)) {
    auto config = CoordinatorConfig::Load(data.config());
    if (!config) return std::unexpected(config.error());
    store_config = config->store;
  }
  if (!store_config.postgresql() && !std::filesystem::is_regular_file(data.store(), ec)) {
    return Fail(ErrorCode::kNotFound,
                fmt::format("{} holds no coordinator (no {})", data.root.string(),
                            data.store().filename().string()));
  }
  auto target = StoreTargetOf(data, store_config);
  if (!target) return std::unexpected(target.error());
  const std::filesystem::path pub =
      options.public_key.empty()
          ? std::filesystem::path(data.checkpoint_key_prefix().string() + ".pub")
          : options.public_key;
  auto key = packaging::PublicKey::FromPemFile(pub);
  if (!key) return std::unexpected(key.error().WithContext("the checkpoint public key"));
  auto lines = ReadCheckpoints(options.checkpoints);
  if (!lines) return std::unexpected(lines.error());

  AnchoredVerification out;
  auto problem = [&out](std::string text) {
    out.ok = false;
    out.problems.push_back(std::move(text));
  };
  try {
    const auto session = OpenSession(*target, SessionRole::kReader);
    soci::session& sql = *session;
    const AuditVerification chain = VerifyAudit(sql);
    if (chain.intact) {
      out.notes.push_back(fmt::format("audit trail intact: {} entries", chain.count));
    } else {
      problem(fmt::format("audit trail broken at entry {}: {}", chain.broken_seq.value_or(0),
                          chain.reason));
    }
    const ChainState now = ReadChainState(sql);

    // Every checkpoint: signed by the key, and its (seq, hash) still in the chain.
    std::int64_t last_good = 0;
    const CheckpointLine* latest = nullptr;
    std::size_t matched = 0;
    for (const CheckpointLine& line : *lines) {
      const AuditCheckpoint& c = line.checkpoint;
      if (auto ok = VerifyCheckpoint(c, *key); !ok) {
        problem(fmt::format("{}: {}", Describe(line), ok.error().message()));
        break;
      }
      latest = &line;
      std::optional<std::string> stored =
          c.seq == 0 ? std::optional<std::string>(std::string(kGenesisHash))
                     : AuditHashAt(sql, c.seq);
      if (!stored || *stored != c.hash) {
        const std::string what = !stored ? fmt::format("the trail ends at entry {}", now.seq)
                                         : fmt::format("entry {} now has hash {}…, not {}…", c.seq,
                                                       Short(*stored), Short(c.hash));
        problem(
            fmt::format("{} no longer matches: {}: the trail was cut or rewritten after "
                        "entry {}",
                        Describe(line), what, last_good));
        break;
      }
      last_good = std::max(last_good, c.seq);
      ++matched;
    }
    if (lines->empty())
      problem(fmt::format("{} holds no checkpoint", options.checkpoints.string()));
    if (out.ok && latest != nullptr) {
      out.notes.push_back(
          fmt::format("{} checkpoint(s) match the chain (latest: entry {} at {}, key {})", matched,
                      latest->checkpoint.seq, latest->checkpoint.time, key->key_id()));
      if (now.seq > latest->checkpoint.seq) {
        out.notes.push_back(fmt::format("entries {}-{} came after the latest checkpoint",
                                        latest->checkpoint.seq + 1, now.seq));
      }
    }

    // The users against the latest checkpoint.
    if (latest != nullptr) {
      const AuditCheckpoint& c = latest->checkpoint;
      if (UsersRosterDigest(now.users) == c.users_sha256) {
        out.notes.push_back(
            fmt::format("users and roles match the checkpoint on line {}", latest->line));
      } else {
        // The roster the latest checkpoint's digest stands for, to name the change.
        const nlohmann::json* roster = nullptr;
        for (const CheckpointLine& line : *lines) {
          if (&line == latest + 1) break;
          if (line.checkpoint.users && line.checkpoint.users_sha256 == c.users_sha256 &&
              UsersRosterDigest(*line.checkpoint.users) == c.users_sha256) {
            roster = &*line.checkpoint.users;
          }
        }
        // A change made through fabu after the checkpoint is in the trail
        // after it; anything else was made behind the coordinator's back.
        std::set<std::string> audited;
        AuditFilter filter;
        filter.after_seq = c.seq;
        for (;;) {
          auto entries = ListAudit(sql, filter);
          for (const AuditEntry& e : entries) {
            if (e.object_type == "user") audited.insert(e.object_id);
          }
          if (entries.size() < static_cast<std::size_t>(filter.limit)) break;
          filter.after_seq = entries.back().seq;
        }
        if (roster == nullptr) {
          problem(
              fmt::format("the users and roles differ from {} (its roster is not in the file "
                          "to name the change)",
                          Describe(*latest)));
        } else {
          std::vector<std::string> unexplained;
          std::vector<std::string> explained;
          for (const auto& [name, text] : DiffRosters(*roster, now.users)) {
            (audited.contains(name) ? explained : unexplained).push_back(text);
          }
          if (!unexplained.empty()) {
            problem(
                fmt::format("the users and roles changed since {} and the audit trail does "
                            "not record it: {}",
                            Describe(*latest), fmt::join(unexplained, "; ")));
          }
          if (!explained.empty()) {
            out.notes.push_back(fmt::format("users changed since {} by audited entries: {}",
                                            Describe(*latest), fmt::join(explained, "; ")));
          }
        }
      }
    }
  } catch (const std::exception& e) {
    return std::unexpected(
        ErrorFromException(e, ErrorCode::kIo, fmt::format("reading {}", target->description)));
  }
  return out;
}

}  // namespace fabu::coordinator
