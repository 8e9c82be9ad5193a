// Runs a checked plan inside the room: decrypts only the touched datasets into
// memory, executes the generated SQL, applies the threshold and builds the
// filtered-row summary. Fails closed: any error releases nothing.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "diffcheck/unit_sets.h"
#include "engine/engine.h"
#include "query/plan.h"
#include "results/results.h"
#include "room/cache.h"
#include "room/room.h"

namespace cr::query {

// A benchmark answer's own figures (plan.benchmark): for each contributor
// index of the pooled dataset, per released row in the answer's order, its own
// value of each aggregate output (null where it has no rows in the cell).
// Seconds from `t` to now, for the phase timings in ExecStats.
double Since(std::chrono::steady_clock::time_point t);

struct OwnFigures {
  std::vector<size_t> aggregate_outputs;  // indices into the plan's outputs
  std::map<int, std::vector<std::vector<nlohmann::json>>> rows;
};

struct ExecStats {
  int64_t groups = 0;           // groups before the threshold (after HAVING)
  int64_t released_rows = 0;    // rows released (after ORDER BY / LIMIT)
  int64_t withheld_rows = 0;    // groups withheld by the threshold
  bool summary_released = true;
  double decrypt_seconds = 0;
  double query_seconds = 0;
  // With plan.unit_sets: the units behind each released row, in row order,
  // and the time spent reading and building them (inside query_seconds).
  std::vector<diffcheck::UnitSet> unit_sets;
  // With GeneratedSql::unit_summaries the sets are summaries (size and
  // fingerprint) and this fetches the units of the rows a check needs
  // (diffcheck::Store::Fill), from the query's database, which must still
  // be open; it holds the mounted datasets' decrypted files until dropped.
  diffcheck::Store::Fill fill_unit_sets;
  int64_t difference_withheld = 0;  // released rows then withheld by the difference check
  double unit_set_seconds = 0;
  // The difference check after the SQL: comparing with earlier rows, and
  // recording the released rows' sets (query::Run fills these).
  double unit_check_seconds = 0;
  double unit_store_seconds = 0;
  std::optional<OwnFigures> own;  // set for a benchmark answer
};

// The benchmark answer `peers` as contributor `contributor` sees it: after
// each aggregate output's column, NAME_own with its own figure.
results::ResultSet WithOwnFigures(const results::ResultSet& peers, const OwnFigures& own,
                                  int contributor);

// Mounts each dataset of the plan as a view over its decrypted in-memory
// Parquet, from `cache` when given (a warm room). The MemFiles must outlive
// the queries. UNKNOWN_DATASET when a dataset has not been contributed yet.
Result<std::vector<std::shared_ptr<const engine::MemFile>>> MountDatasets(
    const room::Room& room, engine::Database& db, const Plan& plan,
    room::DecryptCache* cache = nullptr);

// Runs `plan` over datasets already mounted in `db`. The result has no id yet.
// DuckDB's own messages are not passed on (they can quote data values).
Result<results::ResultSet> ExecutePlan(engine::Database& db, const Plan& plan, ExecStats* stats);

// MountDatasets + ExecutePlan in `db`, an in-memory database with no views
// yet (the one the plan was built with: opening a second costs ~10 ms). The
// generated SQL is interrupted after `timeout_seconds` (0: no limit), and the
// query then fails with QUERY_LIMIT_EXCEEDED, as it does when it needs more
// memory than the engine may use (nothing is ever spilled to disk).
Result<results::ResultSet> Execute(const room::Room& room, engine::Database& db, const Plan& plan,
                                   ExecStats* stats, double timeout_seconds = 0,
                                   room::DecryptCache* cache = nullptr);

// MountDatasets, then `run` under the same time limit as Execute: the
// differential-privacy path (dp.h) runs its own SQL this way.
Result<results::ResultSet> ExecuteWith(const room::Room& room, engine::Database& db,
                                       const Plan& plan, ExecStats* stats, double timeout_seconds,
                                       const std::function<Result<results::ResultSet>()>& run,
                                       room::DecryptCache* cache = nullptr);

// One DuckDB value (as text, with its type name) as a JSON cell: numbers as
// numbers when they fit, booleans as booleans, everything else as text.
nlohmann::json Cell(const std::optional<std::string>& v, const std::string& type);

// The error for generated SQL that failed in `db`: the time or memory limit
// (QUERY_LIMIT_EXCEEDED), else SQL_INVALID without DuckDB's text.
Error RunFailure(engine::Database& db);

}  // namespace cr::query
