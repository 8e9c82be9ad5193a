#include "spec/spec.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <exception>
#include <functional>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <system_error>

#include "common/files.h"
#include "common/yaml.h"

namespace cr::spec {

bool IsRegion(std::string_view r) {
  return !r.empty() && std::all_of(r.begin(), r.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
         });
}

namespace {

using namespace std::string_view_literals;

// Both domain strings include their terminating NUL (the sv literal keeps it),
// so no spec encoding can be mistaken for a signature message or vice versa.
constexpr std::string_view kHashDomain = "cleanroom-spec-v1\0"sv;
constexpr std::string_view kSignatureDomain = "cleanroom-spec-signature-v1\0"sv;
constexpr std::string_view kPubPrefix = "crpub1:";

// ----- Enum spellings ----------------------------------------------------------------

template <typename E>
using Spelled = std::pair<E, std::string_view>;

constexpr Spelled<ColumnType> kColumnTypes[] = {
    {ColumnType::kString, "string"}, {ColumnType::kInteger, "integer"},
    {ColumnType::kDouble, "double"}, {ColumnType::kBoolean, "boolean"},
    {ColumnType::kDate, "date"},     {ColumnType::kTimestamp, "timestamp"}};
constexpr Spelled<Role> kRoles[] = {{Role::kJoinKey, "join_key"},
                                    {Role::kDimension, "dimension"},
                                    {Role::kMetric, "metric"},
                                    {Role::kSensitive, "sensitive"}};
// "none" is the absence of the key, never written in a spec.
constexpr Spelled<Normalize> kNormalizers[] = {
    {Normalize::kEmail, "email"}, {Normalize::kPhone, "phone"}, {Normalize::kText, "text"}};
constexpr Spelled<RuleKind> kRuleKinds[] = {{RuleKind::kAggregation, "aggregation"},
                                            {RuleKind::kList, "list"},
                                            {RuleKind::kCustom, "custom"}};
constexpr Spelled<AggFn> kAggFns[] = {
    {AggFn::kCount, "count"},   {AggFn::kCountDistinct, "count_distinct"},
    {AggFn::kSum, "sum"},       {AggFn::kAvg, "avg"},
    {AggFn::kStddev, "stddev"}, {AggFn::kMedian, "median"}};

constexpr std::array<std::string_view, 3> kAbilities = {"contribute", "query", "receive_results"};
constexpr std::array<std::string_view, 4> kRefresh = {"none", "daily", "weekly", "monthly"};
constexpr std::array<std::string_view, 2> kJoinOperators = {"and", "or"};

template <typename E, size_t N>
std::optional<E> Lookup(const Spelled<E> (&table)[N], std::string_view name) {
  for (const auto& [value, spelling] : table) {
    if (spelling == name) return value;
  }
  return std::nullopt;
}

template <typename E, size_t N>
std::string_view Spelling(const Spelled<E> (&table)[N], E value) {
  for (const auto& [v, spelling] : table) {
    if (v == value) return spelling;
  }
  return "?";
}

template <typename E, size_t N>
std::string Choices(const Spelled<E> (&table)[N]) {
  std::string out;
  for (const auto& entry : table) {
    if (!out.empty()) out += ", ";
    out += entry.second;
  }
  return out;
}

template <size_t N>
std::string Choices(const std::array<std::string_view, N>& values) {
  std::string out;
  for (auto v : values) {
    if (!out.empty()) out += ", ";
    out += v;
  }
  return out;
}

template <size_t N>
bool OneOf(const std::array<std::string_view, N>& values, std::string_view s) {
  return std::find(values.begin(), values.end(), s) != values.end();
}

// ----- Names -------------------------------------------------------------------------

bool IsLowerDigit(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// [a-z0-9-]{3,64}
bool IsCollaborationId(std::string_view s) {
  if (s.size() < 3 || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return IsLowerDigit(c) || c == '-'; });
}

// [a-z_][a-z0-9_]{0,62}, plus '-' after the first character when `dash`.
bool IsName(std::string_view s, bool dash = false) {
  if (s.empty() || s.size() > 63) return false;
  if (!((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_')) return false;
  return std::all_of(s.begin() + 1, s.end(),
                     [dash](char c) { return IsLowerDigit(c) || c == '_' || (dash && c == '-'); });
}

constexpr std::string_view kNamePattern = "[a-z_][a-z0-9_]{0,62}";
constexpr std::string_view kPartyNamePattern = "[a-z_][a-z0-9_-]{0,62}";

// ----- The strict reader (common/yaml.h), reporting SPEC_INVALID ----------------------

constexpr yaml::Reader kYaml(ErrorCode::SPEC_INVALID, "spec");

using yaml::Join;
using yaml::KindOf;
using yaml::LineOf;

template <typename... Args>
std::unexpected<Error> Invalid(std::string_view path, const YAML::Node& at,
                               fmt::format_string<Args...> f, Args&&... args) {
  return kYaml.Invalid(path, at, f, std::forward<Args>(args)...);
}

Result<std::string> GetString(const YAML::Node& n, std::string_view path) {
  return kYaml.GetString(n, path);
}
Result<int64_t> GetInt(const YAML::Node& n, std::string_view path) {
  return kYaml.GetInt(n, path);
}
Result<double> GetNumber(const YAML::Node& n, std::string_view path) {
  return kYaml.GetNumber(n, path);
}
Result<bool> GetBool(const YAML::Node& n, std::string_view path) { return kYaml.GetBool(n, path); }
Result<std::vector<std::string>> GetStringList(const YAML::Node& n, std::string_view path,
                                               bool allow_empty) {
  return kYaml.GetStringList(n, path, allow_empty);
}
template <typename E, size_t N>
Result<E> GetEnum(const YAML::Node& n, std::string_view path, const Spelled<E> (&table)[N],
                  std::string_view what) {
  return kYaml.GetEnum(n, path, table, what);
}

bool IsDate(std::string_view s) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (s[i] < '0' || s[i] > '9') return false;
  }
  return true;
}

class Map : public yaml::Map {
 public:
  static Result<Map> Read(const YAML::Node& node, std::string path,
                          std::initializer_list<std::string_view> allowed = {}) {
    CR_ASSIGN(yaml::Map m, kYaml.ReadMap(node, std::move(path), allowed));
    return Map(std::move(m));
  }

 private:
  explicit Map(yaml::Map m) : yaml::Map(std::move(m)) {}
};

// ----- Template SQL parameters -----------------------------------------------------------

// Every `$name` outside string literals, quoted identifiers and comments, in order
// of appearance. `bad` receives a `$` that is not followed by a name.
std::vector<std::string> SqlParameters(std::string_view sql, bool* bad) {
  std::vector<std::string> out;
  *bad = false;
  auto is_ident = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  };
  size_t i = 0;
  while (i < sql.size()) {
    char c = sql[i];
    if (c == '\'' || c == '"') {
      // '' (or "") inside a literal is an escaped quote: skipping pairs handles it.
      size_t end = sql.find(c, i + 1);
      i = end == std::string_view::npos ? sql.size() : end + 1;
    } else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
      size_t end = sql.find('\n', i);
      i = end == std::string_view::npos ? sql.size() : end + 1;
    } else if (c == '/' && i + 1 < sql.size() && sql[i + 1] == '*') {
      size_t end = sql.find("*/", i + 2);
      i = end == std::string_view::npos ? sql.size() : end + 2;
    } else if (c == '$') {
      size_t j = i + 1;
      while (j < sql.size() && is_ident(sql[j])) ++j;
      std::string_view name = sql.substr(i + 1, j - i - 1);
      if (name.empty() || (name[0] >= '0' && name[0] <= '9')) {
        *bad = true;
      } else {
        out.emplace_back(name);
      }
      i = j;
    } else {
      ++i;
    }
  }
  return out;
}

