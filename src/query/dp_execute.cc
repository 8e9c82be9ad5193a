#include <algorithm>
#include <cmath>
#include <map>
#include <optional>

#include <fmt/format.h>

#include "common/files.h"
#include "query/dp.h"

namespace cr::query {
namespace {

// 97.5% each for a noisy sum and a noisy count, so the interval of their
// ratio (an AVG) covers the exact mean with probability at least 95%.
constexpr double kConfidence = 0.95;
constexpr double kRatioConfidence = 0.975;

nlohmann::json Number(double v, bool integral) {
  if (integral && std::abs(v) < 9e15) return static_cast<int64_t>(std::llround(v));
  return v;
}

nlohmann::json NoisyCell(double value, double lo, double hi, bool integral) {
  return {{"value", Number(value, integral)}, {"ci_low", Number(lo, integral)},
          {"ci_high", Number(hi, integral)}};
}

struct Mechanisms {
  std::vector<dp::NumericMechanism> value;  // per aggregate: count or sum
  std::vector<std::optional<dp::NumericMechanism>> count;  // AVG's count
};

Result<Mechanisms> MakeMechanisms(const DpPlan& dp) {
  Mechanisms m;
  for (const auto& a : dp.aggregates) {
    dp::NoiseParams p;
    p.kind = dp::NoiseKind::kLaplace;
    p.epsilon = dp.epsilon_each;
    p.l0 = dp.max_groups;
    p.linf = a.linf;
    p.real_valued = a.real_valued;
    CR_ASSIGN(auto v, dp::NumericMechanism::Create(p));
    m.value.push_back(std::move(v));
    if (a.fn == spec::AggFn::kAvg) {
      p.linf = static_cast<double>(dp.max_contributions);
      p.real_valued = false;
      CR_ASSIGN(auto c, dp::NumericMechanism::Create(p));
      m.count.emplace_back(std::move(c));
    } else {
      m.count.emplace_back();
    }
  }
  return m;
}

// A mean from a noisy sum and count, clamped to the bounds, with the interval
// spanned by their intervals (the whole bounds when the count's may be 0).
nlohmann::json NoisyMean(const DpAggregate& a, const dp::NumericMechanism& sum_m,
                         const dp::NumericMechanism& count_m, double sum, int64_t count,
                         dp::RandomSource& rng) {
  const auto [lo, hi] = a.bounds;
  dp::NoisyValue s = sum_m.AddNoise(sum, rng);
  dp::NoisyValue n = count_m.AddNoise(count, rng);
  double value = std::clamp(s.value / std::max(n.value, 1.0), lo, hi);
  double hs = sum_m.ConfidenceHalfWidth(kRatioConfidence);
  double hn = count_m.ConfidenceHalfWidth(kRatioConfidence);
  double n_lo = n.value - hn, n_hi = n.value + hn;
  double ci_lo = lo, ci_hi = hi;
  if (n_lo >= 1) {
    double s_lo = s.value - hs, s_hi = s.value + hs;
    double r[] = {s_lo / n_lo, s_lo / n_hi, s_hi / n_lo, s_hi / n_hi};
    ci_lo = std::clamp(*std::min_element(std::begin(r), std::end(r)), lo, hi);
    ci_hi = std::clamp(*std::max_element(std::begin(r), std::end(r)), lo, hi);
  }
  return NoisyCell(value, std::min(ci_lo, value), std::max(ci_hi, value), false);
}

// ORDER BY on released values: a noisy cell sorts by its value; NULLs last
// unless NULLS FIRST, as DuckDB orders.
void OrderRows(const Plan& plan, std::vector<nlohmann::json>* rows) {
  if (plan.order.empty()) return;
  auto key = [](const nlohmann::json& c) -> const nlohmann::json& {
    return results::IsNoisyCell(c) ? c["value"] : c;
  };
  std::stable_sort(rows->begin(), rows->end(), [&](const nlohmann::json& a, const nlohmann::json& b) {
    for (const auto& o : plan.order) {
      const nlohmann::json& x = key(a[o.output]);
      const nlohmann::json& y = key(b[o.output]);
      if (x == y) continue;
      bool nulls_first = o.nulls == "NULLS FIRST";
      if (x.is_null() || y.is_null()) return x.is_null() == nulls_first;
      return o.descending ? y < x : x < y;
    }
    return false;
  });
}

}  // namespace

Result<results::ResultSet> ExecuteDpPlan(engine::Database& db, const Plan& plan, const DpPlan& dp,
                                         dp::RandomSource& rng, ExecStats* stats) {
  CR_ASSIGN(Mechanisms mech, MakeMechanisms(dp));
  std::optional<dp::PartitionSelector> selector;
  if (dp.select_partitions) {
    CR_ASSIGN(auto s, dp::PartitionSelector::Create(dp.epsilon_selection, dp.delta, dp.max_groups));
    selector.emplace(std::move(s));
  }
  unsigned char key[16];
  rng.Fill(key, sizeof key);
  auto exact = db.Query(BoundedSql(plan, dp, ToHex(std::string_view(
                                                  reinterpret_cast<const char*>(key), sizeof key))),
                        ErrorCode::SQL_INVALID, false);
  if (!exact) return std::unexpected(RunFailure(db));

  const size_t ng = plan.group_by.size();
  const size_t units_col = ng;
  auto column_of = [&](size_t j) { return ng + 1 + j; };
  auto int_at = [&](size_t r, size_t c) -> int64_t {
    const auto& v = exact->at(r, c);
    return v ? std::stoll(*v) : 0;
  };
  auto double_at = [&](size_t r, size_t c) -> double {
    const auto& v = exact->at(r, c);
    return v ? std::stod(*v) : 0.0;
  };
  // Column index of AVG's count: after its sum.
  std::vector<size_t> col(dp.aggregates.size());
  for (size_t j = 0, c = ng + 1; j < dp.aggregates.size(); ++j) {
    col[j] = c;
    c += dp.aggregates[j].fn == spec::AggFn::kAvg ? 2 : 1;
  }
  (void)column_of;

  // The groups to consider: every public combination (an absent one is
  // empty: all zeros), or every group the data has.
  struct Group {
    std::vector<nlohmann::json> keys;
    std::optional<size_t> row;
  };
  std::vector<Group> groups;
  if (!dp.public_text.empty()) {
    std::map<std::vector<std::string>, size_t> by_text;
    for (size_t r = 0; r < exact->row_count(); ++r) {
      std::vector<std::string> k;
      bool has_null = false;
      for (size_t g = 0; g < ng; ++g) {
        has_null = has_null || !exact->at(r, g);
        k.push_back(exact->at(r, g).value_or(""));
      }
      if (!has_null) by_text[k] = r;
    }
    std::vector<size_t> idx(ng, 0);
    while (true) {
      Group g;
      std::vector<std::string> text;
      for (size_t i = 0; i < ng; ++i) {
        g.keys.push_back(dp.public_cells[i][idx[i]]);
        text.push_back(dp.public_text[i][idx[i]]);
      }
      if (auto it = by_text.find(text); it != by_text.end()) g.row = it->second;
      groups.push_back(std::move(g));
      size_t i = ng;
      while (i > 0 && ++idx[i - 1] == dp.public_text[i - 1].size()) idx[--i] = 0;
      if (i == 0) break;
    }
  } else {
    for (size_t r = 0; r < exact->row_count(); ++r) {
      Group g;
      for (size_t i = 0; i < ng; ++i) g.keys.push_back(Cell(exact->at(r, i), exact->types()[i]));
      g.row = r;
      groups.push_back(std::move(g));
    }
  }

  std::vector<nlohmann::json> rows;
  for (const auto& g : groups) {
    if (selector && !selector->Keep(g.row ? int_at(*g.row, units_col) : 0, rng)) continue;
    std::vector<nlohmann::json> agg_cells(dp.aggregates.size());
    for (size_t j = 0; j < dp.aggregates.size(); ++j) {
      const DpAggregate& a = dp.aggregates[j];
      const dp::NumericMechanism& m = mech.value[j];
      if (a.fn == spec::AggFn::kAvg) {
        double sum = g.row ? double_at(*g.row, col[j]) : 0;
        int64_t count = g.row ? int_at(*g.row, col[j] + 1) : 0;
        agg_cells[j] = NoisyMean(a, m, *mech.count[j], sum, count, rng);
      } else if (a.IsCount()) {
        dp::NoisyValue v = m.AddNoise(g.row ? int_at(*g.row, col[j]) : int64_t{0}, rng);
        bool integral = m.granularity() >= 1 && m.granularity() == std::floor(m.granularity());
        agg_cells[j] = NoisyCell(v.value, v.ci_low, v.ci_high, integral);
      } else {
        dp::NoisyValue v = m.AddNoise(g.row ? double_at(*g.row, col[j]) : 0.0, rng);
        agg_cells[j] = NoisyCell(v.value, v.ci_low, v.ci_high, false);
      }
    }
    nlohmann::json row = nlohmann::json::array();
    size_t next_agg = 0;
    for (size_t o = 0; o < plan.outputs.size(); ++o) {
      int k = dp.key_of_output[o];
      row.push_back(k >= 0 ? g.keys[static_cast<size_t>(k)] : agg_cells[next_agg++]);
    }
    rows.push_back(std::move(row));
  }
  OrderRows(plan, &rows);
  size_t from = plan.offset ? static_cast<size_t>(std::min<int64_t>(*plan.offset, rows.size())) : 0;
  size_t to = rows.size();
  if (plan.limit) to = std::min(to, from + static_cast<size_t>(*plan.limit));

  results::ResultSet out;
  for (const auto& o : plan.outputs) out.columns.push_back(o.name);
  for (size_t i = from; i < to; ++i) out.rows.push_back(std::move(rows[i]));
  out.epsilon_spent = dp.epsilon;
  if (stats) {
    // Only what was released: the exact number of groups is a function of the data.
    stats->groups = static_cast<int64_t>(out.rows.size());
    stats->released_rows = static_cast<int64_t>(out.rows.size());
    stats->withheld_rows = 0;
    stats->summary_released = false;
  }
  return out;
}

}  // namespace cr::query
