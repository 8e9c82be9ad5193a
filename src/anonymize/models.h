// Privacy models checked on each equivalence class of a release: k-anonymity,
// l-diversity (distinct, entropy, recursive (c,l)) and t-closeness (equal
// distance for categorical, ordered EMD for numeric), plus the suppression limit.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"

namespace cr::anonymize {

struct LDiversity {
  enum class Kind { kDistinct, kEntropy, kRecursive };
  std::string attribute;
  Kind kind = Kind::kDistinct;
  double l = 2;
  double c = 1;  // kRecursive only
};

struct TCloseness {
  enum class Distance { kAuto, kEqual, kOrdered };
  std::string attribute;
  double t = 0.2;
  Distance distance = Distance::kAuto;  // kAuto: ordered when every value is a number
};

struct PrivacyModels {
  int k = 1;
  std::optional<LDiversity> l;
  std::optional<TCloseness> t;
  double suppression_limit = 0;  // share of records that may be suppressed

  // BAD_INPUT naming the first bad parameter: k below 1, a suppression limit
  // outside [0, 1], l below 1, c not above 0, t outside [0, 1], an empty
  // attribute, or l and t on different attributes. Every object built from
  // models (ClassChecker, LatticeSearch) checks them itself, so a caller that
  // skips the config parser cannot get a search that silently means less.
  Status Validate() const;
  // The one sensitive attribute the models refer to ("" when none).
  std::string SensitiveAttribute() const;
  // k-anonymity and distinct l-diversity are monotone under generalisation even
  // with suppression (merging classes never makes either fail), so the search
  // may tag whole sub-lattices from one check; the others are checked per node.
  bool AllMonotone() const;
};

// Checks classes against the models. A class is given as its size and its
// histogram over sensitive-value codes (code, count pairs, any order).
class ClassChecker {
 public:
  // `sensitive_counts`: global count per sensitive code (empty when no sensitive
  // attribute); `ordered_rank`: for ordered EMD, the numeric rank of each code
  // (a permutation of 0..codes-1). BAD_INPUT for invalid models, a model that
  // needs a sensitive attribute without its counts, or ranks that do not fit.
  static Result<ClassChecker> Create(const PrivacyModels& models,
                                     std::vector<uint32_t> sensitive_counts,
                                     std::vector<uint32_t> ordered_rank, bool ordered);

  struct Verdict {
    bool monotone_ok = true;  // k and distinct-l
    bool all_ok = true;       // every model
  };
  Verdict Check(uint64_t size, const uint32_t* codes, const uint32_t* counts, size_t m) const;
  // t-closeness distance of one class (exposed for tests and the report).
  double Distance(uint64_t size, const uint32_t* codes, const uint32_t* counts, size_t m) const;

 private:
  ClassChecker(const PrivacyModels& models, std::vector<uint32_t> sensitive_counts,
               std::vector<uint32_t> ordered_rank, bool ordered);

  PrivacyModels models_;
  std::vector<double> global_;  // global distribution over sensitive codes
  std::vector<uint32_t> rank_;  // code -> position in numeric order
  bool ordered_ = false;
  double log_l_ = 0;
  mutable std::vector<double> scratch_;
};

}  // namespace cr::anonymize
