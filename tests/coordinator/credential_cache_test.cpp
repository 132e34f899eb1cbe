// The agent credential cache: only what the store accepted, and nothing once
// a removal made it forget.
#include "coordinator/hosts/credential_cache.hpp"

#include <gtest/gtest.h>

namespace fabu::coordinator {
namespace {

TEST(CredentialCacheTest, ACredentialTheStoreAcceptedIsFoundByItsHost) {
  CredentialCache cache;
  EXPECT_EQ(cache.Find("c-1"), std::nullopt);
  cache.Remember("c-1", "web-1", cache.Generation());
  EXPECT_EQ(cache.Find("c-1"), "web-1");
  EXPECT_EQ(cache.Find("c-2"), std::nullopt);
  EXPECT_EQ(cache.Find("c-1 "), std::nullopt);
}

TEST(CredentialCacheTest, ForgetAllDropsEveryCredential) {
  CredentialCache cache;
  cache.Remember("c-1", "web-1", cache.Generation());
  cache.Remember("c-2", "web-2", cache.Generation());
  cache.ForgetAll();
  EXPECT_EQ(cache.Find("c-1"), std::nullopt);
  EXPECT_EQ(cache.Find("c-2"), std::nullopt);
  EXPECT_EQ(cache.size(), 0u);
}

TEST(CredentialCacheTest, ALookupThatRacedARemovalIsNotRemembered) {
  // Given a lookup that read the store before a host's removal was committed
  // (its generation read before), remembering its answer after the removal's
  // ForgetAll should keep nothing.
  CredentialCache cache;
  const auto before = cache.Generation();
  cache.ForgetAll();
  cache.Remember("c-1", "web-1", before);
  EXPECT_EQ(cache.Find("c-1"), std::nullopt);
  cache.Remember("c-1", "web-1", cache.Generation());
  EXPECT_EQ(cache.Find("c-1"), "web-1");
}

TEST(CredentialCacheTest, PastItsCapacityItStartsOver) {
  CredentialCache cache(2);
  cache.Remember("c-1", "web-1", cache.Generation());
  cache.Remember("c-2", "web-2", cache.Generation());
  cache.Remember("c-3", "web-3", cache.Generation());
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.Find("c-3"), "web-3");
  EXPECT_EQ(cache.Find("c-1"), std::nullopt);
}

}  // namespace
}  // namespace fabu::coordinator
