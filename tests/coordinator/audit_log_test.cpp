// The audit trail's hash chain: intact chains verify; any direct change,
// deletion or truncation is found and named by its seq.
#include "coordinator/audit/audit_log.hpp"

#include <gtest/gtest.h>
#include <soci/soci.h>

#include <cstdint>
#include <vector>

#include "coordinator/common/digest.hpp"
#include "coordinator/store/store.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_store_target.hpp"

namespace fabu::coordinator {
namespace {

using testing::TempDir;
using testing::TestStore;

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = Store::Create(TestStore(dir_ / "c.db"));
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
  AuditVerification VerifyFrom(std::int64_t seq, const std::string& hash) {
    return store_
        ->Read([&](soci::session& sql) -> Result<AuditVerification> {
          return VerifyAuditFrom(sql, seq, hash);
        })
        .value();
  }
  std::string AuditHashOf(std::int64_t seq) {
    return store_
        ->Read([&](soci::session& sql) -> Result<std::string> {
          return AuditHashAt(sql, seq).value_or("");
        })
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

TEST_F(AuditLogTest, ADigestGivenWithoutTheObjectIsStoredAsGiven) {
  // Given an event that carries an object's json and a digest, we should
  // digest the json; given only a digest, we should store it.
  const std::string given = Sha256Hex("computed by the caller");
  auto entries = store_->Write(origin_, [&](Transaction& tx) -> Result<std::vector<AuditEntry>> {
    AuditEvent both("thing.change", "thing", "t1");
    both.before = nlohmann::json{{"n", 5}};
    both.after = nlohmann::json{{"n", 6}};
    both.before_sha256 = given;
    both.after_sha256 = given;
    AuditEvent digests_only("thing.change", "thing", "t1");
    digests_only.before_sha256 = given;
    digests_only.after_sha256 = given;
    return std::vector<AuditEntry>{tx.Audit(both), tx.Audit(digests_only)};
  });
  ASSERT_TRUE(entries) << entries.error().message();
  EXPECT_EQ((*entries)[0].before_sha256, Sha256Hex(R"({"n":5})"));
  EXPECT_EQ((*entries)[0].after_sha256, Sha256Hex(R"({"n":6})"));
  EXPECT_EQ((*entries)[1].before_sha256, given);
  EXPECT_EQ((*entries)[1].after_sha256, given);
  EXPECT_TRUE(Verify().intact);
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

// The running daemon's check (AuditWatch) starts where its last one ended.
TEST_F(AuditLogTest, ACheckFromAVerifiedPointReadsOnlyWhatCameAfter) {
  const AuditVerification whole = Verify();
  ASSERT_TRUE(whole.intact);
  EXPECT_EQ(whole.last_seq, 5);
  auto ok = store_->Write(origin_, [](Transaction& tx) -> Result<void> {
    tx.Audit(AuditEvent("thing.delete", "thing", "t1"));
    return {};
  });
  ASSERT_TRUE(ok);
  const AuditVerification next = VerifyFrom(whole.last_seq, whole.last_hash);
  EXPECT_TRUE(next.intact) << next.reason;
  EXPECT_EQ(next.count, 1);
  EXPECT_EQ(next.last_seq, 6);
  EXPECT_EQ(VerifyFrom(next.last_seq, next.last_hash).count, 0);
}

// A long chain is checked in parts: each stops at its limit without the
// head, and the last reaches it.
TEST_F(AuditLogTest, ACheckInPartsWalksTheChainAndReachesTheHeadOnlyAtItsEnd) {
  std::int64_t seq = 0;
  std::string hash(kGenesisHash);
  std::vector<std::int64_t> parts;
  for (int i = 0; i < 10; ++i) {
    const AuditVerification part = store_
                                       ->Read([&](soci::session& sql) -> Result<AuditVerification> {
                                         return VerifyAuditFrom(sql, seq, hash, 2);
                                       })
                                       .value();
    ASSERT_TRUE(part.intact) << part.reason;
    parts.push_back(part.count);
    seq = part.last_seq;
    hash = part.last_hash;
    if (part.reached_head) break;
  }
  EXPECT_EQ(parts, (std::vector<std::int64_t>{2, 2, 1}));
  EXPECT_EQ(seq, 5);
}

TEST_F(AuditLogTest, ACheckFromAVerifiedPointFindsThatPointRewritten) {
  const AuditVerification whole = Verify();
  // Someone with the file rewrites the last entry checked, rehashing it and
  // the head so that the tail alone looks whole.
  auto entries = store_->Read(
      [](soci::session& sql) -> Result<std::vector<AuditEntry>> { return ListAudit(sql, {}); });
  ASSERT_TRUE(entries);
  AuditEntry forged = entries->back();
  ASSERT_EQ(forged.seq, 5);
  forged.actor = "mallory";
  const std::string hash = forged.ComputeHash();
  Exec("UPDATE audit_log SET actor = 'mallory', hash = '" + hash + "' WHERE seq = 5");
  Exec("UPDATE audit_head SET hash = '" + hash + "'");
  const AuditVerification v = VerifyFrom(whole.last_seq, whole.last_hash);
  EXPECT_FALSE(v.intact);
  EXPECT_EQ(v.broken_seq, 5);
  EXPECT_NE(v.reason.find("rewritten"), std::string::npos) << v.reason;
}

TEST_F(AuditLogTest, ACheckFromAVerifiedPointFindsTheTailCut) {
  const AuditVerification whole = Verify();
  Exec("DELETE FROM audit_log WHERE seq >= 4");
  const AuditVerification v = VerifyFrom(3, AuditHashOf(3));
  EXPECT_FALSE(v.intact);
  EXPECT_NE(v.reason.find("removed"), std::string::npos) << v.reason;
  EXPECT_FALSE(VerifyFrom(whole.last_seq, whole.last_hash).intact);
}

// Entries hashed by the code that wrote the chains in use: their hashes are
// fixed here so that a faster canonical writer can never change them (old
// chains must keep verifying).
AuditEntry TypicalEntry() {
  AuditEntry e;
  e.seq = 17910;
  e.time = "2026-03-01T12:00:00.123Z";
  e.actor = "fabu-coordinator";
  e.role = "system";
  e.action = "deployment.create";
  e.object_type = "deployment";
  e.object_id = "R-12-1-web-0001.prod.example.net";
  e.release_id = "R-12";
  e.request_id = "sweep";
  e.source = "local";
  e.after_sha256 = Sha256Hex("after");
  e.detail = "{}";
  e.prev_hash = Sha256Hex("previous");
  return e;
}

// Every string field carries bytes a JSON writer must escape or pass on:
// non-ASCII UTF-8 (2 to 4 bytes), quotes, backslashes, control characters,
// and DEL (0x7F, which JSON leaves as is).
AuditEntry HostileEntry() {
  AuditEntry e;
  e.seq = INT64_MAX;
  e.time = "2026-12-31T23:59:59.999Z";
  e.actor = "Zo\xc3\xab \"the admin\" \xc3\x9cnal";
  e.role = "ops\\lead";
  e.action = "user.update\n";
  e.object_type = "user\t\r\b\f";
  e.object_id = std::string(
      "id\x01\x1f\x00"
      "end",
      8);
  e.release_id = "R-\x7f";
  e.request_id = "req-\xe2\x82\xac-\xf0\x9f\x98\x80";
  e.source = "[::1]:443/\"\\";
  e.before_sha256 = Sha256Hex("before");
  e.detail = R"({"comment":"a \"quoted\" word\nand \u00e9"})";
  e.prev_hash = std::string(kGenesisHash);
  return e;
}

TEST(AuditHashTest, HashesMatchThoseOfTheChainsAlreadyWritten) {
  EXPECT_EQ(TypicalEntry().ComputeHash(),
            "660655a365ed0e987169bf1cd887b8e1344ee8111b80df65e1b467e9b18375b6");
  EXPECT_EQ(HostileEntry().ComputeHash(),
            "3480be14e14ac542104e73ebbe6111e9aded00319885bdf675e1a9dc2bff50c7");
  EXPECT_EQ(AuditEntry{}.ComputeHash(),
            "135019057ddd259a5c9a4b4e18ec67af2f8fbbd2704f413d487dc7a959e3022c");
  AuditEntry negative = TypicalEntry();
  negative.seq = -3;
  EXPECT_EQ(negative.ComputeHash(),
            "a09dd082559c1e985f0eb1855fe14e2f2e5c6a9bc32423c46bed97b487f5ee8e");
}

TEST(AuditHashTest, CanonicalContentIsTheCompactJsonWithSortedKeys) {
  EXPECT_EQ(
      HostileEntry().CanonicalContent(),
      "{\"action\":\"user.update\\n\""
      ",\"actor\":\"Zo\xC3\xAB \\\"the admin\\\" \xC3\x9Cnal\""
      ",\"after_sha256\":\"\""
      ",\"before_sha256\":\"6db7d803e74f1ffa7d8f5adc0bf95b3e15bf4c8373fffadf546227cc6c6742cb\""
      ",\"detail\":\"{\\\"comment\\\":\\\"a \\\\\\\"quoted\\\\\\\" word\\\\nand \\\\u00e9\\\"}\""
      ",\"object_id\":\"id\\u0001\\u001f\\u0000end\""
      ",\"object_type\":\"user\\t\\r\\b\\f\""
      ",\"release_id\":\"R-\x7F\""
      ",\"request_id\":\"req-\xE2\x82\xAC-\xF0\x9F\x98\x80\""
      ",\"role\":\"ops\\\\lead\""
      ",\"seq\":9223372036854775807"
      ",\"source\":\"[::1]:443/\\\"\\\\\""
      ",\"time\":\"2026-12-31T23:59:59.999Z\"}");
}

TEST(AuditHashTest, CanonicalContentIsWhatToJsonShowsButTheLinks) {
  // Given any entry, the hashed text should be ToJson's fields (the detail
  // as its stored text) but prev_hash and hash: nothing shown goes unhashed.
  for (const AuditEntry& e : {TypicalEntry(), HostileEntry(), AuditEntry{}}) {
    nlohmann::json shown = e.ToJson();
    shown.erase("prev_hash");
    shown.erase("hash");
    shown["detail"] = e.detail;
    EXPECT_EQ(e.CanonicalContent(), shown.dump());
  }
}

TEST(AuditHashTest, InvalidUtf8CannotBeHashed) {
  // Given a field that is not UTF-8, we should refuse to hash it (as
  // nlohmann::json does) rather than hash something a reader cannot show.
  AuditEntry e = TypicalEntry();
  e.object_id = "web-\xff\xfe";
  EXPECT_THROW(e.ComputeHash(), nlohmann::json::type_error);
  e = TypicalEntry();
  e.detail = "{\"truncated\":\"\xe2\x82\"}";
  EXPECT_THROW(e.ComputeHash(), nlohmann::json::type_error);
}

}  // namespace
}  // namespace fabu::coordinator
