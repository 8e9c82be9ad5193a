// The signing HTTPS client against a real TLS server on loopback: it refuses
// certificates that do not verify before sending anything, every request it
// sends verifies with the server's verifier, and error bodies come back as
// the same Error.
#include "client/client.h"

#include <gtest/gtest.h>

#include <httplib.h>

#include <atomic>
#include <memory>
#include <thread>

#include "client/tls_fixture.h"
#include "common/files.h"
#include "http/signature.h"

namespace cr::client {
namespace {

using cr::testing::TempDir;

TEST(ParseServerUrl, TakesHttpsHostAndPort) {
  auto e = ParseServerUrl("https://Room.Example.org:8443/");
  ASSERT_TRUE(e) << e.error().message;
  EXPECT_TRUE(e->tls);
  EXPECT_EQ(e->host, "room.example.org");
  EXPECT_EQ(e->port, 8443);
  EXPECT_EQ(e->Origin(), "https://room.example.org:8443");
  auto d = ParseServerUrl("https://room.example.org");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->Origin(), "https://room.example.org:443");
  auto v6 = ParseServerUrl("https://[::1]:9000");
  ASSERT_TRUE(v6) << v6.error().message;
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->Origin(), "https://[::1]:9000");
}

TEST(ParseServerUrl, PlainHttpOnlyToLoopback) {
  for (const char* ok : {"http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:80",
                         "http://127.1.2.3:5"}) {
    EXPECT_TRUE(ParseServerUrl(ok)) << ok;
  }
  for (const char* bad : {"http://10.0.0.1:8080", "http://room.example.org", "http://[::2]:80",
                          "http://127.0.0.1.evil.example:80"}) {
    auto r = ParseServerUrl(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::USAGE) << bad;
  }
}

TEST(ParseServerUrl, RefusesAnythingButSchemeHostPort) {
  for (const char* bad :
       {"", "room.example.org", "ftp://x", "https://", "https://:443", "https://h:0",
        "https://h:65536", "https://h:12ab", "https://h:", "https://h/v1", "https://h?x=1",
        "https://user@h", "https://h#f", "https://h p", "https://[::1", "https://[::1]x",
        "https://h_x"}) {
    auto r = ParseServerUrl(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::USAGE) << bad;
  }
}

TEST(PartyOfKeyFile, IsTheNameKeygenGaveTheFile) {
  EXPECT_EQ(*PartyOfKeyFile("/keys/acme.key"), "acme");
  EXPECT_EQ(*PartyOfKeyFile("newsco.key"), "newsco");
  for (const char* bad : {"/keys/acme.pub", "/keys/.key", "acme"}) {
    auto r = PartyOfKeyFile(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::USAGE);
  }
}

TEST(ErrorFromResponse, GivesBackTheServersCodeAndMessage) {
  Error e = ErrorFromResponse(403, R"({"error":"QUERY_REFUSED","message":"no row-level output"})");
  EXPECT_EQ(e.code, ErrorCode::QUERY_REFUSED);
  EXPECT_EQ(e.message, "no row-level output");
  EXPECT_EQ(ErrorFromResponse(401, R"({"error":"AUTH_REPLAYED","message":"m"})").code,
            ErrorCode::AUTH_REPLAYED);
}

TEST(ErrorFromResponse, AnythingElseIsInternalAndNotRepeated) {
  for (const char* body : {"<html>secret 42</html>", R"({"error":"NO_SUCH_CODE","message":"secret 42"})",
                           R"({"error":7,"message":"secret 42"})", R"(["secret 42"])", ""}) {
    Error e = ErrorFromResponse(502, body);
    EXPECT_EQ(e.code, ErrorCode::INTERNAL) << body;
    EXPECT_EQ(e.message.find("secret"), std::string::npos) << body;
    EXPECT_NE(e.message.find("502"), std::string::npos) << body;
  }
}

