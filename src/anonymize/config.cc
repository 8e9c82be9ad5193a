#include "anonymize/config.h"

#include <yaml-cpp/yaml.h>

#include <set>

#include "common/files.h"

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

namespace {

// Fails on keys the config does not know, so a typo never silently weakens a release.
Status OnlyKeys(const YAML::Node& n, const std::string& where,
                std::initializer_list<const char*> keys) {
  if (!n.IsMap()) return Fail(ErrorCode::BAD_INPUT, "config: {} must be a mapping", where);
  for (const auto& kv : n) {
    std::string k = kv.first.as<std::string>();
    bool known = false;
    for (const char* allowed : keys) known = known || k == allowed;
    if (!known) return Fail(ErrorCode::BAD_INPUT, "config: unknown field {}.{}", where, k);
  }
  return Ok();
}

template <typename T>
Result<T> Get(const YAML::Node& n, const std::string& where) {
  try {
    return n.as<T>();
  } catch (const YAML::Exception&) {
    return Fail(ErrorCode::BAD_INPUT, "config: {} has the wrong type", where);
  }
}

Result<HierarchySpec> ParseGeneralization(const YAML::Node& n, const std::string& where,
                                          const std::string& base_dir) {
  HierarchySpec spec;
  if (n["hierarchy"]) {
    spec.kind = HierarchySpec::Kind::kFile;
    CR_ASSIGN(std::string path, Get<std::string>(n["hierarchy"], where + ".hierarchy"));
    spec.path = JoinPath(base_dir, path);
    if (n["hierarchy_separator"]) {
      CR_ASSIGN(std::string sep,
                Get<std::string>(n["hierarchy_separator"], where + ".hierarchy_separator"));
      if (sep.size() != 1)
        return Fail(ErrorCode::BAD_INPUT, "config: {}.hierarchy_separator must be one character",
                    where);
      spec.separator = sep[0];
    }
    return spec;
  }
  if (!n["generalize"]) {
    return Fail(ErrorCode::BAD_INPUT, "config: {} needs `hierarchy:` or `generalize:`", where);
  }
  CR_ASSIGN(std::string kind, Get<std::string>(n["generalize"], where + ".generalize"));
  if (kind == "prefix") {
    spec.kind = HierarchySpec::Kind::kPrefix;
  } else if (kind == "intervals") {
    spec.kind = HierarchySpec::Kind::kIntervals;
    if (!n["widths"] || !n["widths"].IsSequence()) {
      return Fail(ErrorCode::BAD_INPUT, "config: {}.widths must be a list of numbers", where);
    }
    CR_ASSIGN(spec.widths, Get<std::vector<double>>(n["widths"], where + ".widths"));
    if (n["bottom_code"]) {
      CR_ASSIGN(double b, Get<double>(n["bottom_code"], where + ".bottom_code"));
      spec.bottom_code = b;
    }
    if (n["top_code"]) {
      CR_ASSIGN(double t, Get<double>(n["top_code"], where + ".top_code"));
      spec.top_code = t;
    }
  } else if (kind == "date") {
    spec.kind = HierarchySpec::Kind::kDate;
    if (!n["levels"] || !n["levels"].IsSequence()) {
      return Fail(ErrorCode::BAD_INPUT, "config: {}.levels must be a list (month, year, decade)",
                  where);
    }
    CR_ASSIGN(spec.date_levels, Get<std::vector<std::string>>(n["levels"], where + ".levels"));
  } else {
    return Fail(ErrorCode::BAD_INPUT, "config: {}.generalize must be prefix, intervals or date",
                where);
  }
  return spec;
}

Result<double> Number(const YAML::Node& n, const std::string& where, double lo, double hi) {
  CR_ASSIGN(double v, Get<double>(n, where));
  if (!(v >= lo && v <= hi))
    return Fail(ErrorCode::BAD_INPUT, "config: {} must be in [{}, {}]", where, lo, hi);
  return v;
}

Status ParseIdentifier(const std::string& column, const YAML::Node& n, const std::string& base_dir,
                       IdentifierRule* rule) {
  const std::string where = "identifiers." + column;
  rule->column = column;
  CR_TRY(OnlyKeys(n, where, {"transform", "secret", "mask", "keep_first", "keep_last"}));
  // `{mask: {...}}` may sit under `transform:` or beside it.
  const bool nested = n["transform"] && n["transform"].IsMap();
  const YAML::Node mask = nested ? n["transform"]["mask"] : n["mask"];
  std::string t;
  if (nested) {
    if (!mask)
      return Fail(ErrorCode::BAD_INPUT,
                  "config: {}.transform must be pseudonymize, drop, redact or {{mask: ...}}",
                  where);
    t = "mask";
  } else if (n["transform"]) {
    CR_ASSIGN(t, Get<std::string>(n["transform"], where + ".transform"));
  } else if (mask) {
    t = "mask";
  } else {
    return Fail(ErrorCode::BAD_INPUT, "config: {} needs a transform", where);
  }
  if (t == "pseudonymize") {
    rule->kind = IdentifierRule::Kind::kPseudonymize;
    if (!n["secret"])
      return Fail(ErrorCode::BAD_INPUT, "config: {}.secret is required to pseudonymize", where);
    CR_ASSIGN(std::string path, Get<std::string>(n["secret"], where + ".secret"));
    rule->secret_path = JoinPath(base_dir, path);
  } else if (t == "drop") {
    rule->kind = IdentifierRule::Kind::kDrop;
  } else if (t == "redact") {
    rule->kind = IdentifierRule::Kind::kRedact;
  } else if (t == "mask") {
    rule->kind = IdentifierRule::Kind::kMask;
    YAML::Node m = mask ? mask : n;
    if (mask) CR_TRY(OnlyKeys(mask, where + ".mask", {"keep_first", "keep_last"}));
    if (m["keep_first"]) {
      CR_ASSIGN(double v, Number(m["keep_first"], where + ".keep_first", 0, 1000));
      rule->keep_first = static_cast<int>(v);
    }
    if (m["keep_last"]) {
      CR_ASSIGN(double v, Number(m["keep_last"], where + ".keep_last", 0, 1000));
      rule->keep_last = static_cast<int>(v);
    }
  } else {
    return Fail(ErrorCode::BAD_INPUT,
                "config: {}.transform must be pseudonymize, drop, redact or mask", where);
  }
  return Ok();
}

Status ParseAttribute(const std::string& column, const YAML::Node& n, const std::string& base_dir,
                      AttributeRule* rule) {
  const std::string where = "attributes." + column;
  rule->column = column;
  CR_TRY(OnlyKeys(n, where,
                  {"transform", "mechanism", "scale", "multiplicative", "rank_window", "swap",
                   "within", "generalize", "hierarchy", "hierarchy_separator", "widths", "top_code",
                   "bottom_code", "levels", "level"}));
  std::string t = "keep";
  if (n["transform"]) {
    CR_ASSIGN(t, Get<std::string>(n["transform"], where + ".transform"));
  }
  if (t == "keep") {
    rule->kind = AttributeRule::Kind::kKeep;
  } else if (t == "noise") {
    rule->kind = AttributeRule::Kind::kNoise;
    if (n["multiplicative"]) {
      rule->noise.kind = NoiseSpec::Kind::kMultiplicative;
      CR_ASSIGN(rule->noise.scale, Number(n["multiplicative"], where + ".multiplicative", 0, 10));
    } else {
      std::string mech = "laplace";
      if (n["mechanism"]) {
        CR_ASSIGN(mech, Get<std::string>(n["mechanism"], where + ".mechanism"));
      }
      if (mech == "laplace")
        rule->noise.kind = NoiseSpec::Kind::kLaplace;
      else if (mech == "gaussian")
        rule->noise.kind = NoiseSpec::Kind::kGaussian;
      else
        return Fail(ErrorCode::BAD_INPUT, "config: {}.mechanism must be laplace or gaussian",
                    where);
      if (!n["scale"]) return Fail(ErrorCode::BAD_INPUT, "config: {}.scale is required", where);
      CR_ASSIGN(rule->noise.scale, Number(n["scale"], where + ".scale", 0, 1e300));
    }
  } else if (t == "swap") {
    std::string how = n["rank_window"] ? "rank" : "random";
    if (n["swap"]) {
      CR_ASSIGN(how, Get<std::string>(n["swap"], where + ".swap"));
    }
    if (how == "rank") {
      rule->kind = AttributeRule::Kind::kRankSwap;
      if (n["rank_window"]) {
        CR_ASSIGN(rule->rank_window, Number(n["rank_window"], where + ".rank_window", 1e-9, 1));
      }
    } else if (how == "random") {
      rule->kind = AttributeRule::Kind::kRandomSwap;
      if (n["within"]) {
        CR_ASSIGN(rule->within, Get<std::vector<std::string>>(n["within"], where + ".within"));
      }
    } else {
      return Fail(ErrorCode::BAD_INPUT, "config: {}.swap must be rank or random", where);
    }
  } else if (t == "generalize") {
    rule->kind = AttributeRule::Kind::kGeneralize;
    CR_ASSIGN(rule->hierarchy, ParseGeneralization(n, where, base_dir));
    if (n["level"]) {
      CR_ASSIGN(double l, Number(n["level"], where + ".level", 0, 64));
      rule->level = static_cast<int>(l);
    }
  } else {
    return Fail(ErrorCode::BAD_INPUT,
                "config: {}.transform must be keep, noise, swap or generalize", where);
  }
  return Ok();
}

Status ParsePrivacy(const YAML::Node& p, PrivacyModels* m) {
  CR_TRY(OnlyKeys(p, "privacy", {"k", "l", "t", "suppression_limit"}));
  if (p["k"]) {
    CR_ASSIGN(double k, Number(p["k"], "privacy.k", 1, 1e9));
    m->k = static_cast<int>(k);
  }
  if (p["l"]) {
    CR_TRY(OnlyKeys(p["l"], "privacy.l", {"attribute", "kind", "l", "c"}));
    LDiversity l;
    if (!p["l"]["attribute"])
      return Fail(ErrorCode::BAD_INPUT, "config: privacy.l.attribute is required");
    CR_ASSIGN(l.attribute, Get<std::string>(p["l"]["attribute"], "privacy.l.attribute"));
    std::string kind = "distinct";
    if (p["l"]["kind"]) {
      CR_ASSIGN(kind, Get<std::string>(p["l"]["kind"], "privacy.l.kind"));
    }
    if (kind == "distinct")
      l.kind = LDiversity::Kind::kDistinct;
    else if (kind == "entropy")
      l.kind = LDiversity::Kind::kEntropy;
    else if (kind == "recursive")
      l.kind = LDiversity::Kind::kRecursive;
    else
      return Fail(ErrorCode::BAD_INPUT,
                  "config: privacy.l.kind must be distinct, entropy or recursive");
    if (!p["l"]["l"]) return Fail(ErrorCode::BAD_INPUT, "config: privacy.l.l is required");
    CR_ASSIGN(l.l, Number(p["l"]["l"], "privacy.l.l", 1, 1e6));
    if (l.kind == LDiversity::Kind::kRecursive) {
      if (!p["l"]["c"])
        return Fail(ErrorCode::BAD_INPUT,
                    "config: privacy.l.c is required for recursive l-diversity");
      CR_ASSIGN(l.c, Number(p["l"]["c"], "privacy.l.c", 1e-9, 1e9));
    }
    m->l = l;
  }
  if (p["t"]) {
    CR_TRY(OnlyKeys(p["t"], "privacy.t", {"attribute", "closeness", "distance"}));
    TCloseness t;
    if (!p["t"]["attribute"])
      return Fail(ErrorCode::BAD_INPUT, "config: privacy.t.attribute is required");
    CR_ASSIGN(t.attribute, Get<std::string>(p["t"]["attribute"], "privacy.t.attribute"));
    if (!p["t"]["closeness"])
      return Fail(ErrorCode::BAD_INPUT, "config: privacy.t.closeness is required");
    CR_ASSIGN(t.t, Number(p["t"]["closeness"], "privacy.t.closeness", 0, 1));
    if (p["t"]["distance"]) {
      CR_ASSIGN(std::string d, Get<std::string>(p["t"]["distance"], "privacy.t.distance"));
      if (d == "equal")
        t.distance = TCloseness::Distance::kEqual;
      else if (d == "ordered")
        t.distance = TCloseness::Distance::kOrdered;
      else
        return Fail(ErrorCode::BAD_INPUT, "config: privacy.t.distance must be equal or ordered");
    }
    m->t = t;
  }
  if (m->l && m->t && m->l->attribute != m->t->attribute) {
    return Fail(ErrorCode::BAD_INPUT,
                "config: privacy.l and privacy.t must name the same attribute");
  }
  if (p["suppression_limit"]) {
    CR_ASSIGN(m->suppression_limit,
              Number(p["suppression_limit"], "privacy.suppression_limit", 0, 1));
  }
  return Ok();
}

Result<AnonymizeConfig> ParseNode(const YAML::Node& root, const std::string& base_dir) {
  AnonymizeConfig cfg;
  CR_TRY(OnlyKeys(root, "(top level)",
                  {"separator", "quasi_identifiers", "sensitive", "identifiers", "attributes",
                   "privacy", "objective", "suppressed"}));
  std::set<std::string> seen;
  auto claim = [&](const std::string& col) -> Status {
    if (!seen.insert(col).second)
      return Fail(ErrorCode::BAD_INPUT, "config: column {} is listed twice", col);
    return Ok();
  };
  if (root["separator"]) {
    CR_ASSIGN(std::string sep, Get<std::string>(root["separator"], "separator"));
    if (sep == "\\t" || sep == "tab") sep = "\t";
    if (sep.size() != 1)
      return Fail(ErrorCode::BAD_INPUT, "config: separator must be one character");
    cfg.separator = sep[0];
  }
  if (!root["quasi_identifiers"] || !root["quasi_identifiers"].IsMap() ||
      root["quasi_identifiers"].size() == 0) {
    return Fail(ErrorCode::BAD_INPUT, "config: quasi_identifiers must map at least one column");
  }
  for (const auto& kv : root["quasi_identifiers"]) {
    QuasiIdentifier q;
    q.column = kv.first.as<std::string>();
    CR_TRY(claim(q.column));
    const std::string where = "quasi_identifiers." + q.column;
    CR_TRY(OnlyKeys(kv.second, where,
                    {"hierarchy", "hierarchy_separator", "generalize", "widths", "top_code",
                     "bottom_code", "levels"}));
    CR_ASSIGN(q.hierarchy, ParseGeneralization(kv.second, where, base_dir));
    cfg.quasi_identifiers.push_back(std::move(q));
  }
  if (root["sensitive"]) {
    if (!root["sensitive"].IsMap())
      return Fail(ErrorCode::BAD_INPUT, "config: sensitive must be a mapping");
    for (const auto& kv : root["sensitive"]) {
      std::string col = kv.first.as<std::string>();
      CR_TRY(claim(col));
      if (kv.second.IsMap() && kv.second.size() > 0) {
        return Fail(ErrorCode::BAD_INPUT, "config: sensitive.{} takes no options", col);
      }
      cfg.sensitive.push_back(col);
    }
  }
  if (root["identifiers"]) {
    if (!root["identifiers"].IsMap())
      return Fail(ErrorCode::BAD_INPUT, "config: identifiers must be a mapping");
    for (const auto& kv : root["identifiers"]) {
      IdentifierRule r;
      std::string col = kv.first.as<std::string>();
      CR_TRY(claim(col));
      CR_TRY(ParseIdentifier(col, kv.second, base_dir, &r));
      cfg.identifiers.push_back(std::move(r));
    }
  }
  if (root["attributes"]) {
    if (!root["attributes"].IsMap())
      return Fail(ErrorCode::BAD_INPUT, "config: attributes must be a mapping");
    for (const auto& kv : root["attributes"]) {
      AttributeRule r;
      std::string col = kv.first.as<std::string>();
      CR_TRY(claim(col));
      CR_TRY(ParseAttribute(col, kv.second, base_dir, &r));
      cfg.attributes.push_back(std::move(r));
    }
  }
  if (root["privacy"]) {
    CR_TRY(ParsePrivacy(root["privacy"], &cfg.models));
  }
  std::string sens = cfg.models.SensitiveAttribute();
  if (!sens.empty() &&
      std::find(cfg.sensitive.begin(), cfg.sensitive.end(), sens) == cfg.sensitive.end()) {
    return Fail(ErrorCode::BAD_INPUT,
                "config: the models' attribute {} must be listed under sensitive", sens);
  }
  if (root["objective"]) {
    CR_ASSIGN(std::string o, Get<std::string>(root["objective"], "objective"));
    if (o == "non_uniform_entropy")
      cfg.objective = Objective::kNonUniformEntropy;
    else if (o == "loss")
      cfg.objective = Objective::kLoss;
    else if (o == "discernibility")
      cfg.objective = Objective::kDiscernibility;
    else
      return Fail(ErrorCode::BAD_INPUT,
                  "config: objective must be non_uniform_entropy, loss or discernibility");
  }
  if (root["suppressed"]) {
    CR_ASSIGN(std::string s, Get<std::string>(root["suppressed"], "suppressed"));
    if (s == "drop")
      cfg.drop_suppressed = true;
    else if (s != "mask")
      return Fail(ErrorCode::BAD_INPUT, "config: suppressed must be drop or mask");
  }
  return cfg;
}

}  // namespace

Result<AnonymizeConfig> ParseConfig(std::string_view yaml, const std::string& base_dir) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return Fail(ErrorCode::BAD_INPUT, "config is not valid YAML (line {})", e.mark.line + 1);
  }
  try {
    return ParseNode(root, base_dir);
  } catch (const YAML::Exception& e) {
    return Fail(ErrorCode::BAD_INPUT, "config: malformed entry (line {})", e.mark.line + 1);
  }
}

Result<AnonymizeConfig> LoadConfig(const std::string& path) {
  CR_ASSIGN(std::string text, ReadFile(path));
  auto cfg = ParseConfig(text, DirName(path));
  if (!cfg) return Fail(cfg.error().code, "{}: {}", path, cfg.error().message);
  return cfg;
}

}  // namespace cr::anonymize