// ----- The parser ------------------------------------------------------------------------

class Parser {
 public:
  // Returns the exact bytes of the key file a party's public_key names, or an
  // error (FILE_UNREADABLE) that the parser reports against that party.
  using KeyFileReader = std::function<Result<std::string>(const std::string& source)>;

  Parser(std::string_view bytes, KeyFileReader read_key_file)
      : read_key_file_(std::move(read_key_file)) {
    spec_.bytes = std::string(bytes);
  }

  Result<Spec> Run() {
    CR_ASSIGN(YAML::Node root, kYaml.LoadOne(spec_.bytes));
    try {
      CR_TRY(ParseTop(root));
    } catch (const YAML::Exception& e) {
      return kYaml.FromException(e);
    }
    spec_.hash = Hash();
    return std::move(spec_);
  }

 private:
  Status ParseTop(const YAML::Node& root) {
    CR_ASSIGN(Map top, Map::Read(root, "",
                                 {"collaboration", "description", "region", "retention_days",
                                  "parties", "privacy", "datasets", "templates"}));
    CR_ASSIGN(YAML::Node collaboration, top.Require("collaboration"));
    CR_ASSIGN(spec_.collaboration, GetString(collaboration, "collaboration"));
    if (!IsCollaborationId(spec_.collaboration)) {
      return Invalid("collaboration", collaboration, "invalid id (expected [a-z0-9-]{{3,64}})");
    }
    if (auto n = top.Get("description")) {
      CR_ASSIGN(spec_.description, GetString(*n, "description"));
    }
    if (auto n = top.Get("region")) {
      CR_ASSIGN(spec_.region, GetString(*n, "region"));
      if (!IsRegion(spec_.region)) return Invalid("region", *n, "invalid region (expected [a-z0-9-]+)");
    }
    if (auto n = top.Get("retention_days")) {
      CR_ASSIGN(spec_.retention_days, GetInt(*n, "retention_days"));
      if (spec_.retention_days < 1) return Invalid("retention_days", *n, "must be at least 1");
    }
    CR_ASSIGN(YAML::Node parties, top.Require("parties"));
    CR_TRY(ParseParties(parties));
    if (auto n = top.Get("privacy")) CR_TRY(ParsePrivacy(*n));
    if (auto n = top.Get("templates")) CR_TRY(ParseTemplates(*n));
    CR_ASSIGN(YAML::Node datasets, top.Require("datasets"));
    CR_TRY(ParseDatasets(datasets));
    return Ok();
  }

  // ----- parties -----

  Status ParseParties(const YAML::Node& node) {
    CR_ASSIGN(Map parties, Map::Read(node, "parties"));
    if (parties.empty()) return Invalid("parties", node, "at least one party is required");
    for (const auto& e : parties.entries()) {
      std::string path = parties.Path(e.key);
      if (!IsName(e.key, /*dash=*/true)) {
        return Invalid(path, e.key_node, "invalid party name (expected {})", kPartyNamePattern);
      }
      CR_ASSIGN(Party party, ParseParty(e.key, e.value, path));
      for (const Party& other : spec_.parties) {
        if (other.key.sign_pk == party.key.sign_pk || other.key.box_pk == party.key.box_pk) {
          return Invalid(Join(path, "public_key"), e.value, "same key as party {}", other.name);
        }
      }
      spec_.parties.push_back(std::move(party));
    }
    return Ok();
  }

  Result<Party> ParseParty(const std::string& name, const YAML::Node& node,
                           const std::string& path) {
    CR_ASSIGN(Map m, Map::Read(node, path, {"public_key", "abilities", "region"}));
    Party party;
    party.name = name;
    std::string key_path = m.Path("public_key");
    CR_ASSIGN(YAML::Node key_node, m.Require("public_key"));
    CR_ASSIGN(party.public_key_source, GetString(key_node, key_path));
    std::string_view source = party.public_key_source;
    while (!source.empty() && std::isspace(static_cast<unsigned char>(source.front()))) {
      source.remove_prefix(1);
    }
    // A secret key pasted inline is refused by FromText without echoing it;
    // taken for a path, its text would appear in the unreadable-file error.
    if (source.starts_with(kPubPrefix) || source.starts_with("crkey1:")) {
      auto key = crypto::PublicIdentity::FromText(source);
      if (!key) {
        return Fail(ErrorCode::KEY_INVALID, "{}: public key of party {}: {} (line {})", key_path,
                    name, key.error().message, LineOf(key_node));
      }
      party.key = *key;
    } else {
      if (party.public_key_source.empty()) {
        return Invalid(key_path, key_node, "expected a public key or the path of a .pub file");
      }
      const std::string& file = party.public_key_source;
      auto bytes = read_key_file_(file);
      if (!bytes) {
        return Fail(ErrorCode::FILE_UNREADABLE, "{}: key file of party {}: {} (line {})", key_path,
                    name, bytes.error().message, LineOf(key_node));
      }
      auto key = crypto::PublicIdentity::FromText(*bytes);
      if (!key) {
        return Fail(ErrorCode::KEY_INVALID, "{}: key file {} of party {}: {} (line {})", key_path,
                    file, name, key.error().message, LineOf(key_node));
      }
      party.key = *key;
      party.key_bytes = std::move(*bytes);
    }
    if (auto n = m.Get("abilities")) {
      std::string apath = m.Path("abilities");
      CR_ASSIGN(party.abilities, GetStringList(*n, apath, /*allow_empty=*/true));
      for (const auto& a : party.abilities) {
        if (!OneOf(kAbilities, a)) {
          return Invalid(apath, *n, "unknown ability '{}' (expected one of: {})", a,
                         Choices(kAbilities));
        }
      }
    }
    if (auto n = m.Get("region")) {
      CR_ASSIGN(party.region, GetString(*n, m.Path("region")));
      if (!IsRegion(party.region)) {
        return Invalid(m.Path("region"), *n, "invalid region (expected [a-z0-9-]+)");
      }
    }
    return party;
  }

  // ----- privacy -----

