// CSV reading/writing and config parsing.
#include "anonymize/table.h"

#include <gtest/gtest.h>

#include "anonymize/config.h"
#include "common/files.h"
#include "crypto/crypto.h"
#include "testing/temp_dir.h"

namespace cr::anonymize {
namespace {

TEST(TableTest, ReadsQuotedCsvAndDetectsSeparator) {
  auto t = ReadCsv("name;note;n\r\n\"Smith; J\";\"said \"\"hi\"\"\";1\nDoe;\"two\nlines\";2\n");
  ASSERT_TRUE(t) << t.error().ToString();
  ASSERT_EQ(t->num_rows(), 2u);
  EXPECT_EQ(t->column(0).Value(0), "Smith; J");
  EXPECT_EQ(t->column(1).Value(0), "said \"hi\"");
  EXPECT_EQ(t->column(1).Value(1), "two\nlines");
  EXPECT_EQ(DetectSeparator("a,b,c\n"), ',');
  EXPECT_EQ(DetectSeparator("a\tb\tc\n"), '\t');
  EXPECT_EQ(DetectSeparator("\"x;y\",b,c\n"), ',');
}

TEST(TableTest, RoundTripsThroughWriteCsv) {
  auto t = ReadCsv("a,b\n\"x,1\",\"q\"\"\"\nplain,\n");
  ASSERT_TRUE(t);
  auto back = ReadCsv(WriteCsv(*t, ','));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->Values(0), t->Values(0));
  EXPECT_EQ(back->Values(1), t->Values(1));
}

// Parquet output keeps every name and value exactly: quotes, separators,
// newlines, empty strings, surrounding spaces, leading zeros, non-ASCII text,
// and a value that looks like DuckDB's default NULL marker.
TEST(TableTest, ParquetRoundTripKeepsEveryCell) {
  ASSERT_TRUE(crypto::Init());
  TableBuilder b({"zip", "Note, with comma", "empty", "quoted \"name\""});
  ASSERT_TRUE(b.AddRow({"02139", "say \"hi\"", "", "a;b"}));
  ASSERT_TRUE(b.AddRow({"00000", "two\nlines", "", "  padded  "}));
  ASSERT_TRUE(b.AddRow({"*", "Zürich — ok", "NULL", "[50, 60["}));
  ASSERT_TRUE(b.AddRow({"021**", "", "x", "\"\""}));
  Table t = b.Finish();
  auto bytes = TableToParquet(t);
  ASSERT_TRUE(bytes) << bytes.error().message;
  EXPECT_EQ(bytes->substr(0, 4), "PAR1");
  testing::TempDir d;
  ASSERT_TRUE(WriteFileAtomic(d / "t.parquet", *bytes, 0600));
  auto back = ReadTableFile(d / "t.parquet");
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_TRUE(SameCells(*back, t));
  for (size_t c = 0; c < t.num_columns(); ++c) {
    EXPECT_EQ(back->column(c).name, t.column(c).name);
    EXPECT_EQ(back->Values(c), t.Values(c)) << t.column(c).name;
  }
  // SameCells notices one changed cell.
  Table changed = t;
  auto v = changed.Values(2);
  v[0] = " ";
  changed.SetValues(2, v);
  EXPECT_FALSE(SameCells(changed, t));
}

TEST(TableTest, ParquetRefusesNamesThatDifferOnlyInCase) {
  ASSERT_TRUE(crypto::Init());
  TableBuilder b({"Age", "age"});
  ASSERT_TRUE(b.AddRow({"1", "2"}));
  auto bytes = TableToParquet(b.Finish());
  ASSERT_FALSE(bytes);
  EXPECT_EQ(bytes.error().code, ErrorCode::BAD_INPUT);
}

TEST(TableTest, RejectsMalformedInput) {
  EXPECT_EQ(ReadCsv("a,b\n1,2,3\n").error().code, ErrorCode::BAD_INPUT);
  EXPECT_EQ(ReadCsv("a,b\n\"1,2\n").error().code, ErrorCode::BAD_INPUT);
  EXPECT_EQ(ReadCsv("a,a\n1,2\n").error().code, ErrorCode::BAD_INPUT);
  EXPECT_EQ(ReadCsv("").error().code, ErrorCode::BAD_INPUT);
}

TEST(TableTest, DictionaryEncodes) {
  auto t = ReadCsv("c\nx\ny\nx\n");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->column(0).dict.size(), 2u);
  EXPECT_EQ(t->column(0).codes, (std::vector<uint32_t>{0, 1, 0}));
  t->Replicate(1);
  EXPECT_EQ(t->num_rows(), 6u);
}

