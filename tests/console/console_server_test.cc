// The server side of the web console through the real binary: the built-in
// files and their headers, GET /v1/spec, and POST /v1/query/check, which must
// say what a run would say and run nothing.
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "server/server_fixture.h"

namespace cr::testing {
namespace {

using nlohmann::json;

constexpr const char* kCampaignSql =
    "SELECT campaign, COUNT(DISTINCT email) AS people FROM impressions GROUP BY campaign";

class ConsoleServerTest : public ServerTest {
 protected:
  void SetUpData() {
    Generate();
    PreparePackages("v1");
    ASSERT_EQ(Ingest(P("imp-v1.crpkg")).exit_code, 0);
    ASSERT_EQ(Ingest(P("pur-v1.crpkg")).exit_code, 0);
    StartServer();
  }

  // The room's files but the two a signed request always touches (the audit
  // log and the nonce record).
  std::map<std::string, std::string> RoomFiles() {
    auto files = Snapshot(P("room"));
    files.erase("audit.log");
    files.erase("nonces.log");
    return files;
  }

  Reply Get(const std::string& path) { return ToReply(Client()->Get(path.c_str())); }
};

TEST_F(ConsoleServerTest, ThePageAndItsScriptsAreServedUnsignedWithTheirHeaders) {
  StartServer();
  size_t lines = AuditLines();
  auto cli = Client();
  auto index = cli->Get("/");
  ASSERT_TRUE(index);
  EXPECT_EQ(index->status, 200);
  EXPECT_EQ(index->get_header_value("Content-Type"), "text/html; charset=utf-8");
  // The page in the binary is the page in the repository.
  EXPECT_EQ(index->body, Slurp(std::string(CLEANROOM_SOURCE_DIR) + "/web/index.html"));
  const std::string csp = index->get_header_value("Content-Security-Policy");
  for (const char* part : {"default-src 'self'", "script-src 'self' 'wasm-unsafe-eval'", "connect-src 'self'",
                           "frame-ancestors 'none'", "object-src 'none'"}) {
    EXPECT_NE(csp.find(part), std::string::npos) << part << " in " << csp;
  }
  EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos) << csp;
  EXPECT_EQ(index->get_header_value("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(index->get_header_value("Referrer-Policy"), "no-referrer");
  EXPECT_EQ(index->get_header_value("Cache-Control"), "no-cache");
  // No inline script: every script is a file of this origin.
  EXPECT_EQ(index->body.find("<script>"), std::string::npos);

  for (const char* js : {"app.js", "api.js", "keyfile.js", "audit.js", "chart.js", "libsodium.mjs"}) {
    auto r = cli->Get((std::string("/console/") + js).c_str());
    ASSERT_TRUE(r) << js;
    EXPECT_EQ(r->status, 200) << js;
    EXPECT_EQ(r->get_header_value("Content-Type"), "text/javascript; charset=utf-8") << js;
    EXPECT_EQ(r->get_header_value("X-Content-Type-Options"), "nosniff") << js;
  }
  auto css = cli->Get("/console/console.css");
  ASSERT_TRUE(css);
  EXPECT_EQ(css->get_header_value("Content-Type"), "text/css; charset=utf-8");
  // libsodium-wrappers imports its core by a path the browser can load.
  auto wrappers = cli->Get("/console/libsodium-wrappers.mjs");
  ASSERT_TRUE(wrappers);
  EXPECT_NE(wrappers->body.find("from\"./libsodium.mjs\""), std::string::npos);
  EXPECT_EQ(wrappers->body.find("from\"libsodium\""), std::string::npos);

  // Nothing but the built-in files: no other name, no way out of the folder.
  auto missing = Get("/console/secret.key");
  EXPECT_EQ(missing.status, 400);
  EXPECT_EQ(missing.code(), "NOT_SUPPORTED");
  for (const char* path : {"/console/../room.key", "/console/%2e%2e/audit.log", "/console/", "/index.html"}) {
    auto r = Get(path);
    EXPECT_NE(r.status, 200) << path;
    EXPECT_EQ(r.body.find("crkey1:"), std::string::npos) << path;
  }
  // Unsigned page loads are not audited (they touch nothing of the room).
  EXPECT_EQ(AuditLines(), lines);
}

TEST_F(ConsoleServerTest, SpecIsTheAgreedSettingsAsJson) {
  SetUpData();
  auto unsigned_spec = Send("GET", "/v1/spec", "", {});
  EXPECT_EQ(unsigned_spec.status, 401);
  EXPECT_EQ(unsigned_spec.code(), "AUTH_MISSING");
  auto s = Call("newsco", "GET", "/v1/spec");
  ASSERT_EQ(s.status, 200) << s.body;
  EXPECT_EQ(s.json["collaboration"], "acme-newsco-2026q4");
  std::set<std::string> parties;
  for (const auto& p : s.json["parties"]) parties.insert(p["name"].get<std::string>());
  EXPECT_EQ(parties, (std::set<std::string>{"acme", "newsco"}));
  EXPECT_EQ(s.json["parties"][0]["key_fingerprint"], Key("acme").pub().Fingerprint());
  ASSERT_EQ(s.json["templates"].size(), 1u);
  EXPECT_EQ(s.json["templates"][0]["parameters"], json::parse(R"([{"name":"since","type":"date"}])"));
  EXPECT_EQ(s.json["datasets"][1]["rule"]["receivers"], json({"acme"}));
  EXPECT_EQ(s.json["datasets"][0]["columns"][0]["role"], "join_key");
  // Settings only: no e-mail address of the data.
  EXPECT_EQ(s.body.find("@"), std::string::npos);
}

TEST_F(ConsoleServerTest, CheckSaysWhatARunWouldSayAndRunsNothing) {
  SetUpData();
  struct Case {
    std::string party, path, body;
    int status;
    std::string code;  // "" for allowed
  };
  const std::string tmpl = "/v1/templates/conversions_by_campaign/run";
  const std::vector<Case> cases = {
      {"acme", "/v1/query", json{{"sql", kCampaignSql}}.dump(), 200, ""},
      // The attacks the rules stop: row-level reads, an aggregate the rule
      // does not allow, a receiver the rules do not allow, text that is not SQL.
      {"acme", "/v1/query", json{{"sql", "SELECT email FROM impressions"}}.dump(), 403, "QUERY_REFUSED"},
      {"acme", "/v1/query", json{{"sql", "SELECT campaign, MAX(cost) AS m FROM impressions GROUP BY campaign"}}.dump(),
       403, "QUERY_REFUSED"},
      {"acme", "/v1/query",
       json{{"sql", "SELECT day, SUM(amount) AS total FROM purchases GROUP BY day"}, {"receivers", {"newsco"}}}.dump(),
       403, "QUERY_REFUSED"},
      {"acme", "/v1/query", json{{"sql", "SELEC campaign FROM"}}.dump(), 400, "SQL_INVALID"},
      // newsco may not query at all.
      {"newsco", "/v1/query", json{{"sql", kCampaignSql}}.dump(), 403, "NOT_AUTHORIZED"},
      {"acme", tmpl, json{{"params", {{"since", "2020-01-01"}}}}.dump(), 200, ""},
      {"acme", tmpl, json{{"params", json::object()}}.dump(), 400, "BAD_INPUT"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.party + " " + c.body);
    json check_body = json::parse(c.body);
    if (c.path == tmpl) check_body["template"] = "conversions_by_campaign";
    auto files = RoomFiles();
    size_t lines = AuditLines();
    auto check = Call(c.party, "POST", "/v1/query/check", check_body.dump());
    EXPECT_EQ(check.status, c.status) << check.body;
    EXPECT_EQ(check.code(), c.code) << check.body;
    // Nothing ran, nothing was stored or charged: one audit entry, no other change.
    EXPECT_EQ(RoomFiles(), files);
    EXPECT_EQ(AuditLines(), lines + 1);
    std::string last = Slurp(P("room/audit.log"));
    last = last.substr(last.rfind('\n', last.size() - 2) + 1);
    EXPECT_NE(last.find(c.code.empty() ? ".check\"" : ".check.refused\""), std::string::npos) << last;
    if (check_body.contains("sql")) {
      EXPECT_EQ(last.find(check_body["sql"].get<std::string>()), std::string::npos) << "the SQL text is never audited";
    }
    // And the run says the same.
    auto run = Call(c.party, "POST", c.path, c.body);
    EXPECT_EQ(run.status, c.status) << run.body;
    EXPECT_EQ(run.code(), c.code) << run.body;
    if (c.code.empty()) {
      EXPECT_EQ(check.json["receivers"], run.json["receivers"]);
    }
  }

  auto ok = Call("acme", "POST", "/v1/query/check", json{{"sql", kCampaignSql}}.dump());
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.json, json::parse(R"({"ok": true, "datasets": ["impressions"], "columns": ["campaign", "people"],
      "receivers": ["acme", "newsco"], "caller_receives": true, "dp": false, "epsilon": null})"));
  auto refused = Call("acme", "POST", "/v1/query/check", json{{"sql", "SELECT email FROM impressions"}}.dump());
  EXPECT_FALSE(refused.json["message"].get<std::string>().empty());

  // Bodies of another shape change nothing.
  for (const std::string body : {"[]", "{}", R"({"sql": 1})", R"({"sql": "SELECT 1", "template": "x"})",
                                 R"({"sql": "SELECT 1", "params": {}})", R"({"sql": "SELECT 1", "limit": 3})"}) {
    auto files = RoomFiles();
    auto r = Call("acme", "POST", "/v1/query/check", body);
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_EQ(r.code(), "BAD_INPUT") << body;
    EXPECT_EQ(RoomFiles(), files) << body;
  }
  StopServer();
  Ok("--room " + Q(P("room")) + " audit verify");
}

}  // namespace
}  // namespace cr::testing
