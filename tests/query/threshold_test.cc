// The threshold and the filtered-row summary, on small tables built in memory
// so every count is known: rows under k are withheld however many rows they
// hold, the summary is itself withheld when the withheld groups are too
// small together, and metrics are clamped before aggregation.
#include <gtest/gtest.h>

#include "query/executor.h"
#include "query/plan.h"
#include "query/query_test_util.h"

namespace cr::query {
namespace {

class ThresholdTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { holder_ = new cr::testing::SpecHolder(); }
  static void TearDownTestSuite() {
    delete holder_;
    holder_ = nullptr;
  }
  void SetUp() override {
    auto db = engine::Database::Open({.threads = 2, .memory_limit = ""});
    ASSERT_TRUE(db);
    db_ = std::make_unique<engine::Database>(std::move(*db));
    // big: p0..p149 (2 rows each, one cost far above the bound); edge: exactly
    // 100 people; small1/small2: 60 disjoint people each; tiny: 5 people;
    // multi: one person with 1000 rows.
    ASSERT_TRUE(db_->Execute(R"(
      CREATE TABLE impressions AS
      SELECT 'p' || i AS email, 'big' AS campaign, TIMESTAMP '2026-10-01 10:00:00' AS shown_at,
             CASE WHEN i = 0 AND r = 0 THEN 1000.0 ELSE 1.0 END AS cost
        FROM range(150) t(i), range(2) u(r)
      UNION ALL SELECT 'e' || i, 'edge', TIMESTAMP '2026-10-02 10:00:00', 1.0 FROM range(100) t(i)
      UNION ALL SELECT 's' || i, 'small1', TIMESTAMP '2026-10-03 10:00:00', 1.0 FROM range(60) t(i)
      UNION ALL SELECT 's' || (i + 60), 'small2', TIMESTAMP '2026-10-04 10:00:00', 1.0 FROM range(60) t(i)
      UNION ALL SELECT 't' || i, 'tiny', TIMESTAMP '2026-10-05 10:00:00', 1.0 FROM range(5) t(i)
      UNION ALL SELECT 'solo', 'multi', TIMESTAMP '2026-10-06 10:00:00', 1.0 FROM range(1000) t(i)
    )"));
    // Buyers: p0..p119 once each, p0 500 more times; e0..e9; solo 1000 times.
    ASSERT_TRUE(db_->Execute(R"(
      CREATE TABLE purchases AS
      SELECT 'p' || i AS email, 10.0 AS amount, DATE '2026-11-01' AS day FROM range(120) t(i)
      UNION ALL SELECT 'p0', 10.0, DATE '2026-11-02' FROM range(500) t(i)
      UNION ALL SELECT 'e' || i, 10.0, DATE '2026-11-01' FROM range(10) t(i)
      UNION ALL SELECT 'solo', 400.0, DATE '2026-11-01' FROM range(1000) t(i)
    )"));
  }
  results::ResultSet Run(const std::string& sql, ExecStats* stats = nullptr) {
    CheckContext ctx;
    ctx.spec = &holder_->spec();
    ctx.caller = "acme";
    auto plan = BuildPlan(*db_, sql, ctx);
    EXPECT_TRUE(plan) << sql << "\n" << (plan ? "" : plan.error().message);
    if (!plan) return {};
    auto r = ExecutePlan(*db_, *plan, stats);
    EXPECT_TRUE(r) << (r ? "" : r.error().message);
    return r ? *r : results::ResultSet{};
  }
  std::map<std::string, nlohmann::json> ByKey(const results::ResultSet& r) {
    std::map<std::string, nlohmann::json> out;
    for (const auto& row : r.rows) out[row[0].get<std::string>()] = row;
    return out;
  }
  static cr::testing::SpecHolder* holder_;
  std::unique_ptr<engine::Database> db_;
};

cr::testing::SpecHolder* ThresholdTest::holder_ = nullptr;

TEST_F(ThresholdTest, RowsUnderKAreWithheldAndCountedWhenTheSummaryIsSafe) {
  ExecStats stats;
  auto r = Run("SELECT campaign, COUNT(DISTINCT email) AS people, SUM(cost) AS spend FROM impressions "
               "WHERE campaign <> 'tiny' AND campaign <> 'multi' GROUP BY campaign ORDER BY campaign",
               &stats);
  auto rows = ByKey(r);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows["big"][1], 150);
  // 299 rows of 1.0 and one of 1000 clamped to the bound 5.
  EXPECT_DOUBLE_EQ(rows["big"][2].get<double>(), 299.0 + 5.0);
  EXPECT_EQ(rows["edge"][1], 100);  // exactly k is released
  // small1 + small2 withheld; together 120 people >= 100, so the count is shown.
  ASSERT_TRUE(r.withheld_rows);
  EXPECT_EQ(*r.withheld_rows, 2);
  EXPECT_EQ(stats.withheld_rows, 2);
  EXPECT_EQ(r.columns, (std::vector<std::string>{"campaign", "people", "spend"}));
}

TEST_F(ThresholdTest, SummaryWithheldWhenWithheldGroupsAreSmallTogether) {
  auto r = Run("SELECT campaign, COUNT(DISTINCT email) FROM impressions WHERE campaign IN ('big', "
               "'tiny', 'multi') GROUP BY campaign");
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0][0], "big");
  EXPECT_FALSE(r.withheld_rows) << "tiny (5) + multi (1) people must not be summarised";
}

