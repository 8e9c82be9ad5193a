// Differential-privacy mechanisms: exact discrete Laplace and discrete Gaussian
// noise on a fixed-point grid, and private partition selection. No DuckDB, no
// HTTP, no floating-point noise (Mironov's attack on textbook Laplace).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "common/error.h"

namespace cr::dp {

// Uniform random bits. Production: SecureRandom() (libsodium randombytes_buf,
// thread-safe). Tests: SeededRandom(seed) (ChaCha20 keystream), refused with
// NOT_SUPPORTED when the build has no test hooks (CLEANROOM_TEST_HOOKS off,
// i.e. -DCLEANROOM_RELEASE=ON).
class RandomSource {
 public:
  virtual ~RandomSource() = default;
  virtual void Fill(unsigned char* out, size_t n) = 0;
  uint64_t NextU64();
  // Uniform on [0, n), n >= 1, no modulo bias (rejection).
  uint64_t Uniform(uint64_t n);
  // Uniform on [0, n) for n >= 1 up to 2^127: the samplers' Bernoulli trials
  // with denominators beyond 64 bits.
  unsigned __int128 Uniform128(unsigned __int128 n);
};
RandomSource& SecureRandom();
Result<std::unique_ptr<RandomSource>> SeededRandom(uint64_t seed);

enum class NoiseKind { kLaplace, kGaussian };

// The noise for one aggregate, given this aggregate's share of the budget.
struct NoiseParams {
  NoiseKind kind = NoiseKind::kLaplace;
  double epsilon = 0;   // > 0 and finite
  double delta = 0;     // 0 for Laplace; in (0, 1) for Gaussian
  int64_t l0 = 1;       // partitions one unit may contribute to, >= 1
  double linf = 1;      // largest |contribution| of one unit to one partition, > 0 and finite
  // The inputs are real numbers (a SUM over a DOUBLE column): the grid may be
  // finer than 1 even when linf is a whole number. False (counts, integer
  // sums) keeps the grid at 1 or coarser when linf is a whole number.
  bool real_valued = false;
};

// A released noisy value: a multiple of the mechanism's granularity, with a
// symmetric 95% confidence interval for the exact value.
struct NoisyValue {
  double value = 0;
  double ci_low = 0;
  double ci_high = 0;
};

// Adds discrete Laplace or discrete Gaussian noise on a fixed-point grid
// (granularity: a power of two chosen from the scale, 1 for integer counts
// with integer linf); the exact input is rounded to the grid first. The sum
// of grid steps and noise is exact integer arithmetic at every magnitude a
// double can hold, and the released value is that exact noisy number rounded
// to the nearest double: on the grid below 2^53 steps, on the double's own
// (coarser, power-of-two) grid above it. The rounding depends on the noisy
// value only, never on the exact input, so it is post-processing and costs
// no privacy; nothing is clamped.
class NumericMechanism {
 public:
  // BAD_INPUT naming the parameter (epsilon, delta, l0, linf) that is out of
  // range or would overflow the exact samplers.
  static Result<NumericMechanism> Create(const NoiseParams& p);
  NoisyValue AddNoise(double exact, RandomSource& rng) const;
  NoisyValue AddNoise(int64_t exact, RandomSource& rng) const;
  double granularity() const { return granularity_; }
  // Half-width in value units of a symmetric interval holding the noise with
  // at least `confidence` (in (0, 1)); never narrower than the exact quantile.
  double ConfidenceHalfWidth(double confidence) const;
  double StdDev() const;
  const NoiseParams& params() const { return params_; }

  // The exact noise distribution, for tests and docs: discrete Laplace with
  // scale laplace_num/laplace_den grid steps, or discrete Gaussian with
  // variance sigma2_num/sigma2_den grid steps squared.
  uint64_t laplace_num() const { return scale_num_; }
  uint64_t laplace_den() const { return scale_den_; }
  uint64_t sigma2_num() const { return scale_num_; }
  uint64_t sigma2_den() const { return scale_den_; }
  // The noise in grid steps (one draw): what AddNoise adds, times granularity().
  int64_t SampleNoiseSteps(RandomSource& rng) const;
  // The input rounded to the grid, in grid steps: a whole number, exact (a
  // power-of-two division only moves the exponent). NaN is 0, and beyond the
  // largest double is the largest double: fixed monotone maps that cannot
  // raise sensitivity.
  double ToGridSteps(double exact) const;

 private:
  NumericMechanism() = default;
  // `steps` is a whole number of grid steps, any magnitude.
  NoisyValue Release(double steps, RandomSource& rng) const;
  NoisyValue Release(__int128 steps, RandomSource& rng) const;

  NoiseParams params_;
  double granularity_ = 1;
  uint64_t scale_num_ = 1;  // Laplace: scale; Gaussian: variance (grid units)
  uint64_t scale_den_ = 1;
  double ci95_steps_ = 0;  // ConfidenceHalfWidth(0.95) in grid steps, computed once
};

// Private partition selection by Laplace thresholding (the Google library's
// LaplacePartitionSelection, on the integers): the unit count gets discrete
// Laplace noise of scale l0/epsilon and the group is kept when the noisy count
// reaches a threshold chosen so a group of one unit is kept with probability
// at most delta/l0 (so at most delta over the l0 groups a unit can touch).
class PartitionSelector {
 public:
  // BAD_INPUT naming epsilon (> 0, finite, <= 50), delta (in (0, 1)) or l0 (>= 1).
  static Result<PartitionSelector> Create(double epsilon, double delta, int64_t l0);
  bool Keep(int64_t distinct_units, RandomSource& rng) const;
  // Exact probability that Keep returns true (0 for no units).
  double KeepProbability(int64_t distinct_units) const;
  // The noisy count must be >= threshold() to keep the group.
  int64_t threshold() const { return threshold_; }

 private:
  PartitionSelector() = default;
  double epsilon_ = 0, delta_ = 0;
  int64_t l0_ = 1;
  uint64_t scale_num_ = 1, scale_den_ = 1;  // discrete Laplace scale
  double p_ = 0;                            // exp(-den/num): the geometric ratio
  int64_t threshold_ = 0;
};

// Analytic Gaussian calibration (Balle and Wang 2018): the smallest sigma with
// which the Gaussian mechanism of L2 sensitivity `l2` is (epsilon, delta)-DP.
double AnalyticGaussianSigma(double epsilon, double delta, double l2);

}  // namespace cr::dp
