// Differential privacy in the query path, on tables built in memory (and on
// data/pums/PUMS_dup.csv) with a seeded random source, so every exact value is
// known: contribution bounding in the generated SQL, partition selection,
// public groups, the noise on each cell, and the attacks each one stops.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "query/dp.h"
#include "query/plan.h"
#include "query/query_test_util.h"

namespace cr::query {
namespace {

const char* kDpSpec = R"(collaboration: dp-query-tests
description: DP query tests
region: eu
retention_days: 90
parties:
  acme:    {public_key: keys/acme.pub,    abilities: [contribute, query, receive_results]}
  newsco:  {public_key: keys/newsco.pub,  abilities: [contribute, receive_results]}
  analyst: {public_key: keys/analyst.pub, abilities: [query]}
privacy:
  unit: person
  min_distinct_units: 50
  dp: {epsilon: 100, delta: 1.0e-6, max_groups_per_unit: 2, max_query_epsilon: 50}
datasets:
  purchases:
    owner: acme
    privacy_unit_column: email
    columns:
      email:    {type: string, role: join_key, normalize: email}
      category: {type: string, role: dimension}
      amount:   {type: double, role: metric, bounds: [0, 100]}
    rule:
      kind: aggregation
      aggregates: {amount: [sum, avg, count, median, stddev], email: [count_distinct], category: [count_distinct]}
      receivers: [acme]
  pums:
    owner: newsco
    privacy_unit_column: pid
    columns:
      pid:    {type: string, role: join_key}
      grp:    {type: string, role: dimension}
      sex:    {type: integer, role: dimension}
      income: {type: integer, role: metric, bounds: [0, 100000]}
    rule:
      kind: aggregation
      aggregates: {income: [sum, avg, count], pid: [count_distinct]}
      public_values: {sex: [0, 1, 2]}
      require_dp: true
      receivers: [acme, newsco]
  accounts:
    owner: newsco
    privacy_unit_column: account
    columns:
      account: {type: string, role: join_key}
      email:   {type: string, role: join_key, normalize: email}
      plan:    {type: string, role: dimension}
    rule: {kind: aggregation, aggregates: {account: [count_distinct]}, receivers: [acme]}
  visits:
    owner: newsco
    privacy_unit_column: email
    columns:
      email: {type: string, role: join_key, normalize: email}
      page:  {type: string, role: dimension}
    rule: {kind: aggregation, aggregates: {email: [count_distinct]}, receivers: [acme]}
  segments:
    owner: acme
    privacy_unit_column: email
    columns:
      email:   {type: string, role: join_key, normalize: email}
      segment: {type: string, role: dimension}
    rule: {kind: list, list_columns: [segment], receivers: [acme]}
)";

class DpTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { holder_ = new cr::testing::SpecHolder(kDpSpec); }
  static void TearDownTestSuite() {
    delete holder_;
    holder_ = nullptr;
  }
  void SetUp() override {
    auto db = engine::Database::Open({.threads = 2, .memory_limit = ""});
    ASSERT_TRUE(db);
    db_ = std::make_unique<engine::Database>(std::move(*db));
    // p0..p199: one purchase of 10 in category A; 'solo' 100 purchases of
    // 400 (far above the bound) in each of c0..c9; 'only_b' one purchase of
    // 77 in B and none in A: the differencing target.
    ASSERT_TRUE(db_->Execute(R"(
      CREATE TABLE purchases AS
      SELECT 'p' || i AS email, 'A' AS category, 10.0 AS amount FROM range(200) t(i)
      UNION ALL SELECT 'solo', 'c' || (i % 10), 400.0 FROM range(1000) t(i)
      UNION ALL SELECT 'only_b', 'B', 77.0
    )"));
    // PUMS_dup: several rows per pid. 'one' holds pid 1, 'five' pids 2..6,
    // the rest 'many'; sex 9 is not a public value.
    ASSERT_TRUE(db_->Execute(fmt::format(R"(
      CREATE TABLE pums AS
      SELECT CAST(pid AS VARCHAR) AS pid,
             CASE WHEN pid = 1 THEN 'one' WHEN pid BETWEEN 2 AND 6 THEN 'five' ELSE 'many' END AS grp,
             CAST(sex AS BIGINT) AS sex, CAST(income AS BIGINT) AS income
        FROM read_csv('{}/data/pums/PUMS_dup.csv', header = true)
      UNION ALL SELECT 'x' || i, 'many', 9, 1000 FROM range(300) t(i)
    )",
                                         CLEANROOM_SOURCE_DIR)));
    ASSERT_TRUE(db_->Execute(R"(
      CREATE TABLE accounts AS SELECT 'a' || i AS account, 'p' || i AS email, 'gold' AS plan
        FROM range(200) t(i)
    )"));
  }

  Result<Plan> Check(const std::string& sql) {
    CheckContext ctx;
    ctx.spec = &holder_->spec();
    ctx.caller = "acme";
    ctx.dp = true;
    return BuildPlan(*db_, sql, ctx);
  }
  DpPlan PlanOf(const Plan& plan, double epsilon) {
    auto dp = PlanDp(holder_->spec(), plan, epsilon);
    EXPECT_TRUE(dp) << (dp ? "" : dp.error().message);
    return dp ? *dp : DpPlan{};
  }
  // The noisy answer at `epsilon` with the seeded source `seed`.
  results::ResultSet Run(const std::string& sql, double epsilon, uint64_t seed,
                         ExecStats* stats = nullptr) {
    auto plan = Check(sql);
    EXPECT_TRUE(plan) << sql << "\n" << (plan ? "" : plan.error().message);
    if (!plan) return {};
    DpPlan dp = PlanOf(*plan, epsilon);
    auto rng = dp::SeededRandom(seed);
    EXPECT_TRUE(rng) << (rng ? "" : rng.error().message);
    if (!rng) return {};
    auto r = ExecuteDpPlan(*db_, *plan, dp, **rng, stats);
    EXPECT_TRUE(r) << (r ? "" : r.error().message);
    return r ? *r : results::ResultSet{};
  }
  // The exact bounded aggregates (what the noise is added to), keyed by the
  // group keys (joined by '|', NULL as "NULL"), under the hash key `key`.
  std::map<std::string, std::vector<double>> Bounded(const std::string& sql,
                                                     const std::string& key = "k") {
    auto plan = Check(sql);
    EXPECT_TRUE(plan) << (plan ? "" : plan.error().message);
    std::map<std::string, std::vector<double>> out;
    if (!plan) return out;
    DpPlan dp = PlanOf(*plan, 1);
    auto rows = db_->Query(BoundedSql(*plan, dp, key));
    EXPECT_TRUE(rows) << (rows ? "" : rows.error().message);
    if (!rows) return out;
    const size_t ng = plan->group_by.size();
    for (size_t r = 0; r < rows->row_count(); ++r) {
      std::vector<double> v;
      for (size_t c = ng; c < rows->column_count(); ++c) {
        v.push_back(rows->at(r, c) ? std::stod(*rows->at(r, c)) : 0);
      }
      std::string group;
      for (size_t c = 0; c < ng; ++c) group += (c ? "|" : "") + rows->at(r, c).value_or("NULL");
      out[group] = v;
    }
    return out;
  }
  static double Value(const nlohmann::json& cell) { return cell["value"].get<double>(); }

  static cr::testing::SpecHolder* holder_;
  std::unique_ptr<engine::Database> db_;
};

cr::testing::SpecHolder* DpTest::holder_ = nullptr;

// ----- planning -----------------------------------------------------------------

TEST_F(DpTest, RefusesWhatCannotBeAnsweredWithNoise) {
  struct Case {
    const char* sql;
    const char* fragment;
  };
  const Case cases[] = {
      {"SELECT category, MEDIAN(amount) FROM purchases GROUP BY category", "median is not supported"},
      {"SELECT category, STDDEV(amount) FROM purchases GROUP BY category", "stddev is not supported"},
      {"SELECT category, SUM(amount) / 2 AS half FROM purchases GROUP BY category",
       "output half must be a GROUP BY key or one aggregate"},
      {"SELECT category, SUM(amount) FROM purchases GROUP BY category HAVING SUM(amount) > 5",
       "HAVING is not allowed"},
      {"SELECT COUNT(DISTINCT category) FROM purchases",
       "COUNT(DISTINCT category) is not supported"},
      {"SELECT a.plan, COUNT(DISTINCT a.account) FROM accounts a JOIN purchases p ON a.email = "
       "p.email GROUP BY a.plan",
       "privacy unit must be equated"},
  };
  for (const auto& c : cases) {
    auto plan = Check(c.sql);
    ASSERT_TRUE(plan) << c.sql << ": " << plan.error().message;
    auto dp = PlanDp(holder_->spec(), *plan, 1);
    ASSERT_FALSE(dp) << c.sql;
    EXPECT_EQ(dp.error().code, ErrorCode::QUERY_REFUSED) << c.sql;
    EXPECT_NE(dp.error().message.find(c.fragment), std::string::npos)
        << c.sql << ": " << dp.error().message;
  }
  Plan list;
  list.kind = QueryKind::kList;
  auto refused = PlanDp(holder_->spec(), list, 1);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("list queries"), std::string::npos);

