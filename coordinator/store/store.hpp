// The coordinator's store: one SQLite database (or one PostgreSQL database,
// dialect.hpp) through SOCI.
//
// Store owns SOCI sessions on the database: one writes, kReaders read. Every
// use goes through Read (a query) or Write (a unit of work that commits when
// the callback succeeds and is undone when it fails or throws), or
// WriteAsync (the same, answered through a callback). Read and Write block
// (SQLite, fsync): run them on a worker pool, never on an I/O thread;
// WriteAsync only queues. Thread-safe.
//
// Reads run on their own sessions (query_only), so with WAL they proceed
// while a group commit runs or waits for its fsync; a Read sees what was
// committed when its statement started (every Write that has returned).
//
// Writes are group-committed. Write and WriteAsync calls queue; the store's
// committer thread takes the whole queue as one group (up to kMaxGroup): it
// opens one transaction and runs every queued callback in order, each inside
// its own SAVEPOINT, then commits once (one fsync for the whole group), while
// the writes arriving meanwhile queue up for the next group. So a group is as
// large as the writes that came during the previous commit, not bounded by
// how many threads can wait in Write: WriteAsync holds no thread at all.
// A callback that returns an error or throws is rolled back to its
// savepoint, so it loses only its own work; the others are unaffected. Every
// caller is answered only after the shared COMMIT: a value from Write means
// its work is durable. When the COMMIT itself fails, every caller of the
// group gets the error (kIo) and none of the group's work is kept. Callbacks
// of one group run one after another on the committer thread, and each sees
// the work of those before it, so two approvers acting at the same instant
// are still applied one after the other and lose nothing, and the audit hash
// chain stays one chain. A group holds at most kMaxGroup callbacks.
//
// Write hands the callback a Transaction, whose Audit() appends a hash-chained
// audit entry (audit_log.hpp) in the same unit of work: a mutation and its
// audit entry are committed together or not at all. A callback must not call
// Read or Write of the same store (it would deadlock), and must not leave
// effects outside the database that assume its commit (the group's COMMIT
// may still fail).
//
// SOCI throws; Read and Write catch at this boundary and return an Error
// (kIo for database failures, kInternal for anything else). The SQL used
// here and in callers runs on SQLite and PostgreSQL alike: plain TEXT /
// INTEGER / BIGINT columns, no AUTOINCREMENT, no INSERT OR REPLACE; what
// differs is in dialect.hpp.
//
// A write queued inside a FenceScope (fence.hpp) is made on behalf of a
// lease: before its callback runs, in its own savepoint, the store checks
// that this coordinator still holds the lease with the same token, and
// refuses the write (kFailedPrecondition) when it does not (lease.hpp).
//
// A PostgreSQL connection that was lost (the database restarted) is opened
// again at its next use. Nothing asks the server before a use whether the
// connection is alive (a round trip each time): a read that fails on a lost
// connection is tried once more on a new one; a group whose BEGIN finds its
// connection lost begins once more on a new one; a group that loses it
// later fails its writers with kUnavailable (answered 503, to be tried
// again) and the next group opens a new connection. Nothing of a failed
// group is kept.
//
// A SQLite database opens with journal_mode=WAL, synchronous=FULL and a busy
// timeout; on PostgreSQL the reading session is a second connection whose
// transactions are read-only, and each group commit takes the writers' lock
// (dialect.hpp, BeginWrite) so one writer at a time, as in SQLite. Either is
// migrated to the newest schema when opened (migrations.hpp).
#pragma once

#include <soci/soci.h>

#include <array>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <type_traits>
#include <typeindex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "coordinator/audit/audit_log.hpp"
#include "coordinator/common/clock.hpp"
#include "coordinator/store/dialect.hpp"
#include "coordinator/store/fence.hpp"
#include "protocol/error.hpp"

