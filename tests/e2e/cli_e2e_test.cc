// The command line's shared behaviour through the binary: help for every
// command (global flags included), --version, `help`, unknown commands, the
// SQL sources of `query`, --format json/csv on every command and for errors,
// the confirmation of `dispose` and `--receivers`.
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "e2e/e2e_fixture.h"

namespace cr::testing {
namespace {

using nlohmann::json;

// The whole of `text` as one JSON document (discarded when it is not exactly one).
json One(const std::string& text) { return json::parse(text, nullptr, false); }

// The rows of a CSV text without quoted fields (enough for the fields checked here).
std::vector<std::vector<std::string>> CsvRows(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> fields;
    std::string field;
    std::istringstream fs(line);
    while (std::getline(fs, field, ',')) fields.push_back(field);
    rows.push_back(fields);
  }
  return rows;
}

class CliE2e : public E2eTest {
 protected:
  std::string Room() const { return " --room " + Q(P("room")); }
  std::string As(const std::string& party) const {
    return Room() + " --key " + Q(P("keys/" + party + ".key"));
  }

  // A room with both datasets ingested.
  void SetUpIngested() {
    SetUpRoom();
    Generate();
    ASSERT_EQ(Prepare("impressions", P("impressions.csv"), "keys/newsco.key", "imp.crpkg").exit_code, 0);
    ASSERT_EQ(Prepare("purchases", P("purchases.csv"), "keys/acme.key", "pur.crpkg").exit_code, 0);
    ASSERT_EQ(Ingest(P("imp.crpkg")).exit_code, 0);
    ASSERT_EQ(Ingest(P("pur.crpkg")).exit_code, 0);
  }

  // An error reported with --format json: exactly one object on stderr, nothing on stdout.
  void ExpectJsonError(const RunResult& r, int exit_code, const std::string& code) {
    EXPECT_EQ(r.exit_code, exit_code) << r.err;
    EXPECT_EQ(r.out, "");
    json e = One(r.err);
    ASSERT_TRUE(e.is_object()) << "stderr: " << r.err;
    EXPECT_EQ(e.size(), 3u) << r.err;
    EXPECT_EQ(e["error"], code) << r.err;
    EXPECT_EQ(e["exit"], exit_code);
    EXPECT_TRUE(e["message"].is_string());
    EXPECT_EQ(r.err.find("cleanroom: error["), std::string::npos);
  }

