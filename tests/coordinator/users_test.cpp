// Users, roles and bearer tokens.
#include "coordinator/auth/users.hpp"

#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "coordinator/auth/token_cache.hpp"
#include "coordinator/store/store.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_store_target.hpp"

namespace fabu::coordinator {
namespace {

using testing::TempDir;
using testing::TestStore;

TEST(TokenTest, TokensAre256RandomBitsInHex) {
  std::set<std::string> seen;
  for (int i = 0; i < 20; ++i) {
    auto token = NewToken();
    ASSERT_TRUE(token);
    EXPECT_EQ(token->size(), 64u);
    EXPECT_EQ(token->find_first_not_of("0123456789abcdef"), std::string::npos);
    seen.insert(*token);
  }
  EXPECT_EQ(seen.size(), 20u);
}

TEST(TokenTest, TheStoreKeepsTheSha256OfAToken) {
  // The FIPS 180-2 test vector for "abc".
  EXPECT_EQ(HashToken("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(RoleTest, NamesRoundTripAndUnknownRolesAreListed) {
  for (Role role :
       {Role::kAdmin, Role::kApprover, Role::kReleaseManager, Role::kTester, Role::kViewer}) {
    EXPECT_EQ(ParseRole(RoleName(role)).value(), role);
  }
  auto bad = ParseRole("owner");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("release_manager"), std::string::npos);
}

TEST(RoleTest, RequireRoleNamesTheRoleNeeded) {
  const Principal viewer{"vic", Role::kViewer, std::nullopt};
  const Role needed[] = {Role::kAdmin, Role::kReleaseManager};
  auto denied = RequireRole(viewer, needed, "uploading a package");
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_EQ(denied.error().message(),
            "uploading a package needs role admin or release_manager; user vic has role viewer");
  EXPECT_TRUE(RequireRole(Principal{"ann", Role::kAdmin, std::nullopt}, needed, "x"));
}

TEST(UserNameTest, RulesAreExplained) {
  EXPECT_TRUE(CheckUserName("wang.approver"));
  EXPECT_TRUE(CheckUserName("li.ops-head"));
  EXPECT_FALSE(CheckUserName(""));
  EXPECT_FALSE(CheckUserName(".hidden"));
  auto upper = CheckUserName("Wang");
  ASSERT_FALSE(upper);
  EXPECT_NE(upper.error().message().find("\"Wang\""), std::string::npos);
}

class UsersStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = Store::Create(TestStore(dir_ / "c.db"));
    ASSERT_TRUE(store);
    store_ = std::move(*store);
  }
  Result<Principal> Authenticate(const std::string& token, UnixSeconds now = kNow) {
    return store_->Read([&](soci::session& sql) { return AuthenticateToken(sql, token, now); });
  }
  Result<std::string> Add(const std::string& name, std::int64_t days) {
    return store_->Write(
        origin_, [&](Transaction& tx) { return CreateUser(tx, name, Role::kTester, days, kNow); });
  }
  Result<RotatedToken> Rotate(const std::string& name, std::int64_t days, UnixSeconds now) {
    return store_->Write(origin_,
                         [&](Transaction& tx) { return RotateToken(tx, name, days, now); });
  }

  static constexpr UnixSeconds kNow = 1'800'000'000;  // 2027-01-15
  static constexpr UnixSeconds kDay = 86400;

  TempDir dir_;
  std::unique_ptr<Store> store_;
  AuditOrigin origin_{"admin", "admin", "r", "local"};
};

TEST_F(UsersStoreTest, ATokenAuthenticatesItsUserUntilDisabled) {
  auto token = store_->Write(
      origin_, [](Transaction& tx) { return CreateUser(tx, "wang.approver", Role::kApprover); });
  ASSERT_TRUE(token) << token.error().message();
  auto who = Authenticate(*token);
  ASSERT_TRUE(who) << who.error().message();
  EXPECT_EQ(who->name, "wang.approver");
  EXPECT_EQ(who->role, Role::kApprover);

  auto unknown = Authenticate(std::string(64, 'a'));
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code(), ErrorCode::kUnauthenticated);
  EXPECT_FALSE(Authenticate(""));

  ASSERT_TRUE(
      store_->Write(origin_, [](Transaction& tx) { return DisableUser(tx, "wang.approver"); }));
  auto disabled = Authenticate(*token);
  ASSERT_FALSE(disabled);
  EXPECT_NE(disabled.error().message().find("disabled"), std::string::npos);
}

