// What `cleanroom budget` prints: the current period as JSON and every period
// as a table, from the ledger's summaries (or "DP not enabled" without one).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "budget/ledger.h"

namespace cr::budget {

// {"dp_enabled", "epsilon_total", "epsilon_spent", "epsilon_left", "period",
//  "period_starts_at", "period_ends_at", "refresh", "queries"}. Without a
// summary (the spec has no privacy.dp): dp_enabled false, zeros, period null.
nlohmann::json CurrentJson(const std::optional<Summary>& current, const std::string& refresh);

// One line per period, oldest first: period, total, spent, left, queries
// (with a header); "differential privacy is not enabled ..." when empty.
std::string HistoryTable(const std::vector<Summary>& history);

}  // namespace cr::budget