  static constexpr const char* kPeople = "SELECT COUNT(DISTINCT email) AS people FROM impressions";
};

TEST_F(CliE2e, EverySubcommandsHelpListsEachOptionItUsesGlobalOnesIncluded) {
  const std::map<std::string, std::vector<std::string>> commands = {
      {"keygen", {"--name", "--out", "--format"}},
      {"secret new", {"--out", "--format"}},
      {"spec sign", {"--spec", "--key", "--format"}},
      {"room init", {"--spec", "--region", "--key-store", "--pkcs11-module", "--pkcs11-token", "--room",
                     "--passphrase-fd", "--pkcs11-pin-fd", "--format"}},
      {"room activate", {"--sig", "--spec", "--room", "--passphrase-fd", "--format"}},
      {"room unlock", {"--room", "--passphrase-fd", "--pkcs11-pin-fd", "--format"}},
      {"room protect", {"--key-store", "--pkcs11-module", "--pkcs11-token", "--new-passphrase-fd",
                        "--room", "--passphrase-fd", "--format"}},
      {"room rotate-key", {"--key-store", "--pkcs11-module", "--pkcs11-token", "--room",
                           "--passphrase-fd", "--format"}},
      {"room backup", {"--out", "--room", "--format"}},
      {"room restore", {"--from", "--room", "--format"}},
      {"prepare", {"--spec", "--dataset", "--input", "--key", "--secret", "--room-pub", "--out",
                   "--threads", "--format"}},
      {"ingest", {"package", "--room", "--format"}},
      {"audit verify", {"--room", "--format"}},
      {"audit show", {"--room", "--format"}},
      {"dispose", {"--dataset", "--yes", "--room", "--format"}},
      {"demo", {"--people", "--impressions", "--purchases", "--dir"}},
      {"generate", {"--kind", "--out", "--rows", "--people", "--seed", "--overlap", "--campaigns",
                    "--format"}},
      {"query", {"--sql", "--sql-file", "--receivers", "--room", "--key", "--format"}},
      {"run", {"--template", "--param", "--receivers", "--room", "--key", "--format"}},
      {"results list", {"--room", "--key", "--format"}},
      {"results get", {"--id", "--room", "--key", "--format"}},
      {"anonymize", {"--config", "--input", "--out", "--report", "--format"}},
      {"risk", {"--input", "--qi", "--sensitive", "--aux", "--link", "--truth", "--population",
                "--threshold", "--report", "--html", "--records", "--format"}},
      {"help", {"command"}},
  };
  for (const auto& [cmd, options] : commands) {
    auto r = Run(cmd + " --help");
    EXPECT_EQ(r.exit_code, 0) << cmd << ": " << r.err;
    for (const auto& o : options) {
      // As an entry of its own ("  --sql TEXT"), not inside another ("--sql-file").
      EXPECT_NE(r.out.find("  " + o + " "), std::string::npos) << cmd << " --help does not mention " << o
                                                  << ":\n" << r.out;
    }
  }
  // The formats a command prints are in its help.
  EXPECT_NE(Run("query --help").out.find("table|csv|json"), std::string::npos);
  EXPECT_NE(Run("keygen --help").out.find("table|json"), std::string::npos);
  // Every command the root lists is covered above.
  auto root = Ok("--help");
  for (const char* top : {"keygen", "secret", "spec", "room", "prepare", "ingest", "audit",
                          "dispose", "demo", "generate", "query", "run", "results", "anonymize",
                          "risk", "help"}) {
    EXPECT_NE(root.out.find(top), std::string::npos) << top;
  }
}

TEST_F(CliE2e, GlobalFlagsWorkBeforeAndAfterTheCommandAndFromTheEnvironment) {
  SetUpRoom();  // room init --room DIR ... (after the command)
  auto before = Ok(Room() + " audit verify");
  auto after = Ok("audit verify" + Room());
  EXPECT_EQ(before.out, after.out);
  auto env = Run("audit verify", "CLEANROOM_ROOM=" + Q(P("room")));
  EXPECT_EQ(env.exit_code, 0) << env.err;
  EXPECT_EQ(env.out, before.out);
  // A flag given after the command wins over the environment.
  auto flag = Run("audit verify --room " + Q(P("room")), "CLEANROOM_ROOM=" + Q(P("nowhere")));
  EXPECT_EQ(flag.exit_code, 0) << flag.err;
  EXPECT_EQ(Ok("--format json audit verify" + Room()).out, Ok("audit verify --format json" + Room()).out);
}

TEST_F(CliE2e, VersionHelpCommandAndUnknownCommands) {
  auto v = Ok("--version");
  EXPECT_EQ(v.out, std::string("cleanroom ") + CLEANROOM_VERSION + "\n");

  auto h = Ok("help room init");
  EXPECT_NE(h.out.find("cleanroom room init"), std::string::npos) << h.out;
  EXPECT_NE(h.out.find("--spec"), std::string::npos);
  EXPECT_NE(h.out.find("--room"), std::string::npos);
  EXPECT_EQ(h.out, Ok("room init --help").out);
  EXPECT_EQ(Ok("help query").out, Ok("query --help").out);
  EXPECT_EQ(Ok("help").out, Ok("--help").out);
  auto bad_help = Run("help xyz");
  ExpectRefused(bad_help, 2, "USAGE");
  EXPECT_NE(bad_help.err.find("unknown command 'xyz'"), std::string::npos) << bad_help.err;

  auto u = Run("xyz");
  ExpectRefused(u, 2, "USAGE");
  EXPECT_NE(u.err.find("unknown command 'xyz'"), std::string::npos) << u.err;
  EXPECT_NE(u.err.find("cleanroom --help"), std::string::npos) << u.err;
  auto with_globals = Run("--room " + Q(P("room")) + " xyz --sql 1");
  ExpectRefused(with_globals, 2, "USAGE");
  EXPECT_NE(with_globals.err.find("unknown command 'xyz'"), std::string::npos) << with_globals.err;
  auto eq = Run("--room=" + Q(P("room")) + " xyz");
  ExpectRefused(eq, 2, "USAGE");
  EXPECT_NE(eq.err.find("unknown command 'xyz'"), std::string::npos) << eq.err;
  auto sub = Run("room xyz");
  ExpectRefused(sub, 2, "USAGE");
  EXPECT_NE(sub.err.find("unknown command 'room xyz'"), std::string::npos) << sub.err;
  ExpectJsonError(Run("--format json xyz"), 2, "USAGE");
}

TEST_F(CliE2e, QueryReadsItsSqlFromOneSourceOnly) {
  SetUpIngested();
  auto inline_sql = Ok("--format json" + As("acme") + " query --sql " + Q(kPeople));
  json want = One(inline_sql.out)["rows"];
  ASSERT_EQ(want.size(), 1u) << inline_sql.out;

  Spit(P("people.sql"), std::string(kPeople) + "\n");
  auto from_file = Ok("--format json" + As("acme") + " query --sql-file " + Q(P("people.sql")));
  EXPECT_EQ(One(from_file.out)["rows"], want);
  auto from_stdin = RunShell("printf '%s' " + Q(kPeople) + " | " + Q(Bin()) + " --format json" +
                             As("acme") + " query --sql -");
  ASSERT_EQ(from_stdin.exit_code, 0) << from_stdin.err;
  EXPECT_EQ(One(from_stdin.out)["rows"], want);

  // Two sources, none, or an unreadable file: refused before the room is touched.
  auto before = Snapshot(P("room"));
  auto both = Run(As("acme") + " query --sql " + Q(kPeople) + " --sql-file " + Q(P("people.sql")));
  ExpectRefused(both, 2, "USAGE");
  ExpectRefused(Run(As("acme") + " query"), 2, "USAGE");
  auto missing = Run(As("acme") + " query --sql-file " + Q(P("no-such.sql")));
  ExpectRefused(missing, 7, "FILE_UNREADABLE");
  EXPECT_EQ(Snapshot(P("room")), before);
}

TEST_F(CliE2e, EveryCommandPrintsOneJsonDocument) {
  auto keygen = Ok("--format json keygen --name acme --out " + Q(P("keys")));
  json k = One(keygen.out);
  ASSERT_TRUE(k.is_object()) << keygen.out;
  EXPECT_EQ(k["name"], "acme");
  EXPECT_EQ(k["key_file"], P("keys") + "/acme.key");
  EXPECT_TRUE(k["fingerprint"].is_string());
  EXPECT_TRUE(std::filesystem::exists(k["pub_file"].get<std::string>()));
  Ok("keygen --name newsco --out " + Q(P("keys")));

  json s = One(Ok("--format json secret new --out " + Q(P("shared.secret"))).out);
  EXPECT_EQ(s["secret_file"], P("shared.secret"));

  Spit(P("spec.yaml"), SpecText());
  json init = One(Ok("room init --region eu --format json --room " + Q(P("room")) + " --spec " + Q(P("spec.yaml"))).out);
  EXPECT_EQ(init["room"], P("room"));
  EXPECT_TRUE(init["fingerprint"].is_string());
  EXPECT_TRUE(std::filesystem::exists(init["room_pub"].get<std::string>()));

  for (const char* party : {"acme", "newsco"}) {
    json sig = One(Ok("--format json spec sign --spec " + Q(P("spec.yaml")) + " --key " +
                      Q(P(std::string("keys/") + party + ".key"))).out);
    EXPECT_EQ(sig["party"], party);
    EXPECT_EQ(sig["collaboration"], "acme-newsco-2026q4");
    EXPECT_EQ(sig["signature_file"], P(std::string("spec.yaml.") + party + ".sig"));
    EXPECT_EQ(sig["spec_hash"].get<std::string>().size(), 64u);
  }
  json act = One(Ok("--format json" + Room() + " room activate --sig " + Q(P("spec.yaml.acme.sig")) +
                    " " + Q(P("spec.yaml.newsco.sig"))).out);
  EXPECT_EQ(act["active"], true);
  EXPECT_EQ(act["parties"], 2);

  json gen = One(Ok("--format json generate --kind impressions --rows 3000 --people 600 --out " +
                    Q(P("impressions.csv"))).out);
  EXPECT_EQ(gen["rows"], 3000);
  EXPECT_EQ(gen["kind"], "impressions");
  Ok("generate --kind purchases --rows 1000 --people 600 --out " + Q(P("purchases.csv")));

  auto prep = Run("--format json prepare --spec " + Q(P("spec.yaml")) +
                  " --dataset impressions --input " + Q(P("impressions.csv")) + " --key " +
                  Q(P("keys/newsco.key")) + " --secret " + Q(P("shared.secret")) + " --room-pub " +
                  Q(P("room/room.pub")) + " --out " + Q(P("imp.crpkg")));
  ASSERT_EQ(prep.exit_code, 0) << prep.err;
  json p = One(prep.out);
  EXPECT_EQ(p["rows"], 3000);
  EXPECT_EQ(p["dropped_columns"], json({"device"}));
  EXPECT_EQ(p["package"], P("imp.crpkg"));
  ASSERT_EQ(Prepare("purchases", P("purchases.csv"), "keys/acme.key", "pur.crpkg").exit_code, 0);

  json ing = One(Ok("--format json" + Room() + " ingest " + Q(P("imp.crpkg"))).out);
  EXPECT_EQ(ing["dataset"], "impressions");
  EXPECT_EQ(ing["owner"], "newsco");
  EXPECT_EQ(ing["rows"], 3000);
  EXPECT_EQ(ing["replaced"], false);
  Ok(Room() + " ingest " + Q(P("pur.crpkg")));

  json verify = One(Ok("--format json" + Room() + " audit verify").out);
  EXPECT_EQ(verify["intact"], true);
  EXPECT_TRUE(verify["entries"].is_number_integer());
  json show = One(Ok("--format json" + Room() + " audit show").out);
  ASSERT_TRUE(show.is_array());
  EXPECT_EQ(show.size(), verify["entries"].get<size_t>());
  EXPECT_EQ(show.back()["event"], "dataset.ingest");

  // query: the receiver gets the result, a result id for everyone else.
  json q = One(Ok("--format json" + As("acme") + " query --sql " + Q(kPeople)).out);
  EXPECT_EQ(q["columns"], json({"people"}));
  EXPECT_EQ(q["rows"].size(), 1u);
  EXPECT_TRUE(q.contains("withheld_rows"));
  json narrowed =
      One(Ok("--format json" + As("acme") + " query --receivers newsco --sql " + Q(kPeople)).out);
  EXPECT_EQ(narrowed["receivers"], json({"newsco"}));
  EXPECT_FALSE(narrowed.contains("rows"));
  json run = One(Ok("--format json" + As("acme") +
                    " run --template conversions_by_campaign --param since=2026-01-01").out);
  EXPECT_TRUE(run["rows"].is_array());
  json list = One(Ok("--format json" + As("acme") + " results list").out);
  ASSERT_TRUE(list.is_array());
  ASSERT_EQ(list.size(), 2u);
  // Listed by time, then id: two results of the same second come in either order.
  auto mine = std::find_if(list.begin(), list.end(),
                           [&](const json& e) { return e["result_id"] == q["result_id"]; });
  ASSERT_NE(mine, list.end()) << list.dump();
  EXPECT_EQ((*mine)["released_rows"], 1);
  json get = One(Ok("--format json" + As("acme") + " results get --id " +
                    q["result_id"].get<std::string>()).out);
  EXPECT_EQ(get, q);

  json disposed = One(Ok("--format json" + Room() + " dispose --dataset purchases").out);
  EXPECT_EQ(disposed["disposed"], json({"purchases"}));

  // The two local commands.
  std::string anon = std::string(CLEANROOM_SOURCE_DIR) + "/examples/adult-research-extract/anon.yaml";
  std::string adult = std::string(CLEANROOM_DATA_DIR) + "/adult/adult.csv";
  auto a = Run("--format json anonymize --config " + Q(anon) + " --input " + Q(adult) +
               " --out " + Q(P("extract.csv")));
  ASSERT_EQ(a.exit_code, 0) << a.err;
  json aj = One(a.out);
  EXPECT_EQ(aj["out"], P("extract.csv"));
  EXPECT_TRUE(aj["records"].is_number_integer());
  EXPECT_TRUE(aj["report"].is_object());
  auto risk = Run("--format json risk --input " + Q(adult) + " --qi sex,age");
  ASSERT_EQ(risk.exit_code, 0) << risk.err;
  EXPECT_EQ(One(risk.out)["records"], 30162);
}

TEST_F(CliE2e, ErrorsWithFormatJsonAreOneObjectOnStderr) {
  SetUpIngested();
  // A policy refusal, a usage error found while parsing, and one found later.
  ExpectJsonError(Run("--format json" + As("acme") + " query --sql " +
                      Q("SELECT email FROM impressions")),
                  3, "QUERY_REFUSED");
  ExpectJsonError(Run("--format json keygen"), 2, "USAGE");
  ExpectJsonError(Run("keygen --name x --format json --out"), 2, "USAGE");
  ExpectJsonError(Run("--format json" + As("acme") + " results get --id 0123456789abcdef0123456789abcdef"),
                  7, "RESULT_NOT_FOUND");
  ExpectJsonError(Run("--format json demo"), 2, "USAGE");
  // The default stays the line.
  auto line = Run(As("acme") + " query --sql " + Q("SELECT email FROM impressions"));
  ExpectRefused(line, 3, "QUERY_REFUSED");
}

TEST_F(CliE2e, CsvWhereItAppliesAndRefusedElsewhere) {
  SetUpIngested();
  auto q = Ok("--format csv" + As("acme") + " query --sql " + Q(kPeople));
  auto rows = CsvRows(q.out);
  ASSERT_EQ(rows.size(), 2u) << q.out;
  EXPECT_EQ(rows[0], std::vector<std::string>{"people"});
  auto list = CsvRows(Ok("--format csv" + As("acme") + " results list").out);
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0], (std::vector<std::string>{"result_id", "created_at", "requested_by", "datasets",
                                               "released_rows", "withheld_rows"}));
  EXPECT_EQ(list[1][4], "1");
  auto get = Ok("--format csv" + As("acme") + " results get --id " + list[1][0]);
  EXPECT_EQ(get.out, q.out);
  // A query whose result goes to others prints its id and receivers.
  auto sealed = CsvRows(Ok("--format csv" + As("acme") + " query --receivers newsco --sql " + Q(kPeople)).out);
  ASSERT_EQ(sealed.size(), 2u);
  EXPECT_EQ(sealed[0], (std::vector<std::string>{"result_id", "receivers"}));
  EXPECT_EQ(sealed[1][1], "newsco");
  auto show = CsvRows(Ok("--format csv" + Room() + " audit show").out);
  ASSERT_GT(show.size(), 5u);
  EXPECT_EQ(show[0], (std::vector<std::string>{"seq", "time", "event", "actor", "details"}));

  // Commands with no table of rows refuse csv (and do nothing).
  auto before = Snapshot(P("room"));
  for (const std::string& cmd :
       {std::string("keygen --name z --out ") + Q(P("zkeys")), "audit verify" + Room(),
        "dispose --yes" + Room(), "ingest" + Room() + " " + Q(P("imp.crpkg")),
        std::string("generate --kind impressions --out ") + Q(P("z.csv"))}) {
    auto r = Run("--format csv " + cmd);
    ExpectRefused(r, 2, "USAGE");
    EXPECT_NE(r.err.find("table or json"), std::string::npos) << cmd << ": " << r.err;
  }
  EXPECT_EQ(Snapshot(P("room")), before);
  EXPECT_FALSE(std::filesystem::exists(P("zkeys")));
  EXPECT_FALSE(std::filesystem::exists(P("z.csv")));
  auto xml = Run("--format xml audit verify" + Room());
  ExpectRefused(xml, 2, "USAGE");
}

