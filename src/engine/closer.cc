#include "engine/closer.h"

#include <optional>

namespace cr::engine {

Closer::Closer(size_t max_pending)
    : max_pending_(max_pending), thread_([this](const std::stop_token& stop) { Loop(stop); }) {}

Closer::~Closer() {
  thread_.request_stop();
  cv_.notify_all();
  thread_.join();
}

void Closer::Close(Database db) {
  {
    std::lock_guard lock(mu_);
    if (pending_.size() < max_pending_) {
      pending_.push_back(std::move(db));
      cv_.notify_one();
      return;
    }
  }
  // Too many wait already: `db` closes here, on return, as without a Closer.
}

void Closer::Wait() {
  std::unique_lock lock(mu_);
  idle_.wait(lock, [this] { return pending_.empty() && closing_ == 0; });
}

void Closer::Loop(const std::stop_token& stop) {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, stop, [this] { return !pending_.empty(); });
    if (pending_.empty()) return;  // stopped with nothing left
    std::optional<Database> closing(std::move(pending_.front()));
    pending_.pop_front();
    ++closing_;
    lock.unlock();
    closing.reset();
    lock.lock();
    if (--closing_ == 0 && pending_.empty()) idle_.notify_all();
  }
}

}  // namespace cr::engine
