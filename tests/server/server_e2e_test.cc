// `cleanroom serve` end to end over loopback with real TLS: every route, every
// authentication failure, abilities, limits, concurrency, shutdown and crashes.
#include <sys/file.h>

#include <atomic>
#include <map>
#include <sstream>
#include <set>
#include <thread>

#include <yaml-cpp/yaml.h>

#include "common/files.h"
#include "server/server.h"
#include "server/server_fixture.h"

namespace cr::testing {
namespace {

using nlohmann::json;

constexpr const char* kCampaignSql =
    "SELECT campaign, COUNT(DISTINCT email) AS people FROM impressions GROUP BY campaign";

std::string QueryBody(const std::string& sql) { return json{{"sql", sql}}.dump(); }

class ServeTest : public ServerTest {
 protected:
  // A room holding both datasets, served.
  void SetUpData() {
    Generate();
    PreparePackages("v1");
    StartServer();
    ASSERT_EQ(Upload("newsco", "imp-v1.crpkg").status, 200);
    ASSERT_EQ(Upload("acme", "pur-v1.crpkg").status, 200);
  }

  // Asserts a refusal over the wire: status, code, and (for 401/403) one more
  // audit line naming the code, and nothing else in the room changed.
  void ExpectRefusal(const Reply& r, int status, const std::string& code) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(r.code(), code) << r.body;
    EXPECT_TRUE(r.json.contains("message")) << r.body;
  }
};

TEST_F(ServeTest, HealthAndMetricsAreUnsignedEverythingElseIsNot) {
  StartServer();
  auto cli = Client();
  auto health = ToReply(cli->Get("/v1/health"));
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.json["status"], "ok");
  EXPECT_EQ(health.json["version"], CLEANROOM_VERSION);
  for (const auto& route : server::Routes()) {
    if (!route.signed_request) continue;
    std::string path = route.path;
    if (auto at = path.find("{id}"); at != std::string::npos) path.replace(at, 4, std::string(32, 'a'));
    if (auto at = path.find("{name}"); at != std::string::npos) path.replace(at, 6, "conversions_by_campaign");
    size_t before = AuditLines();
    auto r = Send(route.method, path, "{}", {});
    ExpectRefusal(r, 401, "AUTH_MISSING");
    EXPECT_EQ(AuditLines(), before + 1) << route.path;  // every refusal is audited
  }
}

TEST_F(ServeTest, StatusAndDatasetsAreTheCliJson) {
  Generate();
  PreparePackages("v1");
  ASSERT_EQ(Ingest(P("imp-v1.crpkg")).exit_code, 0);
  // What the local commands print, before the server holds the room.
  auto status = Ok("--room " + Q(P("room")) + " --format json status");
  auto datasets = Ok("--room " + Q(P("room")) + " --format json datasets");
  auto budget = Ok("--room " + Q(P("room")) + " --format json budget");
  StartServer();
  auto s = Call("acme", "GET", "/v1/status");
  ASSERT_EQ(s.status, 200) << s.body;
  std::string spec = Slurp(P("room/spec.yaml"));
  EXPECT_EQ(s.json["spec_yaml"], spec);
  EXPECT_EQ(s.json["spec_sha256"], ToHex(crypto::Sha256(spec)));
  json cli_status = json::parse(status.out);
  json served = s.json;
  served.erase("spec_yaml");
  served.erase("spec_sha256");
  EXPECT_EQ(served, cli_status);
  EXPECT_EQ(s.json["active"], true);
  auto d = Call("newsco", "GET", "/v1/datasets");
  ASSERT_EQ(d.status, 200);
  EXPECT_EQ(d.body, datasets.out);  // byte for byte
  EXPECT_EQ(d.body.find("@"), std::string::npos);  // metadata only: no e-mail values
  auto b = Call("acme", "GET", "/v1/budget");
  ASSERT_EQ(b.status, 200) << b.body;
  // The budget JSON plus "periods" (for the client's table).
  json served_budget = json::parse(b.body);
  ASSERT_TRUE(served_budget.contains("periods")) << b.body;
  served_budget.erase("periods");
  EXPECT_EQ(served_budget, json::parse(budget.out));
}

