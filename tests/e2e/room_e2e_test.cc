// The room through the binary: the CLI adds no audit record of its own, a
// damaged room file never gives INTERNAL, dispose says what it did, retention
// runs on the injected clock, and a bad clock override is refused.
#include <algorithm>
#include <ctime>
#include <filesystem>

#include "e2e/e2e_fixture.h"

namespace cr::testing {
namespace {

class RoomE2e : public E2eTest {
 protected:
  std::string R() { return "--room " + Q(P("room")) + " "; }

  size_t AuditLines() {
    std::string log = Slurp(P("room/audit.log"));
    return static_cast<size_t>(std::count(log.begin(), log.end(), '\n'));
  }
  // The event of the last audit entry, read through the binary.
  std::string LastEvent() {
    auto show = Ok(R() + "audit show --format json");  // one JSON array of entries
    auto entries = nlohmann::json::parse(show.out, nullptr, false);
    if (!entries.is_array() || entries.empty()) return "";
    return entries.back().value("event", "");
  }
  size_t CountEvent(const std::string& event) {
    auto show = Ok(R() + "audit show --format json");
    size_t n = 0;
    for (size_t at = 0; (at = show.out.find("\"event\":\"" + event + "\"", at)) != std::string::npos;
         ++at) {
      ++n;
    }
    return n;
  }

