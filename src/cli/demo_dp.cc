#include "cli/demo_dp.h"

#include <fmt/core.h>

#include <cmath>
#include <map>
#include <optional>
#include <sstream>

#include "cli/demo_say.h"
#include "cli/remote.h"
#include "common/files.h"
#include "results/results.h"

namespace cr::cli {
namespace {

using demo_say::Say;
using demo_say::SayTable;
using demo_say::Step;

Result<query::Outcome> Ask(client::Client& c, const std::string& sql,
                           std::optional<double> epsilon = std::nullopt) {
  nlohmann::json body = {{"sql", sql}};
  if (epsilon) body["epsilon"] = *epsilon;
  return RemoteOutcome(c, c.PostJson("/v1/query", body));
}

// The one number of a one-cell answer, noisy or exact.
Result<double> Number(const query::Outcome& o) {
  const auto& rows = o.result.rows;
  if (!rows.is_array() || rows.size() != 1 || !rows[0].is_array() || rows[0].size() != 1) {
    return Fail(ErrorCode::INTERNAL, "demo: expected an answer of one row and one column");
  }
  const auto& cell = rows[0][0];
  if (results::IsNoisyCell(cell)) return cell["value"].get<double>();
  if (cell.is_number()) return cell.get<double>();
  return Fail(ErrorCode::INTERNAL, "demo: the answer's cell is not a number");
}

struct Target {
  std::string shown_at;
  std::string cost;  // as the CSV has it: 4 decimals
};

// An impression whose time no other impression shares, near the middle of
// the campaign, with a cost that shows, of a person who saw an ad earlier
// too: what the attacker knows about its target. The earlier ad matters: the
// two questions then cover the same people, so the room's difference checks
// (which compare the sets of people behind answers) have nothing to withhold.
Result<Target> PickTarget(const std::string& csv_path) {
  CR_ASSIGN(std::string csv, ReadFile(csv_path));
  struct Slot {
    int count = 0;
    std::string cost, email;
  };
  std::map<std::string, Slot> by_time;             // shown_at -> impressions at that time
  std::map<std::string, std::string> first_seen;  // email -> earliest shown_at
  std::istringstream in(csv);
  std::string line;
  std::getline(in, line);  // header: email,campaign,shown_at,cost,device
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream fields(line);
    for (std::string x; std::getline(fields, x, ',');) f.push_back(x);
    if (f.size() != 5) return Fail(ErrorCode::INTERNAL, "demo: the impressions file is not the generator's");
    auto& slot = by_time[f[2]];
    ++slot.count;
    slot.cost = f[3];
    slot.email = f[0];
    auto [seen, fresh] = first_seen.emplace(f[0], f[2]);
    if (!fresh && f[2] < seen->second) seen->second = f[2];
  }
  auto it = by_time.begin();
  std::advance(it, by_time.size() / 2);
  for (; it != by_time.end(); ++it) {
    const Slot& s = it->second;
    if (s.count == 1 && std::stod(s.cost) >= 1.0 && first_seen.at(s.email) < it->first) {
      return Target{it->first, s.cost};
    }
  }
  return Fail(ErrorCode::INTERNAL, "demo: no impression with a time of its own");
}

}  // namespace

