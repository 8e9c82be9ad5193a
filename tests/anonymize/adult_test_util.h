// Test helpers: load UCI Adult and its ARX hierarchies from data/adult in this repository.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "anonymize/hierarchy.h"
#include "anonymize/lattice.h"
#include "anonymize/table.h"

namespace cr::anonymize::testing {

inline std::string AdultDir() { return std::string(CLEANROOM_DATA_DIR) + "/adult"; }

struct Adult {
  Table table;
  std::vector<Hierarchy> hierarchies;  // one per column, header order
};

inline Adult LoadAdult(size_t replicate = 0) {
  Adult a;
  auto t = ReadTableFile(AdultDir() + "/adult.csv");
  EXPECT_TRUE(t.has_value()) << (t ? "" : t.error().ToString());
  a.table = std::move(*t);
  if (replicate) a.table.Replicate(replicate);
  for (const auto& c : a.table.columns()) {
    HierarchySpec spec;
    spec.path = AdultDir() + "/adult_hierarchy_" + c.name + ".csv";
    auto h = BuildHierarchy(spec, c.dict, c.name);
    EXPECT_TRUE(h.has_value()) << (h ? "" : h.error().ToString());
    a.hierarchies.push_back(std::move(*h));
  }
  return a;
}

// Search input with the given columns as quasi-identifiers (all when empty).
inline SearchInput AdultInput(const Adult& a, const PrivacyModels& models,
                              const std::vector<std::string>& qis = {},
                              Objective objective = Objective::kNonUniformEntropy) {
  SearchInput in;
  for (size_t c = 0; c < a.table.num_columns(); ++c) {
    const auto& col = a.table.column(c);
    if (!qis.empty() && std::find(qis.begin(), qis.end(), col.name) == qis.end()) continue;
    in.qis.push_back({col.name, &col.codes, &a.hierarchies[c]});
  }
  in.models = models;
  in.objective = objective;
  return in;
}

}  // namespace cr::anonymize::testing
