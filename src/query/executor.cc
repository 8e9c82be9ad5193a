#include "query/executor.h"

#include <algorithm>
#include <chrono>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "query/rewrite.h"

namespace cr::query {
namespace {

bool IsIntegerType(const std::string& t) {
  return t == "BIGINT" || t == "INTEGER" || t == "SMALLINT" || t == "TINYINT" || t == "HUGEINT" ||
         t == "UBIGINT" || t == "UINTEGER" || t == "USMALLINT" || t == "UTINYINT" ||
         t == "UHUGEINT";
}

bool IsFloatType(const std::string& t) {
  return t == "DOUBLE" || t == "FLOAT" || t.rfind("DECIMAL", 0) == 0;
}

// Errors while running generated SQL: code SQL_INVALID (type or conversion
// errors the analyst caused), without DuckDB's detail.
constexpr ErrorCode kRunError = ErrorCode::SQL_INVALID;

}  // namespace

double Since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

nlohmann::json Cell(const std::optional<std::string>& v, const std::string& type) {
  if (!v) return nullptr;
  if (IsIntegerType(type)) {
    try {
      size_t pos = 0;
      long long n = std::stoll(*v, &pos);
      if (pos == v->size()) return n;
    } catch (const std::exception&) {
    }
    try {
      return std::stod(*v);
    } catch (const std::exception&) {
      return *v;
    }
  }
  if (IsFloatType(type)) {
    try {
      size_t pos = 0;
      double d = std::stod(*v, &pos);
      if (pos == v->size() && std::isfinite(d)) return d;
    } catch (const std::exception&) {
    }
    return *v;
  }
  if (type == "BOOLEAN") return *v == "true";
  return *v;
}

Error RunFailure(engine::Database& db) {
  switch (db.LastFailure()) {
    case engine::FailureKind::kOutOfMemory:
      return Error{ErrorCode::QUERY_LIMIT_EXCEEDED,
                   "the query needs more memory than the room allows and was stopped"};
    case engine::FailureKind::kInterrupted:
      return Error{ErrorCode::QUERY_LIMIT_EXCEEDED, "the query was stopped"};
    default:
      return Error{kRunError,
                   "the query failed while running (a type or conversion error); DuckDB's "
                   "details are withheld because they can quote data values"};
  }
}

Result<std::vector<std::shared_ptr<const engine::MemFile>>> MountDatasets(
    const room::Room& room, engine::Database& db, const Plan& plan, room::DecryptCache* cache) {
  const auto names = plan.Datasets();
  for (const auto& name : names) {
    if (room.Parts(name).empty()) {
      return Fail(ErrorCode::UNKNOWN_DATASET, "dataset {} has not been contributed to the room yet",
                  name);
    }
  }
  // Only the columns the generated SQL reads are decrypted, and each view
  // exposes only those: a column the room did not decrypt cannot be read.
  // Datasets are decrypted one after the other, each on every core.
  const auto columns = plan.Columns();
  std::vector<std::shared_ptr<const engine::MemFile>> files;
  for (const auto& name : names) {
    const auto& wanted = columns.at(name);
    const auto parts = room.Parts(name);
    std::vector<std::string> select;
    for (const auto& c : parts.front()->schema) {
      if (wanted.count(c.name)) select.push_back(engine::QuoteIdent(c.name));
    }
    if (select.size() != wanted.size()) {
      return Fail(ErrorCode::INTERNAL, "dataset {} lacks a column the query reads", name);
    }
    // A pooled dataset is the union of its parts, one Parquet file each; the
    // room adds which contributor each row came from (its index in the spec's
    // contributors), a column no query can name (spec::kContributorColumn).
    const spec::Dataset* declared = room.spec().FindDataset(name);
    std::vector<std::string> paths, contributors;
    for (const auto* part : parts) {
      std::shared_ptr<const engine::MemFile> mem;
      if (cache) {
        CR_ASSIGN(mem, cache->Get(room, part->name, wanted));
      } else {
        CR_ASSIGN(auto own, room.Decrypt(part->name, &wanted));
        mem = std::make_shared<const engine::MemFile>(std::move(own));
      }
      paths.push_back(engine::QuoteLiteral(mem->path()));
      contributors.push_back(fmt::format("{}", declared->ContributorIndex(part->owner)));
      files.push_back(std::move(mem));
    }
    std::string view;
    if (declared->pooled()) {
      view = fmt::format(
          "CREATE VIEW {} AS SELECT {}, CAST([{}][CAST(file_index AS BIGINT) + 1] AS INTEGER) AS "
          "{} FROM "
          "read_parquet([{}])",
          engine::QuoteIdent(name), fmt::join(select, ", "), fmt::join(contributors, ", "),
          engine::QuoteIdent(spec::kContributorColumn), fmt::join(paths, ", "));
    } else {
      view = fmt::format("CREATE VIEW {} AS SELECT {} FROM read_parquet({})",
                         engine::QuoteIdent(name), fmt::join(select, ", "), paths.front());
    }
    CR_TRY(db.Execute(view, ErrorCode::INTERNAL, false));
  }
  return files;
}

Result<results::ResultSet> ExecutePlan(engine::Database& db, const Plan& plan, ExecStats* stats) {
  GeneratedSql sql = Generate(plan);
  if (sql.unit_summaries) {
    CR_TRY(db.RegisterUnitHashFunction(kUnitFingerprintFunction, &diffcheck::UnitFingerprint));
  }
  auto fail = [&db](const Error&) { return std::unexpected(RunFailure(db)); };
  for (const auto& stmt : sql.prepare) {
    if (auto st = db.Execute(stmt, kRunError, false); !st) return fail(st.error());
  }
  if (auto st = db.Execute(sql.groups, kRunError, false); !st) return fail(st.error());
  auto released = db.Query(plan.benchmark ? sql.benchmark : sql.released, kRunError, false);
  if (!released) return fail(released.error());
  auto counts = db.Query(sql.group_counts, kRunError, false);
  if (!counts) return fail(counts.error());

  results::ResultSet out;
  // A benchmark answer starts with the group id and has the peers' figures
  // after each aggregate output.
  const size_t first = plan.benchmark ? 1 : 0;
  for (const auto& o : plan.outputs) {
    out.columns.push_back(o.name);
    if (!plan.benchmark || !o.expr.HasAggregate()) continue;
    for (const char* stat : {"_peer_mean", "_peer_median", "_peer_q1", "_peer_q3"}) {
      out.columns.push_back(o.name + stat);
    }
  }
  std::map<int64_t, size_t> row_of_group;
  // With unit sets, the released query's last column is the row key.
  const size_t last = released->column_count() - (plan.unit_sets ? 1 : 0);
  std::map<int64_t, size_t> row_of_key;  // with unit sets: group key -> released row
  for (size_t r = 0; r < released->row_count(); ++r) {
    nlohmann::json row = nlohmann::json::array();
    for (size_t c = first; c < last; ++c) {
      row.push_back(Cell(released->at(r, c), released->types()[c]));
    }
    if (plan.unit_sets) row_of_key[std::stoll(released->at(r, last).value_or("-1"))] = r;
    out.rows.push_back(std::move(row));
    if (plan.benchmark) row_of_group[std::stoll(released->at(r, 0).value_or("0"))] = r;
  }
  if (plan.benchmark) {
    auto own = db.Query(sql.benchmark_own, kRunError, false);
    if (!own) return fail(own.error());
    OwnFigures figures;
    for (size_t i = 0; i < plan.outputs.size(); ++i) {
      if (plan.outputs[i].expr.HasAggregate()) figures.aggregate_outputs.push_back(i);
    }
    const size_t n_agg = figures.aggregate_outputs.size();
    for (size_t r = 0; r < own->row_count(); ++r) {
      auto at = row_of_group.find(std::stoll(own->at(r, 0).value_or("0")));
      if (at == row_of_group.end()) continue;  // released, but cut by LIMIT
      int contributor = static_cast<int>(std::stoll(own->at(r, 1).value_or("-1")));
      auto& rows = figures.rows[contributor];
      if (rows.empty()) {
        rows.assign(out.rows.size(), std::vector<nlohmann::json>(n_agg, nullptr));
      }
      for (size_t a = 0; a < n_agg; ++a)
        rows[at->second][a] = Cell(own->at(r, 2 + a), own->types()[2 + a]);
    }
    if (stats) stats->own = std::move(figures);
  }
  std::vector<diffcheck::UnitSet> sets;
  if (plan.unit_sets && sql.unit_summaries) {
    // Sizes and fingerprints only; the lists when a check needs them.
    auto t0 = std::chrono::steady_clock::now();
    sets.resize(out.rows.size());
    std::vector<bool> seen(out.rows.size(), false);
    std::vector<int64_t> key_of_row(out.rows.size(), 0);
    auto summaries = db.Query(sql.unit_lists, kRunError, false);
    if (!summaries) return fail(summaries.error());
    for (size_t r = 0; r < summaries->row_count(); ++r) {
      auto it = row_of_key.find(std::stoll(summaries->at(r, 0).value_or("-1")));
      if (it == row_of_key.end()) continue;  // cut by LIMIT/OFFSET
      const uint64_t count = std::stoull(summaries->at(r, 1).value_or("0"));
      const uint64_t fp = std::stoull(summaries->at(r, 2).value_or("0"));
      sets[it->second].SetSummary(count, fp);
      seen[it->second] = count > 0;
      key_of_row[it->second] = it->first;
    }
    if (std::find(seen.begin(), seen.end(), false) != seen.end()) {
      return Fail(ErrorCode::INTERNAL, "a released row has no unit set for the difference check");
    }
    if (stats) {
      stats->unit_set_seconds = Since(t0);
      stats->fill_unit_sets = [&db, sql_of = sql.unit_lists_of, key_of_row](
                                  std::vector<diffcheck::UnitSet>& rows,
                                  const std::vector<size_t>& which) -> Status {
        std::map<int64_t, size_t> row_of;
        std::vector<std::string> keys;
        for (size_t r : which) {
          if (r >= rows.size() || r >= key_of_row.size()) {
            return Fail(ErrorCode::INTERNAL, "the difference check asked for an unknown row");
          }
          row_of[key_of_row[r]] = r;
          keys.push_back(fmt::format("{}", key_of_row[r]));
        }
        std::string q = sql_of;
        q.replace(q.find(kUnitKeysToken), std::string_view(kUnitKeysToken).size(),
                  fmt::format("{}", fmt::join(keys, ", ")));
        CR_TRY(db.ForEachList(
            q,
            [&](int64_t key, size_t, const uint64_t* v, size_t n) {
              if (auto it = row_of.find(key); it != row_of.end()) {
                rows[it->second].Add(v, n, /*distinct=*/false);
              }
            },
            kRunError, false));
        for (size_t r : which) rows[r].Finish();
        return Ok();
      };
    }
  } else if (plan.unit_sets) {
    auto t0 = std::chrono::steady_clock::now();
    sets.resize(out.rows.size());
    bool missing = false;
    auto st = db.ForEachList(
        sql.unit_lists,
        [&](int64_t key, size_t, const uint64_t* v, size_t n) {
          auto it = row_of_key.find(key);
          // Groups cut by LIMIT/OFFSET are not released and need no set.
          if (it != row_of_key.end()) sets[it->second].Add(v, n, /*distinct=*/true);
        },
        kRunError, false);
    if (!st) return fail(st.error());
    for (auto& set : sets) {
      set.Finish();
      missing = missing || set.count() == 0;
    }
    if (missing) {
      return Fail(ErrorCode::INTERNAL, "a released row has no unit set for the difference check");
    }
    if (stats) stats->unit_set_seconds = Since(t0);
  }
  const int64_t n_withheld = std::stoll(counts->at(0, 0).value_or("0"));
  bool summary = true;
  if (n_withheld > 0) {
    // The summary is itself a release: only when the withheld groups together
    // cover enough units (counted inside the query, never in C++).
    auto units = db.Query(sql.withheld_units, kRunError, false);
    if (!units) return fail(units.error());
    summary = units->Scalar() == std::optional<std::string>("true");
  }
  if (summary) out.withheld_rows = n_withheld;
  if (summary && n_withheld > 0 && !sql.rules.empty()) {
    auto by = db.Query(sql.withheld_by, kRunError, false);
    if (!by) return fail(by.error());
    for (size_t i = 0; i < sql.rules.size(); ++i) {
      out.withheld_by.emplace_back(sql.rules[i], std::stoll(by->at(0, i).value_or("0")));
    }
  }
  // The groups table goes with the in-memory database, closed off the
  // answer's path (engine/closer.h): dropping it here would free it on it.
  if (stats) {
    stats->groups = std::stoll(counts->at(0, 1).value_or("0"));
    stats->released_rows = static_cast<int64_t>(out.rows.size());
    stats->withheld_rows = n_withheld;
    stats->summary_released = summary;
    stats->unit_sets = std::move(sets);
  }
  return out;
}

results::ResultSet WithOwnFigures(const results::ResultSet& peers, const OwnFigures& own,
                                  int contributor) {
  results::ResultSet out = peers;
  auto mine = own.rows.find(contributor);
  // Position of each aggregate output's value column in the peers' answer:
  // an aggregate output spans five columns (value and four peer figures).
  std::vector<size_t> value_column;
  size_t col = 0, next_agg = 0;
  for (size_t i = 0; next_agg < own.aggregate_outputs.size(); ++i) {
    if (own.aggregate_outputs[next_agg] == i) {
      value_column.push_back(col);
      col += 5;
      ++next_agg;
    } else {
      col += 1;
    }
  }
  // Insert from the right so earlier positions stay valid.
  for (size_t a = value_column.size(); a-- > 0;) {
    size_t at = value_column[a] + 1;
    out.columns.insert(out.columns.begin() + static_cast<long>(at), peers.columns[at - 1] + "_own");
    for (size_t r = 0; r < out.rows.size(); ++r) {
      nlohmann::json v = mine == own.rows.end() ? nlohmann::json() : mine->second[r][a];
      out.rows[r].insert(out.rows[r].begin() + static_cast<long>(at), v);
    }
  }
  return out;
}

Result<results::ResultSet> Execute(const room::Room& room, engine::Database& db, const Plan& plan,
                                   ExecStats* stats, double timeout_seconds,
                                   room::DecryptCache* cache) {
  return ExecuteWith(room, db, plan, stats, timeout_seconds,
                     [&] { return ExecutePlan(db, plan, stats); }, cache);
}

Result<results::ResultSet> ExecuteWith(const room::Room& room, engine::Database& db,
                                       const Plan& plan, ExecStats* stats, double timeout_seconds,
                                       const std::function<Result<results::ResultSet>()>& run,
                                       room::DecryptCache* cache) {
  auto t0 = std::chrono::steady_clock::now();
  CR_ASSIGN(auto files, MountDatasets(room, db, plan, cache));
  double decrypt = Since(t0);
  auto t1 = std::chrono::steady_clock::now();
  // A watchdog interrupts the generated SQL once it has run for the limit: a
  // hostile analyst's join that multiplies rows cannot hold the room. DuckDB
  // forgets an interrupt when its next statement starts, so past the deadline
  // the watchdog keeps interrupting until the work is done, and a query that
  // overran is refused even if its last statement slipped through.
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::atomic<bool> timed_out{false};
  std::jthread watchdog;
  if (timeout_seconds > 0) {
    watchdog = std::jthread([&] {
      std::unique_lock lock(mu);
      if (cv.wait_for(lock, std::chrono::duration<double>(timeout_seconds), [&] { return done; })) {
        return;
      }
      timed_out = true;
      do {
        db.Interrupt();
      } while (!cv.wait_for(lock, std::chrono::milliseconds(20), [&] { return done; }));
    });
  }
  // Declared after the watchdog, destroyed before it: on every way out of this
  // scope (exceptions included) the watchdog is told to stop, then joined.
  struct Finish {
    std::mutex& mu;
    std::condition_variable& cv;
    bool& done;
    ~Finish() {
      {
        std::lock_guard lock(mu);
        done = true;
      }
      cv.notify_all();
    }
  };
  Result<results::ResultSet> ran = [&] {
    Finish finish{mu, cv, done};
    return run();
  }();
  if (watchdog.joinable()) watchdog.join();
  if (timed_out) {
    return Fail(ErrorCode::QUERY_LIMIT_EXCEEDED,
                "the query ran longer than the room allows ({} s) and was stopped", timeout_seconds);
  }
  CR_ASSIGN(auto out, std::move(ran));
  if (stats && stats->fill_unit_sets) {
    // The fetch reads the mounted files after this returns: it holds them.
    stats->fill_unit_sets = [fill = std::move(stats->fill_unit_sets), files](
                                std::vector<diffcheck::UnitSet>& rows,
                                const std::vector<size_t>& which) { return fill(rows, which); };
  }
  if (stats) {
    stats->decrypt_seconds = decrypt;
    stats->query_seconds = Since(t1);
  }
  return out;
}

}  // namespace cr::query
