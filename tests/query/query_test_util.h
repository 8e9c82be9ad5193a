// Helpers for the query unit tests: a loaded test spec with real key files,
// and the query files of tests/sql/ read as data.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
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

// Writes keys and the spec into a temporary folder and loads it.
class SpecHolder {
 public:
  SpecHolder() {
    EXPECT_TRUE(crypto::Init());
    std::filesystem::create_directories(dir_ / "keys");
    for (const char* name : {"acme", "newsco", "analyst"}) {
      auto id = crypto::Identity::Generate();
      EXPECT_TRUE(crypto::WriteIdentityFiles(id, dir_ / "keys", name));
    }
    Spit(dir_ / "spec.yaml", kQuerySpec);
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
