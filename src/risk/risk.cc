#include "risk/risk.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <set>
#include <unordered_map>

#include "anonymize/hierarchy.h"
#include "anonymize/metrics.h"
#include "anonymize/models.h"

namespace cr::risk {

using anonymize::Table;

namespace {

// Renumbers keys densely in order of first appearance.
void Densify(const std::vector<uint64_t>& keys, Grouping* g) {
  std::unordered_map<uint64_t, uint32_t> index;
  index.reserve(keys.size() / 2 + 16);
  g->class_of.resize(keys.size());
  g->sizes.clear();
  g->first_row.clear();
  for (size_t r = 0; r < keys.size(); ++r) {
    auto [it, inserted] = index.try_emplace(keys[r], static_cast<uint32_t>(g->sizes.size()));
    if (inserted) {
      g->sizes.push_back(0);
      g->first_row.push_back(static_cast<uint32_t>(r));
    }
    g->class_of[r] = it->second;
    ++g->sizes[it->second];
  }
}

std::string Trim(std::string s) {
  size_t b = s.find_first_not_of(" \t");
  size_t e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// Hypergeometric P(X = 1): one of `successes` marked items among `draws` from
// `total`, in logs because the binomials overflow for any real population.
double HypergeometricOne(double total, double successes, double draws) {
  if (successes < 1 || draws < 1 || successes > total || draws > total) return 0;
  if (total - successes < draws - 1) return 0;
  double log_p = std::log(successes) + std::lgamma(total - successes + 1) - std::lgamma(draws) -
                 std::lgamma(total - successes - draws + 2) -
                 (std::lgamma(total + 1) - std::lgamma(draws + 1) - std::lgamma(total - draws + 1));
  return std::exp(log_p);
}

uint64_t ClassesOfSize(const std::vector<std::pair<uint64_t, uint64_t>>& h, uint64_t size) {
  for (auto& [s, c] : h) {
    if (s == size) return c;
  }
  return 0;
}

}  // namespace

Grouping GroupRecords(const std::vector<const std::vector<uint32_t>*>& columns, size_t rows) {
  Grouping g;
  if (columns.empty()) {
    g.class_of.assign(rows, 0);
    if (rows) {
      g.sizes = {rows};
      g.first_row = {0};
    }
    return g;
  }
  std::vector<uint64_t> keys(rows, 0);
  // Cardinality of the current key space; keys stay < card.
  uint64_t card = 1;
  for (const auto* col : columns) {
    uint64_t c = 1;
    for (uint32_t v : *col) c = std::max<uint64_t>(c, uint64_t{v} + 1);
    if (card > std::numeric_limits<uint64_t>::max() / c) {
      // Re-densify: the number of classes is at most `rows`, so the key space
      // shrinks to something that always fits with one more 32-bit column.
      Densify(keys, &g);
      for (size_t r = 0; r < rows; ++r) keys[r] = g.class_of[r];
      card = g.sizes.size();
    }
    for (size_t r = 0; r < rows; ++r) keys[r] = keys[r] * c + (*col)[r];
    card *= c;
  }
  Densify(keys, &g);
  return g;
}

std::vector<std::string> SplitList(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    std::string item = Trim(list.substr(start, comma - start));
    if (!item.empty()) out.push_back(item);
    start = comma + 1;
  }
  return out;
}

Result<std::vector<size_t>> ResolveColumns(const Table& table,
                                           const std::vector<std::string>& names,
                                           const std::string& what) {
  if (names.empty()) return Fail(ErrorCode::BAD_INPUT, "{}: no columns given", what);
  std::vector<size_t> out;
  std::set<std::string> seen;
  for (const auto& n : names) {
    if (!seen.insert(n).second) {
      return Fail(ErrorCode::BAD_INPUT, "{}: column {} given twice", what, n);
    }
    int i = table.Find(n);
    if (i < 0) return Fail(ErrorCode::UNKNOWN_COLUMN, "{}: no column {}", what, n);
    out.push_back(static_cast<size_t>(i));
  }
  return out;
}

double ZayatzUniques(const std::vector<std::pair<uint64_t, uint64_t>>& histogram, uint64_t n,
                     uint64_t population) {
  uint64_t f1 = ClassesOfSize(histogram, 1);
  if (!f1 || population <= n) return population <= n ? static_cast<double>(f1) : 0;
  const double big_n = static_cast<double>(population), small_n = static_cast<double>(n);
  // P(a sample unique comes from a population unique): the class-size
  // distribution in the sample stands in for the population's (Zayatz 1991).
  double denom = 0, classes = 0;
  for (auto& [size, count] : histogram) classes += static_cast<double>(count);
  for (auto& [size, count] : histogram) {
    denom += (static_cast<double>(count) / classes) *
             HypergeometricOne(big_n, static_cast<double>(size), small_n);
  }
  double num = (static_cast<double>(f1) / classes) * HypergeometricOne(big_n, 1, small_n);
  double cond = denom > 0 ? num / denom : 0;
  return static_cast<double>(f1) * cond / (small_n / big_n);
}

double PitmanUniques(const std::vector<std::pair<uint64_t, uint64_t>>& histogram, uint64_t n,
                     uint64_t population) {
  const double u = [&] {
    double s = 0;
    for (auto& [size, count] : histogram) s += static_cast<double>(count);
    return s;
  }();
  const double nn = static_cast<double>(n);
  double c1 = static_cast<double>(ClassesOfSize(histogram, 1));
  double c2 = static_cast<double>(ClassesOfSize(histogram, 2));
  if (c1 == 0 || u < 2) return 0;
  if (c2 == 0) c2 = 1;
  // Moment-style starting point (Hoshino 2001), then Newton on the score
  // equations of the Pitman sampling formula's log-likelihood.
  double c = c1 * (c1 - 1) / c2;
  double t = (nn * u * c - c1 * (nn - 1) * (2 * u + c)) / (2 * c1 * u + c1 * c - nn * c);
  double a = (t * (c1 - nn) + (nn - 1) * c1) / (nn * u);
  if (!std::isfinite(t) || !std::isfinite(a) || a <= 0 || a >= 1 || t <= -a) {
    t = 1;
    a = 0.5;
  }
  for (int iter = 0; iter < 200; ++iter) {
    double o1 = 0, o2 = 0, o3 = 0, o4 = 0, d1 = 0, d2 = 0, d3 = 0, d4 = 0, d5 = 0;
    for (double i = 1; i < u; ++i) {
      double v = t + i * a;
      o1 += 1 / v;
      o3 += i / v;
      d1 += 1 / (v * v);
      d5 += i / (v * v);
      d3 += i * i / (v * v);
    }
    for (double i = 1; i < nn; ++i) {
      o2 += 1 / (t + i);
      d2 += 1 / ((t + i) * (t + i));
    }
    for (auto& [size, count] : histogram) {
      double s1 = 0, s2 = 0;
      for (uint64_t j = 1; j < size; ++j) {
        double v = static_cast<double>(j) - a;
        s1 += 1 / v;
        s2 += 1 / (v * v);
      }
      o4 += static_cast<double>(count) * s1;
      d4 += static_cast<double>(count) * s2;
    }
    // Score (dL/dtheta, dL/dalpha) and Hessian.
    double g1 = o1 - o2, g2 = o3 - o4;
    double h11 = d2 - d1, h12 = -d5, h22 = -d3 - d4;
    double det = h11 * h22 - h12 * h12;
    if (det == 0 || !std::isfinite(det)) return std::nan("");
    double dt = (g1 * h22 - g2 * h12) / det;
    double da = (h11 * g2 - h12 * g1) / det;
    double nt = t - dt, na = a - da;
    // Keep inside the parameter space (0 < alpha < 1, theta > -alpha).
    if (na <= 0) na = a / 2;
    if (na >= 1) na = (a + 1) / 2;
    if (nt <= -na) nt = (t - na) / 2;
    bool done = std::fabs(nt - t) < 1e-10 * (1 + std::fabs(t)) && std::fabs(na - a) < 1e-12;
    t = nt;
    a = na;
    if (done) break;
  }
  double log_u =
      std::lgamma(t + 1) - std::lgamma(t + a) + a * std::log(static_cast<double>(population));
  double uniques = std::exp(log_u);
  if (!std::isfinite(uniques) || uniques < 0 || uniques > static_cast<double>(population)) {
    return std::nan("");
  }
  return uniques;
}

double SnbUniques(const std::vector<std::pair<uint64_t, uint64_t>>& histogram, uint64_t n,
                  uint64_t population) {
  const double f = static_cast<double>(n) / static_cast<double>(population);
  double u = 0;
  for (auto& [size, count] : histogram) u += static_cast<double>(count);
  double c1 = static_cast<double>(ClassesOfSize(histogram, 1));
  double c2 = static_cast<double>(ClassesOfSize(histogram, 2));
  if (c1 == 0 || c2 == 0 || f >= 1) return std::nan("");
  // Number of non-empty population classes: Shlosser's estimator (Haas et al. 1995).
  double num = 0, den = 0;
  for (auto& [size, count] : histogram) {
    double i = static_cast<double>(size), fi = static_cast<double>(count);
    num += std::pow(1 - f, i) * fi;
    den += i * f * std::pow(1 - f, i - 1) * fi;
  }
  const double k = u + (den > 0 ? c1 * num / den : 0);
  // Moment equations of the shifted negative binomial (Chen & Keller-McNulty 1998):
  // E[c1] and E[c2] as functions of (alpha, beta), solved by Newton with a
  // numerical Jacobian (the closed forms are long and easy to get wrong).
  auto eq = [&](double a, double b, double* e1, double* e2) {
    double d = (1 - f) * (1 - b);
    *e1 = k * f * std::pow(b / (1 - d), a) * (a * d / (1 - d) + 1) - c1;
    *e2 = k * a * std::pow(b, a) * f * f * (1 - b) / (2 * std::pow(1 - d, a + 2)) *
              (2 - (1 - a) * d) -
          c2;
  };
  // The equations are steep and the root often sits at small alpha and beta,
  // so Newton starts from the best point of a coarse log-spaced grid.
  double a = 1, b = 0.5, best = HUGE_VAL;
  for (int i = 0; i <= 60; ++i) {
    for (int j = 0; j < 60; ++j) {
      double ga = std::pow(10.0, -4 + i * 0.1), gb = std::pow(10.0, -8 + j * (8.0 / 60));
      double e1, e2;
      eq(ga, gb, &e1, &e2);
      double res = (e1 / c1) * (e1 / c1) + (e2 / c2) * (e2 / c2);
      if (std::isfinite(res) && res < best) {
        best = res;
        a = ga;
        b = gb;
      }
    }
  }
  for (int iter = 0; iter < 500; ++iter) {
    double e1, e2;
    eq(a, b, &e1, &e2);
    if (!std::isfinite(e1) || !std::isfinite(e2)) return std::nan("");
    if (std::fabs(e1) < 1e-9 * (1 + c1) && std::fabs(e2) < 1e-9 * (1 + c2)) break;
    const double ha = 1e-7 * a, hb = 1e-7 * std::min(b, 1 - b);
    double a1, a2, b1, b2;
    eq(a + ha, b, &a1, &a2);
    eq(a, b + hb, &b1, &b2);
    double j11 = (a1 - e1) / ha, j21 = (a2 - e2) / ha, j12 = (b1 - e1) / hb, j22 = (b2 - e2) / hb;
    double det = j11 * j22 - j12 * j21;
    if (det == 0 || !std::isfinite(det)) return std::nan("");
    double da = (e1 * j22 - e2 * j12) / det, db = (j11 * e2 - j21 * e1) / det;
    double na = a - da, nb = b - db;
    if (nb <= 0) nb = b / 2;
    if (nb >= 1) nb = (b + 1) / 2;
    if (na <= 0) na = a / 2;
    a = na;
    b = nb;
    if (iter == 499) return std::nan("");
  }
  double uniques = k * std::pow(b, a);
  if (!std::isfinite(uniques) || uniques < 0 || uniques > static_cast<double>(population)) {
    return std::nan("");
  }
  return uniques;
}

Result<RiskReport> AnalyzeRisk(const Table& table, const RiskOptions& options) {
  if (table.num_rows() == 0) return Fail(ErrorCode::BAD_INPUT, "risk: the input has no records");
  if (!(options.threshold >= 0 && options.threshold <= 1)) {
    return Fail(ErrorCode::BAD_INPUT, "risk: the threshold must be in [0, 1] (is {})",
                options.threshold);
  }
  CR_ASSIGN(std::vector<size_t> qi, ResolveColumns(table, options.qis, "quasi-identifiers"));
  std::optional<size_t> sensitive;
  if (!options.sensitive.empty()) {
    CR_ASSIGN(auto s, ResolveColumns(table, {options.sensitive}, "sensitive attribute"));
    if (std::find(qi.begin(), qi.end(), s[0]) != qi.end()) {
      return Fail(ErrorCode::BAD_INPUT, "sensitive attribute {} is also a quasi-identifier",
                  options.sensitive);
    }
    sensitive = s[0];
  }
  const uint64_t n = table.num_rows();
  if (options.population && *options.population < n) {
    return Fail(ErrorCode::BAD_INPUT,
                "the population size ({}) is smaller than the number of records ({})",
                *options.population, n);
  }

  std::vector<const std::vector<uint32_t>*> cols;
  for (size_t c : qi) cols.push_back(&table.column(c).codes);
  Grouping g = GroupRecords(cols, n);

  RiskReport rep;
  // The prosecutor figures are the anonymizer's own (one definition in the tree).
  anonymize::Risk base = anonymize::RiskOfClasses(g.sizes);
  rep.records = base.records;
  rep.classes = base.classes;
  rep.prosecutor_max = base.max;
  rep.prosecutor_avg = base.average;
  rep.sample_uniqueness = base.sample_uniques;
  std::map<uint64_t, uint64_t> hist;
  for (uint64_t s : g.sizes) ++hist[s];
  rep.class_size_histogram.assign(hist.begin(), hist.end());
  rep.k = rep.class_size_histogram.front().first;
  rep.sample_uniques = ClassesOfSize(rep.class_size_histogram, 1);
  rep.threshold = options.threshold;
  for (auto& [size, count] : rep.class_size_histogram) {
    if (1.0 / static_cast<double>(size) > options.threshold) rep.records_at_risk += size * count;
  }
  rep.records_at_risk_share = static_cast<double>(rep.records_at_risk) / static_cast<double>(n);
  rep.record_class_size.resize(n);
  for (uint64_t r = 0; r < n; ++r) rep.record_class_size[r] = g.sizes[g.class_of[r]];

  // Journalist and marketer: with a population, class sizes there are
  // estimated as sample size / sampling fraction; without, the release is the
  // population and both equal the prosecutor view.
  double fraction =
      options.population ? static_cast<double>(n) / static_cast<double>(*options.population) : 1.0;
  rep.journalist_max = rep.prosecutor_max * fraction;
  rep.journalist_avg = rep.prosecutor_avg * fraction;
  rep.marketer = rep.prosecutor_avg * fraction;

  if (sensitive) {
    const auto& col = table.column(*sensitive);
    SensitiveRisk s;
    s.attribute = col.name;
    // Per-class histograms: sort records by (class, value) once instead of a
    // map per class.
    std::vector<uint64_t> keyed(n);
    for (size_t r = 0; r < n; ++r) keyed[r] = (uint64_t{g.class_of[r]} << 32) | col.codes[r];
    std::sort(keyed.begin(), keyed.end());
    std::vector<uint32_t> global(col.dict.size(), 0);
    for (uint32_t c : col.codes) ++global[c];
    std::vector<double> num(col.dict.size());
    bool numeric = true;
    for (size_t i = 0; i < num.size() && numeric; ++i) {
      auto v = anonymize::ParseNumber(col.dict[i]);
      numeric = v.has_value();
      if (v) num[i] = *v;
    }
    std::vector<uint32_t> rank;
    if (numeric) {
      std::vector<uint32_t> order(num.size());
      std::iota(order.begin(), order.end(), 0);
      std::sort(order.begin(), order.end(),
                [&](uint32_t a, uint32_t b) { return num[a] < num[b]; });
      rank.resize(num.size());
      for (uint32_t i = 0; i < order.size(); ++i) rank[order[i]] = i;
    }
    s.ordered = numeric;
    anonymize::PrivacyModels models;
    models.t = anonymize::TCloseness{col.name, 1.0, anonymize::TCloseness::Distance::kAuto};
    CR_ASSIGN(anonymize::ClassChecker checker,
              anonymize::ClassChecker::Create(models, global, rank, numeric));
    s.distinct_l = std::numeric_limits<uint64_t>::max();
    s.entropy_l = std::numeric_limits<double>::infinity();
    std::vector<uint32_t> codes, counts;
    for (size_t i = 0; i < n;) {
      uint32_t cls = static_cast<uint32_t>(keyed[i] >> 32);
      codes.clear();
      counts.clear();
      size_t j = i;
      while (j < n && (keyed[j] >> 32) == cls) {
        uint32_t v = static_cast<uint32_t>(keyed[j]);
        if (codes.empty() || codes.back() != v) {
          codes.push_back(v);
          counts.push_back(0);
        }
        ++counts.back();
        ++j;
      }
      const uint64_t size = j - i;
      s.distinct_l = std::min<uint64_t>(s.distinct_l, codes.size());
      double h = 0;
      for (uint32_t c : counts) {
        double p = static_cast<double>(c) / static_cast<double>(size);
        h -= p * std::log(p);
      }
      s.entropy_l = std::min(s.entropy_l, std::exp(h));
      s.t = std::max(s.t, checker.Distance(size, codes.data(), counts.data(), codes.size()));
      if (codes.size() == 1) {
        ++s.homogeneous_classes;
        s.homogeneous_records += size;
      }
      i = j;
    }
    rep.sensitive = s;
  }

  if (options.population) {
    PopulationEstimates p;
    p.population = *options.population;
    p.sampling_fraction = fraction;
    p.zayatz = ZayatzUniques(rep.class_size_histogram, n, p.population);
    p.pitman = PitmanUniques(rep.class_size_histogram, n, p.population);
    p.snb = SnbUniques(rep.class_size_histogram, n, p.population);
    rep.population = p;
  }
  return rep;
}

namespace {
nlohmann::json Num(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}
}  // namespace

nlohmann::json ToJson(const RiskReport& r) {
  nlohmann::json j;
  j["records"] = r.records;
  j["classes"] = r.classes;
  j["k"] = r.k;
  j["sample_uniques"] = r.sample_uniques;
  j["sample_uniqueness"] = r.sample_uniqueness;
  j["prosecutor"] = {{"max", r.prosecutor_max}, {"avg", r.prosecutor_avg}};
  j["journalist"] = {{"max", r.journalist_max}, {"avg", r.journalist_avg}};
  j["marketer"] = r.marketer;
  j["threshold"] = r.threshold;
  j["records_at_risk"] = r.records_at_risk;
  j["records_at_risk_share"] = r.records_at_risk_share;
  nlohmann::json h = nlohmann::json::array();
  for (auto& [size, count] : r.class_size_histogram)
    h.push_back({{"size", size}, {"classes", count}});
  j["class_sizes"] = h;
  if (r.sensitive) {
    const auto& s = *r.sensitive;
    j["sensitive"] = {{"attribute", s.attribute},
                      {"distinct_l", s.distinct_l},
                      {"entropy_l", s.entropy_l},
                      {"t", s.t},
                      {"t_distance", s.ordered ? "ordered" : "equal"},
                      {"homogeneous_classes", s.homogeneous_classes},
                      {"homogeneous_records", s.homogeneous_records}};
  }
  if (r.population) {
    const auto& p = *r.population;
    auto share = [&](double u) { return Num(u / static_cast<double>(p.population)); };
    j["population"] = {{"size", p.population},
                       {"sampling_fraction", p.sampling_fraction},
                       {"zayatz", {{"uniques", Num(p.zayatz)}, {"uniqueness", share(p.zayatz)}}},
                       {"pitman", {{"uniques", Num(p.pitman)}, {"uniqueness", share(p.pitman)}}},
                       {"snb", {{"uniques", Num(p.snb)}, {"uniqueness", share(p.snb)}}}};
  }
  return j;
}

}  // namespace cr::risk
