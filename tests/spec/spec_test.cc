#include "spec/spec.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/files.h"
#include "testing/temp_dir.h"

namespace cr::spec {
namespace {

using cr::testing::Spit;
using cr::testing::TempDir;

// The example of the product contract (the collaboration spec), verbatim.
constexpr std::string_view kExample =
    R"yaml(collaboration: acme-newsco-2026q4      # id: [a-z0-9-]{3,64}
description: Campaign measurement, Q4
region: eu                             # data residency: data and results stay here
retention_days: 90                     # contributed data is crypto-shredded after this
parties:
  acme:   {public_key: keys/acme.pub,   abilities: [contribute, query, receive_results]}
  newsco: {public_key: keys/newsco.pub, abilities: [contribute, receive_results]}
privacy:
  unit: person                         # the protected entity
  min_distinct_units: 50               # default aggregation threshold (k)
  dp:                                  # optional: differential privacy for aggregation queries
    epsilon: 10                        # total budget per refresh period
    delta: 1.0e-6
    max_groups_per_unit: 4             # contribution bound (L0)
    refresh: monthly                   # or: none
datasets:
  impressions:
    owner: newsco
    privacy_unit_column: email
    columns:
      email:    {type: string, role: join_key, normalize: email}
      campaign: {type: string, role: dimension}
      shown_at: {type: timestamp, role: dimension}
      cost:     {type: double, role: metric, bounds: [0, 5]}
    rule:
      kind: aggregation                # aggregation | list | custom
      aggregates: {cost: [sum, avg], email: [count_distinct]}
      public_values: {campaign: [spring, summer, autumn]}   # optional: group keys that are not secret (DP)
      min_distinct_units: 100          # stricter than the default
      receivers: [acme, newsco]
  purchases:
    owner: acme
    privacy_unit_column: email
    columns:
      email:  {type: string, role: join_key, normalize: email}
      amount: {type: double, role: metric, bounds: [0, 500]}
      day:    {type: date, role: dimension}
    rule: {kind: aggregation, aggregates: {amount: [sum, avg, count]}, receivers: [acme]}
templates:
  conversions_by_campaign:
    parameters: {since: date}
    sql: |
      SELECT i.campaign, COUNT(DISTINCT p.email) AS buyers, SUM(p.amount) AS revenue
      FROM impressions i JOIN purchases p ON i.email = p.email
      WHERE p.day >= $since GROUP BY i.campaign
)yaml";

constexpr std::string_view kPurchasesRule =
    "rule: {kind: aggregation, aggregates: {amount: [sum, avg, count]}, receivers: [acme]}";
constexpr std::string_view kDpBlock =
    "  dp:                                  # optional: differential privacy for aggregation "
    "queries\n"
    "    epsilon: 10                        # total budget per refresh period\n"
    "    delta: 1.0e-6\n"
    "    max_groups_per_unit: 4             # contribution bound (L0)\n"
    "    refresh: monthly                   # or: none\n";

constexpr std::string_view kPublicValuesLine =
    "      public_values: {campaign: [spring, summer, autumn]}   # optional: group keys that are "
    "not secret (DP)\n";

// The example without its differential-privacy keys: the exact-threshold spec
// most tests start from.
std::string WithoutDpKeys(std::string text) {
  for (std::string_view key : {kDpBlock, kPublicValuesLine}) {
    if (auto pos = text.find(key); pos != std::string::npos) text.erase(pos, key.size());
  }
  return text;
}
const std::string kBase = WithoutDpKeys(std::string(kExample));

using Edits = std::vector<std::pair<std::string, std::string>>;

// `text` with the first occurrence of each `from` replaced by its `to`.
std::string Edited(std::string text, const Edits& edits) {
  for (const auto& [from, to] : edits) {
    auto pos = text.find(from);
    if (pos == std::string::npos) {
      ADD_FAILURE() << "edit target not found: " << from;
      continue;
    }
    text.replace(pos, from.size(), to);
  }
  return text;
}

class SpecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::Init());
    ASSERT_TRUE(MakeDirs(dir_ / "keys"));
    acme_.emplace(crypto::Identity::Generate());
    newsco_.emplace(crypto::Identity::Generate());
    outsider_.emplace(crypto::Identity::Generate());
    ASSERT_TRUE(crypto::WriteIdentityFiles(*acme_, dir_ / "keys", "acme"));
    ASSERT_TRUE(crypto::WriteIdentityFiles(*newsco_, dir_ / "keys", "newsco"));
    Spit(dir_ / "keys/garbage.pub", "crpub1:not-a-key\n");
  }

  Result<Spec> ParseText(std::string_view text) { return Parse(text, dir_.path()); }
  Result<Spec> ParseEdited(const Edits& edits) { return ParseText(Edited(kBase, edits)); }
  Spec Example() {
    auto spec = ParseText(kBase);
    EXPECT_TRUE(spec) << spec.error().ToString();
    return spec ? *spec : Spec{};
  }

  TempDir dir_;
  std::optional<crypto::Identity> acme_, newsco_, outsider_;
};

void ExpectError(const Result<Spec>& r, ErrorCode code, std::string_view path) {
  ASSERT_FALSE(r) << "expected an error at " << path;
  EXPECT_EQ(r.error().code, code) << r.error().ToString();
  EXPECT_NE(r.error().message.find(path), std::string::npos)
      << "message does not name " << path << ": " << r.error().message;
}

// ----- The example -------------------------------------------------------------------

// The product contract's example asks for differential privacy, which the
// room enforces: it parses with every DP field as written.
TEST_F(SpecTest, VerbatimExampleParsesWithItsDpKeys) {
  auto r = ParseText(kExample);
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_TRUE(r->privacy.dp);
  EXPECT_EQ(r->privacy.dp->epsilon, 10);
  EXPECT_EQ(r->privacy.dp->delta, 1.0e-6);
  EXPECT_EQ(r->privacy.dp->max_groups_per_unit, 4);
  EXPECT_EQ(r->privacy.dp->refresh, "monthly");
  // Defaults: one row per unit and group, a tenth of the budget per query,
  // and no query may spend more than the whole budget.
  EXPECT_EQ(r->privacy.dp->max_contributions_per_group, 1);
  EXPECT_EQ(r->privacy.dp->query_epsilon, 1);
  EXPECT_EQ(r->privacy.dp->max_query_epsilon, 10);
  EXPECT_EQ(r->FindDataset("impressions")->rule.public_values.at("campaign"),
            (std::vector<std::string>{"spring", "summer", "autumn"}));

  // A room re-reads its spec through ParseWithKeyFiles: same answer there.
  std::map<std::string, std::string> stored;
  for (const char* name : {"acme", "newsco"}) {
    std::string file = std::string("keys/") + name + ".pub";
    stored[file] = cr::testing::Slurp(dir_ / file);
  }
  auto again = ParseWithKeyFiles(kExample, stored);
  ASSERT_TRUE(again) << again.error().ToString();
  EXPECT_EQ(again->hash, r->hash);
  ASSERT_TRUE(ParseWithKeyFiles(kBase, stored));
}

TEST_F(SpecTest, DpPerQueryEpsilonIsValidated) {
  auto with = [&](const std::string& extra) {
    return ParseText(Edited(std::string(kExample),
                            {{"    refresh: monthly", extra + "\n    refresh: monthly"}}));
  };
  auto ok = with("    query_epsilon: 0.5\n    max_query_epsilon: 2\n"
                 "    max_contributions_per_group: 3");
  ASSERT_TRUE(ok) << ok.error().ToString();
  EXPECT_EQ(ok->privacy.dp->query_epsilon, 0.5);
  EXPECT_EQ(ok->privacy.dp->max_query_epsilon, 2);
  EXPECT_EQ(ok->privacy.dp->max_contributions_per_group, 3);
  ExpectError(with("    query_epsilon: 0"), ErrorCode::SPEC_INVALID, "privacy.dp.query_epsilon");
  ExpectError(with("    query_epsilon: 11"), ErrorCode::SPEC_INVALID, "privacy.dp.query_epsilon");
  ExpectError(with("    max_query_epsilon: 2\n    query_epsilon: 3"), ErrorCode::SPEC_INVALID,
              "privacy.dp.query_epsilon");
  ExpectError(with("    max_query_epsilon: 20"), ErrorCode::SPEC_INVALID,
              "privacy.dp.max_query_epsilon");
  ExpectError(with("    max_contributions_per_group: 0"), ErrorCode::SPEC_INVALID,
              "privacy.dp.max_contributions_per_group");
  ExpectError(with("    epsilon_total: 3"), ErrorCode::SPEC_INVALID, "epsilon_total");
  ExpectError(ParseText(Edited(std::string(kExample), {{"epsilon: 10", "epsilon: .inf"}})),
              ErrorCode::SPEC_INVALID, "privacy.dp.epsilon");
  // A too-large query default is capped by a stated max_query_epsilon.
  auto capped = with("    max_query_epsilon: 0.25");
  ASSERT_TRUE(capped) << capped.error().ToString();
  EXPECT_EQ(capped->privacy.dp->query_epsilon, 0.25);
}

