// `cleanroom audit verify|show` and `cleanroom dispose`.
#include <fmt/core.h>

#include "audit/audit_log.h"
#include "cli/cli.h"
#include "crypto/crypto.h"
#include "room/room.h"

namespace cr::cli {

void RegisterAudit(CLI::App& root, Globals& g, Registry& r) {
  auto* audit_cmd = root.add_subcommand("audit", "the room's hash-chained audit log");
  audit_cmd->require_subcommand(1);
  auto* verify = audit_cmd->add_subcommand("verify", "check the hash chain and every signature");
  r.Add(verify, [&g]() -> Status {
    if (g.room.empty()) return Fail(ErrorCode::USAGE, "audit verify needs --room DIR");
    CR_ASSIGN(auto pub, crypto::LoadPublic(room::RoomPubPath(g.room)));
    CR_ASSIGN(auto rep, audit::Verify(room::AuditLogPath(g.room), pub));
    if (g.format == "json") {
      fmt::print("{}\n", nlohmann::json{{"entries", rep.entries}, {"head", rep.head_hash}}.dump());
    } else {
      fmt::print("audit log intact: {} entries, every link and signature checks\nhead {}\n",
                 rep.entries, rep.head_hash);
    }
    return Ok();
  });
  auto* show = audit_cmd->add_subcommand("show", "list the entries");
  r.Add(show, [&g]() -> Status {
    if (g.room.empty()) return Fail(ErrorCode::USAGE, "audit show needs --room DIR");
    CR_ASSIGN(auto entries, audit::ReadEntries(room::AuditLogPath(g.room)));
    for (const auto& e : entries) {
      if (g.format == "json") {
        fmt::print("{}\n", e.dump());
      } else {
        fmt::print("{:>4}  {}  {:<24} {:<10} {}\n", e.value("seq", 0), e.value("time", ""),
                   e.value("event", ""), e.value("actor", ""), e.value("details", nlohmann::json::object()).dump());
      }
    }
    return Ok();
  });
}

void RegisterDispose(CLI::App& root, Globals& g, Registry& r) {
  auto* cmd = root.add_subcommand(
      "dispose", "crypto-shred contributed data (delete keys, then ciphertext), audited");
  static std::string dataset;
  cmd->add_option("--dataset", dataset, "one dataset (default: all)");
  r.Add(cmd, [&g]() -> Status {
    if (g.room.empty()) return Fail(ErrorCode::USAGE, "dispose needs --room DIR");
    CR_ASSIGN(auto room, room::Room::Open(g.room));
    std::vector<std::string> names;
    if (!dataset.empty()) {
      names.push_back(dataset);
    } else {
      for (const auto& [name, e] : room.datasets()) names.push_back(name);
    }
    for (const auto& name : names) {
      CR_TRY(room.Dispose(name, "request", "operator"));  // audits both outcomes itself
      fmt::print("{} disposed: key and ciphertext deleted\n", name);
    }
    if (names.empty()) fmt::print("nothing to dispose\n");
    return Ok();
  });
}

}  // namespace cr::cli