// A TLS server on 127.0.0.1 that checks every request's signature with the
// verifier `cleanroom serve` uses, and counts the requests that reached it.
class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::Init());
    tls_ = cr::testing::MakeTlsFiles(dir_.path());
    ASSERT_TRUE(crypto::WriteIdentityFiles(crypto::Identity::Generate(), dir_.path(), "acme"));
    auto pub = crypto::LoadPublic(dir_ / "acme.pub");
    ASSERT_TRUE(pub);
    acme_pub_ = *pub;
  }
  void TearDown() override { Stop(); }

  void Start(const std::string& cert, const std::string& key, bool tls = true) {
    if (tls) {
      server_ = std::make_unique<httplib::SSLServer>(cert.c_str(), key.c_str());
    } else {
      server_ = std::make_unique<httplib::Server>();
    }
    ASSERT_TRUE(server_->is_valid());
    auto handle = [this, tls](const httplib::Request& req, httplib::Response& res) {
      ++requests_;
      std::map<std::string, std::string> headers;
      for (const auto& [k, v] : req.headers) {
        std::string lower = k;
        for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        headers[lower] = v;
      }
      const std::string target = std::string(tls ? "https://" : "http://") +
                                 req.get_header_value("Host") + req.target;
      auto v = http::Verify(req.method, target, headers, req.body,
                            [this](std::string_view party) -> std::optional<crypto::PublicIdentity> {
                              if (party == "acme") return acme_pub_;
                              return std::nullopt;
                            });
      if (!v) {
        res.status = 401;
        res.set_content(nlohmann::json{{"error", CodeName(v.error().code)},
                                       {"message", v.error().message}}.dump(),
                        "application/json");
        return;
      }
      if (req.path == "/v1/refuse") {
        res.status = 403;
        res.set_content(R"({"error":"QUERY_REFUSED","message":"refused by the rules"})",
                        "application/json");
        return;
      }
      res.set_content(nlohmann::json{{"party", v->party}, {"method", req.method},
                                     {"body", req.body}, {"target", target}}.dump(),
                      "application/json");
    };
    server_->Get(".*", handle);
    server_->Post(".*", handle);
    port_ = server_->bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    while (!server_->is_running()) std::this_thread::yield();
  }
  void Stop() {
    if (server_) server_->stop();
    if (thread_.joinable()) thread_.join();
    server_.reset();
  }

  Result<Client> Connect(const std::string& ca, const std::string& scheme = "https",
                         const std::string& host = "127.0.0.1") {
    return Client::Connect({.url = scheme + "://" + host + ":" + std::to_string(port_),
                            .tls_ca = ca,
                            .key_path = dir_ / "acme.key"});
  }

  TempDir dir_;
  cr::testing::TlsFiles tls_;
  crypto::PublicIdentity acme_pub_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<int> requests_{0};
};

TEST_F(ClientTest, SignedRequestsVerifyOnTheServer) {
  Start(tls_.server_cert, tls_.server_key);
  auto c = Connect(tls_.ca_cert);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->party(), "acme");
  auto got = c->GetJson("/v1/status?x=1");
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ((*got)["party"], "acme");
  EXPECT_EQ((*got)["target"], "https://127.0.0.1:" + std::to_string(port_) + "/v1/status?x=1");
  auto posted = c->PostJson("/v1/query", {{"sql", "SELECT 1"}});
  ASSERT_TRUE(posted) << posted.error().message;
  EXPECT_EQ((*posted)["method"], "POST");
  EXPECT_EQ((*posted)["body"], R"({"sql":"SELECT 1"})");
  // Every request is signed afresh (a fresh nonce: no replay).
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(c->Get("/v1/results"));
  EXPECT_EQ(requests_.load(), 5);
}

TEST_F(ClientTest, ByNameTheCertificateMustNameTheHost) {
  Start(tls_.server_cert, tls_.server_key);
  auto c = Connect(tls_.ca_cert, "https", "localhost");
  ASSERT_TRUE(c);
  auto got = c->GetJson("/v1/status");
  ASSERT_TRUE(got) << got.error().message;
}

TEST_F(ClientTest, ACertificateFromAnotherCaIsRefusedBeforeAnythingIsSent) {
  Start(tls_.server_cert, tls_.server_key);
  auto c = Connect(tls_.other_ca_cert);
  ASSERT_TRUE(c);
  auto got = c->Post("/v1/query", R"({"sql":"SELECT 1"})", "application/json");
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, ErrorCode::TLS_UNTRUSTED);
  EXPECT_EQ(ExitCode(got.error().code), 6);
  EXPECT_EQ(requests_.load(), 0);
}

