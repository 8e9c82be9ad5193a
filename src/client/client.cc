#include "client/client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <mutex>
#include <optional>
#include <vector>

#include <httplib.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

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

// One HTTP/1.1 exchange on a connection of its own, written by hand because
// cpp-httplib's client (0.11) sends a body without waiting for "100
// Continue": the upload's head goes first, and its body only once the server
// accepted the head. The server's certificate is verified as httplib's
// client verifies it (the CA of --tls-ca or the system store, and the host
// name or IP address).
class Wire {
 public:
  struct Head {
    int status = 0;
    std::optional<uint64_t> content_length;
  };

  ~Wire() {
    if (ssl_) SSL_free(ssl_);
    if (ctx_) SSL_CTX_free(ctx_);
    if (fd_ >= 0) ::close(fd_);
  }

  static Result<std::unique_ptr<Wire>> Open(const Endpoint& e, const std::string& tls_ca,
                                            int timeout_seconds) {
    auto w = std::unique_ptr<Wire>(new Wire());
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (::getaddrinfo(e.host.c_str(), std::to_string(e.port).c_str(), &hints, &found) != 0) {
      return Fail(ErrorCode::SERVER_UNREACHABLE, "no answer from {} (the host is unknown)", HostPort(e));
    }
    timeval tv{timeout_seconds, 0};
    for (addrinfo* a = found; a && w->fd_ < 0; a = a->ai_next) {
      int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
      if (fd < 0) continue;
      // Bounds connect, every read and every write alike.
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
      if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
        w->fd_ = fd;
      } else {
        ::close(fd);
      }
    }
    ::freeaddrinfo(found);
    if (w->fd_ < 0) return Fail(ErrorCode::SERVER_UNREACHABLE, "no answer from {}", HostPort(e));
    if (!e.tls) return w;

