// End to end through the binary: the whole flow, and every refusal of room
// activation, prepare and ingest, each leaving the room unchanged.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "e2e/e2e_fixture.h"

namespace cr::testing {
namespace {

std::string ReadEmailsSample(const std::string& csv, size_t n) {
  std::ifstream in(csv);
  std::string line, out;
  std::getline(in, line);  // header
  size_t k = 0;
  while (k < n && std::getline(in, line)) {
    out += line.substr(0, line.find(',')) + "\n";
    ++k;
  }
  return out;
}

class FoundationE2e : public E2eTest {};

TEST_F(FoundationE2e, WholeFlowAndNoRawIdentifierAnywhere) {
  SetUpRoom();
  Generate();
  auto prep = Prepare("impressions", P("impressions.csv"), "keys/newsco.key", "imp.crpkg");
  ASSERT_EQ(prep.exit_code, 0) << prep.err;
  EXPECT_NE(prep.out.find("3000 rows"), std::string::npos) << prep.out;
  EXPECT_NE(prep.out.find("device"), std::string::npos) << "undeclared column reported";
  ASSERT_EQ(Prepare("purchases", P("purchases.csv"), "keys/acme.key", "pur.crpkg").exit_code, 0);
  auto ing = Ingest(P("imp.crpkg"));
  ASSERT_EQ(ing.exit_code, 0) << ing.err;
  ASSERT_EQ(Ingest(P("pur.crpkg")).exit_code, 0);
  auto verify = Ok("--room " + Q(P("room")) + " audit verify");
  EXPECT_NE(verify.out.find("intact"), std::string::npos);
  auto show = Ok("--room " + Q(P("room")) + " audit show --format json");
  EXPECT_NE(show.out.find("dataset.ingest"), std::string::npos);
  EXPECT_NE(show.out.find("room.activate"), std::string::npos);

  // No email of the input, raw or normalised, appears in a package or the room.
  std::set<std::string> needles;
  std::string sample = ReadEmailsSample(P("impressions.csv"), 200);
  std::istringstream lines(sample);
  std::string e;
  while (std::getline(lines, e)) {
    std::string t = e;
    t.erase(std::remove(t.begin(), t.end(), '"'), t.end());
    t.erase(0, t.find_first_not_of(' '));
    t.erase(t.find_last_not_of(' ') + 1);
    std::string lower = t;
    for (auto& c : lower) c = static_cast<char>(std::tolower(c));
    needles.insert(t);
    needles.insert(lower);
  }
  ASSERT_GT(needles.size(), 50u);
  std::vector<std::string> files = {P("imp.crpkg"), P("pur.crpkg")};
  for (auto& [rel, bytes] : Snapshot(P("room"))) files.push_back(P("room/" + rel));
  for (const auto& f : files) {
    std::string bytes = Slurp(f);
    EXPECT_EQ(bytes.find("@example.com"), std::string::npos) << f;
    for (const auto& n : needles) {
      ASSERT_EQ(bytes.find(n), std::string::npos) << n << " found in " << f;
    }
  }
}

TEST_F(FoundationE2e, ActivationNeedsEveryValidSignature) {
  SetUpRoom(/*activate=*/false);
  std::string room = Q(P("room"));
  auto before = Snapshot(P("room"), "audit.log");
  std::string audit_before = Slurp(P("room/audit.log"));

  // One party only.
  ExpectRefused(Run("--room " + room + " room activate --sig " + Q(P("spec.yaml.acme.sig"))), 5,
                "SIGNATURE_MISSING");
  // A tampered signature.
  std::string sig = Slurp(P("spec.yaml.newsco.sig"));
  auto pos = sig.find('"', sig.find(':', sig.find("\"signature\"")) + 1) + 2;
  std::string bad = sig;
  bad[pos] = bad[pos] == 'A' ? 'B' : 'A';
  Spit(P("bad.sig"), bad);
  ExpectRefused(Run("--room " + room + " room activate --sig " + Q(P("spec.yaml.acme.sig")) + " " +
                    Q(P("bad.sig"))),
                6, "SIGNATURE_INVALID");
  // A signature claiming to come from a party the spec does not list.
  std::string outsider = Slurp(P("spec.yaml.acme.sig"));
  outsider.replace(outsider.find("\"acme\""), 6, "\"mallory\"");
  Spit(P("mallory.sig"), outsider);
  ExpectRefused(Run("--room " + room + " room activate --sig " + Q(P("mallory.sig")) + " " +
                    Q(P("spec.yaml.newsco.sig"))),
                5, "UNKNOWN_SIGNER");
  // A signature over another version of the spec (one byte changed).
  Spit(P("v2.yaml"), SpecText("acme-newsco-2026q4", "Campaign measurement!"));
  Ok("spec sign --spec " + Q(P("v2.yaml")) + " --key " + Q(P("keys/newsco.key")));
  ExpectRefused(Run("--room " + room + " room activate --sig " + Q(P("spec.yaml.acme.sig")) + " " +
                    Q(P("v2.yaml.newsco.sig"))),
                6, "SIGNATURE_INVALID");
  // Nothing changed but the audit log, which recorded each refusal.
  EXPECT_EQ(Snapshot(P("room"), "audit.log"), before);
  EXPECT_GT(Slurp(P("room/audit.log")).size(), audit_before.size());
  // Not active: ingest is refused.
  Generate(300, 100);
  ASSERT_EQ(Prepare("impressions", P("impressions.csv"), "keys/newsco.key", "imp.crpkg").exit_code, 0);
  ExpectRefused(Ingest(P("imp.crpkg")), 3, "ROOM_NOT_ACTIVE");
  Ok("--room " + room + " audit verify");
}

TEST_F(FoundationE2e, SwappingAKeyFileBreaksEverySignature) {
  SetUpRoom(/*activate=*/false);
  // A second room created after newsco's key file was swapped: the spec bytes are
  // identical, but the hash covers the key bytes too.
  Ok("keygen --name evil --out " + Q(P("evil")));
  std::filesystem::copy_file(P("evil/evil.pub"), P("keys/newsco.pub"),
                             std::filesystem::copy_options::overwrite_existing);
  Ok("room init --region eu --room " + Q(P("room2")) + " --spec " + Q(P("spec.yaml")));
  ExpectRefused(Run("--room " + Q(P("room2")) + " room activate --sig " +
                    Q(P("spec.yaml.acme.sig")) + " " + Q(P("spec.yaml.newsco.sig"))),
                6, "SIGNATURE_INVALID");
}

class IngestRefusals : public E2eTest {
 protected:
  void SetUp() override {
    SetUpRoom();
    Generate(900, 200);
    ASSERT_EQ(Prepare("impressions", P("impressions.csv"), "keys/newsco.key", "imp.crpkg").exit_code,
              0);
    before_ = Snapshot(P("room"), "audit.log");
    audit_size_ = Slurp(P("room/audit.log")).size();
  }
  void ExpectRoomUnchanged() {
    EXPECT_EQ(Snapshot(P("room"), "audit.log"), before_);
    std::string audit = Slurp(P("room/audit.log"));
    EXPECT_GT(audit.size(), audit_size_) << "the refusal is audited";
    EXPECT_NE(audit.find("ingest.refused"), std::string::npos);
    Ok("--room " + Q(P("room")) + " audit verify");
  }
  std::map<std::string, std::string> before_;
  size_t audit_size_ = 0;
};

TEST_F(IngestRefusals, AnyChangedByteIsTampering) {
  std::string pkg = Slurp(P("imp.crpkg"));
  // A byte in the header, in the first chunk, in the middle, and in the signature.
  for (size_t pos : {size_t{20}, size_t{200}, pkg.size() / 2, pkg.size() - 5}) {
    std::string bad = pkg;
    bad[pos] ^= 0x01;
    Spit(P("bad.crpkg"), bad);
    ExpectRefused(Ingest(P("bad.crpkg")), 6, "TAMPERED");
  }
  Spit(P("bad.crpkg"), pkg.substr(0, pkg.size() - 100));
  ExpectRefused(Ingest(P("bad.crpkg")), 6, "TAMPERED");
  Spit(P("bad.crpkg"), pkg + "x");
  ExpectRefused(Ingest(P("bad.crpkg")), 6, "TAMPERED");
  // Not a package at all is the wrong file, not tampering (tests/e2e/input_e2e_test.cc).
  Spit(P("bad.crpkg"), "not a package");
  ExpectRefused(Ingest(P("bad.crpkg")), 7, "BAD_INPUT");
  ExpectRoomUnchanged();
}

TEST_F(IngestRefusals, ReplayIsRefused) {
  ASSERT_EQ(Ingest(P("imp.crpkg")).exit_code, 0);
  before_ = Snapshot(P("room"), "audit.log");
  audit_size_ = Slurp(P("room/audit.log")).size();
  ExpectRefused(Ingest(P("imp.crpkg")), 3, "PACKAGE_REPLAYED");
  ExpectRoomUnchanged();
  // Still refused after the dataset was disposed: ids are remembered for ever.
  Ok("--room " + Q(P("room")) + " dispose --dataset impressions");
  ExpectRefused(Ingest(P("imp.crpkg")), 3, "PACKAGE_REPLAYED");
}

TEST_F(IngestRefusals, OtherSpecVersionOrCollaboration) {
  Spit(P("v2.yaml"), SpecText("acme-newsco-2026q4", "Campaign measurement v2"));
  ASSERT_EQ(Prepare("impressions", P("impressions.csv"), "keys/newsco.key", "v2.crpkg", "v2.yaml")
                .exit_code,
            0);
  ExpectRefused(Ingest(P("v2.crpkg")), 3, "SPEC_MISMATCH");
  Spit(P("other.yaml"), SpecText("someone-else-2026"));
  ASSERT_EQ(
      Prepare("impressions", P("impressions.csv"), "keys/newsco.key", "o.crpkg", "other.yaml")
          .exit_code,
      0);
  ExpectRefused(Ingest(P("o.crpkg")), 3, "SPEC_MISMATCH");
  ExpectRoomUnchanged();
}

TEST_F(IngestRefusals, SealedToAnotherRoom) {
  Ok("room init --region eu --room " + Q(P("room2")) + " --spec " + Q(P("spec.yaml")));
  ASSERT_EQ(Prepare("impressions", P("impressions.csv"), "keys/newsco.key", "r2.crpkg",
                    "spec.yaml", "room2/room.pub")
                .exit_code,
            0);
  ExpectRefused(Ingest(P("r2.crpkg")), 5, "KEY_INVALID");
  ExpectRoomUnchanged();
}

class PrepareRefusals : public E2eTest {
 protected:
  void SetUp() override { SetUpRoom(); }
};

TEST_F(PrepareRefusals, CastFailureNamesLineAndColumnButNotValue) {
  Spit(P("bad.csv"),
       "email,campaign,shown_at,cost\n"
       "a@x.com,spring,2026-10-01 10:00:00,1.5\n"
       "b@x.com,spring,2026-10-01 10:00:00,1.25\n"
       "c@x.com,summer,2026-10-02 11:00:00,SECRETVALUE\n");
  auto r = Prepare("impressions", P("bad.csv"), "keys/newsco.key", "bad.crpkg");
  ExpectRefused(r, 7, "CAST_FAILED");
  EXPECT_NE(r.err.find("line 4"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("cost"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("SECRETVALUE"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(P("bad.crpkg")));
  // A bad timestamp likewise.
  Spit(P("bad2.csv"),
       "email,campaign,shown_at,cost\na@x.com,spring,yesterday-ish,1\n");
  r = Prepare("impressions", P("bad2.csv"), "keys/newsco.key", "bad.crpkg");
  ExpectRefused(r, 7, "CAST_FAILED");
  EXPECT_NE(r.err.find("shown_at"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(P("bad.crpkg")));
}

TEST_F(PrepareRefusals, MissingColumnWrongOwnerUnknownDataset) {
  Spit(P("short.csv"), "email,campaign,cost\na@x.com,spring,1\n");
  ExpectRefused(Prepare("impressions", P("short.csv"), "keys/newsco.key", "x.crpkg"), 7,
                "SCHEMA_MISMATCH");
  Generate(300, 100);
  // acme does not own impressions.
  ExpectRefused(Prepare("impressions", P("impressions.csv"), "keys/acme.key", "x.crpkg"), 5,
                "NOT_AUTHORIZED");
  ExpectRefused(Prepare("clicks", P("impressions.csv"), "keys/newsco.key", "x.crpkg"), 7,
                "UNKNOWN_DATASET");
  Ok("keygen --name outsider --out " + Q(P("keys")));
  ExpectRefused(Prepare("impressions", P("impressions.csv"), "keys/outsider.key", "x.crpkg"), 5,
                "UNKNOWN_SIGNER");
  ExpectRefused(Prepare("impressions", P("missing.csv"), "keys/newsco.key", "x.crpkg"), 7,
                "FILE_UNREADABLE");
  EXPECT_FALSE(std::filesystem::exists(P("x.crpkg")));
}

TEST_F(PrepareRefusals, ParquetAndJsonLinesInputs) {
  // Same rows in three formats; messy emails normalise to the same pseudonym,
  // so all three ingest with identical content.
  Spit(P("in.csv"),
       "email,campaign,shown_at,cost,extra\n"
       "\"  Ann@Example.COM \",spring,2026-10-01 10:00:00,1.5,x\n"
       "bob@example.com,summer,2026-10-02 11:00:00,2.5,y\n");
  Spit(P("in.jsonl"),
       "{\"email\": \"ann@example.com\", \"campaign\": \"spring\", \"shown_at\": \"2026-10-01 "
       "10:00:00\", \"cost\": 1.5}\n"
       "{\"email\": \"BOB@example.com\", \"campaign\": \"summer\", \"shown_at\": \"2026-10-02 "
       "11:00:00\", \"cost\": 2.5}\n");
  ASSERT_EQ(Prepare("impressions", P("in.csv"), "keys/newsco.key", "a.crpkg").exit_code, 0);
  auto j = Prepare("impressions", P("in.jsonl"), "keys/newsco.key", "b.crpkg");
  ASSERT_EQ(j.exit_code, 0) << j.err;
  ASSERT_EQ(Ingest(P("a.crpkg")).exit_code, 0);
  auto second = Ingest(P("b.crpkg"));
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_NE(second.out.find("crypto-shredded"), std::string::npos) << "replaces the earlier version";
}

TEST_F(FoundationE2e, KeygenAndSecretRefuseToOverwrite) {
  Ok("keygen --name acme --out " + Q(P("k")));
  struct stat st;
  ASSERT_EQ(stat(P("k/acme.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::string key = Slurp(P("k/acme.key"));
  ExpectRefused(Run("keygen --name acme --out " + Q(P("k"))), 7, "FILE_EXISTS");
  EXPECT_EQ(Slurp(P("k/acme.key")), key);
  Ok("secret new --out " + Q(P("s")));
  std::string secret = Slurp(P("s"));
  EXPECT_EQ(Slurp(P("s")).size(), secret.size());
  ExpectRefused(Run("secret new --out " + Q(P("s"))), 7, "FILE_EXISTS");
  EXPECT_EQ(Slurp(P("s")), secret);
  ExpectRefused(Run("frobnicate"), 2, "USAGE");
}

TEST_F(FoundationE2e, DisposeAndRetentionCryptoShred) {
  SetUpRoom();
  Generate(600, 150);
  ASSERT_EQ(Prepare("impressions", P("impressions.csv"), "keys/newsco.key", "imp.crpkg").exit_code, 0);
  ASSERT_EQ(Prepare("purchases", P("purchases.csv"), "keys/acme.key", "pur.crpkg").exit_code, 0);
  ASSERT_EQ(Ingest(P("imp.crpkg")).exit_code, 0);
  ASSERT_EQ(Ingest(P("pur.crpkg")).exit_code, 0);
  auto count = [&](const std::string& sub) {
    size_t n = 0;
    for (auto& e : std::filesystem::directory_iterator(P("room/" + sub))) n += e.is_regular_file();
    return n;
  };
  EXPECT_EQ(count("data"), 2u);
  EXPECT_EQ(count("keys"), 2u);
  Ok("--room " + Q(P("room")) + " dispose --dataset purchases");
  EXPECT_EQ(count("data"), 1u);
  EXPECT_EQ(count("keys"), 1u);
  ExpectRefused(Run("--room " + Q(P("room")) + " dispose --dataset purchases"), 7,
                "UNKNOWN_DATASET");
  if (!CLEANROOM_TEST_HOOKS_BUILD) return;  // no clock override without test hooks
  // 91 days later, opening the room shreds the rest.
  long long later = static_cast<long long>(std::time(nullptr)) + 91LL * 86400;
  auto r = Run("--room " + Q(P("room")) + " ingest " + Q(P("pur.crpkg")),
               "CLEANROOM_NOW=" + std::to_string(later));
  EXPECT_EQ(count("data"), 0u);
  EXPECT_EQ(count("keys"), 0u);
  auto show = Ok("--room " + Q(P("room")) + " audit show --format json");
  EXPECT_NE(show.out.find("\"retention\""), std::string::npos);
  Ok("--room " + Q(P("room")) + " audit verify");
}

TEST_F(FoundationE2e, AuditVerifyDetectsAChangedEntry) {
  SetUpRoom();
  Ok("--room " + Q(P("room")) + " audit verify");
  std::string log = Slurp(P("room/audit.log"));
  auto pos = log.find("\"actor\":\"operator\"");
  ASSERT_NE(pos, std::string::npos);
  log.replace(pos, 19, "\"actor\":\"opera7or\"");
  Spit(P("room/audit.log"), log);
  ExpectRefused(Run("--room " + Q(P("room")) + " audit verify"), 6, "AUDIT_CHAIN_BROKEN");
}

}  // namespace
}  // namespace cr::testing
