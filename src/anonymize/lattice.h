// Optimal full-domain generalisation: searches the lattice of hierarchy levels
// for the node that satisfies the privacy models within the suppression limit
// and minimises the objective. Group counting works on 64-bit packed keys of
// integer codes; a node's class table is rolled up from the smallest cached
// table of a more specific node, and monotonicity tags whole sub-lattices.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "anonymize/hierarchy.h"
#include "anonymize/metrics.h"
#include "anonymize/models.h"
#include "common/error.h"

namespace cr::anonymize {

enum class Objective { kNonUniformEntropy, kLoss, kDiscernibility };

// One quasi-identifier as the search sees it. The pointers must outlive the search.
struct SearchColumn {
  std::string name;
  const std::vector<uint32_t>* codes = nullptr;  // level-0 code per record
  const Hierarchy* hierarchy = nullptr;
};

struct SearchInput {
  std::vector<SearchColumn> qis;
  // The models' sensitive attribute (nullptr when none): a code per record.
  const std::vector<uint32_t>* sensitive = nullptr;
  uint32_t sensitive_values = 0;
  const ClassChecker* checker = nullptr;
  PrivacyModels models;
  Objective objective = Objective::kNonUniformEntropy;
};

struct SearchOptions {
  // false: evaluate every node from the bottom table, with no tagging, no
  // rolling up from intermediate nodes and no bounds (the brute-force oracle).
  bool prune = true;
};

// What one node gives.
struct NodeStats {
  std::vector<int> levels;
  bool satisfied = false;  // every model within the suppression limit
  bool monotone_satisfied = false;
  uint64_t suppressed = 0;  // records in classes violating any model
  uint64_t classes = 0;     // classes that are released (not suppressed)
  double non_uniform_entropy = 0;
  double loss = 0;            // mean generalisation loss, suppressed records count 1
  double discernibility = 0;  // sum of released class sizes squared + suppressed * n
  double objective = 0;
};

struct SearchResult {
  bool found = false;
  NodeStats best;
  uint64_t nodes = 0;           // lattice size
  uint64_t evaluated = 0;       // nodes whose class table was computed
  uint64_t rows_rolled_up = 0;  // class-table entries processed in total
  // The fewest records any node the search computed (and, when nothing was
  // found, the top node) would suppress, and that node: what the suppression
  // limit would have to allow for a node to satisfy.
  uint64_t least_suppressed = 0;
  std::vector<int> least_suppressed_levels;
};

class LatticeSearch {
 public:
  // BAD_INPUT naming the bad parameter: invalid models (PrivacyModels::Validate),
  // no quasi-identifiers, a column without codes or hierarchy, columns of
  // different lengths, codes outside their hierarchy or sensitive_values, a
  // model's sensitive attribute or class checker missing, no records; and when
  // the quasi-identifiers' codes need more than 63 bits.
  static Result<std::unique_ptr<LatticeSearch>> Create(SearchInput input);
  ~LatticeSearch();

  SearchResult Run(const SearchOptions& options = {});

  // Evaluates one node (from the bottom table). For tests and the final report.
  NodeStats Evaluate(const std::vector<int>& levels);
  // Sizes of all classes at `levels` (suppression not applied), from the bottom.
  std::vector<uint64_t> ClassSizes(const std::vector<int>& levels);
  // One flag per record: in a class that violates a model at `levels`.
  std::vector<uint8_t> SuppressedRecords(const std::vector<int>& levels);

  const std::vector<int>& heights() const { return heights_; }
  uint64_t max_suppressed() const { return max_suppressed_; }
  const std::vector<ColumnMetrics>& column_metrics() const { return metrics_; }

  struct Entry {
    uint64_t key;
    uint32_t count;
  };
  class Counter;

 private:
  explicit LatticeSearch(SearchInput input);
  Status Validate() const;
  Status Init();

  using Table = std::vector<Entry>;
  uint64_t NodeId(const std::vector<int>& levels) const;
  void Levels(uint64_t id, std::vector<int>* levels) const;
  double Bound(const std::vector<int>& levels) const;
  void RollUp(const Table& from, const std::vector<int>& from_levels, const std::vector<int>& to,
              Table* out);
  // Class-level statistics of a table at `levels`; `full` adds the loss of
  // suppressed records (the search does not need it unless it optimises loss).
  NodeStats Stats(Table* table, const std::vector<int>& levels, bool full);
  NodeStats EvaluateCached(uint64_t id, const std::vector<int>& levels);
  void Consider(const NodeStats& st);
  void TagDown(uint64_t id);
  void TagUp(uint64_t id);
  void Probe(uint64_t id);

  SearchInput in_;
  size_t n_ = 0;
  uint64_t max_suppressed_ = 0;
  std::vector<int> heights_;
  std::vector<uint64_t> strides_;
  std::vector<std::vector<int>> bits_;  // bits_[c][level]: key bits of that level's codes
  struct Layout {
    std::vector<int> shift;
    std::vector<uint64_t> mask;
    int bits = 0;
  };
  Layout MakeLayout(const std::vector<int>& levels) const;
  static constexpr int kDenseBits = 20;
  std::vector<uint32_t> dense_;  // zero between roll-ups
  std::vector<uint32_t> touched_;
  int sensitive_bits_ = 0;
  // maps_[c][from][to]: label code at level `from` -> label code at level `to`.
  std::vector<std::vector<std::vector<std::vector<uint32_t>>>> maps_;
  std::vector<ColumnMetrics> metrics_;
  Table bottom_;

  // Search state.
  enum : uint8_t { kUnknown = 0, kPass = 1, kFail = 2 };
  std::vector<uint8_t> state_;          // monotone part, tagged
  std::vector<double> node_objective_;  // of fully checked nodes
  std::vector<uint8_t> node_eval_;      // 0 not checked, 1 satisfied, 2 not
  struct Cached {
    std::vector<int> levels;
    Table table;
    uint64_t last_use;
  };
  std::vector<Cached> cache_;
  size_t cache_entries_ = 0;
  uint64_t clock_ = 0;
  long boundary_height_ = -1;
  std::vector<std::vector<int>> recent_;  // nodes that had only a poor source
  bool in_hub_ = false;                   // height of the last maximal failing node found
  std::unique_ptr<Counter> counter_;
  SearchResult result_;
};

}  // namespace cr::anonymize
