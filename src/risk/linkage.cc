#include "risk/linkage.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "anonymize/hierarchy.h"
#include "risk/risk.h"

namespace cr::risk {

using anonymize::Table;

namespace {

std::string Strip(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  size_t e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

std::string Bucket(uint64_t candidates) {
  if (candidates == 0) return "0";
  if (candidates == 1) return "1";
  if (candidates < 5) return "2-4";
  if (candidates < 10) return "5-9";
  if (candidates < 20) return "10-19";
  return "20+";
}

constexpr uint32_t kMixed = 0xffffffffu;
constexpr uint32_t kNone = 0xfffffffeu;

}  // namespace

ValueMatcher ValueMatcher::Parse(const std::string& released) {
  ValueMatcher m;
  m.text = released;
  const std::string s = Strip(released);
  if (s.empty()) return m;
  if (s.find_first_not_of('*') == std::string::npos) {
    m.kind = Kind::kAny;
    return m;
  }
  // Interval notations: [lo, hi[  [lo, hi)  (lo, hi]  [lo, hi]
  if ((s.front() == '[' || s.front() == '(' || s.front() == ']') && s.size() > 2) {
    char close = s.back();
    size_t comma = s.find(',');
    if (comma != std::string::npos && (close == ']' || close == '[' || close == ')')) {
      auto lo = anonymize::ParseNumber(Strip(s.substr(1, comma - 1)));
      auto hi = anonymize::ParseNumber(Strip(s.substr(comma + 1, s.size() - comma - 2)));
      if (lo && hi) {
        m.kind = Kind::kRange;
        m.lo = *lo;
        m.hi = *hi;
        m.lo_closed = s.front() == '[';
        m.hi_closed = close == ']';
        return m;
      }
    }
  }
  if (s.rfind(">=", 0) == 0 || s.rfind("<=", 0) == 0) {
    if (auto v = anonymize::ParseNumber(Strip(s.substr(2)))) {
      m.kind = Kind::kRange;
      m.lo = s[0] == '>' ? *v : -HUGE_VAL;
      m.hi = s[0] == '>' ? HUGE_VAL : *v;
      m.lo_closed = m.hi_closed = true;
      return m;
    }
  }
  if (s[0] == '<' || s[0] == '>') {
    if (auto v = anonymize::ParseNumber(Strip(s.substr(1)))) {
      m.kind = Kind::kRange;
      m.lo = s[0] == '>' ? *v : -HUGE_VAL;
      m.hi = s[0] == '>' ? HUGE_VAL : *v;
      m.lo_closed = m.hi_closed = false;
      return m;
    }
  }
  // ARX-style "50-59": both ends inclusive. The dash after the first character
  // so that "-5" stays a number.
  size_t dash = s.find('-', 1);
  if (dash != std::string::npos) {
    auto lo = anonymize::ParseNumber(Strip(s.substr(0, dash)));
    auto hi = anonymize::ParseNumber(Strip(s.substr(dash + 1)));
    if (lo && hi && *lo <= *hi) {
      m.kind = Kind::kRange;
      m.lo = *lo;
      m.hi = *hi;
      m.lo_closed = m.hi_closed = true;
      return m;
    }
  }
  // Masked suffix: "021**" keeps a prefix.
  size_t star = s.find('*');
  if (star != std::string::npos && s.find_first_not_of('*', star) == std::string::npos) {
    m.kind = Kind::kPrefix;
    m.text = s.substr(0, star);
    m.length = s.size();
    return m;
  }
  m.text = s;
  return m;
}

bool ValueMatcher::Matches(const std::string& aux_value) const {
  switch (kind) {
    case Kind::kAny:
      return true;
    case Kind::kExact:
      return Strip(aux_value) == text;
    case Kind::kPrefix: {
      std::string v = Strip(aux_value);
      return v.size() == length && v.compare(0, text.size(), text) == 0;
    }
    case Kind::kRange: {
      auto v = anonymize::ParseNumber(Strip(aux_value));
      if (!v) return false;
      bool above = lo_closed ? *v >= lo : *v > lo;
      bool below = hi_closed ? *v <= hi : *v < hi;
      return above && below;
    }
  }
  return false;
}

Result<LinkageReport> RunLinkage(const Table& release, const Table& aux,
                                 const LinkageOptions& options) {
  CR_ASSIGN(std::vector<size_t> rel_cols,
            ResolveColumns(release, options.link, "link columns (release)"));
  CR_ASSIGN(std::vector<size_t> aux_cols, ResolveColumns(aux, options.link, "link columns (auxiliary data)"));
  std::optional<size_t> rel_truth, aux_truth, sensitive;
  if (!options.truth.empty()) {
    CR_ASSIGN(auto r, ResolveColumns(release, {options.truth}, "truth column (release)"));
    CR_ASSIGN(auto a, ResolveColumns(aux, {options.truth}, "truth column (auxiliary data)"));
    rel_truth = r[0];
    aux_truth = a[0];
  }
  if (!options.sensitive.empty()) {
    CR_ASSIGN(auto s, ResolveColumns(release, {options.sensitive}, "sensitive attribute (release)"));
    sensitive = s[0];
  }
  const size_t m = rel_cols.size();

  // Per link column and per distinct aux value: the sorted release label codes
  // it matches. Exact labels are found by hash; only generalised labels are
  // tested one by one, and there are few of those.
  std::vector<std::vector<std::vector<uint32_t>>> matches(m);
  for (size_t c = 0; c < m; ++c) {
    const auto& rdict = release.column(rel_cols[c]).dict;
    const auto& adict = aux.column(aux_cols[c]).dict;
    std::unordered_map<std::string, uint32_t> exact;
    // Masked values ("021**") by (kept length, full length) and kept prefix:
    // a ZIP column can carry thousands of them, too many to test one by one.
    std::map<std::pair<size_t, size_t>, std::unordered_map<std::string, std::vector<uint32_t>>>
        prefixes;
    std::vector<std::pair<uint32_t, ValueMatcher>> general;
    for (uint32_t l = 0; l < rdict.size(); ++l) {
      ValueMatcher vm = ValueMatcher::Parse(rdict[l]);
      if (vm.kind == ValueMatcher::Kind::kExact) {
        exact.emplace(vm.text, l);
      } else if (vm.kind == ValueMatcher::Kind::kPrefix) {
        prefixes[{vm.text.size(), vm.length}][vm.text].push_back(l);
      } else {
        general.emplace_back(l, std::move(vm));
      }
    }
    matches[c].resize(adict.size());
    for (uint32_t v = 0; v < adict.size(); ++v) {
      auto& out = matches[c][v];
      const std::string value = Strip(adict[v]);
      auto it = exact.find(value);
      if (it != exact.end()) out.push_back(it->second);
      for (const auto& [lengths, index] : prefixes) {
        if (lengths.second != value.size()) continue;
        auto p = index.find(value.substr(0, lengths.first));
        if (p != index.end()) out.insert(out.end(), p->second.begin(), p->second.end());
      }
      for (const auto& [l, vm] : general) {
        if (vm.Matches(adict[v])) out.push_back(l);
      }
      std::sort(out.begin(), out.end());
    }
  }

  // Release patterns: distinct combinations of link labels.
  std::vector<const std::vector<uint32_t>*> rel_codes, aux_codes;
  for (size_t c : rel_cols) rel_codes.push_back(&release.column(c).codes);
  for (size_t c : aux_cols) aux_codes.push_back(&aux.column(c).codes);
  Grouping rp = GroupRecords(rel_codes, release.num_rows());
  Grouping ap = GroupRecords(aux_codes, aux.num_rows());
  const size_t patterns = rp.sizes.size();

  // Sensitive value shared by all records of a pattern, or kMixed.
  std::vector<uint32_t> pattern_value(patterns, kNone);
  if (sensitive) {
    const auto& codes = release.column(*sensitive).codes;
    for (size_t r = 0; r < release.num_rows(); ++r) {
      uint32_t& pv = pattern_value[rp.class_of[r]];
      if (pv == kNone)
        pv = codes[r];
      else if (pv != codes[r])
        pv = kMixed;
    }
  }

  // Two ways to find an aux combination's patterns. When the release's label
  // codes pack into 64 bits, every combination of matching labels (usually
  // one or two: the exact label and a '*') is looked up in a hash of pattern
  // keys. Otherwise, or when an aux value matches many labels, patterns are
  // scanned in the bucket of their label on the most selective column.
  std::vector<int> shift(m, 0);
  int bits = 0;
  for (size_t c = 0; c < m; ++c) {
    shift[c] = bits;
    size_t labels = release.column(rel_cols[c]).dict.size();
    while ((size_t{1} << (bits - shift[c])) < labels + 1 && bits < 65) ++bits;
  }
  const bool packed = bits <= 64;
  std::unordered_map<uint64_t, uint32_t> pattern_of_key;
  if (packed) {
    pattern_of_key.reserve(patterns * 2);
    for (uint32_t p = 0; p < patterns; ++p) {
      uint64_t key = 0;
      for (size_t c = 0; c < m; ++c) {
        key |= uint64_t{(*rel_codes[c])[rp.first_row[p]]} << shift[c];
      }
      pattern_of_key.emplace(key, p);
    }
  }
  size_t key_col = 0;
  for (size_t c = 1; c < m; ++c) {
    if (release.column(rel_cols[c]).dict.size() > release.column(rel_cols[key_col]).dict.size()) {
      key_col = c;
    }
  }
  std::vector<std::vector<uint32_t>> by_label(release.column(rel_cols[key_col]).dict.size());
  for (uint32_t p = 0; p < patterns; ++p) {
    by_label[(*rel_codes[key_col])[rp.first_row[p]]].push_back(p);
  }
  constexpr uint64_t kMaxCombinations = 256;

  LinkageReport rep;
  rep.aux_records = aux.num_rows();
  rep.release_patterns = patterns;
  if (sensitive) rep.disclosed = 0;
  // Per aux pattern: the one release row when re-identified, else -1.
  std::vector<int64_t> unique_row(ap.sizes.size(), -1);
  std::vector<const std::vector<uint32_t>*> lists(m);
  std::vector<size_t> pos(m);
  for (uint32_t q = 0; q < ap.sizes.size(); ++q) {
    const uint32_t arow = ap.first_row[q];
    uint64_t candidates = 0;
    uint32_t value = kNone;
    int64_t last_row = -1;
    auto take = [&](uint32_t p) {
      candidates += rp.sizes[p];
      last_row = rp.first_row[p];
      uint32_t pv = pattern_value[p];
      if (value == kNone) {
        value = pv;
      } else if (value != pv) {
        value = kMixed;
      }
    };
    uint64_t combinations = 1;
    for (size_t c = 0; c < m; ++c) {
      lists[c] = &matches[c][(*aux_codes[c])[arow]];
      combinations = std::min(combinations * lists[c]->size(), kMaxCombinations + 1);
    }
    if (packed && combinations <= kMaxCombinations) {
      // Odometer over the per-column label lists.
      std::fill(pos.begin(), pos.end(), 0);
      for (uint64_t i = 0; i < combinations; ++i) {
        uint64_t key = 0;
        for (size_t c = 0; c < m; ++c) key |= uint64_t{(*lists[c])[pos[c]]} << shift[c];
        auto it = pattern_of_key.find(key);
        if (it != pattern_of_key.end()) take(it->second);
        for (size_t c = 0; c < m; ++c) {
          if (++pos[c] < lists[c]->size()) break;
          pos[c] = 0;
        }
      }
    } else {
      for (uint32_t label : *lists[key_col]) {
        for (uint32_t p : by_label[label]) {
          const uint32_t rrow = rp.first_row[p];
          bool ok = true;
          for (size_t c = 0; c < m && ok; ++c) {
            if (c == key_col) continue;
            const auto& list = matches[c][(*aux_codes[c])[arow]];
            ok = std::binary_search(list.begin(), list.end(), (*rel_codes[c])[rrow]);
          }
          if (ok) take(p);
        }
      }
    }
    const uint64_t count = ap.sizes[q];
    rep.candidates[Bucket(candidates)] += count;
    if (candidates == 0) {
      rep.unmatched += count;
      continue;
    }
    rep.matched += count;
    if (candidates == 1) {
      rep.reidentified += count;
      unique_row[q] = last_row;
    }
    if (sensitive && value != kMixed && value != kNone) {
      *rep.disclosed += count;
      rep.disclosed_values[release.column(*sensitive).dict[value]] += count;
    }
  }
  if (rel_truth) {
    uint64_t correct = 0;
    const auto& rt = release.column(*rel_truth);
    const auto& at = aux.column(*aux_truth);
    for (size_t r = 0; r < aux.num_rows(); ++r) {
      int64_t row = unique_row[ap.class_of[r]];
      if (row >= 0 && rt.Value(static_cast<size_t>(row)) == at.Value(r)) ++correct;
    }
    rep.correct = correct;
  }
  return rep;
}

nlohmann::json ToJson(const LinkageReport& r) {
  nlohmann::json j;
  j["aux_records"] = r.aux_records;
  j["release_patterns"] = r.release_patterns;
  j["matched"] = r.matched;
  j["unmatched"] = r.unmatched;
  j["reidentified"] = r.reidentified;
  j["reidentified_share"] =
      r.aux_records ? static_cast<double>(r.reidentified) / static_cast<double>(r.aux_records)
                    : 0.0;
  nlohmann::json c = nlohmann::json::object();
  for (const char* b : {"0", "1", "2-4", "5-9", "10-19", "20+"}) {
    auto it = r.candidates.find(b);
    c[b] = it == r.candidates.end() ? 0 : it->second;
  }
  j["candidates"] = c;
  if (r.correct) {
    j["correct"] = *r.correct;
    j["precision"] = r.reidentified
                         ? static_cast<double>(*r.correct) / static_cast<double>(r.reidentified)
                         : 0.0;
  }
  if (r.disclosed) {
    j["disclosed"] = *r.disclosed;
    j["disclosed_values"] = r.disclosed_values;
  }
  return j;
}

}  // namespace cr::risk
