// The store: migrations, transactions, the boundary that turns SOCI errors into Errors.
#include "coordinator/store/store.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "coordinator/auth/users.hpp"
#include "coordinator/store/migrations.hpp"
#include "coordinator/store/read_batcher.hpp"
#include "coordinator/store/write_batcher.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_store.hpp"
#include "tests/support/test_store_target.hpp"

namespace fabu::coordinator {
namespace {

using testing::TempDir;
using testing::TestStore;

const AuditOrigin kOrigin{"tester", "admin", "req-1", "127.0.0.1:1"};

int CountRows(Store& store, const std::string& table) {
  auto count = store.Read([&](soci::session& sql) -> Result<int> {
    int n = 0;
    sql << "SELECT COUNT(*) FROM " + table, soci::into(n);
    return n;
  });
  return count.value_or(-1);
}

TEST(StoreTest, CreateAppliesEveryMigration) {
  TempDir dir;
  auto store = Store::Create(TestStore(dir / "c.db"));
  ASSERT_TRUE(store) << store.error().message();
  EXPECT_EQ((*store)->schema_version(), AllMigrations().back().version);
  EXPECT_EQ(CountRows(**store, "schema_migrations"), static_cast<int>(AllMigrations().size()));
  if ((*store)->backend() != StoreBackend::kSqlite) return;
  auto mode = (*store)->Read([](soci::session& sql) -> Result<std::string> {
    std::string journal;
    sql << "PRAGMA journal_mode", soci::into(journal);
    return journal;
  });
  EXPECT_EQ(mode.value_or(""), "wal");
}

TEST(StoreTest, CreateRefusesAnExistingFile) {
  // (On PostgreSQL: a database that already holds a store.)
  TempDir dir;
  const auto target = TestStore(dir / "c.db");
  ASSERT_TRUE(Store::Create(target));
  auto again = Store::Create(target);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kAlreadyExists);
}

TEST(StoreTest, OpenWithoutAStoreSaysRunInit) {
  TempDir dir;
  auto store = Store::Open(TestStore(dir / "missing.db"));
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(store.error().message().find("init"), std::string::npos);
}

TEST(StoreTest, OpenAppliesPendingMigrationsToAnOldStore) {
  // Given a store made by a version that knew only migration 1, opening it
  // should bring it to the newest schema and keep its rows.
  TempDir dir;
  const auto path = TestStore(dir / "old.db");
  {
    const auto session = OpenSession(path, SessionRole::kWriter);
    soci::session& sql = *session;
    auto version = Migrate(sql, std::span(AllMigrations()).first(1), WallClock());
    ASSERT_TRUE(version) << version.error().message();
    EXPECT_EQ(*version, 1);
    sql << "INSERT INTO users (name, role, token_sha256, disabled, created, created_by) "
           "VALUES ('old', 'viewer', 'x', 0, 't', 'me')";
  }
  auto store = Store::Open(path);
  ASSERT_TRUE(store) << store.error().message();
  EXPECT_EQ((*store)->schema_version(), AllMigrations().back().version);
  EXPECT_EQ(CountRows(**store, "users"), 1);
  EXPECT_EQ(CountRows(**store, "packages"), 0);
}

TEST(StoreTest, RefusesAStoreNewerThanThisProgram) {
  TempDir dir;
  const auto path = TestStore(dir / "new.db");
  ASSERT_TRUE(Store::Create(path));
  {
    const auto session = OpenSession(path, SessionRole::kWriter);
    soci::session& sql = *session;
    sql << "INSERT INTO schema_migrations (version, name, applied) VALUES (999, 'future', 't')";
  }
  auto store = Store::Open(path);
  ASSERT_FALSE(store);
  EXPECT_NE(store.error().message().find("schema version 999"), std::string::npos)
      << store.error().message();
}

TEST(StoreTest, AFailedWriteLeavesNothing) {
  // Given a transaction that adds a user (and its audit entry) and then
  // fails, neither the user nor the entry should remain.
  TempDir dir;
  auto store = Store::Create(TestStore(dir / "c.db"));
  ASSERT_TRUE(store);
  auto result = (*store)->Write(kOrigin, [](Transaction& tx) -> Result<void> {
    auto token = CreateUser(tx, "carol", Role::kTester);
    if (!token) return std::unexpected(token.error());
    return Fail(ErrorCode::kConflict, "changed my mind");
  });
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), ErrorCode::kConflict);
  EXPECT_EQ(CountRows(**store, "users"), 0);
  EXPECT_EQ(CountRows(**store, "audit_log"), 0);
}

TEST(StoreTest, AnAfterCommitEffectRunsOnceTheWorkIsVisibleAndNeverForUndoneWork) {
  // Given effects registered by a kept write, a refused one and one that
  // throws, only the kept write's effect should run, and when it runs a
  // Read (the delivery worker's view) should already see that write.
  TempDir dir;
  auto store = Store::Create(TestStore(dir / "c.db"));
  ASSERT_TRUE(store);
  Store& s = **store;
  std::vector<std::string> ran;
  int users_seen = -1;
  auto kept = s.Write(kOrigin, [&](Transaction& tx) -> Result<void> {
    auto token = CreateUser(tx, "alice", Role::kTester);
    if (!token) return std::unexpected(token.error());
    tx.AfterCommit([&] {
      ran.push_back("kept");
      users_seen = CountRows(s, "users");
    });
    return {};
  });
  ASSERT_TRUE(kept) << kept.error().message();
  auto refused = s.Write(kOrigin, [&](Transaction& tx) -> Result<void> {
    tx.AfterCommit([&] { ran.push_back("refused"); });
    return Fail(ErrorCode::kConflict, "changed my mind");
  });
  EXPECT_FALSE(refused);
  auto threw = s.Write(kOrigin, [&](Transaction& tx) -> Result<void> {
    tx.AfterCommit([&] { ran.push_back("threw"); });
    throw std::runtime_error("broke");
  });
  EXPECT_FALSE(threw);
  EXPECT_EQ(ran, std::vector<std::string>{"kept"});
  EXPECT_EQ(users_seen, 1);
}