TEST_F(ServeTest, UploadQueryResultsAuditAndRoomPub) {
  SetUpData();
  auto q = Call("acme", "POST", "/v1/query", QueryBody(kCampaignSql));
  ASSERT_EQ(q.status, 200) << q.body;
  EXPECT_TRUE(q.json["caller_receives"]);
  EXPECT_EQ(q.json["receivers"], json({"acme", "newsco"}));
  json opened = Open("acme", q);
  EXPECT_EQ(opened["result_id"], q.json["result_id"]);
  EXPECT_FALSE(opened["rows"].empty());
  // The wire holds no plaintext rows: a campaign name is not in the reply.
  std::string campaign = opened["rows"][0][0].get<std::string>();
  EXPECT_EQ(q.body.find(campaign), std::string::npos);

  // Sealed to newsco too: only newsco's key opens newsco's copy.
  const std::string id = q.json["result_id"];
  auto copy = Call("newsco", "GET", "/v1/results/" + id);
  ASSERT_EQ(copy.status, 200) << copy.body;
  EXPECT_EQ(Open("newsco", copy), opened);
  auto sealed = crypto::Base64Decode(copy.json["sealed"].get<std::string>());
  EXPECT_EQ(results::OpenSealed(*sealed, id, Key("acme")).error().code, ErrorCode::TAMPERED);

  auto list = Call("acme", "GET", "/v1/results");
  ASSERT_EQ(list.status, 200);
  ASSERT_EQ(list.json["results"].size(), 1u);
  EXPECT_EQ(list.json["results"][0]["result_id"], id);
  EXPECT_EQ(list.json["results"][0]["requested_by"], "acme");

  auto missing = Call("acme", "GET", "/v1/results/" + std::string(32, 'b'));
  ExpectRefusal(missing, 404, "RESULT_NOT_FOUND");

  // The template, with a parameter.
  auto t = Call("acme", "POST", "/v1/templates/conversions_by_campaign/run",
                json{{"params", {{"since", "2020-01-01"}}}, {"receivers", {"acme"}}}.dump());
  ASSERT_EQ(t.status, 200) << t.body;
  EXPECT_EQ(t.json["receivers"], json({"acme"}));
  EXPECT_EQ(Open("acme", t)["result_id"], t.json["result_id"]);
  auto bad_template = Call("acme", "POST", "/v1/templates/nope/run", "{}");
  ExpectRefusal(bad_template, 400, "BAD_INPUT");

  auto pub = Call("newsco", "GET", "/v1/room.pub");
  EXPECT_EQ(pub.status, 200);
  EXPECT_EQ(pub.body, Slurp(P("room/room.pub")));
  auto budget = Call("acme", "GET", "/v1/budget");
  EXPECT_EQ(budget.status, 200) << budget.body;
  auto doc = Call("acme", "GET", "/v1/openapi.yaml");
  EXPECT_EQ(doc.status, 200);
  EXPECT_EQ(doc.body, Slurp(std::string(CLEANROOM_SOURCE_DIR) + "/docs/api/openapi.yaml"));

  // The audit log over the wire verifies against room.pub, away from the room.
  auto audit = Call("newsco", "GET", "/v1/audit");
  ASSERT_EQ(audit.status, 200);
  EXPECT_EQ(audit.content_type, "application/x-ndjson");
  std::filesystem::create_directories(P("copy"));
  Spit(P("copy/audit.log"), audit.body);
  Spit(P("copy/room.pub"), pub.body);
  EXPECT_NE(audit.body.find("\"event\":\"query.run\""), std::string::npos);
  EXPECT_NE(audit.body.find("\"event\":\"dataset.ingest\""), std::string::npos);
  EXPECT_EQ(audit.body.find(campaign), std::string::npos);  // no values in the log
  EXPECT_EQ(StopServer(), 0);
  Ok("audit verify --room " + Q(P("room")));

  // The server's log: JSON lines without SQL or values.
  std::string log = Slurp(P("server.log"));
  EXPECT_NE(log.find("\"route\":\"/v1/query\""), std::string::npos);
  EXPECT_EQ(log.find("COUNT(DISTINCT"), std::string::npos);
  EXPECT_EQ(log.find(campaign), std::string::npos);
}

TEST_F(ServeTest, MetricsCountRequestsAndRefusals) {
  StartServer();
  ASSERT_EQ(Call("acme", "GET", "/v1/status").status, 200);
  ASSERT_EQ(Send("GET", "/v1/status", "", {}).status, 401);
  auto m = ToReply(Client()->Get("/v1/metrics"));
  ASSERT_EQ(m.status, 200);
  EXPECT_NE(m.body.find("cleanroom_http_requests_total{route=\"/v1/status\",method=\"GET\",status=\"200\"} 1"),
            std::string::npos) << m.body;
  EXPECT_NE(m.body.find("cleanroom_http_refusals_total{code=\"AUTH_MISSING\"} 1"), std::string::npos);
  EXPECT_NE(m.body.find("cleanroom_http_request_duration_seconds_count 2"), std::string::npos);
}