TEST(ConfigTest, ParsesTheDocumentedExample) {
  auto c = ParseConfig(R"(
separator: ";"
quasi_identifiers:
  age:       {hierarchy: hierarchies/age.csv}
  zip:       {generalize: prefix}
  income:    {generalize: intervals, widths: [1000, 10000, 100000]}
  visit:     {generalize: date, levels: [month, year]}
sensitive:
  diagnosis: {}
identifiers:
  name:  {transform: pseudonymize, secret: shared.secret}
  phone: {transform: {mask: {keep_last: 4}}}
  ssn:   {transform: drop}
attributes:
  salary: {transform: noise, mechanism: laplace, scale: 500}
  bonus:  {transform: noise, multiplicative: 0.05}
  city:   {transform: swap, rank_window: 0.05}
  shop:   {transform: swap, swap: random, within: [region]}
privacy:
  k: 5
  l: {attribute: diagnosis, kind: entropy, l: 3}
  t: {attribute: diagnosis, closeness: 0.2}
  suppression_limit: 0.04
objective: loss
suppressed: drop
)",
                       "/cfg");
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->separator, ';');
  ASSERT_EQ(c->quasi_identifiers.size(), 4u);
  EXPECT_EQ(c->quasi_identifiers[0].hierarchy.path, "/cfg/hierarchies/age.csv");
  EXPECT_EQ(c->quasi_identifiers[2].hierarchy.widths, (std::vector<double>{1000, 10000, 100000}));
  EXPECT_EQ(c->identifiers[0].secret_path, "/cfg/shared.secret");
  EXPECT_EQ(c->identifiers[1].kind, IdentifierRule::Kind::kMask);
  EXPECT_EQ(c->identifiers[1].keep_last, 4);
  EXPECT_EQ(c->attributes[1].noise.kind, NoiseSpec::Kind::kMultiplicative);
  EXPECT_EQ(c->attributes[2].kind, AttributeRule::Kind::kRankSwap);
  EXPECT_EQ(c->attributes[3].within, (std::vector<std::string>{"region"}));
  EXPECT_EQ(c->models.k, 5);
  EXPECT_EQ(c->models.l->kind, LDiversity::Kind::kEntropy);
  EXPECT_DOUBLE_EQ(c->models.t->t, 0.2);
  EXPECT_EQ(c->objective, Objective::kLoss);
  EXPECT_TRUE(c->drop_suppressed);
}

TEST(ConfigTest, RejectsBadConfigsWithBadInput) {
  for (const char* bad : {
           "quasi_identifiers: {}\n",
           "quasi_identifiers: {a: {generalize: prefix}}\nprivacy: {k: 0}\n",
           "quasi_identifiers: {a: {generalize: prefix}}\nprivacy: {kk: 5}\n",
           "quasi_identifiers: {a: {generalize: nope}}\n",
           "quasi_identifiers: {a: {generalize: prefix}}\nprivacy: {suppression_limit: 2}\n",
           "quasi_identifiers: {a: {generalize: prefix}}\nprivacy: {l: {attribute: d, l: 2}}\n",
           "quasi_identifiers: {a: {generalize: prefix}}\nsensitive: {a: {}}\n",
           "quasi_identifiers: {a: {generalize: prefix}}\nobjective: fastest\n",
           "quasi_identifiers: {a: {generalize: prefix}}\nidentifiers: {n: {transform: hash}}\n",
           "quasi_identifiers: [\n",
       }) {
    auto c = ParseConfig(bad, ".");
    ASSERT_FALSE(c) << bad;
    EXPECT_EQ(c.error().code, ErrorCode::BAD_INPUT) << bad;
  }
}

}  // namespace
}  // namespace cr::anonymize
