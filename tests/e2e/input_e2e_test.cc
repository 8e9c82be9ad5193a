// Bad input end to end through the binary: strict casts for every declared
// type, counted warnings (and --strict), ragged CSV rows, a CSV given to
// ingest, a key of the wrong kind, a party name no spec accepts. Each refusal
// names what failed but never a data value, and writes nothing.
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "e2e/e2e_fixture.h"
#include "engine/engine.h"

namespace cr::testing {
namespace {

// One dataset with a column of every declared type.
constexpr const char* kTypesSpec = R"(collaboration: input-types
parties:
  acme:   {public_key: keys/acme.pub,   abilities: [contribute, query, receive_results]}
  newsco: {public_key: keys/newsco.pub, abilities: [contribute, receive_results]}
datasets:
  events:
    owner: newsco
    privacy_unit_column: email
    columns:
      email:   {type: string, role: join_key, normalize: email}
      visits:  {type: integer, role: dimension}
      amount:  {type: double, role: metric, bounds: [0, 500]}
      flag:    {type: boolean, role: dimension}
      day:     {type: date, role: dimension}
      seen_at: {type: timestamp, role: dimension}
    rule: {kind: aggregation, aggregates: {amount: [sum], email: [count_distinct]}, receivers: [acme]}
)";

constexpr const char* kHeader = "email,visits,amount,flag,day,seen_at\n";
constexpr const char* kGoodRow = "a@x.com,42,1.5,true,2026-10-01,2026-10-01 10:00:00\n";

class InputE2e : public E2eTest {
 protected:
  void SetUp() override {
    Ok("keygen --name acme --out " + Q(P("keys")));
    Ok("keygen --name newsco --out " + Q(P("keys")));
    Ok("secret new --out " + Q(P("shared.secret")));
    Spit(P("types.yaml"), kTypesSpec);
    Spit(P("spec.yaml"), SpecText());
    Ok("room init --region eu --room " + Q(P("room")) + " --spec " + Q(P("types.yaml")));
  }

  RunResult PrepareEvents(const std::string& input, const std::string& extra = "") {
    return Run("prepare --spec " + Q(P("types.yaml")) + " --dataset events --input " + Q(input) +
               " --key " + Q(P("keys/newsco.key")) + " --secret " + Q(P("shared.secret")) +
               " --room-pub " + Q(P("room/room.pub")) + " --out " + Q(P("out.crpkg")) + " " +
               extra);
  }

  // The campaign spec's purchases (amount bounds [0, 500]), owned by acme.
  RunResult PreparePurchases(const std::string& csv, const std::string& extra = "") {
    Spit(P("purchases.csv"), csv);
    return Run("prepare --spec " + Q(P("spec.yaml")) + " --dataset purchases --input " +
               Q(P("purchases.csv")) + " --key " + Q(P("keys/acme.key")) + " --secret " +
               Q(P("shared.secret")) + " --room-pub " + Q(P("room/room.pub")) + " --out " +
               Q(P("out.crpkg")) + " " + extra);
  }

  // The file as three good rows with `column` set to `value` in the second.
  std::string WithValue(const std::string& column, const std::string& value) {
    std::vector<std::string> names = {"email", "visits", "amount", "flag", "day", "seen_at"};
    std::vector<std::string> row = {"b@x.com", "7",          "2.5",
                                    "false",   "2026-10-02", "2026-10-02 11:00:00"};
    std::string line;
    for (size_t i = 0; i < names.size(); ++i) {
      line += (i ? "," : "") + (names[i] == column ? value : row[i]);
    }
    return std::string(kHeader) + kGoodRow + line + "\n" + kGoodRow;
  }

