// Test oracle: every node of a lattice evaluated without pruning.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <numeric>

#include "anonymize/adult_test_util.h"

namespace cr::anonymize::testing {

// Brute force: class sizes of every node (rolled up from the bottom table only)
// give the suppressed count for any k; the objective is recomputed here from
// the hierarchies' labels, independently of ColumnMetrics.
struct Oracle {
  std::vector<std::vector<int>> nodes;
  std::vector<std::vector<uint64_t>> sizes;
  std::vector<double> nue;
};

inline double NueOf(const Adult& a, const std::vector<std::string>& qis,
                    const std::vector<int>& levels) {
  double total = 0;
  for (size_t i = 0; i < qis.size(); ++i) {
    int c = a.table.Find(qis[i]);
    const Column& col = a.table.column(c);
    const Hierarchy& h = a.hierarchies[c];
    std::map<std::string, double> n_value, n_label;
    for (uint32_t code : col.codes) {
      n_value[col.dict[code]] += 1;
      n_label[h.Label(levels[i], code)] += 1;
    }
    for (uint32_t v = 0; v < col.dict.size(); ++v) {
      double nv = n_value[col.dict[v]];
      total += nv * std::log2(n_label[h.Label(levels[i], v)] / nv);
    }
  }
  return total;
}

inline Oracle BuildOracle(const Adult& a, const std::vector<std::string>& qis) {
  PrivacyModels m;
  auto search = std::move(*LatticeSearch::Create(AdultInput(a, m, qis)));
  Oracle o;
  std::vector<int> lv(qis.size(), 0);
  const auto& h = search->heights();
  // The string-level entropy of each (column, level), summed per node.
  std::map<std::pair<size_t, int>, double> memo;
  while (true) {
    o.nodes.push_back(lv);
    o.sizes.push_back(search->ClassSizes(lv));
    double nue = 0;
    for (size_t i = 0; i < qis.size(); ++i) {
      auto key = std::make_pair(i, lv[i]);
      if (!memo.count(key)) {
        memo[key] = NueOf(a, {qis[i]}, {lv[i]});
      }
      nue += memo[key];
    }
    o.nue.push_back(nue);
    size_t c = 0;
    while (c < lv.size() && lv[c] == h[c]) lv[c++] = 0;
    if (c == lv.size()) break;
    ++lv[c];
  }
  return o;
}

inline void ExpectSameOptimum(const Adult& a, const Oracle& o, const std::vector<std::string>& qis,
                              int k, double limit) {
  const uint64_t max_sup = static_cast<uint64_t>(std::floor(limit * a.table.num_rows() + 1e-9));
  int best = -1;
  uint64_t best_sup = 0;
  for (size_t i = 0; i < o.nodes.size(); ++i) {
    uint64_t sup = 0;
    for (uint64_t s : o.sizes[i]) sup += s < static_cast<uint64_t>(k) ? s : 0;
    if (sup > max_sup) continue;
    auto height = [&](size_t n) {
      return std::accumulate(o.nodes[n].begin(), o.nodes[n].end(), 0);
    };
    bool better = best < 0 || o.nue[i] < o.nue[best] - 1e-7 ||
                  (std::fabs(o.nue[i] - o.nue[best]) <= 1e-7 && height(i) < height(best));
    if (better) {
      best = static_cast<int>(i);
      best_sup = sup;
    }
  }
  PrivacyModels m;
  m.k = k;
  m.suppression_limit = limit;
  auto search = std::move(*LatticeSearch::Create(AdultInput(a, m, qis)));
  SearchResult r = search->Run();
  SCOPED_TRACE(::testing::Message() << "k=" << k << " limit=" << limit);
  ASSERT_EQ(r.found, best >= 0);
  if (best < 0) return;
  EXPECT_NEAR(r.best.non_uniform_entropy, o.nue[best], 1e-6 * std::max(1.0, o.nue[best]));
  EXPECT_EQ(r.best.levels, o.nodes[best]);
  EXPECT_EQ(r.best.suppressed, best_sup);
}

}  // namespace cr::anonymize::testing