TEST_F(CliE2e, TableFormReadsCorrectlyForOneRowAndNothingWithheld) {
  SetUpIngested();
  auto q = Ok(As("acme") + " query --sql " + Q(kPeople));
  EXPECT_NE(q.out.find("(1 row released)"), std::string::npos) << q.out;
  auto list = Ok(As("acme") + " results list");
  EXPECT_NE(list.out.find("1 row released\n"), std::string::npos) << list.out;
  EXPECT_EQ(list.out.find("withheld"), std::string::npos) << list.out;
  EXPECT_EQ(list.out.find("1 rows"), std::string::npos) << list.out;
  auto ing_line = Ok(Room() + " audit verify");
  EXPECT_NE(ing_line.out.find(" entries,"), std::string::npos) << ing_line.out;
}

TEST_F(CliE2e, DisposeOfEverythingNeedsConfirmation) {
  SetUpIngested();
  auto before = Snapshot(P("room"));
  auto refused = Run(Room() + " dispose");
  ExpectRefused(refused, 2, "USAGE");
  EXPECT_NE(refused.err.find("--yes"), std::string::npos) << refused.err;
  EXPECT_EQ(Snapshot(P("room")), before);  // audit.log included: nothing happened
  ExpectJsonError(Run("--format json" + Room() + " dispose"), 2, "USAGE");
  EXPECT_EQ(Snapshot(P("room")), before);

  auto yes = Ok(Room() + " dispose --yes");
  EXPECT_NE(yes.out.find("impressions disposed"), std::string::npos) << yes.out;
  EXPECT_NE(yes.out.find("purchases disposed"), std::string::npos) << yes.out;
  EXPECT_FALSE(std::filesystem::exists(P("room/data")) &&
               !std::filesystem::is_empty(P("room/data")));
  ExpectRefused(Run(As("acme") + " query --sql " + Q(kPeople)), 7, "UNKNOWN_DATASET");
}