TEST(StoreTest, SqlErrorsBecomeErrorsNotExceptions) {
  TempDir dir;
  auto store = Store::Create(TestStore(dir / "c.db"));
  ASSERT_TRUE(store);
  auto result = (*store)->Write(kOrigin, [](Transaction& tx) -> Result<void> {
    tx.sql() << "INSERT INTO no_such_table VALUES (1)";
    return {};
  });
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), ErrorCode::kIo);
  EXPECT_NE(result.error().message().find("no_such_table"), std::string::npos);
}

// A PostgreSQL server that restarts cuts every connection; the store opens
// new ones. Nothing asks the server whether a connection is alive before
// using it (that would be a round trip per read): a read that finds its
// connection dead is tried again on a new one, and so is a group whose
// BEGIN does. Neither the person reading nor the one writing sees the cut.
TEST(StoreTest, APostgresqlStoreConnectsAgainAfterItsConnectionsWereCut) {
  if (!testing::TestStoreIsPostgresql()) {
    GTEST_SKIP() << "SQLite's connection is a file; FABU_TEST_STORE is not set";
  }
  TempDir dir;
  auto store = Store::Create(TestStore(dir / "c.db"));
  ASSERT_TRUE(store) << store.error().message();
  const auto write = [&](const std::string& action) {
    return (*store)->Write(kOrigin, [&](Transaction& tx) -> Result<void> {
      tx.Audit(AuditEvent(action, "probe", "1"));
      return {};
    });
  };
  ASSERT_TRUE(write("test.before"));
  ASSERT_EQ(CountRows(**store, "audit_log"), 1);
  // What a restart of the server does to the store's connections, waited
  // for until their server processes are gone.
  soci::session other(soci::postgresql, (*store)->target().connect);
  const std::string others =
      "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()";
  int cut = 0;
  other << "SELECT COUNT(pg_terminate_backend(pid)) " + others, soci::into(cut);
  EXPECT_GE(cut, 2);  // the writing and the reading connection
  int left = -1;
  for (int i = 0; i < 500 && left != 0; ++i) {
    other << "SELECT COUNT(*) " + others, soci::into(left);
    if (left != 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(left, 0) << "the cut connections' server processes did not end";

  // The read goes through on a new connection, and so does the write.
  EXPECT_EQ(CountRows(**store, "audit_log"), 1);
  auto after = write("test.after");
  ASSERT_TRUE(after) << after.error().message();
  EXPECT_EQ(CountRows(**store, "audit_log"), 2);

  auto verified = (*store)->Read(
      [](soci::session& sql) -> Result<AuditVerification> { return VerifyAudit(sql); });
  ASSERT_TRUE(verified) << verified.error().message();
  EXPECT_TRUE(verified->intact) << verified->reason;
}

// A long read (a /metrics scrape, an export) holds one reading session; a
// read that comes meanwhile is answered on another, not after it.
TEST(StoreTest, AReadIsAnsweredWhileALongReadHoldsAReadingSession) {
  TempDir dir;
  auto store = Store::Create(TestStore(dir / "c.db"));
  ASSERT_TRUE(store) << store.error().message();
  std::promise<void> inside, release;
  std::shared_future<void> released = release.get_future().share();
  auto long_read = std::async(std::launch::async, [&] {
    return (*store)->Read([&](soci::session& sql) -> Result<int> {
      inside.set_value();
      released.wait();
      int n = 0;
      sql << "SELECT COUNT(*) FROM schema_migrations", soci::into(n);
      return n;
    });
  });
  inside.get_future().wait();
  auto short_read = std::async(std::launch::async, [&] { return CountRows(**store, "users"); });
  // Two readers at once besides the long read: when both sessions are busy,
  // a read waits for the first given back, never for the long read's.
  const auto many = [&] {
    int sum = 0;
    for (int i = 0; i < 200; ++i) sum += CountRows(**store, "users") == 0 ? 1 : 0;
    return sum;
  };
  auto first_many = std::async(std::launch::async, many);
  auto second_many = std::async(std::launch::async, many);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  const bool answered = short_read.wait_until(deadline) == std::future_status::ready;
  const bool all_answered = first_many.wait_until(deadline) == std::future_status::ready &&
                            second_many.wait_until(deadline) == std::future_status::ready;
  release.set_value();
  EXPECT_TRUE(answered) << "the read waited for the long one";
  EXPECT_TRUE(all_answered) << "reads waited for the long one while another session was free";
  EXPECT_EQ(short_read.get(), 0);
  EXPECT_EQ(first_many.get(), 200);
  EXPECT_EQ(second_many.get(), 200);
  auto n = long_read.get();
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, static_cast<int>(AllMigrations().size()));
}

// A wave of agents' polls waits for the reading sessions: a person's read
// that comes after them is given the first session given back.
TEST(StoreTest, APersonsReadGoesBeforeAgentsReadsWaitingForASession) {
  TempDir dir;
  auto store = Store::Create(TestStore(dir / "c.db"));
  ASSERT_TRUE(store) << store.error().message();
  // Both reading sessions held by long reads.
  std::vector<std::promise<void>> inside(Store::kReaders), release(Store::kReaders);
  std::vector<std::future<int>> long_reads;
  for (std::size_t i = 0; i < Store::kReaders; ++i) {
    long_reads.push_back(std::async(std::launch::async, [&, i] {
      auto n = (*store)->Read([&](soci::session&) -> Result<int> {
        inside[i].set_value();
        release[i].get_future().wait();
        return 1;
      });
      return n ? *n : -1;
    }));
    inside[i].get_future().wait();
  }
  std::mutex order_mutex;
  std::vector<std::string> order;  // who was answered, in turn
  auto read_as = [&](const std::string& who, Store::ReadFor reader) {
    return std::async(std::launch::async, [&, who, reader] {
      auto ok = (*store)->Read(
          [&](soci::session& sql) -> Result<int> {
            int n = 0;
            sql << "SELECT COUNT(*) FROM users", soci::into(n);
            const std::lock_guard lock(order_mutex);
            order.push_back(who);
            return n;
          },
          reader);
      return ok.has_value();
    });
  };
  const auto waiting = [&](std::size_t n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while ((*store)->ReadsWaiting() < n && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return (*store)->ReadsWaiting() == n;
  };
  constexpr std::size_t kAgents = 16;
  std::vector<std::future<bool>> agents;
  for (std::size_t i = 0; i < kAgents; ++i) {
    agents.push_back(read_as("agent", Store::ReadFor::kAgent));
  }
  ASSERT_TRUE(waiting(kAgents));
  auto person = read_as("person", Store::ReadFor::kPerson);
  ASSERT_TRUE(waiting(kAgents + 1));
  release[0].set_value();  // one session given back
  EXPECT_TRUE(person.get());
  release[1].set_value();
  for (auto& agent : agents) EXPECT_TRUE(agent.get());
  for (auto& long_read : long_reads) EXPECT_EQ(long_read.get(), 1);
  ASSERT_EQ(order.size(), kAgents + 1);
  EXPECT_EQ(order.front(), "person") << "an agent's read took the session given back first";
  EXPECT_EQ((*store)->ReadsWaiting(), 0u);
}

// Holds every reading session of `store` until destroyed (a long read on
// each), so that reads after it wait for one.
class ReadersHeld {
 public:
  explicit ReadersHeld(Store& store) : release_(Store::kReaders) {
    std::vector<std::promise<void>> inside(Store::kReaders);
    for (std::size_t i = 0; i < Store::kReaders; ++i) {
      reads_.push_back(std::async(
          std::launch::async, [&store, &in = inside[i], out = release_[i].get_future()]() mutable {
            auto held = store.Read([&](soci::session&) -> Result<int> {
              in.set_value();
              out.wait();
              return 1;
            });
            return held.has_value();
          }));
      inside[i].get_future().wait();
    }
  }
  // One session given back.
  void GiveBack() { release_.at(given_++).set_value(); }
  ~ReadersHeld() {
    while (given_ < release_.size()) GiveBack();
    for (auto& read : reads_) EXPECT_TRUE(read.get());
  }

 private:
  std::vector<std::promise<void>> release_;
  std::size_t given_ = 0;
  std::vector<std::future<bool>> reads_;
};

bool WaitFor(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return done();
}

// A wave of polls while the reading sessions are busy: one read for all of
// them, when a session is given back, each item answered its own; a read
// that finds a session free runs at once, alone.
TEST(ReadBatcherTest, ReadsThatComeWhileTheSessionsAreBusyAreReadTogether) {
  TempDir dir;
  auto store = Store::Create(TestStore(dir / "c.db"));
  ASSERT_TRUE(store) << store.error().message();
  std::mutex batches_mutex;
  std::vector<std::size_t> batches;  // the size of each batch read
  ReadBatcher<std::string, std::string> batcher(
      **store, Store::ReadFor::kAgent,
      [&](soci::session& sql, StatementCache&, std::span<const std::string> items) {
        int users = -1;
        sql << "SELECT COUNT(*) FROM users", soci::into(users);
        {
          const std::lock_guard lock(batches_mutex);
          batches.push_back(items.size());
        }
        std::vector<Result<std::string>> answers;
        for (const std::string& item : items)
          answers.emplace_back(fmt::format("{}:{}", item, users));
        return answers;
      });
  constexpr std::size_t kPolls = 12;
  std::vector<std::future<Result<std::string>>> polls;
  {
    ReadersHeld held(**store);
    for (std::size_t i = 0; i < kPolls; ++i) {
      polls.push_back(std::async(
          std::launch::async, [&batcher, i] { return batcher.Read(fmt::format("host-{}", i)); }));
    }
    ASSERT_TRUE(WaitFor([&] { return batcher.Waiting() == kPolls; }));
    // Only the batch's first read waits for a session; the others, for it.
    EXPECT_EQ((*store)->ReadsWaiting(), 1u);
    held.GiveBack();
    for (std::size_t i = 0; i < kPolls; ++i) {
      auto answer = polls[i].get();
      ASSERT_TRUE(answer) << answer.error().message();
      EXPECT_EQ(*answer, fmt::format("host-{}:0", i));
    }
  }
  EXPECT_EQ(batches, std::vector<std::size_t>{kPolls});
  auto alone = batcher.Read("host-a");
  ASSERT_TRUE(alone) << alone.error().message();
  EXPECT_EQ(*alone, "host-a:0");
  EXPECT_EQ(batches, (std::vector<std::size_t>{kPolls, 1}));
  EXPECT_EQ(batcher.Waiting(), 0u);
}

// An item the work refuses loses only itself; a read that fails (a closed
// store, a work that answers for the wrong number) is the answer of every
// item of its batch.
TEST(ReadBatcherTest, ARefusedItemLosesOnlyItselfAndAFailedReadFailsItsBatch) {
  TempDir dir;
  auto store = Store::Create(TestStore(dir / "c.db"));
  ASSERT_TRUE(store) << store.error().message();
  std::atomic<bool> miscount = false;
  ReadBatcher<std::string, int> batcher(
      **store, Store::ReadFor::kAgent,
      [&](soci::session&, StatementCache&, std::span<const std::string> items) {
        std::vector<Result<int>> answers;
        for (const std::string& item : items) {
          if (item == "bad") {
            answers.emplace_back(Fail(ErrorCode::kNotFound, "no host bad"));
          } else {
            answers.emplace_back(static_cast<int>(item.size()));
          }
        }
        if (miscount) answers.pop_back();
        return answers;
      });
  std::vector<std::future<Result<int>>> reads;
  {
    ReadersHeld held(**store);
    for (const char* item : {"good", "bad", "fine"}) {
      reads.push_back(
          std::async(std::launch::async, [&batcher, item] { return batcher.Read(item); }));
      ASSERT_TRUE(WaitFor([&] { return batcher.Waiting() == reads.size(); }));
    }
    held.GiveBack();
    auto good = reads[0].get(), bad = reads[1].get(), fine = reads[2].get();
    ASSERT_TRUE(good) << good.error().message();
    EXPECT_EQ(*good, 4);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code(), ErrorCode::kNotFound);
    ASSERT_TRUE(fine) << fine.error().message();
    EXPECT_EQ(*fine, 4);
  }
  miscount = true;
  auto miscounted = batcher.Read("good");
  ASSERT_FALSE(miscounted);
  EXPECT_EQ(miscounted.error().code(), ErrorCode::kInternal);
  miscount = false;
  (*store)->Close();
  auto closed = batcher.Read("good");
  ASSERT_FALSE(closed);
  EXPECT_EQ(closed.error().code(), ErrorCode::kUnavailable) << closed.error().message();
  EXPECT_EQ(batcher.Waiting(), 0u);
}

TEST(StoreTest, ClosedStoreRefusesWork) {
  TempDir dir;
  auto store = Store::Create(TestStore(dir / "c.db"));
  ASSERT_TRUE(store);
  (*store)->Close();
  EXPECT_EQ(CountRows(**store, "users"), -1);
}

// Appends one audit entry naming `id` (object type "test").
Result<void> AuditOne(Transaction& tx, const std::string& id) {
  tx.Audit(AuditEvent("test.write", "test", id));
  return {};
}

std::vector<std::string> AuditedIds(Store& store) {
  auto ids = store.Read([](soci::session& sql) -> Result<std::vector<std::string>> {
    std::vector<std::string> out;
    soci::rowset<std::string> rows =
        (sql.prepare << "SELECT object_id FROM audit_log WHERE object_type = 'test' ORDER BY seq");
    for (const auto& id : rows) out.push_back(id);
    return out;
  });
  return ids.value_or(std::vector<std::string>{});
}

AuditVerification Verify(Store& store) {
  auto verified =
      store.Read([](soci::session& sql) -> Result<AuditVerification> { return VerifyAudit(sql); });
  if (verified) return *verified;
  AuditVerification failed;
  failed.intact = false;
  failed.count = -1;
  failed.reason = "read failed";
  return failed;
}

// Given writers appending audit entries all the while, a verification of
// the chain should find it intact every time: it reads the log and the
// head in one snapshot, never a head newer than the log it walked.
TEST(StoreTest, TheChainVerifiesIntactWhileWritesCommit) {
  TempDir dir;
  auto store = Store::Create(TestStore(dir / "c.db"));
  ASSERT_TRUE(store);
  for (int i = 0; i < 500; ++i) {
    ASSERT_TRUE((*store)->Write(
        kOrigin, [&](Transaction& tx) { return AuditOne(tx, "seed-" + std::to_string(i)); }));
  }
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int i = 0; i < 2000 && !done; ++i) {
      if (!(*store)->Write(
              kOrigin, [&](Transaction& tx) { return AuditOne(tx, "w-" + std::to_string(i)); })) {
        break;
      }
    }
    done = true;
  });
  int verified = 0;
  while (!done && verified < 200) {
    const AuditVerification v = Verify(**store);
    if (!v.intact) {
      ADD_FAILURE() << "verification " << verified << ": " << v.reason;
      break;
    }
    ++verified;
  }
  done = true;
  writer.join();
  EXPECT_GT(verified, 0);
  EXPECT_TRUE(Verify(**store).intact);
}