  Status ParsePrivacy(const YAML::Node& node) {
    CR_ASSIGN(Map m, Map::Read(node, "privacy",
                               {"unit", "min_distinct_units", "dp", "difference_checks"}));
    Privacy& p = spec_.privacy;
    if (auto n = m.Get("unit")) {
      CR_ASSIGN(p.unit, GetString(*n, "privacy.unit"));
      if (!IsName(p.unit))
        return Invalid("privacy.unit", *n, "invalid unit (expected {})", kNamePattern);
    }
    if (auto n = m.Get("min_distinct_units")) {
      CR_ASSIGN(p.min_distinct_units, GetInt(*n, "privacy.min_distinct_units"));
      if (p.min_distinct_units < 2) {
        return Invalid("privacy.min_distinct_units", *n, "must be at least 2");
      }
    }
    if (auto n = m.Get("difference_checks")) {
      CR_ASSIGN(p.difference_checks, GetBool(*n, "privacy.difference_checks"));
    }
    if (auto n = m.Get("dp")) {
      CR_ASSIGN(Map d, Map::Read(*n, "privacy.dp",
                                 {"epsilon", "delta", "max_groups_per_unit",
                                  "max_contributions_per_group", "query_epsilon",
                                  "max_query_epsilon", "refresh"}));
      Dp dp;
      CR_ASSIGN(YAML::Node eps, d.Require("epsilon"));
      CR_ASSIGN(dp.epsilon, GetNumber(eps, "privacy.dp.epsilon"));
      if (!(dp.epsilon > 0) || !std::isfinite(dp.epsilon)) {
        return Invalid("privacy.dp.epsilon", eps, "must be a finite number greater than 0");
      }
      if (auto v = d.Get("delta")) {
        CR_ASSIGN(dp.delta, GetNumber(*v, "privacy.dp.delta"));
        if (!(dp.delta >= 0 && dp.delta < 1)) {
          return Invalid("privacy.dp.delta", *v, "must be at least 0 and less than 1");
        }
      }
      if (auto v = d.Get("max_groups_per_unit")) {
        CR_ASSIGN(dp.max_groups_per_unit, GetInt(*v, "privacy.dp.max_groups_per_unit"));
        if (dp.max_groups_per_unit < 1) {
          return Invalid("privacy.dp.max_groups_per_unit", *v, "must be at least 1");
        }
      }
      if (auto v = d.Get("max_contributions_per_group")) {
        CR_ASSIGN(dp.max_contributions_per_group,
                  GetInt(*v, "privacy.dp.max_contributions_per_group"));
        if (dp.max_contributions_per_group < 1 || dp.max_contributions_per_group > 1000000) {
          return Invalid("privacy.dp.max_contributions_per_group", *v,
                         "must be at least 1 and at most 1000000");
        }
      }
      dp.max_query_epsilon = dp.epsilon;
      if (auto v = d.Get("max_query_epsilon")) {
        CR_ASSIGN(dp.max_query_epsilon, GetNumber(*v, "privacy.dp.max_query_epsilon"));
        if (!(dp.max_query_epsilon > 0 && dp.max_query_epsilon <= dp.epsilon)) {
          return Invalid("privacy.dp.max_query_epsilon", *v,
                         "must be greater than 0 and at most privacy.dp.epsilon");
        }
      }
      // A default that lets ten queries run per period unless the parties chose.
      dp.query_epsilon = std::min(dp.epsilon / 10, dp.max_query_epsilon);
      if (auto v = d.Get("query_epsilon")) {
        CR_ASSIGN(dp.query_epsilon, GetNumber(*v, "privacy.dp.query_epsilon"));
        if (!(dp.query_epsilon > 0 && dp.query_epsilon <= dp.max_query_epsilon)) {
          return Invalid("privacy.dp.query_epsilon", *v,
                         "must be greater than 0 and at most privacy.dp.max_query_epsilon "
                         "(default: privacy.dp.epsilon)");
        }
      }
      if (auto v = d.Get("refresh")) {
        CR_ASSIGN(dp.refresh, GetString(*v, "privacy.dp.refresh"));
        if (!OneOf(kRefresh, dp.refresh)) {
          return Invalid("privacy.dp.refresh", *v, "unknown period '{}' (expected one of: {})",
                         dp.refresh, Choices(kRefresh));
        }
      }
      p.dp = dp;
    }
    return Ok();
  }

  // ----- templates -----

  Status ParseTemplates(const YAML::Node& node) {
    CR_ASSIGN(Map templates, Map::Read(node, "templates"));
    for (const auto& e : templates.entries()) {
      std::string path = templates.Path(e.key);
      if (!IsName(e.key)) {
        return Invalid(path, e.key_node, "invalid template name (expected {})", kNamePattern);
      }
      CR_ASSIGN(Map m, Map::Read(e.value, path, {"parameters", "sql", "benchmark"}));
      Template t;
      t.name = e.key;
      if (auto n = m.Get("benchmark")) {
        CR_ASSIGN(t.benchmark, GetBool(*n, m.Path("benchmark")));
      }
      if (auto n = m.Get("parameters")) {
        CR_ASSIGN(Map params, Map::Read(*n, m.Path("parameters")));
        for (const auto& p : params.entries()) {
          std::string ppath = params.Path(p.key);
          if (!IsName(p.key)) {
            return Invalid(ppath, p.key_node, "invalid parameter name (expected {})", kNamePattern);
          }
          CR_ASSIGN(ColumnType type, GetEnum(p.value, ppath, kColumnTypes, "type"));
          t.parameters.push_back(TemplateParam{p.key, type});
        }
      }
      CR_ASSIGN(YAML::Node sql, m.Require("sql"));
      std::string sql_path = m.Path("sql");
      CR_ASSIGN(t.sql, GetString(sql, sql_path));
      if (std::all_of(t.sql.begin(), t.sql.end(),
                      [](char c) { return std::isspace(static_cast<unsigned char>(c)); })) {
        return Invalid(sql_path, sql, "must not be empty");
      }
      bool bad = false;
      std::vector<std::string> used = SqlParameters(t.sql, &bad);
      if (bad) return Invalid(sql_path, sql, "'$' must be followed by a parameter name");
      for (const auto& u : used) {
        bool declared = std::any_of(t.parameters.begin(), t.parameters.end(),
                                    [&](const TemplateParam& p) { return p.name == u; });
        if (!declared)
          return Invalid(sql_path, sql, "uses ${}, which is not a declared parameter", u);
      }
      for (const auto& p : t.parameters) {
        if (std::find(used.begin(), used.end(), p.name) == used.end()) {
          return Invalid(Join(m.Path("parameters"), p.name), *m.Get("parameters"),
                         "declared but never used in sql");
        }
      }
      spec_.templates.push_back(std::move(t));
    }
    return Ok();
  }

  // ----- datasets -----

  Status ParseDatasets(const YAML::Node& node) {
    CR_ASSIGN(Map datasets, Map::Read(node, "datasets"));
    if (datasets.empty()) return Invalid("datasets", node, "at least one dataset is required");
    for (const auto& e : datasets.entries()) {
      std::string path = datasets.Path(e.key);
      if (!IsName(e.key)) {
        return Invalid(path, e.key_node, "invalid dataset name (expected {})", kNamePattern);
      }
      CR_ASSIGN(Dataset d, ParseDataset(e.key, e.value, path));
      spec_.datasets.push_back(std::move(d));
    }
    return Ok();
  }

