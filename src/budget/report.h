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

// The usage budgets (rule max_queries) of every dataset of `spec` that has
// one, as counted in the room's usage ledger: [{"dataset", "count", "per",
// "period", "used", "left"}] in spec order; [] when no rule sets one.
Result<nlohmann::json> UsageJson(const std::string& room_dir, const crypto::Identity& room_key,
                                 const spec::Spec& spec, const Clock& clock);

// Those as table lines under a "usage budgets" header ("" when none).
std::string UsageTable(const nlohmann::json& usage);

}  // namespace cr::budget
