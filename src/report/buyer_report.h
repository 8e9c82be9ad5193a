// The buyer's questions answered (`cleanroom report`): for each question of
// the list in data/buyer-questions/questions.json, the answer as this room
// stands, built only from the signed spec, the catalogue and the verified
// audit log, with the evidence each answer rests on.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "room/room.h"

namespace cr::report {

struct Answer {
  std::string id;
  std::string group;  // "room" | "provider"
  std::string question;
  std::vector<std::string> answer;                            // sentences
  std::vector<std::pair<std::string, std::string>> evidence;  // what -> where it is recorded
};

struct BuyerReport {
  std::string collaboration;
  std::string spec_hash;
  std::string generated_at;
  std::string audit_head;
  int64_t audit_entries = 0;
  nlohmann::json source;  // the question list's provenance
  std::vector<Answer> answers;
};

// The question list built into the binary (data/buyer-questions/questions.json).
std::string_view QuestionsDocument();

// `entries` are the room's audit entries, already verified (head and count
// from audit::Verify). INTERNAL when the built-in list names a question this
// build has no answer for (a test keeps the two in step).
Result<BuyerReport> BuildBuyerReport(const room::Room& room,
                                     const std::vector<nlohmann::json>& entries,
                                     const std::string& audit_head);

nlohmann::ordered_json ToJson(const BuyerReport& report);
std::string ToText(const BuyerReport& report);
std::string ToHtml(const BuyerReport& report);

}  // namespace cr::report
