// `cleanroom datasets` and `cleanroom status`: inspect a room without changing it.
#include <algorithm>

#include <fmt/core.h>
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/output.h"
#include "cli/remote.h"
#include "common/files.h"
#include "room/room.h"
#include "room/views.h"

namespace cr::cli {
namespace {

using nlohmann::ordered_json;

// Inspection must not take the lock or shred expired data: a read-only open.
Result<room::Room> OpenForInspection(const Globals& g, std::string_view command) {
  if (g.room.empty()) return Fail(ErrorCode::USAGE, "{} needs --room DIR", command);
  return room::Room::Open(g.room, room::OpenMode::kReadOnly);
}

// A pooled dataset's heading: its contributors and which have contributed.
void PrintContributors(const ordered_json& v) {
  const auto& list = v.at("contributors");
  int64_t done = 0;
  for (const auto& c : list) done += c.at("contributed").get<bool>() ? 1 : 0;
  fmt::print("{} (pooled, {} of {} contributors): {}\n", v.at("name").get<std::string>(), done,
             list.size(), v.at("state").get<std::string>());
  for (const auto& c : list) {
    if (c.at("contributed").get<bool>()) {
      fmt::print("  contributor    {:<16} {} rows, package {} ({})\n",
                 c.at("name").get<std::string>(), c.at("rows").get<int64_t>(),
                 c.at("package_id").get<std::string>(), c.at("ingested_at").get<std::string>());
    } else {
      fmt::print("  contributor    {:<16} not contributed\n", c.at("name").get<std::string>());
    }
  }
}

// The table form of the `datasets` JSON: rendered from the document itself,
// so a room service's answer prints exactly as the local room's.
void PrintDatasets(const ordered_json& doc) {
  for (const auto& v : doc.at("datasets")) {
    const bool pooled = v.contains("contributors");
    if (pooled) {
      PrintContributors(v);
    } else {
      fmt::print("{} (owner {}): {}\n", v.at("name").get<std::string>(),
                 v.at("owner").get<std::string>(), v.at("state").get<std::string>());
    }
    if (!v.contains("rows")) continue;
    fmt::print("  rows           {}\n", v.at("rows").get<int64_t>());
    if (pooled) {
      fmt::print("  version        {} in all\n",
                 Counted(v.at("contributions").get<int64_t>(), "contribution"));
      fmt::print("  last ingest    {}\n", v.at("ingested_at").get<std::string>());
    } else {
      fmt::print("  version        package {} ({})\n", v.at("package_id").get<std::string>(),
                 Counted(v.at("contributions").get<int64_t>(), "contribution"));
      fmt::print("  ingested at    {}\n", v.at("ingested_at").get<std::string>());
    }
    if (v.at("retain_until").is_null()) {
      fmt::print("  retained until none (kept until dispose)\n");
    } else {
      fmt::print("  retained until {}{}\n", v.at("retain_until").get<std::string>(),
                 v.at("expired").get<bool>()
                     ? " (expired: shredded when the room is next opened for a change)"
                     : "");
    }
    size_t width = 0;
    for (const auto& c : v.at("columns")) width = std::max(width, c.at("name").get<std::string>().size());
    fmt::print("  columns\n");
    for (const auto& c : v.at("columns")) {
      fmt::print("    {:<{}}  {:<9}  {}\n", c.at("name").get<std::string>(), width,
                 c.at("type").get<std::string>(), c.at("role").get<std::string>());
    }
  }
}

// The table form of the `status` JSON (see PrintDatasets).
void PrintStatus(const ordered_json& j) {
  const bool active = j.at("active").get<bool>();
  fmt::print("collaboration  {}\n", j.at("collaboration").get<std::string>());
  fmt::print("spec hash      {}\n", j.at("spec_hash").get<std::string>());
  fmt::print("room format    {}\n", j.at("room_format").get<int>());
  if (active) {
    fmt::print("status         active since {}\n", j.at("activated_at").get<std::string>());
  } else {
    fmt::print("status         initialized, not active (room activate needs every party's "
               "signature)\n");
  }
  fmt::print("created at     {}\n", j.at("created_at").get<std::string>());
  auto or_none = [&j](const char* key) {
    return !j.contains(key) || j.at(key).is_null() ? std::string("none") : j.at(key).get<std::string>();
  };
  fmt::print("region         {} (the room runs in {})\n", or_none("region"), or_none("room_region"));
  if (j.contains("version")) fmt::print("version        {}\n", j.at("version").get<uint64_t>());
  fmt::print("retention      {}\n",
             j.at("retention_days").is_null()
                 ? std::string("none (kept until dispose)")
                 : fmt::format("{} days after ingest", j.at("retention_days").get<int64_t>()));
  fmt::print("engine         {}\n", j.at("engine").get<std::string>());
  fmt::print("room key       {}\n", j.at("room_key_fingerprint").get<std::string>());
  fmt::print("datasets       {} stored of {} in the spec\n", j.at("datasets_stored").get<int64_t>(),
             j.at("datasets_declared").get<int64_t>());
  if (j.contains("pools")) {
    for (const auto& pool : j.at("pools")) {
      std::vector<std::string> done, missing;
      for (const auto& c : pool.at("contributors")) {
        (c.at("contributed").get<bool>() ? done : missing)
            .push_back(c.at("name").get<std::string>());
      }
      fmt::print(
          "pooled         {}: contributed {}; not yet {}\n", pool.at("dataset").get<std::string>(),
          done.empty() ? std::string("none") : fmt::format("{}", fmt::join(done, ", ")),
          missing.empty() ? std::string("none") : fmt::format("{}", fmt::join(missing, ", ")));
    }
  }
  size_t width = 0;
  for (const auto& p : j.at("parties")) width = std::max(width, p.at("name").get<std::string>().size());
  fmt::print("parties\n");
  for (const auto& p : j.at("parties")) {
    const auto abilities = p.at("abilities").get<std::vector<std::string>>();
    fmt::print("  {:<{}}  {:<10}  {}\n", p.at("name").get<std::string>(), width,
               p.at("signed").get<bool>() ? "signed" : "not signed",
               abilities.empty() ? std::string("no abilities")
                                 : fmt::format("{}", fmt::join(abilities, ", ")) +
                                       (p.contains("region")
                                            ? "; region " + p.at("region").get<std::string>()
                                            : std::string()));
  }
  if (j.contains("versions") && !j.at("versions").empty()) {
    fmt::print("versions\n");
    for (const auto& v : j.at("versions")) {
      fmt::print("  {}  {}  spec {}  parties {}\n", v.at("version").get<uint64_t>(),
                 v.at("activated_at").get<std::string>(),
                 v.at("spec_hash").get<std::string>().substr(0, 12),
                 fmt::join(v.at("parties").get<std::vector<std::string>>(), ", "));
    }
  }
}

// A room service's answer to /v1/status or /v1/datasets. Status carries the
// spec too (spec_yaml, spec_sha256), which the command does not print.
Result<ordered_json> Fetch(const Globals& g, std::string_view command, std::string_view path) {
  CR_ASSIGN(auto c, ConnectServer(g, command));
  CR_ASSIGN(auto body, c.Get(path));
  ordered_json j = ordered_json::parse(body, nullptr, false);
  if (!j.is_object()) return Fail(ErrorCode::INTERNAL, "the server's answer is not JSON");
  j.erase("spec_yaml");
  j.erase("spec_sha256");
  return j;
}

}  // namespace

void RegisterDatasets(CLI::App& root, Globals& g, Registry& r) {
  auto* datasets = root.add_subcommand(
      "datasets", "list the spec's datasets as the room holds them (never values); read-only");
  r.Add(datasets, Uses{.room = true, .server = true}, [&g]() -> Status {
    CR_ASSIGN(bool remote, Remote(g, "datasets"));
    ordered_json doc;
    if (remote) {
      CR_ASSIGN(doc, Fetch(g, "datasets", "/v1/datasets"));
    } else {
      CR_ASSIGN(auto room, OpenForInspection(g, "datasets"));
      doc = room::DatasetsJson(room::DatasetViews(room, room.Info(), NowUnix()));
    }
    if (g.format == "json") {
      fmt::print("{}\n", room::Dump(doc));
    } else {
      PrintDatasets(doc);
    }
    return Ok();
  });

  auto* status = root.add_subcommand(
      "status", "the collaboration as it stands: spec, parties and signatures, activation; "
                "read-only");
  r.Add(status, Uses{.room = true, .server = true}, [&g]() -> Status {
    CR_ASSIGN(bool remote, Remote(g, "status"));
    ordered_json j;
    if (remote) {
      CR_ASSIGN(j, Fetch(g, "status", "/v1/status"));
    } else {
      CR_ASSIGN(auto room, OpenForInspection(g, "status"));
      j = room::StatusJson(room, room.Info());
    }
    if (g.format == "json") {
      fmt::print("{}\n", room::Dump(j));
    } else {
      PrintStatus(j);
    }
    return Ok();
  });
}

}  // namespace cr::cli
