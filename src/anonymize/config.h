// The anonymisation config (anon.yaml): which columns are quasi-identifiers and
// how they generalise, sensitive attributes, direct identifiers, transforms of
// other attributes, privacy models and the objective. Parsing validates every
// field and names the bad one (BAD_INPUT).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "anonymize/hierarchy.h"
#include "anonymize/lattice.h"
#include "anonymize/models.h"
#include "anonymize/transforms.h"
#include "common/error.h"

namespace cr::anonymize {

struct QuasiIdentifier {
  std::string column;
  HierarchySpec hierarchy;
};

struct IdentifierRule {
  enum class Kind { kPseudonymize, kDrop, kRedact, kMask };
  std::string column;
  Kind kind = Kind::kDrop;
  std::string secret_path;  // kPseudonymize, resolved against the config's folder
  int keep_first = 0;       // kMask
  int keep_last = 0;
};

struct AttributeRule {
  enum class Kind { kKeep, kNoise, kRankSwap, kRandomSwap, kGeneralize };
  std::string column;
  Kind kind = Kind::kKeep;
  NoiseSpec noise;                  // kNoise
  double rank_window = 0.05;        // kRankSwap
  std::vector<std::string> within;  // kRandomSwap strata columns
  HierarchySpec hierarchy;          // kGeneralize (e.g. top/bottom coding)
  int level = 1;                    // kGeneralize
};

struct AnonymizeConfig {
  char separator = 0;  // 0: detect
  std::vector<QuasiIdentifier> quasi_identifiers;
  std::vector<std::string> sensitive;
  std::vector<IdentifierRule> identifiers;
  std::vector<AttributeRule> attributes;
  PrivacyModels models;
  Objective objective = Objective::kNonUniformEntropy;
  bool drop_suppressed = false;  // `suppressed: drop|mask`
};

// `base_dir`: relative paths (hierarchies, secrets) resolve against it.
Result<AnonymizeConfig> ParseConfig(std::string_view yaml, const std::string& base_dir);
Result<AnonymizeConfig> LoadConfig(const std::string& path);

std::string_view ObjectiveName(Objective o);

}  // namespace cr::anonymize