TEST_F(SpecTest, PublicValuesNeedPrivacyDp) {
  auto r = ParseText(Edited(kBase, {{"receivers: [acme, newsco]",
                                     "receivers: [acme, newsco]\n"
                                     "      public_values: {campaign: [spring]}"}}));
  ExpectError(r, ErrorCode::SPEC_INVALID,
              "datasets.impressions.rule.public_values: requires privacy.dp");
  EXPECT_NE(r.error().message.find("line"), std::string::npos) << r.error().message;
}

TEST_F(SpecTest, ExampleWithoutDpKeysParses) {
  EXPECT_EQ(kBase.find("dp:"), std::string::npos);
  EXPECT_EQ(kBase.find("public_values"), std::string::npos);
  EXPECT_EQ(kBase.size() + kDpBlock.size() + kPublicValuesLine.size(), kExample.size());
  auto r = ParseText(kBase);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_FALSE(r->privacy.dp);
  EXPECT_TRUE(r->FindDataset("impressions")->rule.public_values.empty());
}

TEST_F(SpecTest, ExampleParsesFieldByField) {
  auto r = ParseText(kBase);
  ASSERT_TRUE(r) << r.error().ToString();
  const Spec& s = *r;
  EXPECT_EQ(s.collaboration, "acme-newsco-2026q4");
  EXPECT_EQ(s.description, "Campaign measurement, Q4");
  EXPECT_EQ(s.region, "eu");
  EXPECT_EQ(s.retention_days, 90);
  EXPECT_EQ(s.bytes, kBase);
  EXPECT_EQ(s.hash.size(), 64u);

  ASSERT_EQ(s.parties.size(), 2u);
  EXPECT_EQ(s.parties[0].name, "acme");
  EXPECT_EQ(s.parties[0].public_key_source, "keys/acme.pub");
  EXPECT_EQ(s.parties[0].key_bytes, cr::testing::Slurp(dir_ / "keys/acme.pub"));
  EXPECT_EQ(s.parties[0].key, acme_->pub());
  EXPECT_EQ(s.parties[0].abilities,
            (std::vector<std::string>{"contribute", "query", "receive_results"}));
  EXPECT_TRUE(s.parties[0].Can("query"));
  EXPECT_EQ(s.parties[1].name, "newsco");
  EXPECT_EQ(s.parties[1].key, newsco_->pub());
  EXPECT_FALSE(s.parties[1].Can("query"));
  EXPECT_EQ(s.FindParty("newsco"), &s.parties[1]);
  EXPECT_EQ(s.FindPartyByKey(acme_->pub()), &s.parties[0]);
  EXPECT_EQ(s.FindPartyByKey(outsider_->pub()), nullptr);
  EXPECT_EQ(s.FindParty("globex"), nullptr);

  EXPECT_EQ(s.privacy.unit, "person");
  EXPECT_EQ(s.privacy.min_distinct_units, 50);
  EXPECT_FALSE(s.privacy.dp);

  ASSERT_EQ(s.datasets.size(), 2u);
  const Dataset& imp = s.datasets[0];
  EXPECT_EQ(imp.name, "impressions");
  EXPECT_EQ(imp.owner, "newsco");
  EXPECT_EQ(imp.privacy_unit_column, "email");
  ASSERT_EQ(imp.columns.size(), 4u);
  EXPECT_EQ(imp.columns[0].name, "email");
  EXPECT_EQ(imp.columns[0].type, ColumnType::kString);
  EXPECT_EQ(imp.columns[0].role, Role::kJoinKey);
  EXPECT_EQ(imp.columns[0].normalize, Normalize::kEmail);
  EXPECT_FALSE(imp.columns[0].bounds);
  EXPECT_EQ(imp.columns[1].name, "campaign");
  EXPECT_EQ(imp.columns[1].role, Role::kDimension);
  EXPECT_EQ(imp.columns[1].normalize, Normalize::kNone);
  EXPECT_EQ(imp.columns[2].name, "shown_at");
  EXPECT_EQ(imp.columns[2].type, ColumnType::kTimestamp);
  EXPECT_EQ(imp.columns[3].name, "cost");
  EXPECT_EQ(imp.columns[3].type, ColumnType::kDouble);
  EXPECT_EQ(imp.columns[3].role, Role::kMetric);
  ASSERT_TRUE(imp.columns[3].bounds);
  EXPECT_EQ(*imp.columns[3].bounds, std::make_pair(0.0, 5.0));
  EXPECT_EQ(imp.FindColumn("cost"), &imp.columns[3]);
  EXPECT_EQ(imp.FindColumn("price"), nullptr);

  const Rule& r1 = imp.rule;
  EXPECT_EQ(r1.kind, RuleKind::kAggregation);
  EXPECT_EQ(r1.aggregates.size(), 2u);
  EXPECT_EQ(r1.aggregates.at("cost"), (std::vector<AggFn>{AggFn::kSum, AggFn::kAvg}));
  EXPECT_EQ(r1.aggregates.at("email"), (std::vector<AggFn>{AggFn::kCountDistinct}));
  EXPECT_TRUE(r1.public_values.empty());
  EXPECT_EQ(r1.min_distinct_units, 100);
  EXPECT_EQ(r1.receivers, (std::vector<std::string>{"acme", "newsco"}));
  EXPECT_EQ(r1.join_operators, (std::vector<std::string>{"and"}));
  EXPECT_FALSE(r1.require_dp);

  const Dataset& pur = s.datasets[1];
  EXPECT_EQ(s.FindDataset("purchases"), &pur);
  EXPECT_EQ(s.FindDataset("clicks"), nullptr);
  EXPECT_EQ(pur.owner, "acme");
  ASSERT_EQ(pur.columns.size(), 3u);
  EXPECT_EQ(*pur.columns[1].bounds, std::make_pair(0.0, 500.0));
  EXPECT_EQ(pur.columns[2].type, ColumnType::kDate);
  EXPECT_EQ(pur.rule.aggregates.at("amount"),
            (std::vector<AggFn>{AggFn::kSum, AggFn::kAvg, AggFn::kCount}));
  EXPECT_EQ(pur.rule.receivers, (std::vector<std::string>{"acme"}));
  EXPECT_FALSE(pur.rule.min_distinct_units);

  EXPECT_EQ(s.MinDistinctUnits(imp), 100);  // the rule's
  EXPECT_EQ(s.MinDistinctUnits(pur), 50);   // the default

  ASSERT_EQ(s.templates.size(), 1u);
  const Template& t = s.templates[0];
  EXPECT_EQ(s.FindTemplate("conversions_by_campaign"), &t);
  EXPECT_EQ(s.FindTemplate("other"), nullptr);
  ASSERT_EQ(t.parameters.size(), 1u);
  EXPECT_EQ(t.parameters[0].name, "since");
  EXPECT_EQ(t.parameters[0].type, ColumnType::kDate);
  EXPECT_TRUE(t.sql.starts_with("SELECT i.campaign, COUNT(DISTINCT p.email)"));
  EXPECT_TRUE(t.sql.ends_with("GROUP BY i.campaign\n"));
}

TEST_F(SpecTest, InlineKeyPartyHasNoKeyBytes) {
  std::string inline_key = outsider_->pub().ToText();
  auto r = ParseEdited(
      {{"  newsco: {public_key: keys/newsco.pub, abilities: [contribute, receive_results]}\n",
        "  newsco: {public_key: keys/newsco.pub, abilities: [contribute, receive_results]}\n"
        "  regulator-eu:\n    public_key: " +
            inline_key + "\n    abilities: [receive_results]\n"}});
  ASSERT_TRUE(r) << r.error().ToString();
  const Party* p = r->FindParty("regulator-eu");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->public_key_source, inline_key);
  EXPECT_EQ(p->key_bytes, "");
  EXPECT_EQ(p->key, outsider_->pub());
  EXPECT_EQ(p->abilities, (std::vector<std::string>{"receive_results"}));
  EXPECT_EQ(r->FindPartyByKey(outsider_->pub()), p);
}

