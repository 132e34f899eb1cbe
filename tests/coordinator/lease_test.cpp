// Leases (store/lease.hpp): one holder at a time, takeover after expiry, and
// the fence that stops a former holder's writes. Two Lease objects on one
// store stand for two coordinators on one database (on PostgreSQL when
// FABU_TEST_STORE is set); the lengths are short so expiry comes quickly.
#include "coordinator/store/lease.hpp"

#include <gtest/gtest.h>
#include <soci/soci.h>

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>

#include "tests/support/temp_dir.hpp"
#include "tests/support/test_store_target.hpp"

namespace fabu::coordinator {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;
using testing::TestStore;

const AuditOrigin kOrigin{"tester", "admin", "req-1", "127.0.0.1:1"};

// Writes one audit entry of type `type` (on the calling thread, so inside
// any FenceScope of the caller).
Result<void> WriteEntry(Store& store, const std::string& type) {
  return store.Write(kOrigin, [&](Transaction& tx) -> Result<void> {
    tx.Audit(AuditEvent(type, "probe", "1"));
    return {};
  });
}

int CountEntries(Store& store, const std::string& type) {
  auto n = store.Read([&](soci::session& sql) -> Result<int> {
    int count = 0;
    sql << "SELECT COUNT(*) FROM audit_log WHERE action = :a", soci::use(type), soci::into(count);
    return count;
  });
  return n.value_or(-1);
}

class LeaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = Store::Create(TestStore(dir_ / "c.db"));
    ASSERT_TRUE(opened) << opened.error().message();
    store_ = std::move(*opened);
  }
  TempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(LeaseTest, OneCoordinatorHoldsItAndTheOtherWaits) {
  Lease a(*store_, "engine", "a:1:x", 2000ms);
  Lease b(*store_, "engine", "b:2:y", 2000ms);
  auto took = a.Renew();
  ASSERT_TRUE(took) << took.error().message();
  EXPECT_TRUE(*took);
  EXPECT_TRUE(a.held());
  auto other = b.Renew();
  ASSERT_TRUE(other) << other.error().message();
  EXPECT_FALSE(*other);
  EXPECT_FALSE(b.held());
  EXPECT_FALSE(b.fence().has_value());
  // Renewing keeps the same token.
  ASSERT_TRUE(a.Renew().value_or(false));
  auto row = ReadLease(*store_, "engine");
  ASSERT_TRUE(row && *row);
  EXPECT_EQ((*row)->holder, "a:1:x");
  EXPECT_EQ((*row)->token, 1);
  EXPECT_FALSE((*row)->expired());
}

TEST_F(LeaseTest, AnotherTakesItOverOnceItExpiresAndTheFormerHolderCanNoLongerWriteAsHolder) {
  Lease a(*store_, "engine", "a:1:x", 1000ms);
  Lease b(*store_, "engine", "b:2:y", 1000ms);
  ASSERT_TRUE(a.Renew().value_or(false));
  // The fence taken while a held it, as a paused holder would still have.
  const std::optional<Fence> stale = a.fence();
  ASSERT_TRUE(stale);
  {
    FenceScope fenced(stale);
    auto written = WriteEntry(*store_, "test.holder-a");
    ASSERT_TRUE(written) << written.error().message();
  }
  // a stops renewing (killed, stopped): b takes over once the row expired.
  std::this_thread::sleep_for(1100ms);
  auto took = b.Renew();
  ASSERT_TRUE(took) << took.error().message();
  EXPECT_TRUE(*took);
  auto row = ReadLease(*store_, "engine");
  ASSERT_TRUE(row && *row);
  EXPECT_EQ((*row)->holder, "b:2:y");
  EXPECT_EQ((*row)->token, 2);

  // a wakes up and writes as the holder: refused, and nothing of it is kept.
  {
    FenceScope fenced(stale);
    auto written = WriteEntry(*store_, "test.stale-a");
    ASSERT_FALSE(written);
    EXPECT_EQ(written.error().code(), ErrorCode::kFailedPrecondition);
    EXPECT_NE(written.error().message().find("b:2:y"), std::string::npos)
        << written.error().message();
  }
  EXPECT_EQ(CountEntries(*store_, "test.stale-a"), 0);
  EXPECT_EQ(CountEntries(*store_, "test.holder-a"), 1);
  // Its next renewal tells it so; it does not take the lease back.
  auto renewed = a.Renew();
  ASSERT_TRUE(renewed) << renewed.error().message();
  EXPECT_FALSE(*renewed);
  EXPECT_FALSE(a.held());
  // b's own fenced writes go through; a write outside any fence is not checked.
  {
    FenceScope fenced(b.fence());
    EXPECT_TRUE(WriteEntry(*store_, "test.holder-b"));
  }
  EXPECT_TRUE(WriteEntry(*store_, "test.unfenced"));
  EXPECT_EQ(CountEntries(*store_, "test.holder-b"), 1);
}

