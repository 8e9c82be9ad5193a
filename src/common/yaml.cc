#include "common/yaml.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <system_error>

namespace cr::yaml {

int LineOf(const YAML::Node& n) {
  if (!n.IsDefined()) return 0;
  YAML::Mark m = n.Mark();
  return m.is_null() ? 0 : m.line + 1;
}

std::string Where(const YAML::Mark& m) {
  if (m.is_null()) return "";
  return fmt::format(" (line {}, column {})", m.line + 1, m.column + 1);
}

std::string Join(std::string_view path, std::string_view key) {
  if (path.empty()) return std::string(key);
  return fmt::format("{}.{}", path, key);
}

std::string_view KindOf(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return n.Tag() == "!" ? "a quoted string" : "a scalar";
    case YAML::NodeType::Null:
      return "nothing";
    default:
      return "nothing";
  }
}

bool PlainOrTagged(const YAML::Node& n, std::string_view core_tag) {
  return n.Tag() == "?" || n.Tag() == core_tag;
}

std::unexpected<Error> Reader::InvalidMessage(std::string_view path, const YAML::Node& at,
                                              std::string message) const {
  std::string msg = fmt::format("{}: {}", path.empty() ? document_ : path, message);
  if (int line = LineOf(at); line > 0) msg += fmt::format(" (line {})", line);
  return std::unexpected(Error{code_, std::move(msg)});
}

Result<YAML::Node> Reader::LoadOne(std::string_view text) const {
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(text));
  } catch (const YAML::Exception& e) {
    return Fail(code_, "{}: not valid YAML: {}{}", document_, e.msg, Where(e.mark));
  }
  if (docs.empty()) return Fail(code_, "{}: the file is empty", document_);
  if (docs.size() > 1) {
    return Fail(code_, "{}: holds {} YAML documents; expected one", document_, docs.size());
  }
  return docs[0];
}

std::unexpected<Error> Reader::FromException(const YAML::Exception& e) const {
  return Fail(code_, "{}: {}{}", document_, e.msg, Where(e.mark));
}

Result<std::string> Reader::GetString(const YAML::Node& n, std::string_view path) const {
  if (!n.IsScalar()) return Invalid(path, n, "expected a string, found {}", KindOf(n));
  return n.Scalar();
}

Result<int64_t> Reader::GetInt(const YAML::Node& n, std::string_view path) const {
  if (!n.IsScalar() || !PlainOrTagged(n, "tag:yaml.org,2002:int")) {
    return Invalid(path, n, "expected an integer, found {}", KindOf(n));
  }
  std::string_view s = n.Scalar();
  if (s.starts_with('+')) s.remove_prefix(1);
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || ptr != s.data() + s.size()) {
    return Invalid(path, n, "expected an integer");
  }
  return v;
}

Result<double> Reader::GetNumber(const YAML::Node& n, std::string_view path) const {
  if (!n.IsScalar() ||
      !(PlainOrTagged(n, "tag:yaml.org,2002:float") || n.Tag() == "tag:yaml.org,2002:int")) {
    return Invalid(path, n, "expected a number, found {}", KindOf(n));
  }
  std::string_view s = n.Scalar();
  if (s.starts_with('+')) s.remove_prefix(1);
  // Only decimal notation: no .inf/.nan, no hex floats.
  bool chars_ok = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-';
  });
  double v = 0;
  if (chars_ok) {
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    chars_ok = ec == std::errc{} && ptr == s.data() + s.size() && std::isfinite(v);
  }
  if (!chars_ok) return Invalid(path, n, "expected a finite number");
  return v;
}

Result<bool> Reader::GetBool(const YAML::Node& n, std::string_view path) const {
  if (n.IsScalar() && PlainOrTagged(n, "tag:yaml.org,2002:bool")) {
    const std::string& s = n.Scalar();
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
  }
  return Invalid(path, n, "expected true or false");
}

Result<std::vector<std::string>> Reader::GetStringList(const YAML::Node& n, std::string_view path,
                                                       bool allow_empty) const {
  if (!n.IsSequence()) return Invalid(path, n, "expected a list, found {}", KindOf(n));
  std::vector<std::string> out;
  for (const auto& item : n) {
    if (!item.IsScalar()) return Invalid(path, item, "expected a list of strings");
    if (std::find(out.begin(), out.end(), item.Scalar()) != out.end()) {
      return Invalid(path, item, "'{}' is listed twice", item.Scalar());
    }
    out.push_back(item.Scalar());
  }
  if (out.empty() && !allow_empty) return Invalid(path, n, "must not be empty");
  return out;
}

Result<Map> Reader::ReadMap(const YAML::Node& node, std::string path,
                            std::initializer_list<std::string_view> allowed) const {
  if (!node.IsMap()) return Invalid(path, node, "expected a mapping, found {}", KindOf(node));
  Map m;
  m.reader_ = *this;
  m.path_ = std::move(path);
  m.node_ = node;
  for (auto it = node.begin(); it != node.end(); ++it) {
    // yaml-cpp iterators hand out temporaries: copy the handles.
    YAML::Node key = it->first;
    if (!key.IsScalar()) return Invalid(m.path_, key, "mapping keys must be plain names");
    const std::string& k = key.Scalar();
    if (m.Find(k)) return Invalid(m.Path(k), key, "duplicate key");
    if (allowed.size() > 0 && std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
      std::string expected;
      for (auto a : allowed) expected += (expected.empty() ? "" : ", ") + std::string(a);
      return Invalid(m.Path(k), key, "unknown key (expected one of: {})", expected);
    }
    m.entries_.push_back(Map::Entry{k, key, it->second});
  }
  return m;
}

const Map::Entry* Map::Find(std::string_view key) const {
  for (const auto& e : entries_) {
    if (e.key == key) return &e;
  }
  return nullptr;
}

std::optional<YAML::Node> Map::Get(std::string_view key) const {
  const Entry* e = Find(key);
  if (!e) return std::nullopt;
  return e->value;
}

Result<YAML::Node> Map::Require(std::string_view key) const {
  const Entry* e = Find(key);
  if (!e) return reader_.Invalid(Path(key), node_, "required field is missing");
  return e->value;
}

}  // namespace cr::yaml
