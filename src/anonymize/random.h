// Randomness for noise and swapping. Production draws come from libsodium's
// CSPRNG; tests may inject a seeded source through the C++ API only (the CLI
// has no way to pass one).
#pragma once

#include <cstdint>

namespace cr::anonymize {

class RandomSource {
 public:
  virtual ~RandomSource() = default;
  virtual uint64_t Next64() = 0;

  // Uniform in [0, 1) with 53 random bits.
  double Uniform();
  // Uniform in (0, 1): never 0, so logarithms are finite.
  double UniformOpen();
  // Uniform integer in [0, bound) without modulo bias.
  uint64_t Below(uint64_t bound);
  // Laplace(0, scale) by inversion; Gaussian(0, sigma) by Box-Muller.
  double Laplace(double scale);
  double Gaussian(double sigma);
};

// libsodium randombytes_buf: the only source a release from the CLI uses.
class SodiumRandom final : public RandomSource {
 public:
  uint64_t Next64() override;
};

}  // namespace cr::anonymize
