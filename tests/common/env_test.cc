// The injected clock and its test-only override: what the override accepts,
// what it refuses (never 1970 by accident), and that hooks off refuses it.
#include "common/env.h"

#include <gtest/gtest.h>

namespace cr {
namespace {

TEST(ClockTest, FixedClockFormatsRfc3339) {
  FixedClock clock(86400);
  EXPECT_EQ(clock.NowUnix(), 86400);
  EXPECT_EQ(clock.NowRfc3339(), "1970-01-02T00:00:00Z");
  clock.Advance(91LL * 86400);
  EXPECT_EQ(clock.NowRfc3339(), "1970-04-03T00:00:00Z");
}

TEST(ClockTest, SystemClockIsTheDefault) {
  EXPECT_EQ(&DefaultClock(), &SystemClock());
  EXPECT_GT(SystemClock().NowUnix(), 1700000000LL);
}

TEST(ClockTest, OverrideAcceptsWholeSecondsOnly) {
  EXPECT_EQ(*ParseClockOverride("0"), 0);
  EXPECT_EQ(*ParseClockOverride("1764633600"), 1764633600LL);
  EXPECT_EQ(*ParseClockOverride("253402300799"), 253402300799LL);
  // What atoll() used to turn into 1970 or a prefix.
  for (const char* bad : {"", "abc", "-5", "+5", " 5", "5 ", "12x", "1.5", "1e9", "0x10",
                          "2026-12-01T00:00:00Z", "253402300800", "9999999999999"}) {
    auto r = ParseClockOverride(bad);
    ASSERT_FALSE(r) << "'" << bad << "'";
    EXPECT_EQ(r.error().code, ErrorCode::USAGE);
  }
}

TEST(ClockTest, OverrideUnsetIsNoOverride) {
  auto r = ClockOverride(nullptr, true);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->has_value());
  r = ClockOverride(nullptr, false);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->has_value());
}

TEST(ClockTest, OverrideHonouredOnlyWithHooks) {
  auto on = ClockOverride("86400", true);
  ASSERT_TRUE(on);
  EXPECT_EQ(**on, 86400);
  auto off = ClockOverride("86400", false);
  ASSERT_FALSE(off);
  EXPECT_EQ(off.error().code, ErrorCode::USAGE);
  auto empty = ClockOverride("", true);  // set but empty is an error, not "unset"
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code, ErrorCode::USAGE);
}

TEST(ClockTest, ThisBuildsHooksMatchTheCMakeOption) {
  EXPECT_EQ(TestHooksEnabled(), CLEANROOM_TEST_HOOKS_BUILD != 0);
}

}  // namespace
}  // namespace cr