TEST_F(CliE2e, DisposeOnATerminalAsksForTheCollaborationId) {
  if (std::system("command -v script >/dev/null 2>&1") != 0) GTEST_SKIP() << "no script(1)";
  SetUpIngested();
  // script(1) gives the command a terminal; the answer is typed into it.
  auto on_tty = [&](const std::string& answer) {
    return RunShell("printf '%s\\n' " + Q(answer) + " | script -qec " +
                    Q(Q(Bin()) + Room() + " dispose") + " /dev/null");
  };
  auto before = Snapshot(P("room"));
  auto wrong = on_tty("acme-newsco");
  EXPECT_EQ(wrong.exit_code, 2) << wrong.out << wrong.err;
  EXPECT_NE(wrong.out.find("Type the collaboration id"), std::string::npos) << wrong.out;
  EXPECT_NE(wrong.out.find("error[USAGE]"), std::string::npos) << wrong.out;
  EXPECT_EQ(Snapshot(P("room")), before);
  auto right = on_tty("acme-newsco-2026q4");
  EXPECT_EQ(right.exit_code, 0) << right.out << right.err;
  EXPECT_NE(right.out.find("impressions disposed"), std::string::npos) << right.out;
}

TEST(DisposeAllConfirmedTest, OnlyYesOrTheCollaborationIdOnATerminal) {
  using cli::DisposeAllConfirmed;
  EXPECT_TRUE(DisposeAllConfirmed(true, false, std::nullopt, "c"));
  EXPECT_TRUE(DisposeAllConfirmed(true, true, std::string("no"), "c"));
  EXPECT_FALSE(DisposeAllConfirmed(false, false, std::string("yes"), "c"));
  EXPECT_FALSE(DisposeAllConfirmed(false, true, std::nullopt, "c"));
  EXPECT_TRUE(DisposeAllConfirmed(false, true, std::string("yes"), "collab"));
  EXPECT_TRUE(DisposeAllConfirmed(false, true, std::string("  collab\r"), "collab"));
  EXPECT_FALSE(DisposeAllConfirmed(false, true, std::string("y"), "collab"));
  EXPECT_FALSE(DisposeAllConfirmed(false, true, std::string("coll"), "collab"));
  EXPECT_FALSE(DisposeAllConfirmed(false, true, std::string(""), ""));
}

