// `cleanroom prepare` (party side) and `cleanroom ingest` (room side).
#include <fmt/core.h>

#include "cli/cli.h"
#include "cli/output.h"
#include "cli/remote.h"
#include "common/files.h"
#include "common/progress.h"
#include "ingest/ingest.h"
#include "ingest/prepare.h"
#include "room/room.h"

namespace cr::cli {

void RegisterPrepare(CLI::App& root, Globals& g, Registry& r) {
  auto* cmd = root.add_subcommand(
      "prepare", "party side: minimise, normalise, pseudonymise, encrypt and sign a dataset");
  static ingest::PrepareOptions o;
  cmd->add_option("--spec", o.spec_path, "the signed spec")->required();
  cmd->add_option("--dataset", o.dataset, "dataset name in the spec")->required();
  cmd->add_option("--input", o.input, "CSV, Parquet or JSON-lines file")->required();
  cmd->add_option("--key", o.key_path, "the dataset owner's key (or the global --key)");
  cmd->add_option("--secret", o.secret_path, "the parties' shared secret")->required();
  cmd->add_option("--room-pub", o.room_pub, "the room's public key (DIR/room.pub)")->required();
  cmd->add_option("--out", o.out, "package to write (.crpkg)")->required();
  cmd->add_option("--threads", o.threads, "engine threads (default: all cores)");
  cmd->add_flag("--strict", o.strict,
                "refuse (exit 7, nothing written) instead of warning about values outside "
                "bounds, empty join keys or no rows");
  r.Add(cmd, Uses{.key = true}, [&g]() -> Status {
    if (o.key_path.empty()) o.key_path = g.key;
    if (o.key_path.empty()) return Fail(ErrorCode::USAGE, "prepare needs --key");
    CR_ASSIGN(auto rep, ingest::Prepare(o));
    for (const auto& w : rep.warnings) fmt::print(stderr, "cleanroom: warning: {}\n", w);
    if (g.format == "json") {
      PrintJson({{"dataset", o.dataset},
                 {"rows", rep.rows},
                 {"kept_columns", rep.kept_columns},
                 {"dropped_columns", rep.dropped_columns},
                 {"package", o.out},
                 {"package_id", rep.package_id},
                 {"package_bytes", rep.package_bytes},
                 {"warnings", rep.warnings},
                 {"seconds", rep.seconds}});
      return Ok();
    }
    fmt::print("prepared dataset '{}': {}, columns {} kept", o.dataset, Counted(rep.rows, "row"),
               fmt::join(rep.kept_columns, ", "));
    if (!rep.dropped_columns.empty()) {
      fmt::print("; {} undeclared column(s) left behind ({})", rep.dropped_columns.size(),
                 fmt::join(rep.dropped_columns, ", "));
    }
    fmt::print("\nwrote {} ({}, package {}) in {:.2f}s\n", o.out, HumanBytes(rep.package_bytes),
               rep.package_id, rep.seconds);
    return Ok();
  });
}

void RegisterIngest(CLI::App& root, Globals& g, Registry& r) {
  auto* cmd = root.add_subcommand("ingest", "room side: verify a package and store it");
  static std::string pkg;
  cmd->add_option("package", pkg, "the .crpkg file")->required();
  r.Add(cmd, Uses{.room = true, .server = true}, [&g]() -> Status {
    CR_ASSIGN(bool remote, Remote(g, "ingest"));
    nlohmann::json rep;
    if (remote) {
      CR_ASSIGN(auto c, ConnectServer(g, "ingest"));
      // The server answers with what `ingest --format json` prints here.
      CR_ASSIGN(auto body, c.Upload("/v1/packages", pkg, "application/octet-stream"));
      rep = nlohmann::json::parse(body, nullptr, false);
      if (!rep.is_object()) return Fail(ErrorCode::INTERNAL, "the server's answer is not JSON");
    } else {
      if (g.room.empty()) return Fail(ErrorCode::USAGE, "ingest needs --room DIR");
      CR_ASSIGN(auto room, room::Room::Open(g.room));
      // Ingest audits both outcomes itself.
      CR_ASSIGN(auto local, ingest::Ingest(room, pkg));
      rep = {{"dataset", local.dataset}, {"owner", local.owner},   {"rows", local.rows},
             {"package_id", local.package_id}, {"bytes", local.bytes}, {"replaced", local.replaced}};
    }
    if (g.format == "json") {
      PrintJson(rep);
      return Ok();
    }
    fmt::print("ingested dataset '{}' from {}: {}, package {} stored encrypted ({}){}\n",
               rep.value("dataset", ""), rep.value("owner", ""),
               Counted(rep.value("rows", int64_t{0}), "row"), rep.value("package_id", ""),
               HumanBytes(rep.value("bytes", uint64_t{0})),
               rep.value("replaced", false) ? "; the previous version was crypto-shredded" : "");
    return Ok();
  });
}

}  // namespace cr::cli
