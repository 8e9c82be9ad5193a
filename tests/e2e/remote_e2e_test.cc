// The same binary as the client of a room service: every --server command run
// against `cleanroom serve` (TLS on loopback, a CA the test makes) prints the
// same bytes and exits with the same code as the local command on the same
// room, and a certificate that does not verify is refused before anything is
// sent. Random ids (result and package ids) are the only bytes replaced
// before comparing: they are drawn afresh by every run.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>
#include <optional>
#include <algorithm>
#include <regex>
#include <sstream>
#include <vector>

#include "client/tls_fixture.h"
#include "common/files.h"
#include "demo/serve_process.h"
#include "e2e/e2e_fixture.h"

namespace cr::testing {
namespace {

class RemoteE2e : public E2eTest {
 protected:
  void SetUp() override {
    SetUpRoom();
    Generate(3000, 600);
    // A twin room of the same spec, for the one command that cannot run
    // twice on one room: ingesting a package.
    Ok("room init --region eu --room " + Q(P("twin")) + " --spec " + Q(P("spec.yaml")));
    Ok("room activate --room " + Q(P("twin")) + " --sig " + Q(P("spec.yaml.acme.sig")) + " " +
       Q(P("spec.yaml.newsco.sig")));
    for (const char* room : {"room", "twin"}) {
      const std::string r = room;
      ASSERT_EQ(Prepare("impressions", P("impressions.csv"), "keys/newsco.key", r + "-imp.crpkg",
                        "spec.yaml", r + "/room.pub").exit_code, 0);
      ASSERT_EQ(Prepare("purchases", P("purchases.csv"), "keys/acme.key", r + "-pur.crpkg",
                        "spec.yaml", r + "/room.pub").exit_code, 0);
    }
    ASSERT_TRUE(MakeDirs(P("tls")));
    tls_ = MakeTlsFiles(P("tls"));
    StartServer();
  }
  void TearDown() override { StopServer(); }

  void StartServer(std::vector<std::string> extra_args = {}) {
    auto s = demo::ServeProcess::Start({.binary = Bin(),
                                        .room = P("room"),
                                        .tls = {tls_.ca_cert, tls_.server_cert, tls_.server_key},
                                        .extra_args = std::move(extra_args),
                                        .log_path = P("serve.log")});
    ASSERT_TRUE(s) << s.error().message << "\n" << Slurp(P("serve.log"));
    server_.emplace(std::move(*s));
  }
  void StopServer() {
    if (server_) {
      EXPECT_TRUE(server_->Stop());
    }
    server_.reset();
  }

  std::string Url() const { return server_ ? server_->url() : "https://127.0.0.1:1"; }
  std::string AtServer(const std::string& party) {
    return "--server " + Url() + " --tls-ca " + Q(tls_.ca_cert) + " --key " +
           Q(P("keys/" + party + ".key")) + " ";
  }
  std::string AtRoom(const std::string& party, const std::string& room = "room") {
    return "--room " + Q(P(room)) + " --key " + Q(P("keys/" + party + ".key")) + " ";
  }

  // Runs `args` remotely and locally and expects the same exit code and
  // stdout (ids replaced), and the same error line.
  // `any_row_order`: the query has no ORDER BY, so its rows may come in
  // another order each run; the lines are compared as a multiset.
  void ExpectSame(const RunResult& remote, const RunResult& local, const std::string& what,
                  bool any_row_order = false) {
    EXPECT_EQ(remote.exit_code, local.exit_code) << what << "\nremote: " << remote.err
                                                 << "\nlocal: " << local.err;
    if (any_row_order) {
      EXPECT_EQ(SortedLines(Ids(remote.out)), SortedLines(Ids(local.out))) << what;
    } else {
      EXPECT_EQ(Ids(remote.out), Ids(local.out)) << what;
    }
    EXPECT_EQ(Ids(remote.err), Ids(local.err)) << what;
  }
  static std::vector<std::string> SortedLines(const std::string& s) {
    std::vector<std::string> lines;
    std::istringstream in(s);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    std::sort(lines.begin(), lines.end());
    return lines;
  }
  static std::string Ids(const std::string& s) {
    static const std::regex kId("[0-9a-f]{32}");
    return std::regex_replace(s, kId, "<id>");
  }

