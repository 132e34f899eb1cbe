#include "coordinator/store/lease.hpp"

#include <fmt/format.h>
#include <soci/soci.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <array>
#include <random>

#include "coordinator/store/dialect.hpp"

namespace fabu::coordinator {
namespace {

thread_local const FenceScope* current_scope = nullptr;

struct Row {
  std::string holder;
  long long token = 0;
  long long expires_ms = 0;
  long long acquired_ms = 0;
};

std::optional<Row> SelectRow(soci::session& sql, const std::string& name) {
  Row row;
  soci::indicator found = soci::i_null;
  sql << "SELECT holder, token, expires_ms, acquired_ms FROM leases WHERE name = :n",
      soci::use(name), soci::into(row.holder, found), soci::into(row.token),
      soci::into(row.expires_ms), soci::into(row.acquired_ms);
  if (!sql.got_data() || found != soci::i_ok) return std::nullopt;
  return row;
}

std::string Describe(const Row& row, long long now_ms) {
  if (row.expires_ms == 0) return fmt::format("{} (token {}, given up)", row.holder, row.token);
  if (row.expires_ms <= now_ms) {
    return fmt::format("{} (token {}, expired {:.1f} s ago)", row.holder, row.token,
                       static_cast<double>(now_ms - row.expires_ms) / 1000.0);
  }
  return fmt::format("{} (token {}, for {:.1f} s more)", row.holder, row.token,
                     static_cast<double>(row.expires_ms - now_ms) / 1000.0);
}

}  // namespace

FenceScope::FenceScope(std::optional<Fence> fence)
    : fence_(std::move(fence)), outer_(current_scope) {
  current_scope = this;
}

FenceScope::~FenceScope() { current_scope = outer_; }

const Fence* FenceScope::Current() {
  const FenceScope* scope = current_scope;
  return scope != nullptr && scope->fence_ ? &*scope->fence_ : nullptr;
}

Result<void> CheckFence(soci::session& sql, const Fence& fence) {
  const std::optional<Row> row = SelectRow(sql, fence.name);
  const long long now = DatabaseMillis(sql);
  if (row && row->holder == fence.holder && row->token == fence.token && row->expires_ms > now) {
    return {};
  }
  return Fail(ErrorCode::kFailedPrecondition,
              fmt::format("this coordinator ({}) no longer holds the lease \"{}\" it acted under "
                          "(token {}); the lease is {}: the write is dropped",
                          fence.holder, fence.name, fence.token,
                          row ? "held by " + Describe(*row, now) : std::string("gone")));
}

Result<std::optional<LeaseRow>> ReadLease(Store& store, const std::string& name) {
  return store.Read([&](soci::session& sql) -> Result<std::optional<LeaseRow>> {
    const std::optional<Row> row = SelectRow(sql, name);
    if (!row) return std::optional<LeaseRow>();
    return std::optional<LeaseRow>(LeaseRow{name, row->holder, row->token, row->expires_ms,
                                            row->acquired_ms, DatabaseMillis(sql)});
  });
}

Lease::Lease(Store& store, std::string name, std::string holder, std::chrono::milliseconds length)
    : store_(store), name_(std::move(name)), holder_(std::move(holder)), length_(length) {}

std::string Lease::HolderName() {
  std::array<char, 256> host{};
  if (::gethostname(host.data(), host.size() - 1) != 0) host[0] = '\0';
  std::random_device random;
  return fmt::format("{}:{}:{:08x}", host.data(), ::getpid(), random());
}

Result<bool> Lease::Renew() {
  struct Outcome {
    bool held = false;
    long long token = 0;
    bool taken = false;    // a new token (a takeover or a first hold)
    std::string other;     // who holds it when we do not
    std::string previous;  // who held it before a takeover
  };
  std::int64_t mine = 0;
  {
    std::lock_guard lock(mutex_);
    mine = token_;
  }
  // The local validity counts from before the write: the database's expiry
  // is at least this late.
  const auto began = std::chrono::steady_clock::now();
  const long long length_ms = length_.count();
  auto outcome = store_.Write(
      AuditOrigin{"fabu-coordinator", "system", "lease", "local"},
      [&](Transaction& tx) -> Result<Outcome> {
        soci::session& sql = tx.sql();
        const long long now = DatabaseMillis(sql);
        const long long expires = now + length_ms;
        const std::optional<Row> row = SelectRow(sql, name_);
        Outcome out;
        if (!row) {
          sql << "INSERT INTO leases (name, holder, token, expires_ms, acquired_ms) "
                 "VALUES (:n, :h, 1, :e, :a)",
              soci::use(name_), soci::use(holder_), soci::use(expires), soci::use(now);
          out = {true, 1, true, "", ""};
        } else if (row->holder == holder_ && row->token == mine && row->expires_ms > now) {
          sql << "UPDATE leases SET expires_ms = :e WHERE name = :n AND token = :t",
              soci::use(expires), soci::use(name_), soci::use(row->token);
          out = {true, row->token, false, "", ""};
        } else if (row->expires_ms <= now) {
          const long long token = row->token + 1;
          sql << "UPDATE leases SET holder = :h, token = :t, expires_ms = :e, acquired_ms = :a "
                 "WHERE name = :n",
              soci::use(holder_), soci::use(token), soci::use(expires), soci::use(now),
              soci::use(name_);
          out = {true, token, true, "", Describe(*row, now)};
        } else {
          out.other = Describe(*row, now);
        }
        return out;
      },
      // Ahead of the writes waiting: behind a backlog of agents' events (a
      // group of 512 on PostgreSQL takes about half a second under load)
      // the renewal came after the expiry, and the coordinator lost its own
      // lease and dropped its sweep's writes.
      /*ahead=*/true);
  if (!outcome) {
    // Unknown whether the renewal landed: act as if it did not.
    std::lock_guard lock(mutex_);
    if (token_ != 0 && std::chrono::steady_clock::now() >= valid_until_) {
      spdlog::warn("lease \"{}\": could not renew ({}); acting as holder no longer", name_,
                   outcome.error().message());
      token_ = 0;
    }
    return std::unexpected(outcome.error());
  }
  std::lock_guard lock(mutex_);
  if (outcome->held) {
    if (outcome->taken) {
      if (outcome->previous.empty()) {
        spdlog::info("lease \"{}\": taken by this coordinator ({}), token {}", name_, holder_,
                     outcome->token);
      } else {
        spdlog::warn(
            "lease \"{}\": taken over by this coordinator ({}), token {}; it was held by {}", name_,
            holder_, outcome->token, outcome->previous);
      }
    }
    token_ = outcome->token;
    // A margin of a sixth of the length: the work stops before anyone may
    // take the lease over.
    valid_until_ = began + length_ - length_ / 6;
    last_other_.clear();
    return true;
  }
  if (token_ != 0) {
    spdlog::warn("lease \"{}\": lost; now held by {}", name_, outcome->other);
  } else if (last_other_.empty()) {
    spdlog::info("lease \"{}\": held by {}; this coordinator serves the API and agents and waits",
                 name_, outcome->other);
  }
  last_other_ = outcome->other;
  token_ = 0;
  return false;
}

void Lease::Release() {
  std::int64_t mine = 0;
  {
    std::lock_guard lock(mutex_);
    mine = token_;
    token_ = 0;
  }
  if (mine == 0) return;
  auto released = store_.Write(AuditOrigin{"fabu-coordinator", "system", "lease", "local"},
                               [&](Transaction& tx) -> Result<void> {
                                 long long token = mine;
                                 tx.sql() << "UPDATE leases SET expires_ms = 0 WHERE name = :n "
                                             "AND holder = :h AND token = :t",
                                     soci::use(name_), soci::use(holder_), soci::use(token);
                                 return {};
                               });
  if (!released) {
    spdlog::warn(
        "lease \"{}\": could not give it up ({}); another coordinator takes it when it "
        "expires",
        name_, released.error().message());
  } else {
    spdlog::info("lease \"{}\": given up", name_);
  }
}

bool Lease::held() const {
  std::lock_guard lock(mutex_);
  return token_ != 0 && std::chrono::steady_clock::now() < valid_until_;
}

std::optional<Fence> Lease::fence() const {
  std::lock_guard lock(mutex_);
  if (token_ == 0 || std::chrono::steady_clock::now() >= valid_until_) return std::nullopt;
  return Fence{name_, holder_, token_};
}

}  // namespace fabu::coordinator