  auto plan = Check("SELECT category, SUM(amount) FROM purchases GROUP BY category");
  ASSERT_TRUE(plan);
  auto over = PlanDp(holder_->spec(), *plan, 51);
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().code, ErrorCode::QUERY_REFUSED);
  EXPECT_NE(over.error().message.find("max_query_epsilon"), std::string::npos);
  EXPECT_FALSE(PlanDp(holder_->spec(), *plan, std::nan("")));
  EXPECT_FALSE(PlanDp(holder_->spec(), *plan, 0));
}

TEST_F(DpTest, CountStarIsAllowedOnlyInDpMode) {
  CheckContext ctx;
  ctx.spec = &holder_->spec();
  ctx.caller = "acme";
  auto exact = BuildPlan(*db_, "SELECT COUNT(*) FROM purchases", ctx);
  ASSERT_FALSE(exact);
  EXPECT_EQ(exact.error().code, ErrorCode::QUERY_REFUSED);
  auto plan = Check("SELECT COUNT(*) FROM purchases");
  ASSERT_TRUE(plan) << plan.error().message;
  EXPECT_EQ(plan->outputs[0].name, "count");
}

TEST_F(DpTest, EpsilonIsSplitEvenlyAcrossDrawsAndSelection) {
  auto plan = Check(
      "SELECT category, COUNT(DISTINCT email) AS buyers, AVG(amount) AS mean FROM purchases "
      "GROUP BY category");
  ASSERT_TRUE(plan);
  DpPlan dp = PlanOf(*plan, 2);
  // One count, an AVG (a sum and a count), partition selection: four shares.
  EXPECT_TRUE(dp.select_partitions);
  EXPECT_DOUBLE_EQ(dp.epsilon_each, 0.5);
  EXPECT_DOUBLE_EQ(dp.epsilon_selection, 0.5);
  EXPECT_EQ(dp.max_groups, 2);
  // Without GROUP BY there is one group: no selection, L0 = 1.
  auto global = Check("SELECT SUM(amount) FROM purchases");
  ASSERT_TRUE(global);
  DpPlan g = PlanOf(*global, 2);
  EXPECT_FALSE(g.select_partitions);
  EXPECT_DOUBLE_EQ(g.epsilon_each, 2);
  EXPECT_EQ(g.max_groups, 1);
  // Sensitivity follows from the bounds actually enforced: C * max |bound|.
  EXPECT_DOUBLE_EQ(g.aggregates[0].linf, 100);
}

