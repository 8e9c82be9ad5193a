// A release build (key_store.cc compiled without test hooks) has no test-only
// key store: it cannot be chosen, made the default, or opened.
#include <gtest/gtest.h>

#include <cstdlib>

#include "room/key_store.h"

namespace cr::room {
namespace {

TEST(KeyStoreRelease, TheTestOnlyStoreIsRefused) {
  ASSERT_TRUE(crypto::Init());
  auto parsed = ParseKeyStoreKind("test-plain");
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().code, ErrorCode::USAGE);

  ::setenv("CLEANROOM_KEY_STORE", "test-plain", 1);
  auto resolved = ResolveChoice(KeyStoreChoice{});
  ::unsetenv("CLEANROOM_KEY_STORE");
  ASSERT_FALSE(resolved);
  EXPECT_EQ(resolved.error().code, ErrorCode::USAGE);

  KeyStoreChoice plain;
  plain.kind = KeyStoreKind::kTestPlain;
  auto created = CreateKeyStore(plain, crypto::Identity::Generate());
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().code, ErrorCode::USAGE);

  // A room a test build made with it: refused, saying how to protect it.
  auto id = crypto::Identity::Generate();
  auto text = id.ToText();
  const std::string store = std::string("{\"format\": 1, \"kind\": \"test-plain\", \"room_key\": \"") +
                            id.pub().Fingerprint() + "\", \"key\": \"" + std::string(text.view()) + "\"}";
  auto opened = UnlockKeyStore(store);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code, ErrorCode::KEY_UNPROTECTED);
  EXPECT_NE(opened.error().message.find("room protect"), std::string::npos);
}

}  // namespace
}  // namespace cr::room
