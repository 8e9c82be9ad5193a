// The checker: every hostile query in tests/sql/attacks.txt is refused, every
// legitimate one in tests/sql/accepted.txt passes, and the SQL the room runs
// is generated from the checked plan, never copied from the analyst's text.
#include <gtest/gtest.h>

#include "query/ast.h"
#include "query/plan.h"
#include "query/query_test_util.h"
#include "query/rewrite.h"

namespace cr::query {
namespace {

using cr::testing::ReadSqlCases;
using cr::testing::SqlCase;

class PlanTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { holder_ = new cr::testing::SpecHolder(); }
  static void TearDownTestSuite() {
    delete holder_;
    holder_ = nullptr;
  }
  void SetUp() override {
    auto db = engine::Database::Open({.threads = 1, .memory_limit = ""});
    ASSERT_TRUE(db);
    db_ = std::make_unique<engine::Database>(std::move(*db));
  }
  Result<Plan> Check(const std::string& sql, const std::string& caller = "acme") {
    CheckContext ctx;
    ctx.spec = &holder_->spec();
    ctx.caller = caller;
    return BuildPlan(*db_, sql, ctx);
  }
  Result<Plan> Template(const std::string& name, std::map<std::string, std::string> params) {
    CheckContext ctx;
    ctx.spec = &holder_->spec();
    ctx.caller = "acme";
    ctx.tmpl = holder_->spec().FindTemplate(name);
    EXPECT_NE(ctx.tmpl, nullptr);
    ctx.params = std::move(params);
    return BuildPlan(*db_, ctx.tmpl->sql, ctx);
  }
  static cr::testing::SpecHolder* holder_;
  std::unique_ptr<engine::Database> db_;
};

cr::testing::SpecHolder* PlanTest::holder_ = nullptr;

// One test per line of a tests/sql/ file, named after the line number, so a
// line refused for another reason than the one it claims fails on its own.
class SqlFileTest : public PlanTest, public ::testing::WithParamInterface<SqlCase> {};

std::string LineName(const ::testing::TestParamInfo<SqlCase>& info) {
  return "line_" + std::to_string(info.param.line);
}

using AttackTest = SqlFileTest;
using InvalidTest = SqlFileTest;
using AcceptedTest = SqlFileTest;

TEST_P(AttackTest, RefusedForItsReason) {
  const SqlCase& c = GetParam();
  ASSERT_FALSE(c.code.empty() || c.reason.empty()) << "attacks.txt:" << c.line
                                                   << " needs \"| CODE | reason\"";
  auto p = Check(c.sql);
  ASSERT_FALSE(p) << "accepted: " << c.sql;
  EXPECT_EQ(CodeName(p.error().code), c.code) << p.error().message;
  EXPECT_NE(p.error().message.find(c.reason), std::string::npos)
      << "expected reason \"" << c.reason << "\", got: " << p.error().message;
  // Messages never echo the analyst's literals.
  EXPECT_EQ(p.error().message.find("jane.doe1"), std::string::npos) << p.error().message;
}
INSTANTIATE_TEST_SUITE_P(Attacks, AttackTest, ::testing::ValuesIn(ReadSqlCases("attacks.txt")),
                         LineName);

TEST_P(InvalidTest, IsASyntaxErrorAtItsPlace) {
  const SqlCase& c = GetParam();
  auto p = Check(c.sql);
  ASSERT_FALSE(p) << c.sql;
  EXPECT_EQ(CodeName(p.error().code), c.code) << p.error().message;
  EXPECT_NE(p.error().message.find(c.reason), std::string::npos)
      << "expected \"" << c.reason << "\", got: " << p.error().message;
}
INSTANTIATE_TEST_SUITE_P(Invalid, InvalidTest, ::testing::ValuesIn(ReadSqlCases("invalid.txt")),
                         LineName);

TEST_P(AcceptedTest, Passes) {
  const SqlCase& c = GetParam();
  auto p = Check(c.sql);
  EXPECT_TRUE(p) << c.sql << "\n" << (p ? "" : p.error().message);
}
INSTANTIATE_TEST_SUITE_P(Accepted, AcceptedTest, ::testing::ValuesIn(ReadSqlCases("accepted.txt")),
                         LineName);

TEST_F(PlanTest, TheCaseFilesAreComplete) {
  // The suites above are only as strong as the files: keep them from shrinking.
  EXPECT_GE(ReadSqlCases("attacks.txt").size(), 110u);
  EXPECT_GE(ReadSqlCases("invalid.txt").size(), 5u);
  EXPECT_GE(ReadSqlCases("accepted.txt").size(), 18u);
}

TEST_F(PlanTest, EmptySqlIsInvalid) {
  auto empty = Check("");
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code, ErrorCode::SQL_INVALID);
}

