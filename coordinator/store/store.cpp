#include "coordinator/store/store.hpp"

#include <pthread.h>
#include <soci/sqlite3/soci-sqlite3.h>

#include <algorithm>
#include <vector>

#include "coordinator/store/migrations.hpp"

namespace fabu::coordinator {

Result<std::unique_ptr<Store>> Store::Connect(const std::filesystem::path& path,
                                              const Clock& clock) {
  std::unique_ptr<Store> store(new Store(clock));
  try {
    // timeout= sets SQLite's busy timeout (seconds) for other processes
    // holding the lock, e.g. `fabu-coordinator trust add` next to `serve`.
    store->sql_ =
        std::make_unique<soci::session>(soci::sqlite3, "db=\"" + path.string() + "\" timeout=10");
    std::string mode;
    *store->sql_ << "PRAGMA journal_mode=WAL", soci::into(mode);
    if (mode != "wal") {
      return Fail(ErrorCode::kIo, "store " + path.string() +
                                      ": SQLite refused write-ahead logging (journal_mode=" + mode +
                                      ")");
    }
    *store->sql_ << "PRAGMA synchronous=FULL";
    *store->sql_ << "PRAGMA foreign_keys=ON";
    // What a write replaces or deletes is zeroed in its page, not left in
    // the file's free space: a secret sealed over its clear form (secret
    // box) is gone from the file. FAST: only where it costs no extra I/O.
    *store->sql_ << "PRAGMA secure_delete=FAST";
  } catch (const std::exception& e) {
    return std::unexpected(ErrorFromException(e, ErrorCode::kIo, "opening store " + path.string()));
  }
  auto version = Migrate(*store->sql_, AllMigrations(), clock);
  if (!version) return std::unexpected(std::move(version.error()).WithContext(path.string()));
  store->schema_version_ = *version;
  try {
    // The reading session: WAL lets it read while the writer commits.
    // query_only makes a write through Read fail instead of racing the writer.
    store->reader_ =
        std::make_unique<soci::session>(soci::sqlite3, "db=\"" + path.string() + "\" timeout=10");
    *store->reader_ << "PRAGMA query_only=ON";
  } catch (const std::exception& e) {
    return std::unexpected(
        ErrorFromException(e, ErrorCode::kIo, "opening store " + path.string() + " for reading"));
  }
  store->open_ = true;
  store->committer_ = std::thread([raw = store.get()] { raw->CommitLoop(); });
  return store;
}

Result<std::unique_ptr<Store>> Store::Create(const std::filesystem::path& path,
                                             const Clock& clock) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    return Fail(ErrorCode::kAlreadyExists, "a store already exists at " + path.string());
  }
  return Connect(path, clock);
}

Result<std::unique_ptr<Store>> Store::Open(const std::filesystem::path& path, const Clock& clock) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return Fail(ErrorCode::kNotFound,
                "no store at " + path.string() + ": run `fabu-coordinator init` first");
  }
  return Connect(path, clock);
}

Result<void> Store::RunInGroup(const std::function<bool(soci::session&)>& work) {
  Writer self;
  self.work = &work;
  Enqueue(self);
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
    CommitGroup(group);
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

void Store::CommitGroup(const std::vector<Writer*>& group) {
  std::lock_guard lock(session_mutex_);
  if (!open_) {
    for (Writer* writer : group)
      writer->error = Error(ErrorCode::kUnavailable, "the store is closed");
    return;
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
  try {
    sql.begin();
  } catch (const std::exception& e) {
    for (Writer* writer : group) writer->error = ErrorFromException(e, ErrorCode::kIo, "store");
    return;
  }
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
        keep = (*writer->work)(sql);
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
    const Error failure = ErrorFromException(e, ErrorCode::kIo, "store: the group commit failed");
    // Writers whose callback refused keep their own answer; every other one
    // (kept work now lost, or never run) gets the group's failure.
    for (Writer* writer : group) {
      if (!writer->refused && !writer->error) writer->error = failure;
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
    std::lock_guard lock(reader_mutex_);
    if (reader_) {
      reader_statements_.Clear();
      try {
        reader_->close();
      } catch (const std::exception&) {
        // Best effort, as below.
      }
      reader_.reset();
    }
  }
  std::lock_guard lock(session_mutex_);
  if (!open_) return;
  open_ = false;
  statements_.Clear();  // finalizes the cached statements before the session closes
  try {
    // Fold the WAL into the database so the file alone holds everything.
    *sql_ << "PRAGMA wal_checkpoint(TRUNCATE)";
    sql_->close();
  } catch (const std::exception&) {
    // Closing is best effort; SQLite recovers the WAL on the next open.
  }
  sql_.reset();
}

Store::~Store() { Close(); }

}  // namespace fabu::coordinator
