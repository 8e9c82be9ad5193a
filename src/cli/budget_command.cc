// `cleanroom budget`: the differential-privacy budget per period, spent and
// left, and the datasets' usage budgets (queries used and left per window).
#include <fmt/core.h>

#include <optional>

#include "budget/ledger.h"
#include "budget/report.h"
#include "cli/cli.h"
#include "cli/remote.h"
#include "cli/output.h"
#include "room/room.h"

namespace cr::cli {

namespace {

// `budget --server`: GET /v1/budget answers the current period as `budget
// --format json` prints it, plus "periods" (each in the same shape) for the table.
Status RemoteBudget(const Globals& g) {
  CR_ASSIGN(auto c, ConnectServer(g, "budget"));
  CR_ASSIGN(auto body, c.Get("/v1/budget"));
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("periods") || !j["periods"].is_array()) {
    return Fail(ErrorCode::INTERNAL, "the server's budget answer is not the expected JSON");
  }
  std::vector<budget::Summary> history;
  for (const auto& p : j["periods"]) {
    auto num = [&p](const char* k) { return p.contains(k) && p[k].is_number() ? p[k].get<double>() : 0.0; };
    auto text = [&p](const char* k) {
      return p.contains(k) && p[k].is_string() ? p[k].get<std::string>() : std::string();
    };
    budget::Summary s{};
    s.epsilon_total = num("epsilon_total");
    s.epsilon_spent = num("epsilon_spent");
    s.epsilon_left = num("epsilon_left");
    s.period.id = text("period");
    s.period.starts_at = text("period_starts_at");
    s.period.ends_at = text("period_ends_at");
    s.queries = static_cast<int64_t>(num("queries"));
    history.push_back(std::move(s));
  }
  j.erase("periods");
  if (g.format == "json") {
    PrintJson(j);
  } else {
    fmt::print("{}{}", budget::HistoryTable(history),
               budget::UsageTable(j.contains("usage") ? j["usage"] : nlohmann::json()));
  }
  return Ok();
}

}  // namespace

void RegisterBudget(CLI::App& root, Globals& g, Registry& r) {
  auto* cmd = root.add_subcommand("budget", "the epsilon budget: spent and left, per period");
  r.Add(cmd, Uses{.room = true, .key = true, .server = true}, [&g]() -> Status {
    CR_ASSIGN(bool remote, Remote(g, "budget"));
    if (remote) return RemoteBudget(g);
    if (g.room.empty()) return Fail(ErrorCode::USAGE, "budget needs --room DIR or --server URL");
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
    // Usage budgets (rule max_queries) beside epsilon.
    CR_ASSIGN(auto usage, budget::UsageJson(room.dir(), room.key(), room.spec(), room.clock()));
    if (g.format == "json") {
      nlohmann::json j = budget::CurrentJson(current, dp ? dp->refresh : "");
      j["usage"] = std::move(usage);
      PrintJson(j);
    } else {
      fmt::print("{}{}", budget::HistoryTable(history), budget::UsageTable(usage));
    }
    return Ok();
  });
}

}  // namespace cr::cli
