// Routing by method and path pattern.
#include "coordinator/server/router.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace fabu::coordinator {
namespace {

Handler Named(std::string name) {
  return [name](RequestContext&) -> Result<Response> { return Response::Ok({{"route", name}}); };
}

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.Add(Method::kGet, "/api/v1/users", RouteOptions::AnyUser(), Named("list"));
    router_.Add(Method::kPost, "/api/v1/users/{name}/disable",
                RouteOptions::ForRoles({Role::kAdmin}, "disabling a user"), Named("disable"));
    router_.Add(Method::kGet, "/api/v1/releases/{id}/export/{doc}", RouteOptions::AnyUser(),
                Named("export"));
  }
  Router router_;
};

TEST_F(RouterTest, ParametersAreCapturedAndDecoded) {
  auto match = router_.Match(Method::kPost, "/api/v1/users/li.ops%2Dhead/disable");
  ASSERT_TRUE(match) << match.error().message();
  EXPECT_EQ(match->route->options.action, "disabling a user");
  EXPECT_EQ(match->params.at("name"), "li.ops-head");
  auto two = router_.Match(Method::kGet, "/api/v1/releases/R-7/export/plan");
  ASSERT_TRUE(two);
  EXPECT_EQ(two->params.at("id"), "R-7");
  EXPECT_EQ(two->params.at("doc"), "plan");
}

TEST_F(RouterTest, UnknownPathsAndWrongMethodsAreTold) {
  auto missing = router_.Match(Method::kGet, "/api/v1/nothing");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  auto wrong = router_.Match(Method::kDelete, "/api/v1/users");
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(wrong.error().message().find("DELETE"), std::string::npos);
}

TEST_F(RouterTest, DefaultActionNamesMethodAndPattern) {
  auto match = router_.Match(Method::kGet, "/api/v1/users");
  ASSERT_TRUE(match);
  EXPECT_EQ(match->route->options.action, "GET /api/v1/users");
}

TEST(QueryTest, PairsAreDecoded) {
  auto query = ParseQuery("release=R%201&state=draft&flag&x=a+b");
  ASSERT_TRUE(query);
  EXPECT_EQ(query->at("release"), "R 1");
  EXPECT_EQ(query->at("state"), "draft");
  EXPECT_EQ(query->at("flag"), "");
  EXPECT_EQ(query->at("x"), "a b");
  EXPECT_FALSE(ParseQuery("a=%zz"));
  EXPECT_FALSE(PercentDecode("abc%4", false));
}

TEST(DeferredTest, AnAnswerGivenBeforeTheServerWaitsIsTakenAtOnce) {
  Deferred deferred;
  deferred.Complete(Response::Ok({{"through", 3}}));
  EXPECT_FALSE(deferred.OnComplete([] { ADD_FAILURE() << "woken for an answer already there"; }));
  auto answer = deferred.Take();
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->body["through"], 3);
}

TEST(DeferredTest, TheWaiterIsWokenOnceAndTheFirstAnswerCounts) {
  Deferred deferred;
  int woken = 0;
  EXPECT_TRUE(deferred.OnComplete([&] { ++woken; }));
  std::thread writer([&] {
    deferred.Complete(Fail(ErrorCode::kPermissionDenied, "not this host's deployment"));
    deferred.Complete(Response::Ok({}));
  });
  writer.join();
  EXPECT_EQ(woken, 1);
  auto answer = deferred.Take();
  ASSERT_FALSE(answer);
  EXPECT_EQ(answer.error().code(), ErrorCode::kPermissionDenied);
}

}  // namespace
}  // namespace fabu::coordinator
