// The clock the room reads (LevelDB's Env::NowMicros pattern): an interface
// passed to the room and the audit log, the system clock by default, and the
// test-only CLEANROOM_NOW override that a release build refuses.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"

namespace cr {

class Clock {
 public:
  virtual ~Clock() = default;
  // Seconds since the Unix epoch.
  virtual long long NowUnix() const = 0;
  // RFC 3339 UTC ("2026-12-01T22:35:00Z") of NowUnix().
  std::string NowRfc3339() const;
};

// The real time of day.
const Clock& SystemClock();

// A clock that says what it is told: tests and the CLEANROOM_NOW override.
class FixedClock : public Clock {
 public:
  explicit FixedClock(long long unix_seconds) : now_(unix_seconds) {}
  long long NowUnix() const override { return now_; }
  void Set(long long unix_seconds) { now_ = unix_seconds; }
  void Advance(long long seconds) { now_ += seconds; }

 private:
  long long now_;
};

// The clock used when none is passed (Env::Default()): SystemClock() unless
// InstallClockOverride set another. Never the epoch by accident.
const Clock& DefaultClock();

// The name of the override variable and whether this build honours it
// (CMake option CLEANROOM_TEST_HOOKS; OFF with -DCLEANROOM_RELEASE=ON).
inline constexpr std::string_view kClockOverrideVar = "CLEANROOM_NOW";
bool TestHooksEnabled();

// The one accepted override format: a whole number of seconds since the epoch,
// ASCII digits only (no sign, spaces, fraction or suffix), 0..253402300799
// (9999-12-31T23:59:59Z). USAGE for anything else.
Result<long long> ParseClockOverride(std::string_view text);

// What the override variable asks for: nullopt when it is unset, the time when
// it is set and `hooks_enabled`. USAGE when it is set and hooks are off (a
// release build refuses to run under a fake clock rather than ignore it) or
// when it does not parse. An empty value counts as set.
Result<std::optional<long long>> ClockOverride(const char* value, bool hooks_enabled);

// Reads the override variable from the environment (ClockOverride with
// TestHooksEnabled()) and, when it names a time, makes DefaultClock() return
// it for the rest of the process. Every command calls this first.
Status InstallClockOverride();

}  // namespace cr
