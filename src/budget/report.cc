#include "budget/report.h"

#include <fmt/format.h>

#include <algorithm>

namespace cr::budget {

nlohmann::json CurrentJson(const std::optional<Summary>& current, const std::string& refresh) {
  if (!current) {
    return {{"dp_enabled", false}, {"epsilon_total", 0},      {"epsilon_spent", 0},
            {"epsilon_left", 0},   {"period", nullptr},      {"period_starts_at", nullptr},
            {"period_ends_at", nullptr}, {"refresh", nullptr}, {"queries", 0}};
  }
  auto text_or_null = [](const std::string& s) -> nlohmann::json {
    return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s);
  };
  return {{"dp_enabled", true},
          {"epsilon_total", current->epsilon_total},
          {"epsilon_spent", current->epsilon_spent},
          {"epsilon_left", current->epsilon_left},
          {"period", current->period.id},
          {"period_starts_at", text_or_null(current->period.starts_at)},
          {"period_ends_at", text_or_null(current->period.ends_at)},
          {"refresh", refresh},
          {"queries", current->queries}};
}

std::string HistoryTable(const std::vector<Summary>& history) {
  if (history.empty()) {
    return "differential privacy is not enabled for this collaboration (no privacy.dp in the "
           "spec): no epsilon budget\n";
  }
  // {:g} would print 0.30000000000000004 as 0.3 but hide a real 1e-12: the
  // ledger counts in 1e-12 units, so twelve places say exactly what it knows.
  auto eps = [](double x) {
    std::string s = fmt::format("{:.12f}", x);
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
    return s;
  };
  std::string out = fmt::format("{:<10} {:>14} {:>14} {:>14} {:>8}\n", "period", "total", "spent",
                                "left", "queries");
  for (const Summary& s : history) {
    out += fmt::format("{:<10} {:>14} {:>14} {:>14} {:>8}\n", s.period.id, eps(s.epsilon_total),
                       eps(s.epsilon_spent), eps(s.epsilon_left), s.queries);
  }
  return out;
}

Result<nlohmann::json> UsageJson(const std::string& room_dir, const crypto::Identity& room_key,
                                 const spec::Spec& spec, const Clock& clock) {
  std::vector<std::string> names;
  for (const auto& d : spec.datasets) names.push_back(d.name);
  const auto limits = UsageLimits(spec, names);
  nlohmann::json out = nlohmann::json::array();
  if (limits.empty()) return out;
  CR_ASSIGN(UsageLedger ledger, UsageLedger::Open(room_dir, room_key, clock));
  CR_ASSIGN(std::vector<UsageCount> counts, ledger.Counts(limits));
  for (const auto& c : counts) {
    out.push_back({{"dataset", c.limit.dataset},
                   {"count", c.limit.max.count},
                   {"per", c.limit.max.per},
                   {"period", c.period.id},
                   {"used", c.used},
                   {"left", std::max<int64_t>(0, c.limit.max.count - c.used)}});
  }
  return out;
}

std::string UsageTable(const nlohmann::json& usage) {
  if (!usage.is_array() || usage.empty()) return "";
  std::string out = fmt::format("\n{:<20} {:>8} {:>8} {:>8} {:<9} {}\n", "usage budget", "count",
                                "used", "left", "per", "period");
  for (const auto& u : usage) {
    auto text = [&u](const char* k) {
      return u.contains(k) ? (u[k].is_string() ? u[k].get<std::string>() : u[k].dump()) : "";
    };
    out += fmt::format("{:<20} {:>8} {:>8} {:>8} {:<9} {}\n", text("dataset"), text("count"),
                       text("used"), text("left"), text("per"), text("period"));
  }
  return out;
}

}  // namespace cr::budget
