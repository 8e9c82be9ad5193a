// A release build (no test hooks) refuses the seeded source: production noise
// can only come from the cryptographic RNG.
#include <gtest/gtest.h>

#include "privacy/dp/mechanisms.h"

namespace cr::dp {
namespace {

TEST(DpReleaseTest, SeededRandomIsRefused) {
  auto r = SeededRandom(42);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::NOT_SUPPORTED);
}

TEST(DpReleaseTest, SecureRandomStillWorks) {
  auto m = NumericMechanism::Create({NoiseKind::kLaplace, 1.0, 0, 1, 1});
  ASSERT_TRUE(m.has_value());
  NoisyValue v = m->AddNoise(int64_t{10}, SecureRandom());
  EXPECT_EQ(v.value, static_cast<double>(static_cast<int64_t>(v.value)));
}

}  // namespace
}  // namespace cr::dp
