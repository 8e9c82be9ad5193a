// Benchmark helper: a console reporter that also keeps each benchmark's
// seconds per iteration, so a benchmark's main() can print baseline vs
// cleanroom and their ratio from the same run. With repetitions, the figure
// is the median repetition (robust to a noisy neighbour on a 2-core machine).
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

namespace cr::bench {

class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs) {
      if (r.run_type == Run::RT_Iteration && !r.error_occurred) {
        // GetAdjustedRealTime() is in the run's unit; convert to seconds.
        runs_[r.run_name.function_name].push_back(
            r.GetAdjustedRealTime() / benchmark::GetTimeUnitMultiplier(r.time_unit));
      }
    }
    ConsoleReporter::ReportRuns(runs);
  }
  // Seconds per iteration by benchmark function name (median repetition).
  std::map<std::string, double> seconds() const {
    std::map<std::string, double> out;
    for (auto [name, v] : runs_) {
      std::sort(v.begin(), v.end());
      out[name] = v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
    }
    return out;
  }

 private:
  std::map<std::string, std::vector<double>> runs_;
};

}  // namespace cr::bench
