// `cleanroom forget`: an owner's erasure request for one unit (ingest/forget.h).
#include <fmt/core.h>

#include "cli/cli.h"
#include "cli/output.h"
#include "cli/remote.h"
#include "ingest/forget.h"
#include "room/room.h"

namespace cr::cli {

void RegisterForget(CLI::App& root, Globals& g, Registry& r) {
  auto* cmd = root.add_subcommand(
      "forget", "owner side: erase one unit's rows from a dataset in the room (signed request)");
  static ingest::ForgetOptions o;
  cmd->add_option("--spec", o.spec_path, "the signed spec")->required();
  cmd->add_option("--dataset", o.dataset, "the dataset (owned by --key's party)")->required();
  cmd->add_option("--id", o.id,
                  "the unit's identifier as your data holds it (normalised as prepare does)")
      ->required();
  cmd->add_option("--secret", o.secret_path, "the parties' shared secret")->required();
  r.Add(cmd, Uses{.room = true, .key = true, .server = true}, [&g]() -> Status {
    CR_ASSIGN(bool remote, Remote(g, "forget"));
    if (g.key.empty()) return Fail(ErrorCode::USAGE, "forget needs --key (the dataset owner's)");
    if (!remote && g.room.empty())
      return Fail(ErrorCode::USAGE, "forget needs --room DIR or --server URL");
    o.key_path = g.key;
    // The request is built and signed before the room is touched.
    CR_ASSIGN(auto request, ingest::MakeForgetRequest(o));
    nlohmann::json rep;
    if (remote) {
      CR_ASSIGN(auto c, ConnectServer(g, "forget"));
      CR_ASSIGN(rep, c.PostJson("/v1/forget", request));
    } else {
      CR_ASSIGN(auto room, room::Room::Open(g.room));
      CR_ASSIGN(auto done, ingest::Forget(room, request));  // audits both outcomes itself
      rep = ingest::ForgetAnswer(done);
    }
    if (g.format == "json") {
      PrintJson(rep);
      return Ok();
    }
    fmt::print(
        "erasure request {} applied: dataset '{}' now holds no rows of this unit "
        "(stored as version {}; the previous version was crypto-shredded)\n",
        rep.value("request_id", ""), rep.value("dataset", ""), rep.value("version", ""));
    return Ok();
  });
}

}  // namespace cr::cli
