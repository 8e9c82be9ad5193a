#include "anonymize/config.h"

#include <algorithm>
#include <map>
#include <optional>

#include "common/files.h"
#include "common/yaml.h"

namespace cr::anonymize {

std::string_view ObjectiveName(Objective o) {
  switch (o) {
    case Objective::kNonUniformEntropy:
      return "non_uniform_entropy";
    case Objective::kLoss:
      return "loss";
    case Objective::kDiscernibility:
      return "discernibility";
  }
  return "";
}

bool AnonymizeConfig::Declares(std::string_view column) const {
  auto named = [column](const auto& list, auto name_of) {
    return std::any_of(list.begin(), list.end(),
                       [&](const auto& e) { return name_of(e) == column; });
  };
  return named(quasi_identifiers, [](const QuasiIdentifier& q) { return q.column; }) ||
         named(sensitive, [](const std::string& s) { return s; }) ||
         named(identifiers, [](const IdentifierRule& r) { return r.column; }) ||
         named(attributes, [](const AttributeRule& r) { return r.column; });
}

namespace {

// Every error of this file is BAD_INPUT and starts with the field path
// ("privacy.k: ... (line 7)"); the document itself is "config".
constexpr yaml::Reader kYaml(ErrorCode::BAD_INPUT, "config");

template <typename E>
using Spelled = std::pair<E, std::string_view>;

constexpr Spelled<HierarchySpec::Kind> kGeneralizations[] = {
    {HierarchySpec::Kind::kPrefix, "prefix"},
    {HierarchySpec::Kind::kIntervals, "intervals"},
    {HierarchySpec::Kind::kDate, "date"}};
constexpr Spelled<IdentifierRule::Kind> kIdentifierTransforms[] = {
    {IdentifierRule::Kind::kPseudonymize, "pseudonymize"},
    {IdentifierRule::Kind::kDrop, "drop"},
    {IdentifierRule::Kind::kRedact, "redact"},
    {IdentifierRule::Kind::kMask, "mask"}};
enum class AttributeTransform { kKeep, kNoise, kSwap, kGeneralize };
constexpr Spelled<AttributeTransform> kAttributeTransforms[] = {
    {AttributeTransform::kKeep, "keep"},
    {AttributeTransform::kNoise, "noise"},
    {AttributeTransform::kSwap, "swap"},
    {AttributeTransform::kGeneralize, "generalize"}};
constexpr Spelled<NoiseSpec::Kind> kMechanisms[] = {{NoiseSpec::Kind::kLaplace, "laplace"},
                                                    {NoiseSpec::Kind::kGaussian, "gaussian"}};
constexpr Spelled<bool> kSwaps[] = {{true, "rank"}, {false, "random"}};
constexpr Spelled<LDiversity::Kind> kLKinds[] = {{LDiversity::Kind::kDistinct, "distinct"},
                                                 {LDiversity::Kind::kEntropy, "entropy"},
                                                 {LDiversity::Kind::kRecursive, "recursive"}};
constexpr Spelled<TCloseness::Distance> kDistances[] = {
    {TCloseness::Distance::kEqual, "equal"}, {TCloseness::Distance::kOrdered, "ordered"}};
constexpr Spelled<Objective> kObjectives[] = {
    {Objective::kNonUniformEntropy, "non_uniform_entropy"},
    {Objective::kLoss, "loss"},
    {Objective::kDiscernibility, "discernibility"}};
constexpr Spelled<bool> kSuppressed[] = {{true, "drop"}, {false, "mask"}};
constexpr Spelled<Others> kOthers[] = {{Others::kRefuse, "refuse"}, {Others::kRemove, "remove"}};

// The options a generalisation rule may carry, besides `hierarchy`/`generalize`.
constexpr std::string_view kRuleOptions[] = {"hierarchy_separator", "widths", "top_code",
                                             "bottom_code", "levels"};

Result<double> NumberIn(const YAML::Node& n, const std::string& path, double lo, double hi) {
  CR_ASSIGN(double v, kYaml.GetNumber(n, path));
  if (!(v >= lo && v <= hi)) return kYaml.Invalid(path, n, "must be in [{}, {}]", lo, hi);
  return v;
}

Result<int> IntIn(const YAML::Node& n, const std::string& path, int lo, int hi) {
  CR_ASSIGN(int64_t v, kYaml.GetInt(n, path));
  if (v < lo || v > hi) return kYaml.Invalid(path, n, "must be an integer in [{}, {}]", lo, hi);
  return static_cast<int>(v);
}

// Options of another kind are refused rather than ignored: a reader of the
// config would otherwise believe they apply.
template <typename Keys>
Status Refuse(const yaml::Map& m, const Keys& keys, std::string_view with) {
  for (std::string_view k : keys) {
    if (const yaml::Map::Entry* e = m.Find(k)) {
      return kYaml.Invalid(m.Path(k), e->key_node, "not allowed with {}", with);
    }
  }
  return Ok();
}
Status Refuse(const yaml::Map& m, std::initializer_list<std::string_view> keys,
              std::string_view with) {
  return Refuse<std::initializer_list<std::string_view>>(m, keys, with);
}

Status OnlyRuleOptions(const yaml::Map& m, std::initializer_list<std::string_view> allowed,
                       std::string_view with) {
  for (std::string_view k : kRuleOptions) {
    const yaml::Map::Entry* e = m.Find(k);
    if (e && std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
      return kYaml.Invalid(m.Path(k), e->key_node, "not allowed with {}", with);
    }
  }
  return Ok();
}

Result<HierarchySpec> ParseGeneralization(const yaml::Map& m, const std::string& base_dir) {
  HierarchySpec spec;
  auto hierarchy = m.Get("hierarchy");
  auto generalize = m.Get("generalize");
  if (hierarchy && generalize) {
    return kYaml.Invalid(m.Path("generalize"), m.Find("generalize")->key_node,
                         "give either hierarchy or generalize, not both");
  }
  if (hierarchy) {
    CR_TRY(OnlyRuleOptions(m, {"hierarchy_separator"}, "a hierarchy file"));
    spec.kind = HierarchySpec::Kind::kFile;
    CR_ASSIGN(std::string path, kYaml.GetString(*hierarchy, m.Path("hierarchy")));
    if (path.empty()) return kYaml.Invalid(m.Path("hierarchy"), *hierarchy, "must name a file");
    spec.path = JoinPath(base_dir, path);
    if (auto n = m.Get("hierarchy_separator")) {
      CR_ASSIGN(std::string sep, kYaml.GetString(*n, m.Path("hierarchy_separator")));
      if (sep.size() != 1) {
        return kYaml.Invalid(m.Path("hierarchy_separator"), *n, "must be one character");
      }
      spec.separator = sep[0];
    }
    return spec;
  }
  if (!generalize) return kYaml.Invalid(m.path(), m.node(), "needs hierarchy or generalize");
  CR_ASSIGN(spec.kind,
            kYaml.GetEnum(*generalize, m.Path("generalize"), kGeneralizations, "generalization"));
  switch (spec.kind) {
    case HierarchySpec::Kind::kFile:
      break;
    case HierarchySpec::Kind::kPrefix:
      CR_TRY(OnlyRuleOptions(m, {}, "generalize: prefix"));
      break;
    case HierarchySpec::Kind::kIntervals: {
      CR_TRY(OnlyRuleOptions(m, {"widths", "top_code", "bottom_code"}, "generalize: intervals"));
      const std::string wpath = m.Path("widths");
      CR_ASSIGN(YAML::Node widths, m.Require("widths"));
      if (!widths.IsSequence() || widths.size() == 0) {
        return kYaml.Invalid(wpath, widths, "expected a non-empty list of numbers");
      }
      for (const auto& w : widths) {
        CR_ASSIGN(double v, kYaml.GetNumber(w, wpath));
        if (!(v > 0)) return kYaml.Invalid(wpath, w, "widths must be positive");
        spec.widths.push_back(v);
      }
      if (auto n = m.Get("bottom_code")) {
        CR_ASSIGN(double b, kYaml.GetNumber(*n, m.Path("bottom_code")));
        spec.bottom_code = b;
      }
      if (auto n = m.Get("top_code")) {
        CR_ASSIGN(double t, kYaml.GetNumber(*n, m.Path("top_code")));
        spec.top_code = t;
      }
      break;
    }
    case HierarchySpec::Kind::kDate: {
      CR_TRY(OnlyRuleOptions(m, {"levels"}, "generalize: date"));
      const std::string lpath = m.Path("levels");
      CR_ASSIGN(YAML::Node levels, m.Require("levels"));
      CR_ASSIGN(spec.date_levels, kYaml.GetStringList(levels, lpath, /*allow_empty=*/false));
      for (const auto& l : spec.date_levels) {
        if (l != "month" && l != "year" && l != "decade") {
          return kYaml.Invalid(lpath, levels, "unknown level '{}' (expected month, year, decade)",
                               l);
        }
      }
      break;
    }
  }
  return spec;
}

Status ParseIdentifier(const std::string& column, const YAML::Node& node, const std::string& path,
                       const std::string& base_dir, IdentifierRule* rule) {
  CR_ASSIGN(yaml::Map m,
            kYaml.ReadMap(node, path, {"transform", "secret", "mask", "keep_first", "keep_last"}));
  rule->column = column;
  // `{mask: {...}}` may sit under `transform:` or beside it.
  std::optional<YAML::Node> mask = m.Get("mask");
  std::string mask_path = m.Path("mask");
  auto transform = m.Get("transform");
  if (transform && transform->IsMap()) {
    if (mask) {
      return kYaml.Invalid(mask_path, m.Find("mask")->key_node,
                           "given both under transform and beside it");
    }
    CR_ASSIGN(yaml::Map t, kYaml.ReadMap(*transform, m.Path("transform"), {"mask"}));
    CR_ASSIGN(mask, t.Require("mask"));
    mask_path = t.Path("mask");
    rule->kind = IdentifierRule::Kind::kMask;
  } else if (transform) {
    CR_ASSIGN(rule->kind, kYaml.GetEnum(*transform, m.Path("transform"), kIdentifierTransforms,
                                        "identifier transform"));
  } else if (mask) {
    rule->kind = IdentifierRule::Kind::kMask;
  } else {
    return kYaml.Invalid(path, node, "needs a transform (pseudonymize, drop, redact or mask)");
  }
  using Kind = IdentifierRule::Kind;
  const std::string_view with = rule->kind == Kind::kPseudonymize ? "transform: pseudonymize"
                                : rule->kind == Kind::kDrop       ? "transform: drop"
                                : rule->kind == Kind::kRedact     ? "transform: redact"
                                                                  : "transform: mask";
  if (rule->kind == Kind::kPseudonymize) {
    CR_TRY(Refuse(m, {"mask", "keep_first", "keep_last"}, with));
    CR_ASSIGN(YAML::Node secret, m.Require("secret"));
    CR_ASSIGN(std::string file, kYaml.GetString(secret, m.Path("secret")));
    if (file.empty()) return kYaml.Invalid(m.Path("secret"), secret, "must name a file");
    rule->secret_path = JoinPath(base_dir, file);
    return Ok();
  }
  if (rule->kind != Kind::kMask) {
    return Refuse(m, {"secret", "mask", "keep_first", "keep_last"}, with);
  }
  CR_TRY(Refuse(m, {"secret"}, with));
  // The counts sit in the mask mapping or, without one, beside the transform.
  std::optional<yaml::Map> counts;
  if (mask) {
    CR_TRY(Refuse(m, {"keep_first", "keep_last"}, "a mask mapping"));
    CR_ASSIGN(counts, kYaml.ReadMap(*mask, mask_path, {"keep_first", "keep_last"}));
  } else {
    counts = m;
  }
  if (auto n = counts->Get("keep_first")) {
    CR_ASSIGN(rule->keep_first, IntIn(*n, counts->Path("keep_first"), 0, 1000));
  }
  if (auto n = counts->Get("keep_last")) {
    CR_ASSIGN(rule->keep_last, IntIn(*n, counts->Path("keep_last"), 0, 1000));
  }
  return Ok();
}

Status ParseAttribute(const std::string& column, const YAML::Node& node, const std::string& path,
                      const std::string& base_dir, AttributeRule* rule) {
  CR_ASSIGN(yaml::Map m,
            kYaml.ReadMap(node, path,
                          {"transform", "mechanism", "scale", "multiplicative", "rank_window",
                           "swap", "within", "generalize", "hierarchy", "hierarchy_separator",
                           "widths", "top_code", "bottom_code", "levels", "level"}));
  rule->column = column;
  AttributeTransform t = AttributeTransform::kKeep;
  if (auto n = m.Get("transform")) {
    CR_ASSIGN(t, kYaml.GetEnum(*n, m.Path("transform"), kAttributeTransforms,
                               "attribute transform"));
  }
  // Each transform's own options; the others' are refused.
  static constexpr std::string_view kNoise[] = {"mechanism", "scale", "multiplicative"};
  static constexpr std::string_view kSwap[] = {"rank_window", "swap", "within"};
  static constexpr std::string_view kGeneralize[] = {
      "generalize",  "hierarchy", "hierarchy_separator", "widths", "top_code",
      "bottom_code", "levels",    "level"};
  std::string with = "transform: ";
  for (const auto& [value, spelling] : kAttributeTransforms) {
    if (value == t) with += spelling;
  }
  if (t != AttributeTransform::kNoise) CR_TRY(Refuse(m, kNoise, with));
  if (t != AttributeTransform::kSwap) CR_TRY(Refuse(m, kSwap, with));
  if (t != AttributeTransform::kGeneralize) CR_TRY(Refuse(m, kGeneralize, with));
  switch (t) {
    case AttributeTransform::kKeep:
      rule->kind = AttributeRule::Kind::kKeep;
      return Ok();
    case AttributeTransform::kNoise:
      rule->kind = AttributeRule::Kind::kNoise;
      if (auto n = m.Get("multiplicative")) {
        CR_TRY(Refuse(m, {"mechanism", "scale"}, "multiplicative noise"));
        rule->noise.kind = NoiseSpec::Kind::kMultiplicative;
        CR_ASSIGN(rule->noise.scale, NumberIn(*n, m.Path("multiplicative"), 0, 10));
        return Ok();
      }
      rule->noise.kind = NoiseSpec::Kind::kLaplace;
      if (auto n = m.Get("mechanism")) {
        CR_ASSIGN(rule->noise.kind,
                  kYaml.GetEnum(*n, m.Path("mechanism"), kMechanisms, "mechanism"));
      }
      {
        CR_ASSIGN(YAML::Node scale, m.Require("scale"));
        CR_ASSIGN(rule->noise.scale, NumberIn(scale, m.Path("scale"), 0, 1e300));
      }
      return Ok();
    case AttributeTransform::kSwap: {
      bool rank = m.Find("rank_window") != nullptr;
      if (auto n = m.Get("swap")) {
        CR_ASSIGN(rank, kYaml.GetEnum(*n, m.Path("swap"), kSwaps, "swap"));
      }
      if (rank) {
        CR_TRY(Refuse(m, {"within"}, "swap: rank"));
        rule->kind = AttributeRule::Kind::kRankSwap;
        if (auto n = m.Get("rank_window")) {
          CR_ASSIGN(rule->rank_window, NumberIn(*n, m.Path("rank_window"), 1e-9, 1));
        }
      } else {
        CR_TRY(Refuse(m, {"rank_window"}, "swap: random"));
        rule->kind = AttributeRule::Kind::kRandomSwap;
        if (auto n = m.Get("within")) {
          CR_ASSIGN(rule->within, kYaml.GetStringList(*n, m.Path("within"), false));
        }
      }
      return Ok();
    }
    case AttributeTransform::kGeneralize:
      rule->kind = AttributeRule::Kind::kGeneralize;
      CR_ASSIGN(rule->hierarchy, ParseGeneralization(m, base_dir));
      if (auto n = m.Get("level")) {
        CR_ASSIGN(rule->level, IntIn(*n, m.Path("level"), 0, 64));
      }
      return Ok();
  }
  return Ok();
}

Status ParsePrivacy(const YAML::Node& node, PrivacyModels* models) {
  CR_ASSIGN(yaml::Map p, kYaml.ReadMap(node, "privacy", {"k", "l", "t", "suppression_limit"}));
  if (auto n = p.Get("k")) {
    CR_ASSIGN(models->k, IntIn(*n, p.Path("k"), 1, 1000000000));
  }
  if (auto n = p.Get("l")) {
    CR_ASSIGN(yaml::Map m, kYaml.ReadMap(*n, p.Path("l"), {"attribute", "kind", "l", "c"}));
    LDiversity l;
    CR_ASSIGN(YAML::Node attribute, m.Require("attribute"));
    CR_ASSIGN(l.attribute, kYaml.GetString(attribute, m.Path("attribute")));
    if (l.attribute.empty()) return kYaml.Invalid(m.Path("attribute"), attribute, "is empty");
    if (auto v = m.Get("kind")) {
      CR_ASSIGN(l.kind, kYaml.GetEnum(*v, m.Path("kind"), kLKinds, "kind"));
    }
    CR_ASSIGN(YAML::Node lv, m.Require("l"));
    CR_ASSIGN(l.l, NumberIn(lv, m.Path("l"), 1, 1e6));
    if (l.kind == LDiversity::Kind::kRecursive) {
      CR_ASSIGN(YAML::Node c, m.Require("c"));
      CR_ASSIGN(l.c, NumberIn(c, m.Path("c"), 1e-9, 1e9));
    } else if (const auto* c = m.Find("c")) {
      return kYaml.Invalid(m.Path("c"), c->key_node, "only recursive l-diversity takes c");
    }
    models->l = l;
  }
  if (auto n = p.Get("t")) {
    CR_ASSIGN(yaml::Map m, kYaml.ReadMap(*n, p.Path("t"), {"attribute", "closeness", "distance"}));
    TCloseness t;
    CR_ASSIGN(YAML::Node attribute, m.Require("attribute"));
    CR_ASSIGN(t.attribute, kYaml.GetString(attribute, m.Path("attribute")));
    if (t.attribute.empty()) return kYaml.Invalid(m.Path("attribute"), attribute, "is empty");
    CR_ASSIGN(YAML::Node closeness, m.Require("closeness"));
    CR_ASSIGN(t.t, NumberIn(closeness, m.Path("closeness"), 0, 1));
    if (auto v = m.Get("distance")) {
      CR_ASSIGN(t.distance, kYaml.GetEnum(*v, m.Path("distance"), kDistances, "distance"));
    }
    models->t = t;
  }
  if (models->l && models->t && models->l->attribute != models->t->attribute) {
    return kYaml.Invalid("privacy", node, "l and t must name the same attribute");
  }
  if (auto n = p.Get("suppression_limit")) {
    CR_ASSIGN(models->suppression_limit, NumberIn(*n, p.Path("suppression_limit"), 0, 1));
  }
  return Ok();
}

Result<AnonymizeConfig> ParseRoot(const YAML::Node& root, const std::string& base_dir) {
  CR_ASSIGN(yaml::Map top,
            kYaml.ReadMap(root, "",
                          {"separator", "quasi_identifiers", "sensitive", "identifiers",
                           "attributes", "privacy", "objective", "suppressed", "others"}));
  AnonymizeConfig cfg;
  // One treatment per column: a column under two sections would get whichever
  // the pipeline applies last, not what the author meant.
  std::map<std::string, std::string> treated;
  auto claim = [&](const yaml::Map& section, const yaml::Map::Entry& e) -> Status {
    if (e.key.empty()) return kYaml.Invalid(section.path(), e.key_node, "empty column name");
    auto [it, fresh] = treated.emplace(e.key, section.path());
    if (!fresh) {
      return kYaml.Invalid(section.Path(e.key), e.key_node, "column already has a treatment under {}",
                           it->second);
    }
    return Ok();
  };
  if (auto n = top.Get("separator")) {
    CR_ASSIGN(std::string sep, kYaml.GetString(*n, "separator"));
    if (sep == "\\t" || sep == "tab") sep = "\t";
    if (sep.size() != 1) return kYaml.Invalid("separator", *n, "must be one character");
    cfg.separator = sep[0];
  }
  CR_ASSIGN(YAML::Node qi_node, top.Require("quasi_identifiers"));
  CR_ASSIGN(yaml::Map qis, kYaml.ReadMap(qi_node, "quasi_identifiers"));
  if (qis.empty()) return kYaml.Invalid(qis.path(), qi_node, "must map at least one column");
  for (const auto& e : qis.entries()) {
    CR_TRY(claim(qis, e));
    CR_ASSIGN(yaml::Map m, kYaml.ReadMap(e.value, qis.Path(e.key),
                                         {"hierarchy", "hierarchy_separator", "generalize",
                                          "widths", "top_code", "bottom_code", "levels"}));
    QuasiIdentifier q;
    q.column = e.key;
    CR_ASSIGN(q.hierarchy, ParseGeneralization(m, base_dir));
    cfg.quasi_identifiers.push_back(std::move(q));
  }
  if (auto n = top.Get("sensitive")) {
    CR_ASSIGN(yaml::Map sensitive, kYaml.ReadMap(*n, "sensitive"));
    for (const auto& e : sensitive.entries()) {
      CR_TRY(claim(sensitive, e));
      if (!(e.value.IsNull() || (e.value.IsMap() && e.value.size() == 0))) {
        return kYaml.Invalid(sensitive.Path(e.key), e.value, "takes no options (write {{}})");
      }
      cfg.sensitive.push_back(e.key);
    }
  }
  if (auto n = top.Get("identifiers")) {
    CR_ASSIGN(yaml::Map identifiers, kYaml.ReadMap(*n, "identifiers"));
    for (const auto& e : identifiers.entries()) {
      CR_TRY(claim(identifiers, e));
      IdentifierRule r;
      CR_TRY(ParseIdentifier(e.key, e.value, identifiers.Path(e.key), base_dir, &r));
      cfg.identifiers.push_back(std::move(r));
    }
  }
  if (auto n = top.Get("attributes")) {
    CR_ASSIGN(yaml::Map attributes, kYaml.ReadMap(*n, "attributes"));
    for (const auto& e : attributes.entries()) {
      CR_TRY(claim(attributes, e));
      AttributeRule r;
      CR_TRY(ParseAttribute(e.key, e.value, attributes.Path(e.key), base_dir, &r));
      cfg.attributes.push_back(std::move(r));
    }
  }
  if (auto n = top.Get("privacy")) CR_TRY(ParsePrivacy(*n, &cfg.models));
  if (std::string sens = cfg.models.SensitiveAttribute(); !sens.empty()) {
    if (std::find(cfg.sensitive.begin(), cfg.sensitive.end(), sens) == cfg.sensitive.end()) {
      return kYaml.Invalid("privacy", *top.Get("privacy"),
                           "the models' attribute {} must be listed under sensitive", sens);
    }
  }
  if (auto n = top.Get("objective")) {
    CR_ASSIGN(cfg.objective, kYaml.GetEnum(*n, "objective", kObjectives, "objective"));
  }
  if (auto n = top.Get("suppressed")) {
    CR_ASSIGN(cfg.drop_suppressed, kYaml.GetEnum(*n, "suppressed", kSuppressed, "output"));
  }
  if (auto n = top.Get("others")) {
    CR_ASSIGN(cfg.others, kYaml.GetEnum(*n, "others", kOthers, "treatment"));
  }
  return cfg;
}

}  // namespace

Result<AnonymizeConfig> ParseConfig(std::string_view text, const std::string& base_dir) {
  CR_ASSIGN(YAML::Node root, kYaml.LoadOne(text));
  try {
    return ParseRoot(root, base_dir);
  } catch (const YAML::Exception& e) {
    return kYaml.FromException(e);
  }
}

Result<AnonymizeConfig> LoadConfig(const std::string& path) {
  CR_ASSIGN(std::string text, ReadFile(path));
  auto cfg = ParseConfig(text, DirName(path));
  if (!cfg) return Fail(cfg.error().code, "{}: {}", path, cfg.error().message);
  return cfg;
}

}  // namespace cr::anonymize
