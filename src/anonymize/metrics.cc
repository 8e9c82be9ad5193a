#include "anonymize/metrics.h"

#include <algorithm>
#include <cmath>

namespace cr::anonymize {

ColumnMetrics ComputeColumnMetrics(const std::vector<uint32_t>& codes, const Hierarchy& h) {
  ColumnMetrics m;
  const size_t values = h.levels[0].labels.size();
  std::vector<uint64_t> n(values, 0);
  for (uint32_t c : codes) ++n[c];
  size_t present = 0;
  for (uint64_t c : n) present += c > 0;
  for (int l = 0; l <= h.height(); ++l) {
    const auto& level = h.levels[l];
    std::vector<uint64_t> label_n(level.labels.size(), 0);
    std::vector<uint64_t> leaves(level.labels.size(), 0);
    for (size_t v = 0; v < values; ++v) {
      label_n[level.of_value[v]] += n[v];
      if (n[v]) ++leaves[level.of_value[v]];
    }
    double e = 0, loss = 0;
    std::vector<double> label_loss(level.labels.size(), 0);
    for (size_t g = 0; g < label_loss.size(); ++g) {
      label_loss[g] = present > 1 && leaves[g] > 0
                          ? static_cast<double>(leaves[g] - 1) / static_cast<double>(present - 1)
                          : 0;
    }
    for (size_t v = 0; v < values; ++v) {
      if (!n[v]) continue;
      uint32_t g = level.of_value[v];
      e += static_cast<double>(n[v]) *
           std::log2(static_cast<double>(label_n[g]) / static_cast<double>(n[v]));
      loss += static_cast<double>(n[v]) * label_loss[g];
    }
    m.entropy.push_back(e);
    m.loss_sum.push_back(loss);
    m.label_loss.push_back(std::move(label_loss));
  }
  return m;
}

Risk RiskOfClasses(const std::vector<uint64_t>& class_sizes) {
  Risk r;
  uint64_t smallest = 0, uniques = 0;
  for (uint64_t s : class_sizes) {
    if (!s) continue;
    r.records += s;
    ++r.classes;
    if (s == 1) ++uniques;
    smallest = smallest == 0 ? s : std::min(smallest, s);
  }
  if (!r.records) return r;
  r.max = 1.0 / static_cast<double>(smallest);
  r.average = static_cast<double>(r.classes) / static_cast<double>(r.records);
  r.sample_uniques = static_cast<double>(uniques) / static_cast<double>(r.records);
  return r;
}

}  // namespace cr::anonymize