// Audit entries of `object_id` ("" for every test entry), counted through a
// connection of its own to the database at `path` (as after a crash and reopen).
int CommittedEntries(const StoreTarget& path, const std::string& object_id) {
  const auto session = OpenSession(path, SessionRole::kReader);
  soci::session& other = *session;
  int n = 0;
  std::string id = object_id;
  other << "SELECT COUNT(*) FROM audit_log WHERE object_type = 'test' AND (:i = '' OR "
           "object_id = :i)",
      soci::use(id, "i"), soci::into(n);
  return n;
}

// Waits (yielding, up to 10 s) until `store` has `n` writes queued.
bool WaitForQueued(Store& store, std::size_t n) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (store.QueuedWrites() < n) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

TEST(StoreGroupCommitTest, ConcurrentWritersAllCommitInOneChain) {
  // Given 8 threads writing 50 audit entries each at the same time, every
  // write should be stored, in fewer commits than writes, in one intact chain.
  TempDir dir;
  auto store = Store::Create(TestStore(dir / "c.db"));
  ASSERT_TRUE(store);
  constexpr int kThreads = 8, kEach = 50;
  std::atomic<int> failures = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const std::string id = std::to_string(t) + "-" + std::to_string(i);
        if (!(*store)->Write(kOrigin, [&](Transaction& tx) { return AuditOne(tx, id); })) {
          ++failures;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(AuditedIds(**store).size(), std::size_t{kThreads * kEach});
  EXPECT_LE((*store)->GroupCommits(), std::uint64_t{kThreads * kEach});
  const AuditVerification verified = Verify(**store);
  EXPECT_TRUE(verified.intact) << verified.reason;
  EXPECT_EQ(verified.count, kThreads * kEach);
}

TEST(StoreGroupCommitTest, AFailingWriterLosesOnlyItsOwnWork) {
  // Given a group of writers committed together, one of which returns an
  // error and one of which throws after writing, the others' work should be
  // committed, the two failures should get their own errors, and the audit
  // chain should skip nothing.
  TempDir dir;
  auto store = Store::Create(TestStore(dir / "c.db"));
  ASSERT_TRUE(store);
  Store& s = **store;
  constexpr std::size_t kWriters = 6;
  // The first writer's group is committing, held open until every other
  // writer has queued, so those form the next group together.
  std::atomic<bool> committing = false;
  std::thread first([&] {
    auto ok = s.Write(kOrigin, [&](Transaction& tx) {
      committing = true;
      EXPECT_TRUE(WaitForQueued(s, 1 + kWriters));
      return AuditOne(tx, "first");
    });
    EXPECT_TRUE(ok);
  });
  while (!committing) std::this_thread::yield();
  std::vector<Result<void>> results(kWriters);
  std::vector<std::thread> writers;
  for (std::size_t i = 0; i < kWriters; ++i) {
    writers.emplace_back([&, i] {
      results[i] = s.Write(kOrigin, [&](Transaction& tx) -> Result<void> {
        const std::string id = "w" + std::to_string(i);
        if (auto ok = AuditOne(tx, id); !ok) return ok;
        if (i == 2) return Fail(ErrorCode::kConflict, "w2 changed its mind");
        if (i == 4) throw std::runtime_error("w4 broke");
        return {};
      });
    });
  }
  first.join();
  for (auto& writer : writers) writer.join();

  EXPECT_EQ(s.GroupCommits(), 2u);
  for (std::size_t i = 0; i < kWriters; ++i) {
    if (i == 2) {
      ASSERT_FALSE(results[i]);
      EXPECT_EQ(results[i].error().code(), ErrorCode::kConflict);
    } else if (i == 4) {
      ASSERT_FALSE(results[i]);
      EXPECT_EQ(results[i].error().code(), ErrorCode::kIo);
      EXPECT_NE(results[i].error().message().find("w4 broke"), std::string::npos);
    } else {
      EXPECT_TRUE(results[i]) << i << ": " << results[i].error().message();
    }
  }
  auto ids = AuditedIds(s);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<std::string>{"first", "w0", "w1", "w3", "w5"}));
  const AuditVerification verified = Verify(s);
  EXPECT_TRUE(verified.intact) << verified.reason;
  EXPECT_EQ(verified.count, 5);
}