  // Both packages prepared; impressions ingested.
  void SetUpData(const std::string& env = "") {
    SetUpRoom();
    Generate(600, 150);
    ASSERT_EQ(Prepare("impressions", P("impressions.csv"), "keys/newsco.key", "imp.crpkg").exit_code, 0);
    ASSERT_EQ(Prepare("purchases", P("purchases.csv"), "keys/acme.key", "pur.crpkg").exit_code, 0);
    auto r = Run(R() + "ingest " + Q(P("imp.crpkg")), env);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
};

TEST_F(RoomE2e, RefusalsAreAuditedOnceNotAgainByTheCli) {
  SetUpRoom(/*activate=*/false);
  size_t before = AuditLines();
  auto r = Run(R() + "room activate --sig " + Q(P("spec.yaml.acme.sig")));
  ExpectRefused(r, 5, "SIGNATURE_MISSING");
  EXPECT_EQ(AuditLines(), before + 1);
  EXPECT_EQ(LastEvent(), "room.activate.refused");
  Ok(R() + "room activate --sig " + Q(P("spec.yaml.acme.sig")) + " " + Q(P("spec.yaml.newsco.sig")));
  EXPECT_EQ(AuditLines(), before + 2);
  EXPECT_EQ(LastEvent(), "room.activate");

  Generate(600, 150);
  ASSERT_EQ(Prepare("impressions", P("impressions.csv"), "keys/newsco.key", "imp.crpkg").exit_code, 0);
  before = AuditLines();
  Ok(R() + "ingest " + Q(P("imp.crpkg")));
  EXPECT_EQ(AuditLines(), before + 1);
  EXPECT_EQ(LastEvent(), "dataset.ingest");
  auto files = Snapshot(P("room"), "audit.log");
  ExpectRefused(Ingest(P("imp.crpkg")), 3, "PACKAGE_REPLAYED");
  EXPECT_EQ(AuditLines(), before + 2);
  EXPECT_EQ(LastEvent(), "ingest.refused");
  EXPECT_EQ(Snapshot(P("room"), "audit.log"), files);

  before = AuditLines();
  ExpectRefused(Run(R() + "dispose --dataset purchases"), 7, "UNKNOWN_DATASET");
  EXPECT_EQ(AuditLines(), before + 1);
  EXPECT_EQ(LastEvent(), "dataset.dispose.refused");
  EXPECT_EQ(Snapshot(P("room"), "audit.log"), files);
  Ok(R() + "audit verify");
}

TEST_F(RoomE2e, DisposeSaysDisposedAndASecondDisposeSaysAlreadyDisposed) {
  SetUpData();
  size_t before = AuditLines();
  auto r = Ok(R() + "dispose --dataset impressions");
  EXPECT_NE(r.out.find("impressions disposed: key and ciphertext deleted"), std::string::npos)
      << r.out;
  EXPECT_EQ(AuditLines(), before + 1);
  EXPECT_EQ(LastEvent(), "dataset.dispose");
  auto again = Run(R() + "dispose --dataset impressions");
  ExpectRefused(again, 7, "UNKNOWN_DATASET");
  EXPECT_NE(again.err.find("already disposed"), std::string::npos) << again.err;
  auto never = Run(R() + "dispose --dataset purchases");
  ExpectRefused(never, 7, "UNKNOWN_DATASET");
  EXPECT_EQ(never.err.find("already disposed"), std::string::npos) << never.err;
  EXPECT_EQ(AuditLines(), before + 3);
}

TEST_F(RoomE2e, RetentionShredsOnTheClockAndKeepsTheYounger) {
  if (!CLEANROOM_TEST_HOOKS_BUILD) GTEST_SKIP() << "built without test hooks: no clock override";
  const long long t0 = 1764633600LL;  // 2025-12-02T00:00:00Z
  auto at = [&](long long days) { return "CLEANROOM_NOW=" + std::to_string(t0 + days * 86400); };
  SetUpData(at(0));
  // Day 60: purchases arrive; impressions (60 days old) stay.
  auto r = Run(R() + "ingest " + Q(P("pur.crpkg")), at(60));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(CountEvent("dataset.dispose"), 0u);
  // Day 89: nothing is past 90 days yet (a refused replay still opens the room).
  auto files = Snapshot(P("room"), "audit.log");
  ExpectRefused(Run(R() + "ingest " + Q(P("pur.crpkg")), at(89)), 3, "PACKAGE_REPLAYED");
  EXPECT_EQ(Snapshot(P("room"), "audit.log"), files);
  EXPECT_EQ(CountEvent("dataset.dispose"), 0u);
  // Day 91: impressions are shredded at open, once, with reason retention.
  size_t keys_before = 0;
  for (auto& e : std::filesystem::directory_iterator(P("room/keys"))) keys_before += e.is_regular_file();
  EXPECT_EQ(keys_before, 2u);
  ExpectRefused(Run(R() + "ingest " + Q(P("pur.crpkg")), at(91)), 3, "PACKAGE_REPLAYED");
  size_t keys_after = 0;
  for (auto& e : std::filesystem::directory_iterator(P("room/keys"))) keys_after += e.is_regular_file();
  EXPECT_EQ(keys_after, 1u);
  auto show = Ok(R() + "audit show --format json");
  EXPECT_EQ(CountEvent("dataset.dispose"), 1u);
  EXPECT_NE(show.out.find("\"reason\":\"retention\""), std::string::npos);
  EXPECT_NE(show.out.find("2026-03-03T00:00:00Z"), std::string::npos);  // stamped by the override
  // The survivor is the younger dataset.
  auto dispose = Run(R() + "dispose --dataset impressions", at(91));
  EXPECT_NE(dispose.err.find("already disposed"), std::string::npos) << dispose.err;
  Ok(R() + "audit verify");
}

TEST_F(RoomE2e, AClockOverrideThatDoesNotParseIsRefusedNever1970) {
  SetUpData();
  auto files = Snapshot(P("room"));
  for (const char* bad : {"abc", "-5", "12x", "", " 1764633600", "1.5", "2026-12-01"}) {
    auto r = Run(R() + "dispose --dataset impressions", std::string("CLEANROOM_NOW=") + Q(bad));
    ExpectRefused(r, 2, "USAGE");
    EXPECT_NE(r.err.find("CLEANROOM_NOW"), std::string::npos) << r.err;
    EXPECT_EQ(Snapshot(P("room")), files) << bad;
  }
}

// Each damage to each room file: exit 6 with TAMPERED or AUDIT_CHAIN_BROKEN,
// never INTERNAL, and the room byte-for-byte as the damage left it.
TEST_F(RoomE2e, DamagedRoomFilesNeverGiveInternal) {
  SetUpData();
  const auto good = Snapshot(P("room"));
  auto key_mode = [&] { std::filesystem::permissions(P("room/keystore.json"), std::filesystem::perms(0600)); };
  struct Damage {
    std::string file;
    std::string name;
    std::string bytes;  // "\x01missing" deletes the file
  };
  std::vector<Damage> damages;
  for (const std::string f : {"state.json", "catalog.json", "spec-keys.json", "spec.yaml", "room.pub",
                              "keystore.json", "audit.log"}) {
    const std::string& b = good.at(f);
    damages.push_back({f, "missing", "\x01missing"});
    damages.push_back({f, "empty", ""});
    damages.push_back({f, "truncated", b.substr(0, b.size() / 2)});
    std::string flipped = b;
    flipped[b.size() - 3] ^= 0x40;
    damages.push_back({f, "flipped near the end", flipped});
  }
  // The reported case: a value of spec-keys.json of the wrong type.
  std::string keys = good.at("spec-keys.json");
  auto colon = keys.find(": \"");
  ASSERT_NE(colon, std::string::npos);
  damages.push_back({"spec-keys.json", "a number for a key",
                     keys.substr(0, colon + 2) + "5" + keys.substr(keys.find('"', colon + 3) + 1)});
  std::string catalog = good.at("catalog.json");
  auto rows = catalog.find("\"rows\": ");
  ASSERT_NE(rows, std::string::npos);
  damages.push_back({"catalog.json", "rows as a string",
                     catalog.substr(0, rows + 8) + "\"many\"" +
                         catalog.substr(catalog.find_first_of(",\n", rows + 8))});

  for (const auto& d : damages) {
    for (const auto& [rel, bytes] : good) Spit(P("room/" + rel), bytes);
    key_mode();
    if (d.bytes == "\x01missing") {
      std::filesystem::remove(P("room/" + d.file));
    } else {
      Spit(P("room/" + d.file), d.bytes);
    }
    const auto damaged = Snapshot(P("room"));
    for (const std::string& cmd : {"ingest " + Q(P("pur.crpkg")), std::string("dispose --dataset impressions")}) {
      auto r = Run(R() + cmd);
      const std::string what = d.file + " " + d.name + ", " + cmd;
      EXPECT_EQ(r.err.find("error[INTERNAL]"), std::string::npos) << what << ": " << r.err;
      EXPECT_EQ(r.exit_code, 6) << what << ": " << r.err;
      const bool code_ok = r.err.find("error[TAMPERED]") != std::string::npos ||
                           r.err.find("error[AUDIT_CHAIN_BROKEN]") != std::string::npos;
      EXPECT_TRUE(code_ok) << what << ": " << r.err;
      EXPECT_EQ(Snapshot(P("room")), damaged) << what << ": the refused command changed the room";
    }
  }
  for (const auto& [rel, bytes] : good) Spit(P("room/" + rel), bytes);
  key_mode();
  Ok(R() + "audit verify");
}

}  // namespace
}  // namespace cr::testing
