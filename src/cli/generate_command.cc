// `cleanroom generate`: deterministic synthetic impressions or purchases, for
// the benchmark scripts and for trying the room without real data.
#include <fmt/core.h>

#include <cstdint>
#include <limits>

#include "cli/cli.h"
#include "cli/output.h"
#include "demo/generator.h"

namespace cr::cli {

void RegisterGenerate(CLI::App& root, Globals& g, Registry& r) {
  auto* cmd = root.add_subcommand(
      "generate", "write a synthetic impressions or purchases CSV (same seed, same bytes)");
  static std::string kind, out;
  static int64_t rows = 0;
  static demo::GeneratorOptions o;
  cmd->add_option("--kind", kind, "impressions (publisher) or purchases (advertiser)")
      ->required()
      ->check(CLI::IsMember({"impressions", "purchases"}));
  cmd->add_option("--out", out, "CSV file to write (replaced atomically)")->required();
  auto* rows_opt = cmd->add_option("--rows", rows,
                                   "number of rows (default: 100000 impressions, 20000 purchases)")
                       ->check(CLI::Range(int64_t{0}, std::numeric_limits<int64_t>::max()));
  cmd->add_option("--people", o.people, "size of the publisher's audience")->capture_default_str();
  cmd->add_option("--seed", o.seed, "random seed")->capture_default_str();
  cmd->add_option("--overlap", o.buyer_overlap,
                  "share of the advertiser's customers who are in the audience, 0..1")
      ->capture_default_str();
  cmd->add_option("--campaigns", o.campaigns, "number of campaigns, 1..8")->capture_default_str();
  r.Add(cmd, [&g, rows_opt]() -> Status {
    const bool impressions = kind == "impressions";
    // The purchases file sizes its customer pool from its own row count, so
    // --rows must land in the field the chosen kind reads.
    if (rows_opt->count() > 0) (impressions ? o.impressions : o.purchases) = rows;
    CR_TRY(impressions ? demo::WriteImpressionsCsv(o, out) : demo::WritePurchasesCsv(o, out));
    const int64_t written = impressions ? o.impressions : o.purchases;
    if (g.format == "json") {
      PrintJson({{"out", out}, {"kind", kind}, {"rows", written}, {"seed", o.seed}});
      return Ok();
    }
    fmt::print("wrote {} ({} {} {}, seed {})\n", out, written, kind, written == 1 ? "row" : "rows",
               o.seed);
    return Ok();
  });
}

}  // namespace cr::cli
