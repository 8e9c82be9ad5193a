#include "client/client.h"

#include <arpa/inet.h>
#include <signal.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <mutex>
#include <optional>

#include <httplib.h>

#include "common/files.h"
#include "http/signature.h"

namespace cr::client {
namespace {

bool IsLoopback(const std::string& host) {
  if (host == "localhost" || host == "::1") return true;
  in_addr a{};
  if (::inet_pton(AF_INET, host.c_str(), &a) == 1) return (ntohl(a.s_addr) >> 24) == 127;
  return false;
}

std::string HostPort(const Endpoint& e) {
  const bool v6 = e.host.find(':') != std::string::npos;
  return (v6 ? "[" + e.host + "]" : e.host) + ":" + std::to_string(e.port);
}

constexpr std::string_view kUrlForm = "--server takes https://HOST[:PORT]";

}  // namespace

std::string Endpoint::Origin() const { return (tls ? "https://" : "http://") + HostPort(*this); }

Result<Endpoint> ParseServerUrl(std::string_view url) {
  Endpoint e;
  std::string_view rest;
  if (url.starts_with("https://")) {
    rest = url.substr(8);
  } else if (url.starts_with("http://")) {
    e.tls = false;
    e.port = 80;
    rest = url.substr(7);
  } else {
    return Fail(ErrorCode::USAGE, "{} (or http:// to a loopback host)", kUrlForm);
  }
  if (rest.ends_with("/")) rest.remove_suffix(1);
  if (rest.empty() || rest.find_first_of("/?#@ ") != std::string_view::npos) {
    return Fail(ErrorCode::USAGE, "{}: no path, query or user name", kUrlForm);
  }
  std::string_view port;
  bool has_port = false;
  if (rest.front() == '[') {
    size_t close = rest.find(']');
    if (close == std::string_view::npos) return Fail(ErrorCode::USAGE, "{}", kUrlForm);
    e.host = std::string(rest.substr(1, close - 1));
    rest.remove_prefix(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return Fail(ErrorCode::USAGE, "{}", kUrlForm);
      has_port = true;
      port = rest.substr(1);
    }
  } else {
    size_t colon = rest.find(':');
    e.host = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos) {
      has_port = true;
      port = rest.substr(colon + 1);
    }
  }
  if (e.host.empty()) return Fail(ErrorCode::USAGE, "{}: the host is missing", kUrlForm);
  for (char c : e.host) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != ':') {
      return Fail(ErrorCode::USAGE, "{}: the host has a character a host name cannot", kUrlForm);
    }
  }
  if (has_port) {
    int p = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (port.empty() || ec != std::errc() || ptr != port.data() + port.size() || p < 1 ||
        p > 65535) {
      return Fail(ErrorCode::USAGE, "{}: the port must be a number from 1 to 65535", kUrlForm);
    }
    e.port = p;
  }
  std::string lower = e.host;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  e.host = lower;
  if (!e.tls && !IsLoopback(e.host)) {
    return Fail(ErrorCode::USAGE,
                "http:// is only for a server on this machine (localhost, 127.0.0.1, ::1); use "
                "https:// for {}",
                e.host);
  }
  return e;
}

Result<std::string> PartyOfKeyFile(const std::string& key_path) {
  std::string name = key_path.substr(key_path.find_last_of('/') + 1);
  if (!name.ends_with(".key") || name.size() == 4) {
    return Fail(ErrorCode::USAGE,
                "--server needs the key file keygen wrote, NAME.key: the party is its NAME");
  }
  return name.substr(0, name.size() - 4);
}

Error ErrorFromResponse(int http_status, std::string_view body) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_string() && j.contains("message") &&
      j["message"].is_string()) {
    if (auto code = CodeFromName(j["error"].get<std::string>())) {
      return Error{*code, j["message"].get<std::string>()};
    }
  }
  return Error{ErrorCode::INTERNAL,
               fmt::format("the server answered HTTP {} without an error this client knows",
                           http_status)};
}

struct Client::State {
  Endpoint endpoint;
  std::string tls_ca;
  std::optional<crypto::Identity> key;  // set by Connect
  std::string party;
  const Clock* clock = nullptr;
  int timeout_seconds = 600;
  std::unique_ptr<httplib::ClientImpl> http;
};

Client::Client() : s_(std::make_unique<State>()) {}
Client::~Client() = default;
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;

const std::string& Client::party() const { return s_->party; }
const crypto::Identity& Client::key() const { return *s_->key; }

