// The strict YAML reader every config file goes through (the spec, anon.yaml):
// one document, typed scalars, no duplicate or unknown keys, errors with a field path and a line.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.h"

namespace cr::yaml {

// 1-based line of a node, 0 when it has none (an absent or synthesised node).
int LineOf(const YAML::Node& n);
// " (line L, column C)" for a yaml-cpp exception, "" when it carries no position.
std::string Where(const YAML::Mark& m);
// "path.key", or "key" at the top.
std::string Join(std::string_view path, std::string_view key);
// "a mapping", "a list", "a quoted string", "a scalar", "nothing": for messages.
std::string_view KindOf(const YAML::Node& n);
// A number or boolean must be a plain (unquoted) scalar or carry the matching
// core tag, so `retention_days: "90"` is a type error, as it would be in JSON.
bool PlainOrTagged(const YAML::Node& n, std::string_view core_tag);

class Map;

// Reads one kind of document. Every error carries `code` (SPEC_INVALID for
// specs, BAD_INPUT for anon.yaml) and starts with the field path, or with
// `document` ("spec", "config") for the document itself.
class Reader {
 public:
  constexpr Reader(ErrorCode code, std::string_view document) : code_(code), document_(document) {}

  ErrorCode code() const { return code_; }

  // "path: message (line N)"; the line is left out when `at` has none.
  template <typename... Args>
  std::unexpected<Error> Invalid(std::string_view path, const YAML::Node& at,
                                 fmt::format_string<Args...> f, Args&&... args) const {
    return InvalidMessage(path, at, fmt::format(f, std::forward<Args>(args)...));
  }
  std::unexpected<Error> InvalidMessage(std::string_view path, const YAML::Node& at,
                                        std::string message) const;

  // Exactly one YAML document. Refuses text that is not YAML, an empty file and
  // more than one document (a second one would be silently ignored otherwise).
  Result<YAML::Node> LoadOne(std::string_view text) const;
  // An error for a yaml-cpp exception raised while walking a loaded document.
  std::unexpected<Error> FromException(const YAML::Exception& e) const;

  Result<std::string> GetString(const YAML::Node& n, std::string_view path) const;
  // Plain decimal integer (optionally signed); a quoted "5" is refused.
  Result<int64_t> GetInt(const YAML::Node& n, std::string_view path) const;
  // Plain, finite decimal number: no .inf/.nan, no hex, no quotes.
  Result<double> GetNumber(const YAML::Node& n, std::string_view path) const;
  // true/false only (any case YAML 1.2 allows); yes/no/on/off are refused.
  Result<bool> GetBool(const YAML::Node& n, std::string_view path) const;
  // A list of distinct strings.
  Result<std::vector<std::string>> GetStringList(const YAML::Node& n, std::string_view path,
                                                 bool allow_empty) const;

  // One of the spellings in `table` ((value, spelling) pairs); `what` names the
  // kind of thing for the message ("type", "rule kind").
  template <typename E, size_t N>
  Result<E> GetEnum(const YAML::Node& n, std::string_view path,
                    const std::pair<E, std::string_view> (&table)[N], std::string_view what) const {
    CR_ASSIGN(std::string s, GetString(n, path));
    std::string choices;
    for (const auto& [value, spelling] : table) {
      if (spelling == s) return value;
      choices += (choices.empty() ? "" : ", ") + std::string(spelling);
    }
    return Invalid(path, n, "unknown {} '{}' (expected one of: {})", what, s, choices);
  }

  // A mapping; `allowed` empty: any key (the keys are names the caller checks).
  Result<Map> ReadMap(const YAML::Node& node, std::string path,
                      std::initializer_list<std::string_view> allowed = {}) const;

 private:
  ErrorCode code_;
  std::string_view document_;
};

// A mapping read once, in document order. yaml-cpp 0.7 keeps duplicate keys (and
// lookups return the first), so duplicates are found by walking every entry.
class Map {
 public:
  struct Entry {
    std::string key;
    YAML::Node key_node;
    YAML::Node value;
  };

  const std::vector<Entry>& entries() const { return entries_; }
  const std::string& path() const { return path_; }
  const YAML::Node& node() const { return node_; }
  std::string Path(std::string_view key) const { return Join(path_, key); }
  bool empty() const { return entries_.empty(); }

  const Entry* Find(std::string_view key) const;
  std::optional<YAML::Node> Get(std::string_view key) const;
  // The value, or "required field is missing" against the mapping's line.
  Result<YAML::Node> Require(std::string_view key) const;

 protected:
  Map() : reader_(ErrorCode::INTERNAL, "") {}

 private:
  friend class Reader;
  Reader reader_;
  std::string path_;
  YAML::Node node_;
  std::vector<Entry> entries_;
};

}  // namespace cr::yaml
