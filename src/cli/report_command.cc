// `cleanroom report`: the buyer's questions answered (report/buyer_report.h).
#include <fmt/core.h>

#include "audit/audit_log.h"
#include "cli/cli.h"
#include "cli/output.h"
#include "common/files.h"
#include "report/buyer_report.h"
#include "room/room.h"

namespace cr::cli {

void RegisterReport(CLI::App& root, Globals& g, Registry& r) {
  auto* cmd = root.add_subcommand(
      "report",
      "the buyer's questions answered from the signed spec, the catalogue and the audit log");
  static std::string html;
  cmd->add_option("--html", html, "also write the answers as a self-contained HTML page");
  r.Add(cmd, Uses{.room = true}, [&g]() -> Status {
    if (g.room.empty()) return Fail(ErrorCode::USAGE, "report needs --room DIR");
    // Read only: a report changes nothing, not even by applying retention.
    CR_ASSIGN(auto room, room::Room::Open(g.room, room::OpenMode::kReadOnly));
    CR_ASSIGN(auto verified, audit::Verify(room::AuditLogPath(g.room), room.key().pub()));
    CR_ASSIGN(auto entries, audit::ReadEntries(room::AuditLogPath(g.room)));
    CR_ASSIGN(auto rep, report::BuildBuyerReport(room, entries, verified.head_hash));
    if (!html.empty()) CR_TRY(WriteFileAtomic(html, report::ToHtml(rep)));
    if (g.format == "json") {
      fmt::print("{}\n", report::ToJson(rep).dump(-1, ' ', false,
                                                  nlohmann::json::error_handler_t::replace));
    } else {
      fmt::print("{}", report::ToText(rep));
    }
    return Ok();
  });
}

}  // namespace cr::cli