TEST_F(ServeTest, EveryAuthenticationFailureIsRefusedAndAudited) {
  StartServer();
  auto acme = Key("acme");
  auto newsco = Key("newsco");
  const std::string body = QueryBody(kCampaignSql);
  struct Case {
    std::string name;
    std::function<Reply()> send;
    std::string code;
  };
  auto signed_for = [&](const std::string& path, const std::string& signed_body) {
    return SignedHeaders(acme, "acme", "POST", path, signed_body);
  };
  std::vector<Case> cases = {
      {"tampered body", [&] { return Send("POST", "/v1/query", body + " ", signed_for("/v1/query", body)); },
       "AUTH_DIGEST_MISMATCH"},
      {"tampered path",
       [&] { return Send("POST", "/v1/templates/conversions_by_campaign/run", body, signed_for("/v1/query", body)); },
       "AUTH_BAD_SIGNATURE"},
      {"tampered query string",
       [&] { return Send("POST", "/v1/query?x=1", body, signed_for("/v1/query", body)); },
       "AUTH_BAD_SIGNATURE"},
      {"tampered digest header",
       [&] {
         auto h = signed_for("/v1/query", body);
         h.erase("Content-Digest");
         h.emplace("Content-Digest", http::ContentDigest(body + " "));
         return Send("POST", "/v1/query", body + " ", h);
       },
       "AUTH_BAD_SIGNATURE"},
      {"tampered method",
       [&] { return Send("GET", "/v1/status", "", SignedHeaders(acme, "acme", "POST", "/v1/status", "")); },
       "AUTH_BAD_SIGNATURE"},
      {"wrong key", [&] { return Send("GET", "/v1/status", "", SignedHeaders(newsco, "acme", "GET", "/v1/status", "")); },
       "AUTH_BAD_SIGNATURE"},
      {"unknown party",
       [&] { return Send("GET", "/v1/status", "", SignedHeaders(acme, "initech", "GET", "/v1/status", "")); },
       "AUTH_UNKNOWN_PARTY"},
      {"expired", [&] { return Send("GET", "/v1/status", "", SignedHeaders(acme, "acme", "GET", "/v1/status", "", now_ - 301)); },
       "AUTH_EXPIRED"},
      {"from the future",
       [&] { return Send("GET", "/v1/status", "", SignedHeaders(acme, "acme", "GET", "/v1/status", "", now_ + 301)); },
       "AUTH_EXPIRED"},
      {"malformed", [&] {
         auto h = SignedHeaders(acme, "acme", "GET", "/v1/status", "");
         h.erase("Signature-Input");
         h.emplace("Signature-Input", "sig1=(\"@method\");created=1");
         return Send("GET", "/v1/status", "", h);
       },
       "AUTH_MALFORMED"},
      {"another host", [&] {
         auto h = SignedHeaders(acme, "acme", "GET", "/v1/status", "");
         h.emplace("Host", "evil.example:" + std::to_string(port_));
         return Send("GET", "/v1/status", "", h);
       },
       "AUTH_MALFORMED"},
  };
  auto room_before = Snapshot(P("room"), "audit.log");
  for (const auto& c : cases) {
    size_t before = AuditLines();
    Reply r = c.send();
    EXPECT_EQ(r.status, 401) << c.name << ": " << r.body;
    EXPECT_EQ(r.code(), c.code) << c.name << ": " << r.body;
    EXPECT_EQ(AuditLines(), before + 1) << c.name;
    std::string log = Slurp(P("room/audit.log"));
    EXPECT_NE(log.rfind("\"code\":\"" + c.code + "\""), std::string::npos) << c.name;
    EXPECT_EQ(log.find("COUNT(DISTINCT"), std::string::npos) << c.name;  // never the body
  }
  // The window edges are inside: 300 s either way is accepted.
  EXPECT_EQ(Send("GET", "/v1/status", "", SignedHeaders(acme, "acme", "GET", "/v1/status", "", now_ - 300)).status, 200);
  EXPECT_EQ(Send("GET", "/v1/status", "", SignedHeaders(acme, "acme", "GET", "/v1/status", "", now_ + 300)).status, 200);
  // Nothing but the nonce record and the log changed: no result was made.
  auto room_after = Snapshot(P("room"), "audit.log");
  room_after.erase("nonces.log");
  room_before.erase("nonces.log");
  EXPECT_EQ(room_after, room_before);
}

TEST_F(ServeTest, AReplayIsRefusedAlsoAfterARestart) {
  StartServer();
  auto acme = Key("acme");
  auto h = SignedHeaders(acme, "acme", "GET", "/v1/status", "", now_, "bm9uY2Utb25jZQ");
  EXPECT_EQ(Send("GET", "/v1/status", "", h).status, 200);
  auto again = Send("GET", "/v1/status", "", h);
  ExpectRefusal(again, 401, "AUTH_REPLAYED");
  // The same nonce on another route is the same replay.
  auto other = SignedHeaders(acme, "acme", "GET", "/v1/datasets", "", now_, "bm9uY2Utb25jZQ");
  ExpectRefusal(Send("GET", "/v1/datasets", "", other), 401, "AUTH_REPLAYED");
  // Restarted on the same address, so the signed URI is the same.
  const std::string same = "--listen 127.0.0.1:" + std::to_string(port_);
  ASSERT_EQ(StopServer(), 0);
  StartServer(same);
  ExpectRefusal(Send("GET", "/v1/status", "", h), 401, "AUTH_REPLAYED");
  // And after a crash.
  ASSERT_EQ(StopServer(SIGKILL), 128 + SIGKILL);
  StartServer(same);
  ExpectRefusal(Send("GET", "/v1/status", "", h), 401, "AUTH_REPLAYED");
  // A nonce is remembered only while its request could pass the clock check:
  // once the server's clock has moved past the window, the record is pruned
  // and the old request is refused as expired instead.
  ASSERT_EQ(StopServer(), 0);
  now_ += 1000;
  StartServer(same);
  ExpectRefusal(Send("GET", "/v1/status", "", h), 401, "AUTH_EXPIRED");
  EXPECT_EQ(Slurp(P("room/nonces.log")).find("bm9uY2Utb25jZQ"), std::string::npos);
}