TEST_F(PlanTest, RefusalNamesRuleAndColumn) {
  auto p = Check("SELECT campaign, COUNT(DISTINCT email) FROM impressions WHERE email = 'x' GROUP BY campaign");
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().message.find("impressions (aggregation rule)"), std::string::npos);
  EXPECT_NE(p.error().message.find("'email'"), std::string::npos);
  EXPECT_NE(p.error().message.find("WHERE"), std::string::npos);
  auto m = Check("SELECT campaign, MAX(cost) FROM impressions GROUP BY campaign");
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message.find("max"), std::string::npos);
  auto c = Check("SELECT campaign, COUNT(amount) FROM impressions i JOIN purchases p ON i.email = p.email GROUP BY campaign");
  EXPECT_TRUE(c) << c.error().message;  // purchases grants count on amount
  auto s = Check("SELECT campaign, COUNT(cost) FROM impressions GROUP BY campaign");
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("allowed: sum, avg"), std::string::npos) << s.error().message;
}

TEST_F(PlanTest, VeryLongAndDeeplyNestedSqlIsRefused) {
  std::string nots;
  for (int i = 0; i < 3000; ++i) nots += "NOT (";
  std::string deep = "SELECT campaign, COUNT(DISTINCT email) FROM impressions WHERE " + nots +
                     "campaign = 'a'" + std::string(3000, ')') + " GROUP BY campaign";
  auto d = Check(deep);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code, ErrorCode::QUERY_REFUSED) << d.error().message;
  // Redundant parentheses are only text: the parser drops them, and the
  // query that remains is an ordinary allowed one.
  std::string parens = "SELECT campaign, COUNT(DISTINCT email) FROM impressions WHERE " +
                       std::string(3000, '(') + "campaign = 'a'" + std::string(3000, ')') +
                       " GROUP BY campaign";
  EXPECT_TRUE(Check(parens));

  std::string nested = "campaign";
  for (int i = 0; i < 80; ++i) nested = "lower(" + nested + ")";
  auto n = Check("SELECT " + nested + " AS c, COUNT(DISTINCT email) FROM impressions GROUP BY 1");
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error().code, ErrorCode::QUERY_REFUSED);

  std::string chain = "campaign = 'a'";
  for (int i = 0; i < 1500; ++i) chain += " OR campaign = 'a'";
  std::string wide = "SELECT campaign, COUNT(DISTINCT email) FROM impressions WHERE " + chain +
                     " GROUP BY campaign";
  // DuckDB flattens the chain into one OR of 1,501 children: wide, not deep.
  auto w = Check(wide);
  EXPECT_TRUE(w) << w.error().message;

  std::string longsql = "SELECT campaign, COUNT(DISTINCT email) FROM impressions WHERE campaign IN (";
  for (int i = 0; i < 10000; ++i) longsql += "'spring', ";
  longsql += "'x') GROUP BY campaign";
  auto l = Check(longsql);
  ASSERT_FALSE(l);
  EXPECT_EQ(l.error().code, ErrorCode::QUERY_REFUSED);
  EXPECT_NE(l.error().message.find("longer than"), std::string::npos);
}

