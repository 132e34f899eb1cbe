// Hosts marked seen by their agents' polls, written together
// (hosts/seen_marks.hpp), in a real store.
#include "coordinator/hosts/seen_marks.hpp"

#include <gtest/gtest.h>
#include <soci/soci.h>

#include <map>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/temp_dir.hpp"
#include "tests/support/test_store_target.hpp"

namespace fabu::coordinator {
namespace {

class SeenMarksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    target_ = fabu::testing::TestStore(dir_.path() / "coordinator.db");
    auto store = Store::Create(target_);
    ASSERT_TRUE(store) << store.error().message();
    store_ = std::move(*store);
    auto made = store_->Write(origin_, [&](Transaction& tx) -> Result<void> {
      for (int i = 1; i <= 3; ++i) {
        std::string name = "web-" + std::to_string(i), credential = "cred-" + name;
        tx.sql() << "INSERT INTO hosts (name, credential_sha256, labels, inventory, "
                    "agent_version, enrolled, last_seen, removed, removed_at, removed_by) VALUES "
                    "(:n, :c, '{}', '{}', '', '', 0, 0, '', '')",
            soci::use(name), soci::use(credential);
      }
      return {};
    });
    ASSERT_TRUE(made) << made.error().message();
  }

  // Each host's last_seen, by name.
  std::map<std::string, long long> LastSeen() {
    auto read = store_->Read([](soci::session& sql) -> Result<std::map<std::string, long long>> {
      std::map<std::string, long long> seen;
      soci::rowset<soci::row> rows = (sql.prepare << "SELECT name, last_seen FROM hosts");
      for (const soci::row& row : rows) {
        seen[row.get<std::string>(0)] = row.get<long long>(1);
      }
      return seen;
    });
    EXPECT_TRUE(read) << read.error().message();
    return read ? *read : std::map<std::string, long long>{};
  }

  std::size_t Write(SeenMarks& marks, protocol::UnixSeconds now) {
    auto written = marks.Write(*store_, origin_, now);
    EXPECT_TRUE(written) << written.error().message();
    return written ? *written : 0;
  }

  fabu::testing::TempDir dir_;
  StoreTarget target_ = StoreTarget::Sqlite("");
  std::unique_ptr<Store> store_;
  const AuditOrigin origin_{"test", "system", "", "local"};
};

TEST_F(SeenMarksTest, ManyPollsOfManyHostsAreOneWriteAndAHostIsNotedOncePerInterval) {
  SeenMarks marks(30);
  // Polls from several threads at once, some hosts more than once.
  std::vector<std::thread> polls;
  for (int t = 0; t < 4; ++t) {
    polls.emplace_back([&marks, t] {
      marks.Note("web-1", 1000);
      marks.Note(t % 2 == 0 ? "web-2" : "web-1", 1000);
    });
  }
  for (std::thread& poll : polls) poll.join();
  EXPECT_EQ(Write(marks, 1001), 2u);
  EXPECT_EQ(LastSeen(),
            (std::map<std::string, long long>{{"web-1", 1001}, {"web-2", 1001}, {"web-3", 0}}));
  EXPECT_EQ(Write(marks, 1002), 0u) << "nothing was noted since the last write";

  // Within the interval a host is not noted again; after it, it is.
  marks.Note("web-1", 1029);
  marks.Note("web-3", 1029);
  EXPECT_EQ(Write(marks, 1029), 1u);
  marks.Note("web-1", 1030);
  marks.Note("web-3", 1030);
  EXPECT_EQ(Write(marks, 1031), 1u);
  EXPECT_EQ(LastSeen(),
            (std::map<std::string, long long>{{"web-1", 1031}, {"web-2", 1001}, {"web-3", 1029}}));
}

TEST_F(SeenMarksTest, AFailedWriteLetsTheNextPollNoteItsHostsAgain) {
  SeenMarks marks(30);
  marks.Note("web-1", 1000);
  store_->Close();
  auto failed = marks.Write(*store_, origin_, 1000);
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code(), ErrorCode::kUnavailable) << failed.error().message();

  // The same store reopened: the next poll, within the interval, is noted.
  auto reopened = Store::Open(target_);
  ASSERT_TRUE(reopened) << reopened.error().message();
  store_ = std::move(*reopened);
  marks.Note("web-1", 1005);
  EXPECT_EQ(Write(marks, 1005), 1u);
  EXPECT_EQ(LastSeen()["web-1"], 1005);
}

}  // namespace
}  // namespace fabu::coordinator