TEST(StoreGroupCommitTest, TheChainHeadFollowsOnlyTheKeptEntriesOfAGroup) {
  // Given one group whose writers append several entries each, the last of
  // them appending and then refusing, the chain should hold the kept entries
  // in order, and its head (written once, before the COMMIT) should be the
  // last kept entry; a later group should chain on from it.
  TempDir dir;
  auto store = Store::Create(TestStore(dir / "c.db"));
  ASSERT_TRUE(store);
  Store& s = **store;
  std::atomic<bool> committing = false;
  std::thread first([&] {
    EXPECT_TRUE(s.Write(kOrigin, [&](Transaction& tx) {
      committing = true;
      EXPECT_TRUE(WaitForQueued(s, 4));
      return AuditOne(tx, "first");
    }));
  });
  while (!committing) std::this_thread::yield();
  std::vector<std::optional<Result<void>>> results(3);
  std::atomic<int> answered = 0;
  for (int w = 0; w < 3; ++w) {
    s.WriteAsync(
        kOrigin,
        [w](Transaction& tx) -> Result<void> {
          for (int i = 0; i < 3; ++i) {
            if (auto ok = AuditOne(tx, fmt::format("g{}-{}", w, i)); !ok) return ok;
          }
          if (w == 2) return Fail(ErrorCode::kConflict, "the last one changed its mind");
          return {};
        },
        [&, w](Result<void> result) {
          results[w] = std::move(result);
          ++answered;
        });
  }
  first.join();
  while (answered < 3) std::this_thread::yield();
  EXPECT_EQ(s.GroupCommits(), 2u);
  EXPECT_TRUE(*results[0] && *results[1]);
  EXPECT_FALSE(*results[2]);
  ASSERT_TRUE(s.Write(kOrigin, [](Transaction& tx) { return AuditOne(tx, "later"); }));
  EXPECT_EQ(AuditedIds(s), (std::vector<std::string>{"first", "g0-0", "g0-1", "g0-2", "g1-0",
                                                     "g1-1", "g1-2", "later"}));
  const AuditVerification verified = Verify(s);
  EXPECT_TRUE(verified.intact) << verified.reason;
  EXPECT_EQ(verified.count, 8);
}

