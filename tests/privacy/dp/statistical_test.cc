// Google's statistical DP tests (data/dp-tests/, provenance in data/README.md)
// run against this project's mechanisms with the files' own parameters and
// Google's decision procedure (cc/testing/statistical_tests_utils and the
// Java StatisticalTestsUtil / VotingUtil of google/differential-privacy):
//  - *_dp_test_cases: samples of the aggregate on two neighbouring inputs,
//    discretised to the case's granularity; a vote accepts when the
//    histogram test of approximate DP passes both ways (test value
//    sum max(0, (cA - e^eps cB) / n) < delta + delta_tolerance).
//  - *_closeness_test_cases: samples of the noisy raw_input against the
//    reference distribution (continuous Laplace or Gaussian of the given mean
//    and variance), discretised; a vote accepts when the collision-based L2
//    closeness statistic is below (l2_tolerance^2 n (n - 1)) / 4.
// A case passes by majority over the file's voting_parameters.number_of_votes,
// stopping once either side has a majority (VotingUtil.runBallot).
// validity_parameters calibrate the case files themselves (Google's
// *ValidityTest), not the mechanism, so they are read but not used here.
//
// Built twice: the smoke run (label dp, in `make test`) takes the first case
// of each file, the full run (labels statistical;slow, `make
// test-statistical`) every case. Both keep the files' sample counts and
// votes: the tolerances are calibrated for them, and one vote alone rejects
// a tight mechanism (ours: the discrete Laplace meets e^epsilon exactly on
// half its support) about one time in seven, where the majority of nine
// accepts with probability above 0.999. Seeds are fixed per case and vote,
// so an outcome repeats.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>
#include <sstream>
#include <unordered_map>

#include "privacy/dp/mechanisms.h"
#include "privacy/dp/textproto.h"

#ifndef DP_STATISTICAL_FULL
#define DP_STATISTICAL_FULL 0
#endif