// ----- contribution bounding -----------------------------------------------------------

// A unit repeated in many rows and groups: 'solo' has 100 rows of 400 in each
// of ten categories. After bounding it counts once per group, at most the
// bound (100) per group, in at most max_groups_per_unit (2) groups.
TEST_F(DpTest, BoundingCapsRowsValuesAndGroupsPerUnit) {
  auto b = Bounded(
      "SELECT category, COUNT(*) AS n, SUM(amount) AS s, COUNT(DISTINCT email) AS u FROM "
      "purchases GROUP BY category");
  // Columns: __units, then n, s, u.
  ASSERT_EQ(b.count("A"), 1u);
  EXPECT_EQ(b["A"], (std::vector<double>{200, 200, 2000, 200}));
  EXPECT_EQ(b["B"], (std::vector<double>{1, 1, 77, 1}));
  int solo_groups = 0;
  for (int i = 0; i < 10; ++i) {
    auto it = b.find("c" + std::to_string(i));
    if (it == b.end()) continue;
    ++solo_groups;
    EXPECT_EQ(it->second, (std::vector<double>{1, 1, 100, 1})) << "c" << i;
  }
  EXPECT_EQ(solo_groups, 2);
}

// The groups a unit keeps are chosen by a hash keyed per query: another key,
// another choice. (A fixed rule, such as the first groups in sort order,
// would let the analyst predict and steer which groups count a unit.)
TEST_F(DpTest, KeptGroupsDependOnThePerQueryKey) {
  std::set<std::set<std::string>> choices;
  for (int k = 0; k < 20; ++k) {
    auto b = Bounded("SELECT category, COUNT(*) FROM purchases WHERE category LIKE 'c%' GROUP BY category",
                     "key" + std::to_string(k));
    std::set<std::string> kept;
    for (const auto& [g, v] : b) kept.insert(g);
    EXPECT_EQ(kept.size(), 2u);
    choices.insert(kept);
  }
  EXPECT_GT(choices.size(), 3u);
  auto plan = Check("SELECT category, COUNT(*) FROM purchases GROUP BY category");
  ASSERT_TRUE(plan);
  std::string sql = BoundedSql(*plan, PlanOf(*plan, 1), "00ff");
  EXPECT_NE(sql.find("hash('00ff')"), std::string::npos);
  EXPECT_EQ(sql.find("random("), std::string::npos);
}

