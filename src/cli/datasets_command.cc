// `cleanroom datasets` and `cleanroom status`: inspect a room without changing it.
#include <time.h>

#include <algorithm>

#include <fmt/core.h>
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/output.h"
#include "common/files.h"
#include "room/room.h"

namespace cr::cli {
namespace {

using nlohmann::ordered_json;

std::string Rfc3339(long long unix_seconds) {
  time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm {};
  if (!gmtime_r(&t, &tm)) return "";
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Inspection must not take the lock or shred expired data: a read-only open.
Result<room::Room> OpenForInspection(const Globals& g, std::string_view command) {
  if (g.room.empty()) return Fail(ErrorCode::USAGE, "{} needs --room DIR", command);
  return room::Room::Open(g.room, room::OpenMode::kReadOnly);
}


// One dataset of the spec as the room holds it. State: "stored", "disposed"
// (packages were ingested, none is held now) or "not contributed".
struct DatasetView {
  const spec::Dataset* declared = nullptr;
  const room::DatasetEntry* stored = nullptr;
  int64_t packages = 0;
  std::string state;
  std::string retain_until;  // "" when retention is off or nothing is stored
  bool expired = false;      // past retention: shredded by the next read-write open
};

std::vector<DatasetView> Views(const room::Room& room, const room::RoomInfo& info) {
  const spec::Spec& spec = room.spec();
  std::vector<DatasetView> out;
  for (const auto& d : spec.datasets) {
    DatasetView v;
    v.declared = &d;
    if (auto it = info.packages.find(d.name); it != info.packages.end()) v.packages = it->second;
    if (auto it = room.datasets().find(d.name); it != room.datasets().end()) {
      v.stored = &it->second;
      v.state = "stored";
      if (spec.retention_days > 0) {
        long long until = v.stored->ingested_unix + spec.retention_days * 86400LL;
        v.retain_until = Rfc3339(until);
        v.expired = NowUnix() >= until;
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
    ordered_json j = {{"name", v.declared->name},
                      {"owner", v.declared->owner},
                      {"state", v.state},
                      {"contributions", v.packages}};
    if (v.stored) {
      ordered_json columns = ordered_json::array();
      for (const auto& c : v.stored->schema) {
        columns.push_back({{"name", c.name}, {"type", c.type}, {"role", c.role}});
      }
      j["columns"] = std::move(columns);
      j["rows"] = v.stored->rows;
      j["package_id"] = v.stored->package_id;
      j["ingested_at"] = v.stored->ingested_at;
      j["retain_until"] = v.retain_until.empty() ? ordered_json() : ordered_json(v.retain_until);
      j["expired"] = v.expired;
    }
    list.push_back(std::move(j));
  }
  return list;
}

void PrintDatasets(const std::vector<DatasetView>& views) {
  for (const auto& v : views) {
    fmt::print("{} (owner {}): {}\n", v.declared->name, v.declared->owner, v.state);
    if (!v.stored) continue;
    const auto& e = *v.stored;
    fmt::print("  rows           {}\n", e.rows);
    fmt::print("  version        package {} ({})\n", e.package_id,
               Counted(v.packages, "contribution"));
    fmt::print("  ingested at    {}\n", e.ingested_at);
    if (v.retain_until.empty()) {
      fmt::print("  retained until none (kept until dispose)\n");
    } else {
      fmt::print("  retained until {}{}\n", v.retain_until,
                 v.expired ? " (expired: shredded when the room is next opened for a change)" : "");
    }
    size_t width = 0;
    for (const auto& c : e.schema) width = std::max(width, c.name.size());
    fmt::print("  columns\n");
    for (const auto& c : e.schema) {
      fmt::print("    {:<{}}  {:<9}  {}\n", c.name, width, c.type, c.role);
    }
  }
}

}  // namespace

void RegisterDatasets(CLI::App& root, Globals& g, Registry& r) {
  auto* datasets = root.add_subcommand(
      "datasets", "list the spec's datasets as the room holds them (never values); read-only");
  r.Add(datasets, Uses{.room = true}, [&g]() -> Status {
    CR_ASSIGN(auto room, OpenForInspection(g, "datasets"));
    auto views = Views(room, room.Info());
    if (g.format == "json") {
      fmt::print("{}\n", ordered_json{{"datasets", DatasetsJson(views)}}.dump(
                             2, ' ', false, nlohmann::json::error_handler_t::replace));
    } else {
      PrintDatasets(views);
    }
    return Ok();
  });

  auto* status = root.add_subcommand(
      "status", "the collaboration as it stands: spec, parties and signatures, activation; "
                "read-only");
  r.Add(status, Uses{.room = true}, [&g]() -> Status {
    CR_ASSIGN(auto room, OpenForInspection(g, "status"));
    const spec::Spec& spec = room.spec();
    const room::RoomInfo info = room.Info();
    auto signed_by = [&info](const std::string& party) {
      return std::find(info.signed_by.begin(), info.signed_by.end(), party) !=
             info.signed_by.end();
    };
    int64_t stored = static_cast<int64_t>(room.datasets().size());
    if (g.format == "json") {
      ordered_json parties = ordered_json::array();
      for (const auto& p : spec.parties) {
        parties.push_back({{"name", p.name},
                           {"abilities", p.abilities},
                           {"key_fingerprint", p.key.Fingerprint()},
                           {"signed", signed_by(p.name)}});
      }
      ordered_json j = {
          {"collaboration", spec.collaboration},
          {"spec_hash", spec.hash},
          {"room_format", info.format},
          {"status", room.active() ? "active" : "initialized"},
          {"active", room.active()},
          {"created_at", info.created_at},
          {"activated_at", info.activated_at.empty() ? ordered_json() : ordered_json(info.activated_at)},
          {"region", spec.region.empty() ? ordered_json() : ordered_json(spec.region)},
          {"retention_days", spec.retention_days > 0 ? ordered_json(spec.retention_days) : ordered_json()},
          {"engine", "duckdb"},
          {"room_key_fingerprint", room.key().pub().Fingerprint()},
          {"parties", std::move(parties)},
          {"datasets_declared", spec.datasets.size()},
          {"datasets_stored", stored}};
      fmt::print("{}\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
      return Ok();
    }
    fmt::print("collaboration  {}\n", spec.collaboration);
    fmt::print("spec hash      {}\n", spec.hash);
    fmt::print("room format    {}\n", info.format);
    if (room.active()) {
      fmt::print("status         active since {}\n", info.activated_at);
    } else {
      fmt::print("status         initialized, not active (room activate needs every party's "
                 "signature)\n");
    }
    fmt::print("created at     {}\n", info.created_at);
    fmt::print("region         {}\n", spec.region.empty() ? "none" : spec.region);
    fmt::print("retention      {}\n", spec.retention_days > 0
                                          ? fmt::format("{} days after ingest", spec.retention_days)
                                          : "none (kept until dispose)");
    fmt::print("engine         duckdb\n");
    fmt::print("room key       {}\n", room.key().pub().Fingerprint());
    fmt::print("datasets       {} stored of {} in the spec\n", stored, spec.datasets.size());
    size_t width = 0;
    for (const auto& p : spec.parties) width = std::max(width, p.name.size());
    fmt::print("parties\n");
    for (const auto& p : spec.parties) {
      fmt::print("  {:<{}}  {:<10}  {}\n", p.name, width, signed_by(p.name) ? "signed" : "not signed",
                 p.abilities.empty() ? std::string("no abilities")
                                     : fmt::format("{}", fmt::join(p.abilities, ", ")));
    }
    return Ok();
  });
}

}  // namespace cr::cli
