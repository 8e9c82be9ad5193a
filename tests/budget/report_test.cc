// What `cleanroom budget` prints, from a real ledger (the spec parser does not
// accept privacy.dp yet, so the binary test below covers the non-DP room).
#include "budget/report.h"

#include <gtest/gtest.h>

#include "common/files.h"
#include "crypto/crypto.h"
#include "testing/temp_dir.h"

namespace cr::budget {
namespace {

TEST(BudgetReportTest, CurrentJsonHasTheIssueKeysAndPeriod) {
  ASSERT_TRUE(crypto::Init());
  cr::testing::TempDir dir;
  crypto::Identity room = crypto::Identity::Generate();
  FixedClock clock(1796169600);  // 2026-12-02
  spec::Dp dp;
  dp.epsilon = 2.0;
  dp.refresh = "monthly";
  auto ledger = Ledger::Open(dir.path(), room, dp, clock);
  ASSERT_TRUE(ledger.has_value());
  ASSERT_TRUE(ledger->Spend(ToHex(crypto::Sha256("q1")), 0.5, "acme").has_value());
  ASSERT_TRUE(ledger->Spend(ToHex(crypto::Sha256("q2")), 0.25, "newsco").has_value());
  clock.Set(1798934400);  // 2027-01-03
  ASSERT_TRUE(ledger->Spend(ToHex(crypto::Sha256("q1")), 0.5, "acme").has_value());

  auto current = ledger->Summarize();
  ASSERT_TRUE(current.has_value());
  nlohmann::json j = CurrentJson(*current, "monthly");
  EXPECT_EQ(j["dp_enabled"], true);
  EXPECT_EQ(j["epsilon_total"], 2.0);
  EXPECT_EQ(j["epsilon_spent"], 0.5);
  EXPECT_EQ(j["epsilon_left"], 1.5);
  EXPECT_EQ(j["period"], "2027-01");
  EXPECT_EQ(j["period_starts_at"], "2027-01-01T00:00:00Z");
  EXPECT_EQ(j["period_ends_at"], "2027-02-01T00:00:00Z");
  EXPECT_EQ(j["queries"], 1);

  auto history = ledger->History();
  ASSERT_TRUE(history.has_value());
  EXPECT_EQ(HistoryTable(*history),
            "period              total          spent           left  queries\n"
            "2026-12                 2           0.75           1.25        2\n"
            "2027-01                 2            0.5            1.5        1\n");
}

TEST(BudgetReportTest, WithoutDpSaysSoWithZeros) {
  nlohmann::json j = CurrentJson(std::nullopt, "");
  EXPECT_EQ(j["dp_enabled"], false);
  EXPECT_EQ(j["epsilon_total"], 0);
  EXPECT_EQ(j["epsilon_spent"], 0);
  EXPECT_EQ(j["epsilon_left"], 0);
  EXPECT_TRUE(j["period"].is_null());
  EXPECT_NE(HistoryTable({}).find("not enabled"), std::string::npos);
}

}  // namespace
}  // namespace cr::budget