TEST(StoreGroupCommitTest, AuditAllChainsAsAuditDoesAndAnUndoneWriterLeavesNoLink) {
  // Given entries appended many at once (the very first of the chain among
  // them), one at a time, and many at once by a writer that then refuses,
  // the chain should hold the kept ones in order, each naming its own
  // origin, and verify whole.
  TempDir dir;
  auto store = Store::Create(TestStore(dir / "c.db"));
  ASSERT_TRUE(store);
  Store& s = **store;
  auto many = [](std::vector<std::string> ids) {
    std::vector<std::pair<AuditOrigin, AuditEvent>> items;
    for (const std::string& id : ids) {
      items.emplace_back(AuditOrigin{"actor-" + id, "agent", "req-" + id, "local"},
                         AuditEvent("test.write", "test", id));
    }
    return items;
  };
  ASSERT_TRUE(s.Write(kOrigin, [&](Transaction& tx) -> Result<void> {
    EXPECT_EQ(tx.AuditAll(many({"a1", "a2", "a3"})).back().seq, 3);
    return AuditOne(tx, "one");
  }));
  std::promise<Result<void>> undone;
  s.WriteAsync(
      kOrigin,
      [&](Transaction& tx) -> Result<void> {
        tx.AuditAll(many({"x1", "x2"}));
        return Fail(ErrorCode::kConflict, "changed its mind");
      },
      [&](Result<void> result) { undone.set_value(std::move(result)); });
  ASSERT_TRUE(s.Write(kOrigin, [&](Transaction& tx) -> Result<void> {
    tx.AuditAll(many({"b1", "b2"}));
    return {};
  }));
  EXPECT_FALSE(undone.get_future().get());
  EXPECT_EQ(AuditedIds(s), (std::vector<std::string>{"a1", "a2", "a3", "one", "b1", "b2"}));
  auto actors = s.Read([](soci::session& sql) -> Result<std::vector<std::string>> {
    std::vector<std::string> out;
    soci::rowset<std::string> rows =
        (sql.prepare << "SELECT actor FROM audit_log WHERE object_id = 'b2'");
    for (const auto& actor : rows) out.push_back(actor);
    return out;
  });
  EXPECT_EQ(actors.value_or(std::vector<std::string>{}), std::vector<std::string>{"actor-b2"});
  const AuditVerification verified = Verify(s);
  EXPECT_TRUE(verified.intact) << verified.reason;
  EXPECT_EQ(verified.count, 6);
}

