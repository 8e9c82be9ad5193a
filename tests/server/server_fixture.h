// End-to-end fixture for `cleanroom serve`: a room made through the real
// binary, a test CA and server certificate made with the openssl command, the
// server as a child process, and a small RFC 9421 signing HTTPS client.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/env.h"
#include "crypto/crypto.h"
#include "e2e/e2e_fixture.h"
#include "http/signature.h"
#include "results/results.h"

namespace cr::testing {


struct Reply {
  int status = 0;  // 0: no HTTP answer (connection failed or closed)
  std::string body;
  std::string content_type;
  nlohmann::json json;  // parsed body when it is JSON
  std::string code() const {
    return json.is_object() && json.contains("error") && json["error"].is_string()
               ? json["error"].get<std::string>()
               : "";
  }
};

class ServerTest : public E2eTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::Init());
    // A server that refuses an upload early closes the connection while the
    // client may still be writing: an error to handle, not a signal to die of.
    ::signal(SIGPIPE, SIG_IGN);
    // The server's clock is pinned (CLEANROOM_NOW) and requests are signed
    // with the same time, so the clock window is tested without waiting.
    now_ = static_cast<long long>(std::time(nullptr));
    SetUpRoom();
    MakeTls();
  }

  void TearDown() override {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

  // A CA, and a certificate for localhost / 127.0.0.1 signed by it.
  void MakeTls() {
    std::filesystem::create_directories(P("tls"));
    Spit(P("tls/ext.cnf"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
    auto sh = [&](const std::string& cmd) {
      auto r = RunShell("cd " + Q(P("tls")) + " && " + cmd);
      ASSERT_EQ(r.exit_code, 0) << cmd << "\n" << r.err;
    };
    sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key "
       "-out ca.pem -days 2 -subj /CN=cleanroom-test-ca");
    sh("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key "
       "-out server.csr -subj /CN=localhost");
    sh("openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
       "-out server.pem -days 2 -extfile ext.cnf");
  }

  // Starts `cleanroom serve` with TLS (on a free loopback port unless `extra`
  // has --listen) and waits for its port file. `extra` adds flags.
  void StartServer(const std::string& extra = "", const std::string& env = "") {
    std::error_code ec;
    std::filesystem::remove(P("port"), ec);
    std::string cmd = "exec env CLEANROOM_NOW=" + std::to_string(now_) + " " + env + " " +
                      Q(Bin()) + " serve --room " + Q(P("room")) +
                      (extra.find("--listen") == std::string::npos ? " --listen 127.0.0.1:0" : "") +
                      " --tls-cert " + Q(P("tls/server.pem")) +
                      " --tls-key " + Q(P("tls/server.key")) + " --port-file " + Q(P("port")) +
                      " " + extra + " 2>>" + Q(P("server.log"));
    pid_ = ::fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    // Waits for the port file or the server's exit, whichever comes first.
    for (;;) {
      if (std::filesystem::exists(P("port"))) break;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        FAIL() << "the server exited before listening:\n" << Slurp(P("server.log"));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    port_ = std::stoi(Slurp(P("port")));
  }

  // SIGTERM, then the exit code.
  int StopServer(int sig = SIGTERM) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, sig);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  std::string Base() const { return "https://127.0.0.1:" + std::to_string(port_); }

  crypto::Identity Key(const std::string& party) {
    auto id = crypto::Identity::Load(P("keys/" + party + ".key"));
    EXPECT_TRUE(id) << party;
    return std::move(*id);
  }

  std::unique_ptr<httplib::SSLClient> Client() {
    auto cli = std::make_unique<httplib::SSLClient>("127.0.0.1", port_);
    cli->set_ca_cert_path(P("tls/ca.pem").c_str());
    cli->enable_server_certificate_verification(true);
    cli->set_connection_timeout(30, 0);
    cli->set_read_timeout(600, 0);
    cli->set_write_timeout(600, 0);
    return cli;
  }

  static Reply ToReply(const httplib::Result& res) {
    Reply r;
    if (!res) return r;
    r.status = res->status;
    r.body = res->body;
    r.content_type = res->get_header_value("Content-Type");
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    if (!j.is_discarded()) r.json = std::move(j);
    return r;
  }

  // The signature headers for a request as the client sends it.
  httplib::Headers SignedHeaders(const crypto::Identity& key, const std::string& party,
                                 const std::string& method, const std::string& path,
                                 const std::string& body, std::optional<long long> created = {},
                                 const std::string& nonce = "") {
    auto h = http::Sign(key, party, method, Base() + path, body, created.value_or(now_),
                        nonce.empty() ? http::NewNonce() : nonce);
    return {{"Content-Digest", h.content_digest},
            {"Signature-Input", h.signature_input},
            {"Signature", h.signature}};
  }

  Reply Send(const std::string& method, const std::string& path, const std::string& body,
             const httplib::Headers& headers,
             const std::string& content_type = "application/json") {
    auto cli = Client();
    if (method == "GET") return ToReply(cli->Get(path.c_str(), headers));
    return ToReply(cli->Post(path.c_str(), headers, body, content_type.c_str()));
  }

  // A correctly signed request from `party`.
  Reply Call(const std::string& party, const std::string& method, const std::string& path,
             const std::string& body = "",
             const std::string& content_type = "application/json") {
    auto key = Key(party);
    return Send(method, path, body, SignedHeaders(key, party, method, path, body), content_type);
  }

  // Opens the caller's sealed box from a /v1/query or /v1/results/{id} reply.
  nlohmann::json Open(const std::string& party, const Reply& r) {
    auto sealed = crypto::Base64Decode(r.json["sealed"].get<std::string>());
    EXPECT_TRUE(sealed);
    auto rs = results::OpenSealed(*sealed, r.json["result_id"].get<std::string>(), Key(party));
    EXPECT_TRUE(rs) << (rs ? "" : rs.error().ToString());
    return rs ? results::ToJson(*rs) : nlohmann::json();
  }

  // Both datasets prepared from the generated CSVs (`tag` names the files).
  void PreparePackages(const std::string& tag) {
    auto a = Prepare("impressions", P("impressions.csv"), "keys/newsco.key", "imp-" + tag + ".crpkg");
    ASSERT_EQ(a.exit_code, 0) << a.err;
    auto b = Prepare("purchases", P("purchases.csv"), "keys/acme.key", "pur-" + tag + ".crpkg");
    ASSERT_EQ(b.exit_code, 0) << b.err;
  }

  Reply Upload(const std::string& party, const std::string& file) {
    return Call(party, "POST", "/v1/packages", Slurp(P(file)), "application/octet-stream");
  }

  size_t AuditLines() {
    std::string log = Slurp(P("room/audit.log"));
    return static_cast<size_t>(std::count(log.begin(), log.end(), '\n'));
  }

  // Files a crash could leave: atomic-write and upload temporaries.
  std::vector<std::string> Leftovers() {
    std::vector<std::string> out;
    for (auto& e : std::filesystem::recursive_directory_iterator(P("room"))) {
      std::string rel = std::filesystem::relative(e.path(), P("room")).string();
      if (rel.find(".tmp-") != std::string::npos) out.push_back(rel);
    }
    return out;
  }

  long long now_ = 0;
  pid_t pid_ = -1;
  int port_ = 0;
};

// A raw TLS connection for what httplib's client will not do: stall
// mid-request, send a body in pieces.
class RawTls {
 public:
  RawTls(int port, const std::string& ca) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(ctx_, ca.c_str(), nullptr);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return;
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    SSL_set1_host(ssl_, "127.0.0.1");
    ok_ = SSL_connect(ssl_) == 1;
  }
  ~RawTls() {
    if (ssl_) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
    SSL_CTX_free(ctx_);
  }
  bool ok() const { return ok_; }
  bool Write(const std::string& data) {
    return SSL_write(ssl_, data.data(), static_cast<int>(data.size())) == static_cast<int>(data.size());
  }
  // Everything until the server closes (or the status line and body arrive).
  std::string ReadAll() {
    std::string out;
    char buf[4096];
    for (;;) {
      int n = SSL_read(ssl_, buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

 private:
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  bool ok_ = false;
};

// The status code of a raw HTTP response ("HTTP/1.1 408 ...").
inline int StatusOf(const std::string& response) {
  if (response.size() < 12 || !response.starts_with("HTTP/1.1 ")) return 0;
  return std::stoi(response.substr(9, 3));
}

inline nlohmann::json BodyOf(const std::string& response) {
  auto at = response.find("\r\n\r\n");
  if (at == std::string::npos) return nullptr;
  return nlohmann::json::parse(response.substr(at + 4), nullptr, false);
}

}  // namespace cr::testing
