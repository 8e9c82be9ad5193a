// Sampler throughput (samples per second) of the exact discrete Laplace and
// discrete Gaussian mechanisms at a few scales, from the cryptographic RNG,
// beside a BASELINE: Mironov's snapping Laplace mechanism (the secure
// floating-point sampler the Google library once used), written here for
// comparison only -- cleanroom releases nothing through it.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstring>

#include "privacy/dp/mechanisms.h"
#include "privacy/dp/samplers.h"

namespace {

using cr::dp::NoiseKind;
using cr::dp::NumericMechanism;
using cr::dp::SecureRandom;

void RunMechanism(benchmark::State& state, NoiseKind kind, double epsilon, double linf, bool real) {
  cr::dp::NoiseParams p{kind, epsilon, kind == NoiseKind::kGaussian ? 1e-6 : 0.0, 1, linf};
  p.real_valued = real;
  auto m = NumericMechanism::Create(p);
  if (!m) {
    state.SkipWithError(m.error().message.c_str());
    return;
  }
  auto& rng = SecureRandom();
  double sink = 0;
  for (auto _ : state) {
    sink += real ? m->AddNoise(1234.5, rng).value : m->AddNoise(int64_t{1234}, rng).value;
  }
  benchmark::DoNotOptimize(sink);
  state.counters["samples_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["grid"] = m->granularity();
}

// Counts (grid 1): scale 1/eps.
void BM_DiscreteLaplaceCount(benchmark::State& s) {
  RunMechanism(s, NoiseKind::kLaplace, 1.0 / double(s.range(0)), 1, false);
}
void BM_DiscreteGaussianCount(benchmark::State& s) {
  RunMechanism(s, NoiseKind::kGaussian, 1.0 / double(s.range(0)), 1, false);
}
// Real sums (power-of-two grid about 2^-20 of the scale for Laplace, 2^-16 of sigma).
void BM_DiscreteLaplaceSum(benchmark::State& s) {
  RunMechanism(s, NoiseKind::kLaplace, 1.0, double(s.range(0)), true);
}
void BM_DiscreteGaussianSum(benchmark::State& s) {
  RunMechanism(s, NoiseKind::kGaussian, 1.0, double(s.range(0)), true);
}

// BASELINE. Mironov 2012, "On significance of the least significant bits
// for differential privacy": clamp to [-B, B], add lambda * sign * ln(U) with
// U drawn uniformly from (0, 1] using all 52 mantissa bits plus a geometric
// exponent (so every double in the range is reachable), round to the power
// of two Lambda >= lambda, clamp again.
double SnappingLaplace(double x, double lambda, double bound, cr::dp::RandomSource& rng) {
  const double lam_pow2 = std::exp2(std::ceil(std::log2(lambda)));
  uint64_t mantissa = rng.NextU64() & ((uint64_t{1} << 52) - 1);
  int exponent = -1;
  for (;;) {  // geometric exponent: one more halving per leading zero bit
    uint64_t bits = rng.NextU64();
    if (bits != 0) {
      exponent -= __builtin_ctzll(bits);
      break;
    }
    exponent -= 64;
    if (exponent < -1074) break;
  }
  double u = std::ldexp(1.0 + std::ldexp(double(mantissa), -52), exponent);
  bool negative = rng.NextU64() & 1;
  double clamped = std::fmin(std::fmax(x, -bound), bound);
  double noisy = clamped + (negative ? -lambda : lambda) * std::log(u);
  double snapped = std::round(noisy / lam_pow2) * lam_pow2;
  return std::fmin(std::fmax(snapped, -bound), bound);
}

void BM_BaselineSnappingLaplace(benchmark::State& state) {
  auto& rng = SecureRandom();
  const double lambda = double(state.range(0));
  double sink = 0;
  for (auto _ : state) sink += SnappingLaplace(1234.5, lambda, 1e9, rng);
  benchmark::DoNotOptimize(sink);
  state.counters["samples_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

BENCHMARK(BM_BaselineSnappingLaplace)->Arg(1)->Arg(1000)->Arg(1000000);
BENCHMARK(BM_DiscreteLaplaceCount)->Arg(1)->Arg(1000)->Arg(1000000);
BENCHMARK(BM_DiscreteGaussianCount)->Arg(1)->Arg(1000)->Arg(1000000);
BENCHMARK(BM_DiscreteLaplaceSum)->Arg(1)->Arg(1000)->Arg(1000000);
BENCHMARK(BM_DiscreteGaussianSum)->Arg(1)->Arg(1000)->Arg(1000000);

}  // namespace

BENCHMARK_MAIN();
