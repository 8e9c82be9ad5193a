// A client for one ClickHouse server over its HTTP interface (cpp-httplib).
// Statements go in the request body, settings in the URL; inserts stream their
// rows as the body (chunked) in a binary format. ClickHouse's own error text is
// never passed on (it can quote data values): a failure keeps only ClickHouse's
// numeric code, mapped to one of ours:
//   SERVER_UNREACHABLE    the server, or a shard behind it, cannot be reached
//   QUERY_LIMIT_EXCEEDED  max_execution_time or max_memory_usage was hit
//   NOT_AUTHORIZED        wrong user or password, or a read-only user writing
//   SQL_INVALID           any other refusal of the statement
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"

namespace cr::clickhouse {

struct Endpoint {
  std::string host;  // loopback or a name; no scheme
  int port = 8123;   // the HTTP port
};

// "http://HOST:PORT" (the only form accepted; https is not done yet).
// USAGE for anything else.
Result<Endpoint> ParseUrl(std::string_view url);

struct Settings {
  std::optional<double> max_execution_time;  // seconds
  std::optional<int64_t> max_memory_usage;   // bytes
  std::map<std::string, std::string> extra;  // name -> value, both chosen by the room
};

// Called repeatedly for the body of an insert: append bytes to `out` and
// return true, or return false when there is nothing more.
using Producer = std::function<Result<bool>(std::string* out)>;

class Client {
 public:
  Client(Endpoint endpoint, std::string user, std::string password, double timeout_seconds = 300);

  // Runs one statement and returns the response body (the statement names its
  // FORMAT when it returns rows).
  [[nodiscard]] Result<std::string> Query(std::string_view sql, const Settings& settings = {}) const;
  // INSERT INTO table FORMAT format, the rows streamed from `produce`. When
  // `produce` fails the request is aborted and its error returned, but
  // ClickHouse may keep blocks it already received: load into a staging
  // table and move it into place only after success.
  [[nodiscard]] Status Insert(std::string_view table, std::string_view format,
                              const Producer& produce, const Settings& settings = {}) const;
  // GET /ping answered "Ok.".
  bool Ping() const;

  const Endpoint& endpoint() const { return endpoint_; }

 private:
  Endpoint endpoint_;
  std::string user_, password_;
  double timeout_seconds_;
};

// Our code for a ClickHouse exception code (see the header comment).
ErrorCode MapServerCode(int code);

}  // namespace cr::clickhouse
