#include "privacy/dp/samplers.h"

namespace cr::dp {

using u128 = unsigned __int128;

bool SampleBernoulli(u128 num, u128 den, RandomSource& rng) {
  if (num >= den) return true;
  if (num == 0) return false;
  return rng.Uniform128(den) < num;
}

// CKS algorithm 1. For gamma in [0, 1]: K counts the trials of
// Bernoulli(gamma/K) until the first failure, and exp(-gamma) is the
// probability that K ends odd. gamma > 1 is split into floor(gamma) draws of
// Bernoulli(exp(-1)) and one of the fractional part, all of which must succeed.
bool SampleBernoulliExp(u128 num, u128 den, RandomSource& rng) {
  while (num > den) {
    if (!SampleBernoulliExp(1, 1, rng)) return false;
    num -= den;
  }
  u128 k = 1;
  while (SampleBernoulli(num, den * k, rng)) ++k;
  return (k & 1) == 1;
}

// CKS algorithm 2 with scale num/den (their t = num, s = den): U + num*V is
// geometric with ratio exp(-1/num) (U uniform below num, kept with probability
// exp(-U/num); V geometric with ratio exp(-1)), so Y = floor(X/den) is
// geometric with ratio exp(-den/num); a random sign, rejecting "-0", makes it
// two-sided.
int64_t SampleDiscreteLaplace(uint64_t num, uint64_t den, RandomSource& rng) {
  for (;;) {
    uint64_t u = rng.Uniform(num);
    if (!SampleBernoulliExp(u, num, rng)) continue;
    uint64_t v = 0;
    while (SampleBernoulliExp(1, 1, rng)) ++v;
    u128 x = static_cast<u128>(u) + static_cast<u128>(num) * v;
    u128 y = x / den;
    // A draw past 2^62 has probability below exp(-2^20) at the scales
    // NumericMechanism allows; redrawing keeps the arithmetic exact.
    if (y > (static_cast<u128>(1) << 62)) continue;
    bool negative = rng.Uniform(2) == 1;
    if (negative && y == 0) continue;
    return negative ? -static_cast<int64_t>(y) : static_cast<int64_t>(y);
  }
}

// CKS algorithm 3: Y from the discrete Laplace of scale t = floor(sigma)+1,
// accepted with probability exp(-(|Y| - sigma^2/t)^2 / (2 sigma^2)). With
// sigma^2 = num/den that exponent is (|Y| t den - num)^2 / (2 num t^2 den).
int64_t SampleDiscreteGaussian(uint64_t num, uint64_t den, RandomSource& rng) {
  // t = floor(sigma) + 1, with floor(sigma) the largest s such that s^2 <= num/den.
  uint64_t lo = 0, hi = uint64_t{1} << 28;
  while (lo < hi) {
    uint64_t mid = lo + (hi - lo + 1) / 2;
    if (static_cast<u128>(mid) * mid * den <= num) lo = mid; else hi = mid - 1;
  }
  const uint64_t scale = lo + 1;
  const u128 limit = static_cast<u128>(1) << 63;
  const u128 denom = static_cast<u128>(2) * num * scale * scale * den;
  for (;;) {
    int64_t y = SampleDiscreteLaplace(scale, 1, rng);
    uint64_t abs_y = y < 0 ? static_cast<uint64_t>(-y) : static_cast<uint64_t>(y);
    u128 a = static_cast<u128>(abs_y) * scale * den;
    // |Y| beyond 2^63 / (t den) is more than 2^8 sigma from 0 at the allowed
    // sigma: acceptance probability below exp(-2^15), so rejecting it outright
    // is indistinguishable from the exact test.
    if (a >= limit) continue;
    u128 diff = a >= num ? a - num : num - a;
    if (SampleBernoulliExp(diff * diff, denom, rng)) return y;
  }
}

}  // namespace cr::dp
