#include "privacy/dp/mechanisms.h"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>

#include "privacy/dp/samplers.h"

#ifndef CLEANROOM_TEST_HOOKS
#define CLEANROOM_TEST_HOOKS 0
#endif

namespace cr::dp {
namespace {

using u128 = unsigned __int128;

// libsodium's randombytes_buf is a system call per request; handing out a
// thread's own 4 KiB refill keeps the samplers fast and thread-safe. Spent
// bytes are wiped so noise already drawn cannot be read back from memory.
class SecureSource final : public RandomSource {
 public:
  void Fill(unsigned char* out, size_t n) override {
    thread_local std::array<unsigned char, 4096> buf;
    thread_local size_t pos = buf.size();
    while (n > 0) {
      if (pos == buf.size()) {
        randombytes_buf(buf.data(), buf.size());
        pos = 0;
      }
      size_t take = std::min(n, buf.size() - pos);
      std::memcpy(out, buf.data() + pos, take);
      sodium_memzero(buf.data() + pos, take);
      pos += take;
      out += take;
      n -= take;
    }
  }
};

// ChaCha20 keystream under a key that is the seed: reproducible streams for
// tests (the statistical tester, the floating-point attack test).
class SeededSource final : public RandomSource {
 public:
  explicit SeededSource(uint64_t seed) {
    key_.fill(0);
    for (int i = 0; i < 8; ++i) key_[i] = static_cast<unsigned char>(seed >> (8 * i));
  }
  void Fill(unsigned char* out, size_t n) override {
    while (n > 0) {
      if (pos_ == block_.size()) Refill();
      size_t take = std::min(n, block_.size() - pos_);
      std::memcpy(out, block_.data() + pos_, take);
      pos_ += take;
      out += take;
      n -= take;
    }
  }

