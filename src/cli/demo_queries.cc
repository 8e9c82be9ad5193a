#include "cli/demo_queries.h"

#include <fmt/core.h>

#include <sstream>

#include "cli/demo_say.h"
#include "cli/remote.h"
#include "results/results.h"

namespace cr::cli {
namespace {

using demo_say::Say;
using demo_say::SayTable;
using demo_say::Step;

Result<query::Outcome> Query(client::Client& c, const std::string& sql) {
  return RemoteOutcome(c, c.PostJson("/v1/query", {{"sql", sql}}));
}

}  // namespace

Status RunDemoQueries(client::Client& acme, client::Client& newsco, const spec::Spec& spec) {
  Step(11, "acme asks a question in SQL; the room checks it, runs it, and releases only big groups");
  const std::string adhoc =
      "SELECT campaign, COUNT(DISTINCT email) AS people, SUM(cost) AS spend "
      "FROM impressions GROUP BY campaign ORDER BY people DESC";
  Say("cleanroom query --server URL --key acme.key --sql \"" + adhoc + "\"");
  CR_ASSIGN(auto first, Query(acme, adhoc));
  Say(fmt::format("checked against the impressions rule, rewritten, every row covers >= {} people;",
                  spec.MinDistinctUnits(*spec.FindDataset("impressions"))));
  Say(fmt::format("sealed to {} (every receiver the impressions rule lists); the answer crossed "
                  "the wire as a box only acme's key opens:",
                  fmt::join(first.receivers, " and ")));
  SayTable(first.result);

  Step(12, "acme runs the approved template conversions_by_campaign with since=2026-12-01");
  CR_ASSIGN(auto conv,
            RemoteOutcome(acme, acme.PostJson("/v1/templates/conversions_by_campaign/run",
                                              {{"params", {{"since", "2026-12-01"}}}})));
  Say("the date is bound as a typed value, never pasted into the SQL text;");
  Say(fmt::format("purchases may be seen only by {}, so the result is sealed to {} alone:",
                  fmt::join(conv.receivers, ", "), fmt::join(conv.receivers, ", ")));
  SayTable(conv.result);

  Step(13, "A hostile query is refused before it touches any data");
  const std::string hostile = "SELECT email, campaign FROM impressions WHERE email LIKE 'jane%'";
  Say(hostile);
  auto refused = Query(acme, hostile);
  if (refused) return Fail(ErrorCode::INTERNAL, "demo: a hostile query was accepted");
  Say(fmt::format("refused, {} (exit {}): {}", CodeName(refused.error().code),
                  ExitCode(refused.error().code), refused.error().message));
  Say("singling people out with a narrow time window passes the rules but not the threshold:");
  CR_ASSIGN(auto thin,
            Query(acme, "SELECT campaign, SUM(cost) AS spend FROM impressions WHERE shown_at "
                        "BETWEEN TIMESTAMP '2026-11-02 10:00:00' AND TIMESTAMP '2026-11-02 "
                        "11:00:00' GROUP BY campaign"));
  Say(fmt::format("{} rows released, {}", thin.result.rows.size(),
                  thin.result.withheld_rows
                      ? fmt::format("{} withheld", *thin.result.withheld_rows)
                      : std::string("the withheld rows are too few even to be counted")));

  Step(14, "newsco reads the result sealed to it; the template's result stays closed to it");
  CR_ASSIGN(auto answer, newsco.GetJson("/v1/results/" + first.result.result_id));
  CR_ASSIGN(auto opened, OpenSealedAnswer(newsco, answer));
  Say(fmt::format("results get --id {} with newsco's key: {} rows, same as acme saw",
                  opened.result_id, opened.rows.size()));
  auto closed = newsco.Get("/v1/results/" + conv.result.result_id);
  if (closed) return Fail(ErrorCode::INTERNAL, "demo: a non-receiver opened a result");
  Say(fmt::format("results get --id {} with newsco's key: {} (exit {})", conv.result.result_id,
                  CodeName(closed.error().code), ExitCode(closed.error().code)));
  Say("every request above was signed by its party's key and is in the audit log (hashes and "
      "counts, no values)");
  return Ok();
}

}  // namespace cr::cli
