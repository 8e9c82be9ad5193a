// Test helpers: a temporary folder removed afterwards, file snapshots, running the binary.
#pragma once

#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace cr::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "crtest-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

inline std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void Spit(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

// Every regular file under `dir` (relative path -> bytes), optionally skipping one name.
inline std::map<std::string, std::string> Snapshot(const std::string& dir,
                                                   const std::string& skip = "") {
  std::map<std::string, std::string> out;
  for (auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    auto rel = std::filesystem::relative(e.path(), dir).string();
    if (!skip.empty() && rel == skip) continue;
    out[rel] = Slurp(e.path().string());
  }
  return out;
}

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// The stable code of a failed run: from the JSON object on stderr (with
// --format json) or from the `cleanroom: error[CODE]: message` line.
inline std::string ErrorCodeOf(const RunResult& r) {
  auto j = nlohmann::json::parse(r.err, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_string()) return j["error"];
  auto at = r.err.find("cleanroom: error[");
  if (at == std::string::npos) return "";
  at += std::string("cleanroom: error[").size();
  return r.err.substr(at, r.err.find(']', at) - at);
}

// The message of a failed run, in either error format.
inline std::string ErrorMessageOf(const RunResult& r) {
  auto j = nlohmann::json::parse(r.err, nullptr, false);
  if (j.is_object() && j.contains("message") && j["message"].is_string()) return j["message"];
  auto at = r.err.find("]: ");
  return at == std::string::npos ? r.err : r.err.substr(at + 3);
}


// Runs a shell command line, capturing stdout and stderr.
inline RunResult RunShell(const std::string& cmd) {
  TempDir tmp;
  std::string full = "(" + cmd + ") >" + tmp.path() + "/out 2>" + tmp.path() + "/err </dev/null";
  int rc = std::system(full.c_str());
  RunResult r;
  r.exit_code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  r.out = Slurp(tmp.path() + "/out");
  r.err = Slurp(tmp.path() + "/err");
  return r;
}

// Quotes one shell argument.
inline std::string Q(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

}  // namespace cr::testing