  Result<Dataset> ParseDataset(const std::string& name, const YAML::Node& node,
                               const std::string& path) {
    CR_ASSIGN(
        Map m,
        Map::Read(node, path, {"owner", "contributors", "privacy_unit_column", "columns", "rule"}));
    Dataset d;
    d.name = name;

    if (m.Get("contributors")) {
      CR_TRY(ParseContributors(m, d));
    } else {
      std::string owner_path = m.Path("owner");
      CR_ASSIGN(YAML::Node owner, m.Require("owner"));
      CR_ASSIGN(d.owner, GetString(owner, owner_path));
      const Party* party = spec_.FindParty(d.owner);
      if (!party) return Invalid(owner_path, owner, "unknown party '{}'", d.owner);
      if (!party->Can("contribute")) {
        return Invalid(owner_path, owner, "party {} does not have the contribute ability", d.owner);
      }
    }

    CR_ASSIGN(YAML::Node columns_node, m.Require("columns"));
    CR_ASSIGN(Map columns, Map::Read(columns_node, m.Path("columns")));
    if (columns.empty())
      return Invalid(columns.path(), columns_node, "at least one column is required");
    for (const auto& c : columns.entries()) {
      std::string cpath = columns.Path(c.key);
      if (!IsName(c.key)) {
        return Invalid(cpath, c.key_node, "invalid column name (expected {})", kNamePattern);
      }
      if (c.key.starts_with(kReservedPrefix)) {
        return Invalid(cpath, c.key_node, "column names starting with {} are reserved for the room",
                       kReservedPrefix);
      }
      CR_ASSIGN(Column column, ParseColumn(c.key, c.value, cpath));
      d.columns.push_back(std::move(column));
    }

    std::string unit_path = m.Path("privacy_unit_column");
    CR_ASSIGN(YAML::Node unit, m.Require("privacy_unit_column"));
    CR_ASSIGN(d.privacy_unit_column, GetString(unit, unit_path));
    const Column* unit_column = d.FindColumn(d.privacy_unit_column);
    if (!unit_column)
      return Invalid(unit_path, unit, "no column '{}' in this dataset", d.privacy_unit_column);
    if (unit_column->role != Role::kJoinKey) {
      return Invalid(unit_path, unit, "column {} must have role join_key", d.privacy_unit_column);
    }

    CR_ASSIGN(YAML::Node rule, m.Require("rule"));
    CR_TRY(ParseRule(rule, m.Path("rule"), d));
    return d;
  }

  // contributors: a list of distinct parties with the contribute ability,
  // instead of an owner (never both).
  Status ParseContributors(const Map& m, Dataset& d) {
    std::string path = m.Path("contributors");
    if (const auto* owner = m.Find("owner")) {
      return Invalid(m.Path("owner"), owner->key_node,
                     "a dataset has an owner or contributors, not both");
    }
    CR_ASSIGN(YAML::Node node, m.Require("contributors"));
    CR_ASSIGN(d.contributors, GetStringList(node, path, /*allow_empty=*/false));
    std::set<std::string> seen;
    for (const auto& name : d.contributors) {
      const Party* party = spec_.FindParty(name);
      if (!party) return Invalid(path, node, "unknown party '{}'", name);
      if (!party->Can("contribute")) {
        return Invalid(path, node, "party {} does not have the contribute ability", name);
      }
      if (!seen.insert(name).second) return Invalid(path, node, "party {} is listed twice", name);
    }
    return Ok();
  }

  // min_contributors, dominance and p_percent: only for pooled datasets.
  Status ParsePoolRules(const Map& m, Dataset& d) {
    Rule& r = d.rule;
    for (const char* key : {"min_contributors", "dominance", "p_percent"}) {
      if (const auto* e = m.Find(key); e && !d.pooled()) {
        return Invalid(m.Path(key), e->key_node, "only for a dataset with contributors");
      }
    }
    if (auto n = m.Get("min_contributors")) {
      std::string p = m.Path("min_contributors");
      CR_ASSIGN(int64_t v, GetInt(*n, p));
      if (v < 1) return Invalid(p, *n, "must be at least 1");
      if (v > static_cast<int64_t>(d.contributors.size())) {
        return Invalid(p, *n, "exceeds the number of contributors ({})", d.contributors.size());
      }
      r.min_contributors = v;
    }
    if (auto n = m.Get("dominance")) {
      std::string p = m.Path("dominance");
      CR_ASSIGN(Map dm, Map::Read(*n, p, {"n", "k"}));
      CR_ASSIGN(YAML::Node nn, dm.Require("n"));
      CR_ASSIGN(YAML::Node kk, dm.Require("k"));
      Rule::Dominance dom;
      CR_ASSIGN(dom.n, GetInt(nn, dm.Path("n")));
      CR_ASSIGN(dom.k, GetNumber(kk, dm.Path("k")));
      if (dom.n < 1) return Invalid(dm.Path("n"), nn, "must be at least 1");
      if (dom.n >= static_cast<int64_t>(d.contributors.size())) {
        return Invalid(dm.Path("n"), nn, "must be below the number of contributors ({})",
                       d.contributors.size());
      }
      if (!(dom.k > 0 && dom.k < 1)) return Invalid(dm.Path("k"), kk, "must be between 0 and 1");
      r.dominance = dom;
    }
    if (auto n = m.Get("p_percent")) {
      std::string p = m.Path("p_percent");
      CR_ASSIGN(double v, GetNumber(*n, p));
      if (!(v > 0 && v <= 100)) return Invalid(p, *n, "must be above 0 and at most 100");
      r.p_percent = v;
    }
    if (d.pooled()) {
      // Fewer contributors than the default minimum cannot release anything.
      int64_t need = d.MinContributors();
      if (need > static_cast<int64_t>(d.contributors.size())) {
        return Invalid(m.path(), m.node(),
                       "a pooled dataset needs at least {} contributors "
                       "(or a lower min_contributors)",
                       need);
      }
    }
    return Ok();
  }

  Result<Column> ParseColumn(const std::string& name, const YAML::Node& node,
                             const std::string& path) {
    CR_ASSIGN(Map m, Map::Read(node, path, {"type", "role", "normalize", "bounds"}));
    Column c;
    c.name = name;
    CR_ASSIGN(YAML::Node type, m.Require("type"));
    CR_ASSIGN(c.type, GetEnum(type, m.Path("type"), kColumnTypes, "type"));
    CR_ASSIGN(YAML::Node role, m.Require("role"));
    CR_ASSIGN(c.role, GetEnum(role, m.Path("role"), kRoles, "role"));
    const bool numeric = c.type == ColumnType::kInteger || c.type == ColumnType::kDouble;
    const bool measured = c.role == Role::kMetric || c.role == Role::kSensitive;

    if (c.role == Role::kJoinKey && c.type != ColumnType::kString) {
      return Invalid(m.Path("type"), type,
                     "join_key columns must be string (they are pseudonymised)");
    }
    if (auto n = m.Get("normalize")) {
      CR_ASSIGN(c.normalize, GetEnum(*n, m.Path("normalize"), kNormalizers, "normalizer"));
      if (c.type != ColumnType::kString) {
        return Invalid(m.Path("normalize"), *n, "only string columns can be normalized");
      }
    }
    std::string bpath = m.Path("bounds");
    if (auto n = m.Get("bounds")) {
      if (!numeric) return Invalid(bpath, *n, "only integer and double columns have bounds");
      if (!measured) return Invalid(bpath, *n, "only metric and sensitive columns have bounds");
      if (!n->IsSequence() || n->size() != 2) {
        return Invalid(bpath, *n, "expected [lo, hi]");
      }
      CR_ASSIGN(double lo, GetNumber((*n)[0], bpath));
      CR_ASSIGN(double hi, GetNumber((*n)[1], bpath));
      if (lo > hi) return Invalid(bpath, *n, "lo must not exceed hi");
      if (c.type == ColumnType::kInteger && (lo != std::trunc(lo) || hi != std::trunc(hi))) {
        return Invalid(bpath, *n, "bounds of an integer column must be integers");
      }
      c.bounds = std::make_pair(lo, hi);
    } else if (numeric && measured) {
      return Invalid(bpath, node, "required on numeric {} columns (values are clamped to them)",
                     Name(c.role));
    }
    return c;
  }

