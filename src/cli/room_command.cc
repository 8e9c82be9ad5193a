// `cleanroom room init|activate|unlock|protect|backup|restore`.
// `room activate --spec NEW` on an active room activates version N+1;
// `room rotate-key` replaces the room key.
#include <fmt/core.h>
#include <fmt/ranges.h>

#include "cli/cli.h"
#include "cli/output.h"
#include "common/files.h"
#include "room/key_store.h"
#include "room/room.h"

namespace cr::cli {
namespace {

// --key-store and its PKCS#11 settings, shared by init and protect.
struct KeyStoreFlags {
  std::string kind;
  std::string module;
  std::string token;

  void Attach(CLI::App* app) {
    app->add_option("--key-store", kind,
                    "how the room key is held: passphrase (default; Argon2id) or pkcs11 (a token "
                    "key wraps it); or set CLEANROOM_KEY_STORE");
    app->add_option("--pkcs11-module", module, "PKCS#11 library (or CLEANROOM_PKCS11_MODULE)");
    app->add_option("--pkcs11-token", token, "label of the PKCS#11 token");
  }

  Result<room::KeyStoreChoice> Choice() const {
    room::KeyStoreChoice c;
    if (!kind.empty()) {
      CR_ASSIGN(c.kind, room::ParseKeyStoreKind(kind));
    }
    c.pkcs11_module = module;
    c.pkcs11_token = token;
    return c;
  }
};

}  // namespace

void RegisterRoom(CLI::App& root, Globals& g, Registry& r) {
  auto* room_cmd = root.add_subcommand("room", "create, activate, protect and back up a room");
  room_cmd->require_subcommand(1);

  auto* init = room_cmd->add_subcommand("init", "create a room for a spec (room key generated and sealed)");
  static std::string spec_path;
  static KeyStoreFlags init_store;
  static std::string init_region;
  init->add_option("--spec", spec_path, "the spec file")->required();
  init->add_option("--region", init_region,
                   "where this room runs; a spec that names a region activates only in a room "
                   "of that region");
  init_store.Attach(init);
  r.Add(init, Uses{.room = true}, [&g]() -> Status {
    if (g.room.empty()) return Fail(ErrorCode::USAGE, "room init needs --room DIR");
    CR_ASSIGN(auto choice, init_store.Choice());
    room::InitOptions options;
    options.key_store = choice;
    options.region = init_region;
    CR_ASSIGN(auto pub, room::Room::Init(g.room, spec_path, options));
    CR_ASSIGN(auto resolved, room::ResolveChoice(choice));
    const std::string_view store = room::KeyStoreKindName(resolved.kind);
    if (g.format == "json") {
      PrintJson({{"room", g.room},
                 {"room_pub", room::RoomPubPath(g.room)},
                 {"fingerprint", pub.Fingerprint()},
                 {"region", init_region.empty() ? nlohmann::json() : nlohmann::json(init_region)},
                 {"key_store", store}});
      return Ok();
    }
    fmt::print("created room {} (room key {}, held by key store {})\nparties seal their data to {}\n"
               "next: every party signs the spec (spec sign), then room activate\n",
               g.room, pub.Fingerprint(), store, room::RoomPubPath(g.room));
    return Ok();
  });

  auto* activate = room_cmd->add_subcommand(
      "activate", "activate once every party's signature over the exact spec is present");
  static std::vector<std::string> sigs;
  static std::string new_spec;
  activate->add_option("--sig", sigs, "signature files (SPEC.NAME.sig)")->required();
  activate->add_option("--spec", new_spec,
                       "on an active room: a new version of its spec, signed by every party of "
                       "that version, activated as the next version");
  r.Add(activate, Uses{.room = true}, [&g]() -> Status {
    if (g.room.empty()) return Fail(ErrorCode::USAGE, "room activate needs --room DIR");
    CR_ASSIGN(auto room, room::Room::Open(g.room));
    if (!new_spec.empty() && room.active()) {
      CR_ASSIGN(auto change, room.ActivateVersion(new_spec, sigs));  // audited by the room
      const auto names = [](const std::vector<std::string>& v) {
        return v.empty() ? std::string("none") : fmt::format("{}", fmt::join(v, ", "));
      };
      if (g.format == "json") {
        PrintJson({{"room", g.room},
                   {"active", true},
                   {"version", room.version()},
                   {"spec_hash", room.spec().hash},
                   {"parties_added", change.parties_added},
                   {"parties_removed", change.parties_removed},
                   {"keys_replaced", change.keys_replaced},
                   {"datasets_kept", change.datasets_kept},
                   {"datasets_disposed", change.datasets_disposed}});
        return Ok();
      }
      fmt::print("room {} is at version {} of '{}', signed by all {} parties\n"
                 "  parties added: {}; removed: {}; keys replaced: {}\n"
                 "  datasets kept: {}; crypto-shredded (to be contributed again): {}\n",
                 g.room, room.version(), room.spec().collaboration, room.spec().parties.size(),
                 names(change.parties_added), names(change.parties_removed),
                 names(change.keys_replaced), names(change.datasets_kept),
                 names(change.datasets_disposed));
      return Ok();
    }
    if (!new_spec.empty()) {
      // The first activation is of the spec the room was made for: --spec must name it.
      CR_ASSIGN(auto given, spec::Load(new_spec));
      if (given.hash != room.spec().hash) {
        return room.audit().Refuse(
            "room.activate.refused", "operator", {{"reason", "--spec names another spec"}},
            Error{ErrorCode::SPEC_MISMATCH,
                  "the room is not active yet and was made for another spec: activate it "
                  "without --spec first"});
      }
    }
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

  auto* unlock = room_cmd->add_subcommand(
      "unlock", "check the key store: unlock the room key and verify every sealed room file");
  r.Add(unlock, Uses{.room = true}, [&g]() -> Status {
    if (g.room.empty()) return Fail(ErrorCode::USAGE, "room unlock needs --room DIR");
    room::OpenOptions options;
    options.mode = room::OpenMode::kReadOnly;
    CR_ASSIGN(auto room, room::Room::Open(g.room, options));
    nlohmann::json info = room.KeyStoreInfo();
    info["room"] = g.room;
    info["fingerprint"] = room.key().pub().Fingerprint();
    if (g.format == "json") {
      PrintJson(info);
      return Ok();
    }
    fmt::print("room {} unlocks: key {} held by key store {}; its sealed files verify\n", g.room,
               room.key().pub().Fingerprint(), info.value("key_store", "?"));
    return Ok();
  });

  auto* protect = room_cmd->add_subcommand(
      "protect", "move the room key into a key store (a room made with room.key in clear, or "
                 "another passphrase or token)");
  static KeyStoreFlags protect_store;
  static int new_passphrase_fd = -1;
  protect_store.Attach(protect);
  protect->add_option("--new-passphrase-fd", new_passphrase_fd,
                      "read the new passphrase from this file descriptor (or "
                      "CLEANROOM_NEW_PASSPHRASE_FILE, or the terminal) when the room already has one");
  r.Add(protect, Uses{.room = true}, [&g]() -> Status {
    if (g.room.empty()) return Fail(ErrorCode::USAGE, "room protect needs --room DIR");
    CR_ASSIGN(auto choice, protect_store.Choice());
    if (choice.kind == room::KeyStoreKind::kDefault) {
      return Fail(ErrorCode::USAGE, "room protect needs --key-store passphrase|pkcs11");
    }
    room::SetNewPassphraseFd(new_passphrase_fd);
    CR_ASSIGN(auto kind, room::Room::Protect(g.room, choice));
    if (g.format == "json") {
      PrintJson({{"room", g.room}, {"key_store", kind}});
      return Ok();
    }
    fmt::print("room {}: its key is now held by key store {}\n", g.room, kind);
    return Ok();
  });

  auto* rotate = room_cmd->add_subcommand(
      "rotate-key", "replace the room key: every data key re-wrapped, a new room.pub published, "
                    "audited (the log's chain passes to the new key)");
  static KeyStoreFlags rotate_store;
  rotate_store.Attach(rotate);
  r.Add(rotate, Uses{.room = true}, [&g]() -> Status {
    if (g.room.empty()) return Fail(ErrorCode::USAGE, "room rotate-key needs --room DIR");
    CR_ASSIGN(auto choice, rotate_store.Choice());
    std::string before;
    {
      CR_ASSIGN(auto text, ReadFile(room::RoomPubPath(g.room)));
      auto pub = crypto::PublicIdentity::FromText(text);
      if (pub) before = pub->Fingerprint();
    }
    CR_ASSIGN(auto pub, room::Room::RotateKey(g.room, choice));
    if (g.format == "json") {
      PrintJson({{"room", g.room},
                 {"room_pub", room::RoomPubPath(g.room)},
                 {"fingerprint", pub.Fingerprint()},
                 {"previous_fingerprint", before}});
      return Ok();
    }
    fmt::print("room {}: new room key {} (was {}); parties prepare new packages with {}\n", g.room,
               pub.Fingerprint(), before.empty() ? "?" : before, room::RoomPubPath(g.room));
    return Ok();
  });

  auto* backup = room_cmd->add_subcommand(
      "backup", "write the whole room (ciphertext, sealed metadata, key store, log) to one file");
  static std::string backup_out;
  backup->add_option("--out", backup_out, "the backup file (must not exist)")->required();
  r.Add(backup, Uses{.room = true}, [&g]() -> Status {
    if (g.room.empty()) return Fail(ErrorCode::USAGE, "room backup needs --room DIR");
    CR_ASSIGN(auto room, room::Room::Open(g.room));
    CR_TRY(room.Backup(backup_out));
    if (g.format == "json") {
      PrintJson({{"room", g.room}, {"backup", backup_out}});
      return Ok();
    }
    fmt::print("room {} backed up to {} (useless without its key store's passphrase or token)\n",
               g.room, backup_out);
    return Ok();
  });

  auto* restore = room_cmd->add_subcommand(
      "restore", "restore a room from a backup (refused when older than the room's audit log)");
  static std::string restore_from;
  restore->add_option("--from", restore_from, "the backup file")->required();
  r.Add(restore, Uses{.room = true}, [&g]() -> Status {
    if (g.room.empty()) return Fail(ErrorCode::USAGE, "room restore needs --room DIR");
    CR_ASSIGN(auto kept, room::Room::Restore(g.room, restore_from));
    if (g.format == "json") {
      PrintJson({{"room", g.room}, {"restored_from", restore_from}, {"replaced_room_kept_at", kept}});
      return Ok();
    }
    fmt::print("room {} restored from {}{}\n", g.room, restore_from,
               kept.empty() ? "" : fmt::format("; the room it replaced is kept at {}", kept));
    return Ok();
  });
}

}  // namespace cr::cli
