#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "engine/engine.h"

namespace cr::engine {

// Closes finished databases on a thread of its own, so an answer does not
// wait for DuckDB to free what a query built: closing the database of a join
// over a million rows took 15-18 ms of a 190 ms warm query (bench/server),
// time plain DuckDB's caller does not wait for either. A process that keeps
// a room open (the server) owns one; at most `max_pending` databases wait,
// beyond that Close closes on the caller's thread, so memory stays bounded.
class Closer {
 public:
  explicit Closer(size_t max_pending = 4);
  ~Closer();  // closes whatever waits, then joins its thread
  Closer(const Closer&) = delete;
  Closer& operator=(const Closer&) = delete;

  void Close(Database db);
  // Returns once every database handed over so far is closed.
  void Wait();

 private:
  void Loop(const std::stop_token& stop);

  const size_t max_pending_;
  std::mutex mu_;
  std::condition_variable_any cv_;
  std::deque<Database> pending_;
  size_t closing_ = 0;  // taken from pending_, being closed
  std::condition_variable_any idle_;
  std::jthread thread_;
};

}  // namespace cr::engine