namespace cr::dp {
namespace {

using testing::TextMessage;
using testing::TextProtoParser;

constexpr bool kFull = DP_STATISTICAL_FULL;
constexpr size_t kSmokeCasesPerFile = 1;

enum class Kind { kCount, kBoundedSum, kLongBoundedSum, kLaplaceCloseness, kGaussianCloseness };

struct Case {
  Kind kind;
  std::string file;
  int index = 0;
  std::string name;
  int votes = 1;
  std::shared_ptr<TextMessage> msg;
};

struct FileSpec {
  const char* file;
  const char* field;
  Kind kind;
};
constexpr FileSpec kFiles[] = {
    {"count_dp_test_cases.textproto", "count_dp_test_case", Kind::kCount},
    {"bounded_sum_dp_test_cases.textproto", "bounded_sum_dp_test_case", Kind::kBoundedSum},
    {"long_bounded_sum_dp_test_cases.textproto", "long_bounded_sum_dp_test_case",
     Kind::kLongBoundedSum},
    {"laplace_closeness_test_cases.textproto", "distribution_closeness_test_case",
     Kind::kLaplaceCloseness},
    {"gaussian_closeness_test_cases.textproto", "distribution_closeness_test_case",
     Kind::kGaussianCloseness},
};

std::vector<Case> LoadCases() {
  std::vector<Case> out;
  for (const FileSpec& f : kFiles) {
    std::ifstream in(std::string(CLEANROOM_DATA_DIR) + "/dp-tests/" + f.file);
    std::stringstream ss;
    ss << in.rdbuf();
    TextMessage root = TextProtoParser(ss.str()).Parse();
    int votes = static_cast<int>(root.Msg("voting_parameters").Num("number_of_votes", 1));
    const auto& cases = root.All(f.field);
    for (size_t i = 0; i < cases.size(); ++i) {
      if (!kFull && i >= kSmokeCasesPerFile) break;
      out.push_back({f.kind, f.file, static_cast<int>(i), cases[i].message->Str("name"),
                     votes, cases[i].message});
    }
  }
  return out;
}

const std::vector<Case>& AllCases() {
  static const std::vector<Case> cases = LoadCases();
  return cases;
}

using Histogram = std::unordered_map<int64_t, int64_t>;

// Google's discretize(): round(sample / granularity), as a bucket index.
int64_t Bucket(double sample, double granularity) {
  return static_cast<int64_t>(std::llround(sample / granularity));
}

double ApproxDpTestValue(const Histogram& a, const Histogram& b, double epsilon, double n) {
  double value = 0;
  for (const auto& [k, ca] : a) {
    auto it = b.find(k);
    double cb = it == b.end() ? 0 : double(it->second);
    value += std::max(0.0, (double(ca) - std::exp(epsilon) * cb) / n);
  }
  return value;
}

bool VerifyApproximateDp(const Histogram& a, const Histogram& b, double n, double epsilon,
                         double delta, double tolerance) {
  return ApproxDpTestValue(a, b, epsilon, n) < delta + tolerance &&
         ApproxDpTestValue(b, a, epsilon, n) < delta + tolerance;
}

bool VerifyCloseness(const Histogram& a, const Histogram& b, double n, double l2_tolerance) {
  double self_a = 0, self_b = 0, cross = 0;
  for (const auto& [k, c] : a) self_a += double(c) * double(c - 1) / 2;
  for (const auto& [k, c] : b) self_b += double(c) * double(c - 1) / 2;
  for (const auto& [k, c] : a) {
    auto it = b.find(k);
    if (it != b.end()) cross += double(c) * double(it->second);
  }
  double value = self_a + self_b - ((n - 1) / n) * cross;
  double threshold = (l2_tolerance * (n - 1)) * (l2_tolerance * n) / 4.0;
  return value < threshold;
}

NoiseKind KindOf(const std::string& noise_type) {
  return noise_type == "GAUSSIAN" ? NoiseKind::kGaussian : NoiseKind::kLaplace;
}

uint64_t SeedOf(const Case& c, int vote, int stream) {
  return (uint64_t(c.kind) << 48) ^ (uint64_t(c.index) << 32) ^ (uint64_t(vote) << 8) ^ uint64_t(stream);
}

std::unique_ptr<RandomSource> Rng(uint64_t seed) {
  auto r = SeededRandom(seed);
  if (!r) throw std::runtime_error(r.error().ToString());
  return std::move(*r);
}

// One vote of an approximate-DP case.
bool DpVote(const Case& c, int vote) {
  const TextMessage& test = c.msg->Msg("dp_test_parameters");
  const char* sampling_field = c.kind == Kind::kCount          ? "count_sampling_parameters"
                               : c.kind == Kind::kBoundedSum ? "bounded_sum_sampling_parameters"
                                                             : "long_bounded_sum_sampling_parameters";
  const TextMessage& s = c.msg->Msg(sampling_field);
  NoiseParams p;
  p.kind = KindOf(s.Str("noise_type", "LAPLACE"));
  p.epsilon = s.Num("epsilon");
  p.delta = p.kind == NoiseKind::kGaussian ? s.Num("delta") : 0.0;
  p.l0 = static_cast<int64_t>(s.Num("max_partitions_contributed", 1));
  double exact_a = 0, exact_b = 0;
  if (c.kind == Kind::kCount) {
    p.linf = 1;  // Count: each increment is one contribution
    for (double x : s.Nums("raw_increment_by")) exact_a += x;
    for (double x : s.Nums("neighbour_raw_increment_by")) exact_b += x;
  } else {
    // BoundedSum: entries clamped to [lower, upper]; one unit moves the sum
    // of a partition by at most max(|lower|, |upper|).
    double lo = s.Num("lower_bound"), hi = s.Num("upper_bound");
    p.linf = std::max(std::abs(lo), std::abs(hi));
    p.real_valued = c.kind == Kind::kBoundedSum;
    for (double x : s.Nums("raw_entry")) exact_a += std::clamp(x, lo, hi);
    for (double x : s.Nums("neighbour_raw_entry")) exact_b += std::clamp(x, lo, hi);
  }
  auto m = NumericMechanism::Create(p);
  if (!m) throw std::runtime_error(m.error().ToString());
  const bool integral = c.kind != Kind::kBoundedSum;
  const double granularity = test.Num("granularity", 1.0);
  const int64_t n = static_cast<int64_t>(s.Num("number_of_samples"));
  auto rng = Rng(SeedOf(c, vote, 0));
  Histogram a, b;
  for (int64_t i = 0; i < n; ++i) {
    double va = integral ? m->AddNoise(static_cast<int64_t>(exact_a), *rng).value
                         : m->AddNoise(exact_a, *rng).value;
    double vb = integral ? m->AddNoise(static_cast<int64_t>(exact_b), *rng).value
                         : m->AddNoise(exact_b, *rng).value;
    a[Bucket(va, granularity)]++;
    b[Bucket(vb, granularity)]++;
  }
  return VerifyApproximateDp(a, b, double(n), test.Num("epsilon"), test.Num("delta"),
                             test.Num("delta_tolerance"));
}

// A reference sample, already as a bucket of `granularity`. Gaussian: the
// standard library's normal. Laplace: drawn bucket by bucket from the exact
// probabilities of the discretised continuous Laplace (a centre bucket, then
// a sign and a geometric distance), so no floating-point Laplace sampler
// exists even here.
class Reference {
 public:
  Reference(bool gaussian, double mean, double variance, double granularity, uint64_t seed)
      : gaussian_(gaussian), mean_(mean), granularity_(granularity), gen_(seed),
        normal_(mean, std::sqrt(variance)) {
    double b = std::sqrt(variance / 2);
    p_zero_ = -std::expm1(-granularity / (2 * b));
    geometric_ = std::geometric_distribution<int64_t>(-std::expm1(-granularity / b));
  }
  int64_t Next() {
    if (gaussian_) return Bucket(normal_(gen_), granularity_);
    int64_t centre = Bucket(mean_, granularity_);
    if (unit_(gen_) < p_zero_) return centre;
    int64_t k = 1 + geometric_(gen_);
    return unit_(gen_) < 0.5 ? centre - k : centre + k;
  }

