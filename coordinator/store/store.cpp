#include "coordinator/store/store.hpp"

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "coordinator/store/migrations.hpp"

namespace fabu::coordinator {

namespace {

// The table AppendAudits reads its rows from on `backend`, made once.
const std::string& AuditRowsSql(StoreBackend backend) {
  static const auto make = [](StoreBackend b) {
    std::vector<JsonColumn> columns;
    for (const AuditColumn& column : kAuditColumns) columns.push_back({column.name, column.number});
    return JsonRowsSql(b, "rows", columns, "r");
  };
  static const std::string sqlite = make(StoreBackend::kSqlite);
  static const std::string postgresql = make(StoreBackend::kPostgresql);
  return backend == StoreBackend::kPostgresql ? postgresql : sqlite;
}

}  // namespace

std::vector<AuditEntry> Transaction::AuditAll(
    std::span<const std::pair<AuditOrigin, AuditEvent>> items) {
  return AppendAudits(sql_, items, clock_.Utc(), Cached<AuditStatements>(),
                      AuditRowsSql(BackendOf(sql_)));
}

Result<std::unique_ptr<Store>> Store::Connect(const StoreTarget& target, const Clock& clock,
                                              std::optional<bool> create) {
  std::unique_ptr<Store> store(new Store(clock));
  store->target_ = target;
  const std::string& where = target.description;
  try {
    store->sql_ = OpenSession(target, SessionRole::kWriter);
    if (create && target.backend == StoreBackend::kPostgresql) {
      // The database is the administrator's; its schema is ours.
      const bool has = HasSchema(*store->sql_);
      if (*create && has) {
        return Fail(ErrorCode::kAlreadyExists, "a store already exists in " + where);
      }
      if (!*create && !has) {
        return Fail(ErrorCode::kNotFound,
                    "no store in " + where + ": run `fabu-coordinator init` first");
      }
    }
  } catch (const std::exception& e) {
    return std::unexpected(ErrorFromException(e, ErrorCode::kIo, "opening store " + where));
  }
  auto version = Migrate(*store->sql_, AllMigrations(), clock);
  if (!version) return std::unexpected(std::move(version.error()).WithContext(where));
  store->schema_version_ = *version;
  try {
    // The reading sessions: they read while the writer commits (WAL, or
    // PostgreSQL's snapshots), and refuse writes instead of racing the writer.
    for (Reader& reader : store->readers_)
      reader.session = OpenSession(target, SessionRole::kReader);
  } catch (const std::exception& e) {
    return std::unexpected(
        ErrorFromException(e, ErrorCode::kIo, "opening store " + where + " for reading"));
  }
  store->open_ = true;
  store->committer_ = std::thread([raw = store.get()] { raw->CommitLoop(); });
  return store;
}

Result<std::unique_ptr<Store>> Store::Create(const std::filesystem::path& path,
                                             const Clock& clock) {
  return Create(StoreTarget::Sqlite(path), clock);
}

Result<std::unique_ptr<Store>> Store::Open(const std::filesystem::path& path, const Clock& clock) {
  return Open(StoreTarget::Sqlite(path), clock);
}

Result<std::unique_ptr<Store>> Store::Create(const StoreTarget& target, const Clock& clock) {
  if (target.backend == StoreBackend::kSqlite) {
    std::error_code ec;
    if (std::filesystem::exists(target.path, ec)) {
      return Fail(ErrorCode::kAlreadyExists, "a store already exists at " + target.path.string());
    }
  }
  return Connect(target, clock, true);
}

Result<std::unique_ptr<Store>> Store::Open(const StoreTarget& target, const Clock& clock) {
  if (target.backend == StoreBackend::kSqlite) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(target.path, ec)) {
      return Fail(ErrorCode::kNotFound,
                  "no store at " + target.path.string() + ": run `fabu-coordinator init` first");
    }
  }
  return Connect(target, clock, false);
}

Result<void> Store::RunInGroup(const std::function<bool(soci::session&)>& work, bool ahead) {
  Writer self;
  self.work = &work;
  if (const Fence* fence = FenceScope::Current()) self.fence = *fence;
  Enqueue(self, ahead);
  std::unique_lock lock(queue_mutex_);
  self.wake.wait(lock, [&] { return self.done; });
  if (self.error) return std::unexpected(std::move(*self.error));
  return {};
}

void Store::Enqueue(Writer& writer, bool ahead) {
  {
    std::lock_guard lock(queue_mutex_);
    if (!stopping_ && committer_.joinable()) {
      if (ahead) {
        // Behind the group committing and the writes queued ahead before it.
        queue_.insert(queue_.begin() + static_cast<std::ptrdiff_t>(committing_ + ahead_), &writer);
        ++ahead_;
      } else {
        queue_.push_back(&writer);
      }
      // The committer waits only on an empty queue (a group stays queued
      // while it commits).
      if (queue_.size() == 1) queued_.notify_one();
      return;
    }
    writer.error = Error(ErrorCode::kUnavailable, "the store is closed");
    writer.done = true;
  }
  if (writer.finished) {
    auto finish = std::move(writer.finished);  // it frees the job holding `writer`
    finish();
  }
}

