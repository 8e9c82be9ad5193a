#include "clickhouse/client.h"

#include <charconv>
#include <cmath>
#include <cstdlib>

#include <fmt/format.h>
#include <httplib.h>

namespace cr::clickhouse {
namespace {

// "Code: 241, e.displayText() = ..." -> 241; -1 when the body has no code.
int ServerCode(const std::string& body) {
  auto at = body.find("Code: ");
  if (at == std::string::npos) return -1;
  int code = -1;
  const char* p = body.data() + at + 6;
  auto [end, ec] = std::from_chars(p, body.data() + body.size(), code);
  return ec == std::errc() && end != p ? code : -1;
}

std::string Encode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

std::string SettingsQuery(const Settings& s) {
  std::string q;
  auto add = [&q](std::string_view k, const std::string& v) {
    q += q.empty() ? "?" : "&";
    q += Encode(k) + "=" + Encode(v);
  };
  if (s.max_execution_time) {
    // ClickHouse 18.16 takes whole seconds; round up so a limit is never shortened to 0 (none).
    add("max_execution_time", fmt::format("{}", static_cast<int64_t>(std::ceil(*s.max_execution_time))));
    add("timeout_overflow_mode", "throw");
  }
  if (s.max_memory_usage) add("max_memory_usage", std::to_string(*s.max_memory_usage));
  for (const auto& [k, v] : s.extra) add(k, v);
  return q;
}

Error Failure(const Endpoint& e, int status, const std::string& body) {
  int code = ServerCode(body);
  ErrorCode ours = MapServerCode(code);
  std::string where = fmt::format("ClickHouse at {}:{}", e.host, e.port);
  switch (ours) {
    case ErrorCode::SERVER_UNREACHABLE:
      return Error{ours, fmt::format("{} could not reach a shard of the cluster (ClickHouse code {})",
                                     where, code)};
    case ErrorCode::QUERY_LIMIT_EXCEEDED:
      return Error{ours, fmt::format("{} stopped the query at the room's time or memory limit "
                                     "(ClickHouse code {})", where, code)};
    case ErrorCode::NOT_AUTHORIZED:
      return Error{ours, fmt::format("{} refused the cluster user (ClickHouse code {})", where, code)};
    default:
      return Error{ours, fmt::format("{} refused the statement (HTTP {}, ClickHouse code {}); its "
                                     "details are withheld because they can quote data values",
                                     where, status, code)};
  }
}

Error Unreachable(const Endpoint& e, httplib::Error err) {
  return Error{ErrorCode::SERVER_UNREACHABLE,
               fmt::format("ClickHouse at {}:{} cannot be reached ({})", e.host, e.port,
                           httplib::to_string(err))};
}

}  // namespace

ErrorCode MapServerCode(int code) {
  switch (code) {
    case 32:   // ATTEMPT_TO_READ_AFTER_EOF (a shard went away mid-query)
    case 209:  // SOCKET_TIMEOUT
    case 210:  // NETWORK_ERROR
    case 279:  // ALL_CONNECTION_TRIES_FAILED
    case 519:  // NO_AVAILABLE_REPLICA (current releases)
      return ErrorCode::SERVER_UNREACHABLE;
    case 159:  // TIMEOUT_EXCEEDED
    case 160:  // TOO_SLOW
    case 241:  // MEMORY_LIMIT_EXCEEDED
    case 394:  // QUERY_WAS_CANCELLED
      return ErrorCode::QUERY_LIMIT_EXCEEDED;
    case 164:  // READONLY
    case 192:  // UNKNOWN_USER
    case 193:  // WRONG_PASSWORD
    case 194:  // REQUIRED_PASSWORD
    case 195:  // IP_ADDRESS_NOT_ALLOWED
    case 497:  // ACCESS_DENIED (current releases)
    case 516:  // AUTHENTICATION_FAILED (current releases)
      return ErrorCode::NOT_AUTHORIZED;
    default:
      return ErrorCode::SQL_INVALID;
  }
}

Result<Endpoint> ParseUrl(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  auto bad = [&] {
    return Fail(ErrorCode::USAGE, "a ClickHouse URL must be http://HOST:PORT (got a {}-character value)",
                url.size());
  };
  if (url.substr(0, kScheme.size()) != kScheme) return bad();
  std::string_view rest = url.substr(kScheme.size());
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  auto colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return bad();
  Endpoint e;
  e.host = std::string(rest.substr(0, colon));
  for (char c : e.host) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') return bad();
  }
  std::string_view port = rest.substr(colon + 1);
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), e.port);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || e.port <= 0 ||
      e.port > 65535) {
    return bad();
  }
  return e;
}

Client::Client(Endpoint endpoint, std::string user, std::string password, double timeout_seconds)
    : endpoint_(std::move(endpoint)),
      user_(std::move(user)),
      password_(std::move(password)),
      timeout_seconds_(timeout_seconds) {}

namespace {

httplib::Client Connect(const Endpoint& e, const std::string& user, const std::string& password,
                        double timeout) {
  httplib::Client cli(e.host, e.port);
  cli.set_connection_timeout(5, 0);
  auto secs = static_cast<time_t>(timeout);
  cli.set_read_timeout(secs, 0);
  cli.set_write_timeout(secs, 0);
  cli.set_keep_alive(false);
  cli.set_basic_auth(user, password);
  return cli;
}

}  // namespace

Result<std::string> Client::Query(std::string_view sql, const Settings& settings) const {
  auto cli = Connect(endpoint_, user_, password_, timeout_seconds_);
  auto res = cli.Post("/" + SettingsQuery(settings), std::string(sql), "text/plain");
  if (!res) return std::unexpected(Unreachable(endpoint_, res.error()));
  if (res->status != 200) return std::unexpected(Failure(endpoint_, res->status, res->body));
  return std::move(res->body);
}

Status Client::Insert(std::string_view table, std::string_view format, const Producer& produce,
                      const Settings& settings) const {
  auto cli = Connect(endpoint_, user_, password_, timeout_seconds_);
  Settings s = settings;
  s.extra["query"] = fmt::format("INSERT INTO {} FORMAT {}", table, format);
  std::optional<Error> producer_error;
  std::string buf;
  auto res = cli.Post(
      "/" + SettingsQuery(s), httplib::Headers{},
      [&](size_t, httplib::DataSink& sink) {
        buf.clear();
        auto more = produce(&buf);
        if (!more) {
          producer_error = more.error();
          return false;  // aborts the request: ClickHouse drops the partial insert
        }
        if (!buf.empty() && !sink.write(buf.data(), buf.size())) return false;
        if (!*more) sink.done();
        return true;
      },
      "application/octet-stream");
  if (producer_error) return std::unexpected(*producer_error);
  if (!res) return std::unexpected(Unreachable(endpoint_, res.error()));
  if (res->status != 200) return std::unexpected(Failure(endpoint_, res->status, res->body));
  return {};
}

bool Client::Ping() const {
  auto cli = Connect(endpoint_, user_, password_, 5);
  auto res = cli.Get("/ping");
  return res && res->status == 200 && res->body == "Ok.\n";
}

}  // namespace cr::clickhouse
