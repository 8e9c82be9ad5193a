#include "common/env.h"

#include <cstdlib>
#include <ctime>

#ifndef CLEANROOM_TEST_HOOKS
#error "CLEANROOM_TEST_HOOKS must be defined (0 or 1) by the build"
#endif

namespace cr {
namespace {

class RealClock : public Clock {
 public:
  long long NowUnix() const override { return static_cast<long long>(std::time(nullptr)); }
};

// Set once, before any command runs (InstallClockOverride); read afterwards.
const Clock* g_default = nullptr;

constexpr long long kMaxOverride = 253402300799LL;  // 9999-12-31T23:59:59Z

}  // namespace

std::string Clock::NowRfc3339() const {
  time_t t = static_cast<time_t>(NowUnix());
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

const Clock& SystemClock() {
  static const RealClock clock;
  return clock;
}

const Clock& DefaultClock() { return g_default ? *g_default : SystemClock(); }

bool TestHooksEnabled() { return CLEANROOM_TEST_HOOKS != 0; }

Result<long long> ParseClockOverride(std::string_view text) {
  // Digits only: atoll() read "", "abc" and "-5" as 1970 and "12x" as 12.
  if (text.empty() || text.size() > 12) {
    return Fail(ErrorCode::USAGE, "{} must be whole seconds since the epoch (digits only)",
                kClockOverrideVar);
  }
  long long v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') {
      return Fail(ErrorCode::USAGE, "{} must be whole seconds since the epoch (digits only)",
                  kClockOverrideVar);
    }
    v = v * 10 + (c - '0');
  }
  if (v > kMaxOverride) {
    return Fail(ErrorCode::USAGE, "{} is past 9999-12-31T23:59:59Z", kClockOverrideVar);
  }
  return v;
}

Result<std::optional<long long>> ClockOverride(const char* value, bool hooks_enabled) {
  if (value == nullptr) return std::optional<long long>();
  if (!hooks_enabled) {
    return Fail(ErrorCode::USAGE,
                "{} is set, but this build has no test hooks: a release build keeps the "
                "system clock; unset it",
                kClockOverrideVar);
  }
  CR_ASSIGN(long long v, ParseClockOverride(value));
  return std::optional<long long>(v);
}

Status InstallClockOverride() {
  std::string name(kClockOverrideVar);
  CR_ASSIGN(auto fake, ClockOverride(std::getenv(name.c_str()), TestHooksEnabled()));
  if (fake) {
    static FixedClock clock(0);
    clock.Set(*fake);
    g_default = &clock;
  }
  return Ok();
}

}  // namespace cr