TEST_F(PlanTest, GeneratedSqlIsRenderedNotCopied) {
  auto p = Check(
      "SELECT  i.campaign AS \"we\"\"ird\", COUNT(DISTINCT i.email) AS people /* DROP TABLE x */ "
      "FROM impressions i WHERE i.campaign IN ('O''Brien', 'x') AND i.shown_at >= "
      "TIMESTAMP '2026-10-01 00:00:00' GROUP BY 1 ORDER BY people DESC LIMIT 5");
  ASSERT_TRUE(p) << p.error().message;
  auto sql = Generate(*p);
  EXPECT_EQ(sql.groups.find("DROP"), std::string::npos);
  EXPECT_EQ(sql.groups.find("/*"), std::string::npos);
  EXPECT_NE(sql.groups.find("'O''Brien'"), std::string::npos);
  EXPECT_NE(sql.groups.find("\"impressions\" AS \"t0\""), std::string::npos);
  EXPECT_NE(sql.groups.find("count(DISTINCT \"t0\".\"email\")"), std::string::npos);
  EXPECT_NE(sql.released.find("LIMIT 5"), std::string::npos);
  EXPECT_EQ(p->outputs[0].name, "we\"ird");
  EXPECT_EQ(p->min_distinct_units, 100);
  // The generated statement parses and round-trips through DuckDB's parser.
  EXPECT_TRUE(db_->Query("SELECT json_serialize_sql(" + engine::QuoteLiteral(sql.released) + ")"));
}

TEST_F(PlanTest, MetricsAreClampedAndThresholdIsTheStrictest) {
  auto p = Check(
      "SELECT i.campaign, SUM(p.amount) AS revenue FROM impressions i JOIN purchases p ON i.email "
      "= p.email GROUP BY i.campaign");
  ASSERT_TRUE(p) << p.error().message;
  auto sql = Generate(*p);
  EXPECT_NE(sql.groups.find("WHEN \"t1\".\"amount\" > 300 THEN 300"), std::string::npos) << sql.groups;
  EXPECT_EQ(p->min_distinct_units, 100);  // max(100 impressions, 50 default)
  // Unit columns equated by the join share one distinct count.
  EXPECT_EQ(p->unit_class[0], p->unit_class[1]);
  auto q = Check("SELECT year(day) AS y, SUM(amount) FROM purchases GROUP BY 1");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->min_distinct_units, 50);
}

TEST_F(PlanTest, OrAllowedOnlyWhereJoinOperatorsSaySo) {
  // Neither dataset lists "or" in join_operators.
  auto p = Check(
      "SELECT i.campaign, COUNT(DISTINCT i.email) FROM impressions i JOIN purchases p ON i.email = "
      "p.email OR i.email = p.email GROUP BY i.campaign");
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().message.find("join_operators"), std::string::npos);
}

TEST_F(PlanTest, TemplatesBindTypedParameters) {
  auto ok = Template("conversions_by_campaign", {{"since", "2026-11-01"}});
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_NE(RenderExpr(*ok->where).find("CAST('2026-11-01' AS DATE)"), std::string::npos);
  EXPECT_EQ(ok->template_name, "conversions_by_campaign");

  for (auto bad : {"yesterday", "2026-13-45", "2026-11-01' OR 1=1 --", ""}) {
    auto r = Template("conversions_by_campaign", {{"since", bad}});
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::BAD_INPUT) << bad;
  }
  auto missing = Template("conversions_by_campaign", {});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::BAD_INPUT);
  auto extra = Template("conversions_by_campaign", {{"since", "2026-11-01"}, {"until", "x"}});
  ASSERT_FALSE(extra);
  EXPECT_EQ(extra.error().code, ErrorCode::BAD_INPUT);

  // A string parameter is a quoted constant, whatever it holds.
  auto s = Template("time_by_site", {{"exclude", "x' OR '1'='1"}});
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_NE(RenderExpr(*s->where).find("'x'' OR ''1''=''1'"), std::string::npos);
}