 private:
  void Refill() {
    static const unsigned char kNonce[crypto_stream_chacha20_NONCEBYTES] = {};
    block_.fill(0);
    crypto_stream_chacha20_xor_ic(block_.data(), block_.data(), block_.size(), kNonce, counter_,
                                  key_.data());
    counter_ += block_.size() / 64;
    pos_ = 0;
  }
  std::array<unsigned char, crypto_stream_chacha20_KEYBYTES> key_;
  std::array<unsigned char, 4096> block_{};
  uint64_t counter_ = 0;
  size_t pos_ = 4096;
};

constexpr double kMaxEpsilon = 100;
constexpr int64_t kMaxL0 = 1 << 20;
// Grid steps below this add the noise in __int128 with room to spare (the
// samplers' draws stay below 2^63). Above it one step of the double is 2^73
// grid steps or more, so adding any noise the samplers can draw and rounding
// to the nearest double gives the input back: no arithmetic is needed.
constexpr double kExactSteps = 0x1p125;

bool IsWhole(double x) { return std::floor(x) == x; }

// A power of two 2^floor(log2(x)).
double FloorPow2(double x) { return std::ldexp(1.0, std::ilogb(x)); }

// The smallest power of two `den` and numerator with num/den >= x and num
// about 2^bits: a rational never smaller than the real scale (more noise,
// never less). x > 0 and finite.
void CeilRational(double x, int bits, uint64_t* num, uint64_t* den) {
  int e = std::ilogb(x);
  int shift = std::max(0, bits - e);
  double scaled = std::ldexp(x, shift);  // exact: multiplying by a power of two
  *num = static_cast<uint64_t>(std::ceil(scaled)) + 1;  // +1 absorbs x's own rounding
  *den = uint64_t{1} << shift;
}

// Phi, the standard normal CDF, via erfc for accuracy in the tails.
double Phi(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

// Balle-Wang: the Gaussian mechanism with sigma is (eps, delta)-DP iff
// Phi(l2/(2 sigma) - eps sigma/l2) - e^eps Phi(-l2/(2 sigma) - eps sigma/l2) <= delta.
double GaussianDelta(double eps, double l2, double sigma) {
  double a = l2 / (2 * sigma), b = eps * sigma / l2;
  return Phi(a - b) - std::exp(eps) * Phi(-a - b);
}

// Discrete Gaussian mass sum_z exp(-z^2 / (2 s^2)) by Poisson summation (an
// identity; three terms are exact to double precision for s >= 0.5), and an
// upper bound on the one-sided tail sum_{z > k} by the integral from k.
double GaussianMass(double s) {
  double sum = 1;
  for (int k = 1; k <= 3; ++k) sum += 2 * std::exp(-2 * M_PI * M_PI * s * s * k * k);
  return std::sqrt(2 * M_PI) * s * sum;
}
double GaussianTailBound(double s, double k) {
  return s * std::sqrt(M_PI / 2) * std::erfc(k / (s * std::sqrt(2.0)));
}

}  // namespace

uint64_t RandomSource::NextU64() {
  unsigned char b[8];
  Fill(b, sizeof b);
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(b[i]) << (8 * i);
  return v;
}

uint64_t RandomSource::Uniform(uint64_t n) {
  if (n <= 1) return 0;
  // Lemire's multiply-and-reject: the high word of r * n is uniform on
  // [0, n) once the low word's biased slice (below 2^64 mod n) is rejected.
  // The division happens only on the rare draw that lands near that slice.
  u128 m = static_cast<u128>(NextU64()) * n;
  uint64_t low = static_cast<uint64_t>(m);
  if (low < n) {
    const uint64_t threshold = (0 - n) % n;
    while (low < threshold) {
      m = static_cast<u128>(NextU64()) * n;
      low = static_cast<uint64_t>(m);
    }
  }
  return static_cast<uint64_t>(m >> 64);
}

unsigned __int128 RandomSource::Uniform128(unsigned __int128 n) {
  if (n <= 1) return 0;
  if (n <= std::numeric_limits<uint64_t>::max()) return Uniform(static_cast<uint64_t>(n));
  // Draw as many bits as n - 1 needs and reject values >= n (acceptance > 1/2).
  int bits = 128;
  while (!((n - 1) >> (bits - 1) & 1)) --bits;
  const u128 mask = bits == 128 ? ~u128{0} : (u128{1} << bits) - 1;
  for (;;) {
    u128 r = (static_cast<u128>(NextU64()) << 64 | NextU64()) & mask;
    if (r < n) return r;
  }
}

RandomSource& SecureRandom() {
  static SecureSource source;
  return source;
}

Result<std::unique_ptr<RandomSource>> SeededRandom(uint64_t seed) {
  if (!CLEANROOM_TEST_HOOKS) {
    return Fail(ErrorCode::NOT_SUPPORTED,
                "a seeded random source is for tests only; this build has no test hooks");
  }
  return std::unique_ptr<RandomSource>(new SeededSource(seed));
}

double AnalyticGaussianSigma(double epsilon, double delta, double l2) {
  double lo = 0, hi = l2;
  while (GaussianDelta(epsilon, l2, hi) > delta) {
    lo = hi;
    hi *= 2;
  }
  for (int i = 0; i < 200 && hi - lo > hi * 1e-14; ++i) {
    double mid = (lo + hi) / 2;
    if (GaussianDelta(epsilon, l2, mid) > delta) lo = mid; else hi = mid;
  }
  return hi * (1 + 1e-12);  // the upper end passes; the margin covers erfc's error
}

Result<NumericMechanism> NumericMechanism::Create(const NoiseParams& p) {
  if (!std::isfinite(p.epsilon) || p.epsilon <= 0 || p.epsilon > kMaxEpsilon) {
    return Fail(ErrorCode::BAD_INPUT, "epsilon must be a number in (0, {}]", kMaxEpsilon);
  }
  const bool gaussian = p.kind == NoiseKind::kGaussian;
  if (p.kind != NoiseKind::kLaplace && !gaussian) {
    return Fail(ErrorCode::BAD_INPUT, "noise kind must be laplace or gaussian");
  }
  if (gaussian) {
    if (!std::isfinite(p.delta) || p.delta <= 0 || p.delta >= 1) {
      return Fail(ErrorCode::BAD_INPUT, "delta must be in (0, 1) for Gaussian noise");
    }
  } else if (p.delta != 0) {
    return Fail(ErrorCode::BAD_INPUT, "delta must be 0 for Laplace noise");
  }
  if (p.l0 < 1 || p.l0 > kMaxL0) {
    return Fail(ErrorCode::BAD_INPUT, "l0 must be in [1, {}]", kMaxL0);
  }
  if (!std::isfinite(p.linf) || p.linf < std::ldexp(1.0, -40) || p.linf > std::ldexp(1.0, 40)) {
    return Fail(ErrorCode::BAD_INPUT, "linf must be a number in [2^-40, 2^40]");
  }

  NumericMechanism m;
  m.params_ = p;
  const bool integer_grid = !p.real_valued && IsWhole(p.linf);
  // The scale in grid steps must stay where the exact samplers' integers
  // cannot overflow: Laplace below 2^40, Gaussian sigma below 2^27. The
  // target (2^20 and 2^16 steps) makes rounding to the grid negligible
  // against the noise.
  const int target_bits = gaussian ? 16 : 20;
  const double cap = gaussian ? std::ldexp(1.0, 27) : std::ldexp(1.0, 40);
  auto scale_steps = [&](double g) {
    // Rounding the exact value to the grid is monotone and commutes with
    // whole-step shifts, so a change of linf moves it by <= ceil(linf/g) steps.
    double steps = std::ceil(p.linf / g);
    if (gaussian) return AnalyticGaussianSigma(p.epsilon, p.delta, std::sqrt(double(p.l0)) * steps);
    return double(p.l0) * steps / p.epsilon;
  };
  double natural = gaussian ? AnalyticGaussianSigma(p.epsilon, p.delta, std::sqrt(double(p.l0)) * p.linf)
                            : double(p.l0) * p.linf / p.epsilon;
  // A grid step above linf/2^10 would make ceil(linf/g) overstate the
  // sensitivity (more noise than asked for) by more than 2^-10.
  double g = std::min(FloorPow2(natural) * std::ldexp(1.0, -target_bits),
                      FloorPow2(p.linf) * std::ldexp(1.0, -10));
  // Whole-number linf on a grid of 1 is exact: no overstatement at all.
  if (integer_grid) g = std::max(g, 1.0);
  double steps = scale_steps(g);
  // A grid coarser than linf cannot help: one unit still moves a sum by one
  // step, so the scale in steps no longer falls (epsilon is too small).
  while (steps >= cap && g < p.linf) {
    g *= 2;
    steps = scale_steps(g);
  }
  if (!std::isfinite(steps) || steps >= cap) {
    return Fail(ErrorCode::BAD_INPUT,
                "epsilon is too small for {} noise with this l0 and delta (scale {:.3g} x linf, "
                "the exact sampler takes at most {:.3g})",
                gaussian ? "Gaussian" : "Laplace", steps, cap);
  }
  m.granularity_ = g;
  if (gaussian) {
    double sigma2 = steps * steps;
    if (sigma2 < std::ldexp(1.0, -20)) {
      return Fail(ErrorCode::BAD_INPUT, "delta and epsilon give a Gaussian scale too small to sample");
    }
    CeilRational(sigma2, 40, &m.scale_num_, &m.scale_den_);
  } else {
    CeilRational(steps, 50, &m.scale_num_, &m.scale_den_);
  }
  m.ci95_steps_ = m.ConfidenceHalfWidth(0.95) / g;
  return m;
}

int64_t NumericMechanism::SampleNoiseSteps(RandomSource& rng) const {
  if (params_.kind == NoiseKind::kGaussian) return SampleDiscreteGaussian(scale_num_, scale_den_, rng);
  return SampleDiscreteLaplace(scale_num_, scale_den_, rng);
}

double NumericMechanism::ToGridSteps(double exact) const {
  // Clamping before noise is a fixed monotone map: it cannot raise sensitivity.
  if (std::isnan(exact)) return 0;
  constexpr double kMax = std::numeric_limits<double>::max();
  return std::clamp(std::nearbyint(exact / granularity_), -kMax, kMax);
}

NoisyValue NumericMechanism::Release(__int128 steps, RandomSource& rng) const {
  // Exact: |steps| < 2^125 and the noise < 2^63. The conversion rounds the
  // noisy integer to the nearest double (ties to even), a function of the
  // noisy value alone; times a power of two it stays exact.
  __int128 noisy = steps + SampleNoiseSteps(rng);
  double value = static_cast<double>(noisy) * granularity_;
  double half = ci95_steps_ * granularity_;
  return {value, value - half, value + half};
}

NoisyValue NumericMechanism::Release(double steps, RandomSource& rng) const {
  if (std::abs(steps) < kExactSteps) return Release(static_cast<__int128>(steps), rng);
  // The noise is drawn all the same, so the work done does not depend on the
  // input; rounding steps + noise to the nearest double is steps itself here.
  (void)SampleNoiseSteps(rng);
  double value = steps * granularity_;
  double half = ci95_steps_ * granularity_;
  return {value, value - half, value + half};
}

NoisyValue NumericMechanism::AddNoise(double exact, RandomSource& rng) const {
  return Release(ToGridSteps(exact), rng);
}

NoisyValue NumericMechanism::AddNoise(int64_t exact, RandomSource& rng) const {
  // Integer inputs on a grid of 1 need no floating-point step at all.
  if (granularity_ == 1) return Release(static_cast<__int128>(exact), rng);
  return Release(ToGridSteps(static_cast<double>(exact)), rng);
}

double NumericMechanism::ConfidenceHalfWidth(double confidence) const {
  if (!(confidence > 0)) return 0;
  if (!(confidence < 1)) return std::numeric_limits<double>::infinity();
  const double alpha = 1 - confidence;  // allowed two-sided tail mass
  const double ratio = double(scale_num_) / double(scale_den_);
  int64_t k = 0;
  if (params_.kind == NoiseKind::kLaplace) {
    // P(|Z| > k) = 2 p^(k+1) / (1 + p), p = exp(-1/scale).
    double p = std::exp(-1 / ratio);
    auto tail = [&](double kk) { return 2 * std::pow(p, kk + 1) / (1 + p); };
    double guess = std::ceil(std::log(alpha * (1 + p) / 2) / std::log(p)) - 1;
    k = static_cast<int64_t>(std::max(0.0, guess) - 1);
    k = std::max<int64_t>(k, 0);
    while (tail(double(k)) > alpha) ++k;
  } else {
    double s = std::sqrt(ratio);
    double mass = GaussianMass(s);
    auto tail = [&](double kk) { return 2 * GaussianTailBound(s, kk) / mass; };
    double lo = 0, hi = s;
    while (tail(hi) > alpha) hi *= 2;
    while (hi - lo > 0.5) {
      double mid = std::floor((lo + hi) / 2);
      if (mid <= lo) break;
      if (tail(mid) > alpha) lo = mid; else hi = mid;
    }
    k = static_cast<int64_t>(std::ceil(hi));
  }
  return double(k) * granularity_;
}

double NumericMechanism::StdDev() const {
  const double ratio = double(scale_num_) / double(scale_den_);
  if (params_.kind == NoiseKind::kLaplace) {
    // Variance of the two-sided geometric: 2p / (1 - p)^2.
    double p = std::exp(-1 / ratio);
    return std::sqrt(2 * p) / (-std::expm1(-1 / ratio)) * granularity_;
  }
  // The discrete Gaussian's variance is at most sigma^2 (CKS proposition 19).
  return std::sqrt(ratio) * granularity_;
}

Result<PartitionSelector> PartitionSelector::Create(double epsilon, double delta, int64_t l0) {
  if (!std::isfinite(epsilon) || epsilon <= 0 || epsilon > 50) {
    return Fail(ErrorCode::BAD_INPUT, "partition selection epsilon must be a number in (0, 50]");
  }
  if (!std::isfinite(delta) || delta <= 0 || delta >= 1) {
    return Fail(ErrorCode::BAD_INPUT, "partition selection delta must be in (0, 1)");
  }
  if (l0 < 1 || l0 > kMaxL0) {
    return Fail(ErrorCode::BAD_INPUT, "partition selection l0 must be in [1, {}]", kMaxL0);
  }
  PartitionSelector s;
  s.epsilon_ = epsilon;
  s.delta_ = delta;
  s.l0_ = l0;
  // One unit changes up to l0 unit counts by 1 each: L1 sensitivity l0.
  CeilRational(double(l0) / epsilon, 50, &s.scale_num_, &s.scale_den_);
  s.p_ = std::exp(-double(s.scale_den_) / double(s.scale_num_));
  // Smallest T with P(1 + Z >= T) = p^(T-1) / (1 + p) <= delta / l0.
  const double per_group = delta / double(l0);
  double m = std::ceil(std::log(per_group * (1 + s.p_)) / std::log(s.p_));
  s.threshold_ = 1 + static_cast<int64_t>(std::max(1.0, m));
  while (s.KeepProbability(1) > per_group) ++s.threshold_;
  while (s.threshold_ > 2) {
    --s.threshold_;
    if (s.KeepProbability(1) > per_group) {
      ++s.threshold_;
      break;
    }
  }
  return s;
}

double PartitionSelector::KeepProbability(int64_t distinct_units) const {
  if (distinct_units <= 0) return 0;
  // P(Z >= m) for the two-sided geometric: p^m / (1 + p) when m >= 1, else
  // 1 - P(Z >= 1 - m) by symmetry.
  int64_t m = threshold_ - distinct_units;
  if (m >= 1) return std::pow(p_, double(m)) / (1 + p_);
  return 1 - std::pow(p_, double(1 - m)) / (1 + p_);
}

bool PartitionSelector::Keep(int64_t distinct_units, RandomSource& rng) const {
  if (distinct_units <= 0) return false;
  int64_t noisy = distinct_units + SampleDiscreteLaplace(scale_num_, scale_den_, rng);
  return noisy >= threshold_;
}

}  // namespace cr::dp