namespace fabu::coordinator {

// Statements prepared once per store session and kept for its life, so that
// SQLite parses a hot statement's text once rather than on every call (the
// parser was a quarter to a third of the coordinator's CPU under agent load).
//
// A cached statement is a type S with a constructor S(soci::session&) that
// prepares its statement (`soci::statement st`) bound to S's own members;
// a caller sets the members and runs `st.execute(true)`. A query must be
// read to its end (Finish) so it holds no read snapshot between uses.
// Owned by the Store, one per session; only used under that session's lock
// (inside Write callbacks through Transaction::Cached, and ReadCached). Not
// thread-safe by itself.
class StatementCache {
 public:
  template <typename S>
  S& Get(soci::session& sql) {
    const std::type_index key(typeid(S));
    auto it = entries_.find(key);
    if (it == entries_.end()) {
      // Prepare first: a statement that fails to prepare is not cached.
      auto holder = std::make_unique<Holder<S>>(sql);
      it = entries_.emplace(key, std::move(holder)).first;
    }
    return static_cast<Holder<S>&>(*it->second).value;
  }
  void Clear() { entries_.clear(); }

  // Reads a query's remaining rows, so SQLite ends the statement (a query
  // stopped after its first row would keep its read snapshot open).
  static void Finish(soci::statement& st) {
    while (st.fetch()) {
    }
  }

 private:
  struct Entry {
    virtual ~Entry() = default;
  };
  template <typename S>
  struct Holder final : Entry {
    explicit Holder(soci::session& sql) : value(sql) {}
    S value;
  };
  std::unordered_map<std::type_index, std::unique_ptr<Entry>> entries_;
};

class Transaction;

// What happened inside a transaction, told to whoever acts on it in the same
// unit of work. A module raises an event (a struct of its own) without
// knowing who listens: the deployments raise "a deployment ended" and the
// CMDB records it, a release's transition raises "a release changed" and the
// notices queue what it announces. The daemon subscribes the listeners once,
// before the store's first write (docs/architecture.md "Modules and their
// dependencies"); subscribing is not thread-safe after that. A listener runs
// inside the transaction: what it throws undoes the whole unit of work.
class EventBus {
 public:
  template <typename Event>
  void Subscribe(std::function<void(Transaction&, const Event&)> listener) {
    listeners_[std::type_index(typeid(Event))].push_back(
        [listener = std::move(listener)](Transaction& tx, const void* event) {
          listener(tx, *static_cast<const Event*>(event));
        });
  }
  template <typename Event>
  void Raise(Transaction& tx, const Event& event) const {
    auto it = listeners_.find(std::type_index(typeid(Event)));
    if (it == listeners_.end()) return;
    for (const auto& listener : it->second) listener(tx, &event);
  }

 private:
  std::unordered_map<std::type_index, std::vector<std::function<void(Transaction&, const void*)>>>
      listeners_;
};

// One write transaction in progress. Only valid inside Store::Write's callback.
class Transaction {
 public:
  soci::session& sql() { return sql_; }
  const AuditOrigin& origin() const { return origin_; }
  // Appends an audit entry for `event`, committed with this transaction.
  AuditEntry Audit(const AuditEvent& event) {
    return AppendAudit(sql_, origin_, event, clock_.Utc(), &Cached<AuditStatements>());
  }
  // Appends an entry for each (origin, event), in order, with one statement
  // for all of them (AppendAudits): for a unit of work that records many.
  std::vector<AuditEntry> AuditAll(std::span<const std::pair<AuditOrigin, AuditEvent>> items);
  // The same unit of work on behalf of `origin` (which must outlive the
  // copy): what it audits names `origin`, for work done for several
  // requests at once (write_batcher.hpp).
  Transaction As(const AuditOrigin& origin) const {
    return Transaction(sql_, origin, statements_, events_, clock_, after_commit_);
  }
  // The session's cached statement S (StatementCache).
  template <typename S>
  S& Cached() {
    return statements_.Get<S>(sql_);
  }
  // The store's clock: what a transaction records as "now".
  const Clock& clock() const { return clock_; }
  // Tells the store's subscribers (EventBus) that `event` happened, now,
  // inside this transaction.
  template <typename Event>
  void Raise(const Event& event) {
    events_.Raise(*this, event);
  }
  // Runs `effect` on the committer thread once this unit of work is
  // committed, and never when it is undone or the group's COMMIT fails: for
  // effects outside the database that assume the commit, such as waking a
  // thread that will read what this transaction wrote (a Read sees only
  // committed work). `effect` must be quick and must not call Read or Write.
  void AfterCommit(std::function<void()> effect) { after_commit_.push_back(std::move(effect)); }

