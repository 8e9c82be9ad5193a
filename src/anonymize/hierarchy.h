// Generalisation hierarchies for one column: read from ARX files or built from a
// rule (prefix masking, nested intervals with top/bottom coding, dates), encoded
// as per-level integer codes over the column's dictionary.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"

namespace cr::anonymize {

// How to generalise a column (the `hierarchy:` / `generalize:` config entries).
struct HierarchySpec {
  enum class Kind { kFile, kPrefix, kIntervals, kDate };
  Kind kind = Kind::kFile;
  std::string path;                      // kFile: ARX format, one row per value
  char separator = ';';                  // kFile
  std::vector<double> widths;            // kIntervals: nested widths, each dividing the next
  std::optional<double> bottom_code;     // kIntervals: values below become "<b" at every level
  std::optional<double> top_code;        // kIntervals: values at or above become ">=t"
  std::vector<std::string> date_levels;  // kDate: month | year | decade, in order
};

// A hierarchy bound to one column's dictionary. Level 0 is the original value;
// the top level usually is the single label "*".
struct Hierarchy {
  struct Level {
    std::vector<std::string> labels;  // distinct labels at this level (dense codes)
    std::vector<uint32_t> of_value;   // column dictionary code -> label code
  };
  std::vector<Level> levels;

  int height() const { return static_cast<int>(levels.size()) - 1; }
  const std::string& Label(int level, uint32_t value_code) const {
    return levels[level].labels[levels[level].of_value[value_code]];
  }
  // label code at `from` -> label code at `to` (from <= to); valid because a
  // hierarchy is a tree (checked when it is built).
  std::vector<uint32_t> MapBetween(int from, int to) const;
};

// Builds the hierarchy for a column whose distinct values are `dict`. BAD_INPUT
// naming the column when a value is missing from a hierarchy file (with how
// many and the first few of them, the one message that shows values: see
// hierarchy.cc), is not a number/date for a rule that needs one, when rows disagree on
// the number of levels, or when the hierarchy is not a tree. `column` is for messages.
Result<Hierarchy> BuildHierarchy(const HierarchySpec& spec, const std::vector<std::string>& dict,
                                 const std::string& column);

// Per-value label chains (level 1..h) to a Hierarchy; shared by every builder.
Result<Hierarchy> HierarchyFromChains(const std::vector<std::string>& dict,
                                      const std::vector<std::vector<std::string>>& chains,
                                      const std::string& column);

// Parses a decimal number (the whole string). Shared by rules and transforms.
std::optional<double> ParseNumber(const std::string& s);

}  // namespace cr::anonymize
