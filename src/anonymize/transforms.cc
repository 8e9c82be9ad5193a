#include "anonymize/transforms.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_map>

#include "anonymize/hierarchy.h"

namespace cr::anonymize {

namespace {
crypto::SecureBuffer ColumnKey(const crypto::SecureBuffer& secret, const std::string& column) {
  return crypto::HkdfSha256(secret.view(), "cleanroom-anonymize-v1", "pseudonym:" + column, 32);
}
}  // namespace

Pseudonymizer::Pseudonymizer(const crypto::SecureBuffer& secret, const std::string& column)
    : hmac_(ColumnKey(secret, column).view()) {}

std::string Pseudonymizer::Pseudonym(const std::string& value) const {
  unsigned char mac[32];
  hmac_.Mac(value.data(), value.size(), mac);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(32, '0');
  for (int i = 0; i < 16; ++i) {
    out[2 * i] = kHex[mac[i] >> 4];
    out[2 * i + 1] = kHex[mac[i] & 15];
  }
  return out;
}

std::string MaskValue(const std::string& value, int keep_first, int keep_last) {
  // Split into code points so a multi-byte character is kept or masked whole.
  std::vector<std::string_view> cps;
  for (size_t i = 0; i < value.size();) {
    size_t len = 1;
    unsigned char c = static_cast<unsigned char>(value[i]);
    if (c >= 0xF0)
      len = 4;
    else if (c >= 0xE0)
      len = 3;
    else if (c >= 0xC0)
      len = 2;
    len = std::min(len, value.size() - i);
    cps.emplace_back(value.data() + i, len);
    i += len;
  }
  const size_t n = cps.size();
  const size_t kf = static_cast<size_t>(std::max(0, keep_first));
  const size_t kl = static_cast<size_t>(std::max(0, keep_last));
  std::string out;
  if (kf + kl >= n) return std::string(n, '*');
  for (size_t i = 0; i < n; ++i) {
    if (i < kf || i >= n - kl)
      out.append(cps[i]);
    else
      out.push_back('*');
  }
  return out;
}

namespace {
int Decimals(const std::string& s) {
  size_t dot = s.find('.');
  if (dot == std::string::npos) return 0;
  size_t e = s.find_first_of("eE", dot);
  return static_cast<int>((e == std::string::npos ? s.size() : e) - dot - 1);
}
}  // namespace

Status AddNoise(std::vector<std::string>* values, const NoiseSpec& spec, RandomSource& random,
                const std::string& column) {
  if (!(spec.scale >= 0) || !std::isfinite(spec.scale)) {
    return Fail(ErrorCode::BAD_INPUT, "column {}: noise scale must be a non-negative number",
                column);
  }
  std::vector<double> x(values->size());
  int decimals = 0;
  size_t bad = 0;
  for (size_t i = 0; i < values->size(); ++i) {
    const std::string& s = (*values)[i];
    if (s.empty()) continue;
    auto v = ParseNumber(s);
    if (!v) {
      ++bad;
      continue;
    }
    x[i] = *v;
    decimals = std::max(decimals, Decimals(s));
  }
  if (bad) return Fail(ErrorCode::BAD_INPUT, "column {}: {} value(s) are not numbers", column, bad);
  for (size_t i = 0; i < values->size(); ++i) {
    std::string& s = (*values)[i];
    if (s.empty()) continue;
    double y = x[i];
    switch (spec.kind) {
      case NoiseSpec::Kind::kLaplace:
        y += random.Laplace(spec.scale);
        break;
      case NoiseSpec::Kind::kGaussian:
        y += random.Gaussian(spec.scale);
        break;
      case NoiseSpec::Kind::kMultiplicative:
        y *= 1 + random.Gaussian(spec.scale);
        break;
    }
    s = fmt::format("{:.{}f}", y, decimals);
    if (s == "-0" || s.find_first_not_of("-0.") == std::string::npos) {
      if (s.front() == '-') s.erase(0, 1);  // no "-0.00"
    }
  }
  return Ok();
}

namespace {
// Fenwick tree over ranks marking records not yet swapped.
class Fenwick {
 public:
  explicit Fenwick(size_t n) : t_(n + 1, 0) {
    for (size_t i = 1; i <= n; ++i) {
      t_[i] += 1;
      size_t j = i + (i & (~i + 1));
      if (j <= n) t_[j] += t_[i];
    }
  }
  void Remove(size_t i) {
    for (++i; i < t_.size(); i += i & (~i + 1)) --t_[i];
  }
  // Number of marked positions in [0, i).
  int64_t Prefix(size_t i) const {
    int64_t s = 0;
    for (; i > 0; i -= i & (~i + 1)) s += t_[i];
    return s;
  }
  // Position of the r-th (0-based) marked position.
  size_t Select(int64_t r) const {
    size_t pos = 0;
    size_t step = 1;
    while (step * 2 < t_.size()) step *= 2;
    for (; step > 0; step /= 2) {
      if (pos + step < t_.size() && t_[pos + step] <= r) {
        pos += step;
        r -= t_[pos];
      }
    }
    return pos;
  }

 private:
  std::vector<int64_t> t_;
};
}  // namespace

Status RankSwap(std::vector<std::string>* values, double window, RandomSource& random,
                const std::string& column) {
  if (!(window > 0 && window <= 1)) {
    return Fail(ErrorCode::BAD_INPUT, "column {}: rank_window must be in (0, 1]", column);
  }
  const size_t n = values->size();
  if (n < 2) return Ok();
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::vector<double> num(n);
  bool numeric = true;
  for (size_t i = 0; i < n && numeric; ++i) {
    auto v = ParseNumber((*values)[i]);
    numeric = v.has_value();
    if (v) num[i] = *v;
  }
  if (numeric) {
    std::stable_sort(order.begin(), order.end(),
                     [&](uint32_t a, uint32_t b) { return num[a] < num[b]; });
  } else {
    std::stable_sort(order.begin(), order.end(),
                     [&](uint32_t a, uint32_t b) { return (*values)[a] < (*values)[b]; });
  }
  const size_t p =
      std::max<size_t>(1, static_cast<size_t>(std::floor(window * static_cast<double>(n))));
  Fenwick open(n);
  for (size_t i = 0; i < n; ++i) {
    if (open.Prefix(i + 1) - open.Prefix(i) == 0) continue;  // already swapped
    open.Remove(i);
    size_t hi = std::min(n, i + p + 1);
    int64_t before = open.Prefix(i + 1), count = open.Prefix(hi) - before;
    if (count == 0) continue;
    size_t j =
        open.Select(before + static_cast<int64_t>(random.Below(static_cast<uint64_t>(count))));
    open.Remove(j);
    std::swap((*values)[order[i]], (*values)[order[j]]);
  }
  return Ok();
}

void RandomSwap(std::vector<std::string>* values, const std::vector<std::string>& strata,
                RandomSource& random) {
  std::unordered_map<std::string, std::vector<uint32_t>> groups;
  for (size_t i = 0; i < values->size(); ++i) {
    groups[strata.empty() ? std::string() : strata[i]].push_back(static_cast<uint32_t>(i));
  }
  for (auto& [key, rows] : groups) {
    // Fisher-Yates over the stratum's rows.
    for (size_t i = rows.size(); i > 1; --i) {
      size_t j = random.Below(i);
      std::swap((*values)[rows[i - 1]], (*values)[rows[j]]);
    }
  }
}

}  // namespace cr::anonymize