  // ----- rules -----

  Status ParseRule(const YAML::Node& node, const std::string& path, Dataset& d) {
    CR_ASSIGN(Map m,
              Map::Read(node, path,
                        {"kind", "receivers", "aggregates", "min_distinct_units", "join_operators",
                         "public_values", "require_dp", "list_columns", "templates",
                         "result_regions", "max_queries", "min_contributors", "dominance",
                         "p_percent"}));
    Rule& r = d.rule;
    CR_ASSIGN(YAML::Node kind, m.Require("kind"));
    CR_ASSIGN(r.kind, GetEnum(kind, m.Path("kind"), kRuleKinds, "rule kind"));

    // Keys of another kind are refused rather than ignored: a reader of the spec
    // would otherwise believe a constraint holds that nothing enforces.
    for (const auto& e : m.entries()) {
      static const std::set<std::string_view> kCommon = {"kind", "receivers", "result_regions", "max_queries"};
      static const std::set<std::string_view> kAggregation = {
          "aggregates", "min_distinct_units", "join_operators", "public_values", "require_dp"};
      static const std::set<std::string_view> kPool = {"min_contributors", "dominance",
                                                       "p_percent"};
      if (kCommon.contains(e.key)) continue;
      if (kPool.contains(e.key) && r.kind != RuleKind::kList) continue;
      bool ok = (r.kind == RuleKind::kAggregation && kAggregation.contains(e.key)) ||
                (r.kind == RuleKind::kList && e.key == "list_columns") ||
                (r.kind == RuleKind::kCustom && e.key == "templates");
      if (!ok) return Invalid(m.Path(e.key), e.key_node, "not allowed in {} rules", Name(r.kind));
    }

    std::string rpath = m.Path("receivers");
    CR_ASSIGN(YAML::Node receivers, m.Require("receivers"));
    CR_ASSIGN(r.receivers, GetStringList(receivers, rpath, /*allow_empty=*/false));
    for (const auto& name : r.receivers) {
      const Party* p = spec_.FindParty(name);
      if (!p) return Invalid(rpath, receivers, "unknown party '{}'", name);
      if (!p->Can("receive_results")) {
        return Invalid(rpath, receivers, "party {} does not have the receive_results ability",
                       name);
      }
    }
    if (auto n = m.Get("result_regions")) {
      std::string path_rr = m.Path("result_regions");
      CR_ASSIGN(r.result_regions, GetStringList(*n, path_rr, /*allow_empty=*/false));
      for (const auto& region : r.result_regions) {
        if (!IsRegion(region)) return Invalid(path_rr, *n, "invalid region (expected [a-z0-9-]+)");
      }
    }

    if (auto n = m.Get("max_queries")) CR_TRY(ParseMaxQueries(*n, m.Path("max_queries"), r));

    CR_TRY(ParsePoolRules(m, d));
    switch (r.kind) {
      case RuleKind::kAggregation:
        return ParseAggregationRule(m, d);
      case RuleKind::kList: {
        std::string lpath = m.Path("list_columns");
        CR_ASSIGN(YAML::Node list, m.Require("list_columns"));
        CR_ASSIGN(r.list_columns, GetStringList(list, lpath, /*allow_empty=*/false));
        for (const auto& col : r.list_columns) {
          const Column* c = d.FindColumn(col);
          if (!c) return Invalid(lpath, list, "no column '{}' in this dataset", col);
          if (c->role != Role::kDimension) {
            return Invalid(lpath, list, "column {} is a {}, only dimensions can be listed", col,
                           Name(c->role));
          }
        }
        return Ok();
      }
      case RuleKind::kCustom: {
        std::string tpath = m.Path("templates");
        CR_ASSIGN(YAML::Node templates, m.Require("templates"));
        CR_ASSIGN(r.templates, GetStringList(templates, tpath, /*allow_empty=*/false));
        for (const auto& t : r.templates) {
          if (!spec_.FindTemplate(t)) return Invalid(tpath, templates, "unknown template '{}'", t);
        }
        return Ok();
      }
    }
    return Ok();
  }

  Status ParseAggregationRule(const Map& m, Dataset& d) {
    Rule& r = d.rule;
    CR_ASSIGN(YAML::Node agg_node, m.Require("aggregates"));
    CR_ASSIGN(Map aggregates, Map::Read(agg_node, m.Path("aggregates")));
    if (aggregates.empty()) return Invalid(aggregates.path(), agg_node, "must not be empty");
    for (const auto& e : aggregates.entries()) {
      std::string apath = aggregates.Path(e.key);
      const Column* c = d.FindColumn(e.key);
      if (!c) return Invalid(apath, e.key_node, "no such column in this dataset");
      CR_ASSIGN(std::vector<std::string> names, GetStringList(e.value, apath, false));
      const bool numeric = c->type == ColumnType::kInteger || c->type == ColumnType::kDouble;
      const bool measured = c->role == Role::kMetric || c->role == Role::kSensitive;
      std::vector<AggFn> fns;
      for (const auto& fname : names) {
        auto fn = Lookup(kAggFns, fname);
        if (!fn) {
          return Invalid(apath, e.value, "unknown function '{}' (expected one of: {})", fname,
                         Choices(kAggFns));
        }
        if (*fn != AggFn::kCount && *fn != AggFn::kCountDistinct && !(numeric && measured)) {
          return Invalid(apath, e.value,
                         "{} needs a numeric metric or sensitive column; {} is a {} {} "
                         "(only count and count_distinct)",
                         fname, c->name, Name(c->type), Name(c->role));
        }
        fns.push_back(*fn);
      }
      r.aggregates[e.key] = std::move(fns);
    }
    if (auto n = m.Get("min_distinct_units")) {
      std::string p = m.Path("min_distinct_units");
      CR_ASSIGN(int64_t k, GetInt(*n, p));
      if (k < 2) return Invalid(p, *n, "must be at least 2");
      r.min_distinct_units = k;
    }
    if (auto n = m.Get("join_operators")) {
      std::string p = m.Path("join_operators");
      CR_ASSIGN(r.join_operators, GetStringList(*n, p, false));
      for (const auto& op : r.join_operators) {
        if (!OneOf(kJoinOperators, op)) {
          return Invalid(p, *n, "unknown operator '{}' (expected and, or)", op);
        }
      }
      if (std::find(r.join_operators.begin(), r.join_operators.end(), "and") ==
          r.join_operators.end()) {
        return Invalid(p, *n, "must contain and");
      }
    }
    if (auto n = m.Get("public_values")) {
      // Public values change what partition selection releases: meaningless,
      // and so misleading to a reader, without differential privacy.
      if (!spec_.privacy.dp) {
        return Invalid(m.Path("public_values"), m.Find("public_values")->key_node,
                       "requires privacy.dp");
      }
      CR_ASSIGN(Map pv, Map::Read(*n, m.Path("public_values")));
      for (const auto& e : pv.entries()) {
        std::string ppath = pv.Path(e.key);
        const Column* c = d.FindColumn(e.key);
        if (!c) return Invalid(ppath, e.key_node, "no such column in this dataset");
        if (c->role != Role::kDimension) {
          return Invalid(ppath, e.key_node, "only dimension columns have public values");
        }
        CR_TRY(ParsePublicValues(*c, e.value, ppath, &r.public_values[e.key]));
      }
    }
    if (auto n = m.Get("require_dp")) {
      std::string p = m.Path("require_dp");
      CR_ASSIGN(r.require_dp, GetBool(*n, p));
      if (!spec_.privacy.dp) {
        return Invalid(p, m.Find("require_dp")->key_node, "requires privacy.dp");
      }
    }
    return Ok();
  }