 private:
  bool gaussian_;
  double mean_, granularity_;
  std::mt19937_64 gen_;
  std::normal_distribution<double> normal_;
  std::uniform_real_distribution<double> unit_{0.0, 1.0};
  std::geometric_distribution<int64_t> geometric_;
  double p_zero_ = 0;
};

bool ClosenessVote(const Case& c, int vote) {
  const TextMessage& t = c.msg->Msg("closeness_test_parameters");
  const TextMessage& s = c.msg->Msg("noise_sampling_parameters");
  const bool gaussian = c.kind == Kind::kGaussianCloseness;
  NoiseParams p;
  p.kind = gaussian ? NoiseKind::kGaussian : NoiseKind::kLaplace;
  p.epsilon = s.Num("epsilon");
  p.delta = gaussian ? s.Num("delta") : 0.0;
  p.l0 = static_cast<int64_t>(s.Num("l0_sensitivity", 1));
  p.linf = s.Num("linf_sensitivity");
  p.real_valued = true;
  auto m = NumericMechanism::Create(p);
  if (!m) throw std::runtime_error(m.error().ToString());
  const double granularity = t.Num("granularity");
  const int64_t n = static_cast<int64_t>(s.Num("number_of_samples"));
  const double raw = s.Num("raw_input");
  auto rng = Rng(SeedOf(c, vote, 0));
  Reference ref(gaussian, t.Num("mean"), t.Num("variance"), granularity, SeedOf(c, vote, 1));
  Histogram a, b;
  for (int64_t i = 0; i < n; ++i) {
    a[Bucket(m->AddNoise(raw, *rng).value, granularity)]++;
    b[ref.Next()]++;
  }
  return VerifyCloseness(a, b, double(n), t.Num("l2_tolerance"));
}

class GoogleDpTestCase : public ::testing::TestWithParam<size_t> {};

TEST_P(GoogleDpTestCase, PassesByMajorityVote) {
  const Case& c = AllCases()[GetParam()];
  SCOPED_TRACE(c.file + ": " + c.name);
  const bool closeness = c.kind == Kind::kLaplaceCloseness || c.kind == Kind::kGaussianCloseness;
  int accept = 0, reject = 0, vote = 0;
  while (accept <= c.votes / 2 && reject <= c.votes / 2) {
    bool ok = closeness ? ClosenessVote(c, vote) : DpVote(c, vote);
    ++vote;
    (ok ? accept : reject)++;
  }
  EXPECT_GT(accept, reject) << accept << " of " << vote << " votes accepted";
}

std::string CaseName(const ::testing::TestParamInfo<size_t>& info) {
  const Case& c = AllCases()[info.param];
  std::string file = c.file.substr(0, c.file.find("_test_cases"));
  return file + "_" + std::to_string(c.index);
}

INSTANTIATE_TEST_SUITE_P(DataDpTests, GoogleDpTestCase,
                         ::testing::Range<size_t>(0, AllCases().size()), CaseName);

TEST(TextProtoTest, ReadsTheCaseFiles) {
  // Every file parses and yields its cases (the smoke run takes one of each).
  EXPECT_EQ(AllCases().size(), kFull ? 36u + 38u + 38u + 19u + 23u : 5u);
  TextMessage m = TextProtoParser(R"(# comment
      a { b: 1.5  # trailing
          c: [1, 2]
          c: [3]
          d: "x y" e: LAPLACE }
      a { b: -2e-3 })").Parse();
  ASSERT_EQ(m.All("a").size(), 2u);
  EXPECT_EQ(m.All("a")[0].message->Num("b"), 1.5);
  EXPECT_EQ(m.All("a")[0].message->Nums("c"), (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(m.All("a")[0].message->Str("d"), "x y");
  EXPECT_EQ(m.All("a")[0].message->Str("e"), "LAPLACE");
  EXPECT_EQ(m.All("a")[1].message->Num("b"), -2e-3);
  EXPECT_THROW(TextProtoParser("a { b: 1").Parse(), std::runtime_error);
}

}  // namespace
}  // namespace cr::dp