TEST_F(LeaseTest, AFencedWriteQueuedWithoutWaitingIsCheckedToo) {
  Lease a(*store_, "engine", "a:1:x", 1000ms);
  Lease b(*store_, "engine", "b:2:y", 1000ms);
  ASSERT_TRUE(a.Renew().value_or(false));
  const std::optional<Fence> stale = a.fence();
  std::this_thread::sleep_for(1100ms);
  ASSERT_TRUE(b.Renew().value_or(false));
  std::promise<Result<void>> answer;
  {
    FenceScope fenced(stale);
    store_->WriteAsync(
        kOrigin,
        [](Transaction& tx) -> Result<void> {
          tx.Audit(AuditEvent("test.async-a", "probe", "1"));
          return {};
        },
        [&answer](Result<void> done) { answer.set_value(std::move(done)); });
  }
  const Result<void> done = answer.get_future().get();
  ASSERT_FALSE(done);
  EXPECT_EQ(done.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(CountEntries(*store_, "test.async-a"), 0);
}

// Given a backlog of slow writes several groups long (agents' events on a
// busy PostgreSQL), a renewal does not wait behind it: it is queued ahead,
// behind the group committing only, so the holder does not lose its own
// lease to a flood of events.
TEST_F(LeaseTest, ARenewalDoesNotWaitBehindABacklogOfWrites) {
  Lease a(*store_, "engine", "a:1:x", 60000ms);
  ASSERT_TRUE(a.Renew().value_or(false));
  constexpr int kBacklog = 4 * static_cast<int>(Store::kMaxGroup);
  std::atomic<int> finished{0};
  std::promise<void> all;
  for (int i = 0; i < kBacklog; ++i) {
    store_->WriteAsync(
        kOrigin,
        [](Transaction&) -> Result<void> {
          std::this_thread::sleep_for(500us);
          return {};
        },
        [&](Result<void>) {
          if (++finished == kBacklog) all.set_value();
        });
  }
  auto renewed = a.Renew();
  const int finished_before = finished.load();
  all.get_future().wait();
  ASSERT_TRUE(renewed) << renewed.error().message();
  EXPECT_TRUE(*renewed);
  // At most the group committing and the rest of the renewal's own group.
  EXPECT_LT(finished_before, 3 * static_cast<int>(Store::kMaxGroup))
      << "the renewal waited for " << finished_before << " of " << kBacklog << " writes";
}

TEST_F(LeaseTest, AGivenUpLeaseIsTakenAtOnce) {
  Lease a(*store_, "engine", "a:1:x", 60000ms);
  Lease b(*store_, "engine", "b:2:y", 60000ms);
  ASSERT_TRUE(a.Renew().value_or(false));
  ASSERT_FALSE(b.Renew().value_or(true));
  a.Release();
  EXPECT_FALSE(a.held());
  auto took = b.Renew();
  ASSERT_TRUE(took) << took.error().message();
  EXPECT_TRUE(*took);
  EXPECT_EQ(b.fence()->token, 2);
}

TEST_F(LeaseTest, AFenceOfAnotherLeaseNameOrTokenIsRefused) {
  Lease a(*store_, "engine", "a:1:x", 60000ms);
  ASSERT_TRUE(a.Renew().value_or(false));
  {
    FenceScope fenced(Fence{"engine", "a:1:x", 7});
    EXPECT_FALSE(WriteEntry(*store_, "test.wrong-token"));
  }
  {
    FenceScope fenced(Fence{"other", "a:1:x", 1});
    EXPECT_FALSE(WriteEntry(*store_, "test.no-such-lease"));
  }
  {
    // The innermost scope wins: a null fence lifts the marking.
    FenceScope outer(Fence{"engine", "a:1:x", 7});
    FenceScope inner(std::nullopt);
    EXPECT_TRUE(WriteEntry(*store_, "test.lifted"));
  }
  EXPECT_EQ(CountEntries(*store_, "test.wrong-token"), 0);
  EXPECT_EQ(CountEntries(*store_, "test.no-such-lease"), 0);
  EXPECT_EQ(CountEntries(*store_, "test.lifted"), 1);
}

}  // namespace
}  // namespace fabu::coordinator