TEST_F(ThresholdTest, NarrowFilterOnOnePersonReleasesNothing) {
  // Targeting one person through narrow dimension filters: the group exists
  // but covers one unit.
  auto r = Run("SELECT campaign, SUM(cost) FROM impressions WHERE shown_at = TIMESTAMP "
               "'2026-10-06 10:00:00' GROUP BY campaign");
  EXPECT_TRUE(r.rows.empty());
  EXPECT_FALSE(r.withheld_rows);
  auto g = Run("SELECT SUM(cost) AS total FROM impressions WHERE campaign = 'multi'");
  EXPECT_TRUE(g.rows.empty()) << "a global aggregate over one person is withheld too";
}

TEST_F(ThresholdTest, JoinMultiplyingOnePersonsRowsDoesNotCountAsMorePeople) {
  auto r = Run("SELECT i.campaign, COUNT(DISTINCT p.email) AS buyers, SUM(p.amount) AS revenue "
               "FROM impressions i JOIN purchases p ON i.email = p.email GROUP BY i.campaign");
  auto rows = ByKey(r);
  // big: 120 buyers (released); edge: 10 buyers (withheld); multi: 1 person
  // with 1000 x 1000 joined rows (withheld).
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows["big"][1], 120);
  EXPECT_FALSE(r.withheld_rows);
}

TEST_F(ThresholdTest, GroupingOnANearUniqueDimensionReleasesOnlyLargeGroups) {
  auto r = Run("SELECT shown_at, COUNT(DISTINCT email) FROM impressions GROUP BY shown_at");
  for (const auto& row : r.rows) EXPECT_GE(row[1].get<int64_t>(), 100);
  EXPECT_EQ(r.rows.size(), 2u);  // big's and edge's timestamps
}

TEST_F(ThresholdTest, ListQueriesAreThresholdedToo) {
  ASSERT_TRUE(db_->Execute("CREATE TABLE segments AS SELECT 'p' || i AS email, CASE WHEN i < 3 "
                           "THEN 'rare' ELSE 'common' END AS segment, 'north' AS region FROM range(150) t(i)"));
  ASSERT_TRUE(db_->Execute("CREATE TABLE audiences AS SELECT 'p' || i AS email, 'x' AS interest FROM range(150) t(i)"));
  auto r = Run("SELECT DISTINCT s.segment FROM segments s JOIN audiences a ON s.email = a.email");
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0][0], "common");
  EXPECT_FALSE(r.withheld_rows);  // 'rare' covers 3 people
}

}  // namespace
}  // namespace cr::query