// A secret key pasted where the public key belongs is refused as a key, and
// its text never appears in the error (read as a path, it would have).
TEST_F(SpecTest, InlineSecretKeyIsRefusedWithoutEchoingIt) {
  auto secret = outsider_->ToText();
  std::string text(reinterpret_cast<const char*>(secret.data()), secret.size());
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  auto r = ParseEdited(
      {{"  newsco: {public_key: keys/newsco.pub, abilities: [contribute, receive_results]}\n",
        "  newsco: {public_key: keys/newsco.pub, abilities: [contribute, receive_results]}\n"
        "  regulator-eu:\n    public_key: " +
            text + "\n    abilities: [receive_results]\n"}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::KEY_INVALID) << r.error().ToString();
  EXPECT_NE(r.error().message.find("secret key"), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message.find(text.substr(7)), std::string::npos) << r.error().message;
}

TEST_F(SpecTest, JsonSpecParsesWithDefaults) {
  std::string json = R"({
    "collaboration": "bench-2026",
    "parties": {"acme": {"public_key": ")" +
                     acme_->pub().ToText() +
                     R"(", "abilities": ["contribute", "query", "receive_results"]}},
    "datasets": {"budgets": {
      "owner": "acme", "privacy_unit_column": "org",
      "columns": {"org": {"type": "string", "role": "join_key"},
                  "spend": {"type": "integer", "role": "sensitive", "bounds": [0, 1000000]}},
      "rule": {"kind": "aggregation", "aggregates": {"spend": ["avg", "median", "stddev"]},
               "join_operators": ["and", "or"], "receivers": ["acme"]}}}
  })";
  auto r = ParseText(json);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->collaboration, "bench-2026");
  EXPECT_EQ(r->description, "");
  EXPECT_EQ(r->region, "");
  EXPECT_EQ(r->retention_days, 0);
  EXPECT_EQ(r->privacy.unit, "person");
  EXPECT_EQ(r->privacy.min_distinct_units, 50);
  EXPECT_FALSE(r->privacy.dp);
  EXPECT_TRUE(r->templates.empty());
  const Dataset& d = r->datasets[0];
  EXPECT_EQ(d.columns[1].type, ColumnType::kInteger);
  EXPECT_EQ(d.columns[1].role, Role::kSensitive);
  EXPECT_EQ(d.rule.aggregates.at("spend"),
            (std::vector<AggFn>{AggFn::kAvg, AggFn::kMedian, AggFn::kStddev}));
  EXPECT_EQ(d.rule.join_operators, (std::vector<std::string>{"and", "or"}));
  EXPECT_EQ(r->MinDistinctUnits(d), 50);
}

TEST_F(SpecTest, ListAndCustomRulesParse) {
  auto r = ParseEdited(
      {{std::string(kPurchasesRule),
        "rule: {kind: custom, templates: [conversions_by_campaign], receivers: [acme]}"},
       {"      aggregates: {cost: [sum, avg], email: [count_distinct]}\n"
        "      min_distinct_units: 100          # stricter than the default\n",
        "      list_columns: [campaign, shown_at]\n"},
       {"kind: aggregation                # aggregation | list | custom", "kind: list"}});
  ASSERT_TRUE(r) << r.error().ToString();
  const Rule& list = r->FindDataset("impressions")->rule;
  EXPECT_EQ(list.kind, RuleKind::kList);
  EXPECT_EQ(list.list_columns, (std::vector<std::string>{"campaign", "shown_at"}));
  EXPECT_TRUE(list.aggregates.empty());
  const Rule& custom = r->FindDataset("purchases")->rule;
  EXPECT_EQ(custom.kind, RuleKind::kCustom);
  EXPECT_EQ(custom.templates, (std::vector<std::string>{"conversions_by_campaign"}));
}

TEST_F(SpecTest, RequireDpNeedsPrivacyDp) {
  auto without = ParseEdited({{"receivers: [acme, newsco]",
                               "receivers: [acme, newsco]\n"
                               "      require_dp: true"}});
  ExpectError(without, ErrorCode::SPEC_INVALID,
              "datasets.impressions.rule.require_dp: requires privacy.dp");
}

TEST_F(SpecTest, PublicValuesAreCheckedAgainstTheColumnType) {
  const std::string day = "day:    {type: date, role: dimension}";
  const std::string with_n = day + "\n      n:      {type: integer, role: dimension}";
  auto rule = [](const std::string& values) {
    return "rule: {kind: aggregation, aggregates: {amount: [sum]}, public_values: " + values +
           ", receivers: [acme]}";
  };
  // Well-typed values pass validation (on the example, which has privacy.dp).
  auto ok = ParseText(Edited(
      std::string(kExample),
      {{day, with_n},
       {std::string(kPurchasesRule), rule("{day: [2026-01-01, 2026-02-01], n: [1, -2]}")}}));
  ASSERT_TRUE(ok) << ok.error().ToString();
  EXPECT_EQ(ok->FindDataset("purchases")->rule.public_values.at("n"),
            (std::vector<std::string>{"1", "-2"}));

  auto with_dp = [&](const std::string& values) {
    return ParseText(
        Edited(std::string(kExample), {{day, with_n}, {std::string(kPurchasesRule), rule(values)}}));
  };
  ExpectError(with_dp("{day: [2026-13]}"), ErrorCode::SPEC_INVALID,
              "datasets.purchases.rule.public_values.day");
  ExpectError(with_dp("{n: [1, two]}"), ErrorCode::SPEC_INVALID,
              "datasets.purchases.rule.public_values.n");
  ExpectError(with_dp("{n: []}"), ErrorCode::SPEC_INVALID,
              "datasets.purchases.rule.public_values.n");
  ExpectError(with_dp("{n: [1, 1]}"), ErrorCode::SPEC_INVALID, "listed twice");
}

// ----- Documents -----------------------------------------------------------------------

TEST_F(SpecTest, YamlSyntaxErrorNamesTheLine) {
  auto r = ParseText("collaboration: acme-2026\nparties: {acme: [unclosed\n");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::SPEC_INVALID);
  EXPECT_NE(r.error().message.find("line "), std::string::npos) << r.error().message;
  EXPECT_EQ(ExitCode(r.error().code), 7);

  auto escape = ParseText("collaboration: \"bad\\q\"\n");
  ASSERT_FALSE(escape);
  EXPECT_EQ(escape.error().code, ErrorCode::SPEC_INVALID);
  EXPECT_NE(escape.error().message.find("line 1"), std::string::npos) << escape.error().message;
}

TEST_F(SpecTest, ValidationErrorsNameTheLine) {
  auto r = ParseEdited({{"bounds: [0, 5]", "bounds: [5, 0]"}});
  ExpectError(r, ErrorCode::SPEC_INVALID, "datasets.impressions.columns.cost.bounds");
  EXPECT_NE(r.error().message.find("(line 19)"), std::string::npos) << r.error().message;
}

TEST_F(SpecTest, EmptyOrNonMappingDocumentsAreRefused) {
  for (std::string_view text : {"", "# only a comment\n", "- a\n- b\n", "just text\n", "~\n"}) {
    auto r = ParseText(text);
    ASSERT_FALSE(r) << text;
    EXPECT_EQ(r.error().code, ErrorCode::SPEC_INVALID) << text;
  }
}

TEST_F(SpecTest, MultipleDocumentsAreRefused) {
  auto r = ParseText(kBase + "---\ncollaboration: other-one\n");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::SPEC_INVALID);
  EXPECT_NE(r.error().message.find("documents"), std::string::npos);
}

TEST_F(SpecTest, TopLevelRequiredFields) {
  std::string parties_block =
      "parties:\n"
      "  acme:   {public_key: keys/acme.pub,   abilities: [contribute, query, receive_results]}\n"
      "  newsco: {public_key: keys/newsco.pub, abilities: [contribute, receive_results]}\n";
  ExpectError(ParseEdited({{parties_block, ""}}), ErrorCode::SPEC_INVALID,
              "parties: required field is missing");
  ExpectError(ParseEdited({{parties_block, "parties: {}\n"}}), ErrorCode::SPEC_INVALID,
              "parties: at least one");

  std::string text(kBase);
  std::string head = text.substr(0, text.find("datasets:\n"));
  std::string tail = text.substr(text.find("templates:\n"));
  ExpectError(ParseText(head + tail), ErrorCode::SPEC_INVALID,
              "datasets: required field is missing");
  ExpectError(ParseText(head + "datasets: {}\n" + tail), ErrorCode::SPEC_INVALID,
              "datasets: at least one");
}

TEST_F(SpecTest, TemplateSqlIsRequiredAndNotBlank) {
  std::string sql_block(kBase.substr(kBase.find("    sql: |")));
  ExpectError(ParseEdited({{sql_block, ""}, {"{since: date}", "{}"}}), ErrorCode::SPEC_INVALID,
              "templates.conversions_by_campaign.sql");
  ExpectError(ParseEdited({{sql_block, "    sql: \"  \"\n"}, {"{since: date}", "{}"}}),
              ErrorCode::SPEC_INVALID, "templates.conversions_by_campaign.sql");
}

TEST_F(SpecTest, DollarInsideLiteralsOrCommentsIsNotAParameter) {
  auto r = ParseEdited({{"WHERE p.day >= $since",
                         "WHERE p.day >= $since AND i.campaign <> '$x' -- $y\n      /* $z */"}});
  ASSERT_TRUE(r) << r.error().ToString();
  // A parameter mentioned only inside a literal is unused.
  ExpectError(ParseEdited({{"WHERE p.day >= $since", "WHERE p.day >= '$since'"}}),
              ErrorCode::SPEC_INVALID, "templates.conversions_by_campaign.parameters.since");
}

// ----- Keys ---------------------------------------------------------------------------

