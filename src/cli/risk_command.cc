// `cleanroom risk`: the re-identification red team (src/risk) on a release,
// optionally with a linkage attack against auxiliary data.
#include <fmt/core.h>

#include "cli/cli.h"
#include "cli/output.h"
#include "risk/report.h"

namespace cr::cli {

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
    if (population_opt->count()) run.population = population;
    CR_ASSIGN(risk::RiskResult res, risk::RunRisk(run));
    if (g.format == "json") {
      PrintJson(res.json);
    } else {
      fmt::print("{}", res.summary);
    }
    return Ok();
  });
}

}  // namespace cr::cli
