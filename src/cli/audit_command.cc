// `cleanroom audit verify|show` and `cleanroom dispose`.
#include <unistd.h>

#include <cctype>
#include <iostream>
#include <optional>

#include <fmt/core.h>

#include "audit/audit_log.h"
#include "cli/cli.h"
#include "cli/output.h"
#include "cli/remote.h"
#include "crypto/crypto.h"
#include "engine/engine.h"
#include "common/files.h"
#include "report/audit_report.h"
#include "report/html.h"
#include "room/room.h"

namespace cr::cli {
namespace {

// A room's audit.log and room.pub, from DIR or from the server. The server's
// copy is checked here with the local verifier, never taken on its word: it
// lands in an in-memory file the verifier reads like the room's own.
struct AuditSource {
  std::string log_path;
  std::string pub;  // room.pub text or path
  std::optional<engine::MemFile> downloaded;
  // Names the server's copy where the verifier's messages name the file.
  Error Rename(Error e) const {
    if (downloaded) {
      for (size_t at; (at = e.message.find(log_path)) != std::string::npos;) {
        e.message.replace(at, log_path.size(), "the server's audit.log");
      }
    }
    return e;
  }
};

Result<AuditSource> OpenAudit(const Globals& g, std::string_view command, bool with_pub) {
  CR_ASSIGN(bool remote, Remote(g, command));
  AuditSource src;
  if (!remote) {
    if (g.room.empty()) return Fail(ErrorCode::USAGE, "{} needs --room DIR", command);
    src.log_path = room::AuditLogPath(g.room);
    src.pub = room::RoomPubPath(g.room);
    return src;
  }
  CR_ASSIGN(auto c, ConnectServer(g, command));
  CR_ASSIGN(auto log, c.Get("/v1/audit"));
  if (with_pub) {
    CR_ASSIGN(src.pub, c.Get("/v1/room.pub"));
  }
  CR_ASSIGN(auto mem, engine::MemFile::Create("audit.log"));
  CR_TRY(mem.Append(log));
  src.log_path = mem.path();
  src.downloaded = std::move(mem);
  return src;
}

}  // namespace

void RegisterAudit(CLI::App& root, Globals& g, Registry& r) {
  auto* audit_cmd = root.add_subcommand("audit", "the room's hash-chained audit log");
  audit_cmd->require_subcommand(1);
  auto* verify = audit_cmd->add_subcommand("verify", "check the hash chain and every signature");
  r.Add(verify, Uses{.room = true, .server = true}, [&g]() -> Status {
    CR_ASSIGN(auto src, OpenAudit(g, "audit verify", true));
    // The server's room.pub is key text, never a path to read here.
    CR_ASSIGN(auto pub, src.downloaded ? crypto::PublicIdentity::FromText(src.pub)
                                       : crypto::LoadPublic(src.pub));
    auto verified = audit::Verify(src.log_path, pub);
    if (!verified) return std::unexpected(src.Rename(verified.error()));
    const auto& rep = *verified;
    if (g.format == "json") {
      PrintJson({{"intact", true}, {"entries", rep.entries}, {"head", rep.head_hash}});
    } else {
      fmt::print("audit log intact: {}, every link and signature checks\nhead {}\n",
                 Counted(rep.entries, "entry", "entries"), rep.head_hash);
    }
    return Ok();
  });
  auto* show = audit_cmd->add_subcommand("show", "list the entries");
  r.Add(show, Uses{.room = true, .server = true, .formats = {"table", "csv", "json"}},
        [&g]() -> Status {
    CR_ASSIGN(auto src, OpenAudit(g, "audit show", false));
    auto read = audit::ReadEntries(src.log_path);
    if (!read) return std::unexpected(src.Rename(read.error()));
    const auto& entries = *read;
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
  RegisterAuditReport(*audit_cmd, g, r);
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
      // A pooled dataset is shredded part by part (each contributor's own key).
      for (const auto* part : room.Parts(dataset)) names.push_back(part->name);
      if (names.empty()) names.push_back(dataset);
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

void RegisterAuditReport(CLI::App& audit_cmd, Globals& g, Registry& r) {
  auto* cmd = audit_cmd.add_subcommand(
      "report", "incident report: per party activity, refusals by code, probing bursts, off hours");
  static std::string since;
  static std::string html;
  static report::AuditReportOptions o;
  cmd->add_option("--since", since, "only entries at or after T (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, UTC)");
  cmd->add_option("--html", html, "also write the report as a self-contained HTML page");
  cmd->add_option("--burst-refusals", o.burst_refusals, "refusals that make a probing burst (default 5)")
      ->check(CLI::Range(2, 1000000));
  cmd->add_option("--burst-window", o.burst_window_seconds, "seconds they must fall within (default 600)")
      ->check(CLI::Range(1, 100000000));
  cmd->add_option("--work-start", o.work_start_hour, "first working hour, UTC (default 7)")->check(CLI::Range(0, 23));
  cmd->add_option("--work-end", o.work_end_hour, "end of working hours, UTC (default 19)")->check(CLI::Range(1, 24));
  r.Add(cmd, Uses{.room = true, .server = true}, [&g]() -> Status {
    if (!since.empty()) {
      o.since_unix = report::ParseTime(since);
      if (o.since_unix < 0) {
        return Fail(ErrorCode::USAGE, "--since must be YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC)");
      }
    }
    if (o.work_start_hour >= o.work_end_hour) {
      return Fail(ErrorCode::USAGE, "--work-start must come before --work-end");
    }
    CR_ASSIGN(auto src, OpenAudit(g, "audit report", true));
    CR_ASSIGN(auto pub, src.downloaded ? crypto::PublicIdentity::FromText(src.pub)
                                       : crypto::LoadPublic(src.pub));
    // A report over a log that does not verify would be a story, not evidence.
    auto verified = audit::Verify(src.log_path, pub);
    if (!verified) return std::unexpected(src.Rename(verified.error()));
    auto read = audit::ReadEntries(src.log_path);
    if (!read) return std::unexpected(src.Rename(read.error()));
    auto rep = report::BuildAuditReport(*read, o);
    rep.since = since;
    rep.head = verified->head_hash;
    if (!html.empty()) {
      CR_TRY(WriteFileAtomic(html, report::ToHtml(rep, g.server.empty() ? g.room : g.server)));
    }
    if (g.format == "json") {
      fmt::print("{}\n", report::ToJson(rep).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    } else {
      fmt::print("{}", report::ToText(rep));
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