TEST_F(SpecTest, KeyFileProblemsNameTheParty) {
  auto missing = ParseEdited({{"keys/newsco.pub", "keys/nobody.pub"}});
  ExpectError(missing, ErrorCode::FILE_UNREADABLE, "parties.newsco.public_key");
  EXPECT_NE(missing.error().message.find("newsco"), std::string::npos);

  auto garbage = ParseEdited({{"keys/newsco.pub", "keys/garbage.pub"}});
  ExpectError(garbage, ErrorCode::KEY_INVALID, "parties.newsco.public_key");

  auto secret = ParseEdited({{"keys/newsco.pub", "keys/newsco.key"}});  // a secret key file
  ExpectError(secret, ErrorCode::KEY_INVALID, "parties.newsco.public_key");

  auto inline_bad = ParseEdited({{"keys/newsco.pub", "\"crpub1:AAAA\""}});
  ExpectError(inline_bad, ErrorCode::KEY_INVALID, "parties.newsco.public_key");
}

TEST_F(SpecTest, TwoPartiesWithTheSameKeyAreRefused) {
  ExpectError(ParseEdited({{"keys/newsco.pub", "keys/acme.pub"}}), ErrorCode::SPEC_INVALID,
              "parties.newsco.public_key");
  ExpectError(ParseEdited({{"keys/newsco.pub", "\"" + acme_->pub().ToText() + "\""}}),
              ErrorCode::SPEC_INVALID, "parties.newsco.public_key");
}

TEST_F(SpecTest, LoadResolvesKeysAgainstTheSpecDirectory) {
  Spit(dir_ / "spec.yaml", kBase);
  auto loaded = Load(dir_ / "spec.yaml");
  ASSERT_TRUE(loaded) << loaded.error().ToString();
  EXPECT_EQ(loaded->hash, Example().hash);
  EXPECT_EQ(loaded->parties[1].key, newsco_->pub());

  // From another directory the relative key paths no longer resolve.
  auto elsewhere = Parse(kBase, dir_ / "missing");
  ExpectError(elsewhere, ErrorCode::FILE_UNREADABLE, "parties.acme.public_key");

  auto absent = Load(dir_ / "absent.yaml");
  ASSERT_FALSE(absent);
  EXPECT_EQ(absent.error().code, ErrorCode::FILE_UNREADABLE);

  Spit(dir_ / "bad.yaml", Edited(std::string(kExample), {{"epsilon: 10", "epsilon: 0"}}));
  auto bad = Load(dir_ / "bad.yaml");
  ExpectError(bad, ErrorCode::SPEC_INVALID, "privacy.dp.epsilon");
  EXPECT_NE(bad.error().message.find("bad.yaml"), std::string::npos);

  Spit(dir_ / "dp.yaml", std::string(kExample));
  auto dp = Load(dir_ / "dp.yaml");
  ASSERT_TRUE(dp) << dp.error().ToString();
  EXPECT_TRUE(dp->privacy.dp);
}

TEST_F(SpecTest, ParseWithKeyFilesUsesTheStoredCopies) {
  Spec from_disk = Example();
  std::map<std::string, std::string> stored;
  for (const Party& p : from_disk.parties) stored[p.public_key_source] = p.key_bytes;
  // Parsed without touching the disk: same keys, same hash.
  std::filesystem::remove_all(dir_ / "keys");
  auto r = ParseWithKeyFiles(kBase, stored);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->hash, from_disk.hash);
  EXPECT_EQ(r->parties[0].key, acme_->pub());
  EXPECT_EQ(r->parties[1].key_bytes, from_disk.parties[1].key_bytes);

  auto altered = stored;
  altered["keys/newsco.pub"] += "\n";
  auto changed = ParseWithKeyFiles(kBase, altered);
  ASSERT_TRUE(changed);
  EXPECT_NE(changed->hash, from_disk.hash);

  auto missing = stored;
  missing.erase("keys/acme.pub");
  ExpectError(ParseWithKeyFiles(kBase, missing), ErrorCode::FILE_UNREADABLE,
              "parties.acme.public_key");

  auto swapped = stored;
  swapped["keys/acme.pub"] = outsider_->pub().ToText();
  auto other = ParseWithKeyFiles(kBase, swapped);
  ASSERT_TRUE(other);
  EXPECT_EQ(other->parties[0].key, outsider_->pub());
  EXPECT_NE(other->hash, from_disk.hash);
}

// ----- Hash ---------------------------------------------------------------------------

std::string Le64(uint64_t n) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out;
}

TEST_F(SpecTest, HashIsTheDocumentedEncoding) {
  Spec s = Example();
  std::string acme_pub = cr::testing::Slurp(dir_ / "keys/acme.pub");
  std::string newsco_pub = cr::testing::Slurp(dir_ / "keys/newsco.pub");
  std::string encoding = std::string("cleanroom-spec-v1\0", 18) + Le64(kBase.size()) + kBase +
                         Le64(4) + "acme" + Le64(acme_pub.size()) +
                         acme_pub + Le64(6) + "newsco" + Le64(newsco_pub.size()) + newsco_pub;
  EXPECT_EQ(s.hash, ToHex(crypto::Sha256(encoding)));
}

TEST_F(SpecTest, HashIsStable) {
  Spec a = Example();
  Spec b = Example();
  EXPECT_EQ(a.hash, b.hash);
  EXPECT_EQ(a.hash.find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST_F(SpecTest, HashChangesWithOneSpecByte) {
  Spec a = Example();
  auto b = ParseEdited({{"Campaign measurement, Q4", "Campaign measurement, Q5"}});
  ASSERT_TRUE(b);
  EXPECT_NE(a.hash, b->hash);
  auto c = ParseText(kBase + "\n");  // even whitespace counts
  ASSERT_TRUE(c);
  EXPECT_NE(a.hash, c->hash);
}

TEST_F(SpecTest, HashChangesWithKeyFileBytes) {
  Spec a = Example();
  // Same key, one more byte in the file: the key still parses, the hash moves.
  Spit(dir_ / "keys/newsco.pub", newsco_->pub().ToText() + "\n\n");
  Spec b = Example();
  EXPECT_EQ(b.parties[1].key, newsco_->pub());
  EXPECT_NE(a.hash, b.hash);
  // Swapping in another key file also changes it.
  Spit(dir_ / "keys/newsco.pub", outsider_->pub().ToText() + "\n");
  Spec c = Example();
  EXPECT_NE(a.hash, c.hash);
  EXPECT_NE(b.hash, c.hash);
}

// ----- Signatures -------------------------------------------------------------------------

TEST_F(SpecTest, SignVerifyRoundTrip) {
  Spec s = Example();
  for (const auto* id : {&*acme_, &*newsco_}) {
    auto sig = Sign(s, *id);
    ASSERT_TRUE(sig) << sig.error().ToString();
    EXPECT_EQ(sig->collaboration, s.collaboration);
    EXPECT_EQ(sig->spec_hash, s.hash);
    EXPECT_EQ(sig->signature.size(), crypto::kSignatureBytes);
    EXPECT_TRUE(Verify(s, *sig));
    auto back = SignatureFromJson(SignatureToJson(*sig));
    ASSERT_TRUE(back) << back.error().ToString();
    EXPECT_EQ(back->party, sig->party);
    EXPECT_EQ(back->collaboration, sig->collaboration);
    EXPECT_EQ(back->spec_hash, sig->spec_hash);
    EXPECT_EQ(back->signature, sig->signature);
    EXPECT_TRUE(Verify(s, *back));
  }
  EXPECT_EQ(Sign(s, *acme_)->party, "acme");
  EXPECT_EQ(Sign(s, *newsco_)->party, "newsco");
}

TEST_F(SpecTest, SignatureCoversTheDocumentedMessage) {
  Spec s = Example();
  auto sig = Sign(s, *acme_);
  ASSERT_TRUE(sig);
  std::string message =
      std::string("cleanroom-spec-signature-v1\0", 28) + s.collaboration + '\0' + s.hash;
  EXPECT_TRUE(crypto::Verify(acme_->pub(), message, sig->signature));
}

TEST_F(SpecTest, SignatureJsonHasTheContractFields) {
  Spec s = Example();
  auto sig = Sign(s, *newsco_);
  ASSERT_TRUE(sig);
  auto j = nlohmann::json::parse(SignatureToJson(*sig));
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j.size(), 4u);
  EXPECT_EQ(j["party"], "newsco");
  EXPECT_EQ(j["collaboration"], "acme-newsco-2026q4");
  EXPECT_EQ(j["spec_hash"], s.hash);
  EXPECT_EQ(j["signature"], crypto::Base64Encode(sig->signature));
}

TEST_F(SpecTest, VerifyRefusesATamperedSignature) {
  Spec s = Example();
  auto sig = Sign(s, *acme_);
  ASSERT_TRUE(sig);
  sig->signature[10] ^= 1;
  auto st = Verify(s, *sig);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::SIGNATURE_INVALID);
  EXPECT_EQ(ExitCode(st.error().code), 6);

  // Claiming to be another party does not verify either.
  auto moved = Sign(s, *acme_);
  moved->party = "newsco";
  EXPECT_EQ(Verify(s, *moved).error().code, ErrorCode::SIGNATURE_INVALID);
}

