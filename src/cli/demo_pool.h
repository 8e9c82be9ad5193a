// The peer-benchmarking part of `cleanroom demo` (examples/peer-benchmark):
// five banks pool their IT budgets in one dataset with contributors, a
// consultant asks by category and department, and the cell rules release,
// withhold by contributor count and withhold by dominance; then one bank's
// benchmark view, its own figures beside its peers'.
#pragma once

#include <string>

#include "common/error.h"

namespace cr::cli {

// Runs demo steps `first_step` to `first_step + 2` in DIR/peer-benchmark,
// with the example's spec and data from `example_dir`. The room's key store
// is the demo's (its passphrase already set for this process).
Status RunDemoPool(const std::string& dir, const std::string& example_dir, int first_step);

}  // namespace cr::cli
