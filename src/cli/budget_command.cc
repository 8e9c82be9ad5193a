// `cleanroom budget`: the differential-privacy budget per period, spent and left.
#include <fmt/core.h>

#include <optional>

#include "budget/ledger.h"
#include "budget/report.h"
#include "cli/cli.h"
#include "cli/output.h"
#include "room/room.h"

namespace cr::cli {

void RegisterBudget(CLI::App& root, Globals& g, Registry& r) {
  auto* cmd = root.add_subcommand("budget", "the epsilon budget: spent and left, per period");
  r.Add(cmd, Uses{.room = true}, [&g]() -> Status {
    if (g.room.empty()) return Fail(ErrorCode::USAGE, "budget needs --room DIR");
    // Read-only: looking at the budget must never wait for or block a query.
    CR_ASSIGN(auto room, room::Room::Open(g.room, room::OpenMode::kReadOnly));
    const auto& dp = room.spec().privacy.dp;
    std::optional<budget::Summary> current;
    std::vector<budget::Summary> history;
    if (dp) {
      CR_ASSIGN(auto ledger, budget::Ledger::Open(room.dir(), room.key(), *dp, room.clock()));
      CR_ASSIGN(history, ledger.History());
      current = history.back();
    }
    if (g.format == "json") {
      PrintJson(budget::CurrentJson(current, dp ? dp->refresh : ""));
    } else {
      fmt::print("{}", budget::HistoryTable(history));
    }
    return Ok();
  });
}

}  // namespace cr::cli