TEST_F(SpecTest, VerifyRefusesASignatureOverAnotherSpec) {
  Spec s = Example();
  auto other = ParseEdited({{"min_distinct_units: 50", "min_distinct_units: 5"}});
  ASSERT_TRUE(other);
  auto sig = Sign(*other, *acme_);
  ASSERT_TRUE(sig);
  EXPECT_TRUE(Verify(*other, *sig));
  auto st = Verify(s, *sig);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::SPEC_MISMATCH);
  EXPECT_EQ(ExitCode(st.error().code), 3);

  // A key file swapped after signing breaks the signature.
  auto before = Sign(s, *acme_);
  Spit(dir_ / "keys/newsco.pub", newsco_->pub().ToText() + " \n");
  EXPECT_EQ(Verify(Example(), *before).error().code, ErrorCode::SPEC_MISMATCH);

  // Same hash claimed under another collaboration id.
  auto renamed = Sign(s, *acme_);
  renamed->collaboration = "acme-newsco-2027q1";
  EXPECT_EQ(Verify(s, *renamed).error().code, ErrorCode::SPEC_MISMATCH);
}

TEST_F(SpecTest, OutsidersCannotSign) {
  Spec s = Example();
  auto sig = Sign(s, *outsider_);
  ASSERT_FALSE(sig);
  EXPECT_EQ(sig.error().code, ErrorCode::UNKNOWN_SIGNER);
  EXPECT_EQ(ExitCode(sig.error().code), 5);

  // A forged signature naming a stranger, and one naming a real party.
  Signature forged{"mallory", s.collaboration, s.hash,
                   outsider_->Sign(std::string("cleanroom-spec-signature-v1\0", 28) +
                                   s.collaboration + '\0' + s.hash)};
  EXPECT_EQ(Verify(s, forged).error().code, ErrorCode::UNKNOWN_SIGNER);
  forged.party = "acme";
  EXPECT_EQ(Verify(s, forged).error().code, ErrorCode::SIGNATURE_INVALID);
}

TEST_F(SpecTest, MalformedSignatureJsonIsBadInput) {
  Spec s = Example();
  auto sig = Sign(s, *acme_);
  ASSERT_TRUE(sig);
  std::string b64 = crypto::Base64Encode(sig->signature);
  auto with = [&](const std::string& party, const std::string& hash, const std::string& signature,
                  const std::string& extra = "") {
    return R"({"party":")" + party + R"(","collaboration":"acme-newsco-2026q4","spec_hash":")" +
           hash + R"(","signature":")" + signature + "\"" + extra + "}";
  };
  ASSERT_TRUE(SignatureFromJson(with("acme", s.hash, b64)));
  std::vector<std::string> bad = {
      "",
      "not json",
      "[1, 2]",
      R"({"party":"acme"})",
      with("acme", s.hash, b64, R"(,"note":"x")"),        // unknown field
      with("acme", s.hash, b64, R"(,"party":"newsco")"),  // duplicate field
      with("", s.hash, b64),                              // empty party
      with("acme", s.hash.substr(2), b64),                // short hash
      with("acme", "Z" + s.hash.substr(1), b64),          // not hex
      with("acme", s.hash, b64.substr(4)),                // short signature
      with("acme", s.hash, "!!!" + b64.substr(3)),        // not base64url
      R"({"party":1,"collaboration":"c","spec_hash":"h","signature":"s"})",
  };
  for (const auto& text : bad) {
    auto r = SignatureFromJson(text);
    ASSERT_FALSE(r) << text;
    EXPECT_EQ(r.error().code, ErrorCode::BAD_INPUT) << text;
  }
}

TEST(SpecNamesTest, EnumSpellingsAndDuckDbTypes) {
  EXPECT_EQ(Name(ColumnType::kString), "string");
  EXPECT_EQ(Name(ColumnType::kTimestamp), "timestamp");
  EXPECT_EQ(Name(Role::kJoinKey), "join_key");
  EXPECT_EQ(Name(Role::kSensitive), "sensitive");
  EXPECT_EQ(Name(Normalize::kEmail), "email");
  EXPECT_EQ(Name(Normalize::kNone), "none");
  EXPECT_EQ(Name(RuleKind::kAggregation), "aggregation");
  EXPECT_EQ(Name(RuleKind::kCustom), "custom");
  EXPECT_EQ(Name(AggFn::kCountDistinct), "count_distinct");
  EXPECT_EQ(Name(AggFn::kMedian), "median");
  EXPECT_EQ(DuckDbType(ColumnType::kString), "VARCHAR");
  EXPECT_EQ(DuckDbType(ColumnType::kInteger), "BIGINT");
  EXPECT_EQ(DuckDbType(ColumnType::kDouble), "DOUBLE");
  EXPECT_EQ(DuckDbType(ColumnType::kBoolean), "BOOLEAN");
  EXPECT_EQ(DuckDbType(ColumnType::kDate), "DATE");
  EXPECT_EQ(DuckDbType(ColumnType::kTimestamp), "TIMESTAMP");
}

// ----- One case per validation rule ----------------------------------------------------------

struct Case {
  const char* name;
  std::string from;
  std::string to;
  ErrorCode code;
  const char* path;
  Edits more = {};  // further edits, applied after the first
};

std::ostream& operator<<(std::ostream& os, const Case& c) { return os << c.name; }

class SpecRuleTest : public SpecTest, public ::testing::WithParamInterface<Case> {};

// On the verbatim example, DP keys included, so the DP fields' grammar is checked too.
TEST_P(SpecRuleTest, IsRefusedNamingTheField) {
  const Case& c = GetParam();
  Edits edits = {{c.from, c.to}};
  edits.insert(edits.end(), c.more.begin(), c.more.end());
  ExpectError(ParseText(Edited(std::string(kExample), edits)), c.code, c.path);
}

constexpr ErrorCode kInvalid = ErrorCode::SPEC_INVALID;

const std::string kPartiesBlock =
    "parties:\n"
    "  acme:   {public_key: keys/acme.pub,   abilities: [contribute, query, receive_results]}\n"
    "  newsco: {public_key: keys/newsco.pub, abilities: [contribute, receive_results]}\n";
const std::string kSqlBlock(kExample.substr(kExample.find("    sql: |")));
const std::string kNewsco =
    "  newsco: {public_key: keys/newsco.pub, abilities: [contribute, receive_results]}";
const std::string kDay = "day:    {type: date, role: dimension}";
const std::string kCost = "cost:     {type: double, role: metric, bounds: [0, 5]}";
const std::string kImpRuleEnd = "receivers: [acme, newsco]";

std::string PurchasesRule(const std::string& body) { return "rule: {" + body + "}"; }

