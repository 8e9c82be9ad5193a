// End to end through the binary: `spec check`, the refusal of specs that ask for
// differential privacy (not supported yet), `status` and `datasets`, and the
// complete example of docs/spec-reference.md.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/files.h"
#include "crypto/crypto.h"
#include "e2e/e2e_fixture.h"
#include "room/sealed_meta.h"
#include "spec/spec.h"

namespace cr::testing {
namespace {

using nlohmann::json;

// The campaign spec asking for differential privacy: privacy.dp (line 11) and
// a rule's require_dp.
std::string DpSpecText() {
  std::string text = SpecText();
  const std::string threshold = "  min_distinct_units: 50\n";
  const std::string receivers = "      receivers: [acme, newsco]\n";
  text.insert(text.find(threshold) + threshold.size(), "  dp: {epsilon: 1, delta: 1.0e-6}\n");
  text.insert(text.find(receivers) + receivers.size(), "      require_dp: true\n");
  return text;
}

std::string Le64(uint64_t n) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out;
}

class SpecE2e : public E2eTest {
 protected:
  void SetUp() override { ASSERT_TRUE(crypto::Init()); }

  void Keys() {
    Ok("keygen --name acme --out " + Q(P("keys")));
    Ok("keygen --name newsco --out " + Q(P("keys")));
  }

  json Json(const RunResult& r) {
    json j = json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out;
    EXPECT_TRUE(j.is_object()) << r.out;
    return j;
  }

  // The spec hash as the parties sign it: what `spec sign` wrote.
  std::string SignedHash(const std::string& spec, const std::string& party) {
    Ok("spec sign --spec " + Q(P(spec)) + " --key " + Q(P("keys/" + party + ".key")));
    return json::parse(Slurp(P(spec + "." + party + ".sig"))).at("spec_hash");
  }

  // The spec hash of `text` with the campaign spec's two key files, computed
  // from the documented encoding (docs/spec-reference.md), not by the parser.
  std::string HashOf(const std::string& text) {
    std::string acme = Slurp(P("keys/acme.pub")), newsco = Slurp(P("keys/newsco.pub"));
    std::string encoding = std::string("cleanroom-spec-v1\0", 18) + Le64(text.size()) + text +
                           Le64(4) + "acme" + Le64(acme.size()) + acme + Le64(6) + "newsco" +
                           Le64(newsco.size()) + newsco;
    return ToHex(crypto::Sha256(encoding));
  }

  // A party's signature over `hash`, made with its key as `spec sign` would.
  void WriteSignature(const std::string& party, const std::string& hash, const std::string& out) {
    auto id = crypto::Identity::Load(P("keys/" + party + ".key"));
    ASSERT_TRUE(id) << id.error().ToString();
    spec::Signature sig{party, "acme-newsco-2026q4", hash,
                        id->Sign(std::string("cleanroom-spec-signature-v1\0", 28) +
                                 "acme-newsco-2026q4" + '\0' + hash)};
    Spit(out, spec::SignatureToJson(sig));
  }

