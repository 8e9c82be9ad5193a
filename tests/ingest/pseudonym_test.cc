#include "ingest/pseudonym.h"

#include <gtest/gtest.h>

namespace cr::ingest {
namespace {

TEST(PseudonymTest, Normalisation) {
  std::string out;
  EXPECT_TRUE(Normalize(spec::Normalize::kEmail, "  Jane.Doe@Example.COM \t", &out));
  EXPECT_EQ(out, "jane.doe@example.com");
  EXPECT_TRUE(Normalize(spec::Normalize::kPhone, "+1 (555) 010-9999", &out));
  EXPECT_EQ(out, "15550109999");
  EXPECT_TRUE(Normalize(spec::Normalize::kText, "  Hello World ", &out));
  EXPECT_EQ(out, "Hello World");
  EXPECT_TRUE(Normalize(spec::Normalize::kNone, " x ", &out));
  EXPECT_EQ(out, " x ");
  // Nothing left: the identifier becomes NULL rather than a pseudonym of "".
  EXPECT_FALSE(Normalize(spec::Normalize::kEmail, "   ", &out));
  EXPECT_FALSE(Normalize(spec::Normalize::kPhone, "n/a", &out));
}

TEST(PseudonymTest, SameIdentitySamePseudonymKeyedPerColumnAndCollaboration) {
  ASSERT_TRUE(crypto::Init());
  crypto::SecureBuffer secret(32);
  crypto::RandomBytes(secret.data(), secret.size());
  Pseudonymizer p(PseudonymKey(secret, "collab-a", "email"), spec::Normalize::kEmail);
  unsigned char a[16], b[16], c[16], d[16];
  ASSERT_TRUE(p.Map(" Jane@Example.com", a));
  ASSERT_TRUE(p.Map("jane@example.com", b));
  EXPECT_EQ(std::memcmp(a, b, 16), 0);
  ASSERT_TRUE(p.Map("john@example.com", c));
  EXPECT_NE(std::memcmp(a, c, 16), 0);
  // Another collaboration or another column: unlinkable pseudonyms.
  Pseudonymizer other(PseudonymKey(secret, "collab-b", "email"), spec::Normalize::kEmail);
  ASSERT_TRUE(other.Map("jane@example.com", d));
  EXPECT_NE(std::memcmp(a, d, 16), 0);
  Pseudonymizer col(PseudonymKey(secret, "collab-a", "phone"), spec::Normalize::kEmail);
  ASSERT_TRUE(col.Map("jane@example.com", d));
  EXPECT_NE(std::memcmp(a, d, 16), 0);
  // It is the documented construction: HMAC-SHA256 under the HKDF key, first 16 bytes.
  auto key = PseudonymKey(secret, "collab-a", "email");
  std::string mac = crypto::HmacSha256(key.view(), "jane@example.com");
  EXPECT_EQ(std::memcmp(a, mac.data(), 16), 0);
}

}  // namespace
}  // namespace cr::ingest