TEST_F(ServeTest, AbilitiesAndOwnershipAreEnforced) {
  Generate();
  PreparePackages("v1");
  StartServer();
  // acme may not hand in newsco's package, even though newsco signed it.
  size_t before = AuditLines();
  auto wrong = Upload("acme", "imp-v1.crpkg");
  ExpectRefusal(wrong, 403, "WRONG_SIGNER");
  EXPECT_EQ(AuditLines(), before + 1);
  ASSERT_EQ(Upload("newsco", "imp-v1.crpkg").status, 200);
  // The same package again is a replay of the package, as ingest says.
  ExpectRefusal(Upload("newsco", "imp-v1.crpkg"), 409, "PACKAGE_REPLAYED");
  // newsco has no query ability: 403, audited by the query path.
  before = AuditLines();
  auto q = Call("newsco", "POST", "/v1/query", QueryBody(kCampaignSql));
  ExpectRefusal(q, 403, "NOT_AUTHORIZED");
  EXPECT_EQ(AuditLines(), before + 1);
  EXPECT_NE(Slurp(P("room/audit.log")).find("\"event\":\"query.refused\""), std::string::npos);
  // A result not sealed to the caller.
  ASSERT_EQ(Upload("acme", "pur-v1.crpkg").status, 200);
  auto only_acme = Call("acme", "POST", "/v1/query",
                        json{{"sql", kCampaignSql}, {"receivers", {"acme"}}}.dump());
  ASSERT_EQ(only_acme.status, 200) << only_acme.body;
  auto get = Call("newsco", "GET", "/v1/results/" + only_acme.json["result_id"].get<std::string>());
  ExpectRefusal(get, 403, "NOT_AUTHORIZED");
  // A receiver the rules do not allow (purchases go to acme only).
  auto narrowed = Call("acme", "POST", "/v1/query",
                       json{{"sql", "SELECT day, SUM(amount) AS total FROM purchases GROUP BY day"},
                            {"receivers", {"newsco"}}}.dump());
  ExpectRefusal(narrowed, 403, "QUERY_REFUSED");
  // A query the caller receives nothing of: the id and receivers, no box.
  auto not_mine = Call("acme", "POST", "/v1/query",
                       json{{"sql", kCampaignSql}, {"receivers", {"newsco"}}}.dump());
  ASSERT_EQ(not_mine.status, 200) << not_mine.body;
  EXPECT_FALSE(not_mine.json["caller_receives"]);
  EXPECT_TRUE(not_mine.json["sealed"].is_null());
}

TEST_F(ServeTest, MalformedAndOversizedRequestsChangeNothing) {
  StartServer("--max-body 4096 --max-upload 2048");
  auto before = Snapshot(P("room"), "audit.log");
  size_t lines = AuditLines();
  for (const std::string& body : {std::string("{not json"), std::string("[1]"),
                                  json{{"sql", 5}}.dump(), json{{"sql", kCampaignSql}, {"x", 1}}.dump(),
                                  json{{"receivers", {"acme"}}}.dump(),
                                  json{{"sql", kCampaignSql}, {"receivers", {1}}}.dump()}) {
    ExpectRefusal(Call("acme", "POST", "/v1/query", body), 400, "BAD_INPUT");
  }
  ExpectRefusal(Call("acme", "POST", "/v1/query", json{{"sql", kCampaignSql}, {"epsilon", -1}}.dump()),
                400, "USAGE");
  ExpectRefusal(Call("acme", "POST", "/v1/query", QueryBody(std::string(5000, ' ') + kCampaignSql)), 413,
                "BODY_TOO_LARGE");
  ExpectRefusal(Call("newsco", "POST", "/v1/packages", std::string(3000, 'x'), "application/octet-stream"),
                413, "BODY_TOO_LARGE");
  // A GET with a body past --max-body is refused before it is read.
  {
    auto cli = Client();
    auto r = ToReply(cli->Get("/v1/status", {{"Content-Length", "5000"}}));
    ExpectRefusal(r, 413, "BODY_TOO_LARGE");
  }
  // An unknown route is an error body too.
  ExpectRefusal(Call("acme", "GET", "/v1/nothing"), 400, "NOT_SUPPORTED");
  // Not a package at all: refused by ingest, which audits it.
  ExpectRefusal(Call("newsco", "POST", "/v1/packages", std::string(100, 'x'), "application/octet-stream"),
                400, "BAD_INPUT");
  auto after = Snapshot(P("room"), "audit.log");
  after.erase("nonces.log");
  before.erase("nonces.log");
  EXPECT_EQ(after, before);
  EXPECT_EQ(AuditLines(), lines + 1);  // the ingest refusal only
  EXPECT_TRUE(Leftovers().empty());
  EXPECT_TRUE(std::filesystem::is_empty(P("room/incoming")));
}

TEST_F(ServeTest, ASlowClientGets408AndNothingChanges) {
  StartServer("--read-timeout 1");
  auto before = Snapshot(P("room"), "audit.log");
  {
    RawTls raw(port_, P("tls/ca.pem"));
    ASSERT_TRUE(raw.ok());
    ASSERT_TRUE(raw.Write("POST /v1/query HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port_) +
                          "\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"sql\":"));
    std::string response = raw.ReadAll();  // the server gives up on the rest
    EXPECT_EQ(StatusOf(response), 408) << response;
    EXPECT_EQ(BodyOf(response)["error"], "REQUEST_TIMEOUT") << response;
  }
  {
    // A signed upload that stalls: the partial package is removed.
    auto key = Key("newsco");
    std::string pkg(1500, 'p');
    auto h = http::Sign(key, "newsco", "POST", Base() + "/v1/packages", pkg, now_, http::NewNonce());
    RawTls raw(port_, P("tls/ca.pem"));
    ASSERT_TRUE(raw.ok());
    ASSERT_TRUE(raw.Write("POST /v1/packages HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port_) +
                          "\r\nContent-Type: application/octet-stream\r\nContent-Length: 1500\r\n"
                          "Content-Digest: " + h.content_digest + "\r\nSignature-Input: " +
                          h.signature_input + "\r\nSignature: " + h.signature + "\r\n\r\n" +
                          pkg.substr(0, 700)));
    std::string response = raw.ReadAll();
    EXPECT_EQ(StatusOf(response), 408) << response;
  }
  {
    // A client that stalls in its headers (the request line sent, half the
    // header lines): 408 with the error body too, and the connection closed.
    RawTls raw(port_, P("tls/ca.pem"));
    ASSERT_TRUE(raw.ok());
    ASSERT_TRUE(raw.Write("POST /v1/query HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port_) +
                          "\r\nContent-Type: appl"));
    std::string response = raw.ReadAll();
    EXPECT_EQ(StatusOf(response), 408) << response;
    EXPECT_EQ(BodyOf(response)["error"], "REQUEST_TIMEOUT") << response;
  }
  {
    // One that stalls inside its request line is not answered: cpp-httplib
    // closes the connection without calling any handler (docs/server.md).
    RawTls raw(port_, P("tls/ca.pem"));
    ASSERT_TRUE(raw.ok());
    ASSERT_TRUE(raw.Write("POST /v1/qu"));
    EXPECT_EQ(raw.ReadAll(), "");
  }
  {
    // A malformed request line arriving at once is still BAD_INPUT, not a timeout.
    RawTls raw(port_, P("tls/ca.pem"));
    ASSERT_TRUE(raw.ok());
    ASSERT_TRUE(raw.Write("NONSENSE\r\n\r\n"));
    std::string response = raw.ReadAll();
    EXPECT_EQ(StatusOf(response), 400) << response;
    EXPECT_EQ(BodyOf(response)["error"], "BAD_INPUT") << response;
  }
  auto after = Snapshot(P("room"), "audit.log");
  after.erase("nonces.log");
  before.erase("nonces.log");
  EXPECT_EQ(after, before);
  EXPECT_TRUE(Leftovers().empty());
}