  Status ParseMaxQueries(const YAML::Node& node, const std::string& path, Rule& r) {
    CR_ASSIGN(Map q, Map::Read(node, path, {"count", "per"}));
    MaxQueries mq;
    CR_ASSIGN(YAML::Node count, q.Require("count"));
    CR_ASSIGN(mq.count, GetInt(count, q.Path("count")));
    if (mq.count < 1) return Invalid(q.Path("count"), count, "must be at least 1");
    CR_ASSIGN(YAML::Node per, q.Require("per"));
    CR_ASSIGN(mq.per, GetString(per, q.Path("per")));
    static constexpr std::array<std::string_view, 4> kPer = {"day", "week", "month", "lifetime"};
    if (!OneOf(kPer, mq.per)) {
      return Invalid(q.Path("per"), per, "unknown window '{}' (expected one of: {})", mq.per,
                     Choices(kPer));
    }
    r.max_queries = mq;
    return Ok();
  }

  Status ParsePublicValues(const Column& c, const YAML::Node& node, const std::string& path,
                           std::vector<std::string>* out) {
    if (!node.IsSequence()) return Invalid(path, node, "expected a list, found {}", KindOf(node));
    if (node.size() == 0) return Invalid(path, node, "must not be empty");
    for (const auto& item : node) {
      if (!item.IsScalar()) return Invalid(path, item, "expected a list of values");
      switch (c.type) {
        case ColumnType::kInteger:
          CR_TRY(GetInt(item, path));
          break;
        case ColumnType::kDouble:
          CR_TRY(GetNumber(item, path));
          break;
        case ColumnType::kBoolean:
          CR_TRY(GetBool(item, path));
          break;
        case ColumnType::kDate:
          if (!IsDate(item.Scalar())) return Invalid(path, item, "expected dates as YYYY-MM-DD");
          break;
        case ColumnType::kString:
        case ColumnType::kTimestamp:
          break;
      }
      if (std::find(out->begin(), out->end(), item.Scalar()) != out->end()) {
        return Invalid(path, item, "a value is listed twice");
      }
      out->push_back(item.Scalar());
    }
    return Ok();
  }

  // ----- hash -----

  // The spec hash is hex SHA-256 over a length-prefixed, domain-separated encoding
  // (u64le = 8-byte little-endian length):
  //   "cleanroom-spec-v1\0"
  //   u64le(len(spec bytes)) || spec bytes
  //   for each party, in spec order, whose public_key names a file:
  //     u64le(len(name)) || name || u64le(len(key file bytes)) || key file bytes
  // Inline keys are already part of the spec bytes. The length prefixes make the
  // encoding injective, so changing one byte of the spec or of any key file (or
  // moving bytes between them) changes the hash, and with it every signature.
  std::string Hash() const {
    crypto::Sha256Stream h;
    auto put_len = [&h](uint64_t n) {
      char le[8];
      for (int i = 0; i < 8; ++i) le[i] = static_cast<char>((n >> (8 * i)) & 0xff);
      h.Update(std::string_view(le, sizeof le));
    };
    auto put = [&](std::string_view s) {
      put_len(s.size());
      h.Update(s);
    };
    h.Update(kHashDomain);
    put(spec_.bytes);
    for (const Party& p : spec_.parties) {
      if (p.key_bytes.empty()) continue;
      put(p.name);
      put(p.key_bytes);
    }
    return ToHex(h.Final());
  }

  Spec spec_;
  KeyFileReader read_key_file_;
};

std::string SignatureMessage(std::string_view collaboration, std::string_view spec_hash) {
  std::string msg(kSignatureDomain);
  msg += collaboration;
  msg.push_back('\0');
  msg += spec_hash;
  return msg;
}

bool IsLowerHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

// ----- Enum names ------------------------------------------------------------------------

std::string_view Name(ColumnType t) { return Spelling(kColumnTypes, t); }
std::string_view Name(Role r) { return Spelling(kRoles, r); }
std::string_view Name(Normalize n) {
  return n == Normalize::kNone ? "none"sv : Spelling(kNormalizers, n);
}
std::string_view Name(RuleKind k) { return Spelling(kRuleKinds, k); }
std::string_view Name(AggFn f) { return Spelling(kAggFns, f); }

bool IsPartyName(std::string_view name) { return IsName(name, /*dash=*/true); }
std::string_view PartyNamePattern() { return kPartyNamePattern; }

std::string_view DuckDbType(ColumnType t) {
  switch (t) {
    case ColumnType::kString:
      return "VARCHAR";
    case ColumnType::kInteger:
      return "BIGINT";
    case ColumnType::kDouble:
      return "DOUBLE";
    case ColumnType::kBoolean:
      return "BOOLEAN";
    case ColumnType::kDate:
      return "DATE";
    case ColumnType::kTimestamp:
      return "TIMESTAMP";
  }
  return "VARCHAR";
}

// ----- Lookups ---------------------------------------------------------------------------

const Column* Dataset::FindColumn(std::string_view column) const {
  for (const auto& c : columns) {
    if (c.name == column) return &c;
  }
  return nullptr;
}

bool Dataset::Contributes(std::string_view party) const {
  return pooled() ? ContributorIndex(party) >= 0 : owner == party;
}

int Dataset::ContributorIndex(std::string_view party) const {
  auto it = std::find(contributors.begin(), contributors.end(), party);
  return it == contributors.end() ? -1 : static_cast<int>(it - contributors.begin());
}

int64_t Dataset::MinContributors() const {
  if (!pooled()) return 0;
  return rule.min_contributors.value_or(kDefaultMinContributors);
}

bool Party::Can(std::string_view ability) const {
  return std::find(abilities.begin(), abilities.end(), ability) != abilities.end();
}