TEST_F(ClientTest, APrivateCaIsNotTrustedWithoutTlsCa) {
  Start(tls_.server_cert, tls_.server_key);
  auto c = Connect("");
  ASSERT_TRUE(c);
  auto got = c->Get("/v1/status");
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, ErrorCode::TLS_UNTRUSTED);
  EXPECT_NE(got.error().message.find("--tls-ca"), std::string::npos);
  EXPECT_EQ(requests_.load(), 0);
}

TEST_F(ClientTest, ACertificateForAnotherHostIsRefused) {
  Start(tls_.wrong_host_cert, tls_.wrong_host_key);
  auto c = Connect(tls_.ca_cert);
  ASSERT_TRUE(c);
  auto got = c->Get("/v1/status");
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, ErrorCode::TLS_UNTRUSTED);
  EXPECT_EQ(requests_.load(), 0);
}

TEST_F(ClientTest, ASelfSignedCertificateIsRefused) {
  Start(tls_.self_signed_cert, tls_.self_signed_key);
  auto c = Connect(tls_.ca_cert);
  ASSERT_TRUE(c);
  auto got = c->Get("/v1/status");
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, ErrorCode::TLS_UNTRUSTED);
  EXPECT_EQ(requests_.load(), 0);
}

TEST_F(ClientTest, ErrorBodiesComeBackAsTheSameError) {
  Start(tls_.server_cert, tls_.server_key);
  auto c = Connect(tls_.ca_cert);
  ASSERT_TRUE(c);
  auto got = c->Get("/v1/refuse");
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, ErrorCode::QUERY_REFUSED);
  EXPECT_EQ(got.error().message, "refused by the rules");
}

TEST_F(ClientTest, AnotherPartysNameIsRefusedByTheServer) {
  Start(tls_.server_cert, tls_.server_key);
  // The key of acme under another party's name: the claim does not verify.
  auto text = ReadFile(dir_ / "acme.key");
  ASSERT_TRUE(text);
  ASSERT_TRUE(WriteFileAtomic(dir_ / "newsco.key", *text, 0600));
  auto c = Client::Connect({.url = "https://127.0.0.1:" + std::to_string(port_),
                            .tls_ca = tls_.ca_cert,
                            .key_path = dir_ / "newsco.key"});
  ASSERT_TRUE(c) << c.error().message;
  auto got = c->Get("/v1/status");
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, ErrorCode::AUTH_UNKNOWN_PARTY);
}

TEST_F(ClientTest, PlainHttpToLoopbackIsSignedToo) {
  Start("", "", /*tls=*/false);
  auto c = Connect("", "http");
  ASSERT_TRUE(c);
  auto got = c->GetJson("/v1/status");
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ((*got)["party"], "acme");
}

TEST_F(ClientTest, NoServerIsUnreachable) {
  Start(tls_.server_cert, tls_.server_key);
  Stop();
  auto c = Connect(tls_.ca_cert);
  ASSERT_TRUE(c);
  auto got = c->Get("/v1/status");
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, ErrorCode::SERVER_UNREACHABLE);
}

TEST_F(ClientTest, ACaFileThatIsNotACertificateIsRefusedUpFront) {
  cr::testing::Spit(dir_ / "junk.pem", "not a certificate\n");
  auto bad = Client::Connect({.url = "https://127.0.0.1:1", .tls_ca = dir_ / "junk.pem",
                              .key_path = dir_ / "acme.key"});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::BAD_INPUT);
  auto missing = Client::Connect({.url = "https://127.0.0.1:1", .tls_ca = dir_ / "nope.pem",
                                  .key_path = dir_ / "acme.key"});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::FILE_UNREADABLE);
  auto plain = Client::Connect({.url = "http://127.0.0.1:1", .tls_ca = tls_.ca_cert,
                                .key_path = dir_ / "acme.key"});
  ASSERT_FALSE(plain);
  EXPECT_EQ(plain.error().code, ErrorCode::USAGE);
}

}  // namespace
}  // namespace cr::client