TEST_F(UsersStoreTest, TokensAreNotStoredInTheClear) {
  auto token =
      store_->Write(origin_, [](Transaction& tx) { return CreateUser(tx, "ann", Role::kViewer); });
  ASSERT_TRUE(token);
  auto stored = store_->Read([](soci::session& sql) -> Result<std::string> {
    std::string hash;
    sql << "SELECT token_sha256 FROM users WHERE name = 'ann'", soci::into(hash);
    return hash;
  });
  ASSERT_TRUE(stored);
  EXPECT_EQ(*stored, HashToken(*token));
  EXPECT_NE(*stored, *token);
}

TEST_F(UsersStoreTest, ANameIsTakenOnce) {
  ASSERT_TRUE(
      store_->Write(origin_, [](Transaction& tx) { return CreateUser(tx, "ann", Role::kViewer); }));
  auto again =
      store_->Write(origin_, [](Transaction& tx) { return CreateUser(tx, "ann", Role::kTester); });
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kAlreadyExists);
}

TEST_F(UsersStoreTest, ATokenStopsWhenItsDaysArePast) {
  auto token = Add("ann", 30);
  ASSERT_TRUE(token) << token.error().message();
  EXPECT_TRUE(Authenticate(*token, kNow + 30 * kDay - 1));
  auto expired = Authenticate(*token, kNow + 30 * kDay);
  ASSERT_FALSE(expired);
  EXPECT_EQ(expired.error().code(), ErrorCode::kUnauthenticated);
  EXPECT_EQ(expired.error().message(),
            "the token of user \"ann\" expired at 2027-02-14T08:00:00Z; an admin makes a new one "
            "with `fabu user token rotate ann`");
  auto user = store_->Read([](soci::session& sql) { return FindUser(sql, "ann"); });
  ASSERT_TRUE(user);
  EXPECT_EQ(user->ToJson()["token_expires"], "2027-02-14T08:00:00Z");
}

TEST_F(UsersStoreTest, ZeroDaysIsATokenWithoutExpiry) {
  auto token = Add("ann", 0);
  ASSERT_TRUE(token);
  EXPECT_TRUE(Authenticate(*token, kNow + 3650 * kDay));
  auto user = store_->Read([](soci::session& sql) { return FindUser(sql, "ann"); });
  ASSERT_TRUE(user);
  EXPECT_TRUE(user->ToJson()["token_expires"].is_null());
}

TEST_F(UsersStoreTest, DaysOutsideTheirRangeAreRefusedNamingTheField) {
  for (std::int64_t days : {std::int64_t{-1}, kMaxTokenDays + 1}) {
    auto refused = Add("ann", days);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(refused.error().message().find("token_days"), std::string::npos);
  }
  ASSERT_TRUE(Add("ann", 1));
  EXPECT_FALSE(Rotate("ann", kMaxTokenDays + 1, kNow));
}

TEST_F(UsersStoreTest, RotationStopsTheOldTokenAtOnceAndIsAuditedWithoutTheToken) {
  auto old_token = Add("ann", 1);
  ASSERT_TRUE(old_token);
  // Rotated after the old token expired: an admin giving a new one.
  auto rotated = Rotate("ann", 7, kNow + 2 * kDay);
  ASSERT_TRUE(rotated) << rotated.error().message();
  EXPECT_NE(rotated->token, *old_token);
  EXPECT_EQ(rotated->user.token_expires, kNow + 9 * kDay);
  auto old_refused = Authenticate(*old_token, kNow);
  ASSERT_FALSE(old_refused);
  EXPECT_EQ(old_refused.error().message(), "unknown bearer token");
  auto who = Authenticate(rotated->token, kNow + 9 * kDay - 1);
  ASSERT_TRUE(who) << who.error().message();
  EXPECT_EQ(who->name, "ann");
  EXPECT_FALSE(Authenticate(rotated->token, kNow + 9 * kDay));

  auto audit = store_->Read([](soci::session& sql) -> Result<std::string> {
    std::string detail;
    sql << "SELECT detail FROM audit_log WHERE action = 'user.token-rotate'", soci::into(detail);
    return detail;
  });
  ASSERT_TRUE(audit);
  EXPECT_NE(audit->find("\"token_days\":7"), std::string::npos) << *audit;
  EXPECT_EQ(audit->find(rotated->token), std::string::npos);
  EXPECT_EQ(audit->find(*old_token), std::string::npos);
}

