// The governed query path end to end, as the CLI, the server and the demo call
// it: identify the caller, check the ability, build and check the plan, run it
// under the threshold, seal the result to its receivers, and audit every step
// (refusals included, never data values).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "crypto/crypto.h"
#include "diffcheck/unit_sets.h"
#include "engine/closer.h"
#include "engine/engine.h"
#include "query/executor.h"
#include "query/plan.h"
#include "results/results.h"
#include "room/cache.h"
#include "room/room.h"

namespace cr::query {

struct Request {
  std::string sql;            // ad-hoc query, or
  std::string template_name;  // a template of the spec
  std::map<std::string, std::string> params;
  // Narrows who the result is sealed to; empty: every party the rules allow.
  // Each name must be one of those (QUERY_REFUSED otherwise, before the query
  // runs).
  std::vector<std::string> receivers;
  // Differential privacy at this cost (--epsilon); a query touching a dataset
  // whose rule has require_dp uses privacy.dp.query_epsilon when unset.
  std::optional<double> epsilon;
  // A benchmark answer over a pooled dataset (also a template's benchmark:
  // true): each contributor receives its own figure of each released cell
  // beside the peers' mean, median and quartiles; other receivers the peers'
  // figures only. QUERY_REFUSED without a pooled dataset or with DP.
  bool benchmark = false;
};

// Limits the operator sets on the room's side.
struct RunOptions {
  engine::Options engine;
  // Longest the generated SQL may run before it is stopped (QUERY_LIMIT_EXCEEDED,
  // exit 3); 0: no limit. The CLI reads CLEANROOM_QUERY_TIMEOUT (seconds).
  double timeout_seconds = kDefaultQueryTimeoutSeconds;
  static constexpr double kDefaultQueryTimeoutSeconds = 600;
  // A warm room (room/cache.h) for a process that keeps the room open; null:
  // every query decrypts what it reads and drops it afterwards.
  room::DecryptCache* cache = nullptr;
  // Where a finished query's database goes to be closed (engine/closer.h),
  // so the answer does not wait for it; null: closed before Run returns.
  engine::Closer* closer = nullptr;
  // The warm room's decoded unit sets of stored results (difference checks,
  // diffcheck/unit_sets.h); null: each check reads the files it needs.
  diffcheck::SetCache* unit_sets = nullptr;
};

// A party the rules name as a receiver that gets nothing, and why (residency:
// its region is outside a touched dataset's result_regions). Names only.
struct WithheldReceiver {
  std::string party;
  std::string reason;
};

struct Outcome {
  results::ResultSet result;           // with its id
  std::string caller;                  // party name
  std::vector<std::string> receivers;  // parties the result is sealed to
  std::vector<WithheldReceiver> withheld_receivers;  // allowed by the rules, refused by region
  bool caller_receives = false;
  std::vector<std::string> datasets;
  ExecStats stats;
  bool dp = false;            // answered with differential privacy
  bool cached = false;        // the stored answer of an identical query this period
  double epsilon_spent = 0;   // charged to the budget by this run
};

// The parties allowed to receive a result touching `datasets`: those with the
// receive_results ability that every touched dataset's rule lists.
std::vector<const spec::Party*> Receivers(const spec::Spec& spec,
                                          const std::vector<std::string>& datasets);

// Residency: removes from `receivers` every party whose region is not in the
// result_regions of each touched dataset that sets them (a party declaring no
// region is outside every list), and returns those with the reason.
std::vector<WithheldReceiver> SplitByRegion(const spec::Spec& spec,
                                            const std::vector<std::string>& datasets,
                                            std::vector<const spec::Party*>* receivers);
// [{"party", "reason"}, ...]: how the query output, a result's metadata and
// the audit record carry them.
nlohmann::json WithheldJson(const std::vector<WithheldReceiver>& withheld);

// Runs a query or template for the party holding `caller`. Errors:
// NOT_AUTHORIZED (key of no party, or no `query` ability), ROOM_NOT_ACTIVE,
// QUERY_REFUSED (also for a requested receiver the rules do not allow),
// SQL_INVALID, BAD_INPUT (template/parameters), UNKNOWN_DATASET,
// QUERY_LIMIT_EXCEEDED (time or memory). With differential privacy (dp.h):
// QUERY_REFUSED for a plan or epsilon the room cannot answer with noise,
// BUDGET_EXHAUSTED (exit 4) when the cost would overspend the period's budget
// (nothing runs or is charged); the cost is charged before the query runs,
// and an identical query in the period returns the stored answer free.
Result<Outcome> Run(room::Room& room, const crypto::Identity& caller, const Request& req,
                    const RunOptions& options = {});

// What a query would be, without running it: the datasets it touches, the
// columns it releases, who would receive it and whether it would be answered
// with differential privacy (and at what cost).
struct CheckOutcome {
  std::vector<std::string> datasets;
  std::vector<std::string> columns;
  std::vector<std::string> receivers;
  std::vector<WithheldReceiver> withheld_receivers;
  bool caller_receives = false;
  bool dp = false;
  std::optional<double> epsilon;
};

// Everything Run checks before it reads a byte (party, ability, active room,
// template and parameters, the plan, the DP plan, receivers), in the same
// order with the same checkers, and nothing after: no data is read, nothing
// is executed, charged to the budget or stored. The same errors as Run. Both
// outcomes are audited ("query.check" / "query.check.refused", or
// "template.check..."), with the SQL's hash and never its text, so a party
// probing the rules is on the record as one running queries is.
Result<CheckOutcome> Check(room::Room& room, const crypto::PublicIdentity& caller,
                           const Request& req, const engine::Options& engine = {});

// The metadata of every result sealed to the party holding `caller` (ids,
// datasets, columns, counts; never rows), oldest first. NOT_AUTHORIZED for a
// key of no party. Audited.
Result<std::vector<nlohmann::json>> ListResults(room::Room& room, const crypto::Identity& caller);

// The same for a caller known by its public key (the server, which has
// authenticated the party and never holds its secret key).
Result<Outcome> Run(room::Room& room, const crypto::PublicIdentity& caller, const Request& req,
                    const RunOptions& options = {});
Result<std::vector<nlohmann::json>> ListResults(room::Room& room,
                                                const crypto::PublicIdentity& caller);

// The sealed box of result `id` made for the party holding `caller`, as
// stored: only that party's secret key opens it (results::OpenSealed). Errors
// and audit records as GetResult (result.get / result.get.refused), without
// opening anything.
Result<std::string> GetSealed(room::Room& room, const crypto::PublicIdentity& caller,
                              const std::string& id);

// Opens a stored result for the party holding `caller` (audited).
Result<results::ResultSet> GetResult(room::Room& room, const crypto::Identity& caller,
                                     const std::string& id);

}  // namespace cr::query
