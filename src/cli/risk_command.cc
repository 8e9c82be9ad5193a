// `cleanroom risk`: the re-identification red team (src/risk) on a release,
// optionally with a linkage attack against auxiliary data.
#include <fmt/core.h>

#include <string_view>
#include <utility>

#include "cli/cli.h"
#include "cli/output.h"
#include "risk/report.h"

namespace cr::cli {
namespace {

// The library names its parameters; the user typed flags. A library error
// about a parameter is prefixed with the flag that set it.
Error WithFlag(Error e) {
  static constexpr std::pair<std::string_view, std::string_view> kFlags[] = {
      {"quasi-identifiers", "--qi"},        {"sensitive attribute", "--sensitive"},
      {"link columns", "--link"},           {"truth column", "--truth"},
      {"risk: the threshold", "--threshold"}, {"the population size", "--population"}};
  for (const auto& [wording, flag] : kFlags) {
    if (e.message.starts_with(wording)) {
      e.message = fmt::format("{}: {}", flag, e.message);
      break;
    }
  }
  return e;
}

}  // namespace

void RegisterRisk(CLI::App& root, Globals& g, Registry& r) {
  auto* cmd = root.add_subcommand("risk", "re-identification red team: risk metrics and linkage");
  static risk::RiskRun run;
  static uint64_t population = 0;
  cmd->add_option("--input", run.input, "release to attack (CSV or .parquet)")->required();
  cmd->add_option("--qi", run.qi, "quasi-identifiers, comma-separated")->required();
  cmd->add_option("--sensitive", run.sensitive, "sensitive attribute");
  cmd->add_option("--aux", run.aux, "auxiliary data the attacker holds (CSV or .parquet)");
  cmd->add_option("--link", run.link, "columns to link on, comma-separated");
  cmd->add_option("--truth", run.truth, "column both sides carry that tells right from wrong");
  auto* population_opt =
      cmd->add_option("--population", population, "population size for uniqueness estimates");
  cmd->add_option("--threshold", run.threshold, "risk above which a record is at risk (0.2)");
  cmd->add_option("--report", run.report, "JSON report to write");
  cmd->add_option("--html", run.html, "HTML report to write");
  cmd->add_option("--records", run.records,
                  "per-record risk to write as CSV (record, class size, risk, at risk)");
  r.Add(cmd, [&g, population_opt]() -> Status {
    if (run.aux.empty() != run.link.empty()) {
      return Fail(ErrorCode::USAGE, "--aux and --link go together");
    }
    if (!run.truth.empty() && run.aux.empty()) {
      return Fail(ErrorCode::USAGE, "--truth needs --aux and --link");
    }
    if (population_opt->count()) run.population = population;
    auto result = risk::RunRisk(run);
    if (!result) return std::unexpected(WithFlag(std::move(result.error())));
    const risk::RiskResult& res = *result;
    if (g.format == "json") {
      PrintJson(res.json);
    } else {
      fmt::print("{}", res.summary);
    }
    return Ok();
  });
}

}  // namespace cr::cli
