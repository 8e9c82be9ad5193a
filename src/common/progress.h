// Progress lines for long runs: rows, bytes and rate on a terminal, silent when
// stderr is piped or redirected (scripts and CI see nothing).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace cr {

class Progress {
 public:
  // Enabled only when stderr is a terminal (and CLEANROOM_NO_PROGRESS is unset).
  explicit Progress(std::string label);
  ~Progress();
  // Redraws at most ~10 times a second.
  void Update(uint64_t rows, uint64_t bytes);
  // Prints the final line (when enabled).
  void Finish(uint64_t rows, uint64_t bytes);
  bool enabled() const { return enabled_; }

 private:
  void Draw(uint64_t rows, uint64_t bytes, bool final);
  std::string label_;
  bool enabled_ = false;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_;
};

// "12.3 MB" style sizes.
std::string HumanBytes(double bytes);

}  // namespace cr