TEST_F(ServeTest, PlainHttpOnlyOnLoopbackAndTheRoomIsHeld) {
  auto r = Run("serve --room " + Q(P("room")) + " --listen 0.0.0.0:0");
  ExpectRefused(r, 2, "USAGE");
  EXPECT_NE(r.err.find("--tls-cert"), std::string::npos);
  ExpectRefused(Run("serve --room " + Q(P("room")) + " --listen 10.1.2.3:8443"), 2, "USAGE");
  ExpectRefused(Run("serve --room " + Q(P("room")) + " --listen nonsense"), 2, "USAGE");
  ExpectRefused(Run("serve --room " + Q(P("room")) + " --listen 127.0.0.1:0 --tls-cert " +
                    Q(P("tls/server.pem"))),
                2, "USAGE");
  // While serving, the room is held: the room lock local commands take is busy.
  StartServer();
  EXPECT_EQ(ToReply(Client()->Get("/v1/health")).status, 200);
  int fd = ::open(P("room").c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(fd, 0);
  EXPECT_NE(::flock(fd, LOCK_EX | LOCK_NB), 0);
  // Inspection does not need the lock.
  Ok("--room " + Q(P("room")) + " status");
  EXPECT_EQ(StopServer(), 0);  // SIGTERM: a clean exit
  EXPECT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);  // and the room is free again
  ::close(fd);
  EXPECT_NE(Slurp(P("server.log")).find("\"event\":\"stopped\""), std::string::npos);
}

TEST_F(ServeTest, SigtermLetsTheRequestInFlightFinish) {
  SetUpData();
  std::string sql = "SELECT t0.campaign, COUNT(DISTINCT t0.email) AS people FROM impressions t0";
  for (int i = 1; i < 3; ++i) sql += fmt::format(" JOIN impressions t{} ON t{}.email = t{}.email", i, i - 1, i);
  sql += " GROUP BY t0.campaign";
  Reply reply;
  const size_t recorded = Slurp(P("room/nonces.log")).size();
  std::thread client([&] { reply = Call("acme", "POST", "/v1/query", QueryBody(sql)); });
  // Once the request is in the server (its nonce recorded), ask it to stop.
  while (Slurp(P("room/nonces.log")).size() == recorded) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::kill(pid_, SIGTERM);
  client.join();
  EXPECT_EQ(reply.status, 200) << reply.body;
  EXPECT_FALSE(Open("acme", reply).is_null());
  EXPECT_EQ(StopServer(0), 0);  // already stopping: waits for the exit
  Ok("audit verify --room " + Q(P("room")));
}

TEST_F(ServeTest, SixteenClientsQueryWhileTwoPartiesUpload) {
  Generate();
  PreparePackages("v1");
  PreparePackages("v2");  // the same data, new packages: answers stay exact
  ASSERT_EQ(Ingest(P("imp-v1.crpkg")).exit_code, 0);
  ASSERT_EQ(Ingest(P("pur-v1.crpkg")).exit_code, 0);
  auto expected = Ok("--room " + Q(P("room")) + " --key " + Q(P("keys/acme.key")) +
                     " --format json query --sql " + Q(kCampaignSql));
  json want = json::parse(expected.out);
  StartServer("--threads 8");

  constexpr int kClients = 16, kQueriesEach = 3;
  std::vector<std::thread> threads;
  std::vector<std::vector<Reply>> replies(kClients);
  std::vector<Reply> uploads(2);
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      for (int i = 0; i < kQueriesEach; ++i) {
        replies[c].push_back(Call("acme", "POST", "/v1/query", QueryBody(kCampaignSql)));
      }
    });
  }
  threads.emplace_back([&] { uploads[0] = Upload("newsco", "imp-v2.crpkg"); });
  threads.emplace_back([&] { uploads[1] = Upload("acme", "pur-v2.crpkg"); });
  for (auto& t : threads) t.join();

  EXPECT_EQ(uploads[0].status, 200) << uploads[0].body;
  EXPECT_EQ(uploads[1].status, 200) << uploads[1].body;
  std::set<std::string> ids;
  for (const auto& per_client : replies) {
    for (const auto& r : per_client) {
      ASSERT_EQ(r.status, 200) << r.body;
      json got = Open("acme", r);
      // Without ORDER BY the row order is the engine's: compare as sets.
      auto rows = got["rows"].get<std::vector<json>>();
      auto want_rows = want["rows"].get<std::vector<json>>();
      std::sort(rows.begin(), rows.end());
      std::sort(want_rows.begin(), want_rows.end());
      EXPECT_EQ(rows, want_rows);
      EXPECT_EQ(got["withheld_rows"], want["withheld_rows"]);
      ids.insert(r.json["result_id"].get<std::string>());
    }
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(kClients * kQueriesEach));  // never reused
  EXPECT_EQ(StopServer(), 0);

  // Every release and both ingests are in the log exactly once, and it verifies.
  Ok("audit verify --room " + Q(P("room")));
  std::string log = Slurp(P("room/audit.log"));
  for (const auto& id : ids) {
    size_t first = log.find(id);
    ASSERT_NE(first, std::string::npos);
    size_t runs = 0;
    for (size_t at = log.find("\"event\":\"query.run\""); at != std::string::npos;
         at = log.find("\"event\":\"query.run\"", at + 1)) {
      size_t line_start = log.rfind('\n', at) + 1;
      size_t line_end = log.find('\n', at);
      if (log.substr(line_start, line_end - line_start).find(id) != std::string::npos) ++runs;
    }
    EXPECT_EQ(runs, 1u) << id;
  }
  auto datasets = json::parse(Ok("--room " + Q(P("room")) + " --format json datasets").out);
  for (const auto& d : datasets["datasets"]) EXPECT_EQ(d["contributions"], 2) << d;
}

