// `cleanroom anonymize`: release microdata under k-anonymity, l-diversity and
// t-closeness with masking, generalisation, noise and swapping (src/anonymize).
#include <fmt/core.h>

#include "anonymize/anonymizer.h"
#include "cli/cli.h"

namespace cr::cli {

void RegisterAnonymize(CLI::App& root, Globals&, Registry& r) {
  auto* cmd = root.add_subcommand(
      "anonymize", "release microdata: masking, generalisation, noise, swapping, k/l/t models");
  static anonymize::RunPaths paths;
  cmd->add_option("--config", paths.config, "anonymisation config (YAML)")->required();
  cmd->add_option("--input", paths.input, "input CSV")->required();
  cmd->add_option("--out", paths.out, "released CSV to write")->required();
  cmd->add_option("--report", paths.report, "JSON report to write");
  r.Add(cmd, []() -> Status {
    // Randomness always comes from libsodium here: no option injects a source.
    CR_ASSIGN(anonymize::Release rel, anonymize::RunAnonymize(paths));
    fmt::print("{}wrote {} ({} records){}\n", rel.summary, paths.out, rel.table.num_rows(),
               paths.report.empty() ? "" : " and " + paths.report);
    return Ok();
  });
}

}  // namespace cr::cli