// L0 is 2 here. A unit with at most L0 groups keeps all of them under every
// key; one with more keeps exactly L0, a NULL group key being a group like
// any other, and which ones varies with the key.
TEST_F(DpTest, UnitsKeepEveryGroupUpToL0AndExactlyL0AboveIt) {
  ASSERT_TRUE(db_->Execute(R"(
    CREATE OR REPLACE TABLE purchases AS
    SELECT 'one' AS email, 'one_a' AS category, 10.0 AS amount
    UNION ALL SELECT 'two', 'two_' || c, 10.0 FROM (VALUES ('a'), ('b')) v(c)
    UNION ALL SELECT 'three', 'three_' || c, 400.0 FROM (VALUES ('a'), ('b'), ('c'), ('a')) v(c)
    UNION ALL SELECT 'nul', c, 10.0 FROM (VALUES (NULL), ('nul_a'), ('nul_b')) v(c)
  )"));
  std::set<std::set<std::string>> three_choices;
  int null_kept = 0;
  const int keys = 30;
  for (int k = 0; k < keys; ++k) {
    auto b = Bounded("SELECT category, COUNT(*) AS n, SUM(amount) AS s FROM purchases GROUP BY category",
                     "key" + std::to_string(k));
    // Columns: __units, n, s.
    for (const char* g : {"one_a", "two_a", "two_b"}) {
      ASSERT_EQ(b.count(g), 1u) << g << " key " << k;
      EXPECT_EQ(b[g], (std::vector<double>{1, 1, 10})) << g;
    }
    std::set<std::string> three;
    int nul = 0;
    for (const auto& [g, v] : b) {
      if (g.starts_with("three_")) {
        three.insert(g);
        EXPECT_EQ(v, (std::vector<double>{1, 1, 100})) << g;  // 400 clamped, one row of two
      }
      if (g == "NULL" || g.starts_with("nul_")) ++nul;
    }
    EXPECT_EQ(three.size(), 2u) << "key " << k;
    EXPECT_EQ(nul, 2) << "key " << k;
    three_choices.insert(three);
    null_kept += b.count("NULL") ? 1 : 0;
  }
  EXPECT_EQ(three_choices.size(), 3u);  // every pair of the three groups is chosen by some key
  EXPECT_GT(null_kept, 0);
  EXPECT_LT(null_kept, keys);
}

// A join multiplies a unit's rows (each purchase once per visit): the unit is
// still counted once per group, its rows capped at C, its values clamped, and
// it contributes to at most L0 groups of the (page, category) pairs.
TEST_F(DpTest, AJoinCountsEachUnitOnceInAtMostL0Groups) {
  ASSERT_TRUE(db_->Execute(R"(
    CREATE TABLE visits AS
    SELECT 'p' || (i % 200) AS email, 'home' AS page FROM range(400) t(i)
    UNION ALL SELECT 'solo', 'home' FROM range(5) t(i)
  )"));
  auto b = Bounded(
      "SELECT v.page, p.category, COUNT(*) AS n, SUM(p.amount) AS s, COUNT(DISTINCT p.email) AS u "
      "FROM purchases p JOIN visits v ON p.email = v.email GROUP BY v.page, p.category");
  // Columns: __units, n, s, u.
  EXPECT_EQ(b["home|A"], (std::vector<double>{200, 200, 2000, 200}));
  EXPECT_EQ(b.count("home|B"), 0u);  // only_b made no visit
  int solo_groups = 0;
  for (int i = 0; i < 10; ++i) {
    auto it = b.find("home|c" + std::to_string(i));
    if (it == b.end()) continue;
    ++solo_groups;
    EXPECT_EQ(it->second, (std::vector<double>{1, 1, 100, 1})) << "c" << i;
  }
  EXPECT_EQ(solo_groups, 2);
}

// The stored-answer key is the bounding SQL without the per-query key: the
// same for the same question, and no trace of the key that ranked groups.
TEST_F(DpTest, CanonicalTextIsDeterministicAndLeavesTheKeyOut) {
  const std::string sql = "SELECT category, SUM(amount) AS s FROM purchases GROUP BY category";
  auto a = Check(sql);
  auto b = Check(sql);
  ASSERT_TRUE(a && b);
  DpPlan dp = PlanOf(*a, 1);
  EXPECT_EQ(CanonicalText(*a, dp), CanonicalText(*b, PlanOf(*b, 1)));
  EXPECT_NE(CanonicalText(*a, dp).find(BoundedSql(*a, dp, "")), std::string::npos);
  EXPECT_NE(BoundedSql(*a, dp, "5ec7e7"), BoundedSql(*a, dp, ""));
  EXPECT_EQ(CanonicalText(*a, dp).find("5ec7e7"), std::string::npos);
}

TEST_F(DpTest, PumsDupIsBoundedPerPerson) {
  // Several rows per pid: the bounded count is the number of people, and a
  // unit's income total in a group is at most the bound (C = 1 row).
  auto b = Bounded("SELECT grp, COUNT(*) AS n, SUM(income) AS s FROM pums GROUP BY grp");
  EXPECT_EQ(b["one"][0], 1);
  EXPECT_EQ(b["one"][1], 1);
  EXPECT_EQ(b["five"][0], 5);
  EXPECT_EQ(b["five"][1], 5);
  EXPECT_LE(b["five"][2], 5 * 100000.0);
  auto raw = db_->Query("SELECT count(*), count(DISTINCT pid) FROM pums WHERE grp = 'many'");
  ASSERT_TRUE(raw);
  EXPECT_GT(raw->ScalarInt(), std::stoll(*raw->at(0, 1)));  // duplicates exist
  EXPECT_EQ(b["many"][1], std::stod(*raw->at(0, 1)));
}

// ----- partition selection ----------------------------------------------------------------

TEST_F(DpTest, GroupsOfOneAndFivePeopleAreNotReleased) {
  int many = 0;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    ExecStats stats;
    auto r = Run("SELECT grp, COUNT(DISTINCT pid) AS people FROM pums GROUP BY grp", 1, seed,
                 &stats);
    for (const auto& row : r.rows) {
      EXPECT_NE(row[0], "one") << "seed " << seed;
      EXPECT_NE(row[0], "five") << "seed " << seed;
      many += row[0] == "many";
    }
    // How many groups were withheld is itself a function of exact data.
    EXPECT_FALSE(r.withheld_rows);
    EXPECT_EQ(stats.groups, static_cast<int64_t>(r.rows.size()));
    ASSERT_TRUE(r.epsilon_spent);
    EXPECT_EQ(*r.epsilon_spent, 1);
  }
  EXPECT_EQ(many, 40);
}

TEST_F(DpTest, PublicValuesReleaseExactlyThoseGroupsEmptyOnesIncluded) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    auto r = Run("SELECT sex, COUNT(*) AS n FROM pums GROUP BY sex", 1, seed);
    ASSERT_EQ(r.rows.size(), 3u);
    EXPECT_EQ(r.rows[0][0], 0);
    EXPECT_EQ(r.rows[1][0], 1);
    EXPECT_EQ(r.rows[2][0], 2);  // no row has sex 2: released, from 0 plus noise
    ASSERT_TRUE(results::IsNoisyCell(r.rows[2][1]));
    // sex 9 (300 people) is in the data but not a public value: never released.
  }
  // Even when a filter empties every group, all three come back.
  auto r = Run("SELECT sex, SUM(income) AS s FROM pums WHERE grp = 'none' GROUP BY sex", 1, 7);
  ASSERT_EQ(r.rows.size(), 3u);
}

