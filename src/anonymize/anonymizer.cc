#include "anonymize/anonymizer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <numeric>
#include <unordered_map>

#include "anonymize/hierarchy.h"
#include "anonymize/lattice.h"
#include "anonymize/metrics.h"
#include "anonymize/transforms.h"
#include "common/files.h"
#include "crypto/crypto.h"
#include "engine/engine.h"

namespace cr::anonymize {

namespace {

using nlohmann::json;

Result<size_t> ColumnIndex(const Table& t, const std::string& name) {
  int i = t.Find(name);
  if (i < 0)
    return Fail(ErrorCode::BAD_INPUT, "config names column {}, which the input does not have",
                name);
  return static_cast<size_t>(i);
}

std::string Percent(double x) { return fmt::format("{:.2f}%", 100 * x); }

json RiskJson(const Risk& r) {
  return {{"prosecutor_max", r.max},
          {"prosecutor_avg", r.average},
          {"sample_uniques", r.sample_uniques},
          {"classes", r.classes},
          {"records", r.records}};
}

// The sensitive attribute's codes, global counts and, for ordered EMD, ranks.
struct Sensitive {
  const Column* column = nullptr;
  std::vector<uint32_t> counts;
  std::vector<uint32_t> rank;
  bool ordered = false;
};

Result<Sensitive> PrepareSensitive(const AnonymizeConfig& cfg, const Table& input) {
  Sensitive s;
  std::string name = cfg.models.SensitiveAttribute();
  if (name.empty()) return s;
  CR_ASSIGN(size_t idx, ColumnIndex(input, name));
  s.column = &input.column(idx);
  s.counts.assign(s.column->dict.size(), 0);
  for (uint32_t c : s.column->codes) ++s.counts[c];
  if (cfg.models.t) {
    std::vector<double> num(s.column->dict.size());
    bool numeric = true;
    for (size_t i = 0; i < num.size() && numeric; ++i) {
      auto v = ParseNumber(s.column->dict[i]);
      numeric = v.has_value();
      if (v) num[i] = *v;
    }
    auto d = cfg.models.t->distance;
    if (d == TCloseness::Distance::kOrdered && !numeric) {
      return Fail(ErrorCode::BAD_INPUT,
                  "privacy.t: ordered distance needs a numeric attribute ({} is not)", name);
    }
    s.ordered =
        d == TCloseness::Distance::kOrdered || (d == TCloseness::Distance::kAuto && numeric);
    if (s.ordered) {
      std::vector<uint32_t> order(num.size());
      std::iota(order.begin(), order.end(), 0);
      std::sort(order.begin(), order.end(),
                [&](uint32_t a, uint32_t b) { return num[a] < num[b]; });
      s.rank.resize(num.size());
      for (uint32_t i = 0; i < order.size(); ++i) s.rank[order[i]] = i;
    }
  }
  return s;
}

Result<ClassChecker> MakeChecker(const AnonymizeConfig& cfg, const Sensitive& s) {
  return ClassChecker::Create(cfg.models, s.counts, s.rank, s.ordered);
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// Every input column needs a treatment and every treated column must exist.
// Returns the input columns to leave out (`others: remove`), in input order.
Result<std::vector<std::string>> CheckTreatments(const AnonymizeConfig& cfg, const Table& input) {
  std::vector<std::string> missing;
  auto need = [&](const std::string& column) {
    if (input.Find(column) < 0 &&
        std::find(missing.begin(), missing.end(), column) == missing.end()) {
      missing.push_back(column);
    }
  };
  for (const auto& q : cfg.quasi_identifiers) need(q.column);
  for (const auto& s : cfg.sensitive) need(s);
  for (const auto& r : cfg.identifiers) need(r.column);
  for (const auto& r : cfg.attributes) {
    need(r.column);
    for (const auto& w : r.within) need(w);
  }
  if (!missing.empty()) {
    return Fail(ErrorCode::BAD_INPUT, "the config names {} column(s) the input does not have: {}",
                missing.size(), JoinNames(missing));
  }
  std::vector<std::string> untreated;
  for (const auto& c : input.columns()) {
    if (!cfg.Declares(c.name)) untreated.push_back(c.name);
  }
  if (!untreated.empty() && cfg.others == Others::kRefuse) {
    return Fail(ErrorCode::BAD_INPUT,
                "{} input column(s) have no treatment in the config: {}; list each under "
                "quasi_identifiers, sensitive, identifiers or attributes, or set `others: remove` "
                "to leave them out of the release",
                untreated.size(), JoinNames(untreated));
  }
  return untreated;
}

std::string Share(double x) { return fmt::format("{:.4g}", x); }

// Why no node satisfies the models, and the smallest change that would help.
// The top of the lattice (every quasi-identifier fully generalised) is one class
// holding every record; the search fails only when that class violates a
// model, so what the whole input lacks is what to relax. For k and distinct l
// the top also suppresses least, so there raising the suppression limit cannot
// help; for the other models a lower node with some suppression may.
std::string WhatToRelax(const AnonymizeConfig& cfg, uint64_t n, const Sensitive& sens,
                        const SearchResult& result, uint64_t max_suppressed) {
  const PrivacyModels& m = cfg.models;
  std::vector<std::string> fixes;
  if (static_cast<uint64_t>(m.k) > n) {
    fixes.push_back(fmt::format(
        "k={} is more than the {} records, so even one class of all of them is too small: "
        "lower k to at most {}",
        m.k, n, n));
  }
  if (m.l && sens.column) {
    const LDiversity& l = *m.l;
    std::vector<uint32_t> counts;
    for (uint32_t c : sens.counts) {
      if (c) counts.push_back(c);
    }
    std::sort(counts.begin(), counts.end(), std::greater<>());
    const size_t distinct = counts.size();
    switch (l.kind) {
      case LDiversity::Kind::kDistinct:
        if (static_cast<double>(distinct) < l.l) {
          fixes.push_back(fmt::format(
              "distinct l={} needs {} values of {} in every class and the input has {}: lower l "
              "to at most {}",
              l.l, l.l, l.attribute, distinct, distinct));
        }
        break;
      case LDiversity::Kind::kEntropy: {
        double h = 0;
        for (uint32_t c : counts) {
          double p = c / static_cast<double>(n);
          h -= p * std::log(p);
        }
        const double reach = std::exp(h);
        if (reach + 1e-12 < l.l) {
          fixes.push_back(fmt::format(
              "entropy l={} on {}: all records together reach only l={:.3f}: lower l to at most "
              "{:.3f}",
              l.l, l.attribute, std::floor(reach * 1000) / 1000, std::floor(reach * 1000) / 1000));
        }
        break;
      }
      case LDiversity::Kind::kRecursive: {
        const size_t li = static_cast<size_t>(std::ceil(l.l));
        if (distinct < li) {
          fixes.push_back(fmt::format(
              "recursive l={} needs {} values of {} in every class and the input has {}: lower l "
              "to at most {}",
              l.l, li, l.attribute, distinct, distinct));
        } else {
          uint64_t tail = 0;
          for (size_t i = li - 1; i < distinct; ++i) tail += counts[i];
          const double need = static_cast<double>(counts[0]) / static_cast<double>(tail);
          if (!(counts[0] < l.c * static_cast<double>(tail))) {
            fixes.push_back(fmt::format(
                "recursive (c={}, l={}) on {}: all records together need c above {:.4g}: raise c "
                "or lower l",
                l.c, l.l, l.attribute, need));
          }
        }
        break;
      }
    }
  }
  if (result.least_suppressed < n && result.least_suppressed > max_suppressed) {
    const double share = static_cast<double>(result.least_suppressed) / static_cast<double>(n);
    fixes.push_back(fmt::format(
        "the best transformation checked needs {} of the records suppressed ({} of {}): raise "
        "suppression_limit to at least {}",
        Percent(share), result.least_suppressed, n, Share(std::ceil(share * 1e4) / 1e4)));
  } else if (!fixes.empty()) {
    fixes.back() += " (raising suppression_limit does not help)";
  }
  if (fixes.empty()) fixes.push_back("relax k, l, t or suppression_limit");
  std::string out;
  for (const auto& f : fixes) out += (out.empty() ? "" : "; ") + f;
  return out;
}

}  // namespace

Result<Release> Anonymize(const AnonymizeConfig& cfg, const Table& input,
                          const AnonymizeOptions& options) {
  SodiumRandom sodium;
  RandomSource& random = options.random ? *options.random : sodium;
  const size_t n = input.num_rows();
  if (n == 0) return Fail(ErrorCode::BAD_INPUT, "the input has no records");
  CR_ASSIGN(const std::vector<std::string> removed, CheckTreatments(cfg, input));

  // Quasi-identifiers: hierarchies bound to the input's dictionaries.
  std::vector<size_t> qi_idx;
  std::vector<Hierarchy> hierarchies;
  for (const auto& q : cfg.quasi_identifiers) {
    CR_ASSIGN(size_t idx, ColumnIndex(input, q.column));
    CR_ASSIGN(Hierarchy h, BuildHierarchy(q.hierarchy, input.column(idx).dict, q.column));
    qi_idx.push_back(idx);
    hierarchies.push_back(std::move(h));
  }
  for (const auto& s : cfg.sensitive) CR_TRY(ColumnIndex(input, s));
  CR_ASSIGN(Sensitive sens, PrepareSensitive(cfg, input));
  CR_ASSIGN(ClassChecker checker, MakeChecker(cfg, sens));

  SearchInput in;
  for (size_t i = 0; i < qi_idx.size(); ++i) {
    in.qis.push_back(
        {cfg.quasi_identifiers[i].column, &input.column(qi_idx[i]).codes, &hierarchies[i]});
  }
  if (sens.column) {
    in.sensitive = &sens.column->codes;
    in.sensitive_values = static_cast<uint32_t>(sens.column->dict.size());
  }
  in.checker = &checker;
  in.models = cfg.models;
  in.objective = cfg.objective;
  CR_ASSIGN(auto search, LatticeSearch::Create(std::move(in)));
  SearchResult result = search->Run();
  if (!result.found) {
    return Fail(ErrorCode::THRESHOLD_NOT_MET,
                "no generalisation of the quasi-identifiers satisfies the privacy models with at "
                "most {} of {} records suppressed (suppression_limit {}): {}",
                search->max_suppressed(), n, cfg.models.suppression_limit,
                WhatToRelax(cfg, n, sens, result, search->max_suppressed()));
  }
  const std::vector<int>& levels = result.best.levels;
  std::vector<uint8_t> suppressed = search->SuppressedRecords(levels);
  const uint64_t num_suppressed =
      std::accumulate(suppressed.begin(), suppressed.end(), uint64_t{0});
  Risk before = RiskOfClasses(search->ClassSizes(std::vector<int>(levels.size(), 0)));

  Release rel;
  Table out = input;
  // Quasi-identifiers at the chosen level; suppressed records get '*' everywhere.
  for (size_t i = 0; i < qi_idx.size(); ++i) {
    Column& c = out.mutable_column(qi_idx[i]);
    const auto& level = hierarchies[i].levels[levels[i]];
    std::vector<std::string> dict = level.labels;
    uint32_t star = 0;
    if (num_suppressed && !cfg.drop_suppressed) {
      auto it = std::find(dict.begin(), dict.end(), "*");
      star = static_cast<uint32_t>(it - dict.begin());
      if (it == dict.end()) dict.push_back("*");
    }
    for (size_t r = 0; r < n; ++r) c.codes[r] = suppressed[r] ? star : level.of_value[c.codes[r]];
    c.dict = std::move(dict);
  }
  json transforms = json::object();
  std::vector<size_t> drop_columns;
  for (const auto& rule : cfg.identifiers) {
    CR_ASSIGN(size_t idx, ColumnIndex(input, rule.column));
    std::vector<std::string> values = out.Values(idx);
    switch (rule.kind) {
      case IdentifierRule::Kind::kDrop:
        drop_columns.push_back(idx);
        transforms[rule.column] = "drop";
        continue;
      case IdentifierRule::Kind::kRedact:
        for (auto& v : values) v = "*";
        transforms[rule.column] = "redact";
        break;
      case IdentifierRule::Kind::kMask:
        for (auto& v : values) v = MaskValue(v, rule.keep_first, rule.keep_last);
        transforms[rule.column] = {
            {"mask", {{"keep_first", rule.keep_first}, {"keep_last", rule.keep_last}}}};
        break;
      case IdentifierRule::Kind::kPseudonymize: {
        CR_ASSIGN(crypto::SecureBuffer secret, crypto::LoadSharedSecret(rule.secret_path));
        Pseudonymizer p(secret, rule.column);
        for (auto& v : values) {
          if (!v.empty()) v = p.Pseudonym(v);
        }
        transforms[rule.column] = "pseudonymize";
        break;
      }
    }
    out.SetValues(idx, values);
  }
  for (const auto& rule : cfg.attributes) {
    CR_ASSIGN(size_t idx, ColumnIndex(input, rule.column));
    if (rule.kind == AttributeRule::Kind::kKeep) continue;
    std::vector<std::string> values = out.Values(idx);
    switch (rule.kind) {
      case AttributeRule::Kind::kKeep:
        break;
      case AttributeRule::Kind::kNoise:
        CR_TRY(AddNoise(&values, rule.noise, random, rule.column));
        transforms[rule.column] = {
            {"noise", rule.noise.kind == NoiseSpec::Kind::kLaplace    ? "laplace"
                      : rule.noise.kind == NoiseSpec::Kind::kGaussian ? "gaussian"
                                                                      : "multiplicative"},
            {"scale", rule.noise.scale}};
        break;
      case AttributeRule::Kind::kRankSwap:
        CR_TRY(RankSwap(&values, rule.rank_window, random, rule.column));
        transforms[rule.column] = {{"swap", "rank"}, {"rank_window", rule.rank_window}};
        break;
      case AttributeRule::Kind::kRandomSwap: {
        std::vector<std::string> strata;
        if (!rule.within.empty()) {
          strata.assign(n, std::string());
          for (const auto& w : rule.within) {
            CR_ASSIGN(size_t widx, ColumnIndex(input, w));
            for (size_t r = 0; r < n; ++r) strata[r] += input.column(widx).Value(r) + '\x1f';
          }
        }
        RandomSwap(&values, strata, random);
        transforms[rule.column] = {{"swap", "random"}, {"within", rule.within}};
        break;
      }
      case AttributeRule::Kind::kGeneralize: {
        CR_ASSIGN(Hierarchy h, BuildHierarchy(rule.hierarchy, input.column(idx).dict, rule.column));
        if (rule.level > h.height()) {
          return Fail(ErrorCode::BAD_INPUT,
                      "attributes.{}.level {} is above the hierarchy's height {}", rule.column,
                      rule.level, h.height());
        }
        const Column& src = input.column(idx);
        for (size_t r = 0; r < n; ++r) values[r] = h.Label(rule.level, src.codes[r]);
        transforms[rule.column] = {{"generalize", "fixed"}, {"level", rule.level}};
        break;
      }
    }
    out.SetValues(idx, values);
  }
  // Released classes (records not suppressed), counted on the output codes.
  std::map<uint64_t, uint64_t> histogram;
  uint64_t released_classes = 0, min_class = 0;
  {
    std::unordered_map<std::string, uint64_t> classes;
    std::string key;
    for (size_t r = 0; r < n; ++r) {
      if (suppressed[r]) continue;
      key.clear();
      for (size_t idx : qi_idx) {
        uint32_t code = out.column(idx).codes[r];
        key.append(reinterpret_cast<const char*>(&code), sizeof code);
      }
      ++classes[key];
    }
    for (const auto& [k, size] : classes) {
      ++histogram[size];
      min_class = min_class == 0 ? size : std::min(min_class, size);
    }
    released_classes = classes.size();
  }
  if (cfg.drop_suppressed && num_suppressed) {
    std::vector<uint32_t> keep;
    for (size_t r = 0; r < n; ++r) {
      if (!suppressed[r]) keep.push_back(static_cast<uint32_t>(r));
    }
    out.SelectRows(keep);
  }
  for (const auto& name : removed) drop_columns.push_back(static_cast<size_t>(input.Find(name)));
  std::sort(drop_columns.rbegin(), drop_columns.rend());
  for (size_t idx : drop_columns) out.RemoveColumn(idx);

  json& rep = rel.report;
  rep["levels"] = json::object();
  rep["heights"] = json::object();
  for (size_t i = 0; i < levels.size(); ++i) {
    rep["levels"][cfg.quasi_identifiers[i].column] = levels[i];
    rep["heights"][cfg.quasi_identifiers[i].column] = search->heights()[i];
  }
  rep["records_in"] = n;
  rep["records_out"] = out.num_rows();
  rep["suppressed"] = num_suppressed;
  rep["suppressed_output"] = cfg.drop_suppressed ? "drop" : "mask";
  rep["suppression_limit"] = cfg.models.suppression_limit;
  rep["max_suppressed"] = search->max_suppressed();
  rep["objective"] = std::string(ObjectiveName(cfg.objective));
  rep["metrics"] = {{"non_uniform_entropy", result.best.non_uniform_entropy},
                    {"loss", result.best.loss},
                    {"discernibility", result.best.discernibility},
                    {"avg_class_size", released_classes ? static_cast<double>(n - num_suppressed) /
                                                              static_cast<double>(released_classes)
                                                        : 0.0}};
  // [size, number of classes of that size], by size.
  json hist = json::array();
  for (const auto& [size, count] : histogram) hist.push_back({size, count});
  rep["classes"] = {{"count", released_classes}, {"min_size", min_class}, {"histogram", hist}};
  rep["risk_before"] = RiskJson(before);
  rep["search"] = {{"lattice_nodes", result.nodes}, {"nodes_evaluated", result.evaluated}};
  json models = json::object();
  models["k_anonymity"] = {{"k", cfg.models.k}, {"satisfied", true}};
  if (cfg.models.l) {
    const auto& l = *cfg.models.l;
    models["l_diversity"] = {{"attribute", l.attribute},
                             {"kind", l.kind == LDiversity::Kind::kDistinct  ? "distinct"
                                      : l.kind == LDiversity::Kind::kEntropy ? "entropy"
                                                                             : "recursive"},
                             {"l", l.l},
                             {"satisfied", true}};
    if (l.kind == LDiversity::Kind::kRecursive) models["l_diversity"]["c"] = l.c;
  }
  if (cfg.models.t) {
    models["t_closeness"] = {{"attribute", cfg.models.t->attribute},
                             {"t", cfg.models.t->t},
                             {"distance", sens.ordered ? "ordered" : "equal"},
                             {"satisfied", true}};
  }
  rep["models"] = models;
  rep["transforms"] = transforms;
  // Input columns without a treatment, left out under `others: remove`.
  rep["removed"] = removed;
  rel.table = std::move(out);

  std::string lv;
  for (size_t i = 0; i < levels.size(); ++i) {
    lv += fmt::format("{}{}={}/{}", i ? " " : "", cfg.quasi_identifiers[i].column, levels[i],
                      search->heights()[i]);
  }
  rel.summary = fmt::format(
      "levels: {}\nsuppressed: {} of {} records (limit {}, {})\nk achieved: {} (required {})\n"
      "risk before: prosecutor max {:.4f}, avg {:.4f}, sample uniques {}\n",
      lv, num_suppressed, n, search->max_suppressed(), cfg.drop_suppressed ? "dropped" : "masked",
      min_class, cfg.models.k, before.max, before.average, Percent(before.sample_uniques));
  if (!removed.empty()) {
    rel.summary += fmt::format("removed (no treatment, others: remove): {}\n", JoinNames(removed));
  }
  return rel;
}

Status VerifyRelease(const AnonymizeConfig& cfg, const Table& input, std::string_view written,
                     char separator, nlohmann::json* report) {
  CsvOptions opt;
  opt.separator = separator;
  auto reread = ReadCsv(written, opt);
  if (!reread)
    return Fail(ErrorCode::INTERNAL, "the written release does not parse: {}",
                reread.error().message);
  const Table& t = *reread;
  json& rep = *report;
  const uint64_t suppressed = rep["suppressed"].get<uint64_t>();
  const uint64_t expect_rows = input.num_rows() - (cfg.drop_suppressed ? suppressed : 0);
  if (t.num_rows() != expect_rows) {
    return Fail(ErrorCode::INTERNAL, "release check: {} records written, {} expected", t.num_rows(),
                expect_rows);
  }
  if (suppressed > rep["max_suppressed"].get<uint64_t>()) {
    return Fail(ErrorCode::INTERNAL,
                "release check: more records suppressed than the limit allows");
  }
  for (const auto& id : cfg.identifiers) {
    if (id.kind == IdentifierRule::Kind::kDrop && t.Find(id.column) >= 0) {
      return Fail(ErrorCode::INTERNAL, "release check: dropped column {} is present", id.column);
    }
  }
  // Only columns with a treatment are released, whatever the pipeline did.
  for (const auto& c : t.columns()) {
    if (!cfg.Declares(c.name)) {
      return Fail(ErrorCode::INTERNAL, "release check: column {} has no treatment", c.name);
    }
  }
  std::vector<size_t> qi;
  for (const auto& q : cfg.quasi_identifiers) {
    int i = t.Find(q.column);
    if (i < 0) return Fail(ErrorCode::INTERNAL, "release check: column {} is missing", q.column);
    qi.push_back(static_cast<size_t>(i));
  }
  // Group the written records by their quasi-identifier strings.
  CR_ASSIGN(Sensitive sens, PrepareSensitive(cfg, input));
  CR_ASSIGN(ClassChecker checker, MakeChecker(cfg, sens));
  int sens_out = -1;
  std::unordered_map<std::string, uint32_t> sens_code;
  if (sens.column) {
    sens_out = t.Find(sens.column->name);
    if (sens_out < 0)
      return Fail(ErrorCode::INTERNAL, "release check: sensitive column is missing");
    for (uint32_t i = 0; i < sens.column->dict.size(); ++i) sens_code[sens.column->dict[i]] = i;
  }
  struct Class {
    uint64_t size = 0;
    std::map<uint32_t, uint32_t> sensitive;
    bool all_star = true;
  };
  std::unordered_map<std::string, Class> classes;
  std::string key;
  for (size_t r = 0; r < t.num_rows(); ++r) {
    key.clear();
    bool star = true;
    for (size_t c : qi) {
      const std::string& v = t.column(c).Value(r);
      key += v;
      key += '\x1f';
      star = star && v == "*";
    }
    Class& cl = classes[key];
    ++cl.size;
    cl.all_star = star;
    if (sens_out >= 0) {
      auto it = sens_code.find(t.column(static_cast<size_t>(sens_out)).Value(r));
      if (it == sens_code.end())
        return Fail(ErrorCode::INTERNAL, "release check: a sensitive value changed");
      ++cl.sensitive[it->second];
    }
  }
  std::map<uint64_t, uint64_t> histogram;
  std::vector<uint64_t> sizes;
  uint64_t min_class = 0;
  double max_distance = 0;
  std::vector<uint32_t> codes, counts;
  for (auto& [k, cl] : classes) {
    sizes.push_back(cl.size);
    uint64_t released = cl.size;
    if (cl.all_star && !cfg.drop_suppressed && suppressed > 0) {
      // The suppressed records' class reveals no quasi-identifier: exempt, but
      // it must hold them all; the rest of it (a node at the very top) is checked.
      if (cl.size < suppressed)
        return Fail(ErrorCode::INTERNAL, "release check: suppressed records miscounted");
      released = cl.size - suppressed;
      if (released == 0) continue;
      if (cl.size != released) {
        // Mixed class: only its size matters for k; the models were checked by the search.
        ++histogram[released];
        min_class = min_class == 0 ? released : std::min(min_class, released);
        if (released < static_cast<uint64_t>(cfg.models.k)) {
          return Fail(ErrorCode::INTERNAL, "release check: a class is smaller than k");
        }
        continue;
      }
    }
    ++histogram[released];
    min_class = min_class == 0 ? released : std::min(min_class, released);
    codes.clear();
    counts.clear();
    for (auto [code, count] : cl.sensitive) {
      codes.push_back(code);
      counts.push_back(count);
    }
    auto v = checker.Check(cl.size, codes.data(), counts.data(), codes.size());
    if (!v.all_ok)
      return Fail(ErrorCode::INTERNAL,
                  "release check: a released class violates the privacy models");
    if (cfg.models.t)
      max_distance = std::max(max_distance,
                              checker.Distance(cl.size, codes.data(), counts.data(), codes.size()));
  }
  json hist = json::array();
  for (const auto& [size, count] : histogram) hist.push_back({size, count});
  if (hist != rep["classes"]["histogram"]) {
    return Fail(ErrorCode::INTERNAL,
                "release check: the written classes differ from the computed ones");
  }
  rep["classes"]["min_size"] = min_class;
  rep["models"]["k_anonymity"]["min_class_size"] = min_class;
  if (cfg.models.t) rep["models"]["t_closeness"]["max_distance"] = max_distance;
  rep["risk_after"] = RiskJson(RiskOfClasses(sizes));
  rep["verified"] = true;
  return Ok();
}

namespace {

}  // namespace

Result<Release> RunAnonymize(const RunPaths& paths, const AnonymizeOptions& options) {
  CR_ASSIGN(AnonymizeConfig cfg, LoadConfig(paths.config));
  CR_ASSIGN(std::string text, ReadTableText(paths.input, cfg.separator));
  const char sep = cfg.separator ? cfg.separator : DetectSeparator(text);
  CsvOptions csv;
  csv.separator = sep;
  auto input = ReadCsv(text, csv);
  if (!input) return Fail(input.error().code, "{}: {}", paths.input, input.error().message);
  text.clear();
  CR_ASSIGN(Release rel, Anonymize(cfg, *input, options));

  // The release is written (mode 0600 from the first byte) to a staging file
  // next to `out`, read back in the same text form as an input, re-checked,
  // and only then moved into place. Parquet is built in memory first; read
  // back, it must hold the release's exact names and values, cell by cell.
  const bool parquet = IsParquetPath(paths.out);
  std::string out_bytes;
  if (parquet) {
    CR_ASSIGN(out_bytes, TableToParquet(rel.table));
  } else {
    out_bytes = WriteCsv(rel.table, sep);
  }
  const std::string staging =
      paths.out + ".cr-staging-" + crypto::RandomId() + (parquet ? ".parquet" : "");
  CR_TRY(WriteFileAtomic(staging, out_bytes, 0600));
  out_bytes.clear();
  // On a failure path the first error is the one to report; a staging file
  // that cannot be removed is 0600 and named as such.
  auto cleanup = [&] { (void)RemoveFileDurable(staging); };
  auto reread = parquet ? ReadTableText(staging, sep) : ReadFile(staging);
  if (!reread) {
    cleanup();
    return std::unexpected(reread.error());
  }
  if (parquet) {
    auto back = ReadCsv(*reread, csv);
    if (!back || !SameCells(*back, rel.table)) {
      cleanup();
      return Fail(ErrorCode::INTERNAL, "the Parquet release does not read back as written");
    }
  }
  if (auto st = VerifyRelease(cfg, *input, *reread, sep, &rel.report); !st) {
    cleanup();
    return std::unexpected(st.error());
  }
  if (!paths.report.empty()) {
    if (auto st = WriteFileAtomic(paths.report, rel.report.dump(2) + "\n"); !st) {
      cleanup();
      return std::unexpected(st.error());
    }
  }
  if (std::rename(staging.c_str(), paths.out.c_str()) != 0) {
    cleanup();
    if (!paths.report.empty()) (void)RemoveFileDurable(paths.report);
    return Fail(ErrorCode::INTERNAL, "could not move the release into place at {}", paths.out);
  }
  CR_TRY(SyncDir(DirName(paths.out)));
  const json& ra = rel.report["risk_after"];
  rel.summary += fmt::format("risk after: prosecutor max {:.4f}, avg {:.4f}, sample uniques {}\n",
                             ra["prosecutor_max"].get<double>(), ra["prosecutor_avg"].get<double>(),
                             Percent(ra["sample_uniques"].get<double>()));
  return rel;
}

}  // namespace cr::anonymize
