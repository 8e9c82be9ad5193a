// `cleanroom datasets` and `cleanroom status`: inspect a room without changing it.
#include <algorithm>

#include <fmt/core.h>
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/output.h"
#include "common/files.h"
#include "room/room.h"
#include "room/views.h"

namespace cr::cli {
namespace {

// Inspection must not take the lock or shred expired data: a read-only open.
Result<room::Room> OpenForInspection(const Globals& g, std::string_view command) {
  if (g.room.empty()) return Fail(ErrorCode::USAGE, "{} needs --room DIR", command);
  return room::Room::Open(g.room, room::OpenMode::kReadOnly);
}

using room::DatasetView;

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
    auto views = room::DatasetViews(room, room.Info(), NowUnix());
    if (g.format == "json") {
      fmt::print("{}\n", room::Dump(room::DatasetsJson(views)));
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
      fmt::print("{}\n", room::Dump(room::StatusJson(room, info)));
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
