// `cleanroom room init` and `cleanroom room activate`.
#include <fmt/core.h>

#include "cli/cli.h"
#include "cli/output.h"
#include "room/room.h"

namespace cr::cli {

void RegisterRoom(CLI::App& root, Globals& g, Registry& r) {
  auto* room_cmd = root.add_subcommand("room", "create and activate a room");
  room_cmd->require_subcommand(1);

  auto* init = room_cmd->add_subcommand("init", "create a room for a spec (room key generated)");
  static std::string spec_path;
  init->add_option("--spec", spec_path, "the spec file")->required();
  r.Add(init, Uses{.room = true}, [&g]() -> Status {
    if (g.room.empty()) return Fail(ErrorCode::USAGE, "room init needs --room DIR");
    CR_ASSIGN(auto pub, room::Room::Init(g.room, spec_path));
    if (g.format == "json") {
      PrintJson({{"room", g.room},
                 {"room_pub", room::RoomPubPath(g.room)},
                 {"fingerprint", pub.Fingerprint()}});
      return Ok();
    }
    fmt::print("created room {} (room key {})\nparties seal their data to {}\n"
               "next: every party signs the spec (spec sign), then room activate\n",
               g.room, pub.Fingerprint(), room::RoomPubPath(g.room));
    return Ok();
  });

  auto* activate = room_cmd->add_subcommand(
      "activate", "activate once every party's signature over the exact spec is present");
  static std::vector<std::string> sigs;
  activate->add_option("--sig", sigs, "signature files (SPEC.NAME.sig)")->required();
  r.Add(activate, Uses{.room = true}, [&g]() -> Status {
    if (g.room.empty()) return Fail(ErrorCode::USAGE, "room activate needs --room DIR");
    CR_ASSIGN(auto room, room::Room::Open(g.room));
    CR_TRY(room.Activate(sigs));  // audits both outcomes itself
    if (g.format == "json") {
      PrintJson({{"room", g.room},
                 {"active", true},
                 {"collaboration", room.spec().collaboration},
                 {"parties", room.spec().parties.size()}});
      return Ok();
    }
    fmt::print("room {} is active: collaboration '{}' signed by all {} parties\n", g.room,
               room.spec().collaboration, room.spec().parties.size());
    return Ok();
  });
}

}  // namespace cr::cli