// Given the committer busy and many items submitted to a batcher meanwhile,
// one write should take them all and answer each with its own answer; a
// refused item loses only itself; once the store is closed an item is
// answered kUnavailable at once.
TEST(WriteBatcherTest, ItemsSubmittedWhileTheCommitterIsBusyAreWrittenTogether) {
  TempDir dir;
  auto store = Store::Create(TestStore(dir / "c.db"));
  ASSERT_TRUE(store);
  Store& s = **store;
  std::atomic<int> works = 0;
  auto batcher = std::make_shared<WriteBatcher<int, int>>(
      s, kOrigin, [&](Transaction& tx, std::span<const int> items) {
        ++works;
        std::vector<Result<int>> answers;
        for (int item : items) {
          if (item % 7 == 0) {
            answers.push_back(
                Fail(ErrorCode::kInvalidArgument, fmt::format("{} is refused", item)));
          } else {
            AuditOne(tx, fmt::format("i{}", item));
            answers.push_back(item * 10);
          }
        }
        return answers;
      });
  std::atomic<bool> committing = false;
  std::thread first([&] {
    EXPECT_TRUE(s.Write(kOrigin, [&](Transaction& tx) {
      committing = true;
      EXPECT_TRUE(WaitForQueued(s, 2));  // this one and the batch's write
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      return AuditOne(tx, "first");
    }));
  });
  while (!committing) std::this_thread::yield();
  constexpr int kItems = 100;
  std::mutex mutex;
  std::map<int, Result<int>> answers;
  std::vector<std::thread> submitters;
  for (int t = 0; t < 4; ++t) {
    submitters.emplace_back([&, t] {
      for (int i = t; i < kItems; i += 4) {
        batcher->Submit(i, [&, i](Result<int> answer) {
          std::lock_guard lock(mutex);
          EXPECT_TRUE(answers.emplace(i, std::move(answer)).second) << i << " answered twice";
        });
      }
    });
  }
  for (auto& submitter : submitters) submitter.join();
  first.join();
  // Each item is answered once the batch's write committed.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::unique_lock lock(mutex);
  while (answers.size() < std::size_t{kItems} && std::chrono::steady_clock::now() < deadline) {
    lock.unlock();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    lock.lock();
  }
  ASSERT_EQ(answers.size(), std::size_t{kItems});
  EXPECT_EQ(works.load(), 1);
  for (const auto& [item, answer] : answers) {
    if (item % 7 == 0) {
      ASSERT_FALSE(answer);
      EXPECT_EQ(answer.error().message(), fmt::format("{} is refused", item));
    } else {
      ASSERT_TRUE(answer) << answer.error().message();
      EXPECT_EQ(*answer, item * 10);
    }
  }
  lock.unlock();
  EXPECT_EQ(AuditedIds(s).size(), std::size_t{1 + kItems - 15});  // 0, 7, ..., 98 refused
  s.Close();
  std::optional<Result<int>> late;
  batcher->Submit(1, [&](Result<int> answer) { late = std::move(answer); });
  ASSERT_TRUE(late);
  ASSERT_FALSE(*late);
  EXPECT_EQ(late->error().code(), ErrorCode::kUnavailable);
}

TEST(StoreGroupCommitTest, AWriterIsAnsweredAfterItsWorkIsCommitted) {
  // Given a write that returned, a second connection to the database (as
  // after a crash and reopen) should see it.
  TempDir dir;
  const auto path = TestStore(dir / "c.db");
  auto store = Store::Create(path);
  ASSERT_TRUE(store);
  ASSERT_TRUE((*store)->Write(kOrigin, [](Transaction& tx) { return AuditOne(tx, "durable"); }));
  EXPECT_EQ(CommittedEntries(path, "durable"), 1);
}

TEST(StoreGroupCommitTest, AnAsyncWriteIsAnsweredOnlyAfterItsGroupCommitted) {
  // Given async writes queued behind a commit in progress (from this one
  // thread, which WriteAsync does not hold), they should commit as one group;
  // each should be answered once its work is visible to another connection,
  // and a refusing one with its own error and none of its work.
  TempDir dir;
  const auto path = TestStore(dir / "c.db");
  auto store = Store::Create(path);
  ASSERT_TRUE(store);
  Store& s = **store;
  constexpr int kWrites = 20;
  std::atomic<bool> committing = false;
  std::thread first([&] {
    EXPECT_TRUE(s.Write(kOrigin, [&](Transaction& tx) {
      committing = true;
      EXPECT_TRUE(WaitForQueued(s, 1 + kWrites));
      return AuditOne(tx, "first");
    }));
  });
  while (!committing) std::this_thread::yield();
  std::mutex mutex;
  std::condition_variable answered;
  std::vector<std::optional<Result<std::string>>> results(kWrites);
  std::vector<int> visible(kWrites, -1);
  for (int i = 0; i < kWrites; ++i) {
    const std::string id = "a" + std::to_string(i);
    s.WriteAsync(
        kOrigin,
        [id, i](Transaction& tx) -> Result<std::string> {
          if (auto ok = AuditOne(tx, id); !ok) return std::unexpected(ok.error());
          if (i == 7) return Fail(ErrorCode::kConflict, "a7 changed its mind");
          return id;
        },
        [&, id, i](Result<std::string> result) {
          const int n = CommittedEntries(path, id);
          std::lock_guard lock(mutex);
          visible[i] = n;
          results[i] = std::move(result);
          answered.notify_all();
        });
  }
  {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(answered.wait_for(lock, std::chrono::seconds(30), [&] {
      return std::all_of(results.begin(), results.end(), [](const auto& r) { return r; });
    }));
  }
  first.join();
  EXPECT_EQ(s.GroupCommits(), 2u);
  for (int i = 0; i < kWrites; ++i) {
    if (i == 7) {
      ASSERT_FALSE(*results[i]);
      EXPECT_EQ(results[i]->error().code(), ErrorCode::kConflict);
      EXPECT_EQ(visible[i], 0);
    } else {
      ASSERT_TRUE(*results[i]) << results[i]->error().message();
      EXPECT_EQ(**results[i], "a" + std::to_string(i));
      EXPECT_EQ(visible[i], 1) << i;
    }
  }
  const AuditVerification verified = Verify(s);
  EXPECT_TRUE(verified.intact) << verified.reason;
  EXPECT_EQ(verified.count, kWrites);  // "first" and 19 of the 20
}