TEST_F(PlanTest, CustomDatasetsOnlyThroughTheirTemplates) {
  auto adhoc = Check("SELECT site, COUNT(DISTINCT email) FROM visits GROUP BY site");
  ASSERT_FALSE(adhoc);
  EXPECT_NE(adhoc.error().message.find("time_by_site"), std::string::npos);
  // A template that is not listed by the custom rule cannot touch it.
  spec::Template rogue;
  rogue.name = "conversions_by_campaign";
  rogue.sql = "SELECT site, COUNT(DISTINCT email) FROM visits GROUP BY site";
  CheckContext ctx;
  ctx.spec = &holder_->spec();
  ctx.caller = "acme";
  ctx.tmpl = &rogue;
  auto r = BuildPlan(*db_, rogue.sql, ctx);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::QUERY_REFUSED);
  // Role limits still hold inside templates.
  rogue.name = "time_by_site";
  rogue.sql = "SELECT email, COUNT(DISTINCT email) FROM visits GROUP BY email";
  auto k = BuildPlan(*db_, rogue.sql, ctx);
  ASSERT_FALSE(k);
  EXPECT_EQ(k.error().code, ErrorCode::QUERY_REFUSED);
}

TEST_F(PlanTest, ListRuleNeedsTheCallersOwnDataset) {
  const std::string q = "SELECT DISTINCT s.segment FROM segments s JOIN audiences a ON s.email = a.email";
  auto acme = Check(q, "acme");
  ASSERT_TRUE(acme) << acme.error().message;
  EXPECT_EQ(acme->kind, QueryKind::kList);
  auto analyst = Check(q, "analyst");
  ASSERT_FALSE(analyst);
  EXPECT_NE(analyst.error().message.find("list rule"), std::string::npos);
}

TEST_F(PlanTest, AtMostFifteenDatasets) {
  std::string sql = "SELECT t0.campaign, COUNT(DISTINCT t0.email) FROM impressions t0";
  for (int i = 1; i < 15; ++i) {
    sql += fmt::format(" JOIN impressions t{} ON t0.email = t{}.email", i, i);
  }
  EXPECT_TRUE(Check(sql + " GROUP BY t0.campaign"));
  auto r = Check(sql + " JOIN impressions t15 ON t0.email = t15.email GROUP BY t0.campaign");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("15"), std::string::npos);
}


// Over a spec whose unit columns are customer_id and member_id.
class OtherSpecTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { holder_ = new cr::testing::SpecHolder(cr::testing::kCustomerSpec); }
  static void TearDownTestSuite() {
    delete holder_;
    holder_ = nullptr;
  }
  void SetUp() override {
    auto db = engine::Database::Open({.threads = 1, .memory_limit = ""});
    ASSERT_TRUE(db);
    db_ = std::make_unique<engine::Database>(std::move(*db));
  }
  Error Refusal(const std::string& sql) {
    CheckContext ctx;
    ctx.spec = &holder_->spec();
    ctx.caller = "acme";
    auto p = BuildPlan(*db_, sql, ctx);
    EXPECT_FALSE(p) << sql;
    return p ? Error{} : p.error();
  }
  static cr::testing::SpecHolder* holder_;
  std::unique_ptr<engine::Database> db_;
};

cr::testing::SpecHolder* OtherSpecTest::holder_ = nullptr;

TEST_F(OtherSpecTest, CountStarHintNamesThisSpecsUnitColumn) {
  Error one = Refusal("SELECT store, COUNT(*) FROM orders GROUP BY store");
  EXPECT_EQ(one.code, ErrorCode::QUERY_REFUSED);
  EXPECT_NE(one.message.find("COUNT(DISTINCT customer_id)"), std::string::npos) << one.message;
  EXPECT_EQ(one.message.find("email"), std::string::npos) << one.message;
  Error joined = Refusal(
      "SELECT o.store, COUNT(*) FROM orders o JOIN members m ON o.customer_id = m.member_id GROUP BY o.store");
  EXPECT_NE(joined.message.find("COUNT(DISTINCT o.customer_id)"), std::string::npos) << joined.message;
  Error members = Refusal("SELECT tier, count(*) FROM members GROUP BY tier");
  EXPECT_NE(members.message.find("COUNT(DISTINCT member_id)"), std::string::npos) << members.message;
}

