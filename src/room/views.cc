#include "room/views.h"

#include <time.h>

#include <algorithm>

namespace cr::room {

using nlohmann::ordered_json;

std::string Rfc3339(long long unix_seconds) {
  time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm {};
  if (!gmtime_r(&t, &tm)) return "";
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::vector<DatasetView> DatasetViews(const Room& room, const RoomInfo& info, long long now_unix) {
  const spec::Spec& spec = room.spec();
  std::vector<DatasetView> out;
  for (const auto& d : spec.datasets) {
    DatasetView v;
    v.declared = &d;
    if (auto it = info.packages.find(d.name); it != info.packages.end()) v.packages = it->second;
    const DatasetEntry* oldest = nullptr;
    if (d.pooled()) {
      for (const auto& c : d.contributors) {
        auto it = room.datasets().find(PartName(d.name, c));
        const DatasetEntry* part = it == room.datasets().end() ? nullptr : &it->second;
        v.parts.push_back(part);
        if (!part) continue;
        if (!v.stored || part->ingested_unix > v.stored->ingested_unix) v.stored = part;
        if (!oldest || part->ingested_unix < oldest->ingested_unix) oldest = part;
      }
    } else if (auto it = room.datasets().find(d.name); it != room.datasets().end()) {
      v.stored = oldest = &it->second;
    }
    if (v.stored) {
      v.state = "stored";
      if (spec.retention_days > 0) {
        long long until = oldest->ingested_unix + spec.retention_days * 86400LL;
        v.retain_until = Rfc3339(until);
        v.expired = now_unix >= until;
      }
    } else {
      v.state = v.packages > 0 ? "disposed" : "not contributed";
    }
    out.push_back(v);
  }
  return out;
}

ordered_json DatasetsJson(const std::vector<DatasetView>& views) {
  ordered_json list = ordered_json::array();
  for (const auto& v : views) {
    const bool pooled = v.declared->pooled();
    ordered_json j = {{"name", v.declared->name},
                      {"owner", pooled ? ordered_json() : ordered_json(v.declared->owner)}};
    int64_t rows = 0;
    if (pooled) {
      ordered_json contributors = ordered_json::array();
      for (size_t i = 0; i < v.parts.size(); ++i) {
        ordered_json c = {{"name", v.declared->contributors[i]},
                          {"contributed", v.parts[i] != nullptr}};
        if (const DatasetEntry* part = v.parts[i]) {
          c["rows"] = part->rows;
          c["package_id"] = part->package_id;
          c["ingested_at"] = part->ingested_at;
          // Each of its units in one row, and in no earlier part of another
          // contributor (checked at ingest): what lets queries skip DISTINCT.
          c["units_in_one_row"] = part->unique_units;
          rows += part->rows;
        }
        contributors.push_back(std::move(c));
      }
      j["contributors"] = std::move(contributors);
    }
    j["state"] = v.state;
    j["contributions"] = v.packages;
    if (v.stored) {
      ordered_json columns = ordered_json::array();
      for (const auto& c : v.stored->schema) {
        columns.push_back({{"name", c.name}, {"type", c.type}, {"role", c.role}});
      }
      j["columns"] = std::move(columns);
      j["rows"] = pooled ? rows : v.stored->rows;
      j["package_id"] = pooled ? ordered_json() : ordered_json(v.stored->package_id);
      j["ingested_at"] = v.stored->ingested_at;
      j["retain_until"] = v.retain_until.empty() ? ordered_json() : ordered_json(v.retain_until);
      j["expired"] = v.expired;
    }
    list.push_back(std::move(j));
  }
  return ordered_json{{"datasets", std::move(list)}};
}

ordered_json StatusJson(const Room& room, const RoomInfo& info) {
  const spec::Spec& spec = room.spec();
  auto signed_by = [&info](const std::string& party) {
    return std::find(info.signed_by.begin(), info.signed_by.end(), party) != info.signed_by.end();
  };
  ordered_json parties = ordered_json::array();
  for (const auto& p : spec.parties) {
    parties.push_back({{"name", p.name},
                       {"abilities", p.abilities},
                       {"key_fingerprint", p.key.Fingerprint()},
                       {"signed", signed_by(p.name)}});
    if (!p.region.empty()) parties.back()["region"] = p.region;
  }
  ordered_json versions = ordered_json::array();
  for (const auto& v : room.history()) versions.push_back(VersionSummary(v));
  // Datasets of the spec with data in the room (a pooled one counts once).
  size_t stored = 0;
  for (const auto& d : spec.datasets) stored += room.Parts(d.name).empty() ? 0 : 1;
  ordered_json pools = ordered_json::array();
  for (const auto& d : spec.datasets) {
    if (!d.pooled()) continue;
    ordered_json contributors = ordered_json::array();
    for (const auto& c : d.contributors) {
      contributors.push_back(
          {{"name", c}, {"contributed", room.datasets().count(PartName(d.name, c)) > 0}});
    }
    pools.push_back({{"dataset", d.name}, {"contributors", std::move(contributors)}});
  }
  ordered_json out{{"collaboration", spec.collaboration},
                   {"spec_hash", spec.hash},
                   {"room_format", info.format},
                   {"status", room.active() ? "active" : "initialized"},
                   {"active", room.active()},
                   {"created_at", info.created_at},
                   {"activated_at",
                    info.activated_at.empty() ? ordered_json() : ordered_json(info.activated_at)},
                   {"region", spec.region.empty() ? ordered_json() : ordered_json(spec.region)},
                   {"room_region", info.region.empty() ? ordered_json() : ordered_json(info.region)},
                   {"version", info.version},
                   {"versions", std::move(versions)},
                   {"retention_days",
                    spec.retention_days > 0 ? ordered_json(spec.retention_days) : ordered_json()},
                   {"engine", "duckdb"},
                   {"room_key_fingerprint", room.key().pub().Fingerprint()},
                   {"parties", std::move(parties)},
                   {"datasets_declared", spec.datasets.size()},
                   {"datasets_stored", static_cast<int64_t>(stored)}};
  if (!pools.empty()) out["pools"] = std::move(pools);
  return out;
}

std::string Dump(const ordered_json& doc) {
  return doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace cr::room
