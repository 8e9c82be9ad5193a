// The pruned search against a brute-force pass over the whole Adult lattice
// (12,960 nodes, a few seconds): labelled slow.
#include <gtest/gtest.h>

#include "anonymize/lattice_oracle.h"

namespace cr::anonymize {
namespace {

using testing::Adult;
using testing::BuildOracle;
using testing::ExpectSameOptimum;
using testing::LoadAdult;
using testing::Oracle;

// The full 12,960-node lattice, every node's class sizes: a few seconds.
TEST(LatticeSlowTest, PrunedSearchMatchesBruteForceOnAdult) {
  static Adult a_storage = LoadAdult();
  const Adult& a = a_storage;
  std::vector<std::string> qis;
  for (const auto& c : a.table.columns()) qis.push_back(c.name);
  Oracle o = BuildOracle(a, qis);
  ASSERT_EQ(o.nodes.size(), 12960u);
  for (int k : {2, 5, 10}) {
    for (double limit : {0.0, 0.02, 0.04, 0.08}) ExpectSameOptimum(a, o, qis, k, limit);
  }
}

}  // namespace
}  // namespace cr::anonymize
