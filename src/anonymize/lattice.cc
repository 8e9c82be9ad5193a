#include "anonymize/lattice.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <numeric>

namespace cr::anonymize {

// Open-addressing (linear probing) counter from packed class keys to counts.
// Keys are below 2^63, so all-ones marks an empty slot.
class LatticeSearch::Counter {
 public:
  static constexpr uint64_t kEmpty = ~uint64_t{0};

  void Reset(size_t expected) {
    size_t cap = 64;
    while (cap < expected * 2) cap <<= 1;
    if (slots_.size() != cap) {
      slots_.assign(cap, Entry{kEmpty, 0});
    } else {
      std::fill(slots_.begin(), slots_.end(), Entry{kEmpty, 0});
    }
    shift_ = 64 - std::countr_zero(cap);
    mask_ = cap - 1;
    size_ = 0;
  }

  void Add(uint64_t key, uint32_t count) {
    size_t i = static_cast<size_t>((key * 0x9E3779B97F4A7C15ULL) >> shift_);
    while (true) {
      Entry& s = slots_[i];
      if (s.key == key) {
        s.count += count;
        return;
      }
      if (s.key == kEmpty) {
        s.key = key;
        s.count = count;
        ++size_;
        return;
      }
      i = (i + 1) & mask_;
    }
  }

  void Extract(std::vector<Entry>* out) const {
    out->clear();
    out->reserve(size_);
    for (const Entry& s : slots_) {
      if (s.key != kEmpty) out->push_back(s);
    }
  }

