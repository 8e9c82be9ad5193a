#include "server/nonce_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <memory>

#include <nlohmann/json.hpp>

#include "common/files.h"

namespace cr::server {
namespace {

std::string Key(std::string_view party, std::string_view nonce) {
  std::string k(party);
  k += '\n';
  k += nonce;
  return k;
}

std::string Line(const std::string& key, long long created) {
  size_t nl = key.find('\n');
  return nlohmann::json{{"c", created}, {"n", key.substr(nl + 1)}, {"p", key.substr(0, nl)}}.dump();
}

}  // namespace

Result<std::unique_ptr<NonceStore>> NonceStore::Open(const std::string& path, long long now,
                                                     long long window) {
  std::unique_ptr<NonceStore> store(new NonceStore(path, window));
  if (PathExists(path)) {
    CR_ASSIGN(std::string text, ReadFile(path));
    size_t start = 0;
    while (start < text.size()) {
      size_t nl = text.find('\n', start);
      if (nl == std::string::npos) break;  // torn tail: never acknowledged
      auto j = nlohmann::json::parse(text.substr(start, nl - start), nullptr, false);
      if (j.is_discarded() || !j.is_object() || !j.contains("c") || !j["c"].is_number_integer() ||
          !j.contains("n") || !j["n"].is_string() || !j.contains("p") || !j["p"].is_string()) {
        return Fail(ErrorCode::TAMPERED, "the nonce record {} is damaged at byte {}", path, start);
      }
      long long created = j["c"].get<long long>();
      if (created >= now - window) {
        store->seen_[Key(j["p"].get<std::string>(), j["n"].get<std::string>())] = created;
      }
      start = nl + 1;
    }
  }
  std::lock_guard lock(store->mu_);
  CR_TRY(store->Rewrite(now));
  return store;
}

NonceStore::~NonceStore() {
  if (fd_ >= 0) ::close(fd_);
}

Status NonceStore::Rewrite(long long now) {
  for (auto it = seen_.begin(); it != seen_.end();) {
    it = it->second < now - window_ ? seen_.erase(it) : std::next(it);
  }
  std::string text;
  for (const auto& [key, created] : seen_) text += Line(key, created) + "\n";
  CR_TRY(WriteFileAtomic(path_, text, 0600));
  if (fd_ >= 0) ::close(fd_);
  fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd_ < 0) return Fail(ErrorCode::INTERNAL, "cannot open the nonce record {}", path_);
  lines_ = seen_.size();
  return Ok();
}

Status NonceStore::Record(std::string_view party, std::string_view nonce, long long created,
                          long long now) {
  std::lock_guard lock(mu_);
  std::string key = Key(party, nonce);
  if (seen_.count(key)) {
    return Fail(ErrorCode::AUTH_REPLAYED, "this request's nonce was already used: a replay");
  }
  // Compact once dead lines outnumber live ones (and there are enough to matter).
  // A failed append may have left a partial line: rewrite before appending
  // again, so the file never holds a torn line before a whole one.
  if (broken_ || (lines_ > 4096 && lines_ > 2 * seen_.size())) {
    CR_TRY(Rewrite(now));
    broken_ = false;
  }
  std::string line = Line(key, created) + "\n";
  if (::write(fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size()) ||
      ::fdatasync(fd_) != 0) {
    broken_ = true;
    return Fail(ErrorCode::INTERNAL, "cannot record the request's nonce");
  }
  seen_.emplace(std::move(key), created);
  ++lines_;
  return Ok();
}

size_t NonceStore::size() const {
  std::lock_guard lock(mu_);
  return seen_.size();
}

}  // namespace cr::server