TEST(StoreGroupCommitTest, AWriteQueuedAheadRunsBeforeTheWritesWaitingButAfterTheGroupCommitting) {
  // Given a group committing and writes queued behind it, writes queued
  // ahead run first in the next group, in the order they were queued ahead.
  TempDir dir;
  auto store = Store::Create(TestStore(dir / "c.db"));
  ASSERT_TRUE(store);
  Store& s = **store;
  std::mutex mutex;
  std::vector<std::string> order;
  std::atomic<bool> committing = false;
  std::thread first([&] {
    EXPECT_TRUE(s.Write(kOrigin, [&](Transaction& tx) {
      committing = true;
      EXPECT_TRUE(WaitForQueued(s, 6));
      {
        std::lock_guard lock(mutex);
        order.push_back("first");
      }
      return AuditOne(tx, "first");
    }));
  });
  while (!committing) std::this_thread::yield();
  std::atomic<int> answered = 0;
  for (const std::string id : {"w1", "ahead1", "w2", "ahead2", "w3"}) {
    s.WriteAsync(
        kOrigin,
        [&, id](Transaction& tx) -> Result<void> {
          {
            std::lock_guard lock(mutex);
            order.push_back(id);
          }
          return AuditOne(tx, id);
        },
        [&](Result<void> done) {
          EXPECT_TRUE(done);
          ++answered;
        },
        /*ahead=*/id.starts_with("ahead"));
  }
  first.join();
  for (int i = 0; i < 3000 && answered < 5; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(answered, 5);
  EXPECT_EQ(order, (std::vector<std::string>{"first", "ahead1", "ahead2", "w1", "w2", "w3"}));
  const AuditVerification verified = Verify(s);
  EXPECT_TRUE(verified.intact) << verified.reason;
  EXPECT_EQ(verified.count, 6);
}

TEST(StoreGroupCommitTest, CloseCommitsQueuedAsyncWritesAndRefusesLaterOnes) {
  // Given async writes queued and the store closed at once, every one of them
  // should be committed and answered before Close returns; a write after
  // Close should be answered at once with kUnavailable.
  TempDir dir;
  const auto path = TestStore(dir / "c.db");
  auto store = Store::Create(path);
  ASSERT_TRUE(store);
  Store& s = **store;
  std::atomic<int> ok = 0;
  for (int i = 0; i < 50; ++i) {
    s.WriteAsync(
        kOrigin, [i](Transaction& tx) { return AuditOne(tx, "c" + std::to_string(i)); },
        [&](Result<void> result) {
          if (result) ++ok;
        });
  }
  s.Close();
  EXPECT_EQ(ok.load(), 50);
  std::optional<Result<void>> late;
  s.WriteAsync(
      kOrigin, [](Transaction& tx) { return AuditOne(tx, "late"); },
      [&](Result<void> result) { late = std::move(result); });
  ASSERT_TRUE(late);
  ASSERT_FALSE(*late);
  EXPECT_EQ(late->error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(CommittedEntries(path, ""), 50);
}

// A cached statement of the tests: counts its preparations.
struct CountedInsert {
  static inline int prepared = 0;
  explicit CountedInsert(soci::session& sql)
      : st((sql.prepare << "INSERT INTO notes (id, text) VALUES (:i, :t)", soci::use(id),
            soci::use(text))) {
    ++prepared;
  }
  long long id = 0;
  std::string text;
  soci::statement st;
};

// Given writes that run the same cached statement, one of them undone by a
// duplicate key, we should prepare it once, keep every other write, and
// leave the statement usable after the failure; a cached query read with
// Finish should not keep the WAL from being checkpointed whole.
TEST(StoreStatementCacheTest, AStatementIsPreparedOnceAndSurvivesAFailedWrite) {
  TempDir dir;
  auto store = Store::Create(TestStore(dir / "c.db"));
  ASSERT_TRUE(store);
  ASSERT_TRUE((*store)->Write(kOrigin, [](Transaction& tx) -> Result<void> {
    tx.sql() << "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)";
    return {};
  }));
  CountedInsert::prepared = 0;
  auto insert = [&](long long id) {
    return (*store)->Write(kOrigin, [&](Transaction& tx) -> Result<void> {
      CountedInsert& st = tx.Cached<CountedInsert>();
      st.id = id;
      st.text = "note " + std::to_string(id);
      st.st.execute(true);
      tx.Audit(AuditEvent("note.add", "note", std::to_string(id)));
      return {};
    });
  };
  EXPECT_TRUE(insert(1));
  EXPECT_TRUE(insert(2));
  auto duplicate = insert(2);
  ASSERT_FALSE(duplicate);
  EXPECT_EQ(duplicate.error().code(), ErrorCode::kIo);
  EXPECT_TRUE(insert(3));
  EXPECT_EQ(CountedInsert::prepared, 1);
  EXPECT_EQ(CountRows(**store, "notes"), 3);
  EXPECT_EQ(CountRows(**store, "audit_log"), 3);
  auto chain = (*store)->Read(
      [](soci::session& sql) -> Result<AuditVerification> { return VerifyAudit(sql); });
  ASSERT_TRUE(chain);
  EXPECT_TRUE(chain->intact);
  if ((*store)->backend() != StoreBackend::kSqlite) return;
  auto checkpoint = (*store)->Read([](soci::session& sql) -> Result<int> {
    int busy = -1, log = 0, done = 0;
    sql << "PRAGMA wal_checkpoint(TRUNCATE)", soci::into(busy), soci::into(log), soci::into(done);
    return busy;
  });
  ASSERT_TRUE(checkpoint) << checkpoint.error().message();
  EXPECT_EQ(*checkpoint, 0);  // nothing held a read snapshot
}

// Given a group commit whose callback is still running, a Read should
// complete meanwhile (it has its own session) and see what was committed
// before, not the group's work; and a write through Read is refused.
TEST(StoreReaderTest, AReadRunsWhileAWriteIsInProgress) {
  TempDir dir;
  auto store = Store::Create(TestStore(dir / "c.db"));
  ASSERT_TRUE(store);
  std::mutex mutex;
  std::condition_variable changed;
  bool writing = false, read_done = false;
  std::thread writer([&] {
    auto ok = (*store)->Write(kOrigin, [&](Transaction& tx) -> Result<void> {
      tx.Audit(AuditEvent("thing.change", "thing", "t1"));
      std::unique_lock lock(mutex);
      writing = true;
      changed.notify_all();
      // Hold the group open until the read is answered (bounded).
      changed.wait_for(lock, std::chrono::seconds(10), [&] { return read_done; });
      return {};
    });
    EXPECT_TRUE(ok);
  });
  {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(changed.wait_for(lock, std::chrono::seconds(10), [&] { return writing; }));
  }
  EXPECT_EQ(CountRows(**store, "audit_log"), 0);  // not committed yet, and not blocked
  {
    std::lock_guard lock(mutex);
    read_done = true;
  }
  changed.notify_all();
  writer.join();
  EXPECT_EQ(CountRows(**store, "audit_log"), 1);
  auto refused = (*store)->Read([](soci::session& sql) -> Result<void> {
    sql << "DELETE FROM audit_log";
    return {};
  });
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kIo);
  EXPECT_EQ(CountRows(**store, "audit_log"), 1);
}

TEST(StoreDialectTest, APostgresqlUrlWithAPasswordIsRefusedAndTheFileGivesIt) {
  TempDir dir;
  auto with_password =
      StoreTarget::Postgresql("postgresql://fabu:hunter2@db.example:5432/fabu", "", "");
  ASSERT_FALSE(with_password);
  EXPECT_EQ(with_password.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(with_password.error().message().find("password"), std::string::npos);
  EXPECT_EQ(with_password.error().message().find("hunter2"), std::string::npos)
      << with_password.error().message();

  testing::WriteFile(dir / "password", "s3cret'\\x\n");
  auto target = StoreTarget::Postgresql("postgresql://fabu@db.example:5432/fabu?sslmode=require",
                                        (dir / "password").string(), "verify-full");
  ASSERT_TRUE(target) << target.error().message();
  EXPECT_EQ(target->backend, StoreBackend::kPostgresql);
  EXPECT_NE(target->connect.find("password='s3cret\\'\\\\x'"), std::string::npos)
      << target->connect;
  EXPECT_NE(target->connect.find("sslmode='verify-full'"), std::string::npos) << target->connect;
  EXPECT_EQ(target->connect.find("sslmode='require'"), std::string::npos) << target->connect;
  EXPECT_NE(target->connect.find("host='db.example'"), std::string::npos) << target->connect;
  EXPECT_EQ(target->description.find("s3cret"), std::string::npos);

  auto missing =
      StoreTarget::Postgresql("postgresql://fabu@db/fabu", (dir / "nothing").string(), "");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("password_file"), std::string::npos);
}

TEST(StoreDialectTest, MigrationsTakeBigintForIntegerOnPostgresqlOnly) {
  const std::string statement = "CREATE TABLE t (a INTEGER PRIMARY KEY, integers TEXT, b INTEGER)";
  EXPECT_EQ(MigrationSql(StoreBackend::kSqlite, statement), statement);
  EXPECT_EQ(MigrationSql(StoreBackend::kPostgresql, statement),
            "CREATE TABLE t (a BIGINT PRIMARY KEY, integers TEXT, b BIGINT)");
}

TEST(StoreDialectTest, TwoStoresOnOnePostgresqlDatabaseWriteOneChain) {
  // Given two coordinators' stores on the same database (a `serve` and a
  // `fabu-coordinator trust add` beside it) writing at once, every entry
  // should be kept in one intact chain: their group commits take turns.
  if (!testing::TestStoreIsPostgresql()) {
    GTEST_SKIP() << "PostgreSQL only (FABU_TEST_STORE); SQLite's file lock does the same";
  }
  TempDir dir;
  const auto target = TestStore(dir / "c.db");
  auto first = Store::Create(target);
  ASSERT_TRUE(first) << first.error().message();
  auto second = Store::Open(target);
  ASSERT_TRUE(second) << second.error().message();
  std::vector<std::thread> writers;
  std::atomic<int> failed = 0;
  for (Store* store : {first->get(), second->get()}) {
    for (int t = 0; t < 2; ++t) {
      writers.emplace_back([store, &failed] {
        for (int i = 0; i < 25; ++i) {
          if (!store->Write(kOrigin, [](Transaction& tx) { return AuditOne(tx, "both"); })) {
            ++failed;
          }
        }
      });
    }
  }
  for (auto& writer : writers) writer.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(CommittedEntries(target, "both"), 100);
  const AuditVerification chain = Verify(**first);
  EXPECT_TRUE(chain.intact) << chain.reason;
  EXPECT_EQ(chain.count, 100);
}

}  // namespace
}  // namespace fabu::coordinator