Status RunDemoDp(client::Client& acme, const std::string& impressions_csv, int first_step) {
  CR_ASSIGN(Target target, PickTarget(impressions_csv));
  const std::string upto =
      "SELECT SUM(cost) AS spend FROM impressions WHERE shown_at <= TIMESTAMP '" + target.shown_at + "'";
  const std::string before =
      "SELECT SUM(cost) AS spend FROM impressions WHERE shown_at < TIMESTAMP '" + target.shown_at + "'";

  Step(first_step, "The differencing attack: two answers that each pass every rule single a person out");
  Say(fmt::format("acme knows from outside the room that its target saw an ad at {}; it asks", target.shown_at));
  Say("A: " + upto);
  Say("B: " + before);
  CR_ASSIGN(auto a, Ask(acme, upto));
  CR_ASSIGN(auto b, Ask(acme, before));
  CR_ASSIGN(double va, Number(a));
  CR_ASSIGN(double vb, Number(b));
  Say(fmt::format("each covers far more than 100 people, so the threshold lets both out: A = {:.4f}, "
                  "B = {:.4f}", va, vb));
  Say("the target saw an ad earlier too, so A and B cover the same people: the difference "
      "check, which withholds an answer whose people differ from an earlier one's by 1 to 99, "
      "has nothing to withhold");
  const double exact = std::stod(target.cost);
  Say(fmt::format("A - B = {:.4f}: exactly the cost of the target's impression (newsco's file "
                  "says {})", va - vb, target.cost));
  if (std::abs((va - vb) - exact) > 1e-6) {
    return Fail(ErrorCode::INTERNAL, "demo: the exact answers did not differ by the target's cost");
  }

  Step(first_step + 1, "The same questions with differential privacy (--epsilon): noise, a stored "
                       "answer, a budget");
  Say("the spec's privacy.dp gives the room an epsilon budget of 1.5 a month; each question "
      "says what it spends");
  Say("cleanroom query --server URL --key acme.key --epsilon 0.5 --sql \"A\":");
  CR_ASSIGN(auto na, Ask(acme, upto, 0.5));
  SayTable(na.result);
  Say("... --epsilon 0.5 --sql \"B\":");
  CR_ASSIGN(auto nb, Ask(acme, before, 0.5));
  SayTable(nb.result);
  CR_ASSIGN(double nva, Number(na));
  CR_ASSIGN(double nvb, Number(nb));
  const auto& cell = na.result.rows[0][0];
  const double half = cell["value"].get<double>() - cell["ci_low"].get<double>();
  Say(fmt::format("A - B = {:.4f}: each answer is only known to ± {:.1f} (95%), so a cost between "
                  "0 and 5 cannot be read off",
                  nva - nvb, half));
  if (std::abs((nva - nvb) - exact) < 1e-9) {
    return Fail(ErrorCode::INTERNAL, "demo: the noisy answers gave the exact cost away");
  }
  CR_ASSIGN(auto again, Ask(acme, upto, 0.5));
  if (again.result.rows != na.result.rows || again.result.epsilon_spent.value_or(-1) != 0) {
    return Fail(ErrorCode::INTERNAL, "demo: a repeated question was not its stored answer");
  }
  Say("asking A again returns the stored answer, the same numbers, for epsilon 0: averaging "
      "repeats learns nothing");
  CR_ASSIGN(auto budget_body, acme.Get("/v1/budget"));
  auto budget = nlohmann::json::parse(budget_body, nullptr, false);
  if (!budget.is_object() || !budget.value("dp_enabled", false)) {
    return Fail(ErrorCode::INTERNAL, "demo: the budget answer is not the expected JSON");
  }
  Say(fmt::format("cleanroom budget --server URL: period {}, epsilon {:g} of {:g} spent by {} "
                  "queries, {:g} left",
                  budget.value("period", ""), budget.value("epsilon_spent", 0.0),
                  budget.value("epsilon_total", 0.0), budget.value("queries", 0),
                  budget.value("epsilon_left", 0.0)));
  const std::string more = "SELECT SUM(cost) AS spend FROM impressions";
  auto refused = Ask(acme, more, 1.0);
  if (refused || refused.error().code != ErrorCode::BUDGET_EXHAUSTED) {
    return Fail(ErrorCode::INTERNAL, "demo: a query past the budget was not refused");
  }
  Say(fmt::format("a new question for epsilon 1: refused, {} (exit {}): {}",
                  CodeName(refused.error().code), ExitCode(refused.error().code),
                  refused.error().message));
  Say("the budget comes back next month; every charge and its ledger head are in the audit log");
  return Ok();
}

}  // namespace cr::cli
