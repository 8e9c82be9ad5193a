// Helpers for the query unit tests: a loaded test spec with real key files,
// and the query files of tests/sql/ read as data.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <ostream>
#include <string>
#include <vector>

#include "crypto/crypto.h"
#include "query/query_spec.h"
#include "spec/spec.h"
#include "testing/temp_dir.h"

namespace cr::testing {

// Reads tests/sql/NAME: one query per line, '#' comments and blank lines
// skipped, the two characters "\n" standing for a newline.
inline std::vector<std::string> ReadSqlFile(const std::string& name) {
  std::ifstream in(std::string(CLEANROOM_SOURCE_DIR) + "/tests/sql/" + name);
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::string q;
    for (size_t i = 0; i < line.size(); ++i) {
      if (line[i] == '\\' && i + 1 < line.size() && line[i + 1] == 'n') {
        q += '\n';
        ++i;
      } else {
        q += line[i];
      }
    }
    out.push_back(q);
  }
  return out;
}

// One line of a tests/sql/ case file: "SQL | CODE | reason fragment". The
// code and fragment are empty on lines without them (accepted.txt).
struct SqlCase {
  int line = 0;  // 1-based line number in the file, for test names and messages
  std::string sql;
  std::string code;
  std::string reason;
};

inline void PrintTo(const SqlCase& c, std::ostream* os) { *os << "line " << c.line << ": " << c.sql; }

// Reads tests/sql/NAME as cases (same comments and "\n" as ReadSqlFile). The
// last two " | "-separated fields are the expected code and reason fragment.
inline std::vector<SqlCase> ReadSqlCases(const std::string& name) {
  std::ifstream in(std::string(CLEANROOM_SOURCE_DIR) + "/tests/sql/" + name);
  EXPECT_TRUE(in.good()) << name;
  std::vector<SqlCase> out;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.empty() || line[0] == '#') continue;
    SqlCase c;
    c.line = n;
    size_t last = line.rfind(" | ");
    size_t mid = last == std::string::npos || last == 0 ? std::string::npos : line.rfind(" | ", last - 1);
    std::string sql = line;
    if (mid != std::string::npos) {
      sql = line.substr(0, mid);
      c.code = line.substr(mid + 3, last - mid - 3);
      c.reason = line.substr(last + 3);
    }
    for (size_t i = 0; i < sql.size(); ++i) {
      if (sql[i] == '\\' && i + 1 < sql.size() && sql[i + 1] == 'n') {
        c.sql += '\n';
        ++i;
      } else {
        c.sql += sql[i];
      }
    }
    out.push_back(std::move(c));
  }
  return out;
}

// Writes keys and the spec into a temporary folder and loads it.
class SpecHolder {
 public:
  explicit SpecHolder(const char* spec_text = kQuerySpec) {
    EXPECT_TRUE(crypto::Init());
    std::filesystem::create_directories(dir_ / "keys");
    for (const char* name : {"acme", "newsco", "analyst"}) {
      auto id = crypto::Identity::Generate();
      EXPECT_TRUE(crypto::WriteIdentityFiles(id, dir_ / "keys", name));
    }
    Spit(dir_ / "spec.yaml", spec_text);
    auto s = spec::Load(dir_ / "spec.yaml");
    EXPECT_TRUE(s) << (s ? "" : s.error().ToString());
    spec_ = std::move(*s);
  }
  const spec::Spec& spec() const { return spec_; }

 private:
  TempDir dir_;
  spec::Spec spec_;
};

}  // namespace cr::testing
