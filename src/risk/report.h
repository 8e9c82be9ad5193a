// The `risk` run as a whole: reads the release (and the auxiliary data),
// computes the metrics and the linkage attack, and renders the JSON report,
// the short human summary and the self-contained HTML page.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/error.h"
#include "risk/linkage.h"
#include "risk/risk.h"

namespace cr::risk {

struct RiskRun {
  std::string input;
  std::string qi;         // comma-separated
  std::string sensitive;  // "" when none
  std::string aux;        // "" when no linkage attack
  std::string link;       // comma-separated, required with aux
  std::string truth;
  std::optional<uint64_t> population;
  double threshold = 0.2;
  std::string report;  // JSON file to write ("" none)
  std::string html;    // HTML file to write ("" none)
  std::string records; // per-record CSV to write ("" none)
};

struct RiskResult {
  RiskReport risk;
  std::optional<LinkageReport> linkage;
  nlohmann::json json;
  std::string summary;  // a few lines for people
};

// Fails closed: nothing is written unless every step succeeded. BAD_INPUT
// when `aux` and `link` do not come together or `truth` comes without them;
// BAD_INPUT / FILE_UNREADABLE / UNKNOWN_COLUMN from the steps. Messages name
// the parameters, never command-line flags (the command layer maps those).
Result<RiskResult> RunRisk(const RiskRun& run);

// Per-record risk as CSV, one line per record in input order:
// record (1-based data row), class_size, prosecutor_risk, at_risk.
std::string RecordsCsv(const RiskReport& risk);

// Plain-language findings shared by the summary and the HTML page.
std::vector<std::string> Findings(const RiskReport& risk, const LinkageReport* linkage);

// A standalone page (inline CSS and SVG, no external resources).
std::string RenderHtml(const RiskReport& risk, const LinkageReport* linkage,
                       const std::string& title);

}  // namespace cr::risk
