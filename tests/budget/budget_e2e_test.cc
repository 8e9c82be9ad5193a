// `cleanroom budget` through the binary: a room without privacy.dp, and the
// ledger's head anchored in the audit log (a budget.log put back or cut is
// refused before any DP query runs).
#include <nlohmann/json.hpp>

#include "e2e/e2e_fixture.h"

namespace cr::testing {
namespace {

class BudgetE2eTest : public E2eTest {};

TEST_F(BudgetE2eTest, NonDpRoomSaysDpIsNotEnabled) {
  SetUpRoom();
  auto before = Snapshot(P("room"));
  auto json = Ok("budget --room " + Q(P("room")) + " --format json");
  auto j = nlohmann::json::parse(json.out);
  EXPECT_EQ(j["dp_enabled"], false);
  EXPECT_EQ(j["epsilon_total"], 0);
  EXPECT_EQ(j["epsilon_spent"], 0);
  EXPECT_EQ(j["epsilon_left"], 0);
  auto table = Ok("--room " + Q(P("room")) + " budget");
  EXPECT_NE(table.out.find("not enabled"), std::string::npos) << table.out;
  EXPECT_EQ(Snapshot(P("room")), before);  // looking changes nothing
  EXPECT_EQ(before.count("budget.log"), 0u);
}

TEST_F(BudgetE2eTest, NeedsARoom) {
  ExpectRefused(Run("budget"), 2, "USAGE");
  ExpectRefused(Run("budget --room " + Q(P("nowhere"))), 7, "FILE_UNREADABLE");
  ExpectRefused(Run("budget --room " + Q(P("nowhere")) + " --format csv"), 2, "USAGE");
}

// A DP room (budget 5, monthly) with both datasets ingested.
class BudgetAnchorE2e : public E2eTest {
 protected:
  void SetUp() override {
    E2eTest::SetUp();
    std::string text = SpecText();
    const std::string threshold = "  min_distinct_units: 50\n";
    text.insert(text.find(threshold) + threshold.size(),
                "  dp: {epsilon: 5, delta: 1.0e-6, max_groups_per_unit: 4, refresh: monthly}\n");
    SetUpRoom(true, text);
    Generate(3000, 600);
    ASSERT_EQ(Prepare("impressions", P("impressions.csv"), "keys/newsco.key", "imp.crpkg").exit_code, 0);
    ASSERT_EQ(Prepare("purchases", P("purchases.csv"), "keys/acme.key", "pur.crpkg").exit_code, 0);
    ASSERT_EQ(Ingest(P("imp.crpkg")).exit_code, 0);
    ASSERT_EQ(Ingest(P("pur.crpkg")).exit_code, 0);
  }
  RunResult Query(const std::string& campaign, const std::string& epsilon = "1") {
    return Run("--room " + Q(P("room")) + " --key " + Q(P("keys/acme.key")) +
               " --format json query --epsilon " + epsilon + " --sql " +
               Q("SELECT SUM(cost) AS spend FROM impressions WHERE campaign = '" + campaign + "'"));
  }
  // After the ledger was put back: a new query, the stored answer of an old
  // one and `budget` are all refused, and nothing but the audit log (the
  // refusals' records) changes: nothing is charged, no result is stored.
  void ExpectEverythingRefused() {
    auto before = Snapshot(P("room"), "audit.log");
    ExpectRefused(Query("c9"), 6, "TAMPERED");
    ExpectRefused(Query("c0"), 6, "TAMPERED");
    ExpectRefused(Run("budget --room " + Q(P("room"))), 6, "TAMPERED");
    EXPECT_EQ(Snapshot(P("room"), "audit.log"), before);
    EXPECT_NE(Slurp(P("room/audit.log")).find("\"code\":\"TAMPERED\""), std::string::npos);
  }
};

TEST_F(BudgetAnchorE2e, AnOlderBudgetLogPutBackIsRefused) {
  ASSERT_EQ(Query("c0").exit_code, 0);
  const std::string copy = Slurp(P("room/budget.log"));
  ASSERT_EQ(Query("c1").exit_code, 0);
  ASSERT_EQ(Query("c2").exit_code, 0);
  Spit(P("room/budget.log"), copy);  // 2 of epsilon 5 would come back
  ExpectEverythingRefused();
}

TEST_F(BudgetAnchorE2e, DeletingTheLastLineIsRefused) {
  ASSERT_EQ(Query("c0").exit_code, 0);
  ASSERT_EQ(Query("c1").exit_code, 0);
  std::string log = Slurp(P("room/budget.log"));
  log.pop_back();
  Spit(P("room/budget.log"), log.substr(0, log.rfind('\n') + 1));
  ExpectEverythingRefused();
}

// The same roll-back through `room restore`: a backup of the same catalogue
// taken before a charge would bring back its budget.log and audit.log, both
// valid and agreeing with each other, so only the live room's log can tell.
TEST_F(BudgetAnchorE2e, ABackupTakenBeforeAChargeDoesNotRestoreOverTheRoom) {
  ASSERT_EQ(Query("c0").exit_code, 0);
  Ok("--room " + Q(P("room")) + " room backup --out " + Q(P("old.bak")));
  ASSERT_EQ(Query("c1").exit_code, 0);
  ASSERT_EQ(Query("c2").exit_code, 0);
  const auto before = Snapshot(P("room"));
  auto stale = Run("--room " + Q(P("room")) + " room restore --from " + Q(P("old.bak")));
  ExpectRefused(stale, 3, "BACKUP_STALE");
  EXPECT_NE(stale.err.find("budget"), std::string::npos) << stale.err;
  EXPECT_EQ(Snapshot(P("room")), before);
  auto j = nlohmann::json::parse(Ok("budget --room " + Q(P("room")) + " --format json").out);
  EXPECT_EQ(j["epsilon_spent"], 3);

  // The control: a backup taken after the last charge restores over the room.
  Ok("--room " + Q(P("room")) + " room backup --out " + Q(P("new.bak")));
  Ok("--room " + Q(P("room")) + " room restore --from " + Q(P("new.bak")));
  j = nlohmann::json::parse(Ok("budget --room " + Q(P("room")) + " --format json").out);
  EXPECT_EQ(j["epsilon_spent"], 3);
  ASSERT_EQ(Query("c3").exit_code, 0);
}

TEST_F(BudgetAnchorE2e, TheUntouchedLedgerKeepsWorking) {
  // The control: the same steps without putting anything back.
  ASSERT_EQ(Query("c0").exit_code, 0);
  ASSERT_EQ(Query("c1").exit_code, 0);
  ASSERT_EQ(Query("c0").exit_code, 0);  // stored answer, free
  auto j = nlohmann::json::parse(Ok("budget --room " + Q(P("room")) + " --format json").out);
  EXPECT_EQ(j["epsilon_spent"], 2);
  EXPECT_EQ(j["epsilon_left"], 3);
}

}  // namespace
}  // namespace cr::testing