Result<Client> Client::Connect(const Options& options) {
  // A server may answer and close before reading a whole upload (one it
  // cannot authenticate): the write then fails with EPIPE, which must be an
  // error here, not a signal that kills the process.
  static std::once_flag no_sigpipe;
  std::call_once(no_sigpipe, [] { ::signal(SIGPIPE, SIG_IGN); });
  Client c;
  CR_ASSIGN(c.s_->endpoint, ParseServerUrl(options.url));
  if (options.key_path.empty()) return Fail(ErrorCode::USAGE, "--server needs --key FILE");
  CR_ASSIGN(c.s_->party, PartyOfKeyFile(options.key_path));
  CR_ASSIGN(auto key, crypto::Identity::Load(options.key_path));
  c.s_->key.emplace(std::move(key));
  if (!options.tls_ca.empty()) {
    if (!c.s_->endpoint.tls) {
      return Fail(ErrorCode::USAGE, "--tls-ca is for an https:// server");
    }
    CR_ASSIGN(auto pem, ReadFile(options.tls_ca));
    if (pem.find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
      return Fail(ErrorCode::BAD_INPUT, "{} holds no PEM certificate to trust (--tls-ca)",
                  options.tls_ca);
    }
  }
  c.s_->tls_ca = options.tls_ca;
  c.s_->clock = options.clock ? options.clock : &DefaultClock();
  c.s_->timeout_seconds = options.timeout_seconds;
  return c;
}

Result<std::string> Client::Send(std::string_view method, std::string_view path_and_query,
                                 std::string_view body, std::string_view content_type) {
  State& s = *s_;
  if (!s.http) {
    if (s.endpoint.tls) {
      auto ssl = std::make_unique<httplib::SSLClient>(s.endpoint.host, s.endpoint.port);
      // Verification is the point of TLS here: the server holds every party's
      // data; a certificate that does not verify is never talked to.
      ssl->enable_server_certificate_verification(true);
      if (!s.tls_ca.empty()) ssl->set_ca_cert_path(s.tls_ca.c_str());
      s.http = std::move(ssl);
    } else {
      s.http = std::make_unique<httplib::ClientImpl>(s.endpoint.host, s.endpoint.port);
    }
    // One connection per request: httplib's server keeps a worker on a
    // keep-alive connection until it has been idle for 5 s, so 16 clients
    // holding connections starve a 4-worker server (server_bench saw
    // requests half-sent into connections it had closed meanwhile).
    // Requests are never retried: a query must not run twice.
    s.http->set_keep_alive(false);
    // Generous: a busy server finishes the TLS handshake only when a worker
    // is free, which under load is after the queries ahead of it.
    s.http->set_connection_timeout(120, 0);
    s.http->set_read_timeout(s.timeout_seconds + 60, 0);
    s.http->set_write_timeout(300, 0);
  }
  const std::string target = s.endpoint.Origin() + std::string(path_and_query);
  auto sig = http::Sign(*s.key, s.party, method, target, body, s.clock->NowUnix(), http::NewNonce());
  httplib::Headers headers = {{"Host", HostPort(s.endpoint)},
                              {"Content-Digest", sig.content_digest},
                              {"Signature-Input", sig.signature_input},
                              {"Signature", sig.signature}};
  const std::string path(path_and_query);
  httplib::Result res = method == "POST"
                            ? s.http->Post(path.c_str(), headers, body.data(), body.size(),
                                           std::string(content_type).c_str())
                            : s.http->Get(path.c_str(), headers);
  if (!res) {
    // The next request starts a fresh connection.
    s.http.reset();
    switch (res.error()) {
      case httplib::Error::SSLServerVerification:
        return Fail(ErrorCode::TLS_UNTRUSTED,
                    "the certificate of {} does not verify{}; nothing was sent", HostPort(s.endpoint),
                    s.tls_ca.empty() ? " against the system's CAs (a private CA needs --tls-ca FILE)"
                                     : " against the CA of --tls-ca");
      case httplib::Error::SSLLoadingCerts:
        return Fail(ErrorCode::TLS_UNTRUSTED, "no CA certificate could be loaded to verify {}",
                    HostPort(s.endpoint));
      case httplib::Error::Write:
        return Fail(ErrorCode::SERVER_UNREACHABLE,
                    "{} closed the connection while the request was being sent (a server refuses "
                    "an upload it cannot authenticate before reading all of it)",
                    HostPort(s.endpoint));
      case httplib::Error::SSLConnection:
        return Fail(ErrorCode::SERVER_UNREACHABLE, "the TLS handshake with {} failed",
                    HostPort(s.endpoint));
      default:
        return Fail(ErrorCode::SERVER_UNREACHABLE, "no answer from {} ({})", HostPort(s.endpoint),
                    httplib::to_string(res.error()));
    }
  }
  if (res->status >= 200 && res->status < 300) return std::move(res->body);
  return std::unexpected(ErrorFromResponse(res->status, res->body));
}

Result<std::string> Client::Get(std::string_view path_and_query) {
  return Send("GET", path_and_query, "", "");
}

Result<std::string> Client::Post(std::string_view path_and_query, std::string_view body,
                                 std::string_view content_type) {
  return Send("POST", path_and_query, body, content_type);
}

namespace {
Result<nlohmann::json> ParseJson(const std::string& body) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded()) return Fail(ErrorCode::INTERNAL, "the server's answer is not JSON");
  return j;
}
}  // namespace

Result<nlohmann::json> Client::GetJson(std::string_view path_and_query) {
  CR_ASSIGN(auto body, Get(path_and_query));
  return ParseJson(body);
}

Result<nlohmann::json> Client::PostJson(std::string_view path_and_query, const nlohmann::json& body) {
  CR_ASSIGN(auto text, Post(path_and_query, body.dump(), "application/json"));
  return ParseJson(text);
}

}  // namespace cr::client