 private:
  friend class Store;
  Transaction(soci::session& sql, const AuditOrigin& origin, StatementCache& statements,
              const EventBus& events, const Clock& clock,
              std::vector<std::function<void()>>& after_commit)
      : sql_(sql),
        origin_(origin),
        statements_(statements),
        events_(events),
        clock_(clock),
        after_commit_(after_commit) {}
  soci::session& sql_;
  const AuditOrigin& origin_;
  StatementCache& statements_;
  const EventBus& events_;
  const Clock& clock_;
  std::vector<std::function<void()>>& after_commit_;
};

class Store {
 public:
  // Creates a new database at `path` and applies every migration. Refuses
  // (kAlreadyExists) when the file exists.
  // `clock` stamps what transactions record; it must outlive the store.
  static Result<std::unique_ptr<Store>> Create(const std::filesystem::path& path,
                                               const Clock& clock = WallClock());
  // Opens an existing database and applies pending migrations. kNotFound when
  // there is none.
  static Result<std::unique_ptr<Store>> Open(const std::filesystem::path& path,
                                             const Clock& clock = WallClock());
  // The same on any backend: on PostgreSQL the database must exist (made by
  // its administrator); Create refuses (kAlreadyExists) one that holds a
  // store's schema, Open refuses (kNotFound) one that does not.
  static Result<std::unique_ptr<Store>> Create(const StoreTarget& target,
                                               const Clock& clock = WallClock());
  static Result<std::unique_ptr<Store>> Open(const StoreTarget& target,
                                             const Clock& clock = WallClock());

  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // The schema version after migrations.
  int schema_version() const { return schema_version_; }
  // Where the store is, and on which backend.
  const StoreTarget& target() const { return target_; }
  StoreBackend backend() const { return target_.backend; }

  // The listeners of events raised in this store's transactions (EventBus).
  EventBus& events() { return events_; }
  const Clock& clock() const { return clock_; }

  // Writes waiting for (or in) a group commit, and group commits so far
  // (COMMITs attempted). For metrics and tests.
  std::size_t QueuedWrites();
  std::uint64_t GroupCommits();
  // Reads waiting for a reading session now. For tests.
  std::size_t ReadsWaiting();

  // The most callbacks one group commit runs.
  static constexpr std::size_t kMaxGroup = 512;

  // Told of each group commit on the committer thread, right after it ends:
  // how long it took (BEGIN to COMMIT, the writers' work included) and how
  // many writes it held. For metrics; it must be quick and must not use the
  // store. Set it before the first write.
  using CommitObserver = std::function<void(double seconds, std::size_t writes)>;
  void ObserveCommits(CommitObserver observer) { commit_observer_ = std::move(observer); }

  // Whom a read answers. A fleet's agents poll in waves (5,000 of them
  // re-polling within a second after a restart or a failover), and on
  // PostgreSQL each read is a round trip: an agent's read gives way, so a
  // session given back goes to a waiting kPerson read first and a person's
  // read (or the rollout engine's) never queues behind a wave of polls.
  enum class ReadFor {
    kPerson,  // people's requests and the coordinator's own work
    kAgent,   // an agent's request: waits while a kPerson read waits
  };

  // Runs `f(soci::session&)` -> Result<T> on one of the reading sessions
  // (kReaders of them: a read waits for another only when all are busy).
  template <typename F>
  auto Read(F&& f, ReadFor reader_for = ReadFor::kPerson)
      -> std::invoke_result_t<F, soci::session&> {
    return ReadCached([&](soci::session& sql, StatementCache&) { return f(sql); }, reader_for);
  }

