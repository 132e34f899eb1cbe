// The audit trail's hash chain: intact chains verify; any direct change,
// deletion or truncation is found and named by its seq.
#include "coordinator/audit/audit_log.hpp"

#include <gtest/gtest.h>
#include <soci/soci.h>

#include "coordinator/common/digest.hpp"
#include "coordinator/store/store.hpp"
#include "tests/support/temp_dir.hpp"

namespace fabu::coordinator {
namespace {

using testing::TempDir;

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = Store::Create(dir_ / "c.db");
    ASSERT_TRUE(store) << store.error().message();
    store_ = std::move(*store);
    for (int i = 1; i <= 5; ++i) {
      auto ok = store_->Write(origin_, [i](Transaction& tx) -> Result<void> {
        AuditEvent event("thing.change", "thing", "t" + std::to_string(i));
        event.release_id = i % 2 == 0 ? "R-1" : "";
        event.before = nlohmann::json{{"n", i - 1}};
        event.after = nlohmann::json{{"n", i}};
        tx.Audit(event);
        return {};
      });
      ASSERT_TRUE(ok) << ok.error().message();
    }
  }

  AuditVerification Verify() {
    return store_
        ->Read([](soci::session& sql) -> Result<AuditVerification> { return VerifyAudit(sql); })
        .value();
  }
  // Tampers with the store as someone with the file would (not audited).
  void Exec(const std::string& statement) {
    auto ok = store_->Write(origin_, [&](Transaction& tx) -> Result<void> {
      tx.sql() << statement;
      return {};
    });
    ASSERT_TRUE(ok) << ok.error().message();
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
  AuditOrigin origin_{"alice", "admin", "req-7", "127.0.0.1:5000"};
};

TEST_F(AuditLogTest, AnIntactChainVerifiesWithItsCount) {
  const AuditVerification v = Verify();
  EXPECT_TRUE(v.intact) << v.reason;
  EXPECT_EQ(v.count, 5);
  EXPECT_FALSE(v.broken_seq);
}

TEST_F(AuditLogTest, EntriesRecordOriginDigestsAndLinks) {
  auto entries = store_->Read(
      [](soci::session& sql) -> Result<std::vector<AuditEntry>> { return ListAudit(sql, {}); });
  ASSERT_TRUE(entries);
  ASSERT_EQ(entries->size(), 5u);
  const AuditEntry& first = entries->front();
  EXPECT_EQ(first.seq, 1);
  EXPECT_EQ(first.prev_hash, kGenesisHash);
  EXPECT_EQ(first.actor, "alice");
  EXPECT_EQ(first.role, "admin");
  EXPECT_EQ(first.request_id, "req-7");
  EXPECT_EQ(first.source, "127.0.0.1:5000");
  EXPECT_EQ(first.before_sha256, Sha256Hex(R"({"n":0})"));
  EXPECT_EQ(first.after_sha256, Sha256Hex(R"({"n":1})"));
  EXPECT_EQ(first.hash, Sha256Hex(first.prev_hash + first.CanonicalContent()));
  EXPECT_EQ((*entries)[1].prev_hash, first.hash);
}

TEST_F(AuditLogTest, ListFiltersByReleaseAndPages) {
  auto of_release = store_->Read([](soci::session& sql) -> Result<std::vector<AuditEntry>> {
    AuditFilter filter;
    filter.release_id = "R-1";
    return ListAudit(sql, filter);
  });
  ASSERT_TRUE(of_release);
  ASSERT_EQ(of_release->size(), 2u);
  EXPECT_EQ((*of_release)[0].seq, 2);
  EXPECT_EQ((*of_release)[1].seq, 4);
  auto page = store_->Read([](soci::session& sql) -> Result<std::vector<AuditEntry>> {
    AuditFilter filter;
    filter.after_seq = 2;
    filter.limit = 2;
    return ListAudit(sql, filter);
  });
  ASSERT_TRUE(page);
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[0].seq, 3);
}

TEST_F(AuditLogTest, AChangedRowIsNamed) {
  Exec("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3");
  const AuditVerification v = Verify();
  EXPECT_FALSE(v.intact);
  EXPECT_EQ(v.broken_seq, 3);
  EXPECT_EQ(v.count, 2);
  EXPECT_NE(v.reason.find("entry 3"), std::string::npos) << v.reason;
}

TEST_F(AuditLogTest, ARowRehashedAfterAChangeBreaksTheNextLink) {
  // Given an attacker who also recomputes the changed row's own hash, the
  // next entry's prev_hash should no longer match.
  auto entries = store_->Read(
      [](soci::session& sql) -> Result<std::vector<AuditEntry>> { return ListAudit(sql, {}); });
  ASSERT_TRUE(entries);
  AuditEntry forged = (*entries)[1];
  forged.actor = "mallory";
  Exec("UPDATE audit_log SET actor = 'mallory', hash = '" + forged.ComputeHash() +
       "' WHERE seq = 2");
  const AuditVerification v = Verify();
  EXPECT_FALSE(v.intact);
  EXPECT_EQ(v.broken_seq, 3);
}

TEST_F(AuditLogTest, ADeletedRowIsNamed) {
  Exec("DELETE FROM audit_log WHERE seq = 2");
  const AuditVerification v = Verify();
  EXPECT_FALSE(v.intact);
  EXPECT_EQ(v.broken_seq, 2);
  EXPECT_NE(v.reason.find("missing"), std::string::npos) << v.reason;
}

TEST_F(AuditLogTest, ATruncatedTailIsFound) {
  Exec("DELETE FROM audit_log WHERE seq = 5");
  const AuditVerification v = Verify();
  EXPECT_FALSE(v.intact);
  EXPECT_EQ(v.broken_seq, 5);
}

TEST_F(AuditLogTest, AppendingContinuesTheChainAfterVerify) {
  ASSERT_TRUE(Verify().intact);
  auto ok = store_->Write(origin_, [](Transaction& tx) -> Result<void> {
    tx.Audit(AuditEvent("thing.delete", "thing", "t1"));
    return {};
  });
  ASSERT_TRUE(ok);
  EXPECT_EQ(Verify().count, 6);
}

}  // namespace
}  // namespace fabu::coordinator
