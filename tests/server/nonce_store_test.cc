#include "server/nonce_store.h"

#include <gtest/gtest.h>

#include "testing/temp_dir.h"

namespace cr::server {
namespace {

using cr::testing::Slurp;
using cr::testing::Spit;
using cr::testing::TempDir;

constexpr long long kNow = 1796000000;

TEST(NonceStoreTest, ANonceIsAcceptedOncePerParty) {
  TempDir dir;
  auto store = NonceStore::Open(dir / "nonces.log", kNow, 300);
  ASSERT_TRUE(store);
  EXPECT_TRUE((*store)->Record("acme", "n1", kNow, kNow));
  EXPECT_EQ((*store)->Record("acme", "n1", kNow, kNow).error().code, ErrorCode::AUTH_REPLAYED);
  EXPECT_TRUE((*store)->Record("newsco", "n1", kNow, kNow));  // another party's nonce space
}

TEST(NonceStoreTest, TheRecordSurvivesARestartAndForgetsOnlyExpiredNonces) {
  TempDir dir;
  {
    auto store = NonceStore::Open(dir / "nonces.log", kNow, 300);
    ASSERT_TRUE(store);
    ASSERT_TRUE((*store)->Record("acme", "old", kNow - 250, kNow));
    ASSERT_TRUE((*store)->Record("acme", "new", kNow, kNow));
  }
  auto reopened = NonceStore::Open(dir / "nonces.log", kNow + 100, 300);
  ASSERT_TRUE(reopened);
  EXPECT_EQ((*reopened)->size(), 1u);  // "old" (created 350 s ago) can no longer pass the clock check
  EXPECT_EQ((*reopened)->Record("acme", "new", kNow, kNow + 100).error().code, ErrorCode::AUTH_REPLAYED);
  EXPECT_EQ(Slurp(dir / "nonces.log").find("\"old\""), std::string::npos);
}

TEST(NonceStoreTest, ATornTailIsDroppedADamagedRecordIsRefused) {
  TempDir dir;
  Spit(dir / "nonces.log", "{\"c\":1796000000,\"n\":\"a\",\"p\":\"acme\"}\n{\"c\":17960");
  auto store = NonceStore::Open(dir / "nonces.log", kNow, 300);
  ASSERT_TRUE(store);
  EXPECT_EQ((*store)->Record("acme", "a", kNow, kNow).error().code, ErrorCode::AUTH_REPLAYED);
  Spit(dir / "nonces.log", "garbage\n{\"c\":1796000000,\"n\":\"a\",\"p\":\"acme\"}\n");
  auto damaged = NonceStore::Open(dir / "nonces.log", kNow, 300);
  ASSERT_FALSE(damaged);
  EXPECT_EQ(damaged.error().code, ErrorCode::TAMPERED);
  EXPECT_EQ(Slurp(dir / "nonces.log").substr(0, 7), "garbage");  // left as found
}

}  // namespace
}  // namespace cr::server