  // The same, for reads on a hot path: `f(soci::session&, StatementCache&)`
  // may use the session's cached statements.
  template <typename F>
  auto ReadCached(F&& f, ReadFor reader_for = ReadFor::kPerson)
      -> std::invoke_result_t<F, soci::session&, StatementCache&> {
    const ReaderTaken taken(*this, reader_for);
    Reader* const reader = taken.reader;
    if (auto ok = ReaderReady(*reader); !ok) return std::unexpected(ok.error());
    auto read = [&] { return f(*reader->session, reader->statements); };
    auto result = CatchAsError(ErrorCode::kIo, "store", read);
    if (!result && ReaderLost(*reader)) {
      // The database went away under the read (a restart): once more on a
      // new connection, then kUnavailable.
      if (auto ok = ReaderReady(*reader); !ok) return std::unexpected(ok.error());
      result = CatchAsError(ErrorCode::kIo, "store", read);
      if (!result && ReaderLost(*reader)) return std::unexpected(Unreachable(result.error()));
    }
    return result;
  }

  // How many reading sessions a store has. Reads run beside each other as
  // beside the writer: a long read (a /metrics scrape, an export) holds one
  // session while the others keep answering.
  static constexpr std::size_t kReaders = 2;

  // Runs `f(Transaction&)` -> Result<T> in a group commit (above): its work
  // is durable when it returns a value and the group committed; undone when
  // it returns an error or throws (kIo then, with the exception's text).
  // `ahead`: as for WriteAsync below (the lease's renewal: a backlog of
  // agents' events must not make it late).
  template <typename F>
  auto Write(const AuditOrigin& origin, F&& f, bool ahead = false)
      -> std::invoke_result_t<F, Transaction&> {
    using R = std::invoke_result_t<F, Transaction&>;
    std::optional<R> result;
    const std::function<bool(soci::session&)> work = [&](soci::session& sql) {
      Transaction tx(sql, origin, statements_, events_, clock_, after_commit_);
      result.emplace(std::forward<F>(f)(tx));
      return result->has_value();
    };
    if (auto done = RunInGroup(work, ahead); !done) return std::unexpected(std::move(done.error()));
    return std::move(*result);
  }

  // Write without waiting: queues `f(Transaction&)` -> Result<T> and returns
  // at once; `done(Result<T>)` is called on the committer thread once the
  // group committed (the callback's value), or with the callback's own error,
  // or with the group's failure (kIo), or kUnavailable when the store is
  // closed (then at once, on the caller's thread). `done` must be quick and
  // must not call Read or Write of this store: hand the result to another
  // thread (the HTTP server posts it to its I/O thread).
  //
  // `ahead`: queued before every write still waiting (behind the group
  // committing and any queued ahead earlier), for work that must not wait for
  // a flood of small writes (the next part of a wave, rollout_engine.hpp).
  template <typename F, typename Done>
  void WriteAsync(AuditOrigin origin, F f, Done done, bool ahead = false) {
    using R = std::invoke_result_t<F&, Transaction&>;
    struct Job {
      AuditOrigin origin;
      F f;
      Done done;
      std::optional<R> result;
      std::function<bool(soci::session&)> work;
      Writer writer;
    };
    auto* job = new Job{std::move(origin), std::move(f), std::move(done), {}, {}, {}};
    job->work = [this, job](soci::session& sql) {
      Transaction tx(sql, job->origin, statements_, events_, clock_, after_commit_);
      job->result.emplace(job->f(tx));
      return job->result->has_value();
    };
    job->writer.work = &job->work;
    if (const Fence* fence = FenceScope::Current()) job->writer.fence = *fence;
    job->writer.finished = [job] {
      std::unique_ptr<Job> owned(job);
      if (owned->writer.error) {
        owned->done(R(std::unexpected(std::move(*owned->writer.error))));
      } else {
        owned->done(std::move(*owned->result));
      }
    };
    Enqueue(job->writer, ahead);
  }

  // Commits what is queued, stops the committer, checkpoints the WAL and
  // closes the sessions; later calls fail kUnavailable.
  void Close();

 private:
  explicit Store(const Clock& clock) : clock_(clock) {}
  // `create`: the schema must not be there yet (Create), else it must (Open).
  static Result<std::unique_ptr<Store>> Connect(const StoreTarget& target, const Clock& clock,
                                                std::optional<bool> create);