const Party* Spec::FindParty(std::string_view name) const {
  for (const auto& p : parties) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

const Party* Spec::FindPartyByKey(const crypto::PublicIdentity& key) const {
  for (const auto& p : parties) {
    if (p.key == key) return &p;
  }
  return nullptr;
}

const Dataset* Spec::FindDataset(std::string_view name) const {
  for (const auto& d : datasets) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

const Template* Spec::FindTemplate(std::string_view name) const {
  for (const auto& t : templates) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

int64_t Spec::MinDistinctUnits(const Dataset& d) const {
  return d.rule.min_distinct_units.value_or(privacy.min_distinct_units);
}

// ----- Summary ---------------------------------------------------------------------------

nlohmann::ordered_json Summary(const Spec& spec) {
  using nlohmann::ordered_json;
  auto or_null = [](const std::string& s) { return s.empty() ? ordered_json() : ordered_json(s); };
  ordered_json j;
  j["collaboration"] = spec.collaboration;
  j["description"] = or_null(spec.description);
  j["spec_hash"] = spec.hash;
  j["region"] = or_null(spec.region);
  j["retention_days"] = spec.retention_days > 0 ? ordered_json(spec.retention_days) : ordered_json();
  j["privacy"] = {{"unit", spec.privacy.unit},
                  {"min_distinct_units", spec.privacy.min_distinct_units}};
  j["privacy"]["difference_checks"] = spec.privacy.difference_checks;
  if (const auto& dp = spec.privacy.dp) {
    j["privacy"]["dp"] = {{"epsilon", dp->epsilon},
                          {"delta", dp->delta},
                          {"max_groups_per_unit", dp->max_groups_per_unit},
                          {"max_contributions_per_group", dp->max_contributions_per_group},
                          {"query_epsilon", dp->query_epsilon},
                          {"max_query_epsilon", dp->max_query_epsilon},
                          {"refresh", dp->refresh}};
  }

  ordered_json parties = ordered_json::array();
  for (const Party& p : spec.parties) {
    parties.push_back({{"name", p.name},
                       {"abilities", p.abilities},
                       // Where the key came from: a file (whose bytes the hash covers) or inline.
                       {"key_file", or_null(p.key_bytes.empty() ? "" : p.public_key_source)},
                       {"key_fingerprint", p.key.Fingerprint()}});
    if (!p.region.empty()) parties.back()["region"] = p.region;
  }
  j["parties"] = std::move(parties);

  ordered_json datasets = ordered_json::array();
  for (const Dataset& d : spec.datasets) {
    ordered_json columns = ordered_json::array();
    for (const Column& c : d.columns) {
      ordered_json col = {{"name", c.name},
                          {"type", Name(c.type)},
                          {"role", Name(c.role)},
                          {"normalize", c.normalize == Normalize::kNone
                                            ? ordered_json()
                                            : ordered_json(Name(c.normalize))}};
      col["bounds"] = c.bounds ? ordered_json::array({c.bounds->first, c.bounds->second})
                               : ordered_json();
      columns.push_back(std::move(col));
    }
    const Rule& r = d.rule;
    ordered_json rule = {{"kind", Name(r.kind)},
                         {"receivers", r.receivers},
                         {"min_distinct_units", spec.MinDistinctUnits(d)},
                         {"min_distinct_units_from", r.min_distinct_units ? "rule" : "default"}};
    if (!r.result_regions.empty()) rule["result_regions"] = r.result_regions;
    if (d.pooled()) {
      rule["min_contributors"] = d.MinContributors();
      rule["dominance"] =
          r.dominance ? ordered_json{{"n", r.dominance->n}, {"k", r.dominance->k}} : ordered_json();
      rule["p_percent"] = r.p_percent ? ordered_json(*r.p_percent) : ordered_json();
    }
    switch (r.kind) {
      case RuleKind::kAggregation: {
        ordered_json aggregates = ordered_json::object();
        // In column order: the rule's map is alphabetical, the spec's order is lost.
        for (const Column& c : d.columns) {
          auto it = r.aggregates.find(c.name);
          if (it == r.aggregates.end()) continue;
          ordered_json fns = ordered_json::array();
          for (AggFn f : it->second) fns.push_back(Name(f));
          aggregates[c.name] = std::move(fns);
        }
        rule["aggregates"] = std::move(aggregates);
        rule["join_operators"] = r.join_operators;
        break;
      }
      case RuleKind::kList:
        rule["list_columns"] = r.list_columns;
        break;
      case RuleKind::kCustom:
        rule["templates"] = r.templates;
        break;
    }
    if (r.max_queries) {
      rule["max_queries"] = {{"count", r.max_queries->count}, {"per", r.max_queries->per}};
    }
    ordered_json ds = {{"name", d.name},
                       {"owner", d.pooled() ? ordered_json() : ordered_json(d.owner)}};
    if (d.pooled()) ds["contributors"] = d.contributors;
    ds["privacy_unit_column"] = d.privacy_unit_column;
    ds["columns"] = std::move(columns);
    ds["rule"] = std::move(rule);
    datasets.push_back(std::move(ds));
  }
  j["datasets"] = std::move(datasets);

  ordered_json templates = ordered_json::array();
  for (const Template& t : spec.templates) {
    ordered_json params = ordered_json::array();
    for (const TemplateParam& p : t.parameters) {
      params.push_back({{"name", p.name}, {"type", Name(p.type)}});
    }
    templates.push_back({{"name", t.name}, {"parameters", std::move(params)}, {"sql", t.sql}});
  }
  j["templates"] = std::move(templates);
  return j;
}

namespace {

// "3" or "2.5": bounds as the spec would write them.
std::string Number(double v) {
  if (v == std::trunc(v) && std::fabs(v) < 1e15) return fmt::format("{}", static_cast<int64_t>(v));
  return fmt::format("{}", v);
}

// Left-aligned columns, two spaces apart, each line prefixed by `indent`.
std::string Table(const std::vector<std::vector<std::string>>& rows, std::string_view indent) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line(indent);
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string JoinNames(const std::vector<std::string>& names) {
  return names.empty() ? "none" : fmt::format("{}", fmt::join(names, ", "));
}

}  // namespace

std::string SummaryText(const Spec& spec) {
  std::string out;
  out += Table({{"collaboration", spec.collaboration},
                {"description", spec.description.empty() ? "none" : spec.description},
                {"spec hash", spec.hash},
                {"region", spec.region.empty() ? "none" : spec.region},
                {"retention", spec.retention_days > 0
                                  ? fmt::format("{} days after ingest", spec.retention_days)
                                  : "none (kept until dispose)"},
                {"privacy unit", spec.privacy.unit},
                {"threshold", fmt::format("min_distinct_units {} (default)",
                                          spec.privacy.min_distinct_units)}},
               "");

  out += fmt::format("\nparties ({})\n", spec.parties.size());
  std::vector<std::vector<std::string>> parties = {{"name", "abilities", "key", "key file"}};
  for (const Party& p : spec.parties) {
    parties.push_back({p.name, JoinNames(p.abilities), p.key.Fingerprint(),
                       p.key_bytes.empty() ? "inline" : p.public_key_source});
  }
  out += Table(parties, "  ");

  out += fmt::format("\ndatasets ({})\n", spec.datasets.size());
  for (const Dataset& d : spec.datasets) {
    const Rule& r = d.rule;
    out +=
        fmt::format("  {}: {}, privacy unit column {}\n", d.name,
                    d.pooled() ? "contributors " + JoinNames(d.contributors) : "owner " + d.owner,
                    d.privacy_unit_column);
    std::vector<std::vector<std::string>> cols = {{"column", "type", "role", "normalize", "bounds"}};
    for (const Column& c : d.columns) {
      cols.push_back({c.name, std::string(Name(c.type)), std::string(Name(c.role)),
                      c.normalize == Normalize::kNone ? "-" : std::string(Name(c.normalize)),
                      c.bounds ? fmt::format("[{}, {}]", Number(c.bounds->first),
                                             Number(c.bounds->second))
                               : "-"});
    }
    out += Table(cols, "    ");
    std::vector<std::vector<std::string>> rule = {
        {"rule", std::string(Name(r.kind))},
        {"threshold", fmt::format("min_distinct_units {} ({})", spec.MinDistinctUnits(d),
                                  r.min_distinct_units ? "rule" : "default")},
        {"receivers", JoinNames(r.receivers)}};
    if (!r.result_regions.empty()) rule.push_back({"result regions", JoinNames(r.result_regions)});
    if (d.pooled()) {
      rule.push_back({"contributors", fmt::format("min_contributors {}", d.MinContributors())});
      if (r.dominance) {
        rule.push_back(
            {"dominance", fmt::format("n {} k {}", r.dominance->n, Number(r.dominance->k))});
      }
      if (r.p_percent) rule.push_back({"p% rule", fmt::format("p {}", Number(*r.p_percent))});
    }
    switch (r.kind) {
      case RuleKind::kAggregation: {
        std::vector<std::string> aggs;
        for (const Column& c : d.columns) {
          auto it = r.aggregates.find(c.name);
          if (it == r.aggregates.end()) continue;
          std::vector<std::string> fns;
          for (AggFn f : it->second) fns.emplace_back(Name(f));
          aggs.push_back(fmt::format("{}: {}", c.name, fmt::join(fns, ", ")));
        }
        rule.push_back({"aggregates", fmt::format("{}", fmt::join(aggs, "; "))});
        rule.push_back({"join operators", JoinNames(r.join_operators)});
        break;
      }
      case RuleKind::kList:
        rule.push_back({"list columns", JoinNames(r.list_columns)});
        break;
      case RuleKind::kCustom:
        rule.push_back({"templates", JoinNames(r.templates)});
        break;
    }
    out += Table(rule, "    ");
  }

  out += fmt::format("\ntemplates ({})\n", spec.templates.size());
  for (const Template& t : spec.templates) {
    std::vector<std::string> params;
    for (const TemplateParam& p : t.parameters) {
      params.push_back(fmt::format("{} {}", p.name, Name(p.type)));
    }
    out += fmt::format("  {}({})\n", t.name, fmt::join(params, ", "));
  }
  return out;
}

// ----- Parse / Load ----------------------------------------------------------------------

namespace {

Result<Spec> RunParser(std::string_view bytes, Parser::KeyFileReader reader) {
  try {
    return Parser(bytes, std::move(reader)).Run();
  } catch (const std::exception& e) {
    return Fail(ErrorCode::INTERNAL, "spec: unexpected failure while parsing: {}", e.what());
  }
}

}  // namespace

Result<Spec> Parse(std::string_view bytes, const std::string& base_dir) {
  return RunParser(bytes, [&base_dir](const std::string& source) {
    return ReadFile(JoinPath(base_dir, source));
  });
}

Result<Spec> ParseWithKeyFiles(std::string_view bytes,
                               const std::map<std::string, std::string>& key_files) {
  return RunParser(bytes, [&key_files](const std::string& source) -> Result<std::string> {
    auto it = key_files.find(source);
    if (it == key_files.end()) {
      return Fail(ErrorCode::FILE_UNREADABLE, "no stored copy of key file {}", source);
    }
    return it->second;
  });
}

Result<Spec> Load(const std::string& path) {
  CR_ASSIGN(std::string bytes, ReadFile(path));
  auto spec = Parse(bytes, DirName(path));
  if (!spec) return Fail(spec.error().code, "{}: {}", path, spec.error().message);
  return spec;
}

// ----- Signatures ------------------------------------------------------------------------

Result<Signature> Sign(const Spec& spec, const crypto::Identity& id) {
  const Party* party = spec.FindPartyByKey(id.pub());
  if (!party) {
    return Fail(ErrorCode::UNKNOWN_SIGNER, "key {} is not a party of collaboration {}",
                id.pub().Fingerprint(), spec.collaboration);
  }
  Signature sig;
  sig.party = party->name;
  sig.collaboration = spec.collaboration;
  sig.spec_hash = spec.hash;
  sig.signature = id.Sign(SignatureMessage(spec.collaboration, spec.hash));
  return sig;
}

std::string SignatureToJson(const Signature& sig) {
  nlohmann::ordered_json j;
  j["party"] = sig.party;
  j["collaboration"] = sig.collaboration;
  j["spec_hash"] = sig.spec_hash;
  j["signature"] = crypto::Base64Encode(sig.signature);
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<Signature> SignatureFromJson(std::string_view text) {
  using nlohmann::json;
  try {
    std::set<std::string> seen;
    bool duplicate = false;
    json::parser_callback_t on_event = [&](int depth, json::parse_event_t event, json& parsed) {
      if (event == json::parse_event_t::key && depth == 1 &&
          !seen.insert(parsed.get<std::string>()).second) {
        duplicate = true;
      }
      return true;
    };
    json j = json::parse(text.begin(), text.end(), on_event, /*allow_exceptions=*/false);
    if (j.is_discarded()) return Fail(ErrorCode::BAD_INPUT, "signature: not valid JSON");
    if (!j.is_object()) return Fail(ErrorCode::BAD_INPUT, "signature: expected a JSON object");
    if (duplicate) return Fail(ErrorCode::BAD_INPUT, "signature: a field appears twice");
    static constexpr std::array<std::string_view, 4> kFields = {"party", "collaboration",
                                                                "spec_hash", "signature"};
    for (const auto& [key, value] : j.items()) {
      if (!OneOf(kFields, key))
        return Fail(ErrorCode::BAD_INPUT, "signature: unknown field {}", key);
    }
    Signature sig;
    std::string* targets[] = {&sig.party, &sig.collaboration, &sig.spec_hash, &sig.signature};
    for (size_t i = 0; i < kFields.size(); ++i) {
      auto it = j.find(std::string(kFields[i]));
      if (it == j.end() || !it->is_string() || it->get_ref<const std::string&>().empty()) {
        return Fail(ErrorCode::BAD_INPUT, "signature: field {} must be a non-empty string",
                    kFields[i]);
      }
      *targets[i] = it->get<std::string>();
    }
    if (sig.spec_hash.size() != 64 || !IsLowerHex(sig.spec_hash)) {
      return Fail(ErrorCode::BAD_INPUT, "signature: spec_hash must be 64 lowercase hex digits");
    }
    auto raw = crypto::Base64Decode(sig.signature);
    if (!raw || raw->size() != crypto::kSignatureBytes) {
      return Fail(ErrorCode::BAD_INPUT, "signature: signature must be {} bytes in base64url",
                  crypto::kSignatureBytes);
    }
    sig.signature = std::move(*raw);
    return sig;
  } catch (const json::exception& e) {
    return Fail(ErrorCode::BAD_INPUT, "signature: {}", e.what());
  }
}

Status Verify(const Spec& spec, const Signature& sig) {
  const Party* party = spec.FindParty(sig.party);
  if (!party) {
    return Fail(ErrorCode::UNKNOWN_SIGNER, "{} is not a party of collaboration {}", sig.party,
                spec.collaboration);
  }
  if (sig.collaboration != spec.collaboration || sig.spec_hash != spec.hash) {
    return Fail(ErrorCode::SPEC_MISMATCH,
                "signature of party {} covers collaboration {} spec {}, not {} spec {}", sig.party,
                sig.collaboration, sig.spec_hash.substr(0, 16), spec.collaboration,
                spec.hash.substr(0, 16));
  }
  if (!crypto::Verify(party->key, SignatureMessage(sig.collaboration, sig.spec_hash),
                      sig.signature)) {
    return Fail(ErrorCode::SIGNATURE_INVALID, "signature of party {} does not verify under its key",
                sig.party);
  }
  return Ok();
}

}  // namespace cr::spec
