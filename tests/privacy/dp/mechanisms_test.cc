// Unit tests of the DP mechanisms: exact samplers against their closed-form
// distributions, parameter validation, the grid, confidence intervals,
// partition selection and the floating-point (Mironov) attack. Every random
// test uses a seeded source, so each run draws the same numbers: the
// tolerances are wide (>= 5 standard errors) but the outcomes are fixed.
#include "privacy/dp/mechanisms.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "privacy/dp/samplers.h"

namespace cr::dp {
namespace {

std::unique_ptr<RandomSource> Seeded(uint64_t seed) {
  auto r = SeededRandom(seed);
  EXPECT_TRUE(r.has_value());
  return std::move(*r);
}

TEST(RandomSourceTest, SeededIsReproducibleAndSeedsDiffer) {
  auto a = Seeded(7), b = Seeded(7), c = Seeded(8);
  for (int i = 0; i < 100; ++i) {
    uint64_t x = a->NextU64();
    EXPECT_EQ(x, b->NextU64());
    EXPECT_NE(x, c->NextU64());
  }
}

TEST(RandomSourceTest, UniformHasNoModuloBias) {
  // n = 3 * 2^62: a plain `% n` would make the low third twice as likely.
  auto rng = Seeded(1);
  const uint64_t n = uint64_t{3} << 62;
  int low = 0;
  const int kDraws = 60000;
  for (int i = 0; i < kDraws; ++i) low += rng->Uniform(n) < (uint64_t{1} << 62);
  EXPECT_NEAR(low / double(kDraws), 1.0 / 3, 0.01);
  EXPECT_EQ(rng->Uniform(1), 0u);
  for (int i = 0; i < 1000; ++i) EXPECT_LT(rng->Uniform(5), 5u);
}

TEST(RandomSourceTest, Uniform128StaysBelowBound) {
  auto rng = Seeded(2);
  unsigned __int128 n = (static_cast<unsigned __int128>(1) << 100) + 12345;
  int high = 0;
  for (int i = 0; i < 20000; ++i) {
    auto r = rng->Uniform128(n);
    ASSERT_LT(r, n);
    high += r >= (static_cast<unsigned __int128>(1) << 99);
  }
  EXPECT_NEAR(high / 20000.0, 0.5, 0.02);
}

TEST(RandomSourceTest, SecureRandomDrawsDifferentValues) {
  std::set<uint64_t> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(SecureRandom().NextU64());
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(SamplerTest, BernoulliExpMatchesExp) {
  auto rng = Seeded(3);
  for (auto [num, den] : {std::pair<int, int>{1, 3}, {1, 1}, {5, 2}, {0, 1}, {7, 7}}) {
    const int kDraws = 200000;
    int hits = 0;
    for (int i = 0; i < kDraws; ++i) hits += SampleBernoulliExp(num, den, *rng);
    double p = std::exp(-double(num) / den);
    double se = std::sqrt(p * (1 - p) / kDraws);
    EXPECT_NEAR(hits / double(kDraws), p, 5 * se + 1e-12) << num << "/" << den;
  }
}

// Empirical pmf of `draw` against `pmf` on [-range, range]: every point within
// 5 standard errors and the total variation distance small.
template <typename Draw, typename Pmf>
void ExpectPmf(Draw draw, Pmf pmf, int range, int draws) {
  std::map<int64_t, int> counts;
  for (int i = 0; i < draws; ++i) counts[draw()]++;
  double tv = 0;
  for (int z = -range; z <= range; ++z) {
    double p = pmf(z), f = counts[z] / double(draws);
    double se = std::sqrt(p * (1 - p) / draws);
    EXPECT_NEAR(f, p, 5 * se + 1e-9) << "at " << z;
    tv += std::abs(f - p);
  }
  EXPECT_LT(tv / 2, 0.01);
}

TEST(SamplerTest, DiscreteLaplaceMatchesTwoSidedGeometric) {
  auto rng = Seeded(4);
  for (auto [num, den] : {std::pair<uint64_t, uint64_t>{3, 2}, {1, 1}, {1, 4}, {10, 1}}) {
    double p = std::exp(-double(den) / num);
    ExpectPmf([&] { return SampleDiscreteLaplace(num, den, *rng); },
              [&](int z) { return (1 - p) / (1 + p) * std::pow(p, std::abs(z)); }, 8, 200000);
  }
}

TEST(SamplerTest, DiscreteGaussianMatchesItsPmf) {
  auto rng = Seeded(5);
  for (auto [num, den] : {std::pair<uint64_t, uint64_t>{9, 4}, {1, 1}, {1, 5}, {25, 1}}) {
    double s2 = double(num) / den;
    double mass = 0;
    for (int z = -200; z <= 200; ++z) mass += std::exp(-z * z / (2 * s2));
    ExpectPmf([&] { return SampleDiscreteGaussian(num, den, *rng); },
              [&](int z) { return std::exp(-z * z / (2 * s2)) / mass; }, 8, 200000);
  }
}

TEST(SamplerTest, DiscreteGaussianLargeSigmaHasItsVariance) {
  auto rng = Seeded(6);
  const uint64_t den = 1;
  const uint64_t num = uint64_t{1} << 32;  // sigma = 2^16
  const int kDraws = 100000;
  double sum = 0, sq = 0;
  for (int i = 0; i < kDraws; ++i) {
    double x = double(SampleDiscreteGaussian(num, den, *rng));
    sum += x;
    sq += x * x;
  }
  double var = sq / kDraws - (sum / kDraws) * (sum / kDraws);
  EXPECT_NEAR(var / double(num), 1.0, 0.03);
  EXPECT_NEAR(sum / kDraws, 0.0, 5 * 65536 / std::sqrt(kDraws));
}

TEST(NumericMechanismTest, BuildersNameTheBadParameter) {
  auto refused = [](NoiseParams p, const char* name) {
    auto m = NumericMechanism::Create(p);
    ASSERT_FALSE(m.has_value()) << name;
    EXPECT_EQ(m.error().code, ErrorCode::BAD_INPUT);
    EXPECT_NE(m.error().message.find(name), std::string::npos) << m.error().message;
  };
  NoiseParams ok{NoiseKind::kLaplace, 1.0, 0, 1, 1};
  ASSERT_TRUE(NumericMechanism::Create(ok).has_value());
  for (double eps : {0.0, -1.0, double(NAN), double(INFINITY), 1000.0}) {
    NoiseParams p = ok;
    p.epsilon = eps;
    refused(p, "epsilon");
  }
  NoiseParams p = ok;
  p.delta = 1e-5;
  refused(p, "delta");  // Laplace takes no delta
  p = ok;
  p.kind = NoiseKind::kGaussian;
  for (double d : {0.0, 1.0, -0.5, double(NAN)}) {
    p.delta = d;
    refused(p, "delta");
  }
  for (int64_t l0 : {int64_t{0}, int64_t{-3}, int64_t{1} << 40}) {
    p = ok;
    p.l0 = l0;
    refused(p, "l0");
  }
  for (double linf : {0.0, -1.0, double(NAN), double(INFINITY), 1e300}) {
    p = ok;
    p.linf = linf;
    refused(p, "linf");
  }
}

TEST(NumericMechanismTest, AnalyticGaussianMatchesGoogleVariance) {
  // gaussian_closeness_test_cases.textproto, "Default parameters": variance
  // 11.73597717285156 for epsilon = log(3), delta = 1e-5, sensitivity 1.
  double sigma = AnalyticGaussianSigma(std::log(3.0), 1e-5, 1.0);
  // Google stops its search within a tolerance; ours is tighter, same to 0.1%.
  EXPECT_NEAR(sigma * sigma / 11.73597717285156, 1.0, 1e-3);
}

TEST(NumericMechanismTest, IntegerCountsUseGridOfOne) {
  auto lap = NumericMechanism::Create({NoiseKind::kLaplace, 0.5, 0, 3, 1});
  ASSERT_TRUE(lap.has_value());
  EXPECT_EQ(lap->granularity(), 1.0);
  // Scale l0 * linf / eps = 6, rounded up, never down.
  EXPECT_GE(double(lap->laplace_num()) / double(lap->laplace_den()), 6.0);
  EXPECT_LT(double(lap->laplace_num()) / double(lap->laplace_den()), 6.0 * (1 + 1e-9));
  auto gau = NumericMechanism::Create({NoiseKind::kGaussian, 1.0, 1e-6, 1, 2});
  ASSERT_TRUE(gau.has_value());
  EXPECT_EQ(gau->granularity(), 1.0);
  double s = AnalyticGaussianSigma(1.0, 1e-6, 2.0);
  EXPECT_GE(double(gau->sigma2_num()) / double(gau->sigma2_den()), s * s);
  auto rng = Seeded(9);
  for (int i = 0; i < 1000; ++i) {
    double v = lap->AddNoise(int64_t{100}, *rng).value;
    EXPECT_EQ(v, std::floor(v));
  }
}

TEST(NumericMechanismTest, LargeCountScaleKeepsGridOfOne) {
  // sigma ~ 7e6 steps is within the exact sampler's range: a coarser grid
  // would only overstate the sensitivity of 1.
  auto m = NumericMechanism::Create({NoiseKind::kGaussian, 1e-6, 1e-10, 1, 1});
  ASSERT_TRUE(m.has_value()) << m.error().message;
  EXPECT_EQ(m->granularity(), 1.0);
}

TEST(NumericMechanismTest, LargeLinfCoarsensTheGridWithoutOverstatingIt) {
  auto m = NumericMechanism::Create({NoiseKind::kGaussian, 1e-3, 1e-6, 1, 4096});
  ASSERT_TRUE(m.has_value()) << m.error().message;
  double g = m->granularity();
  EXPECT_GT(g, 1.0);
  EXPECT_EQ(std::exp2(std::round(std::log2(g))), g);
  EXPECT_LE(g, 4096.0 / 1024);
}

TEST(NumericMechanismTest, EpsilonTooSmallForTheSamplerIsRefusedNamingEpsilon) {
  for (NoiseParams p : {NoiseParams{NoiseKind::kGaussian, 1e-9, 1e-10, 1, 1},
                        NoiseParams{NoiseKind::kLaplace, 1e-13, 0, 1, 1}}) {
    auto m = NumericMechanism::Create(p);
    ASSERT_FALSE(m.has_value());
    EXPECT_EQ(m.error().code, ErrorCode::BAD_INPUT);
    EXPECT_NE(m.error().message.find("epsilon"), std::string::npos) << m.error().message;
  }
}

TEST(NumericMechanismTest, RealSumsUseAPowerOfTwoGridAndOutputsLieOnIt) {
  for (NoiseKind kind : {NoiseKind::kLaplace, NoiseKind::kGaussian}) {
    NoiseParams p{kind, 1.1, kind == NoiseKind::kGaussian ? 1e-5 : 0.0, 2, 37.25};
    auto m = NumericMechanism::Create(p);
    ASSERT_TRUE(m.has_value());
    double g = m->granularity();
    EXPECT_EQ(std::exp2(std::round(std::log2(g))), g);
    EXPECT_LT(g, m->StdDev() / 1000);  // rounding is negligible against the noise
    auto rng = Seeded(10);
    for (int i = 0; i < 2000; ++i) {
      NoisyValue v = m->AddNoise(12345.678901, *rng);
      double steps = v.value / g;
      EXPECT_EQ(steps, std::floor(steps));
      EXPECT_EQ(v.value - v.ci_low, v.ci_high - v.value);
    }
  }
}

TEST(NumericMechanismTest, RealValuedFlagAllowsAFinerGridForWholeLinf) {
  auto coarse = NumericMechanism::Create({NoiseKind::kLaplace, 1.0, 0, 1, 1});
  NoiseParams p{NoiseKind::kLaplace, 1.0, 0, 1, 1};
  p.real_valued = true;
  auto fine = NumericMechanism::Create(p);
  ASSERT_TRUE(coarse.has_value() && fine.has_value());
  EXPECT_EQ(coarse->granularity(), 1.0);
  EXPECT_LT(fine->granularity(), 1.0 / 1000);
}

// The floating-point attack (Mironov 2012): textbook Laplace on doubles
// leaves holes in its output set that depend on the input's low-order bits,
// so an output can reveal which of two close inputs was used. Here the input
// is rounded to the grid first and the noise is an integer number of steps:
// two inputs that differ only in low-order bits give the same grid point, so
// their output distributions are the same distribution, draw for draw.
TEST(NumericMechanismTest, FloatingPointAttackFindsNothing) {
  for (NoiseKind kind : {NoiseKind::kLaplace, NoiseKind::kGaussian}) {
    NoiseParams p{kind, 1.0, kind == NoiseKind::kGaussian ? 1e-6 : 0.0, 1, 1.0};
    p.real_valued = true;
    auto m = NumericMechanism::Create(p);
    ASSERT_TRUE(m.has_value());
    const double a = 0.1 + 0.2;                  // 0.30000000000000004
    const double b = std::nextafter(a, 0.0);     // one ulp below
    const double c = std::nextafter(a, 1.0) + 1e-15;
    ASSERT_NE(a, b);
    EXPECT_EQ(m->ToGridSteps(a), m->ToGridSteps(b));
    EXPECT_EQ(m->ToGridSteps(a), m->ToGridSteps(c));
    auto ra = Seeded(11), rb = Seeded(11), rc = Seeded(11);
    std::set<double> outs_a, outs_b;
    for (int i = 0; i < 5000; ++i) {
      double va = m->AddNoise(a, *ra).value;
      double vb = m->AddNoise(b, *rb).value;
      EXPECT_EQ(va, vb);
      EXPECT_EQ(va, m->AddNoise(c, *rc).value);
      double steps = va / m->granularity();
      EXPECT_EQ(steps, std::floor(steps));  // on the grid: no input-dependent low bits
      outs_a.insert(va);
      outs_b.insert(vb);
    }
    EXPECT_EQ(outs_a, outs_b);
  }
}

// Sums far beyond 2^52 grid steps (Google's closeness cases at +-10^12 on a
// grid of 2^-15): the noise is added in exact integer arithmetic and the noisy
// number rounded to the nearest double, never clamped. A clamp kept them
// private but released a value nowhere near the sum.
TEST(NumericMechanismTest, HugeSumsAreReleasedWithoutClampingAndUnbiased) {
  for (NoiseKind kind : {NoiseKind::kLaplace, NoiseKind::kGaussian}) {
    NoiseParams p{kind, 1.0, kind == NoiseKind::kGaussian ? 1e-6 : 0.0, 1, 1.0};
    p.real_valued = true;
    auto m = NumericMechanism::Create(p);
    ASSERT_TRUE(m.has_value());
    const double g = m->granularity();
    ASSERT_GT(1e12 / g, 0x1p52);  // the case the clamp got wrong
    for (double exact : {1e12, -1e12, 0x1p70, -3e40, 1e300}) {
      SCOPED_TRACE(exact);
      const double steps = m->ToGridSteps(exact);
      EXPECT_EQ(steps * g, exact);  // whole multiples of g: the grid point is the input
      // Draw for draw, the release is the exact noisy integer rounded once.
      auto ra = Seeded(20), rn = Seeded(20);
      const int kDraws = 4000;
      double error = 0;
      for (int i = 0; i < kDraws; ++i) {
        double v = m->AddNoise(exact, *ra).value;
        int64_t n = m->SampleNoiseSteps(*rn);
        double expected = std::abs(steps) < 0x1p125
                              ? static_cast<double>(static_cast<__int128>(steps) + n) * g
                              : exact;
        ASSERT_EQ(v, expected);
        error += v - exact;  // exact: v and exact are within a factor of two
      }
      const double slack = 6 * m->StdDev() / std::sqrt(double(kDraws)) +
                           std::abs(std::nextafter(exact, 0.0) - exact);
      EXPECT_LE(std::abs(error / kDraws), slack);
    }
  }
  // Whole-number inputs on a grid of 1 near the int64 limit: no clamp either.
  auto count = NumericMechanism::Create({NoiseKind::kLaplace, 1.0, 0, 1, 1});
  ASSERT_TRUE(count.has_value());
  auto rng = Seeded(21);
  const int64_t big = std::numeric_limits<int64_t>::max() - 10;
  EXPECT_NEAR(count->AddNoise(big, *rng).value, static_cast<double>(big), 1e5);
}

// The floating-point attack at 10^12: with a grid of 1 (linf 2^20), inputs
// that differ in their low-order bits are the same grid point, so the outputs
// are the same draw for draw and lie on the grid.
TEST(NumericMechanismTest, FloatingPointAttackFindsNothingAtHugeMagnitudes) {
  NoiseParams p{NoiseKind::kLaplace, 1.0, 0, 1, 0x1p20};
  p.real_valued = true;
  auto m = NumericMechanism::Create(p);
  ASSERT_TRUE(m.has_value());
  ASSERT_EQ(m->granularity(), 1.0);
  const double a = 1e12 + 0.25, b = 1e12 + 0.125, c = std::nextafter(1e12, 0.0);
  ASSERT_NE(a, b);
  EXPECT_EQ(m->ToGridSteps(a), 1e12);
  EXPECT_EQ(m->ToGridSteps(b), 1e12);
  EXPECT_EQ(m->ToGridSteps(c), 1e12);
  auto ra = Seeded(22), rb = Seeded(22), rc = Seeded(22);
  for (int i = 0; i < 2000; ++i) {
    double va = m->AddNoise(a, *ra).value;
    EXPECT_EQ(va, m->AddNoise(b, *rb).value);
    EXPECT_EQ(va, m->AddNoise(c, *rc).value);
    EXPECT_EQ(va, std::floor(va));
  }
}

TEST(NumericMechanismTest, ConfidenceHalfWidthCoversTheExactQuantile) {
  auto lap = NumericMechanism::Create({NoiseKind::kLaplace, 1.0, 0, 1, 1});
  ASSERT_TRUE(lap.has_value());
  // Scale 1: P(|Z| > k) = 2 e^-(k+1) / (1 + e^-1) <= 0.05 first at k = 3.
  EXPECT_EQ(lap->ConfidenceHalfWidth(0.95), 3.0);
  for (NoiseKind kind : {NoiseKind::kLaplace, NoiseKind::kGaussian}) {
    NoiseParams p{kind, 0.7, kind == NoiseKind::kGaussian ? 1e-6 : 0.0, 1, 3};
    auto m = NumericMechanism::Create(p);
    ASSERT_TRUE(m.has_value());
    double hw = m->ConfidenceHalfWidth(0.9) / m->granularity();
    auto rng = Seeded(12);
    const int kDraws = 100000;
    int outside = 0;
    for (int i = 0; i < kDraws; ++i) outside += std::abs(m->SampleNoiseSteps(*rng)) > hw;
    EXPECT_LE(outside / double(kDraws), 0.1 + 5 * std::sqrt(0.09 / kDraws));
    EXPECT_GT(outside / double(kDraws), 0.05);  // not absurdly wide either
    EXPECT_GT(m->ConfidenceHalfWidth(0.99), m->ConfidenceHalfWidth(0.9));
  }
}

TEST(NumericMechanismTest, StdDevMatchesEmpirical) {
  for (NoiseKind kind : {NoiseKind::kLaplace, NoiseKind::kGaussian}) {
    NoiseParams p{kind, 0.5, kind == NoiseKind::kGaussian ? 1e-5 : 0.0, 2, 1};
    auto m = NumericMechanism::Create(p);
    ASSERT_TRUE(m.has_value());
    auto rng = Seeded(13);
    double sq = 0;
    const int kDraws = 100000;
    for (int i = 0; i < kDraws; ++i) {
      double x = m->AddNoise(int64_t{0}, *rng).value;
      sq += x * x;
    }
    EXPECT_NEAR(std::sqrt(sq / kDraws) / m->StdDev(), 1.0, 0.02);
  }
}

TEST(PartitionSelectorTest, BuildersNameTheBadParameter) {
  auto bad = [](double e, double d, int64_t l0, const char* name) {
    auto s = PartitionSelector::Create(e, d, l0);
    ASSERT_FALSE(s.has_value());
    EXPECT_EQ(s.error().code, ErrorCode::BAD_INPUT);
    EXPECT_NE(s.error().message.find(name), std::string::npos);
  };
  bad(0, 1e-5, 1, "epsilon");
  bad(NAN, 1e-5, 1, "epsilon");
  bad(1, 0, 1, "delta");
  bad(1, 1, 1, "delta");
  bad(1, 1e-5, 0, "l0");
}

// The attack partition selection stops: a group that exists only because one
// unit is in it must almost never appear, since its appearance alone reveals
// that unit's presence.
TEST(PartitionSelectorTest, SingleUnitGroupIsKeptWithProbabilityAtMostDeltaOverL0) {
  for (auto [eps, delta, l0] : {std::tuple{1.0, 1e-5, int64_t{1}}, {0.1, 1e-6, int64_t{3}},
                                {std::log(3.0), 1e-3, int64_t{10}}}) {
    auto s = PartitionSelector::Create(eps, delta, l0);
    ASSERT_TRUE(s.has_value());
    EXPECT_LE(s->KeepProbability(1), delta / double(l0));
    // And the threshold is tight: one less would break the bound.
    double p = std::exp(-eps / double(l0));
    EXPECT_GT(std::pow(p, double(s->threshold() - 2)) / (1 + p), delta / double(l0));
    EXPECT_EQ(s->KeepProbability(0), 0.0);
    auto rng = Seeded(14);
    EXPECT_FALSE(s->Keep(0, *rng));
  }
}

TEST(PartitionSelectorTest, KeepProbabilityMatchesEmpiricalRate) {
  auto s = PartitionSelector::Create(1.0, 1e-3, 1);
  ASSERT_TRUE(s.has_value());
  auto rng = Seeded(15);
  for (int64_t n : {int64_t{1}, s->threshold() - 2, s->threshold(), s->threshold() + 3}) {
    const int kDraws = 200000;
    int kept = 0;
    for (int i = 0; i < kDraws; ++i) kept += s->Keep(n, *rng);
    double p = s->KeepProbability(n);
    EXPECT_NEAR(kept / double(kDraws), p, 5 * std::sqrt(p * (1 - p) / kDraws) + 1e-6) << n;
  }
  EXPECT_GT(s->KeepProbability(1000), 0.999999);
}

}  // namespace
}  // namespace cr::dp