 private:
  std::vector<Entry> slots_;
  int shift_ = 58;
  size_t mask_ = 0;
  size_t size_ = 0;
};

LatticeSearch::LatticeSearch(SearchInput input) : in_(std::move(input)) {}
LatticeSearch::~LatticeSearch() = default;

Result<std::unique_ptr<LatticeSearch>> LatticeSearch::Create(SearchInput input) {
  std::unique_ptr<LatticeSearch> s(new LatticeSearch(std::move(input)));
  CR_TRY(s->Init());
  return s;
}

namespace {
int BitsFor(size_t values) { return values <= 1 ? 0 : 64 - std::countl_zero(uint64_t{values - 1}); }
}  // namespace

Status LatticeSearch::Validate() const {
  CR_TRY(in_.models.Validate());
  if (in_.qis.empty()) {
    return Fail(ErrorCode::BAD_INPUT, "lattice search: no quasi-identifiers to generalise");
  }
  for (const auto& q : in_.qis) {
    if (!q.codes || !q.hierarchy || q.hierarchy->levels.empty()) {
      return Fail(ErrorCode::BAD_INPUT, "lattice search: quasi-identifier {} needs codes and a "
                  "hierarchy", q.name);
    }
    if (q.codes->size() != in_.qis[0].codes->size()) {
      return Fail(ErrorCode::BAD_INPUT,
                  "lattice search: quasi-identifier {} has {} records, {} has {}", q.name,
                  q.codes->size(), in_.qis[0].name, in_.qis[0].codes->size());
    }
    const size_t values = q.hierarchy->levels[0].of_value.size();
    for (const auto& level : q.hierarchy->levels) {
      bool fits = level.of_value.size() == values;
      for (size_t v = 0; v < level.of_value.size() && fits; ++v) {
        fits = level.of_value[v] < level.labels.size();
      }
      if (!fits) {
        return Fail(ErrorCode::BAD_INPUT,
                    "lattice search: the hierarchy of {} does not map each of its {} values to "
                    "a label at every level", q.name, values);
      }
    }
    for (uint32_t code : *q.codes) {
      if (code >= values) {
        return Fail(ErrorCode::BAD_INPUT,
                    "lattice search: quasi-identifier {} has a code its hierarchy does not cover",
                    q.name);
      }
    }
  }
  const size_t n = in_.qis[0].codes->size();
  if (n == 0) return Fail(ErrorCode::BAD_INPUT, "lattice search: no records");
  const std::string needs = in_.models.SensitiveAttribute();
  if (!needs.empty() && !in_.sensitive) {
    return Fail(ErrorCode::BAD_INPUT, "lattice search: the models need the codes of {}", needs);
  }
  if (in_.sensitive) {
    if (!in_.checker) {
      return Fail(ErrorCode::BAD_INPUT,
                  "lattice search: a sensitive attribute needs a class checker");
    }
    if (in_.sensitive->size() != n) {
      return Fail(ErrorCode::BAD_INPUT,
                  "lattice search: the sensitive attribute has {} records, the "
                  "quasi-identifiers {}",
                  in_.sensitive->size(), n);
    }
    for (uint32_t code : *in_.sensitive) {
      if (code >= in_.sensitive_values) {
        return Fail(ErrorCode::BAD_INPUT,
                    "lattice search: a sensitive code is not below sensitive_values ({})",
                    in_.sensitive_values);
      }
    }
  }
  return Ok();
}

Status LatticeSearch::Init() {
  // The search indexes hierarchy arrays with the codes it is given, through raw
  // pointers: every precondition is checked once here, so no caller gets a
  // search that reads out of bounds or checks weaker models than it asked for.
  CR_TRY(Validate());
  n_ = in_.qis[0].codes->size();
  max_suppressed_ = static_cast<uint64_t>(
      std::floor(in_.models.suppression_limit * static_cast<double>(n_) + 1e-9));
  int bits = 0;
  if (in_.sensitive) {
    sensitive_bits_ = BitsFor(in_.sensitive_values);
    bits = sensitive_bits_;
  }
  uint64_t nodes = 1;
  for (const auto& q : in_.qis) {
    const Hierarchy& h = *q.hierarchy;
    bits += BitsFor(h.levels[0].labels.size());
    std::vector<int> level_bits;
    for (const auto& l : h.levels) level_bits.push_back(BitsFor(l.labels.size()));
    bits_.push_back(std::move(level_bits));
    heights_.push_back(h.height());
    strides_.push_back(nodes);
    nodes *= static_cast<uint64_t>(h.height() + 1);
    std::vector<std::vector<std::vector<uint32_t>>> maps(h.levels.size());
    for (int from = 0; from <= h.height(); ++from) {
      maps[from].resize(h.levels.size());
      for (int to = from; to <= h.height(); ++to) maps[from][to] = h.MapBetween(from, to);
    }
    maps_.push_back(std::move(maps));
    metrics_.push_back(ComputeColumnMetrics(*q.codes, h));
  }
  if (bits > 63) {
    return Fail(
        ErrorCode::BAD_INPUT,
        "the quasi-identifiers have too many distinct values to pack into 63 bits ({} needed)",
        bits);
  }
  if (nodes > (uint64_t{1} << 26)) {
    return Fail(ErrorCode::BAD_INPUT,
                "the generalisation lattice has {} nodes; at most 2^26 are searched", nodes);
  }
  result_.nodes = nodes;
  counter_ = std::make_unique<Counter>();
  // The bottom table: one pass over the records, the only pass that touches them.
  Layout bottom = MakeLayout(std::vector<int>(in_.qis.size(), 0));
  counter_->Reset(n_);
  for (size_t r = 0; r < n_; ++r) {
    uint64_t key = in_.sensitive ? (*in_.sensitive)[r] : 0;
    for (size_t c = 0; c < in_.qis.size(); ++c)
      key |= uint64_t{(*in_.qis[c].codes)[r]} << bottom.shift[c];
    counter_->Add(key, 1);
  }
  counter_->Extract(&bottom_);
  return Ok();
}

uint64_t LatticeSearch::NodeId(const std::vector<int>& levels) const {
  uint64_t id = 0;
  for (size_t c = 0; c < levels.size(); ++c) id += static_cast<uint64_t>(levels[c]) * strides_[c];
  return id;
}

void LatticeSearch::Levels(uint64_t id, std::vector<int>* levels) const {
  levels->resize(heights_.size());
  for (size_t c = 0; c < heights_.size(); ++c) {
    (*levels)[c] = static_cast<int>(id / strides_[c] % static_cast<uint64_t>(heights_[c] + 1));
  }
}

double LatticeSearch::Bound(const std::vector<int>& levels) const {
  double s = 0;
  switch (in_.objective) {
    case Objective::kNonUniformEntropy:
      for (size_t c = 0; c < levels.size(); ++c) s += metrics_[c].entropy[levels[c]];
      return s;
    case Objective::kLoss:
      for (size_t c = 0; c < levels.size(); ++c) s += metrics_[c].loss_sum[levels[c]];
      return s / (static_cast<double>(n_) * static_cast<double>(levels.size()));
    case Objective::kDiscernibility:
      // Every record is in a class of at least k or suppressed (cost n >= k).
      return static_cast<double>(n_) * std::max(1, in_.models.k);
  }
  return 0;
}

LatticeSearch::Layout LatticeSearch::MakeLayout(const std::vector<int>& levels) const {
  // Keys of a node use only the bits its levels need: general nodes get short
  // keys, which lets their class tables be counted in a plain array.
  Layout l;
  l.shift.resize(levels.size());
  l.mask.resize(levels.size());
  int bits = sensitive_bits_;
  for (size_t c = 0; c < levels.size(); ++c) {
    int b = bits_[c][levels[c]];
    l.shift[c] = bits;
    l.mask[c] = b == 0 ? 0 : (uint64_t{1} << b) - 1;
    bits += b;
  }
  l.bits = bits;
  return l;
}

void LatticeSearch::RollUp(const Table& from, const std::vector<int>& from_levels,
                           const std::vector<int>& to, Table* out) {
  const Layout src = MakeLayout(from_levels), dst = MakeLayout(to);
  struct Remap {
    int from_shift;
    int to_shift;
    uint64_t mask;
    const uint32_t* map;
  };
  Remap remaps[64];
  size_t num_remaps = 0;
  for (size_t c = 0; c < to.size(); ++c) {
    // A single label (at the source or the target) is code 0: nothing to add.
    if (src.mask[c] == 0 || dst.mask[c] == 0) continue;
    remaps[num_remaps++] = {src.shift[c], dst.shift[c], src.mask[c],
                            maps_[c][from_levels[c]][to[c]].data()};
  }
  const uint64_t smask = sensitive_bits_ ? (uint64_t{1} << sensitive_bits_) - 1 : 0;
  result_.rows_rolled_up += from.size();
  auto key_of = [&](uint64_t k) {
    uint64_t out_key = k & smask;
    for (size_t i = 0; i < num_remaps; ++i) {
      const Remap& r = remaps[i];
      out_key |= uint64_t{r.map[(k >> r.from_shift) & r.mask]} << r.to_shift;
    }
    return out_key;
  };
  const uint64_t space = uint64_t{1} << std::min(dst.bits, 40);
  if (dst.bits <= kDenseBits && space <= std::max<uint64_t>(4096, 4 * from.size())) {
    // Small key space: count in an array indexed by the key, no hashing.
    if (dense_.size() < space) dense_.resize(space, 0);
    touched_.clear();
    for (const Entry& e : from) {
      uint64_t k = key_of(e.key);
      if (dense_[k] == 0) touched_.push_back(static_cast<uint32_t>(k));
      dense_[k] += e.count;
    }
    out->clear();
    out->reserve(touched_.size());
    for (uint32_t k : touched_) {
      out->push_back({k, dense_[k]});
      dense_[k] = 0;
    }
    return;
  }
  counter_->Reset(std::min<uint64_t>(from.size(), space));
  for (const Entry& e : from) counter_->Add(key_of(e.key), e.count);
  counter_->Extract(out);
}

NodeStats LatticeSearch::Stats(Table* table, const std::vector<int>& levels, bool full) {
  NodeStats st;
  st.levels = levels;
  uint64_t sup_mono = 0, sup_all = 0, classes = 0;
  double squares = 0, loss_extra = 0;
  const Layout layout = MakeLayout(levels);
  auto suppressed_loss = [&](uint64_t qi_key) {
    // A suppressed record loses everything: 1 per column instead of its label's loss.
    double s = 0;
    for (size_t c = 0; c < levels.size(); ++c) {
      uint32_t code = static_cast<uint32_t>((qi_key >> layout.shift[c]) & layout.mask[c]);
      s += 1.0 - metrics_[c].label_loss[levels[c]][code];
    }
    return s;
  };
  auto account = [&](uint64_t key, uint64_t size, ClassChecker::Verdict v) {
    if (!v.monotone_ok) sup_mono += size;
    if (!v.all_ok) {
      sup_all += size;
      if (full) loss_extra += static_cast<double>(size) * suppressed_loss(key);
    } else {
      ++classes;
      squares += static_cast<double>(size) * static_cast<double>(size);
    }
  };
  if (!in_.sensitive) {
    const uint64_t k = static_cast<uint64_t>(std::max(1, in_.models.k));
    for (const Entry& e : *table) {
      bool ok = e.count >= k;
      account(e.key, e.count, {ok, ok});
    }
  } else {
    std::sort(table->begin(), table->end(),
              [](const Entry& a, const Entry& b) { return a.key < b.key; });
    std::vector<uint32_t> codes, counts;
    const uint64_t smask = sensitive_bits_ ? (uint64_t{1} << sensitive_bits_) - 1 : 0;
    for (size_t i = 0; i < table->size();) {
      uint64_t qi = (*table)[i].key >> sensitive_bits_;
      codes.clear();
      counts.clear();
      uint64_t size = 0;
      size_t j = i;
      for (; j < table->size() && ((*table)[j].key >> sensitive_bits_) == qi; ++j) {
        codes.push_back(static_cast<uint32_t>((*table)[j].key & smask));
        counts.push_back((*table)[j].count);
        size += (*table)[j].count;
      }
      account((*table)[i].key & ~smask, size,
              in_.checker->Check(size, codes.data(), counts.data(), codes.size()));
      i = j;
    }
  }
  st.suppressed = sup_all;
  st.classes = classes;
  st.monotone_satisfied = sup_mono <= max_suppressed_;
  st.satisfied = sup_all <= max_suppressed_;
  double nue = 0, loss = 0;
  for (size_t c = 0; c < levels.size(); ++c) {
    nue += metrics_[c].entropy[levels[c]];
    loss += metrics_[c].loss_sum[levels[c]];
  }
  const double cells = static_cast<double>(n_) * static_cast<double>(levels.size());
  st.non_uniform_entropy = nue;
  st.loss = (loss + loss_extra) / cells;
  st.discernibility = squares + static_cast<double>(sup_all) * static_cast<double>(n_);
  switch (in_.objective) {
    case Objective::kNonUniformEntropy:
      st.objective = nue;
      break;
    case Objective::kLoss:
      st.objective = st.loss;
      break;
    case Objective::kDiscernibility:
      st.objective = st.discernibility;
      break;
  }
  return st;
}

NodeStats LatticeSearch::Evaluate(const std::vector<int>& levels) {
  Table t;
  RollUp(bottom_, std::vector<int>(levels.size(), 0), levels, &t);
  return Stats(&t, levels, true);
}

std::vector<uint64_t> LatticeSearch::ClassSizes(const std::vector<int>& levels) {
  Table t;
  RollUp(bottom_, std::vector<int>(levels.size(), 0), levels, &t);
  std::sort(t.begin(), t.end(), [](const Entry& a, const Entry& b) { return a.key < b.key; });
  std::vector<uint64_t> sizes;
  for (size_t i = 0; i < t.size();) {
    uint64_t qi = t[i].key >> sensitive_bits_, size = 0;
    size_t j = i;
    for (; j < t.size() && (t[j].key >> sensitive_bits_) == qi; ++j) size += t[j].count;
    sizes.push_back(size);
    i = j;
  }
  return sizes;
}

std::vector<uint8_t> LatticeSearch::SuppressedRecords(const std::vector<int>& levels) {
  Table t;
  RollUp(bottom_, std::vector<int>(levels.size(), 0), levels, &t);
  std::sort(t.begin(), t.end(), [](const Entry& a, const Entry& b) { return a.key < b.key; });
  std::vector<uint64_t> violating;  // QI parts of classes to suppress, sorted
  std::vector<uint32_t> codes, counts;
  const uint64_t smask = sensitive_bits_ ? (uint64_t{1} << sensitive_bits_) - 1 : 0;
  const uint64_t k = static_cast<uint64_t>(std::max(1, in_.models.k));
  for (size_t i = 0; i < t.size();) {
    uint64_t qi = t[i].key >> sensitive_bits_, size = 0;
    codes.clear();
    counts.clear();
    size_t j = i;
    for (; j < t.size() && (t[j].key >> sensitive_bits_) == qi; ++j) {
      codes.push_back(static_cast<uint32_t>(t[j].key & smask));
      counts.push_back(t[j].count);
      size += t[j].count;
    }
    bool ok = in_.sensitive
                  ? in_.checker->Check(size, codes.data(), counts.data(), codes.size()).all_ok
                  : size >= k;
    if (!ok) violating.push_back(qi);
    i = j;
  }
  std::vector<uint8_t> out(n_, 0);
  if (violating.empty()) return out;
  std::vector<const uint32_t*> maps;
  for (size_t c = 0; c < levels.size(); ++c) maps.push_back(maps_[c][0][levels[c]].data());
  const Layout layout = MakeLayout(levels);
  for (size_t r = 0; r < n_; ++r) {
    uint64_t key = 0;
    for (size_t c = 0; c < levels.size(); ++c)
      key |= uint64_t{maps[c][(*in_.qis[c].codes)[r]]} << layout.shift[c];
    out[r] = std::binary_search(violating.begin(), violating.end(), key >> sensitive_bits_);
  }
  return out;
}

void LatticeSearch::TagDown(uint64_t id) {
  std::vector<uint64_t> stack{id};
  while (!stack.empty()) {
    uint64_t x = stack.back();
    stack.pop_back();
    if (state_[x] != kUnknown) continue;  // tagged nodes have tagged predecessors
    state_[x] = kFail;
    for (size_t c = 0; c < heights_.size(); ++c) {
      if (x / strides_[c] % static_cast<uint64_t>(heights_[c] + 1) > 0)
        stack.push_back(x - strides_[c]);
    }
  }
}

void LatticeSearch::TagUp(uint64_t id) {
  std::vector<uint64_t> stack{id};
  while (!stack.empty()) {
    uint64_t x = stack.back();
    stack.pop_back();
    if (state_[x] != kUnknown) continue;
    state_[x] = kPass;
    for (size_t c = 0; c < heights_.size(); ++c) {
      if (x / strides_[c] % static_cast<uint64_t>(heights_[c] + 1) <
          static_cast<uint64_t>(heights_[c])) {
        stack.push_back(x + strides_[c]);
      }
    }
  }
}

NodeStats LatticeSearch::EvaluateCached(uint64_t id, const std::vector<int>& levels) {
  // Roll up from the smallest cached table of a node at or below this one.
  auto best_source = [&]() {
    size_t src = 0;
    for (size_t i = 0; i < cache_.size(); ++i) {
      const Cached& c = cache_[i];
      bool below = true;
      for (size_t d = 0; d < levels.size() && below; ++d) below = c.levels[d] <= levels[d];
      if (below && c.table.size() < cache_[src].table.size()) src = i;
    }
    return src;
  };
  size_t src = best_source();
  if (!in_hub_ && cache_[src].table.size() * 2 > bottom_.size()) {
    // Only a near-bottom table lies below: materialise the meet with a recent
    // such node as a hub, so later nodes in this region roll up from it.
    std::vector<int> hub, meet(levels.size());
    int hub_height = 2;  // lower meets are barely smaller than the bottom
    for (const auto& r : recent_) {
      int h = 0;
      for (size_t d = 0; d < levels.size(); ++d) {
        meet[d] = std::min(levels[d], r[d]);
        h += meet[d];
      }
      if (h > hub_height && meet != levels) {
        hub_height = h;
        hub = meet;
      }
    }
    recent_.push_back(levels);
    if (recent_.size() > 8) recent_.erase(recent_.begin());
    if (!hub.empty()) {
      in_hub_ = true;
      EvaluateCached(NodeId(hub), hub);
      in_hub_ = false;
      src = best_source();
    }
  }
  cache_[src].last_use = ++clock_;
  Table t;
  RollUp(cache_[src].table, cache_[src].levels, levels, &t);
  NodeStats st = Stats(&t, levels, in_.objective == Objective::kLoss);
  ++result_.evaluated;
  Consider(st);
  node_objective_[id] = st.objective;
  node_eval_[id] = st.satisfied ? 1 : 2;
  if (st.monotone_satisfied) {
    TagUp(id);
  } else {
    TagDown(id);
  }
  // Keep the table for later roll-ups; evict least recently used ones (never
  // the bottom, entry 0) past a budget of a few bottom tables.
  const size_t budget = 8 * bottom_.size() + 4096;
  cache_entries_ += t.size();
  cache_.push_back(Cached{levels, std::move(t), ++clock_});
  while ((cache_entries_ > budget || cache_.size() > 256) && cache_.size() > 1) {
    size_t victim = 1;
    for (size_t i = 2; i < cache_.size(); ++i) {
      if (cache_[i].last_use < cache_[victim].last_use) victim = i;
    }
    cache_entries_ -= cache_[victim].table.size();
    cache_[victim] = std::move(cache_.back());
    cache_.pop_back();
  }
  return st;
}

void LatticeSearch::Probe(uint64_t id) {
  // A chain from the node to the top, raising at each step the column that
  // costs least objective; binary search finds where it starts to satisfy, and
  // every check tags a whole sub-lattice.
  std::vector<int> cur;
  Levels(id, &cur);
  std::vector<uint64_t> chain{id};
  while (true) {
    int pick = -1;
    double pick_cost = 0;
    for (size_t c = 0; c < heights_.size(); ++c) {
      if (cur[c] >= heights_[c]) continue;
      // Entropy cost whatever the objective: it tells columns apart even when
      // the objective's bound does not (discernibility).
      double cost = metrics_[c].entropy[cur[c] + 1] - metrics_[c].entropy[cur[c]];
      if (pick < 0 || cost < pick_cost) {
        pick = static_cast<int>(c);
        pick_cost = cost;
      }
    }
    if (pick < 0) break;
    cur[pick]++;
    chain.push_back(NodeId(cur));
  }
  long lo = -1, hi = static_cast<long>(chain.size());
  for (long i = 0; i < static_cast<long>(chain.size()); ++i) {
    if (state_[chain[i]] == kFail) lo = i;
  }
  for (long i = static_cast<long>(chain.size()) - 1; i > lo; --i) {
    if (state_[chain[i]] == kPass) hi = i;
  }
  // Start where the last climb ended (the boundary tends to stay at a similar
  // height) rather than mid-chain: a failing start goes straight to the climb
  // and never pays for evaluating the big, specific nodes low on the chain.
  std::vector<int> levels;
  const long n = static_cast<long>(chain.size());
  long guess = boundary_height_ < 0
                   ? n / 2
                   : boundary_height_ - std::accumulate(cur.begin(), cur.end(), 0) +
                         static_cast<long>(n) - 1;
  // `cur` is the top here, so height(chain[i]) = height(top) - (n - 1 - i).
  long i = std::clamp(guess, lo + 1, hi - 1);
  long step = 1;
  while (hi - lo > 1) {
    Levels(chain[i], &levels);
    NodeStats st = EvaluateCached(chain[i], levels);
    if (st.monotone_satisfied) {
      hi = i;
      i = std::max(lo + 1, i - step);
      step *= 2;
    } else {
      lo = i;
      break;
    }
  }
  if (lo < 0) return;
  // Climb from the highest failing node of the chain towards a maximal failing
  // node: its down-set, tagged in one go, is what proves the low-cost nodes fail.
  uint64_t top = chain[lo];
  std::vector<std::pair<double, uint64_t>> next;
  while (true) {
    Levels(top, &levels);
    next.clear();
    for (size_t c = 0; c < heights_.size(); ++c) {
      if (levels[c] >= heights_[c]) continue;
      uint64_t s = top + strides_[c];
      if (state_[s] == kPass) continue;
      next.push_back({metrics_[c].entropy[levels[c] + 1] - metrics_[c].entropy[levels[c]], s});
    }
    std::sort(next.begin(), next.end());
    bool moved = false;
    for (const auto& [cost, s] : next) {
      if (state_[s] == kUnknown) {
        std::vector<int> sl;
        Levels(s, &sl);
        EvaluateCached(s, sl);
      }
      if (state_[s] == kFail) {
        top = s;
        moved = true;
        break;
      }
    }
    if (!moved) break;
  }
  boundary_height_ = 0;
  Levels(top, &levels);
  boundary_height_ = std::accumulate(levels.begin(), levels.end(), 0);
}

void LatticeSearch::Consider(const NodeStats& st) {
  if (result_.least_suppressed_levels.empty() || st.suppressed < result_.least_suppressed) {
    result_.least_suppressed = st.suppressed;
    result_.least_suppressed_levels = st.levels;
  }
}

SearchResult LatticeSearch::Run(const SearchOptions& options) {
  result_.found = false;
  result_.evaluated = 0;
  result_.rows_rolled_up = 0;
  result_.least_suppressed = 0;
  result_.least_suppressed_levels.clear();
  const uint64_t nodes = result_.nodes;
  std::vector<int> levels;
  std::vector<double> bound(nodes);
  std::vector<int> height(nodes);
  for (uint64_t id = 0; id < nodes; ++id) {
    Levels(id, &levels);
    bound[id] = Bound(levels);
    height[id] = std::accumulate(levels.begin(), levels.end(), 0);
  }
  // Ties on the objective go to the lower, then the earlier node, in both modes.
  auto better = [&](double obj_a, uint64_t a, double obj_b, uint64_t b) {
    if (obj_a != obj_b) return obj_a < obj_b;
    if (height[a] != height[b]) return height[a] < height[b];
    return a < b;
  };
  uint64_t best_id = 0;
  if (!options.prune) {
    for (uint64_t id = 0; id < nodes; ++id) {
      Levels(id, &levels);
      Table t;
      RollUp(bottom_, std::vector<int>(levels.size(), 0), levels, &t);
      NodeStats st = Stats(&t, levels, in_.objective == Objective::kLoss);
      ++result_.evaluated;
      Consider(st);
      if (st.satisfied &&
          (!result_.found || better(st.objective, id, result_.best.objective, best_id))) {
        result_.found = true;
        result_.best = st;
        best_id = id;
      }
    }
  } else {
    std::vector<uint64_t> order(nodes);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(),
              [&](uint64_t a, uint64_t b) { return better(bound[a], a, bound[b], b); });
    state_.assign(nodes, kUnknown);
    boundary_height_ = -1;
    recent_.clear();
    cache_.clear();
    cache_.push_back(Cached{std::vector<int>(heights_.size(), 0), bottom_, 0});
    cache_entries_ = bottom_.size();
    const bool exact_bound =
        in_.objective == Objective::kNonUniformEntropy && in_.models.AllMonotone();
    node_objective_.assign(nodes, 0);
    node_eval_.assign(nodes, 0);
    for (uint64_t id : order) {
      if (result_.found && bound[id] > result_.best.objective) break;
      if (state_[id] == kFail) continue;
      if (state_[id] == kUnknown) Probe(id);
      if (state_[id] == kFail) continue;
      Levels(id, &levels);
      NodeStats st;
      if (exact_bound) {
        // Monotone models and a separable objective: passing the tag is passing.
        st.levels = levels;
        st.satisfied = true;
        st.objective = bound[id];
      } else if (node_eval_[id]) {
        st.levels = levels;
        st.satisfied = node_eval_[id] == 1;
        st.objective = node_objective_[id];
      } else {
        st = EvaluateCached(id, levels);
      }
      if (st.satisfied &&
          (!result_.found || better(st.objective, id, result_.best.objective, best_id))) {
        result_.found = true;
        result_.best = st;
        best_id = id;
      }
    }
    cache_.clear();
  }
  if (!result_.found) {
    // The top is one class of every record: the least suppression there is for
    // k and distinct l, and a bound for the other models.
    Consider(Evaluate(heights_));
  }
  if (result_.found) {
    // Full statistics of the chosen node for the report.
    Levels(best_id, &levels);
    NodeStats st = Evaluate(levels);
    st.objective = result_.best.objective;
    result_.best = st;
  }
  return result_;
}

}  // namespace cr::anonymize