  std::string RoomArg(const std::string& room = "room") { return "--room " + Q(P(room)); }
};

// ----- spec check --------------------------------------------------------------------

TEST_F(SpecE2e, CheckPrintsTheSummary) {
  Keys();
  Spit(P("spec.yaml"), SpecText());
  auto before = Snapshot(dir_.path());
  auto r = Ok("spec check --spec " + Q(P("spec.yaml")));
  EXPECT_EQ(Snapshot(dir_.path()), before) << "spec check wrote something";
  std::string hash = SignedHash("spec.yaml", "acme");
  const std::string& out = r.out;
  for (const std::string& want : std::vector<std::string>{
           std::string("spec.yaml: valid"),
           "collaboration  acme-newsco-2026q4",
           "description    Campaign measurement",
           "spec hash      " + hash,
           "region         eu",
           "retention      90 days after ingest",
           "threshold      min_distinct_units 50 (default)",
           // parties: abilities, key fingerprint, key file
           "acme    contribute, query, receive_results  " +
               crypto::LoadPublic(P("keys/acme.pub"))->Fingerprint() + "  keys/acme.pub",
           "newsco  contribute, receive_results         " +
               crypto::LoadPublic(P("keys/newsco.pub"))->Fingerprint() + "  keys/newsco.pub",
           // datasets: columns with type, role, normalisation, bounds
           "impressions: owner newsco, privacy unit column email",
           "email     string     join_key   email      -",
           "cost      double     metric     -          [0, 5]",
           "amount  double  metric     -          [0, 500]",
           // rules: the threshold in force, receivers, aggregates
           "threshold       min_distinct_units 100 (rule)",
           "    threshold       min_distinct_units 50 (default)\n    receivers       acme\n",
           "receivers       acme, newsco",
           "aggregates      email: count_distinct; cost: sum, avg",
           "aggregates      email: count_distinct; amount: sum, avg, count",
           "join operators  and",
           "templates (1)",
           "conversions_by_campaign(since date)",
       }) {
    EXPECT_NE(out.find(want), std::string::npos) << "missing: " << want << "\n" << out;
  }
}

TEST_F(SpecE2e, CheckJsonIsOneObjectWithEveryPart) {
  Keys();
  Spit(P("spec.yaml"), SpecText());
  auto r = Ok("spec check --spec " + Q(P("spec.yaml")) + " --format json");
  json j = Json(r);
  EXPECT_EQ(j["collaboration"], "acme-newsco-2026q4");
  EXPECT_EQ(j["description"], "Campaign measurement");
  EXPECT_EQ(j["spec_hash"], SignedHash("spec.yaml", "newsco"));
  EXPECT_EQ(j["region"], "eu");
  EXPECT_EQ(j["retention_days"], 90);
  EXPECT_EQ(j["privacy"], json({{"unit", "person"}, {"min_distinct_units", 50}, {"difference_checks", true}}));

  ASSERT_EQ(j["parties"].size(), 2u);
  EXPECT_EQ(j["parties"][0]["name"], "acme");
  EXPECT_EQ(j["parties"][0]["abilities"], json({"contribute", "query", "receive_results"}));
  EXPECT_EQ(j["parties"][0]["key_file"], "keys/acme.pub");
  EXPECT_EQ(j["parties"][1]["key_fingerprint"],
            crypto::LoadPublic(P("keys/newsco.pub"))->Fingerprint());

  ASSERT_EQ(j["datasets"].size(), 2u);
  const json& imp = j["datasets"][0];
  EXPECT_EQ(imp["name"], "impressions");
  EXPECT_EQ(imp["owner"], "newsco");
  EXPECT_EQ(imp["privacy_unit_column"], "email");
  ASSERT_EQ(imp["columns"].size(), 4u);
  EXPECT_EQ(imp["columns"][0], json({{"name", "email"},
                                     {"type", "string"},
                                     {"role", "join_key"},
                                     {"normalize", "email"},
                                     {"bounds", nullptr}}));
  EXPECT_EQ(imp["columns"][3]["bounds"], json({0.0, 5.0}));
  EXPECT_EQ(imp["rule"]["kind"], "aggregation");
  EXPECT_EQ(imp["rule"]["min_distinct_units"], 100);
  EXPECT_EQ(imp["rule"]["min_distinct_units_from"], "rule");
  EXPECT_EQ(imp["rule"]["receivers"], json({"acme", "newsco"}));
  EXPECT_EQ(imp["rule"]["aggregates"]["cost"], json({"sum", "avg"}));
  EXPECT_EQ(imp["rule"]["join_operators"], json({"and"}));
  const json& pur = j["datasets"][1];
  EXPECT_EQ(pur["rule"]["min_distinct_units"], 50);
  EXPECT_EQ(pur["rule"]["min_distinct_units_from"], "default");

  ASSERT_EQ(j["templates"].size(), 1u);
  EXPECT_EQ(j["templates"][0]["name"], "conversions_by_campaign");
  EXPECT_EQ(j["templates"][0]["parameters"], json::array({{{"name", "since"}, {"type", "date"}}}));
}

TEST_F(SpecE2e, CheckRefusesABadSpecNamingTheField) {
  Keys();
  std::string text = SpecText();
  text.replace(text.find("bounds: [0, 5]"), 14, "bounds: [5, 0]");
  Spit(P("spec.yaml"), text);
  auto before = Snapshot(dir_.path());
  auto r = Run("spec check --spec " + Q(P("spec.yaml")));
  ExpectRefused(r, 7, "SPEC_INVALID");
  EXPECT_NE(r.err.find("datasets.impressions.columns.cost.bounds"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("(line 19)"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(Snapshot(dir_.path()), before);

  auto j = Run("spec check --spec " + Q(P("spec.yaml")) + " --format json");
  ExpectRefused(j, 7, "SPEC_INVALID");
  EXPECT_EQ(j.out, "");
}

TEST_F(SpecE2e, CheckRefusesAMissingKeyFile) {
  Keys();
  Spit(P("spec.yaml"), SpecText());
  std::filesystem::remove(P("keys/newsco.pub"));
  auto r = Run("spec check --spec " + Q(P("spec.yaml")));
  ExpectRefused(r, 7, "FILE_UNREADABLE");
  EXPECT_NE(r.err.find("parties.newsco.public_key"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");

  ExpectRefused(Run("spec check --spec " + Q(P("absent.yaml"))), 7, "FILE_UNREADABLE");
  ExpectRefused(Run("spec check"), 2, "USAGE");
}

TEST_F(SpecE2e, CheckRefusesCsv) {
  Keys();
  Spit(P("spec.yaml"), SpecText());
  ExpectRefused(Run("spec check --spec " + Q(P("spec.yaml")) + " --format csv"), 2, "USAGE");
}

// ----- DP keys: accepted now that the room adds the noise ---------------------------

TEST_F(SpecE2e, CheckShowsDpSettings) {
  Keys();
  Spit(P("spec.yaml"), DpSpecText());
  auto r = Ok("spec check --spec " + Q(P("spec.yaml")) + " --format json");
  json j = json::parse(r.out);
  EXPECT_EQ(j["privacy"]["dp"]["epsilon"], 1);
  EXPECT_EQ(j["privacy"]["dp"]["delta"], 1.0e-6);
  EXPECT_EQ(j["privacy"]["dp"]["query_epsilon"], 0.1);
  Ok("spec sign --spec " + Q(P("spec.yaml")) + " --key " + Q(P("keys/acme.key")));
  EXPECT_TRUE(std::filesystem::exists(P("spec.yaml.acme.sig")));
}

TEST_F(SpecE2e, RequireDpWithoutPrivacyDpIsRefusedNamingTheLine) {
  Keys();
  std::string text = SpecText();
  const std::string receivers = "      receivers: [acme, newsco]\n";
  text.insert(text.find(receivers) + receivers.size(), "      require_dp: true\n");
  Spit(P("spec.yaml"), text);
  auto before = Snapshot(dir_.path());
  auto r = Run("room init --region eu --room " + Q(P("room")) + " --spec " + Q(P("spec.yaml")));
  ExpectRefused(r, 7, "SPEC_INVALID");
  EXPECT_NE(r.err.find("datasets.impressions.rule.require_dp: requires privacy.dp (line 25)"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(std::filesystem::exists(P("room")));
  EXPECT_EQ(Snapshot(dir_.path()), before);
}

// ----- status -------------------------------------------------------------------------

TEST_F(SpecE2e, StatusBeforeAndAfterActivation) {
  SetUpRoom(/*activate=*/false);
  auto before = Snapshot(P("room"));
  auto r = Ok(RoomArg() + " status");
  EXPECT_EQ(Snapshot(P("room")), before) << "status changed the room (audit.log included)";
  std::string hash = json::parse(Slurp(P("spec.yaml.acme.sig"))).at("spec_hash");
  for (const std::string& want : std::vector<std::string>{
           std::string("collaboration  acme-newsco-2026q4"),
           "spec hash      " + hash,
           "room format    1",
           "status         initialized, not active",
           "region         eu",
           "retention      90 days after ingest",
           "engine         duckdb",
           "datasets       0 stored of 2 in the spec",
           "acme    not signed  contribute, query, receive_results",
           "newsco  not signed  contribute, receive_results",
       }) {
    EXPECT_NE(r.out.find(want), std::string::npos) << "missing: " << want << "\n" << r.out;
  }
  json j = Json(Ok(RoomArg() + " status --format json"));
  EXPECT_EQ(j["collaboration"], "acme-newsco-2026q4");
  EXPECT_EQ(j["spec_hash"], hash);
  EXPECT_EQ(j["room_format"], 1);
  EXPECT_EQ(j["status"], "initialized");
  EXPECT_EQ(j["active"], false);
  EXPECT_EQ(j["activated_at"], nullptr);
  EXPECT_EQ(j["region"], "eu");
  EXPECT_EQ(j["retention_days"], 90);
  EXPECT_EQ(j["engine"], "duckdb");
  EXPECT_EQ(j["room_key_fingerprint"], crypto::LoadPublic(P("room/room.pub"))->Fingerprint());
  EXPECT_EQ(j["datasets_declared"], 2);
  EXPECT_EQ(j["datasets_stored"], 0);
  ASSERT_EQ(j["parties"].size(), 2u);
  EXPECT_EQ(j["parties"][0]["name"], "acme");
  EXPECT_EQ(j["parties"][0]["abilities"], json({"contribute", "query", "receive_results"}));
  EXPECT_EQ(j["parties"][0]["signed"], false);
  EXPECT_EQ(j["parties"][1]["signed"], false);

  Ok(RoomArg() + " room activate --sig " + Q(P("spec.yaml.acme.sig")) + " " +
     Q(P("spec.yaml.newsco.sig")));
  Generate(600, 150);
  ASSERT_EQ(Prepare("impressions", P("impressions.csv"), "keys/newsco.key", "imp.crpkg").exit_code,
            0);
  ASSERT_EQ(Ingest(P("imp.crpkg")).exit_code, 0);

  auto after = Ok(RoomArg() + " status");
  EXPECT_NE(after.out.find("status         active since 20"), std::string::npos) << after.out;
  EXPECT_NE(after.out.find("acme    signed      contribute"), std::string::npos) << after.out;
  EXPECT_NE(after.out.find("newsco  signed      contribute"), std::string::npos) << after.out;
  EXPECT_NE(after.out.find("datasets       1 stored of 2 in the spec"), std::string::npos)
      << after.out;
  json a = Json(Ok(RoomArg() + " status --format json"));
  EXPECT_EQ(a["status"], "active");
  EXPECT_EQ(a["active"], true);
  EXPECT_TRUE(a["activated_at"].is_string());
  EXPECT_EQ(a["parties"][0]["signed"], true);
  EXPECT_EQ(a["parties"][1]["signed"], true);
  EXPECT_EQ(a["datasets_stored"], 1);

  ExpectRefused(Run("status"), 2, "USAGE");
  ExpectRefused(Run(RoomArg("nowhere") + " status"), 7, "FILE_UNREADABLE");
  ExpectRefused(Run(RoomArg() + " status --format csv"), 2, "USAGE");
}

// ----- datasets -----------------------------------------------------------------------

TEST_F(SpecE2e, DatasetsListsWhatTheRoomHoldsNeverValues) {
  SetUpRoom();
  Generate(600, 150);
  auto empty = Ok(RoomArg() + " datasets");
  EXPECT_NE(empty.out.find("impressions (owner newsco): not contributed"), std::string::npos)
      << empty.out;
  EXPECT_NE(empty.out.find("purchases (owner acme): not contributed"), std::string::npos)
      << empty.out;

  ASSERT_EQ(Prepare("impressions", P("impressions.csv"), "keys/newsco.key", "imp.crpkg").exit_code,
            0);
  ASSERT_EQ(Ingest(P("imp.crpkg")).exit_code, 0);
  auto before = Snapshot(P("room"));
  auto r = Ok(RoomArg() + " datasets");
  EXPECT_EQ(Snapshot(P("room")), before) << "datasets changed the room (audit.log included)";
  json catalog = json::parse(Slurp(P("room/catalog.json")));
  const json& entry = catalog["datasets"]["impressions"];
  std::string package_id = entry["package_id"], ingested_at = entry["ingested_at"];
  for (const std::string& want : std::vector<std::string>{
           std::string("impressions (owner newsco): stored"),
           "  rows           600",
           "  version        package " + package_id + " (1 contribution)",
           "  ingested at    " + ingested_at,
           "    email     UUID       join_key",
           "    campaign  VARCHAR    dimension",
           "    shown_at  TIMESTAMP  dimension",
           "    cost      DOUBLE     metric",
           "purchases (owner acme): not contributed",
       }) {
    EXPECT_NE(r.out.find(want), std::string::npos) << "missing: " << want << "\n" << r.out;
  }
  // Never a value: no cell of the input appears in the listing.
  std::ifstream csv(P("impressions.csv"));
  std::string line;
  std::getline(csv, line);  // header
  for (int i = 0; i < 50 && std::getline(csv, line); ++i) {
    std::stringstream cells(line);
    std::string cell;
    while (std::getline(cells, cell, ',')) {
      if (cell.size() < 4) continue;  // short numbers could match a count by chance
      EXPECT_EQ(r.out.find(cell), std::string::npos) << "value in output: " << cell;
    }
  }

  json j = Json(Ok(RoomArg() + " datasets --format json"));
  ASSERT_EQ(j["datasets"].size(), 2u);
  const json& imp = j["datasets"][0];
  EXPECT_EQ(imp["name"], "impressions");
  EXPECT_EQ(imp["owner"], "newsco");
  EXPECT_EQ(imp["state"], "stored");
  EXPECT_EQ(imp["rows"], 600);
  EXPECT_EQ(imp["package_id"], package_id);
  EXPECT_EQ(imp["contributions"], 1);
  EXPECT_EQ(imp["ingested_at"], ingested_at);
  EXPECT_EQ(imp["expired"], false);
  long long ingested_unix = entry["ingested_unix"];
  time_t until = static_cast<time_t>(ingested_unix + 90LL * 86400);
  char buf[32];
  struct tm tm {};
  gmtime_r(&until, &tm);
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  EXPECT_EQ(imp["retain_until"], buf);
  EXPECT_NE(r.out.find(std::string("  retained until ") + buf), std::string::npos) << r.out;
  ASSERT_EQ(imp["columns"].size(), 4u);
  EXPECT_EQ(imp["columns"][0], json({{"name", "email"}, {"type", "UUID"}, {"role", "join_key"}}));
  EXPECT_EQ(j["datasets"][1], json({{"name", "purchases"},
                                    {"owner", "acme"},
                                    {"state", "not contributed"},
                                    {"contributions", 0}}));

  // A second contribution replaces the first: a new version, two contributions.
  Generate(900, 150);
  ASSERT_EQ(Prepare("impressions", P("impressions.csv"), "keys/newsco.key", "imp2.crpkg").exit_code,
            0);
  ASSERT_EQ(Ingest(P("imp2.crpkg")).exit_code, 0);
  json v2 = Json(Ok(RoomArg() + " datasets --format json"));
  EXPECT_EQ(v2["datasets"][0]["rows"], 900);
  EXPECT_EQ(v2["datasets"][0]["contributions"], 2);
  EXPECT_NE(v2["datasets"][0]["package_id"], package_id);

  // Disposed data is listed as disposed, with nothing about what it held.
  Ok(RoomArg() + " dispose --dataset impressions");
  json gone = Json(Ok(RoomArg() + " datasets --format json"));
  EXPECT_EQ(gone["datasets"][0], json({{"name", "impressions"},
                                       {"owner", "newsco"},
                                       {"state", "disposed"},
                                       {"contributions", 2}}));
  EXPECT_NE(Ok(RoomArg() + " datasets").out.find("impressions (owner newsco): disposed"),
            std::string::npos);
}

// Inspection takes no lock and shreds nothing: past retention a dataset is
// reported as expired and left for the next read-write open to dispose.
TEST_F(SpecE2e, InspectionIsReadOnlyEvenWhenRetentionIsDue) {
  SetUpRoom();
  Generate(600, 150);
  ASSERT_EQ(Prepare("impressions", P("impressions.csv"), "keys/newsco.key", "imp.crpkg").exit_code,
            0);
  // The data arrived 91 days ago (the catalogue is sealed and its hash is in
  // the log: the time is set at ingest, not edited afterwards).
  long long long_ago = static_cast<long long>(std::time(nullptr)) - 91LL * 86400;
  ASSERT_EQ(Run("--room " + Q(P("room")) + " ingest " + Q(P("imp.crpkg")),
                "CLEANROOM_NOW=" + std::to_string(long_ago)).exit_code, 0);
  json catalog = json::parse(Slurp(P("room/catalog.json")));
  std::string package_id = catalog["datasets"]["impressions"]["package_id"];
  ASSERT_TRUE(std::filesystem::exists(P("room/data/impressions-" + package_id + ".crdata")));

  // Another command holds the room's lock.
  int fd = ::open(P("room").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  auto before = Snapshot(P("room"));
  json j = Json(Ok(RoomArg() + " datasets --format json"));
  EXPECT_EQ(j["datasets"][0]["state"], "stored");
  EXPECT_EQ(j["datasets"][0]["expired"], true);
  EXPECT_NE(Ok(RoomArg() + " datasets").out.find("(expired: shredded when the room is next "
                                                 "opened for a change)"),
            std::string::npos);
  EXPECT_EQ(Json(Ok(RoomArg() + " status --format json"))["datasets_stored"], 1);
  EXPECT_EQ(Snapshot(P("room")), before);
  ::close(fd);

  // A read-write open (here: a replayed ingest, refused after opening) applies retention.
  Run(RoomArg() + " ingest " + Q(P("imp.crpkg")));
  EXPECT_EQ(Json(Ok(RoomArg() + " datasets --format json"))["datasets"][0]["state"], "disposed");
  EXPECT_FALSE(std::filesystem::exists(P("room/data/impressions-" + package_id + ".crdata")));
}

// ----- docs/spec-reference.md ----------------------------------------------------------

// The reference ends with a complete example using every rule kind: it must be
// a spec `spec check` accepts, with keys made by keygen.
TEST_F(SpecE2e, ReferenceExampleIsAcceptedBySpecCheck) {
  std::string doc = Slurp(std::string(CLEANROOM_SOURCE_DIR) + "/docs/spec-reference.md");
  const std::string open = "```yaml\n";
  size_t start = doc.rfind(open);
  ASSERT_NE(start, std::string::npos) << "no ```yaml block in docs/spec-reference.md";
  start += open.size();
  size_t end = doc.find("```", start);
  ASSERT_NE(end, std::string::npos);
  std::string example = doc.substr(start, end - start);
  EXPECT_EQ(doc.find_first_not_of(" \n", end + 3), std::string::npos)
      << "the example must be the last thing in the reference";

  std::regex key_file(R"(public_key:\s*([A-Za-z0-9_./-]+)/([a-z_][a-z0-9_-]*)\.pub)");
  std::set<std::string> parties;
  for (auto it = std::sregex_iterator(example.begin(), example.end(), key_file);
       it != std::sregex_iterator(); ++it) {
    Ok("keygen --name " + (*it)[2].str() + " --out " + Q(P((*it)[1].str())));
    parties.insert((*it)[2].str());
  }
  EXPECT_GE(parties.size(), 2u);
  Spit(P("example.yaml"), example);
  Ok("spec check --spec " + Q(P("example.yaml")));
  json j = Json(Ok("spec check --spec " + Q(P("example.yaml")) + " --format json"));
  std::set<std::string> kinds;
  for (const auto& d : j["datasets"]) kinds.insert(d["rule"]["kind"].get<std::string>());
  EXPECT_EQ(kinds, (std::set<std::string>{"aggregation", "list", "custom"}));
  EXPECT_FALSE(j["templates"].empty());
}

}  // namespace
}  // namespace cr::testing
