// The anonymize pipeline: config + table -> released table + report. Applies
// identifier and attribute transforms, runs the lattice search, suppresses
// violating classes, re-checks the written output and only then reports success.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "anonymize/config.h"
#include "anonymize/random.h"
#include "anonymize/table.h"
#include "common/error.h"

namespace cr::anonymize {

struct AnonymizeOptions {
  // Source of noise and swaps. nullptr: libsodium's CSPRNG. Only tests set it;
  // the CLI has no flag that reaches it.
  RandomSource* random = nullptr;
};

struct Release {
  Table table;            // what is written
  nlohmann::json report;  // levels, suppressed, metrics, classes, risks, models
  std::string summary;    // a few lines for people
};

// BAD_INPUT for config/data mismatches; THRESHOLD_NOT_MET when no
// generalisation satisfies the models within the suppression limit.
Result<Release> Anonymize(const AnonymizeConfig& config, const Table& input,
                          const AnonymizeOptions& options = {});

// Re-reads a written release (CSV text) and checks it independently of the
// search: row count, every class (except the all-'*' class of suppressed
// records) against the models, the class histogram the report claims, dropped
// identifiers absent. Fills report["risk_after"] from what it counted.
Status VerifyRelease(const AnonymizeConfig& config, const Table& input, std::string_view written,
                     char separator, nlohmann::json* report);

struct RunPaths {
  std::string config;
  std::string input;
  std::string out;
  std::string report;  // may be empty
};

// The whole command: read, anonymize, write the output to a staging file,
// re-read and verify it, then move it into place and write the report. On any
// failure nothing is left at `out` or `report`.
Result<Release> RunAnonymize(const RunPaths& paths, const AnonymizeOptions& options = {});

}  // namespace cr::anonymize
