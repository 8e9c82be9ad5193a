// The persistent record of request nonces seen, so a signed request is
// accepted once: also after a restart of `cleanroom serve`.
#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/error.h"

namespace cr::server {

// One JSON line per accepted nonce ({"c": created, "n": nonce, "p": party}) in
// DIR/nonces.log, appended and fsynced before the request is served. A nonce
// only needs remembering while its request could still pass the clock check
// (created within `window` seconds of now): older entries are dropped when the
// store opens and when the file is compacted. Thread-safe.
class NonceStore {
 public:
  // Loads the file, keeping the entries still inside the window, and rewrites
  // it compacted (atomically). A torn last line (a crash mid-append, before
  // the request was answered) is dropped; any other unparsable line is
  // TAMPERED: the replay record is not silently reset.
  static Result<std::unique_ptr<NonceStore>> Open(const std::string& path, long long now,
                                                  long long window);
  ~NonceStore();
  NonceStore(const NonceStore&) = delete;
  NonceStore& operator=(const NonceStore&) = delete;

  // AUTH_REPLAYED when `party` already used `nonce`; otherwise records it
  // durably and returns Ok. INTERNAL when it cannot be recorded (the request
  // is then refused: an unrecorded nonce could be replayed after a restart).
  Status Record(std::string_view party, std::string_view nonce, long long created, long long now);

  size_t size() const;

 private:
  NonceStore(std::string path, long long window) : path_(std::move(path)), window_(window) {}
  Status Rewrite(long long now);  // with mu_ held
  std::string path_;
  long long window_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, long long> seen_;  // party '\n' nonce -> created
  int fd_ = -1;
  size_t lines_ = 0;
  bool broken_ = false;
};

}  // namespace cr::server