const Case kCases[] = {
    // top level
    {"UnknownTopLevelKey", "region: eu", "regoin: eu", kInvalid, "regoin: unknown key"},
    {"DuplicateTopLevelKey", "region: eu", "region: eu\nregion: us", kInvalid,
     "region: duplicate key"},
    {"MissingCollaboration", "collaboration: acme-newsco-2026q4", "# none", kInvalid,
     "collaboration: required"},
    {"CollaborationTooShort", "collaboration: acme-newsco-2026q4", "collaboration: ab", kInvalid,
     "collaboration"},
    {"CollaborationUppercase", "collaboration: acme-newsco-2026q4", "collaboration: Acme-2026",
     kInvalid, "collaboration"},
    {"CollaborationTooLong", "collaboration: acme-newsco-2026q4",
     "collaboration: " + std::string(65, 'a'), kInvalid, "collaboration"},
    {"CollaborationNotString", "collaboration: acme-newsco-2026q4", "collaboration: [a, b]",
     kInvalid, "collaboration"},
    {"DescriptionNotString", "description: Campaign measurement, Q4", "description: {a: 1}",
     kInvalid, "description"},
    {"RegionInvalid", "region: eu", "region: EU_west", kInvalid, "region"},
    {"RetentionZero", "retention_days: 90", "retention_days: 0", kInvalid, "retention_days"},
    {"RetentionFraction", "retention_days: 90", "retention_days: 1.5", kInvalid, "retention_days"},
    {"RetentionQuoted", "retention_days: 90", "retention_days: \"90\"", kInvalid, "retention_days"},
    {"PartiesNotMapping", kPartiesBlock, "parties: [acme, newsco]\n", kInvalid,
     "parties: expected a mapping"},
    // parties
    {"PartyUnknownKey", "receive_results]}\nprivacy", "receive_results], colour: red}\nprivacy",
     kInvalid, "parties.newsco.colour"},
    {"PartyNameInvalid", kNewsco, "  News_Co: {public_key: keys/newsco.pub}", kInvalid,
     "parties.News_Co"},
    {"PartyNameStartsWithDash", kNewsco, "  -newsco: {public_key: keys/newsco.pub}", kInvalid,
     "parties.-newsco"},
    {"DuplicateParty", "  newsco: {public_key: keys/newsco.pub",
     "  acme: {public_key: keys/newsco.pub", kInvalid, "parties.acme: duplicate key"},
    {"PartyWithoutPublicKey", "{public_key: keys/newsco.pub, ", "{", kInvalid,
     "parties.newsco.public_key"},
    {"PublicKeyNotString", "keys/newsco.pub", "[keys/newsco.pub]", kInvalid,
     "parties.newsco.public_key"},
    {"UnknownAbility", "[contribute, receive_results]}", "[contribute, admin]}", kInvalid,
     "parties.newsco.abilities"},
    {"DuplicateAbility", "[contribute, receive_results]}", "[contribute, contribute]}", kInvalid,
     "parties.newsco.abilities"},
    {"AbilitiesNotList", "abilities: [contribute, receive_results]", "abilities: contribute",
     kInvalid, "parties.newsco.abilities"},
    // privacy
    {"PrivacyUnknownKey", "  unit: person", "  k: 5\n  unit: person", kInvalid, "privacy.k"},
    {"PrivacyUnitInvalid", "unit: person", "unit: Natural Person", kInvalid, "privacy.unit"},
    {"MinDistinctUnitsBelowTwo", "min_distinct_units: 50", "min_distinct_units: 1", kInvalid,
     "privacy.min_distinct_units"},
    {"MinDistinctUnitsNotInteger", "min_distinct_units: 50", "min_distinct_units: many", kInvalid,
     "privacy.min_distinct_units"},
    {"DpUnknownKey", "    delta: 1.0e-6", "    sigma: 2\n    delta: 1.0e-6", kInvalid,
     "privacy.dp.sigma"},
    {"DpNotMapping", std::string(kDpBlock), "  dp: 10\n", kInvalid,
     "privacy.dp: expected a mapping"},
    {"EpsilonMissing", "    epsilon: 10                        # total budget per refresh period\n",
     "", kInvalid, "privacy.dp.epsilon"},
    {"EpsilonZero", "epsilon: 10", "epsilon: 0", kInvalid, "privacy.dp.epsilon"},
    {"EpsilonNegative", "epsilon: 10", "epsilon: -1", kInvalid, "privacy.dp.epsilon"},
    {"EpsilonInfinite", "epsilon: 10", "epsilon: .inf", kInvalid, "privacy.dp.epsilon"},
    {"EpsilonNotNumber", "epsilon: 10", "epsilon: ten", kInvalid, "privacy.dp.epsilon"},
    {"DeltaOne", "delta: 1.0e-6", "delta: 1", kInvalid, "privacy.dp.delta"},
    {"DeltaNegative", "delta: 1.0e-6", "delta: -1.0e-6", kInvalid, "privacy.dp.delta"},
    {"MaxGroupsZero", "max_groups_per_unit: 4", "max_groups_per_unit: 0", kInvalid,
     "privacy.dp.max_groups_per_unit"},
    {"RefreshUnknown", "refresh: monthly", "refresh: hourly", kInvalid, "privacy.dp.refresh"},
    // datasets
    {"DatasetUnknownKey", "    owner: acme\n", "    owner: acme\n    format: csv\n", kInvalid,
     "datasets.purchases.format"},
    {"DatasetNameInvalid", "  purchases:\n", "  Purchases:\n", kInvalid, "datasets.Purchases"},
    {"DuplicateDataset", "  purchases:\n", "  impressions:\n", kInvalid,
     "datasets.impressions: duplicate key"},
    {"DatasetNotMapping", "datasets:\n  impressions:\n",
     "datasets:\n  clicks: [a]\n  impressions:\n", kInvalid, "datasets.clicks"},
    {"MissingOwner", "    owner: acme\n", "", kInvalid, "datasets.purchases.owner"},
    {"OwnerUnknown", "owner: acme", "owner: globex", kInvalid, "datasets.purchases.owner"},
    {"OwnerCannotContribute", "[contribute, receive_results]}", "[receive_results]}", kInvalid,
     "datasets.impressions.owner"},
    {"MissingPrivacyUnitColumn", "    privacy_unit_column: email\n    columns:\n      email:  {",
     "    columns:\n      email:  {", kInvalid, "datasets.purchases.privacy_unit_column"},
    {"PrivacyUnitColumnUnknown", "privacy_unit_column: email\n    columns:\n      email:  {",
     "privacy_unit_column: mail\n    columns:\n      email:  {", kInvalid,
     "datasets.purchases.privacy_unit_column"},
    {"PrivacyUnitColumnNotJoinKey", "privacy_unit_column: email\n    columns:\n      email:  {",
     "privacy_unit_column: day\n    columns:\n      email:  {", kInvalid,
     "datasets.purchases.privacy_unit_column"},
    {"MissingColumns",
     "    columns:\n      email:  {type: string, role: join_key, normalize: email}\n      amount: "
     "{type: double, role: metric, bounds: [0, 500]}\n      day:    {type: date, role: "
     "dimension}\n",
     "", kInvalid, "datasets.purchases.columns"},
    {"EmptyColumns",
     "    columns:\n      email:  {type: string, role: join_key, normalize: email}\n      amount: "
     "{type: double, role: metric, bounds: [0, 500]}\n      day:    {type: date, role: "
     "dimension}\n",
     "    columns: {}\n", kInvalid, "datasets.purchases.columns"},
    {"MissingRule", "    " + std::string(kPurchasesRule) + "\n", "", kInvalid,
     "datasets.purchases.rule"},
    // columns
    {"ColumnUnknownKey", kDay, "day:    {type: date, role: dimension, pii: true}", kInvalid,
     "datasets.purchases.columns.day.pii"},
    {"ColumnNameInvalid", kDay, "Day:    {type: date, role: dimension}", kInvalid,
     "datasets.purchases.columns.Day"},
    {"DuplicateColumn", kDay, "amount: {type: date, role: dimension}", kInvalid,
     "datasets.purchases.columns.amount: duplicate key"},
    {"ColumnNotMapping", kDay, "day: date", kInvalid, "datasets.purchases.columns.day"},
    {"MissingType", kDay, "day:    {role: dimension}", kInvalid,
     "datasets.purchases.columns.day.type"},
    {"MissingRole", kDay, "day:    {type: date}", kInvalid, "datasets.purchases.columns.day.role"},
    {"UnknownType", kDay, "day:    {type: datetime, role: dimension}", kInvalid,
     "datasets.purchases.columns.day.type"},
    {"UnknownRole", kDay, "day:    {type: date, role: label}", kInvalid,
     "datasets.purchases.columns.day.role"},
    {"UnknownNormalizer", "normalize: email}\n      amount", "normalize: lower}\n      amount",
     kInvalid, "datasets.purchases.columns.email.normalize"},
    {"NormalizeOnNonString", kDay, "day:    {type: date, role: dimension, normalize: text}",
     kInvalid, "datasets.purchases.columns.day.normalize"},
    {"JoinKeyNotString", "email:  {type: string, role: join_key, normalize: email}",
     "email:  {type: integer, role: join_key}", kInvalid, "datasets.purchases.columns.email.type"},
    {"BoundsReversed", "bounds: [0, 5]", "bounds: [5, 0]", kInvalid,
     "datasets.impressions.columns.cost.bounds"},
    {"BoundsNotAPair", "bounds: [0, 5]", "bounds: [0, 5, 6]", kInvalid,
     "datasets.impressions.columns.cost.bounds"},
    {"BoundsNotNumbers", "bounds: [0, 5]", "bounds: [zero, 5]", kInvalid,
     "datasets.impressions.columns.cost.bounds"},
    {"BoundsOnString", "campaign: {type: string, role: dimension}",
     "campaign: {type: string, role: metric, bounds: [0, 1]}", kInvalid,
     "datasets.impressions.columns.campaign.bounds"},
    {"BoundsOnDimension", "shown_at: {type: timestamp, role: dimension}",
     "shown_at: {type: integer, role: dimension, bounds: [0, 1]}", kInvalid,
     "datasets.impressions.columns.shown_at.bounds"},
    {"BoundsMissingOnMetric", kCost, "cost:     {type: double, role: metric}", kInvalid,
     "datasets.impressions.columns.cost.bounds"},
    {"BoundsMissingOnSensitive", kCost, "cost:     {type: integer, role: sensitive}", kInvalid,
     "datasets.impressions.columns.cost.bounds"},
    {"IntegerBoundsFractional", kCost, "cost:     {type: integer, role: metric, bounds: [0, 2.5]}",
     kInvalid, "datasets.impressions.columns.cost.bounds"},
    // rules: common keys
    {"RuleUnknownKey", kImpRuleEnd, kImpRuleEnd + "\n      limit: 10", kInvalid,
     "datasets.impressions.rule.limit"},
    {"RuleMissingKind", std::string(kPurchasesRule),
     PurchasesRule("aggregates: {amount: [sum]}, receivers: [acme]"), kInvalid,
     "datasets.purchases.rule.kind"},
    {"RuleUnknownKind", std::string(kPurchasesRule),
     PurchasesRule("kind: sum, aggregates: {amount: [sum]}, receivers: [acme]"), kInvalid,
     "datasets.purchases.rule.kind"},
    {"RuleMissingReceivers", std::string(kPurchasesRule),
     PurchasesRule("kind: aggregation, aggregates: {amount: [sum]}"), kInvalid,
     "datasets.purchases.rule.receivers"},
    {"ReceiversEmpty", std::string(kPurchasesRule),
     PurchasesRule("kind: aggregation, aggregates: {amount: [sum]}, receivers: []"), kInvalid,
     "datasets.purchases.rule.receivers"},
    {"ReceiverUnknown", std::string(kPurchasesRule),
     PurchasesRule("kind: aggregation, aggregates: {amount: [sum]}, receivers: [globex]"), kInvalid,
     "datasets.purchases.rule.receivers"},
    {"ReceiverCannotReceive", "[contribute, query, receive_results]", "[contribute, query]",
     kInvalid, "datasets.impressions.rule.receivers"},
    {"DuplicateReceiver", kImpRuleEnd, "receivers: [acme, acme]", kInvalid,
     "datasets.impressions.rule.receivers"},
    // aggregation
    {"AggregatesMissing", std::string(kPurchasesRule),
     PurchasesRule("kind: aggregation, receivers: [acme]"), kInvalid,
     "datasets.purchases.rule.aggregates"},
    {"AggregatesEmpty", std::string(kPurchasesRule),
     PurchasesRule("kind: aggregation, aggregates: {}, receivers: [acme]"), kInvalid,
     "datasets.purchases.rule.aggregates"},
    {"AggregateUnknownColumn", "{amount: [sum, avg, count]}", "{price: [sum]}", kInvalid,
     "datasets.purchases.rule.aggregates.price"},
    {"AggregateUnknownFunction", "{amount: [sum, avg, count]}", "{amount: [sum, variance]}",
     kInvalid, "datasets.purchases.rule.aggregates.amount"},
    {"AggregateDuplicateFunction", "{amount: [sum, avg, count]}", "{amount: [sum, sum]}", kInvalid,
     "datasets.purchases.rule.aggregates.amount"},
    {"AggregateFunctionsEmpty", "{amount: [sum, avg, count]}", "{amount: []}", kInvalid,
     "datasets.purchases.rule.aggregates.amount"},
    {"SumOnJoinKey", "email: [count_distinct]", "email: [count_distinct, sum]", kInvalid,
     "datasets.impressions.rule.aggregates.email"},
    {"AvgOnDimension", "{amount: [sum, avg, count]}", "{amount: [sum], day: [count, avg]}",
     kInvalid, "datasets.purchases.rule.aggregates.day"},
    {"MedianOnStringSensitive",
     kDay,
     "day:    {type: string, role: sensitive}",
     kInvalid,
     "datasets.purchases.rule.aggregates.day",
     {{"{amount: [sum, avg, count]}", "{amount: [sum], day: [count, median]}"}}},
    {"RuleMinDistinctUnitsBelowTwo", "min_distinct_units: 100", "min_distinct_units: 1", kInvalid,
     "datasets.impressions.rule.min_distinct_units"},
    {"JoinOperatorUnknown", kImpRuleEnd, kImpRuleEnd + "\n      join_operators: [and, xor]",
     kInvalid, "datasets.impressions.rule.join_operators"},
    {"JoinOperatorsWithoutAnd", kImpRuleEnd, kImpRuleEnd + "\n      join_operators: [or]", kInvalid,
     "datasets.impressions.rule.join_operators"},
    {"PublicValuesUnknownColumn", "public_values: {campaign:", "public_values: {country:", kInvalid,
     "datasets.impressions.rule.public_values.country"},
    {"PublicValuesOnMetric", "public_values: {campaign:", "public_values: {cost:", kInvalid,
     "datasets.impressions.rule.public_values.cost"},
    {"PublicValuesNotList", "{campaign: [spring, summer, autumn]}", "{campaign: spring}", kInvalid,
     "datasets.impressions.rule.public_values.campaign"},
    {"PublicValuesNotScalars", "{campaign: [spring, summer, autumn]}",
     "{campaign: [spring, [a, b]]}", kInvalid, "datasets.impressions.rule.public_values.campaign"},
    {"PublicValuesDuplicate", "{campaign: [spring, summer, autumn]}",
     "{campaign: [spring, spring]}", kInvalid, "datasets.impressions.rule.public_values.campaign"},
    {"RequireDpNotBool", kImpRuleEnd, kImpRuleEnd + "\n      require_dp: yes", kInvalid,
     "datasets.impressions.rule.require_dp"},
    {"ListColumnsOnAggregation", kImpRuleEnd, kImpRuleEnd + "\n      list_columns: [campaign]",
     kInvalid, "datasets.impressions.rule.list_columns"},
    {"TemplatesOnAggregation", kImpRuleEnd,
     kImpRuleEnd + "\n      templates: [conversions_by_campaign]", kInvalid,
     "datasets.impressions.rule.templates"},
    // list
    {"AggregatesOnList", std::string(kPurchasesRule),
     PurchasesRule(
         "kind: list, list_columns: [day], aggregates: {amount: [sum]}, receivers: [acme]"),
     kInvalid, "datasets.purchases.rule.aggregates"},
    {"MinDistinctUnitsOnList", std::string(kPurchasesRule),
     PurchasesRule("kind: list, list_columns: [day], min_distinct_units: 5, receivers: [acme]"),
     kInvalid, "datasets.purchases.rule.min_distinct_units"},
    {"ListColumnsMissing", std::string(kPurchasesRule),
     PurchasesRule("kind: list, receivers: [acme]"), kInvalid,
     "datasets.purchases.rule.list_columns"},
    {"ListColumnsEmpty", std::string(kPurchasesRule),
     PurchasesRule("kind: list, list_columns: [], receivers: [acme]"), kInvalid,
     "datasets.purchases.rule.list_columns"},
    {"ListColumnUnknown", std::string(kPurchasesRule),
     PurchasesRule("kind: list, list_columns: [week], receivers: [acme]"), kInvalid,
     "datasets.purchases.rule.list_columns"},
    {"ListColumnNotDimension", std::string(kPurchasesRule),
     PurchasesRule("kind: list, list_columns: [day, email], receivers: [acme]"), kInvalid,
     "datasets.purchases.rule.list_columns"},
    // custom
    {"CustomTemplatesMissing", std::string(kPurchasesRule),
     PurchasesRule("kind: custom, receivers: [acme]"), kInvalid,
     "datasets.purchases.rule.templates"},
    {"CustomTemplatesEmpty", std::string(kPurchasesRule),
     PurchasesRule("kind: custom, templates: [], receivers: [acme]"), kInvalid,
     "datasets.purchases.rule.templates"},
    {"CustomTemplateUnknown", std::string(kPurchasesRule),
     PurchasesRule("kind: custom, templates: [churn], receivers: [acme]"), kInvalid,
     "datasets.purchases.rule.templates"},
    {"ListColumnsOnCustom", std::string(kPurchasesRule),
     PurchasesRule("kind: custom, templates: [conversions_by_campaign], list_columns: [day], "
                   "receivers: [acme]"),
     kInvalid, "datasets.purchases.rule.list_columns"},
    // templates
    {"TemplateUnknownKey", "    parameters: {since: date}\n",
     "    parameters: {since: date}\n    owner: acme\n", kInvalid,
     "templates.conversions_by_campaign.owner"},
    {"TemplateNameInvalid", "  conversions_by_campaign:\n", "  Conversions:\n", kInvalid,
     "templates.Conversions"},
    {"DuplicateTemplate", "templates:\n",
     "templates:\n  conversions_by_campaign: {sql: SELECT 1}\n", kInvalid,
     "templates.conversions_by_campaign: duplicate key"},
    {"TemplateParameterUnknownType", "{since: date}", "{since: day}", kInvalid,
     "templates.conversions_by_campaign.parameters.since"},
    {"TemplateParameterNameInvalid", "{since: date}", "{since: date, Until: date}", kInvalid,
     "templates.conversions_by_campaign.parameters.Until"},
    {"TemplateDuplicateParameter", "{since: date}", "{since: date, since: integer}", kInvalid,
     "templates.conversions_by_campaign.parameters.since: duplicate key"},
    {"TemplateUndeclaredParameter", "{since: date}", "{}", kInvalid,
     "templates.conversions_by_campaign.sql"},
    {"TemplateUnusedParameter", "{since: date}", "{since: date, until: date}", kInvalid,
     "templates.conversions_by_campaign.parameters.until"},
    {"TemplatePositionalParameter", "$since", "$since + $1", kInvalid,
     "templates.conversions_by_campaign.sql"},
    {"TemplateSqlNotString",
     kSqlBlock,
     "    sql: [a]\n",
     kInvalid,
     "templates.conversions_by_campaign.sql",
     {{"{since: date}", "{}"}}},
};

