// The anonymisation config (anon.yaml): the treatment of every column (quasi-identifier,
// sensitive, identifier, attribute, or removed), privacy models and objective, read strictly.
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

// What happens to input columns the config does not name. A column released
// because nobody mentioned it would be a privacy default that silently releases,
// so the default refuses the input; `others: remove` leaves such columns out.
enum class Others { kRefuse, kRemove };

struct AnonymizeConfig {
  char separator = 0;  // 0: detect
  std::vector<QuasiIdentifier> quasi_identifiers;
  std::vector<std::string> sensitive;
  std::vector<IdentifierRule> identifiers;
  std::vector<AttributeRule> attributes;
  PrivacyModels models;
  Objective objective = Objective::kNonUniformEntropy;
  bool drop_suppressed = false;  // `suppressed: drop|mask`
  Others others = Others::kRefuse;

  // Whether `column` has a treatment (any section names it).
  bool Declares(std::string_view column) const;
};

// Parsing validates every field through the strict reader (common/yaml.h) and
// names the bad one with its line (BAD_INPUT): unknown or duplicate keys,
// quoted numbers, wrong types and out-of-range values are all refused.
// `base_dir`: relative paths (hierarchies, secrets) resolve against it.
Result<AnonymizeConfig> ParseConfig(std::string_view yaml, const std::string& base_dir);
Result<AnonymizeConfig> LoadConfig(const std::string& path);

std::string_view ObjectiveName(Objective o);

}  // namespace cr::anonymize