TEST_F(ServeTest, KillNineDuringAnUploadLeavesAConsistentRoom) {
  Generate();
  PreparePackages("v1");
  StartServer();
  ASSERT_EQ(Upload("newsco", "imp-v1.crpkg").status, 200);
  auto datasets_before = Call("acme", "GET", "/v1/datasets").body;
  std::string pkg = Slurp(P("pur-v1.crpkg"));
  auto h = http::Sign(Key("acme"), "acme", "POST", Base() + "/v1/packages", pkg, now_, http::NewNonce());
  {
    RawTls raw(port_, P("tls/ca.pem"));
    ASSERT_TRUE(raw.ok());
    ASSERT_TRUE(raw.Write("POST /v1/packages HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port_) +
                          "\r\nContent-Type: application/octet-stream\r\nContent-Length: " +
                          std::to_string(pkg.size()) + "\r\nContent-Digest: " + h.content_digest +
                          "\r\nSignature-Input: " + h.signature_input + "\r\nSignature: " +
                          h.signature + "\r\n\r\n" + pkg.substr(0, pkg.size() / 2)));
    // Mid-upload: the partial package is in the room's incoming folder.
    while (!std::filesystem::exists(P("room/incoming")) || std::filesystem::is_empty(P("room/incoming"))) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_EQ(StopServer(SIGKILL), 128 + SIGKILL);
  }
  EXPECT_FALSE(std::filesystem::is_empty(P("room/incoming")));
  StartServer();
  EXPECT_TRUE(std::filesystem::is_empty(P("room/incoming")));
  EXPECT_TRUE(Leftovers().empty());
  EXPECT_EQ(Call("acme", "GET", "/v1/datasets").body, datasets_before);
  // The upload works once sent again.
  ASSERT_EQ(Upload("acme", "pur-v1.crpkg").status, 200);
  ASSERT_EQ(StopServer(), 0);
  Ok("audit verify --room " + Q(P("room")));
}

TEST_F(ServeTest, KillNineDuringAQueryLeavesAConsistentRoom) {
  SetUpData();
  // A query heavy enough to be running when the server is killed.
  std::string sql = "SELECT t0.campaign, COUNT(DISTINCT t0.email) AS people FROM impressions t0";
  for (int i = 1; i < 6; ++i) sql += fmt::format(" JOIN impressions t{} ON t{}.email = t{}.email", i, i - 1, i);
  sql += " GROUP BY t0.campaign";
  const size_t recorded = Slurp(P("room/nonces.log")).size();
  std::thread client([&] { (void)Call("acme", "POST", "/v1/query", QueryBody(sql)); });
  // Waits until the request has reached the server (its nonce is recorded).
  while (Slurp(P("room/nonces.log")).size() == recorded) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ASSERT_EQ(StopServer(SIGKILL), 128 + SIGKILL);
  client.join();
  StartServer();
  EXPECT_TRUE(Leftovers().empty());
  auto q = Call("acme", "POST", "/v1/query", QueryBody(kCampaignSql));
  ASSERT_EQ(q.status, 200) << q.body;
  // Every listed result opens: nothing half-released survived.
  auto list = Call("acme", "GET", "/v1/results");
  for (const auto& m : list.json["results"]) {
    auto r = Call("acme", "GET", "/v1/results/" + m["result_id"].get<std::string>());
    ASSERT_EQ(r.status, 200);
    EXPECT_FALSE(Open("acme", r).is_null());
  }
  ASSERT_EQ(StopServer(), 0);
  Ok("audit verify --room " + Q(P("room")));
}

TEST(OpenApiTest, TheDocumentedRoutesAreTheServedRoutes) {
  YAML::Node doc = YAML::LoadFile(std::string(CLEANROOM_SOURCE_DIR) + "/docs/api/openapi.yaml");
  std::set<std::pair<std::string, std::string>> documented, served;
  for (const auto& path : doc["paths"]) {
    for (const auto& op : path.second) {
      std::string method = op.first.as<std::string>();
      for (auto& c : method) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      documented.insert({method, path.first.as<std::string>()});
    }
  }
  for (const auto& r : server::Routes()) served.insert({r.method, r.path});
  EXPECT_EQ(documented, served);
  // And the binary serves the document of the repository.
  EXPECT_EQ(server::OpenApiDocument(),
            Slurp(std::string(CLEANROOM_SOURCE_DIR) + "/docs/api/openapi.yaml"));
}

