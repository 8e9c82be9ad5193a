// The JSON the room shows about itself (`status`, `datasets`): one builder for
// the CLI and the server, so both print the same document. Metadata only.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "room/room.h"

namespace cr::room {

// One dataset of the spec as the room holds it. State: "stored", "disposed"
// (packages were ingested, none is held now) or "not contributed".
struct DatasetView {
  const spec::Dataset* declared = nullptr;
  const DatasetEntry* stored = nullptr;  // a pooled dataset: its latest part
  // A pooled dataset: the part of each contributor (nullptr: not contributed),
  // in the spec's contributor order.
  std::vector<const DatasetEntry*> parts;
  int64_t packages = 0;
  std::string state;
  std::string retain_until;  // "" when retention is off or nothing is stored
  bool expired = false;      // past retention: shredded by the next read-write open
};

// RFC 3339 UTC of a Unix time ("" when it cannot be represented).
std::string Rfc3339(long long unix_seconds);

// Every dataset of the spec, in spec order; `now_unix` decides `expired`.
std::vector<DatasetView> DatasetViews(const Room& room, const RoomInfo& info, long long now_unix);

// {"datasets": [{"name", "owner", "state", "contributions", and when stored
// "columns" [{name, type, role}], "rows", "package_id", "ingested_at",
// "retain_until", "expired"}]}: what `datasets --format json` prints. A
// pooled dataset has "owner": null and "contributors" [{name, contributed,
// and when contributed rows, package_id, ingested_at, units_in_one_row}], "rows" summed over
// the parts, "package_id" null, and "retain_until" the earliest part's.
nlohmann::ordered_json DatasetsJson(const std::vector<DatasetView>& views);

// What `status --format json` prints: the collaboration, spec hash, parties
// with abilities and who signed, activation, region, retention; with pooled
// datasets, "pools" [{dataset, contributors [{name, contributed}]}].
nlohmann::ordered_json StatusJson(const Room& room, const RoomInfo& info);

// The pretty form both print: two-space indent, invalid UTF-8 replaced.
std::string Dump(const nlohmann::ordered_json& doc);

}  // namespace cr::room