// ----- noise ---------------------------------------------------------------------------------

TEST_F(DpTest, CellsLieOnTheGridWithTheirConfidenceInterval) {
  auto plan = Check("SELECT SUM(amount) AS s, COUNT(*) AS n FROM purchases");
  ASSERT_TRUE(plan);
  DpPlan dp = PlanOf(*plan, 1);
  dp::NoiseParams p{dp::NoiseKind::kLaplace, dp.epsilon_each, 0, 1, dp.aggregates[0].linf,
                    /*real_valued=*/true};
  auto sum_m = dp::NumericMechanism::Create(p);
  ASSERT_TRUE(sum_m);
  const double exact_sum = 200 * 10 + 77 + 100;  // solo: one group (no GROUP BY), capped at 100
  int covered = 0;
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    auto r = Run("SELECT SUM(amount) AS s, COUNT(*) AS n FROM purchases", 1, seed);
    ASSERT_EQ(r.rows.size(), 1u);
    const auto& s = r.rows[0][0];
    ASSERT_TRUE(results::IsNoisyCell(s)) << s.dump();
    double v = Value(s);
    double steps = v / sum_m->granularity();
    EXPECT_DOUBLE_EQ(steps, std::round(steps)) << v;
    EXPECT_NEAR(s["ci_high"].get<double>() - v, sum_m->ConfidenceHalfWidth(0.95), 1e-9);
    EXPECT_NEAR(v - s["ci_low"].get<double>(), sum_m->ConfidenceHalfWidth(0.95), 1e-9);
    covered += s["ci_low"].get<double>() <= exact_sum && exact_sum <= s["ci_high"].get<double>();
    // Counts are integers.
    EXPECT_TRUE(r.rows[0][1]["value"].is_number_integer()) << r.rows[0][1].dump();
  }
  EXPECT_GE(covered, 180);  // 95% intervals: about 190 of 200
}