INSTANTIATE_TEST_SUITE_P(Validation, SpecRuleTest, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return std::string(info.param.name);
                         });

// ----- Keys of differential privacy -------------------------------------------------

// Each key that only DP gives meaning to parses with privacy.dp, and without it
// is refused naming the key and its line: a reader of the spec must not
// believe in a constraint that nothing enforces.
struct DpKeyCase {
  const char* name;
  Edits edits;        // applied to the example without DP keys
  const char* error;  // "" when it parses; else the SPEC_INVALID fragment
};

std::ostream& operator<<(std::ostream& os, const DpKeyCase& c) { return os << c.name; }

class DpKeyTest : public SpecTest, public ::testing::WithParamInterface<DpKeyCase> {};

TEST_P(DpKeyTest, ParsesWithPrivacyDpOnly) {
  const DpKeyCase& c = GetParam();
  auto r = ParseEdited(c.edits);
  if (std::string(c.error).empty()) {
    EXPECT_TRUE(r) << r.error().ToString();
    return;
  }
  ExpectError(r, ErrorCode::SPEC_INVALID, c.error);
  EXPECT_NE(r.error().message.find("(line "), std::string::npos) << r.error().message;
}

const std::string kThresholdLine =
    "  min_distinct_units: 50               # default aggregation threshold (k)\n";