void Store::CommitLoop() {
  // Named for `top -H`, perf and scripts/bench, which counts its CPU apart.
  pthread_setname_np(pthread_self(), "fabu-committer");
  std::unique_lock lock(queue_mutex_);
  std::vector<Writer*> group;
  std::vector<Writer*> finished;
  for (;;) {
    queued_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything queued is committed
    const std::size_t n = std::min(queue_.size(), kMaxGroup);
    group.assign(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
    committing_ = n;
    ahead_ -= std::min(ahead_, n);
    // Writers arriving while the group commits queue behind it and form the next.
    lock.unlock();
    const auto began = std::chrono::steady_clock::now();
    CommitGroup(group);
    if (commit_observer_) {
      commit_observer_(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count(), n);
    }
    lock.lock();
    ++group_commits_;
    finished.clear();
    committing_ = 0;
    for (Writer* writer : group) {
      queue_.pop_front();
      writer->done = true;
      if (writer->finished) {
        finished.push_back(writer);
      } else {
        writer->wake.notify_one();  // under the lock: it returns only after we let go
      }
    }
    lock.unlock();
    // Each frees its own job: take the function out first.
    for (Writer* writer : finished) {
      auto finish = std::move(writer->finished);
      finish();
    }
    lock.lock();
  }
}

std::size_t Store::QueuedWrites() {
  std::lock_guard lock(queue_mutex_);
  return queue_.size();
}

std::uint64_t Store::GroupCommits() {
  std::lock_guard lock(queue_mutex_);
  return group_commits_;
}

std::size_t Store::ReadsWaiting() {
  std::lock_guard lock(readers_mutex_);
  return person_reads_waiting_ + agent_reads_waiting_;
}

Store::ReaderTaken::ReaderTaken(Store& owner, ReadFor reader_for) : store(owner) {
  std::unique_lock lock(store.readers_mutex_);
  auto take_free = [&] {
    for (Reader& candidate : store.readers_) {
      if (!candidate.busy) {
        reader = &candidate;
        return true;
      }
    }
    return false;
  };
  bool wake_agents = false;
  if (reader_for == ReadFor::kAgent) {
    ++store.agent_reads_waiting_;
    store.reader_freed_.wait(lock, [&] { return store.person_reads_waiting_ == 0 && take_free(); });
    --store.agent_reads_waiting_;
  } else {
    ++store.person_reads_waiting_;
    store.reader_freed_.wait(lock, take_free);
    --store.person_reads_waiting_;
  }
  reader->busy = true;
  if (reader_for == ReadFor::kPerson && store.person_reads_waiting_ == 0 &&
      store.agent_reads_waiting_ > 0) {
    // Agents' reads held back for this one may take a reader still free:
    // nothing else would wake them (and none is woken when none is free).
    wake_agents = std::any_of(store.readers_.begin(), store.readers_.end(),
                              [](const Reader& r) { return !r.busy; });
  }
  lock.unlock();
  if (wake_agents) store.reader_freed_.notify_all();
}

Store::ReaderTaken::~ReaderTaken() {
  {
    std::lock_guard lock(store.readers_mutex_);
    reader->busy = false;
  }
  // All: Close may be waiting too, beside a read.
  store.reader_freed_.notify_all();
}

Result<void> Store::ReaderReady(Reader& reader) {
  if (!reader.session) return Fail(ErrorCode::kUnavailable, "the store is closed");
  // No round trip to ask: a read on a connection the server ended fails,
  // and then ReaderLost sees it broken.
  if (!ConnectionBroken(*reader.session)) return {};
  try {
    reader.statements.Clear();
    reader.session = OpenSession(target_, SessionRole::kReader);
    return {};
  } catch (const std::exception& e) {
    return std::unexpected(
        Unreachable(ErrorFromException(e, ErrorCode::kUnavailable, "reconnecting the store")));
  }
}

bool Store::ReaderLost(Reader& reader) {
  return reader.session && ConnectionBroken(*reader.session);
}

Error Store::Unreachable(const Error& error) {
  return Error(ErrorCode::kUnavailable,
               "the store's database cannot be reached: " + error.message());
}

void Store::CommitGroup(const std::vector<Writer*>& group) {
  std::lock_guard lock(session_mutex_);
  if (!open_) {
    for (Writer* writer : group)
      writer->error = Error(ErrorCode::kUnavailable, "the store is closed");
    return;
  }
  const bool postgresql = target_.backend == StoreBackend::kPostgresql;
  // A new connection when the last one is known lost (an earlier group, or
  // this BEGIN, found the database restarted). False after telling the group.
  auto connected = [&](bool broken) {
    if (!broken) return true;
    try {
      statements_.Clear();
      sql_ = OpenSession(target_, SessionRole::kWriter);
      return true;
    } catch (const std::exception& e) {
      const Error failure =
          Unreachable(ErrorFromException(e, ErrorCode::kUnavailable, "reconnecting the store"));
      for (Writer* writer : group) writer->error = failure;
      return false;
    }
  };
  if (!connected(ConnectionBroken(*sql_))) return;
  // BEGIN is where a connection the server ended since the last group is
  // found out (nothing asks before: that would be a round trip per group);
  // then once more on a new connection.
  for (int attempt = 1;; ++attempt) {
    try {
      sql_->begin();
      BeginWrite(*sql_);
      break;
    } catch (const std::exception& e) {
      try {
        sql_->rollback();
      } catch (const std::exception&) {
        // BEGIN itself failed: there is nothing to undo.
      }
      const bool lost = postgresql && !sql_->is_connected();
      if (lost && attempt == 1) {
        if (!connected(true)) return;
        continue;
      }
      Error failure = ErrorFromException(e, ErrorCode::kIo, "store");
      if (lost) failure = Unreachable(failure);
      for (Writer* writer : group) writer->error = failure;
      return;
    }
  }
  soci::session& sql = *sql_;
  // The savepoint statements run for every writer: prepared once.
  struct Savepoint {
    explicit Savepoint(soci::session& s)
        : open(s.prepare << "SAVEPOINT fabu_write"),
          undo(s.prepare << "ROLLBACK TO fabu_write"),
          release(s.prepare << "RELEASE fabu_write") {}
    soci::statement open, undo, release;
  };
  AuditStatements* audit = nullptr;
  try {
    Savepoint& savepoint = statements_.Get<Savepoint>(sql);
    // The chain head this transaction's entries move (audit_log.hpp).
    audit = &statements_.Get<AuditStatements>(sql);
    audit->pending.reset();
    after_commit_.clear();
    for (Writer* writer : group) {
      const std::optional<AuditStatements::Head> head_before = audit->pending;
      const std::size_t effects_before = after_commit_.size();
      savepoint.open.execute(true);
      bool keep = false;
      try {
        if (writer->fence) {
          if (auto fenced = CheckFence(sql, *writer->fence); !fenced) {
            writer->error = std::move(fenced.error());
          }
        }
        if (!writer->error) keep = (*writer->work)(sql);
      } catch (const std::exception& e) {
        writer->error = ErrorFromException(e, ErrorCode::kIo, "store");
      }
      // Undo only this writer's work (and its entries' move of the head).
      // Should SQLite have ended the whole transaction (a full disk, an I/O
      // error), this throws and the group fails.
      if (!keep) {
        savepoint.undo.execute(true);
        audit->pending = head_before;
        after_commit_.resize(effects_before);
      }
      savepoint.release.execute(true);
      writer->refused = !keep && !writer->error;
    }
    audit->Flush();
    sql.commit();
  } catch (const std::exception& e) {
    after_commit_.clear();
    if (audit != nullptr) audit->pending.reset();
    try {
      sql.rollback();
    } catch (const std::exception&) {
      // SQLite may have rolled back already.
    }
    Error failure = ErrorFromException(e, ErrorCode::kIo, "store: the group commit failed");
    if (postgresql && !sql_->is_connected()) failure = Unreachable(failure);
    // Writers whose callback refused keep their own answer; every other one
    // (kept work now lost, or never run) gets the group's failure.
    const bool lost = failure.code() == ErrorCode::kUnavailable;
    for (Writer* writer : group) {
      if (!writer->refused && (!writer->error || lost)) writer->error = failure;
    }
  }
  // What is left belongs to work that is now committed.
  std::vector<std::function<void()>> effects;
  effects.swap(after_commit_);
  for (auto& effect : effects) effect();
}

void Store::Close() {
  {
    std::lock_guard lock(queue_mutex_);
    stopping_ = true;
  }
  queued_.notify_one();
  if (committer_.joinable() && committer_.get_id() != std::this_thread::get_id()) {
    committer_.join();
  }
  {
    // Once every read in progress has given its session back.
    std::unique_lock lock(readers_mutex_);
    reader_freed_.wait(lock, [&] {
      return std::none_of(readers_.begin(), readers_.end(),
                          [](const Reader& reader) { return reader.busy; });
    });
    for (Reader& reader : readers_) {
      if (!reader.session) continue;
      reader.statements.Clear();
      try {
        reader.session->close();
      } catch (const std::exception&) {
        // Best effort, as below.
      }
      reader.session.reset();
    }
  }
  std::lock_guard lock(session_mutex_);
  if (!open_) return;
  open_ = false;
  statements_.Clear();  // finalizes the cached statements before the session closes
  try {
    BeforeClose(*sql_);
    sql_->close();
  } catch (const std::exception&) {
    // Closing is best effort; SQLite recovers the WAL on the next open.
  }
  sql_.reset();
}

Store::~Store() { Close(); }

}  // namespace fabu::coordinator