// The two-query differencing attack: SUM over buyers in A or B (201 people)
// minus SUM over buyers in A (200) is, exactly, what 'only_b' spent (77). With noise, the
// difference is spread like the noise of two answers.
TEST_F(DpTest, DifferencingTwoAnswersLeavesTheNoise) {
  const std::string both =
      "SELECT SUM(amount) AS s FROM purchases WHERE category IN ('A', 'B')";
  const std::string one = "SELECT SUM(amount) AS s FROM purchases WHERE category = 'A'";
  auto plan = Check(one);
  ASSERT_TRUE(plan);
  DpPlan dp = PlanOf(*plan, 1);
  auto m = dp::NumericMechanism::Create(
      {dp::NoiseKind::kLaplace, dp.epsilon_each, 0, 1, dp.aggregates[0].linf, true});
  ASSERT_TRUE(m);
  std::vector<double> diffs;
  int exact_hits = 0;
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    double a = Value(Run(both, 1, 2 * seed).rows[0][0]);
    double b = Value(Run(one, 1, 2 * seed + 1).rows[0][0]);
    diffs.push_back(a - b);
    exact_hits += std::abs((a - b) - 77) < 0.5;
  }
  double mean = 0, var = 0;
  for (double d : diffs) mean += d / diffs.size();
  for (double d : diffs) var += (d - mean) * (d - mean) / (diffs.size() - 1);
  const double expected_sd = std::sqrt(2.0) * m->StdDev();  // ~141 at epsilon 1, linf 100
  EXPECT_GT(std::sqrt(var), 0.7 * expected_sd);
  EXPECT_LT(std::sqrt(var), 1.3 * expected_sd);
  EXPECT_NEAR(mean, 77, 4 * expected_sd / std::sqrt(diffs.size()));
  EXPECT_LT(exact_hits, 15);  // the exact value comes out only by chance
}

TEST_F(DpTest, AverageIsANoisySumOverANoisyCountWithinTheBounds) {
  int covered = 0;
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    auto r = Run("SELECT category, AVG(amount) AS mean FROM purchases GROUP BY category", 10, seed);
    for (const auto& row : r.rows) {
      const auto& c = row[1];
      ASSERT_TRUE(results::IsNoisyCell(c));
      EXPECT_GE(Value(c), 0);
      EXPECT_LE(Value(c), 100);
      EXPECT_LE(c["ci_low"].get<double>(), Value(c));
      EXPECT_GE(c["ci_high"].get<double>(), Value(c));
      if (row[0] == "A") covered += c["ci_low"].get<double>() <= 10 && 10 <= c["ci_high"].get<double>();
    }
  }
  EXPECT_GE(covered, 45);
}

TEST_F(DpTest, OrderAndLimitApplyToNoisyValues) {
  auto r = Run(
      "SELECT category, COUNT(*) AS n FROM purchases GROUP BY category ORDER BY n DESC LIMIT 1", 40,
      3);
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0][0], "A");  // 200 against 1: far apart at epsilon 40
}

}  // namespace
}  // namespace cr::query