TEST_F(OtherSpecTest, UnknownNamesListWhatExists) {
  Error ds = Refusal("SELECT store, COUNT(DISTINCT customer_id) FROM customers GROUP BY store");
  EXPECT_EQ(ds.code, ErrorCode::QUERY_REFUSED);
  EXPECT_NE(ds.message.find("unknown dataset 'customers' (the spec's datasets: orders, members)"),
            std::string::npos) << ds.message;
  Error col = Refusal("SELECT device, COUNT(DISTINCT customer_id) FROM orders GROUP BY device");
  EXPECT_NE(col.message.find("unknown column 'device' (columns in scope: orders: customer_id, store, total)"),
            std::string::npos) << col.message;
  // In a join, the columns of every dataset in scope, under their aliases.
  Error both = Refusal(
      "SELECT device, COUNT(DISTINCT o.customer_id) FROM orders o JOIN members m ON o.customer_id = "
      "m.member_id GROUP BY device");
  EXPECT_NE(both.message.find("o (orders): customer_id, store, total; m (members): member_id, tier"),
            std::string::npos) << both.message;
  Error qualified = Refusal("SELECT o.device, COUNT(DISTINCT o.customer_id) FROM orders o GROUP BY 1");
  EXPECT_NE(qualified.message.find("unknown column 'device' in o (orders): customer_id, store, total"),
            std::string::npos) << qualified.message;
  Error alias = Refusal("SELECT x.store, COUNT(DISTINCT o.customer_id) FROM orders o GROUP BY 1");
  EXPECT_NE(alias.message.find("unknown dataset or alias 'x' (in scope: o)"), std::string::npos)
      << alias.message;
  // A join condition sees only the datasets of its own join.
  Error on = Refusal(
      "SELECT o.store, COUNT(DISTINCT o.customer_id) FROM orders o JOIN members m ON o.customer_id = "
      "m.customer_id GROUP BY 1");
  EXPECT_NE(on.message.find("unknown column 'customer_id' in m (members): member_id, tier"),
            std::string::npos) << on.message;
}

TEST_F(PlanTest, ExpressionsCompareByStructure) {
  auto p = Check(
      "SELECT upper(campaign) AS c, TRY_CAST(shown_at AS DATE) AS d, CASE WHEN campaign = 'a' THEN 1 "
      "ELSE 0 END AS k, COUNT(DISTINCT email) FROM impressions GROUP BY upper(campaign), "
      "TRY_CAST(shown_at AS DATE), CASE WHEN campaign = 'a' THEN 1 ELSE 0 END ORDER BY CASE WHEN "
      "campaign = 'a' THEN 1 ELSE 0 END");
  ASSERT_TRUE(p) << p.error().message;
  ASSERT_EQ(p->group_by.size(), 3u);
  EXPECT_EQ(p->group_by[0], p->outputs[0].expr);
  ASSERT_EQ(p->order.size(), 1u);
  EXPECT_EQ(p->order[0].output, 2u);
  // Each flag is part of the structure: CAST is not TRY_CAST, a CASE without
  // ELSE is not one with it, IN is not NOT IN.
  Expr cast = p->outputs[1].expr;
  ASSERT_EQ(cast.kind, Expr::Kind::kCast);
  EXPECT_TRUE(cast.try_cast);
  Expr plain = cast;
  plain.try_cast = false;
  EXPECT_FALSE(plain == cast);
  Expr with_else = p->outputs[2].expr;
  ASSERT_EQ(with_else.kind, Expr::Kind::kCase);
  EXPECT_TRUE(with_else.has_else);
  EXPECT_FALSE(with_else.negated);
  Expr without = with_else;
  without.has_else = false;
  without.args.pop_back();
  EXPECT_FALSE(without == with_else);
  Expr other_column = p->outputs[0].expr;
  other_column.args[0].column = "shown_at";
  EXPECT_FALSE(other_column == p->outputs[0].expr);

  // The same column under a different alias of the same dataset is another
  // table of the join, not the grouped one.
  auto two = Check(
      "SELECT i.campaign, COUNT(DISTINCT i.email) FROM impressions i JOIN impressions j ON i.email = "
      "j.email GROUP BY j.campaign");
  ASSERT_FALSE(two);
  EXPECT_NE(two.error().message.find("'campaign' in SELECT must be in GROUP BY"), std::string::npos)
      << two.error().message;
  // A grouped expression may be used inside a larger one; a different one may not.
  EXPECT_TRUE(Check("SELECT lower(upper(campaign)) AS c, COUNT(DISTINCT email) FROM impressions GROUP "
                    "BY upper(campaign)"));
  auto diff = Check("SELECT upper(campaign) AS c, COUNT(DISTINCT email) FROM impressions GROUP BY "
                    "lower(campaign)");
  ASSERT_FALSE(diff);
  EXPECT_NE(diff.error().message.find("must be in GROUP BY"), std::string::npos);
  auto order = Check("SELECT upper(campaign) AS c, COUNT(DISTINCT email) FROM impressions GROUP BY 1 "
                     "ORDER BY lower(campaign)");
  ASSERT_FALSE(order);
  EXPECT_NE(order.error().message.find("ORDER BY may only name output columns"), std::string::npos);
}