TEST_F(CliE2e, ReceiversNarrowWhoGetsAResult) {
  SetUpIngested();
  auto r = Ok("--format json" + As("acme") + " query --receivers newsco --sql " + Q(kPeople));
  json j = One(r.out);
  std::string id = j["result_id"];
  EXPECT_EQ(j["receivers"], json({"newsco"}));
  auto ids = [&](const std::string& party) {
    std::set<std::string> out;
    for (const auto& m : One(Ok("--format json" + As(party) + " results list").out)) {
      out.insert(m["result_id"].get<std::string>());
    }
    return out;
  };
  EXPECT_TRUE(ids("newsco").count(id));
  EXPECT_FALSE(ids("acme").count(id));
  EXPECT_FALSE(std::filesystem::exists(P("room/results/" + id + "/acme.sealed")));
  ExpectRefused(Run(As("acme") + " results get --id " + id), 5, "NOT_AUTHORIZED");
  auto got = Ok("--format json" + As("newsco") + " results get --id " + id);
  EXPECT_EQ(One(got.out)["rows"].size(), 1u);
  // The audit record of the run lists the actual receivers.
  bool seen = false;
  for (const auto& e : One(Ok("--format json" + Room() + " audit show").out)) {
    if (e["event"] == "query.run" && e["details"]["result_id"] == id) {
      seen = true;
      EXPECT_EQ(e["details"]["receivers"], json({"newsco"}));
    }
  }
  EXPECT_TRUE(seen);
  // Templates too; naming both is the default set.
  json t = One(Ok("--format json" + As("acme") + " run --receivers acme --template "
                  "conversions_by_campaign --param since=2026-01-01").out);
  EXPECT_TRUE(t["rows"].is_array());
  json both = One(Ok("--format json" + As("acme") + " query --receivers acme,newsco --sql " + Q(kPeople)).out);
  EXPECT_TRUE(ids("newsco").count(both["result_id"].get<std::string>()));

  // Refused before anything runs: no result, no run recorded, only the refusal.
  auto count_runs = [&]() {
    size_t n = 0;
    for (const auto& e : One(Ok("--format json" + Room() + " audit show").out)) {
      n += e["event"] == "query.run" || e["event"] == "template.run";
    }
    return n;
  };
  size_t runs = count_runs();
  auto results_before = Snapshot(P("room/results"));
  // newsco is a party, but purchases' rule does not let it receive.
  auto not_allowed = Run(As("acme") + " run --receivers newsco --template conversions_by_campaign "
                         "--param since=2026-01-01");
  ExpectRefused(not_allowed, 3, "QUERY_REFUSED");
  EXPECT_NE(not_allowed.err.find("newsco"), std::string::npos) << not_allowed.err;
  auto outsider = Run(As("acme") + " query --receivers acme,mallory --sql " + Q(kPeople));
  ExpectRefused(outsider, 3, "QUERY_REFUSED");
  EXPECT_EQ(outsider.err.find("mallory"), std::string::npos) << "free text is not echoed";
  ExpectRefused(Run(As("acme") + " query --receivers acme,,newsco --sql " + Q(kPeople)), 2, "USAGE");
  ExpectRefused(Run(As("acme") + " query --receivers '' --sql " + Q(kPeople)), 2, "USAGE");
  EXPECT_EQ(Snapshot(P("room/results")), results_before);
  EXPECT_EQ(count_runs(), runs);
  std::string log = Slurp(P("room/audit.log"));
  EXPECT_EQ(log.find("mallory"), std::string::npos);
}

}  // namespace
}  // namespace cr::testing
