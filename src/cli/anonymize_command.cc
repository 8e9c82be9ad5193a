// `cleanroom anonymize`: release microdata under k-anonymity, l-diversity and
// t-closeness with masking, generalisation, noise and swapping (src/anonymize).
#include <fmt/core.h>

#include "anonymize/anonymizer.h"
#include "cli/cli.h"
#include "cli/output.h"

namespace cr::cli {

void RegisterAnonymize(CLI::App& root, Globals& g, Registry& r) {
  auto* cmd = root.add_subcommand(
      "anonymize", "release microdata: masking, generalisation, noise, swapping, k/l/t models");
  static anonymize::RunPaths paths;
  cmd->add_option("--config", paths.config, "anonymisation config (YAML)")->required();
  cmd->add_option("--input", paths.input, "input CSV")->required();
  cmd->add_option("--out", paths.out, "released CSV to write")->required();
  cmd->add_option("--report", paths.report, "JSON report to write");
  r.Add(cmd, [&g]() -> Status {
    // Randomness always comes from libsodium here: no option injects a source.
    CR_ASSIGN(anonymize::Release rel, anonymize::RunAnonymize(paths));
    if (g.format == "json") {
      PrintJson({{"out", paths.out},
                 {"records", rel.table.num_rows()},
                 {"report_file", paths.report.empty() ? nlohmann::json() : nlohmann::json(paths.report)},
                 {"report", rel.report}});
      return Ok();
    }
    fmt::print("{}wrote {} ({}){}\n", rel.summary, paths.out,
               Counted(static_cast<int64_t>(rel.table.num_rows()), "record"),
               paths.report.empty() ? "" : " and " + paths.report);
    return Ok();
  });
}

}  // namespace cr::cli