TEST(SyntaxErrorTest, PointsAtLineColumnAndToken) {
  const std::string sql = "SELECT campaign,\n       COUNT(DISTINCT email)\nFROM impressions GRUP BY campaign";
  size_t offset = sql.find("BY");
  SourcePosition p = Locate(sql, offset);
  EXPECT_EQ(p.line, 3u);
  EXPECT_EQ(p.column, 23u);
  EXPECT_EQ(p.token, "BY");
  EXPECT_EQ(p.line_text, "FROM impressions GRUP BY campaign");
  std::string m = DescribeSyntaxError(sql, offset);
  EXPECT_EQ(m,
            "syntax error at line 3, column 23, at \"BY\"\n"
            "  FROM impressions GRUP BY campaign\n"
            "                        ^^");
  // Columns count characters, and tabs are kept so the caret lines up.
  std::string utf = "SELECT 'caf\xc3\xa9',\tx FROM";
  p = Locate(utf, utf.find('x'));
  EXPECT_EQ(p.column, 16u);
  EXPECT_EQ(DescribeSyntaxError(utf, utf.find('x')),
            "syntax error at line 1, column 16, at \"x\"\n  SELECT 'caf\xc3\xa9',\tx FROM\n"
            "                \t^");
  // The end of the text, and an unterminated string.
  EXPECT_NE(DescribeSyntaxError("SELECT (", 8).find("line 1, column 9, at the end of the SQL"),
            std::string::npos);
  std::string open = "SELECT 'abc FROM x";
  EXPECT_NE(DescribeSyntaxError(open, 7).find("at an unterminated quoted string"), std::string::npos);
  // A string closed on a later line is a token like any other: only its
  // first line is shown.
  std::string multi = "SELECT x 'two\nlines' FROM t";
  EXPECT_EQ(DescribeSyntaxError(multi, 9),
            "syntax error at line 1, column 10, at \"'two\"\n  SELECT x 'two\n           ^^^^");
  // A long line is cut around the error, the caret still under the token.
  std::string wide = "SELECT " + std::string(500, 'a') + " ) " + std::string(500, 'b');
  std::string w = DescribeSyntaxError(wide, wide.find(')'));
  EXPECT_NE(w.find("column 509, at \")\""), std::string::npos) << w;
  auto lines = w.substr(w.find('\n') + 1);
  std::string shown = lines.substr(0, lines.find('\n'));
  std::string caret = lines.substr(lines.find('\n') + 1);
  EXPECT_LT(shown.size(), 250u);
  ASSERT_EQ(caret.find('^'), shown.find(')'));
}

}  // namespace
}  // namespace cr::query
