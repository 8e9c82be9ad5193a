#include "anonymize/hierarchy.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <unordered_map>

#include "common/files.h"

namespace cr::anonymize {

std::optional<double> ParseNumber(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && s[b] == ' ') ++b;
  while (e > b && s[e - 1] == ' ') --e;
  if (b == e) return std::nullopt;
  double v = 0;
  const char* first = s.data() + b;
  if (*first == '+') ++first;
  auto [ptr, ec] = std::from_chars(first, s.data() + e, v);
  if (ec != std::errc() || ptr != s.data() + e || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::vector<uint32_t> Hierarchy::MapBetween(int from, int to) const {
  std::vector<uint32_t> out(levels[from].labels.size(), 0);
  const auto& a = levels[from].of_value;
  const auto& b = levels[to].of_value;
  for (size_t v = 0; v < a.size(); ++v) out[a[v]] = b[v];
  return out;
}

Result<Hierarchy> HierarchyFromChains(const std::vector<std::string>& dict,
                                      const std::vector<std::vector<std::string>>& chains,
                                      const std::string& column) {
  size_t height = chains.empty() ? 0 : chains[0].size();
  for (const auto& c : chains) {
    if (c.size() != height) {
      return Fail(ErrorCode::BAD_INPUT,
                  "hierarchy of column {}: rows have different numbers of levels", column);
    }
  }
  Hierarchy h;
  h.levels.resize(height + 1);
  h.levels[0].labels = dict;
  h.levels[0].of_value.resize(dict.size());
  for (uint32_t v = 0; v < dict.size(); ++v) h.levels[0].of_value[v] = v;
  for (size_t l = 1; l <= height; ++l) {
    std::unordered_map<std::string, uint32_t> index;
    auto& level = h.levels[l];
    level.of_value.resize(dict.size());
    for (size_t v = 0; v < dict.size(); ++v) {
      auto [it, inserted] =
          index.try_emplace(chains[v][l - 1], static_cast<uint32_t>(index.size()));
      if (inserted) level.labels.push_back(chains[v][l - 1]);
      level.of_value[v] = it->second;
    }
  }
  // A single-label top makes the lattice bounded by "everything generalised";
  // rules with several top labels get one more level.
  if (h.levels.back().labels.size() > 1) {
    Hierarchy::Level top;
    top.labels = {"*"};
    top.of_value.assign(dict.size(), 0);
    h.levels.push_back(std::move(top));
  }
  // Tree check: a label at level l must determine its label at level l+1, or
  // rolling class counts up from one level to the next would be wrong.
  for (size_t l = 0; l + 1 < h.levels.size(); ++l) {
    std::vector<int64_t> parent(h.levels[l].labels.size(), -1);
    for (size_t v = 0; v < dict.size(); ++v) {
      uint32_t a = h.levels[l].of_value[v], b = h.levels[l + 1].of_value[v];
      if (parent[a] == -1) {
        parent[a] = b;
      } else if (parent[a] != static_cast<int64_t>(b)) {
        return Fail(ErrorCode::BAD_INPUT,
                    "hierarchy of column {} is not a tree: a level-{} label has two parents",
                    column, l);
      }
    }
  }
  return h;
}

namespace {

// Messages never carry data values, with this one exception: the values a
// hierarchy file lacks are listed (the first few), because without them the
// config author cannot fix the file. They are the author's own data, and
// `anonymize` runs locally on the data owner's machine: the message goes to the
// person who holds the input, not to another party of a collaboration.
constexpr size_t kListedMissing = 5;

std::string QuoteValues(const std::vector<std::string>& values) {
  std::string out;
  for (const auto& v : values) {
    // A long value is cut: the start is enough to find the row to add. Control
    // characters become '?' so a value cannot rewrite the terminal it lands on.
    std::string shown = v.size() > 40 ? v.substr(0, 40) + "..." : v;
    for (char& c : shown) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    }
    out += fmt::format("{}'{}'", out.empty() ? "" : ", ", shown);
  }
  return out;
}

Result<std::vector<std::vector<std::string>>> FileChains(const HierarchySpec& spec,
                                                         const std::vector<std::string>& dict,
                                                         const std::string& column) {
  CR_ASSIGN(std::string text, ReadFile(spec.path));
  std::unordered_map<std::string, std::vector<std::string>> rows;
  size_t pos = 0;
  size_t width = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string_view line(text.data() + pos, eol - pos);
    pos = eol + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    std::vector<std::string> fields;
    size_t s = 0;
    while (true) {
      size_t e = line.find(spec.separator, s);
      fields.emplace_back(
          line.substr(s, e == std::string_view::npos ? std::string_view::npos : e - s));
      if (e == std::string_view::npos) break;
      s = e + 1;
    }
    if (width == 0) width = fields.size();
    if (fields.size() != width) {
      return Fail(ErrorCode::BAD_INPUT,
                  "hierarchy file {} (column {}): rows have different lengths", spec.path, column);
    }
    std::string value = fields[0];
    fields.erase(fields.begin());
    rows.emplace(std::move(value), std::move(fields));
  }
  if (width == 0) return Fail(ErrorCode::BAD_INPUT, "hierarchy file {} is empty", spec.path);
  std::vector<std::string> listed;
  std::vector<std::vector<std::string>> chains;
  chains.reserve(dict.size());
  size_t missing = 0;
  for (const auto& v : dict) {
    auto it = rows.find(v);
    if (it == rows.end()) {
      if (++missing <= kListedMissing) listed.push_back(v);
      continue;
    }
    chains.push_back(it->second);
  }
  if (missing) {
    return Fail(ErrorCode::BAD_INPUT,
                "column {}: {} distinct value(s) are not in hierarchy file {}{}: {}", column,
                missing, spec.path, missing > kListedMissing ? ", the first of them" : "",
                QuoteValues(listed));
  }
  return chains;
}

std::string FormatNumber(double v) {
  if (std::floor(v) == v && std::fabs(v) < 1e15)
    return fmt::format("{}", static_cast<long long>(v));
  return fmt::format("{}", v);
}

Result<std::vector<std::vector<std::string>>> IntervalChains(const HierarchySpec& spec,
                                                             const std::vector<std::string>& dict,
                                                             const std::string& column) {
  if (spec.widths.empty()) {
    return Fail(ErrorCode::BAD_INPUT, "column {}: intervals need at least one width", column);
  }
  for (size_t i = 0; i < spec.widths.size(); ++i) {
    double w = spec.widths[i];
    if (!(w > 0))
      return Fail(ErrorCode::BAD_INPUT, "column {}: interval widths must be positive", column);
    if (i > 0) {
      double ratio = w / spec.widths[i - 1];
      if (ratio < 1 || std::fabs(ratio - std::round(ratio)) > 1e-9) {
        return Fail(ErrorCode::BAD_INPUT,
                    "column {}: each interval width must be a multiple of the previous one",
                    column);
      }
    }
  }
  if (spec.bottom_code && spec.top_code && *spec.bottom_code >= *spec.top_code) {
    return Fail(ErrorCode::BAD_INPUT, "column {}: bottom_code must be below top_code", column);
  }
  std::vector<std::vector<std::string>> chains;
  size_t bad = 0;
  for (const auto& s : dict) {
    auto x = ParseNumber(s);
    if (!x) {
      ++bad;
      continue;
    }
    std::vector<std::string> chain;
    for (double w : spec.widths) {
      if (spec.bottom_code && *x < *spec.bottom_code) {
        chain.push_back("<" + FormatNumber(*spec.bottom_code));
      } else if (spec.top_code && *x >= *spec.top_code) {
        chain.push_back(">=" + FormatNumber(*spec.top_code));
      } else {
        double lo = std::floor(*x / w) * w;
        chain.push_back(fmt::format("[{}, {})", FormatNumber(lo), FormatNumber(lo + w)));
      }
    }
    chains.push_back(std::move(chain));
  }
  if (bad) {
    return Fail(ErrorCode::BAD_INPUT, "column {}: {} distinct value(s) are not numbers", column,
                bad);
  }
  return chains;
}

Result<std::vector<std::vector<std::string>>> PrefixChains(const std::vector<std::string>& dict) {
  size_t longest = 0;
  for (const auto& v : dict) longest = std::max(longest, v.size());
  std::vector<std::vector<std::string>> chains;
  for (const auto& v : dict) {
    std::vector<std::string> chain;
    for (size_t i = 1; i <= longest; ++i) {
      size_t keep = v.size() > i ? v.size() - i : 0;
      chain.push_back(v.substr(0, keep) + std::string(v.size() - keep, '*'));
    }
    chains.push_back(std::move(chain));
  }
  return chains;
}

Result<std::vector<std::vector<std::string>>> DateChains(const HierarchySpec& spec,
                                                         const std::vector<std::string>& dict,
                                                         const std::string& column) {
  if (spec.date_levels.empty()) {
    return Fail(ErrorCode::BAD_INPUT, "column {}: date generalisation needs levels", column);
  }
  for (const auto& l : spec.date_levels) {
    if (l != "month" && l != "year" && l != "decade") {
      return Fail(ErrorCode::BAD_INPUT, "column {}: unknown date level {} (month|year|decade)",
                  column, l);
    }
  }
  std::vector<std::vector<std::string>> chains;
  size_t bad = 0;
  for (const auto& s : dict) {
    // YYYY-MM-DD, optionally followed by a time.
    bool ok = s.size() >= 10 && s[4] == '-' && s[7] == '-';
    for (int i : {0, 1, 2, 3, 5, 6, 8, 9})
      ok =
          ok && s.size() > static_cast<size_t>(i) && std::isdigit(static_cast<unsigned char>(s[i]));
    if (!ok) {
      ++bad;
      continue;
    }
    std::vector<std::string> chain;
    for (const auto& l : spec.date_levels) {
      if (l == "month")
        chain.push_back(s.substr(0, 7));
      else if (l == "year")
        chain.push_back(s.substr(0, 4));
      else
        chain.push_back(s.substr(0, 3) + "0s");
    }
    chains.push_back(std::move(chain));
  }
  if (bad) {
    return Fail(ErrorCode::BAD_INPUT, "column {}: {} distinct value(s) are not dates (YYYY-MM-DD)",
                column, bad);
  }
  return chains;
}

}  // namespace

Result<Hierarchy> BuildHierarchy(const HierarchySpec& spec, const std::vector<std::string>& dict,
                                 const std::string& column) {
  std::vector<std::vector<std::string>> chains;
  switch (spec.kind) {
    case HierarchySpec::Kind::kFile: {
      CR_ASSIGN(chains, FileChains(spec, dict, column));
      break;
    }
    case HierarchySpec::Kind::kPrefix: {
      CR_ASSIGN(chains, PrefixChains(dict));
      break;
    }
    case HierarchySpec::Kind::kIntervals: {
      CR_ASSIGN(chains, IntervalChains(spec, dict, column));
      break;
    }
    case HierarchySpec::Kind::kDate: {
      CR_ASSIGN(chains, DateChains(spec, dict, column));
      break;
    }
  }
  return HierarchyFromChains(dict, chains, column);
}

}  // namespace cr::anonymize