TEST_F(UsersStoreTest, ADisabledUserGetsNoNewTokenAndAnUnknownOneIsNamed) {
  ASSERT_TRUE(Add("ann", 1));
  ASSERT_TRUE(store_->Write(origin_, [](Transaction& tx) { return DisableUser(tx, "ann"); }));
  auto refused = Rotate("ann", 1, kNow);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kFailedPrecondition);
  auto unknown = Rotate("nobody", 1, kNow);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code(), ErrorCode::kNotFound);
}

// The token cache (auth/token_cache.hpp): a token once accepted is answered
// from memory, so what changes it must make the cache forget. Here the user
// is disabled straight in the store, as a change by hand would be, to tell
// the cache's answer from the store's.
TEST_F(UsersStoreTest, ACachedTokenIsAnsweredUntilForgottenAndItsExpiryStillHolds) {
  auto token = Add("ann", 1);
  ASSERT_TRUE(token) << token.error().message();
  UserTokenCache cache;
  auto first = AuthenticateToken(*store_, cache, *token, kNow);
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_EQ(first->name, "ann");
  EXPECT_EQ(first->role, Role::kTester);
  EXPECT_EQ(cache.size(), 1u);

  ASSERT_TRUE(store_->Write(origin_, [](Transaction& tx) { return DisableUser(tx, "ann"); }));
  auto remembered = AuthenticateToken(*store_, cache, *token, kNow);
  ASSERT_TRUE(remembered) << "the cache answers until it is told to forget";
  EXPECT_EQ(remembered->name, "ann");

  // The token's day is past: refused even while cached, with the store's
  // reason (here: the user is disabled, which the store checks first).
  auto expired = AuthenticateToken(*store_, cache, *token, kNow + kDay);
  ASSERT_FALSE(expired);
  EXPECT_EQ(expired.error().code(), ErrorCode::kUnauthenticated);
  EXPECT_NE(expired.error().message().find("disabled"), std::string::npos)
      << expired.error().message();

  cache.ForgetAll();
  EXPECT_EQ(cache.size(), 0u);
  auto refused = AuthenticateToken(*store_, cache, *token, kNow);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("user \"ann\" is disabled"), std::string::npos)
      << refused.error().message();
  EXPECT_EQ(cache.size(), 0u) << "a refused token is not remembered";
}

TEST_F(UsersStoreTest, AnExpiredCachedTokenIsRefusedWithTheStoresReason) {
  auto token = Add("ann", 1);
  ASSERT_TRUE(token) << token.error().message();
  UserTokenCache cache;
  ASSERT_TRUE(AuthenticateToken(*store_, cache, *token, kNow));
  EXPECT_TRUE(AuthenticateToken(*store_, cache, *token, kNow + kDay - 1));
  auto expired = AuthenticateToken(*store_, cache, *token, kNow + kDay);
  ASSERT_FALSE(expired);
  EXPECT_NE(expired.error().message().find("the token of user \"ann\" expired at"),
            std::string::npos)
      << expired.error().message();
}

TEST_F(UsersStoreTest, ACachedTokenIsAskedOfTheStoreAgainPastItsLongestLife) {
  auto token = Add("ann", 0);
  ASSERT_TRUE(token) << token.error().message();
  UserTokenCache cache(16, std::chrono::milliseconds(1));
  ASSERT_TRUE(AuthenticateToken(*store_, cache, *token, kNow));
  ASSERT_TRUE(store_->Write(origin_, [](Transaction& tx) { return DisableUser(tx, "ann"); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto refused = AuthenticateToken(*store_, cache, *token, kNow);
  ASSERT_FALSE(refused) << "an entry older than its longest life is not answered from memory";
  EXPECT_NE(refused.error().message().find("disabled"), std::string::npos)
      << refused.error().message();
}

TEST_F(UsersStoreTest, ARotationRacingALookupLeavesTheOldTokenForgotten) {
  // A lookup read the store before the rotation committed; its answer comes
  // back after the rotation's ForgetAll: it must not be remembered.
  auto token = Add("ann", 0);
  ASSERT_TRUE(token) << token.error().message();
  UserTokenCache cache;
  const auto before = cache.Generation();
  ASSERT_TRUE(Rotate("ann", 0, kNow));
  cache.ForgetAll();
  cache.Remember(*token, TokenHolder{"ann", Role::kTester, 0}, before);
  EXPECT_EQ(cache.size(), 0u);
  auto refused = AuthenticateToken(*store_, cache, *token, kNow);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("unknown bearer token"), std::string::npos);
}

}  // namespace
}  // namespace fabu::coordinator