const DpKeyCase kDpKeyCases[] = {
    {"PrivacyDp", {{kThresholdLine, kThresholdLine + std::string(kDpBlock)}}, ""},
    {"PrivacyDpEpsilonOnly", {{kThresholdLine, kThresholdLine + "  dp: {epsilon: 0.5}\n"}}, ""},
    {"PrivacyDpRefreshNone",
     {{kThresholdLine, kThresholdLine + "  dp: {epsilon: 1, refresh: none, delta: 0}\n"}}, ""},
    {"PublicValuesWithoutDp",
     {{"      min_distinct_units: 100", std::string(kPublicValuesLine) + "      min_distinct_units: 100"}},
     "datasets.impressions.rule.public_values: requires privacy.dp"},
    {"PublicValuesFlowStyleWithoutDp",
     {{std::string(kPurchasesRule),
       "rule: {kind: aggregation, aggregates: {amount: [sum]}, public_values: {day: [2026-01-01]}, "
       "receivers: [acme]}"}},
     "datasets.purchases.rule.public_values: requires privacy.dp"},
    {"RequireDpTrue",
     {{kThresholdLine, kThresholdLine + std::string(kDpBlock)},
      {"receivers: [acme, newsco]", "receivers: [acme, newsco]\n      require_dp: true"}},
     ""},
    // Even `false` is refused without DP: the key has no meaning there, and a
    // reader of the spec should not have to know which value is harmless.
    {"RequireDpFalseWithoutDp",
     {{"receivers: [acme, newsco]", "receivers: [acme, newsco]\n      require_dp: false"}},
     "datasets.impressions.rule.require_dp: requires privacy.dp"},
    {"AllThree",
     {{kThresholdLine, kThresholdLine + "  dp: {epsilon: 2}\n"},
      {"      min_distinct_units: 100", std::string(kPublicValuesLine) + "      min_distinct_units: 100"},
      {"receivers: [acme, newsco]", "receivers: [acme, newsco]\n      require_dp: true"}},
     ""},
    {"PublicValuesOfAMetric",
     {{kThresholdLine, kThresholdLine + "  dp: {epsilon: 2}\n"},
      {"      min_distinct_units: 100",
       "      public_values: {cost: [1]}\n      min_distinct_units: 100"}},
     "datasets.impressions.rule.public_values.cost: only dimension columns"},
    {"PublicValuesOfNoColumn",
     {{kThresholdLine, kThresholdLine + "  dp: {epsilon: 2}\n"},
      {"      min_distinct_units: 100",
       "      public_values: {colour: [red]}\n      min_distinct_units: 100"}},
     "datasets.impressions.rule.public_values.colour: no such column"},
};

INSTANTIATE_TEST_SUITE_P(Dp, DpKeyTest, ::testing::ValuesIn(kDpKeyCases),
                         [](const ::testing::TestParamInfo<DpKeyCase>& info) {
                           return std::string(info.param.name);
                         });

TEST_F(SpecTest, DpKeysParseInJsonSpecsToo) {
  std::string json = R"({
    "collaboration": "bench-2026",
    "parties": {"acme": {"public_key": ")" +
                     acme_->pub().ToText() +
                     R"(", "abilities": ["contribute", "query", "receive_results"]}},
    "privacy": {"dp": {"epsilon": 1}},
    "datasets": {"budgets": {
      "owner": "acme", "privacy_unit_column": "org",
      "columns": {"org": {"type": "string", "role": "join_key"},
                  "spend": {"type": "integer", "role": "sensitive", "bounds": [0, 1000000]}},
      "rule": {"kind": "aggregation", "aggregates": {"spend": ["avg"]}, "receivers": ["acme"]}}}
  })";
  auto r = ParseText(json);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->privacy.dp->epsilon, 1);
  EXPECT_EQ(r->privacy.dp->delta, 0);
}

// ----- Pooled datasets (contributors) ------------------------------------------------

// purchases pooled by both parties, with `rule_keys` in its rule.
std::string Pooled(const std::string& rule_keys) {
  return Edited(kBase, {{"    owner: acme\n", "    contributors: [acme, newsco]\n"},
                        {std::string(kPurchasesRule),
                         "rule: {kind: aggregation, aggregates: {amount: [sum, avg, count]}, " +
                             rule_keys + "receivers: [acme]}"}});
}

TEST_F(SpecTest, APooledDatasetListsContributorsAndItsCellRules) {
  auto r = ParseText(Pooled("min_contributors: 2, dominance: {n: 1, k: 0.6}, p_percent: 10, "));
  ASSERT_TRUE(r) << r.error().ToString();
  const Dataset* d = r->FindDataset("purchases");
  EXPECT_TRUE(d->pooled());
  EXPECT_EQ(d->owner, "");
  EXPECT_EQ(d->contributors, (std::vector<std::string>{"acme", "newsco"}));
  EXPECT_TRUE(d->Contributes("newsco"));
  EXPECT_EQ(d->ContributorIndex("newsco"), 1);
  EXPECT_EQ(d->MinContributors(), 2);
  EXPECT_EQ(d->rule.dominance->n, 1);
  EXPECT_DOUBLE_EQ(d->rule.dominance->k, 0.6);
  EXPECT_DOUBLE_EQ(*d->rule.p_percent, 10);
  EXPECT_FALSE(r->FindDataset("impressions")->pooled());
  EXPECT_EQ(r->FindDataset("impressions")->MinContributors(), 0);
}

TEST_F(SpecTest, EveryBadPoolFieldIsNamed) {
  const std::string rules = "min_contributors: 2, ";
  struct Case {
    std::string name, text, path;
  };
  const std::vector<Case> cases = {
      {"owner and contributors",
       Edited(Pooled(rules), {{"contributors: [acme, newsco]\n",
                               "contributors: [acme, newsco]\n    owner: acme\n"}}),
       "datasets.purchases.owner"},
      {"unknown contributor",
       Edited(Pooled(rules), {{"contributors: [acme, newsco]", "contributors: [acme, nobody]"}}),
       "datasets.purchases.contributors"},
      {"listed twice",
       Edited(Pooled(rules), {{"contributors: [acme, newsco]", "contributors: [acme, acme]"}}),
       "datasets.purchases.contributors"},
      {"default minimum above the contributors", Pooled(""), "datasets.purchases.rule"},
      {"min_contributors above the contributors", Pooled("min_contributors: 3, "),
       "datasets.purchases.rule.min_contributors"},
      {"min_contributors zero", Pooled("min_contributors: 0, "),
       "datasets.purchases.rule.min_contributors"},
      {"dominance n too large", Pooled(rules + "dominance: {n: 2, k: 0.5}, "),
       "datasets.purchases.rule.dominance.n"},
      {"dominance k of 1", Pooled(rules + "dominance: {n: 1, k: 1}, "),
       "datasets.purchases.rule.dominance.k"},
      {"dominance without k", Pooled(rules + "dominance: {n: 1}, "),
       "datasets.purchases.rule.dominance"},
      {"p_percent zero", Pooled(rules + "p_percent: 0, "), "datasets.purchases.rule.p_percent"},
      {"pool rule on an owned dataset",
       Edited(kBase, {{std::string(kPurchasesRule),
                       "rule: {kind: aggregation, aggregates: {amount: [sum]}, p_percent: 10, "
                       "receivers: [acme]}"}}),
       "datasets.purchases.rule.p_percent"},
      {"reserved column name",
       Edited(kBase, {{"      day:    {type: date, role: dimension}",
                       "      __cr_contributor: {type: integer, role: dimension}"}}),
       "datasets.purchases.columns.__cr_contributor"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    ExpectError(ParseText(c.text), ErrorCode::SPEC_INVALID, c.path);
  }
}

}  // namespace
}  // namespace cr::spec
