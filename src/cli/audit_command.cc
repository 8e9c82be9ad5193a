// `cleanroom audit verify|show` and `cleanroom dispose`.
#include <unistd.h>

#include <cctype>
#include <iostream>

#include <fmt/core.h>

#include "audit/audit_log.h"
#include "cli/cli.h"
#include "cli/output.h"
#include "crypto/crypto.h"
#include "room/room.h"

namespace cr::cli {

void RegisterAudit(CLI::App& root, Globals& g, Registry& r) {
  auto* audit_cmd = root.add_subcommand("audit", "the room's hash-chained audit log");
  audit_cmd->require_subcommand(1);
  auto* verify = audit_cmd->add_subcommand("verify", "check the hash chain and every signature");
  r.Add(verify, Uses{.room = true}, [&g]() -> Status {
    if (g.room.empty()) return Fail(ErrorCode::USAGE, "audit verify needs --room DIR");
    CR_ASSIGN(auto pub, crypto::LoadPublic(room::RoomPubPath(g.room)));
    CR_ASSIGN(auto rep, audit::Verify(room::AuditLogPath(g.room), pub));
    if (g.format == "json") {
      PrintJson({{"intact", true}, {"entries", rep.entries}, {"head", rep.head_hash}});
    } else {
      fmt::print("audit log intact: {}, every link and signature checks\nhead {}\n",
                 Counted(rep.entries, "entry", "entries"), rep.head_hash);
    }
    return Ok();
  });
  auto* show = audit_cmd->add_subcommand("show", "list the entries");
  r.Add(show, Uses{.room = true, .formats = {"table", "csv", "json"}}, [&g]() -> Status {
    if (g.room.empty()) return Fail(ErrorCode::USAGE, "audit show needs --room DIR");
    CR_ASSIGN(auto entries, audit::ReadEntries(room::AuditLogPath(g.room)));
    if (g.format == "json") {
      PrintJson(nlohmann::json(entries));
      return Ok();
    }
    if (g.format == "csv") {
      std::vector<std::vector<std::string>> rows;
      for (const auto& e : entries) {
        rows.push_back({CellText(e.value("seq", nlohmann::json())), e.value("time", ""),
                        e.value("event", ""), e.value("actor", ""),
                        e.value("details", nlohmann::json::object()).dump()});
      }
      PrintCsv({"seq", "time", "event", "actor", "details"}, rows);
      return Ok();
    }
    for (const auto& e : entries) {
      fmt::print("{:>4}  {}  {:<24} {:<10} {}\n", e.value("seq", 0), e.value("time", ""),
                 e.value("event", ""), e.value("actor", ""), e.value("details", nlohmann::json::object()).dump());
    }
    return Ok();
  });
}

void RegisterDispose(CLI::App& root, Globals& g, Registry& r) {
  auto* cmd = root.add_subcommand(
      "dispose", "crypto-shred contributed data (delete keys, then ciphertext), audited");
  static std::string dataset;
  static bool yes = false;
  cmd->add_option("--dataset", dataset, "one dataset (default: all, after confirmation)");
  cmd->add_flag("--yes", yes, "dispose of every dataset without asking (needed without a terminal)");
  r.Add(cmd, Uses{.room = true}, [&g]() -> Status {
    if (g.room.empty()) return Fail(ErrorCode::USAGE, "dispose needs --room DIR");
    const bool interactive = ::isatty(STDIN_FILENO) == 1;
    // Refused before the room is opened: nothing may change, not even by
    // opening it, when nobody confirmed.
    if (dataset.empty() && !yes && !interactive) {
      return Fail(ErrorCode::USAGE,
                  "dispose without --dataset shreds every dataset: pass --yes (standard input "
                  "is not a terminal to ask on); nothing was disposed");
    }
    CR_ASSIGN(auto room, room::Room::Open(g.room));
    std::vector<std::string> names;
    if (!dataset.empty()) {
      names.push_back(dataset);
    } else {
      if (!yes) {
        const std::string& collab = room.spec().collaboration;
        fmt::print(stderr,
                   "This shreds every dataset of collaboration '{}' ({}); it cannot be undone.\n"
                   "Type the collaboration id or yes to confirm: ",
                   collab, Counted(static_cast<int64_t>(room.datasets().size()), "dataset"));
        std::fflush(stderr);
        std::optional<std::string> answer;
        if (std::string line; std::getline(std::cin, line)) answer = line;
        if (!DisposeAllConfirmed(yes, interactive, answer, collab)) {
          return Fail(ErrorCode::USAGE, "dispose not confirmed; nothing was disposed");
        }
      }
      for (const auto& [name, e] : room.datasets()) names.push_back(name);
    }
    for (const auto& name : names) {
      CR_TRY(room.Dispose(name, "request", "operator"));  // audits both outcomes itself
      if (g.format != "json") fmt::print("{} disposed: key and ciphertext deleted\n", name);
    }
    if (g.format == "json") {
      PrintJson({{"disposed", names}});
    } else if (names.empty()) {
      fmt::print("nothing to dispose\n");
    }
    return Ok();
  });
}

bool DisposeAllConfirmed(bool yes, bool interactive, const std::optional<std::string>& answer,
                         std::string_view collaboration) {
  if (yes) return true;
  if (!interactive || !answer) return false;
  std::string_view a = *answer;
  while (!a.empty() && std::isspace(static_cast<unsigned char>(a.front()))) a.remove_prefix(1);
  while (!a.empty() && std::isspace(static_cast<unsigned char>(a.back()))) a.remove_suffix(1);
  return !a.empty() && (a == "yes" || a == collaboration);
}

}  // namespace cr::cli
