// Released query results: the one JSON shape scripts rely on, its table/csv
// rendering, and storage in the room sealed to each receiver (X25519 sealed
// boxes), so only a receiver's secret key opens them.
//
// Layout: DIR/results/ID/PARTY.sealed (one per receiver) and
// DIR/results/ID/meta.json (written last: a result without it does not exist),
// sealed by the room (room/sealed_meta.h) under its name "results/ID/meta.json":
// changed, cut, or moved to another result's folder, it is TAMPERED.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "crypto/crypto.h"
#include "room/sealed_meta.h"

namespace cr::results {

struct ResultSet {
  std::string result_id;
  std::vector<std::string> columns;
  // Array of arrays of cells: scalars, or for a noisy aggregate (differential
  // privacy) {"value": v, "ci_low": a, "ci_high": b}, a 95% confidence interval.
  nlohmann::json rows = nlohmann::json::array();
  // Groups withheld by the threshold; nullopt when that count is itself
  // withheld (the withheld groups together cover too few units, or partition
  // selection decided: its count is a function of exact data).
  std::optional<int64_t> withheld_rows;
  // Set for an answer with differential privacy: what this query cost (0 for
  // the stored answer of an identical query in the same period).
  std::optional<double> epsilon_spent;
  // A query over pooled datasets: per cell rule, in order, how many groups
  // failed it (a group can fail several); released with withheld_rows only.
  std::vector<std::pair<std::string, int64_t>> withheld_by;
};

// A noisy cell: an object with a number "value" and its interval.
bool IsNoisyCell(const nlohmann::json& cell);

// {"result_id": "...", "columns": [...], "rows": [[...]], "withheld_rows": N|null}
// and "epsilon_spent": E for a differentially private answer, "withheld_by":
// {rule: N} for a query over pooled datasets.
nlohmann::json ToJson(const ResultSet& r);
// BAD_INPUT when the object does not have that shape.
Result<ResultSet> FromJson(const nlohmann::json& j);

// "table" (aligned, with the id and the withheld summary; a noisy cell as
// "v ± half-width"), "csv" (header and rows only; a noisy column's value, then
// NAME_ci_low and NAME_ci_high columns) or "json" (the ToJson object on one
// line, keys in the order result_id, columns, rows, withheld_rows, epsilon_spent).
std::string Render(const ResultSet& r, std::string_view format);

// A result id is 32 lower-case hex digits (crypto::RandomId); anything else is
// refused before it touches a path.
bool ValidId(std::string_view id);

struct Receiver {
  std::string party;
  crypto::PublicIdentity key;
  // This receiver's own version of the result (a benchmark answer with the
  // contributor's own figures, same id); null: the shared one.
  const ResultSet* own = nullptr;
};

// Seals `r` to every receiver and stores it with `meta` (ids, names and counts
// only). FILE_EXISTS if the id is taken. Each file is written atomically.
Status Store(const std::string& room_dir, const room::MetaSealer& sealer, const ResultSet& r,
             const std::vector<Receiver>& receivers, nlohmann::json meta);

// Removes a stored result (used when a later step fails: nothing half-released).
void Remove(const std::string& room_dir, const std::string& id);

// The metadata of a stored result. RESULT_NOT_FOUND when absent.
Result<nlohmann::json> ReadMeta(const std::string& room_dir, const room::MetaSealer& sealer,
                                const std::string& id);

// The metadata of every complete result sealed to `party` (a copy for it
// exists), oldest first. Results whose metadata cannot be read are TAMPERED.
Result<std::vector<nlohmann::json>> ListFor(const std::string& room_dir, const room::MetaSealer& sealer,
                                            const std::string& party);

// Opens the copy sealed to `party` with its key. RESULT_NOT_FOUND when no such
// result; NOT_AUTHORIZED when `party` is not one of its receivers; TAMPERED
// when the box does not open or holds another result.
Result<ResultSet> Open(const std::string& room_dir, const room::MetaSealer& sealer,
                       const std::string& id, const std::string& party, const crypto::Identity& key);

// Seals every meta.json written before results were sealed (room protect).
Status SealUnsealed(const std::string& room_dir, const room::MetaSealer& sealer);

// The bytes of the copy sealed to `party`, unopened (what the server sends).
// RESULT_NOT_FOUND / NOT_AUTHORIZED as Open.
Result<std::string> ReadSealed(const std::string& room_dir, const room::MetaSealer& sealer,
                               const std::string& id, const std::string& party);

// Opens sealed bytes (ReadSealed's) with the receiver's key and checks they
// hold result `id`: what a client does with the server's answer. TAMPERED when
// the box does not open or holds another result.
Result<ResultSet> OpenSealed(std::string_view sealed, const std::string& id,
                             const crypto::Identity& key);

// One line of `results list` from a result's metadata: result_id, created_at,
// requested_by, template, datasets, columns, released_rows, withheld_rows
// (null when absent). Ids, names and counts only.
nlohmann::json Summary(const nlohmann::json& meta);

}  // namespace cr::results