    w->ctx_ = SSL_CTX_new(TLS_client_method());
    if (!w->ctx_) return Fail(ErrorCode::INTERNAL, "cannot set up TLS");
    SSL_CTX_set_min_proto_version(w->ctx_, TLS1_2_VERSION);
    SSL_CTX_set_verify(w->ctx_, SSL_VERIFY_PEER, nullptr);
    bool loaded = tls_ca.empty() ? SSL_CTX_set_default_verify_paths(w->ctx_) == 1
                                 : SSL_CTX_load_verify_locations(w->ctx_, tls_ca.c_str(), nullptr) == 1;
    if (!loaded) {
      return Fail(ErrorCode::TLS_UNTRUSTED, "no CA certificate could be loaded to verify {}", HostPort(e));
    }
    w->ssl_ = SSL_new(w->ctx_);
    if (!w->ssl_) return Fail(ErrorCode::INTERNAL, "cannot set up TLS");
    in6_addr any{};
    const bool ip = ::inet_pton(AF_INET, e.host.c_str(), &any) == 1 ||
                    ::inet_pton(AF_INET6, e.host.c_str(), &any) == 1;
    if (ip) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(w->ssl_), e.host.c_str());
    } else {
      SSL_set_tlsext_host_name(w->ssl_, e.host.c_str());
      SSL_set1_host(w->ssl_, e.host.c_str());
    }
    SSL_set_fd(w->ssl_, w->fd_);
    if (SSL_connect(w->ssl_) != 1) {
      if (SSL_get_verify_result(w->ssl_) != X509_V_OK) {
        return Fail(ErrorCode::TLS_UNTRUSTED, "the certificate of {} does not verify{}; nothing was sent",
                    HostPort(e),
                    tls_ca.empty() ? " against the system's CAs (a private CA needs --tls-ca FILE)"
                                   : " against the CA of --tls-ca");
      }
      return Fail(ErrorCode::SERVER_UNREACHABLE, "the TLS handshake with {} failed", HostPort(e));
    }
    return w;
  }

  bool Write(std::string_view data) {
    while (!data.empty()) {
      long n = ssl_ ? SSL_write(ssl_, data.data(), static_cast<int>(std::min<size_t>(data.size(), 1 << 20)))
                    : ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // The next response head (an interim 100 included): the status and the
  // length of the body that follows.
  std::optional<Head> ReadHead() {
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (buf_.size() > 65536 || !Fill()) return std::nullopt;
    }
    std::string head = buf_.substr(0, end + 2);
    buf_.erase(0, end + 4);
    Head h;
    if (!head.starts_with("HTTP/1.") || head.size() < 12) return std::nullopt;
    auto [ptr, ec] = std::from_chars(head.data() + 9, head.data() + 12, h.status);
    if (ec != std::errc()) return std::nullopt;
    for (size_t at = head.find("\r\n"); at != std::string::npos && at + 2 < head.size();) {
      size_t next = head.find("\r\n", at + 2);
      std::string line = head.substr(at + 2, next - at - 2);
      at = next;
      size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (name != "content-length") continue;
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      uint64_t n = 0;
      auto [p, e] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (e == std::errc()) h.content_length = n;
    }
    return h;
  }

  // The body after `h`: Content-Length bytes, or what comes until the server closes.
  std::optional<std::string> ReadBody(const Head& h) {
    constexpr uint64_t kMaxAnswer = 64ull << 20;  // an answer is JSON, never bulk
    if (h.content_length && *h.content_length > kMaxAnswer) return std::nullopt;
    while (!h.content_length || buf_.size() < *h.content_length) {
      if (buf_.size() > kMaxAnswer) return std::nullopt;
      if (!Fill()) {
        if (h.content_length) return std::nullopt;
        break;
      }
    }
    if (h.content_length) buf_.resize(*h.content_length);
    return std::move(buf_);
  }

 private:
  Wire() = default;
  bool Fill() {
    char chunk[16384];
    long n = ssl_ ? SSL_read(ssl_, chunk, sizeof chunk) : ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buf_.append(chunk, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  std::string buf_;  // read, not yet consumed
};

}  // namespace

Result<std::string> Client::Upload(std::string_view path_and_query, const std::string& file_path,
                                   std::string_view content_type) {
  State& s = *s_;
  // Hashed first (the signature covers the digest), sent second: the file is
  // read twice and never held whole.
  auto open_file = [&]() -> Result<int> {
    int fd = ::open(file_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Fail(ErrorCode::FILE_UNREADABLE, "cannot read {}", file_path);
    return fd;
  };
  struct Fd {
    int fd;
    ~Fd() { ::close(fd); }
  };
  std::vector<char> chunk(1 << 20);
  crypto::Sha256Stream digest;
  uint64_t size = 0;
  {
    CR_ASSIGN(int fd, open_file());
    Fd closer{fd};
    for (;;) {
      ssize_t n = ::read(fd, chunk.data(), chunk.size());
      if (n < 0) return Fail(ErrorCode::FILE_UNREADABLE, "cannot read {}", file_path);
      if (n == 0) break;
      digest.Update({chunk.data(), static_cast<size_t>(n)});
      size += static_cast<uint64_t>(n);
    }
  }
  const std::string target = s.endpoint.Origin() + std::string(path_and_query);
  auto sig = http::SignDigest(*s.key, s.party, "POST", target, digest.Final(), s.clock->NowUnix(),
                              http::NewNonce());
  CR_ASSIGN(auto wire, Wire::Open(s.endpoint, s.tls_ca, s.timeout_seconds + 60));
  const std::string head = fmt::format(
      "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n"
      "Content-Digest: {}\r\nSignature-Input: {}\r\nSignature: {}\r\n"
      "Expect: 100-continue\r\nConnection: close\r\n\r\n",
      path_and_query, HostPort(s.endpoint), content_type, size, sig.content_digest,
      sig.signature_input, sig.signature);
  auto gone = [&] {
    return Fail(ErrorCode::SERVER_UNREACHABLE, "{} closed the connection before it answered the upload",
                HostPort(s.endpoint));
  };
  if (!wire->Write(head)) return gone();
  auto answer = wire->ReadHead();
  if (answer && answer->status == 100) {
    CR_ASSIGN(int fd, open_file());
    Fd closer{fd};
    uint64_t sent = 0;
    bool written = true;
    for (;;) {
      ssize_t n = ::read(fd, chunk.data(), chunk.size());
      if (n < 0) return Fail(ErrorCode::FILE_UNREADABLE, "cannot read {}", file_path);
      if (n == 0) break;
      // A file that grew since it was hashed would not match the digest.
      if (sent + static_cast<uint64_t>(n) > size) {
        return Fail(ErrorCode::FILE_UNREADABLE, "{} changed while it was being sent", file_path);
      }
      if (!(written = wire->Write({chunk.data(), static_cast<size_t>(n)}))) break;
      sent += static_cast<uint64_t>(n);
    }
    // A server that stops reading mid-body (past its limit, say) has answered
    // first: its answer is read even when the write failed.
    answer = wire->ReadHead();
    while (answer && answer->status >= 100 && answer->status < 200) answer = wire->ReadHead();
    if (!answer && !written) return gone();
  }
  if (!answer) return gone();
  auto body = wire->ReadBody(*answer);
  if (!body) return gone();
  if (answer->status >= 200 && answer->status < 300) return std::move(*body);
  return std::unexpected(ErrorFromResponse(answer->status, *body));
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
