// A second build of src/common/env.cc with CLEANROOM_TEST_HOOKS=0, as
// -DCLEANROOM_RELEASE=ON compiles it: a set CLEANROOM_NOW is refused (USAGE),
// never honoured or ignored, and the default clock stays the system clock.
#include <stdlib.h>

#include <gtest/gtest.h>

#include "common/env.h"

namespace cr {
namespace {

TEST(ReleaseClockTest, HooksAreCompiledOut) { EXPECT_FALSE(TestHooksEnabled()); }

TEST(ReleaseClockTest, ASetOverrideIsRefused) {
  ASSERT_EQ(setenv("CLEANROOM_NOW", "86400", 1), 0);
  auto st = InstallClockOverride();
  unsetenv("CLEANROOM_NOW");
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::USAGE);
  EXPECT_NE(st.error().message.find("CLEANROOM_NOW"), std::string::npos);
  EXPECT_EQ(&DefaultClock(), &SystemClock());
  EXPECT_GT(DefaultClock().NowUnix(), 1700000000LL);
}

TEST(ReleaseClockTest, UnsetOverrideRunsOnTheSystemClock) {
  unsetenv("CLEANROOM_NOW");
  ASSERT_TRUE(InstallClockOverride());
  EXPECT_EQ(&DefaultClock(), &SystemClock());
}

}  // namespace
}  // namespace cr
