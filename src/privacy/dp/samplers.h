// Exact samplers over the integers (Canonne, Kamath and Steinke 2020,
// "The Discrete Gaussian for Differential Privacy", algorithms 1-3) in integer
// arithmetic, drawing only uniform integers from a RandomSource.
#pragma once

#include <cstdint>

#include "privacy/dp/mechanisms.h"

namespace cr::dp {

// Bernoulli(num / den), 0 <= num <= den, den >= 1.
bool SampleBernoulli(unsigned __int128 num, unsigned __int128 den, RandomSource& rng);

// Bernoulli(exp(-num / den)), num >= 0, 1 <= den <= 2^120 (algorithm 1).
bool SampleBernoulliExp(unsigned __int128 num, unsigned __int128 den, RandomSource& rng);

// Discrete Laplace with scale num/den: P(x) proportional to exp(-|x| den/num)
// (algorithm 2). num, den in [1, 2^62].
int64_t SampleDiscreteLaplace(uint64_t num, uint64_t den, RandomSource& rng);

// Discrete Gaussian with variance parameter sigma^2 = num/den: P(x)
// proportional to exp(-x^2 / (2 sigma^2)) (algorithm 3). sigma^2 in
// [2^-20, 2^54] with num <= 2^55 and den <= 2^62 keep every intermediate under
// 2^127 (NumericMechanism chooses them so).
int64_t SampleDiscreteGaussian(uint64_t num, uint64_t den, RandomSource& rng);

}  // namespace cr::dp