  // One queued write: a caller of Write waiting (on its caller's stack, woken
  // through `wake`), or a WriteAsync job (on the heap, `finished` set).
  struct Writer {
    const std::function<bool(soci::session&)>* work = nullptr;
    std::optional<Error> error;  // set when it threw, or its kept work was lost
    bool refused = false;        // its callback returned an error (its own answer)
    bool done = false;
    // Made on behalf of a lease (FenceScope when queued): checked before
    // `work` runs; a failed check refuses it (kFailedPrecondition).
    std::optional<Fence> fence;
    std::condition_variable wake;
    std::function<void()> finished;  // WriteAsync: called once, after the group
  };

  // A reading session (OpenSession's kReader) and its cached statements.
  // Used by one read at a time: the one that took it (ReaderTaken).
  struct Reader {
    bool busy = false;  // guarded by readers_mutex_
    std::unique_ptr<soci::session> session;
    StatementCache statements;
  };
  // A free reading session, taken for one read (waiting for the first to be
  // given back when all are busy; a kAgent read also while a kPerson read
  // waits), and given back when this is destroyed.
  struct ReaderTaken {
    ReaderTaken(Store& store, ReadFor reader_for);
    ~ReaderTaken();
    ReaderTaken(const ReaderTaken&) = delete;
    ReaderTaken& operator=(const ReaderTaken&) = delete;
    Store& store;
    Reader* reader = nullptr;
  };
  // PostgreSQL's connections can be lost (the server restarts, the network
  // breaks); a lost one is opened again at the next use. SQLite's cannot.
  // By the read that took `reader`: kUnavailable when the store is closed or
  // the new connection cannot be made.
  Result<void> ReaderReady(Reader& reader);
  // Whether the reading session's connection is lost (PostgreSQL).
  bool ReaderLost(Reader& reader);
  // `error` as kUnavailable, saying the database cannot be reached.
  static Error Unreachable(const Error& error);

  // Queues `work`; returns once its group committed (or failed). An error is
  // the callback's exception, or the group's failure; a callback's own
  // returned error is not one (its result carries it).
  Result<void> RunInGroup(const std::function<bool(soci::session&)>& work, bool ahead);
  // Queues `writer` for the committer (`ahead`: see WriteAsync); a closed
  // store finishes it at once with kUnavailable.
  void Enqueue(Writer& writer, bool ahead = false);
  // The committer thread: takes the queue as a group, commits, repeats.
  void CommitLoop();
  // Runs `group` in one transaction under the session lock.
  void CommitGroup(const std::vector<Writer*>& group);

  std::mutex queue_mutex_;           // guards queue_, stopping_
  std::condition_variable queued_;   // the committer waits here for writes
  std::deque<Writer*> queue_;        // waiting writers; a group from the front
  std::size_t committing_ = 0;       // the group at the front being committed
  std::size_t ahead_ = 0;            // queued ahead, right behind that group
  bool stopping_ = false;            // Close: no more writes are queued
  std::uint64_t group_commits_ = 0;  // guarded by queue_mutex_
  CommitObserver commit_observer_;   // set before the first write, read by the committer
  std::thread committer_;
  std::mutex session_mutex_;  // guards sql_ and open_
  std::unique_ptr<soci::session> sql_;
  StatementCache statements_;  // guarded by session_mutex_; cleared before sql_ closes
  EventBus events_;            // subscribed before the first write, read-only after
  // Transaction::AfterCommit's effects of the group being committed; guarded
  // by session_mutex_.
  std::vector<std::function<void()>> after_commit_;
  const Clock& clock_;
  bool open_ = false;
  std::mutex readers_mutex_;              // guards every Reader's `busy` and the two counts below
  std::condition_variable reader_freed_;  // a reader was given back, or kAgent reads may go on
  std::size_t person_reads_waiting_ = 0;  // kPerson reads waiting for a reader
  std::size_t agent_reads_waiting_ = 0;   // kAgent reads waiting for a reader
  std::array<Reader, kReaders> readers_;
  int schema_version_ = 0;
  StoreTarget target_;
};

}  // namespace fabu::coordinator