  TlsFiles tls_;
  std::optional<demo::ServeProcess> server_;
};

TEST_F(RemoteE2e, IngestOverTheServerPrintsWhatLocalIngestPrints) {
  ExpectSame(Run(AtServer("newsco") + "ingest " + Q(P("room-imp.crpkg"))),
             Run(AtRoom("newsco", "twin") + "ingest " + Q(P("twin-imp.crpkg"))), "ingest table");
  ExpectSame(Run(AtServer("acme") + "--format json ingest " + Q(P("room-pur.crpkg"))),
             Run(AtRoom("acme", "twin") + "--format json ingest " + Q(P("twin-pur.crpkg"))),
             "ingest json");
  // A replay is refused the same way.
  ExpectSame(Run(AtServer("newsco") + "ingest " + Q(P("room-imp.crpkg"))),
             Run(AtRoom("newsco", "twin") + "ingest " + Q(P("twin-imp.crpkg"))), "replay");
  EXPECT_EQ(Run(AtServer("newsco") + "ingest " + Q(P("room-imp.crpkg"))).exit_code, 3);
}

TEST_F(RemoteE2e, EveryReadCommandPrintsWhatTheLocalOnePrints) {
  ASSERT_EQ(Run(AtServer("newsco") + "ingest " + Q(P("room-imp.crpkg"))).exit_code, 0);
  ASSERT_EQ(Run(AtServer("acme") + "ingest " + Q(P("room-pur.crpkg"))).exit_code, 0);
  // status, datasets and audit open the room read-only: they run beside the server.
  for (const std::string cmd : {"status", "--format json status", "datasets", "--format json datasets",
                                "budget", "--format json budget"}) {
    ExpectSame(Run(AtServer("acme") + cmd), Run("--room " + Q(P("room")) + " " + cmd), cmd);
  }
  for (const std::string cmd : {"audit verify", "--format json audit verify", "audit show",
                                "--format csv audit show", "--format json audit show"}) {
    auto remote = Run(AtServer("acme") + cmd);
    ExpectSame(remote, Run("--room " + Q(P("room")) + " " + cmd), cmd);
    EXPECT_EQ(remote.exit_code, 0) << cmd << remote.err;
  }
}

TEST_F(RemoteE2e, QueriesAndResultsPrintWhatTheLocalOnesPrint) {
  ASSERT_EQ(Run(AtServer("newsco") + "ingest " + Q(P("room-imp.crpkg"))).exit_code, 0);
  ASSERT_EQ(Run(AtServer("acme") + "ingest " + Q(P("room-pur.crpkg"))).exit_code, 0);
  const std::string sql =
      "SELECT campaign, COUNT(DISTINCT email) AS people FROM impressions GROUP BY campaign "
      "ORDER BY campaign";  // without ORDER BY, DuckDB's group order varies run to run
  Spit(P("q.sql"), sql + "\n");
  struct Case {
    std::string party, args;
    bool any_row_order = false;
  };
  const std::vector<Case> cases = {
      {"acme", "query --sql " + Q(sql)},
      {"acme", "--format csv query --sql " + Q(sql)},
      {"acme", "--format json query --sql " + Q(sql)},
      {"acme", "query --sql-file " + Q(P("q.sql"))},
      {"acme", "query --sql - < " + Q(P("q.sql"))},
      {"acme", "query --receivers newsco --sql " + Q(sql)},  // sealed to another: only the id
      {"acme", "--format json query --receivers newsco --sql " + Q(sql)},
      {"acme", "run --template conversions_by_campaign --param since=2026-12-01", true},
      {"acme", "run --template conversions_by_campaign"},  // a parameter missing
      {"acme", "query --sql " + Q("SELECT email FROM impressions")},  // refused by the rules
      {"acme", "query --sql " + Q("SELEC nonsense")},
      {"acme", "query --sql " + Q("SELECT x FROM nowhere GROUP BY x")},
  };
  std::vector<RunResult> remote;
  for (const auto& c : cases) remote.push_back(Run(AtServer(c.party) + c.args));
  auto ids_before = Run(AtServer("newsco") + "--format json results list");
  ASSERT_EQ(ids_before.exit_code, 0) << ids_before.err;
  auto remote_list = Run(AtServer("newsco") + "results list");
  auto listed = nlohmann::json::parse(ids_before.out);
  ASSERT_FALSE(listed.empty());
  const std::string id = listed[0]["result_id"];
  auto remote_get = Run(AtServer("newsco") + "results get --id " + id);
  auto remote_get_json = Run(AtServer("newsco") + "--format json results get --id " + id);
  auto remote_nope = Run(AtServer("newsco") + "results get --id " + std::string(32, 'a'));

  StopServer();  // the local commands below need the room lock the server holds
  for (size_t i = 0; i < cases.size(); ++i) {
    ExpectSame(remote[i], Run(AtRoom(cases[i].party) + cases[i].args), cases[i].args,
               cases[i].any_row_order);
  }
  EXPECT_EQ(remote[0].exit_code, 0) << remote[0].err;
  EXPECT_EQ(remote[9].exit_code, 3);
  EXPECT_EQ(ErrorCodeOf(remote[9]), "QUERY_REFUSED");
  ExpectSame(remote_get, Run(AtRoom("newsco") + "results get --id " + id), "results get");
  EXPECT_EQ(remote_get.exit_code, 0);
  ExpectSame(remote_get_json, Run(AtRoom("newsco") + "--format json results get --id " + id),
             "results get json");
  ExpectSame(remote_nope, Run(AtRoom("newsco") + "results get --id " + std::string(32, 'a')),
             "results get unknown");
  // The list is the same: nothing ran between the two.
  auto local_list = Run(AtRoom("newsco") + "results list");
  StartServer();
  EXPECT_EQ(Run(AtServer("newsco") + "results list").out, local_list.out);
  EXPECT_EQ(remote_list.exit_code, 0);
}

TEST_F(RemoteE2e, ACertificateThatDoesNotVerifyIsRefusedAndNothingIsSent) {
  const std::string log = Slurp(P("room/audit.log"));
  for (const std::string& ca : {tls_.other_ca_cert, tls_.self_signed_cert}) {
    auto r = Run("--server " + Url() + " --tls-ca " + Q(ca) + " --key " + Q(P("keys/acme.key")) +
                 " query --sql " + Q("SELECT campaign, COUNT(*) AS n FROM impressions GROUP BY campaign"));
    ExpectRefused(r, 6, "TLS_UNTRUSTED");
    EXPECT_TRUE(r.out.empty());
  }
  // Without --tls-ca the system's CAs do not know the test CA.
  ExpectRefused(Run("--server " + Url() + " --key " + Q(P("keys/acme.key")) + " results list"), 6,
                "TLS_UNTRUSTED");
  EXPECT_EQ(Slurp(P("room/audit.log")), log);  // the server never saw a request
}

TEST_F(RemoteE2e, ConflictingOrMissingFlagsAreUsage) {
  const std::string log = Slurp(P("room/audit.log"));
  ExpectRefused(Run(AtServer("acme") + "--room " + Q(P("room")) + " status"), 2, "USAGE");
  ExpectRefused(Run("--server " + Url() + " --tls-ca " + Q(tls_.ca_cert) + " status"), 2, "USAGE");
  ExpectRefused(Run("--tls-ca " + Q(tls_.ca_cert) + " --room " + Q(P("room")) + " status"), 2,
                "USAGE");
  ExpectRefused(Run(AtServer("acme") + "keygen --name x --out " + Q(P("x"))), 2, "USAGE");
  ExpectRefused(Run("--server http://10.1.2.3:80 --key " + Q(P("keys/acme.key")) + " status"), 2,
                "USAGE");
  ExpectRefused(Run("--server ftp://x --key " + Q(P("keys/acme.key")) + " status"), 2, "USAGE");
  EXPECT_EQ(Slurp(P("room/audit.log")), log);
  EXPECT_FALSE(PathExists(P("x")));
}

TEST_F(RemoteE2e, AnotherPartysKeyUnderAPartyNameIsRefused) {
  // acme's key file renamed newsco.key claims to be newsco: the signature
  // does not verify under newsco's key.
  ASSERT_TRUE(MakeDirs(P("fake")));
  Spit(P("fake/newsco.key"), Slurp(P("keys/acme.key")));
  ::chmod(P("fake/newsco.key").c_str(), 0600);
  const std::string log = Slurp(P("room/audit.log"));
  auto r = Run("--server " + Url() + " --tls-ca " + Q(tls_.ca_cert) + " --key " +
               Q(P("fake/newsco.key")) + " results list");
  ExpectRefused(r, 5, "AUTH_BAD_SIGNATURE");
  EXPECT_TRUE(r.out.empty());
  // An upload refused on its headers, before its body is sent: the client
  // gets the server's code (the body waits for "100 Continue"), and nothing
  // is stored.
  auto files = Snapshot(P("room"), "audit.log");
  auto up = Run("--server " + Url() + " --tls-ca " + Q(tls_.ca_cert) + " --key " +
                Q(P("fake/newsco.key")) + " ingest " + Q(P("room-imp.crpkg")));
  ExpectRefused(up, 5, "AUTH_BAD_SIGNATURE");
  auto after = Snapshot(P("room"), "audit.log");
  after.erase("nonces.log");
  files.erase("nonces.log");
  EXPECT_EQ(after, files);
  EXPECT_NE(Slurp(P("room/audit.log")).find("\"code\":\"AUTH_BAD_SIGNATURE\""), std::string::npos);
  auto stored = Run("--room " + Q(P("room")) + " --format json datasets");
  EXPECT_EQ(stored.out.find("\"stored\""), std::string::npos) << stored.out;
}

TEST_F(RemoteE2e, AnUploadPastMaxUploadGetsBodyTooLargeAndNothingChanges) {
  // A server taking uploads of at most 1000 bytes (the package is larger, and
  // larger than --max-body too: the refusal is made on Content-Length alone).
  StopServer();
  StartServer({"--max-upload", "1000", "--max-body", "500"});
  ASSERT_GT(std::filesystem::file_size(P("room-imp.crpkg")), 1000u);
  auto files = Snapshot(P("room"), "audit.log");
  auto up = Run(AtServer("newsco") + "ingest " + Q(P("room-imp.crpkg")));
  ExpectRefused(up, 7, "BODY_TOO_LARGE");
  EXPECT_TRUE(up.out.empty());
  auto after = Snapshot(P("room"), "audit.log");
  after.erase("nonces.log");
  files.erase("nonces.log");
  EXPECT_EQ(after, files);
  EXPECT_TRUE(!std::filesystem::exists(P("room/incoming")) || std::filesystem::is_empty(P("room/incoming")));
  // Under the limit the same path uploads, streamed from the file.
  StopServer();
  StartServer();
  auto ok = Run(AtServer("newsco") + "ingest " + Q(P("room-imp.crpkg")));
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

TEST_F(RemoteE2e, TheDemoRunsOverTheServer) {
  StopServer();
  auto r = Run("demo --people 2000 --impressions 20000 --purchases 4000 --dir " + Q(P("demo")));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  for (const char* step : {"\n[8] ", "\n[9] ", "\n[10] ", "\n[11] ", "\n[14] ", "\n[15] ",
                           "\n[16] ", "\n[17] ", "\n[18] "}) {
    EXPECT_NE(r.out.find(step), std::string::npos) << step << r.out;
  }
  EXPECT_NE(r.out.find("https://127.0.0.1:"), std::string::npos);
  EXPECT_NE(r.out.find("TLS_UNTRUSTED"), std::string::npos);
  EXPECT_NE(r.out.find("PACKAGE_REPLAYED"), std::string::npos);
  EXPECT_NE(r.out.find("QUERY_REFUSED"), std::string::npos);
  EXPECT_NE(r.out.find("NOT_AUTHORIZED"), std::string::npos);
  EXPECT_NE(r.out.find("BUDGET_EXHAUSTED (exit 4)"), std::string::npos);  // the DP steps
  // The service stopped: the room is free for local commands again.
  EXPECT_EQ(Run("audit verify --room " + Q(P("demo/room"))).exit_code, 0);
}

}  // namespace
}  // namespace cr::testing
