#include "cli/demo_queries.h"

#include <sstream>

#include <fmt/core.h>

#include "crypto/crypto.h"
#include "query/service.h"
#include "results/results.h"
#include "room/room.h"

namespace cr::cli {
namespace {

void Step(int n, const std::string& title) { fmt::print("\n[{}] {}\n", n, title); }
void Say(const std::string& text) { fmt::print("    {}\n", text); }

// Prints a rendered table indented like the other demo lines.
void SayTable(const results::ResultSet& r) {
  std::istringstream lines(results::Render(r, "table"));
  std::string line;
  while (std::getline(lines, line)) Say(line);
}

}  // namespace

Status RunDemoQueries(const std::string& room_dir, const std::string& acme_key,
                      const std::string& newsco_key) {
  CR_ASSIGN(auto acme, crypto::Identity::Load(acme_key));
  CR_ASSIGN(auto newsco, crypto::Identity::Load(newsco_key));
  CR_ASSIGN(auto room, room::Room::Open(room_dir));

  Step(10, "acme asks a question in SQL; the room checks it, runs it, and releases only big groups");
  query::Request adhoc;
  adhoc.sql =
      "SELECT campaign, COUNT(DISTINCT email) AS people, SUM(cost) AS spend "
      "FROM impressions GROUP BY campaign ORDER BY people DESC";
  Say(adhoc.sql);
  CR_ASSIGN(auto first, query::Run(room, acme, adhoc));
  Say(fmt::format("checked against the impressions rule, rewritten, every row covers >= {} people;",
                  room.spec().MinDistinctUnits(*room.spec().FindDataset("impressions"))));
  Say(fmt::format("sealed to {} (every receiver the impressions rule lists):",
                  fmt::join(first.receivers, " and ")));
  SayTable(first.result);

  Step(11, "acme runs the approved template conversions_by_campaign with since=2026-12-01");
  query::Request tmpl;
  tmpl.template_name = "conversions_by_campaign";
  tmpl.params = {{"since", "2026-12-01"}};
  CR_ASSIGN(auto conv, query::Run(room, acme, tmpl));
  Say("the date is bound as a typed value, never pasted into the SQL text;");
  Say(fmt::format("purchases may be seen only by {}, so the result is sealed to {} alone:",
                  fmt::join(conv.receivers, ", "), fmt::join(conv.receivers, ", ")));
  SayTable(conv.result);

  Step(12, "A hostile query is refused before it touches any data");
  query::Request hostile;
  hostile.sql = "SELECT email, campaign FROM impressions WHERE email LIKE 'jane%'";
  Say(hostile.sql);
  auto refused = query::Run(room, acme, hostile);
  if (refused) return Fail(ErrorCode::INTERNAL, "demo: a hostile query was accepted");
  Say(fmt::format("refused, {} (exit {}): {}", CodeName(refused.error().code),
                  ExitCode(refused.error().code), refused.error().message));
  query::Request narrow;
  narrow.sql =
      "SELECT campaign, SUM(cost) AS spend FROM impressions WHERE shown_at BETWEEN TIMESTAMP "
      "'2026-11-02 10:00:00' AND TIMESTAMP '2026-11-02 11:00:00' GROUP BY campaign";
  Say("singling people out with a narrow time window passes the rules but not the threshold:");
  CR_ASSIGN(auto thin, query::Run(room, acme, narrow));
  Say(fmt::format("{} rows released, {}", thin.result.rows.size(),
                  thin.result.withheld_rows
                      ? fmt::format("{} withheld", *thin.result.withheld_rows)
                      : std::string("the withheld rows are too few even to be counted")));

  Step(13, "newsco reads the result sealed to it; the template's result stays closed to it");
  CR_ASSIGN(auto opened, query::GetResult(room, newsco, first.result.result_id));
  Say(fmt::format("results get --id {} with newsco's key: {} rows, same as acme saw",
                  opened.result_id, opened.rows.size()));
  auto closed = query::GetResult(room, newsco, conv.result.result_id);
  if (closed) return Fail(ErrorCode::INTERNAL, "demo: a non-receiver opened a result");
  Say(fmt::format("results get --id {} with newsco's key: {} (exit {})", conv.result.result_id,
                  CodeName(closed.error().code), ExitCode(closed.error().code)));
  Say("every query, refusal and read above is in the audit log (hashes and counts, no values)");
  return Ok();
}

}  // namespace cr::cli
