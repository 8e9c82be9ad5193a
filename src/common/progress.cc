#include "common/progress.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>

namespace cr {

std::string HumanBytes(double bytes) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  int u = 0;
  while (bytes >= 1000 && u < 4) {
    bytes /= 1000;
    ++u;
  }
  return fmt::format("{:.1f} {}", bytes, units[u]);
}

Progress::Progress(std::string label) : label_(std::move(label)) {
  enabled_ = ::isatty(STDERR_FILENO) && !std::getenv("CLEANROOM_NO_PROGRESS");
  start_ = last_ = std::chrono::steady_clock::now();
}

Progress::~Progress() {
  if (drawn_) std::fputc('\n', stderr);
}

void Progress::Update(uint64_t rows, uint64_t bytes) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  Draw(rows, bytes, false);
}

void Progress::Finish(uint64_t rows, uint64_t bytes) {
  if (!enabled_) return;
  Draw(rows, bytes, true);
  std::fputc('\n', stderr);
  drawn_ = false;
}

void Progress::Draw(uint64_t rows, uint64_t bytes, bool final) {
  double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double rate = secs > 0 ? bytes / secs : 0;
  // rows is 0 while the engine reads (it reports progress in bytes only).
  std::string counted = rows ? fmt::format("{} rows, ", rows) : "";
  std::string line = fmt::format("\r{}: {}{} ({}/s){}", label_, counted, HumanBytes(bytes),
                                 HumanBytes(rate), final ? fmt::format(" in {:.1f}s", secs) : "");
  std::fputs(line.c_str(), stderr);
  std::fputs("\x1b[K", stderr);
  std::fflush(stderr);
  drawn_ = true;
}

}  // namespace cr
