// Transforms do what they promise: rank swaps keep the multiset and stay within
// the window, noise has the configured scale (seeded source), masks keep what they say.
#include "anonymize/transforms.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "anonymize/hierarchy.h"

namespace cr::anonymize {
namespace {

// SplitMix64: a seeded source for tests only; the library has no such class.
class SeededRandom final : public RandomSource {
 public:
  explicit SeededRandom(uint64_t seed) : s_(seed) {}
  uint64_t Next64() override {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }

 private:
  uint64_t s_;
};

std::vector<std::string> Numbers(int n) {
  std::vector<std::string> v;
  for (int i = 0; i < n; ++i) v.push_back(std::to_string(i * 7 % n));  // a permutation of 0..n-1
  return v;
}

TEST(TransformsTest, RankSwapKeepsMultisetAndWindow) {
  SeededRandom rnd(1);
  const int n = 2000;
  std::vector<std::string> values = Numbers(n);
  std::vector<std::string> before = values;
  ASSERT_TRUE(RankSwap(&values, 0.05, rnd, "x"));
  std::multiset<std::string> a(before.begin(), before.end()), b(values.begin(), values.end());
  EXPECT_EQ(a, b);
  // Values are 0..n-1, so a value's rank is the value itself.
  int moved = 0;
  for (int i = 0; i < n; ++i) {
    int d = std::abs(std::stoi(values[i]) - std::stoi(before[i]));
    EXPECT_LE(d, n * 0.05);
    moved += d > 0;
  }
  EXPECT_GT(moved, n * 0.9);  // it did swap
}

TEST(TransformsTest, RankSwapRejectsBadWindow) {
  SeededRandom rnd(1);
  std::vector<std::string> v = {"1", "2"};
  EXPECT_EQ(RankSwap(&v, 0, rnd, "x").error().code, ErrorCode::BAD_INPUT);
  EXPECT_EQ(RankSwap(&v, 1.5, rnd, "x").error().code, ErrorCode::BAD_INPUT);
}

TEST(TransformsTest, RandomSwapStaysWithinStrata) {
  SeededRandom rnd(2);
  std::vector<std::string> values, strata;
  for (int i = 0; i < 1000; ++i) {
    strata.push_back(i % 2 ? "east" : "west");
    values.push_back(std::string(i % 2 ? "e" : "w").append(std::to_string(i)));
  }
  auto before = values;
  RandomSwap(&values, strata, rnd);
  int changed = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(values[i][0], strata[i] == "east" ? 'e' : 'w');
    changed += values[i] != before[i];
  }
  EXPECT_GT(changed, 900);
  std::sort(values.begin(), values.end());
  std::sort(before.begin(), before.end());
  EXPECT_EQ(values, before);
}

struct Moments {
  double mean = 0, var = 0;
};
Moments Measure(NoiseSpec spec, double value, int n, uint64_t seed) {
  SeededRandom rnd(seed);
  std::vector<std::string> v(n, fmt::format("{:.3f}", value));
  EXPECT_TRUE(AddNoise(&v, spec, rnd, "x"));
  Moments m;
  for (auto& s : v) m.mean += (std::stod(s) - value) / n;
  for (auto& s : v) m.var += std::pow(std::stod(s) - value - m.mean, 2) / (n - 1);
  return m;
}

TEST(TransformsTest, LaplaceNoiseHasConfiguredScale) {
  // Laplace(b): mean 0, variance 2 b^2. 200k draws: the variance estimate's
  // relative standard error is about sqrt(5/n) = 0.5%; allow 3%.
  Moments m = Measure({NoiseSpec::Kind::kLaplace, 500}, 1000, 200000, 7);
  EXPECT_NEAR(m.mean, 0, 10);
  EXPECT_NEAR(m.var / (2 * 500.0 * 500.0), 1.0, 0.03);
}

TEST(TransformsTest, GaussianNoiseHasConfiguredScale) {
  Moments m = Measure({NoiseSpec::Kind::kGaussian, 20}, 0, 200000, 8);
  EXPECT_NEAR(m.mean, 0, 0.5);
  EXPECT_NEAR(std::sqrt(m.var), 20, 0.3);
}

TEST(TransformsTest, MultiplicativeNoiseIsRelative) {
  Moments m = Measure({NoiseSpec::Kind::kMultiplicative, 0.05}, 10000, 200000, 9);
  EXPECT_NEAR(std::sqrt(m.var), 500, 8);
}

TEST(TransformsTest, NoiseKeepsDecimalsAndRejectsText) {
  SeededRandom rnd(3);
  std::vector<std::string> v = {"10", "12", ""};
  ASSERT_TRUE(AddNoise(&v, {NoiseSpec::Kind::kLaplace, 1}, rnd, "x"));
  EXPECT_EQ(v[0].find('.'), std::string::npos);
  EXPECT_EQ(v[2], "");
  std::vector<std::string> w = {"1.25", "2.5"};
  ASSERT_TRUE(AddNoise(&w, {NoiseSpec::Kind::kLaplace, 1}, rnd, "x"));
  EXPECT_EQ(w[1].size() - w[1].find('.'), 3u);
  std::vector<std::string> bad = {"1", "abc"};
  EXPECT_EQ(AddNoise(&bad, {NoiseSpec::Kind::kLaplace, 1}, rnd, "x").error().code,
            ErrorCode::BAD_INPUT);
}

TEST(TransformsTest, SodiumSourceIsUniformEnough) {
  SodiumRandom rnd;
  double sum = 0;
  for (int i = 0; i < 10000; ++i) sum += rnd.Uniform();
  EXPECT_NEAR(sum / 10000, 0.5, 0.02);
  EXPECT_LT(rnd.Below(10), 10u);
}

TEST(TransformsTest, MasksKeepWhatTheySay) {
  EXPECT_EQ(MaskValue("4111111111111111", 0, 4), "************1111");
  EXPECT_EQ(MaskValue("alice@example.com", 2, 0), "al***************");
  EXPECT_EQ(MaskValue("abcdef", 1, 1), "a****f");
  EXPECT_EQ(MaskValue("1234", 0, 4), "****");  // never the whole value
  EXPECT_EQ(MaskValue("Zoë Ångström", 1, 1), "Z**********m");
}

TEST(TransformsTest, PseudonymsAreKeyedPerColumnAndStable) {
  ASSERT_TRUE(crypto::Init());
  crypto::SecureBuffer secret("0123456789abcdef0123456789abcdef", 32);
  crypto::SecureBuffer other("fedcba9876543210fedcba9876543210", 32);
  Pseudonymizer a(secret, "name"), b(secret, "email"), c(other, "name");
  std::string p = a.Pseudonym("Alice");
  EXPECT_EQ(p.size(), 32u);
  EXPECT_EQ(p, a.Pseudonym("Alice"));
  EXPECT_NE(p, a.Pseudonym("alice"));
  EXPECT_NE(p, b.Pseudonym("Alice"));
  EXPECT_NE(p, c.Pseudonym("Alice"));
  EXPECT_EQ(p.find("Alice"), std::string::npos);
}

TEST(HierarchyTest, RulesBuildTrees) {
  std::vector<std::string> zips = {"02139", "02138", "10001"};
  HierarchySpec prefix;
  prefix.kind = HierarchySpec::Kind::kPrefix;
  auto h = BuildHierarchy(prefix, zips, "zip");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->Label(1, 0), "0213*");
  EXPECT_EQ(h->Label(2, 0), "021**");
  EXPECT_EQ(h->Label(5, 2), "*****");
  HierarchySpec dates;
  dates.kind = HierarchySpec::Kind::kDate;
  dates.date_levels = {"month", "year"};
  auto d = BuildHierarchy(dates, {"2024-03-05", "2024-11-30"}, "visit");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->Label(1, 0), "2024-03");
  EXPECT_EQ(d->Label(2, 1), "2024");
  EXPECT_EQ(d->height(), 2);
  HierarchySpec iv;
  iv.kind = HierarchySpec::Kind::kIntervals;
  iv.widths = {1000, 10000};
  iv.top_code = 50000;
  iv.bottom_code = 100;
  auto i = BuildHierarchy(iv, {"1500", "60000", "50", "9999"}, "income");
  ASSERT_TRUE(i);
  EXPECT_EQ(i->Label(1, 0), "[1000, 2000)");
  EXPECT_EQ(i->Label(2, 0), "[0, 10000)");
  EXPECT_EQ(i->Label(1, 1), ">=50000");
  EXPECT_EQ(i->Label(1, 2), "<100");
  EXPECT_EQ(i->Label(i->height(), 1), "*");
  // Bad rules fail with BAD_INPUT.
  iv.widths = {1000, 1500};
  EXPECT_EQ(BuildHierarchy(iv, {"1"}, "income").error().code, ErrorCode::BAD_INPUT);
  iv.widths = {10};
  EXPECT_EQ(BuildHierarchy(iv, {"x"}, "income").error().code, ErrorCode::BAD_INPUT);
  EXPECT_EQ(BuildHierarchy(dates, {"03/05/2024"}, "visit").error().code, ErrorCode::BAD_INPUT);
}

TEST(HierarchyTest, NonTreeIsRejected) {
  // "a" and "b" share level 1 but part at level 2.
  auto h = HierarchyFromChains({"a", "b"}, {{"x", "p"}, {"x", "q"}}, "c");
  ASSERT_FALSE(h);
  EXPECT_EQ(h.error().code, ErrorCode::BAD_INPUT);
}

}  // namespace
}  // namespace cr::anonymize
