// A reader for the subset of protobuf text format that Google's DP test cases
// use (data/dp-tests/*.textproto): nested messages, scalar fields, repeated
// fields and [a, b] lists, numbers, strings, enum names and # comments.
#pragma once

#include <cctype>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace cr::dp::testing {

struct TextMessage;

struct TextValue {
  std::string scalar;                    // number, enum name or unquoted string
  std::shared_ptr<TextMessage> message;  // set for a nested message
};

struct TextMessage {
  std::map<std::string, std::vector<TextValue>> fields;  // repeated fields append

  const std::vector<TextValue>& All(const std::string& name) const {
    static const std::vector<TextValue> kNone;
    auto it = fields.find(name);
    return it == fields.end() ? kNone : it->second;
  }
  bool Has(const std::string& name) const { return !All(name).empty(); }
  const TextMessage& Msg(const std::string& name) const {
    const auto& v = All(name);
    if (v.empty() || !v.front().message) throw std::runtime_error("missing message " + name);
    return *v.front().message;
  }
  std::string Str(const std::string& name, const std::string& fallback = "") const {
    const auto& v = All(name);
    return v.empty() ? fallback : v.front().scalar;
  }
  double Num(const std::string& name, double fallback = 0) const {
    const auto& v = All(name);
    return v.empty() ? fallback : std::stod(v.front().scalar);
  }
  std::vector<double> Nums(const std::string& name) const {
    std::vector<double> out;
    for (const auto& v : All(name)) out.push_back(std::stod(v.scalar));
    return out;
  }
};

class TextProtoParser {
 public:
  explicit TextProtoParser(std::string text) : s_(std::move(text)) {}

  TextMessage Parse() {
    TextMessage root = Body(/*top=*/true);
    return root;
  }

 private:
  void Skip() {
    for (;;) {
      while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
      if (i_ < s_.size() && s_[i_] == '#') {
        while (i_ < s_.size() && s_[i_] != '\n') ++i_;
        continue;
      }
      return;
    }
  }
  bool Peek(char c) {
    Skip();
    return i_ < s_.size() && s_[i_] == c;
  }
  void Expect(char c) {
    if (!Peek(c)) throw std::runtime_error(std::string("expected '") + c + "' at offset " + std::to_string(i_));
    ++i_;
  }
  std::string Word() {
    Skip();
    size_t start = i_;
    while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '_' ||
                              s_[i_] == '.' || s_[i_] == '-' || s_[i_] == '+')) {
      ++i_;
    }
    if (start == i_) throw std::runtime_error("expected a name or number at offset " + std::to_string(i_));
    return s_.substr(start, i_ - start);
  }
  std::string Scalar() {
    if (Peek('"')) {
      ++i_;
      std::string out;
      while (i_ < s_.size() && s_[i_] != '"') {
        if (s_[i_] == '\\' && i_ + 1 < s_.size()) ++i_;
        out.push_back(s_[i_++]);
      }
      Expect('"');
      return out;
    }
    return Word();
  }
  TextMessage Body(bool top) {
    TextMessage m;
    for (;;) {
      Skip();
      if (i_ >= s_.size()) {
        if (!top) throw std::runtime_error("unterminated message");
        return m;
      }
      if (Peek('}')) {
        if (top) throw std::runtime_error("unbalanced '}'");
        ++i_;
        return m;
      }
      std::string name = Word();
      auto& values = m.fields[name];
      if (Peek('{')) {
        ++i_;
        values.push_back({"", std::make_shared<TextMessage>(Body(false))});
        continue;
      }
      Expect(':');
      if (Peek('{')) {
        ++i_;
        values.push_back({"", std::make_shared<TextMessage>(Body(false))});
      } else if (Peek('[')) {
        ++i_;
        while (!Peek(']')) {
          values.push_back({Scalar(), nullptr});
          if (Peek(',')) ++i_;
        }
        Expect(']');
      } else {
        values.push_back({Scalar(), nullptr});
      }
    }
  }

  std::string s_;
  size_t i_ = 0;
};

}  // namespace cr::dp::testing