// One sample of /v1/metrics (unsigned), -1 when the series is absent.
long long MetricValue(const std::string& text, const std::string& series) {
  size_t at = 0;
  while ((at = text.find(series + " ", at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n') return std::stoll(text.substr(at + series.size() + 1));
    at += series.size();
  }
  return -1;
}

size_t CountLines(const std::string& text, const std::string& needle) {
  size_t n = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) n += line.find(needle) != std::string::npos;
  return n;
}

TEST_F(ServeTest, TheWarmRoomDecryptsOnceUntilANewVersionArrives) {
  SetUpData();
  auto metric = [&](const std::string& series) {
    return MetricValue(ToReply(Client()->Get("/v1/metrics")).body, series);
  };
  EXPECT_EQ(metric("cleanroom_cache_entries"), 0);
  auto first = Call("acme", "POST", "/v1/query", QueryBody(kCampaignSql));
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(metric("cleanroom_cache_misses_total"), 1);  // impressions, decrypted once
  EXPECT_EQ(metric("cleanroom_cache_hits_total"), 0);
  EXPECT_EQ(metric("cleanroom_cache_entries"), 1);
  EXPECT_GT(metric("cleanroom_cache_bytes"), 0);
  // The same query again: from memory, not decrypted again, the same answer.
  auto second = Call("acme", "POST", "/v1/query", QueryBody(kCampaignSql));
  ASSERT_EQ(second.status, 200) << second.body;
  EXPECT_EQ(metric("cleanroom_cache_misses_total"), 1);
  EXPECT_EQ(metric("cleanroom_cache_hits_total"), 1);
  // (in any order: the SQL has no ORDER BY)
  auto sorted = [](json rows) {
    std::sort(rows.begin(), rows.end());
    return rows;
  };
  EXPECT_EQ(sorted(Open("acme", second)["rows"]), sorted(Open("acme", first)["rows"]));

  // A new version of impressions (more people) drops the warm copy at once,
  // and the next query reads the new rows.
  Generate(6000, 1500);
  PreparePackages("v2");
  ASSERT_EQ(Upload("newsco", "imp-v2.crpkg").status, 200);
  EXPECT_EQ(metric("cleanroom_cache_invalidations_total"), 1);
  EXPECT_EQ(metric("cleanroom_cache_entries"), 0);
  EXPECT_EQ(metric("cleanroom_cache_bytes"), 0);
  auto third = Call("acme", "POST", "/v1/query", QueryBody(kCampaignSql));
  ASSERT_EQ(third.status, 200) << third.body;
  EXPECT_EQ(metric("cleanroom_cache_misses_total"), 2);
  auto people = [](const json& rows) {
    long long n = 0;
    for (const auto& r : rows) n += r[1].get<long long>();
    return n;
  };
  EXPECT_GT(people(Open("acme", third)["rows"]), people(Open("acme", first)["rows"]));

  // Shutdown empties the warm room before the process ends (the memfds are
  // closed with it: nothing on disk to look at, so the counters say so).
  EXPECT_EQ(StopServer(), 0);
  std::string log = Slurp(P("server.log"));
  auto stopped = json::parse(log.substr(log.rfind("{\"cache_bytes\"")));
  EXPECT_EQ(stopped["event"], "stopped");
  EXPECT_EQ(stopped["cache_entries"], 0);
  EXPECT_EQ(stopped["cache_bytes"], 0);
  EXPECT_EQ(stopped["cache_hits"], 1);
  EXPECT_EQ(stopped["cache_misses"], 2);
}

TEST_F(ServeTest, RetentionIsAppliedWhileServing) {
  if (!CLEANROOM_TEST_HOOKS_BUILD) GTEST_SKIP() << "built without test hooks: no clock override";
  // The server's clock is a file the test moves (CLEANROOM_NOW_FILE); requests
  // are signed with the same time.
  const long long day0 = now_;
  auto set_day = [&](long long day) {
    now_ = day0 + day * 86400;
    Spit(P("clock"), std::to_string(now_) + "\n");
  };
  set_day(0);
  Generate();
  PreparePackages("v1");
  StartServer("--retention-check 1", "CLEANROOM_NOW_FILE=" + Q(P("clock")));
  ASSERT_EQ(Upload("newsco", "imp-v1.crpkg").status, 200);  // day 0
  set_day(60);
  ASSERT_EQ(Upload("acme", "pur-v1.crpkg").status, 200);  // day 60
  set_day(89);
  ASSERT_EQ(Call("acme", "POST", "/v1/query", QueryBody(kCampaignSql)).status, 200);
  EXPECT_EQ(CountLines(Slurp(P("room/audit.log")), "\"dataset.dispose\""), 0u);
  EXPECT_EQ(MetricValue(ToReply(Client()->Get("/v1/metrics")).body, "cleanroom_cache_entries"), 1);

  // Day 91: impressions (91 days old) pass the spec's 90 days while the server
  // runs; the next retention check shreds them without a restart.
  set_day(91);
  for (int i = 0; i < 600 && CountLines(Slurp(P("room/audit.log")), "\"dataset.dispose\"") == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::string audit = Slurp(P("room/audit.log"));
  ASSERT_EQ(CountLines(audit, "\"dataset.dispose\""), 1u) << audit;
  EXPECT_EQ(CountLines(audit, "\"reason\":\"retention\""), 1u);
  auto datasets = Call("acme", "GET", "/v1/datasets");
  ASSERT_EQ(datasets.status, 200) << datasets.body;
  std::map<std::string, std::string> state;
  for (const auto& d : datasets.json["datasets"]) state[d["name"]] = d["state"];
  EXPECT_EQ(state["impressions"], "disposed");
  EXPECT_NE(state["purchases"], "disposed");
  // A query on it is refused as for any disposed dataset, and its warm copy
  // is gone with it.
  auto files = Snapshot(P("room"), "audit.log");
  ExpectRefusal(Call("acme", "POST", "/v1/query", QueryBody(kCampaignSql)), 404, "UNKNOWN_DATASET");
  auto metrics = ToReply(Client()->Get("/v1/metrics")).body;
  EXPECT_EQ(MetricValue(metrics, "cleanroom_cache_entries"), 0);
  EXPECT_EQ(MetricValue(metrics, "cleanroom_cache_invalidations_total"), 1);
  auto after = Snapshot(P("room"), "audit.log");
  after.erase("nonces.log");
  files.erase("nonces.log");
  EXPECT_EQ(after, files);
  // Later checks find nothing more to shred: still one disposal.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(CountLines(Slurp(P("room/audit.log")), "\"dataset.dispose\""), 1u);
  EXPECT_EQ(StopServer(), 0);
}

TEST_F(ServeTest, AnUnauthenticatedFloodIsAuditedOnlyUpToTheBudget) {
  StartServer("--unauthenticated-audits-per-minute 3");
  const size_t lines = AuditLines();
  // Five unsigned requests and one with a signature that does not verify,
  // within a minute from one address: every one refused, three audited.
  for (int i = 0; i < 5; ++i) ExpectRefusal(Send("GET", "/v1/status", "", {}), 401, "AUTH_MISSING");
  auto forged = SignedHeaders(Key("acme"), "newsco", "GET", "/v1/status", "");
  ExpectRefusal(Send("GET", "/v1/status", "", forged), 401, "AUTH_BAD_SIGNATURE");
  EXPECT_EQ(AuditLines(), lines + 3);
  EXPECT_EQ(MetricValue(ToReply(Client()->Get("/v1/metrics")).body, "cleanroom_unaudited_refusals_total"), 3);
  // A party's requests are never rationed: its refusal is audited, its
  // request served.
  const std::string nonce = http::NewNonce();
  ASSERT_EQ(Send("GET", "/v1/status", "", SignedHeaders(Key("acme"), "acme", "GET", "/v1/status", "", {}, nonce)).status, 200);
  ExpectRefusal(Send("GET", "/v1/status", "", SignedHeaders(Key("acme"), "acme", "GET", "/v1/status", "", {}, nonce)),
                401, "AUTH_REPLAYED");
  EXPECT_EQ(AuditLines(), lines + 4);
  EXPECT_NE(Slurp(P("room/audit.log")).rfind("AUTH_REPLAYED"), std::string::npos);
}

// A browser leaves the default port out of Host (and of the URI it signs),
// so on 443 the bare name must be served; on any other port it must not.
TEST(ListenTest, TheBareHostIsServedOnlyOnTheDefaultPort) {
  server::Options o;
  o.hosts = {"Room.Example.com"};
  auto on443 = server::ServedHosts("0.0.0.0", 443, true, o);
  EXPECT_NE(std::find(on443.begin(), on443.end(), "room.example.com"), on443.end());
  EXPECT_NE(std::find(on443.begin(), on443.end(), "room.example.com:443"), on443.end());
  auto on8443 = server::ServedHosts("0.0.0.0", 8443, true, o);
  EXPECT_EQ(std::find(on8443.begin(), on8443.end(), "room.example.com"), on8443.end());
  EXPECT_NE(std::find(on8443.begin(), on8443.end(), "room.example.com:8443"), on8443.end());
  auto http443 = server::ServedHosts("127.0.0.1", 443, false, o);
  EXPECT_EQ(std::find(http443.begin(), http443.end(), "localhost"), http443.end());
  auto http80 = server::ServedHosts("127.0.0.1", 80, false, o);
  EXPECT_NE(std::find(http80.begin(), http80.end(), "localhost"), http80.end());
  EXPECT_NE(std::find(http80.begin(), http80.end(), "[::1]"), http80.end());
}

TEST(ListenTest, AddressesParseAndLoopbackIsRecognised) {
  EXPECT_EQ(*server::ParseListen("127.0.0.1:8443"), std::make_pair(std::string("127.0.0.1"), 8443));
  EXPECT_EQ(*server::ParseListen("[::1]:0"), std::make_pair(std::string("::1"), 0));
  for (const char* bad : {"", "8443", ":8443", "host:", "host:99999", "host:84a3", "::1:80", "[::1]80"}) {
    auto r = server::ParseListen(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::USAGE);
  }
  for (const char* yes : {"127.0.0.1", "127.8.9.10", "::1", "localhost", "LOCALHOST"}) {
    EXPECT_TRUE(server::IsLoopback(yes)) << yes;
  }
  for (const char* no : {"0.0.0.0", "10.0.0.1", "128.0.0.1", "::", "example.com", "127.0.0.1.example.com"}) {
    EXPECT_FALSE(server::IsLoopback(no)) << no;
  }
}

}  // namespace
}  // namespace cr::testing
