#include "anonymize/random.h"

#include <sodium.h>

#include <cmath>
#include <numbers>

namespace cr::anonymize {

double RandomSource::Uniform() { return static_cast<double>(Next64() >> 11) * 0x1.0p-53; }

double RandomSource::UniformOpen() {
  while (true) {
    double u = Uniform();
    if (u > 0) return u;
  }
}

uint64_t RandomSource::Below(uint64_t bound) {
  if (bound <= 1) return 0;
  // Rejection keeps every value equally likely.
  const uint64_t limit = ~uint64_t{0} - (~uint64_t{0} % bound);
  while (true) {
    uint64_t x = Next64();
    if (x < limit) return x % bound;
  }
}

double RandomSource::Laplace(double scale) {
  double u = UniformOpen() - 0.5;  // (-0.5, 0.5)
  return -scale * std::copysign(1.0, u) * std::log(1 - 2 * std::fabs(u));
}

double RandomSource::Gaussian(double sigma) {
  double u1 = UniformOpen(), u2 = Uniform();
  return sigma * std::sqrt(-2 * std::log(u1)) * std::cos(2 * std::numbers::pi * u2);
}

uint64_t SodiumRandom::Next64() {
  uint64_t x;
  randombytes_buf(&x, sizeof x);
  return x;
}

}  // namespace cr::anonymize
