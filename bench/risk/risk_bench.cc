// Full risk analysis of UCI Adult (next to ARX's figure for the same analysis)
// and a linkage attack of 1M auxiliary records against a 1M-row release.
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "anonymize/table.h"
#include "risk/linkage.h"
#include "risk/risk.h"

namespace cr::risk {
namespace {

const std::string kAdult = std::string(CLEANROOM_DATA_DIR) + "/adult/adult.csv";
// ARX's risk analysis of Adult (all nine QIs, sample and population models), from the issue.
constexpr double kArxAdultSeconds = 0.1;

RiskOptions AdultOptions() {
  RiskOptions o;
  o.qis = {
      "sex",       "age",        "race",        "marital-status", "education", "native-country",
      "workclass", "occupation", "salary-class"};
  o.population = 301620;
  return o;
}

// Grouping, sample metrics and the three population models from the in-memory table.
void BM_AdultRiskAnalysis(benchmark::State& state) {
  auto table = anonymize::ReadTableFile(kAdult);
  if (!table) {
    state.SkipWithError("adult.csv unreadable");
    return;
  }
  RiskOptions o = AdultOptions();
  double seconds = 0;
  for (auto _ : state) {
    auto start = std::chrono::steady_clock::now();
    auto r = AnalyzeRisk(*table, o);
    benchmark::DoNotOptimize(r);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  state.counters["arx_s"] = kArxAdultSeconds;
  state.counters["x_faster"] =
      kArxAdultSeconds / (seconds / static_cast<double>(state.iterations()));
}
BENCHMARK(BM_AdultRiskAnalysis)->Unit(benchmark::kMillisecond);

// The same including reading and encoding the CSV.
void BM_AdultRiskAnalysisWithRead(benchmark::State& state) {
  RiskOptions o = AdultOptions();
  double seconds = 0;
  for (auto _ : state) {
    auto start = std::chrono::steady_clock::now();
    auto table = anonymize::ReadTableFile(kAdult);
    auto r = AnalyzeRisk(*table, o);
    benchmark::DoNotOptimize(r);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  state.counters["arx_s"] = kArxAdultSeconds;
  state.counters["x_faster"] =
      kArxAdultSeconds / (seconds / static_cast<double>(state.iterations()));
}
BENCHMARK(BM_AdultRiskAnalysisWithRead)->Unit(benchmark::kMillisecond);

// Deterministic synthetic people (splitmix64): benchmark data, no privacy decision.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

struct Linkage {
  anonymize::Table release, aux;
};

// Release: age in 2-year bands, 5-digit ZIP (20,000 of them) masked to 4
// digits, sex, a diagnosis: ~180,000 patterns, some unique. Aux: the same
// people's exact age, ZIP and sex.
Linkage MakeLinkage(size_t rows) {
  anonymize::TableBuilder rel({"age", "zip", "sex", "diagnosis"});
  anonymize::TableBuilder aux({"age", "zip", "sex"});
  for (size_t i = 0; i < rows; ++i) {
    uint64_t h = Mix(i);
    int age = static_cast<int>(h % 90);
    int zip = static_cast<int>((h >> 8) % 20000) + 10000;
    const char* sex = (h >> 20) & 1 ? "F" : "M";
    char zip_s[8], zip_m[8], band[16], age_s[8], diag[8];
    std::snprintf(zip_s, sizeof zip_s, "%05d", zip);
    std::snprintf(zip_m, sizeof zip_m, "%04d*", zip / 10);
    std::snprintf(band, sizeof band, "[%d, %d[", age / 2 * 2, age / 2 * 2 + 2);
    std::snprintf(age_s, sizeof age_s, "%d", age);
    std::snprintf(diag, sizeof diag, "D%02d", static_cast<int>((h >> 24) % 40));
    (void)rel.AddRow({band, zip_m, sex, diag});
    (void)aux.AddRow({age_s, zip_s, sex});
  }
  return {rel.Finish(), aux.Finish()};
}

double PeakRssMb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

void BM_Linkage(benchmark::State& state) {
  Linkage d = MakeLinkage(static_cast<size_t>(state.range(0)));
  const double data_rss = PeakRssMb();  // the two tables and everything before
  LinkageOptions o;
  o.link = {"age", "zip", "sex"};
  o.sensitive = "diagnosis";
  uint64_t reidentified = 0;
  for (auto _ : state) {
    auto r = RunLinkage(d.release, d.aux, o);
    reidentified = r->reidentified;
    benchmark::DoNotOptimize(r);
  }
  state.counters["reidentified"] = static_cast<double>(reidentified);
  state.counters["peak_rss_MB"] = PeakRssMb();
  state.counters["data_rss_MB"] = data_rss;
  state.counters["aux_per_s"] = benchmark::Counter(static_cast<double>(state.range(0)),
                                                   benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Linkage)->Arg(100000)->Arg(1000000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace cr::risk

BENCHMARK_MAIN();