  void ExpectNoPackage() { EXPECT_FALSE(std::filesystem::exists(P("out.crpkg"))); }
};

// ----- 1. Strict casts ------------------------------------------------------------

struct BadValue {
  const char* column;
  const char* value;
};

TEST_F(InputE2e, EveryValueThatDoesNotFitItsTypeIsCastFailedWithLineAndColumn) {
  const std::vector<BadValue> bad = {
      {"visits", "2.71828"},               // a fraction in an integer (DuckDB rounds it to 3)
      {"visits", "99999999999999999999"},  // beyond 64 bits
      {"visits", "4e3"},                   // an exponent: not an integer's spelling
      {"visits", "0x1F"},                  // hexadecimal
      {"visits", "SECRETVALUE"},
      {"amount", "1e400"},  // DuckDB reads inf
      {"amount", "nan"},
      {"amount", "-inf"},
      {"amount", "\"12,5\""},  // a decimal comma
      {"flag", "yes"},         // DuckDB reads true
      {"flag", "5"},
      {"day", "2026-10-01 10:00:00"},  // DuckDB drops the time
      {"day", "2026-02-30"},
      {"day", "2026/10/01"},  // DuckDB reads 2026-10-01
      {"day", "infinity"},                   // strptime reads 1900-01-01
      {"day", "epoch"},
      {"day", "26-10-01"},                   // strptime reads the year 26
      {"seen_at", "infinity"},
      {"seen_at", "2026-10-01 10:00:00+05:30"},      // DuckDB drops the offset
      {"seen_at", "2026-10-01 10:00:00.123456789"},  // DuckDB drops the nanoseconds
      {"seen_at", "2026-10-01 25:00:00"},
      {"seen_at", "yesterday"},
  };
  for (const auto& b : bad) {
    Spit(P("in.csv"), WithValue(b.column, b.value));
    auto r = PrepareEvents(P("in.csv"));
    ExpectRefused(r, 7, "CAST_FAILED");
    EXPECT_NE(r.err.find("line 3"), std::string::npos)
        << b.column << "=" << b.value << ": " << r.err;
    EXPECT_NE(r.err.find("'" + std::string(b.column) + "'"), std::string::npos)
        << b.value << ": " << r.err;
    std::string message = r.err;
    message.erase(0, message.find(P("in.csv")) + P("in.csv").size());
    EXPECT_EQ(message.find(b.value), std::string::npos) << "the value leaked: " << r.err;
    ExpectNoPackage();
  }
}

TEST_F(InputE2e, ValuesThatFitExactlyAreAccepted) {
  Spit(P("in.csv"), std::string(kHeader) + kGoodRow +
                        "b@x.com, 7 ,2e2,F,2026-1-2,2026-10-01T10:00:00.123456\n"
                        "c@x.com,-3,0,1,2026-10-03,2026-10-03\n"
                        "d@x.com,3.000,,t,,2026-10-03 10:00\n"
                        "e@x.com,+5,.5,FALSE,2026-10-04,\n");
  auto r = PrepareEvents(P("in.csv"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("5 rows"), std::string::npos) << r.out;
}

TEST_F(InputE2e, AQuotedNewlineDoesNotShiftTheLineNamed) {
  Spit(P("in.csv"), std::string(kHeader) + "\"a@x.com\n\",1,1,true,2026-10-01,2026-10-01\n" +
                        kGoodRow + "c@x.com,1.5,1,true,2026-10-01,2026-10-01\n");
  auto r = PrepareEvents(P("in.csv"));
  ExpectRefused(r, 7, "CAST_FAILED");
  EXPECT_NE(r.err.find("line 5 (row 3)"), std::string::npos) << r.err;
}

TEST_F(InputE2e, TypedFilesMustFitToo) {
  // JSON lines: numbers arrive typed; 3.5 is no integer.
  Spit(P("in.jsonl"),
       "{\"email\": \"a@x.com\", \"visits\": 4, \"amount\": 1.5, \"flag\": true, \"day\": "
       "\"2026-10-01\", \"seen_at\": \"2026-10-01 10:00:00\"}\n"
       "{\"email\": \"b@x.com\", \"visits\": 3.5, \"amount\": 1.5, \"flag\": false, \"day\": "
       "\"2026-10-01\", \"seen_at\": \"2026-10-01 10:00:00\"}\n");
  auto r = PrepareEvents(P("in.jsonl"));
  ExpectRefused(r, 7, "CAST_FAILED");
  EXPECT_NE(r.err.find("row 2"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("'visits'"), std::string::npos) << r.err;
  ExpectNoPackage();

  // Parquet: a timestamp with a time of day is no date; 2^53 + 1 is no double.
  auto db = engine::Database::Open();
  ASSERT_TRUE(db);
  auto write = [&](const std::string& day, const std::string& amount,
                   const std::string& first_amount = "1.5::DOUBLE") {
    std::filesystem::remove(P("in.parquet"));
    ASSERT_TRUE(db->Execute(
        "COPY (SELECT * FROM (VALUES ('a@x.com', 1::BIGINT, " + first_amount +
        ", true, TIMESTAMP '2026-10-01 00:00:00', TIMESTAMP '2026-10-01 10:00:00'), ('b@x.com', "
        "2::BIGINT, " +
        amount + ", false, " + day +
        ", TIMESTAMP '2026-10-01 10:00:00')) t(email, visits, amount, flag, day, seen_at)) TO " +
        engine::QuoteLiteral(P("in.parquet")) + " (FORMAT parquet)"));
  };
  write("TIMESTAMP '2026-10-02 00:00:00'", "2::DOUBLE");
  auto ok = PrepareEvents(P("in.parquet"));
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  std::filesystem::remove(P("out.crpkg"));
  write("TIMESTAMP '2026-10-02 13:30:00'", "2::DOUBLE");
  r = PrepareEvents(P("in.parquet"));
  ExpectRefused(r, 7, "CAST_FAILED");
  EXPECT_NE(r.err.find("row 2"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("'day'"), std::string::npos) << r.err;
  write("TIMESTAMP '2026-10-02 00:00:00'", "9007199254740993::BIGINT", "1::BIGINT");
  r = PrepareEvents(P("in.parquet"));
  ExpectRefused(r, 7, "CAST_FAILED");
  EXPECT_NE(r.err.find("'amount'"), std::string::npos) << r.err;
  ExpectNoPackage();
}

// ----- 2. Counted warnings, --strict ------------------------------------------------

TEST_F(InputE2e, ValuesOutsideBoundsAreCountedAndStrictRefusesThem) {
  std::string csv =
      "email,amount,day\n"
      "a@x.com,10,2026-10-01\n"
      "b@x.com,987654,2026-10-01\n"
      "c@x.com,-31337,2026-10-01\n"
      "d@x.com,500,2026-10-01\n";
  auto r = PreparePurchases(csv);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("cleanroom: warning: 2 rows of amount are outside bounds [0, 500] (they "
                       "will be clamped)"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("987654"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("31337"), std::string::npos) << r.err;
  EXPECT_TRUE(std::filesystem::exists(P("out.crpkg")));
  std::filesystem::remove(P("out.crpkg"));

  r = PreparePurchases(csv, "--strict");
  ExpectRefused(r, 7, "BAD_INPUT");
  EXPECT_NE(r.err.find("2 rows of amount are outside bounds [0, 500]"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("987654"), std::string::npos) << r.err;
  ExpectNoPackage();
}

TEST_F(InputE2e, EmptyJoinKeysAreCountedAndStrictRefusesThem) {
  std::string csv =
      "email,amount,day\n"
      "a@x.com,10,2026-10-01\n"
      ",10,2026-10-01\n"
      "\"   \",10,2026-10-01\n"
      "b@x.com,10,2026-10-01\n";
  auto r = PreparePurchases(csv);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("cleanroom: warning: 2 rows have an empty email"), std::string::npos)
      << r.err;
  EXPECT_TRUE(std::filesystem::exists(P("out.crpkg")));
  std::filesystem::remove(P("out.crpkg"));

  r = PreparePurchases(csv, "--strict");
  ExpectRefused(r, 7, "BAD_INPUT");
  EXPECT_NE(r.err.find("2 rows have an empty email"), std::string::npos) << r.err;
  ExpectNoPackage();
}

TEST_F(InputE2e, AnInputWithNoRowsIsReportedAndStrictRefusesIt) {
  auto r = PreparePurchases("email,amount,day\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("cleanroom: warning: the input has no rows"), std::string::npos) << r.err;
  EXPECT_TRUE(std::filesystem::exists(P("out.crpkg")));
  std::filesystem::remove(P("out.crpkg"));

  r = PreparePurchases("email,amount,day\n", "--strict");
  ExpectRefused(r, 7, "BAD_INPUT");
  EXPECT_NE(r.err.find("no rows"), std::string::npos) << r.err;
  ExpectNoPackage();
}

TEST_F(InputE2e, CleanInputWarnsAboutNothingAndPassesStrict) {
  std::string csv = "email,amount,day\na@x.com,0,2026-10-01\nb@x.com,500,2026-10-02\n";
  auto r = PreparePurchases(csv, "--strict");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("warning"), std::string::npos) << r.err;
  EXPECT_TRUE(std::filesystem::exists(P("out.crpkg")));
}

// ----- 3. Ragged CSV rows -------------------------------------------------------------

// The generated impressions (email, campaign, shown_at, cost, device) with
// data line `line` cut to its first three fields, or given a sixth.
std::string Ragged(const std::string& csv, int line, bool longer) {
  std::string out;
  size_t pos = 0;
  for (int n = 1; pos < csv.size(); ++n) {
    size_t end = csv.find('\n', pos);
    std::string l = csv.substr(pos, end - pos);
    if (n == line) {
      if (longer) {
        l += ",extra";
      } else {
        size_t cut = 0;
        for (int f = 0; f < 3; ++f) cut = l.find(',', cut + 1);
        l = l.substr(0, cut);
      }
    }
    out += l + "\n";
    pos = end + 1;
  }
  return out;
}

TEST_F(InputE2e, AShortOrLongRowNamesItsLineAndFieldCounts) {
  Generate(3000, 600);
  std::string csv = Slurp(P("impressions.csv"));
  // Inside the reader's sniffing sample, and far beyond it (the sniffer
  // accepts the file there, and the read itself fails).
  for (int line : {1234, 2999}) {
    for (bool longer : {false, true}) {
      Spit(P("ragged.csv"), Ragged(csv, line, longer));
      auto r = Run("prepare --spec " + Q(P("spec.yaml")) + " --dataset impressions --input " +
                   Q(P("ragged.csv")) + " --key " + Q(P("keys/newsco.key")) + " --secret " +
                   Q(P("shared.secret")) + " --room-pub " + Q(P("room/room.pub")) + " --out " +
                   Q(P("out.crpkg")));
      ExpectRefused(r, 7, "BAD_INPUT");
      std::string want = "ragged.csv line " + std::to_string(line) + " has " +
                         (longer ? "6" : "3") + " fields; the header has 5";
      EXPECT_NE(r.err.find(want), std::string::npos) << want << "\n" << r.err;
      ExpectNoPackage();
    }
  }
}

TEST_F(InputE2e, ARaggedRowFarBeyondTheSniffedSample) {
  Generate(60000, 6000);
  Spit(P("ragged.csv"), Ragged(Slurp(P("impressions.csv")), 45000, false));
  auto r = Run("prepare --spec " + Q(P("spec.yaml")) + " --dataset impressions --input " +
               Q(P("ragged.csv")) + " --key " + Q(P("keys/newsco.key")) + " --secret " +
               Q(P("shared.secret")) + " --room-pub " + Q(P("room/room.pub")) + " --out " +
               Q(P("out.crpkg")));
  ExpectRefused(r, 7, "BAD_INPUT");
  EXPECT_NE(r.err.find("line 45000 has 3 fields; the header has 5"), std::string::npos) << r.err;
  ExpectNoPackage();
}

// ----- 4. Not a package ---------------------------------------------------------------

class NotAPackage : public E2eTest {
 protected:
  void SetUp() override {
    SetUpRoom();
    Generate(300, 100);
  }
  void ExpectRoomUnchanged(const std::map<std::string, std::string>& before) {
    EXPECT_EQ(Snapshot(P("room"), "audit.log"), before);
  }
};

TEST_F(NotAPackage, ACsvGivenToIngestIsBadInputNotTampering) {
  auto before = Snapshot(P("room"), "audit.log");
  auto r = Ingest(P("impressions.csv"));
  ExpectRefused(r, 7, "BAD_INPUT");
  EXPECT_NE(r.err.find("not a contribution package"), std::string::npos) << r.err;
  Spit(P("empty.crpkg"), "");
  ExpectRefused(Ingest(P("empty.crpkg")), 7, "BAD_INPUT");
  ExpectRoomUnchanged(before);
}

TEST_F(NotAPackage, AFileWithThePackageMagicButDamagedIsStillTampered) {
  ASSERT_EQ(Prepare("impressions", P("impressions.csv"), "keys/newsco.key", "imp.crpkg").exit_code,
            0);
  auto before = Snapshot(P("room"), "audit.log");
  std::string pkg = Slurp(P("imp.crpkg"));
  for (size_t keep : {size_t{5}, size_t{10}, size_t{40}}) {
    Spit(P("cut.crpkg"), pkg.substr(0, keep));
    ExpectRefused(Ingest(P("cut.crpkg")), 6, "TAMPERED");
  }
  Spit(P("junk.crpkg"), pkg.substr(0, 8) + "this is no header at all");
  ExpectRefused(Ingest(P("junk.crpkg")), 6, "TAMPERED");
  ExpectRoomUnchanged(before);
}

// ----- 5. Keys of the wrong kind ------------------------------------------------------

TEST_F(NotAPackage, APublicKeyWhereTheSecretOneIsNeededSaysSo) {
  auto check = [&](const RunResult& r) {
    ExpectRefused(r, 5, "KEY_INVALID");
    EXPECT_NE(r.err.find("public key"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(".key"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("chmod"), std::string::npos) << "not a mode problem: " << r.err;
  };
  check(Prepare("impressions", P("impressions.csv"), "keys/newsco.pub", "x.crpkg"));
  EXPECT_FALSE(std::filesystem::exists(P("x.crpkg")));
  auto sig = Slurp(P("spec.yaml.acme.sig"));
  check(Run("spec sign --spec " + Q(P("spec.yaml")) + " --key " + Q(P("keys/acme.pub"))));
  EXPECT_EQ(Slurp(P("spec.yaml.acme.sig")), sig);
  check(Run("--room " + Q(P("room")) + " --key " + Q(P("keys/acme.pub")) +
            " query --sql 'SELECT COUNT(*) FROM impressions'"));
}

TEST_F(NotAPackage, ASecretKeyWhereAPublicOneIsExpectedSaysSoWithoutEchoingIt) {
  std::string secret = Slurp(P("keys/acme.key"));
  secret = secret.substr(0, secret.find('\n'));
  auto check = [&](const RunResult& r) {
    ExpectRefused(r, 5, "KEY_INVALID");
    EXPECT_NE(r.err.find("secret key"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(".pub"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find(secret.substr(7)), std::string::npos) << "the secret leaked";
  };
  check(Prepare("impressions", P("impressions.csv"), "keys/newsco.key", "x.crpkg", "spec.yaml",
                "keys/acme.key"));
  // The key's text itself (as --room-pub takes key text too).
  check(Run("prepare --spec " + Q(P("spec.yaml")) + " --dataset impressions --input " +
            Q(P("impressions.csv")) + " --key " + Q(P("keys/newsco.key")) + " --secret " +
            Q(P("shared.secret")) + " --room-pub " + Q(secret) + " --out " + Q(P("x.crpkg"))));
  EXPECT_FALSE(std::filesystem::exists(P("x.crpkg")));
  // A spec naming a secret key file as a party's public key.
  std::string spec = SpecText();
  spec.replace(spec.find("keys/acme.pub"), 13, "keys/acme.key");
  Spit(P("leaky.yaml"), spec);
  check(Run("spec sign --spec " + Q(P("leaky.yaml")) + " --key " + Q(P("keys/acme.key"))));
  EXPECT_FALSE(std::filesystem::exists(P("leaky.yaml.acme.sig")));
}

// ----- 6. Party names -----------------------------------------------------------------

TEST_F(InputE2e, KeygenRefusesANameNoSpecAccepts) {
  for (const char* name : {"Acme", "news co", "../evil", "9lives", "-x", "a.b",
                           "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}) {
    auto r = Run("keygen --name=" + Q(name) + " --out " + Q(P("new")));
    ExpectRefused(r, 2, "USAGE");
    EXPECT_NE(r.err.find("[a-z_][a-z0-9_-]{0,62}"), std::string::npos) << name << ": " << r.err;
    EXPECT_FALSE(std::filesystem::exists(P("new"))) << name;
  }
  EXPECT_FALSE(std::filesystem::exists(P("evil.key")));
  Ok("keygen --name news-co_2 --out " + Q(P("new")));
  EXPECT_TRUE(std::filesystem::exists(P("new/news-co_2.key")));
}

}  // namespace
}  // namespace cr::testing
