// `cleanroom budget` through the binary, on a room whose spec has no
// privacy.dp (the only kind the spec parser accepts until DP queries land).
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

}  // namespace
}  // namespace cr::testing
