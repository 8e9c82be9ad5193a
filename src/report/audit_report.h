// The incident report (`cleanroom audit report`): what each party did in the
// room, read from the verified audit log, and the patterns worth a look
// (docs/incident-response.md).
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/error.h"

namespace cr::report {

struct AuditReportOptions {
  long long since_unix = -1;  // entries before it are left out (-1: all)
  // A probing burst: at least `burst_refusals` refusals by one actor within
  // `burst_window_seconds`.
  int burst_refusals = 5;
  int burst_window_seconds = 600;
  // Working hours, UTC, Monday to Friday: [start, end). Anything else is off hours.
  int work_start_hour = 7;
  int work_end_hour = 19;
};

struct ActorActivity {
  std::string actor;  // a party, "operator", "room", "unauthenticated" or "key:FINGERPRINT"
  int64_t entries = 0;
  int64_t queries_run = 0;  // query.run and template.run
  int64_t queries_refused = 0;
  std::map<std::string, int64_t> refused_by_code;  // queries and checks
  int64_t checks = 0;                              // query.check / template.check (nothing run)
  int64_t checks_refused = 0;
  double epsilon_spent = 0;
  int64_t failed_authentications = 0;               // request.refused with an AUTH_* code
  std::map<std::string, int64_t> requests_refused;  // request.refused with another code
  int64_t results_read = 0;
  int64_t results_refused = 0;
  int64_t ingests = 0;
  int64_t ingests_refused = 0;
  int64_t disposals = 0;
  int64_t disposals_refused = 0;
  int64_t erasures = 0;  // dataset.forget
  int64_t erasures_refused = 0;
  int64_t version_changes = 0;  // room.init, room.activate, and spec.* / *version* events
  int64_t room_operations = 0;  // protect, backup, restore, catalogue recovery
  int64_t off_hours = 0;
  std::map<std::string, int64_t> other;  // event kinds this report does not know
  std::string first_at, last_at;
};

struct ReportFlag {
  std::string kind;  // "probing" | "off_hours"
  std::string actor;
  std::string from, to;
  int64_t count = 0;
};

struct AuditReport {
  AuditReportOptions options;
  std::string since;    // "" for the whole log
  int64_t entries = 0;  // entries reported (after --since)
  int64_t log_entries = 0;
  std::string head;                   // the verified head hash
  std::vector<ActorActivity> actors;  // by name
  std::vector<ReportFlag> flags;
};

// Builds the report over `entries` (audit::ReadEntries, already verified).
// Entries of unknown kinds are counted under `other`, never an error.
AuditReport BuildAuditReport(const std::vector<nlohmann::json>& entries,
                             const AuditReportOptions& options);

nlohmann::ordered_json ToJson(const AuditReport& report);
std::string ToText(const AuditReport& report);
std::string ToHtml(const AuditReport& report, const std::string& room_label);

}  // namespace cr::report
