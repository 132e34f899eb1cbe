// Signed checkpoints of the audit chain (coordinator/audit/checkpoints.hpp):
// signed and checked with the checkpoint key, appended to a file and read
// back, an altered line refused.
#include <gtest/gtest.h>

#include "coordinator/audit/audit_log.hpp"
#include "coordinator/audit/checkpoints.hpp"
#include "tests/support/temp_dir.hpp"

namespace fabu::coordinator {
namespace {

using testing::TempDir;

AuditCheckpoint Example() {
  AuditCheckpoint c;
  c.seq = 7;
  c.hash = std::string(64, 'a');
  c.users = nlohmann::json{{"ann", {{"role", "viewer"}, {"disabled", false}, {"token", "ab"}}}};
  c.users_sha256 = UsersRosterDigest(*c.users);
  c.time = "2026-03-01T10:00:00Z";
  c.reason = "periodic";
  return c;
}

TEST(AuditCheckpointsTest, ASignedCheckpointVerifiesAndAnAlteredOneDoesNot) {
  auto key = packaging::SigningKey::Generate();
  ASSERT_TRUE(key);
  AuditCheckpoint c = Example();
  ASSERT_TRUE(SignCheckpoint(c, *key));
  EXPECT_EQ(c.key_id, key->public_key().key_id());
  EXPECT_TRUE(VerifyCheckpoint(c, key->public_key()));

  AuditCheckpoint moved = c;
  moved.seq = 6;
  EXPECT_FALSE(VerifyCheckpoint(moved, key->public_key()));
  AuditCheckpoint other_users = c;
  (*other_users.users)["ann"]["role"] = "admin";
  EXPECT_FALSE(VerifyCheckpoint(other_users, key->public_key()));

  auto other = packaging::SigningKey::Generate();
  ASSERT_TRUE(other);
  auto wrong_key = VerifyCheckpoint(c, other->public_key());
  ASSERT_FALSE(wrong_key);
  EXPECT_NE(wrong_key.error().message().find("signed by key"), std::string::npos);
}

TEST(AuditCheckpointsTest, TheFileIsAppendedAndReadBackLineByLine) {
  TempDir dir;
  bool created = false;
  auto key = LoadOrCreateCheckpointKey(dir / "audit-checkpoint", created);
  ASSERT_TRUE(key) << key.error().message();
  EXPECT_TRUE(created);
  auto again = LoadOrCreateCheckpointKey(dir / "audit-checkpoint", created);
  ASSERT_TRUE(again);
  EXPECT_FALSE(created);
  EXPECT_EQ(again->public_key().key_id(), key->public_key().key_id());

  const auto file = dir / "audit-checkpoints.jsonl";
  AuditCheckpoint first = Example();
  ASSERT_TRUE(SignCheckpoint(first, *key));
  AuditCheckpoint second = Example();
  second.seq = 9;
  second.users.reset();
  ASSERT_TRUE(SignCheckpoint(second, *key));
  ASSERT_TRUE(AppendCheckpoint(file, first));
  ASSERT_TRUE(AppendCheckpoint(file, second));
  EXPECT_EQ(std::filesystem::status(file).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);

  auto lines = ReadCheckpoints(file);
  ASSERT_TRUE(lines) << lines.error().message();
  ASSERT_EQ(lines->size(), 2u);
  EXPECT_EQ((*lines)[1].line, 2);
  EXPECT_EQ((*lines)[1].checkpoint.seq, 9);
  EXPECT_TRUE(VerifyCheckpoint((*lines)[0].checkpoint, key->public_key()));
  EXPECT_TRUE(VerifyCheckpoint((*lines)[1].checkpoint, key->public_key()));

  // A last line cut short by a crash is skipped; a bad line before it is not.
  testing::WriteFile(file, testing::ReadFile(file) + "{\"seq\": 1");
  lines = ReadCheckpoints(file);
  ASSERT_TRUE(lines) << lines.error().message();
  EXPECT_EQ(lines->size(), 2u);
  testing::WriteFile(file, "garbage\n" + testing::ReadFile(file));
  lines = ReadCheckpoints(file);
  ASSERT_FALSE(lines);
  EXPECT_NE(lines.error().message().find("line 1"), std::string::npos);
}

}  // namespace
}  // namespace fabu::coordinator
