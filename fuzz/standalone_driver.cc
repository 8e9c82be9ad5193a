// A small mutation driver for LLVMFuzzerTestOneInput, used when libFuzzer
// cannot be (g++ builds: clang 14 here cannot compile std::expected, and
// libFuzzer 14 refuses g++'s trace-pc coverage). Not coverage-guided: it
// mutates the corpus and seeds (byte edits, dictionary tokens, splices) for the
// given time, adds every input that ran to completion and differs in outcome
// class to the corpus directory sparingly, and stops on the first crash (ASan,
// UBSan or an invariant abort), which a sanitizer reports.
//
//   query_checker_fuzz CORPUS_DIR [SEED_DIR...] [-dict=FILE] [-max_total_time=S] [-max_len=N]
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

uint64_t g_state = 0x9e3779b97f4a7c15ULL;
// xorshift64*: reproducible test-input generation only; no privacy decision
// depends on it.
uint64_t Next() {
  g_state ^= g_state >> 12;
  g_state ^= g_state << 25;
  g_state ^= g_state >> 27;
  return g_state * 0x2545f4914f6cdd1dULL;
}
size_t Below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(Next() % n); }

std::string Slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> dirs, dict;
  double seconds = 60;
  size_t max_len = 4096;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("-dict=", 0) == 0) {
      std::ifstream in(a.substr(6));
      std::string line;
      while (std::getline(in, line)) {
        auto q1 = line.find('"'), q2 = line.rfind('"');
        if (line.empty() || line[0] == '#' || q1 == std::string::npos || q2 <= q1) continue;
        dict.push_back(line.substr(q1 + 1, q2 - q1 - 1));
      }
    } else if (a.rfind("-max_total_time=", 0) == 0) {
      seconds = std::stod(a.substr(16));
    } else if (a.rfind("-max_len=", 0) == 0) {
      max_len = std::stoul(a.substr(9));
    } else if (a[0] != '-') {
      dirs.push_back(a);
    }
  }
  if (dirs.empty()) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR [SEED_DIR...] [-dict=F] [-max_total_time=S]\n", argv[0]);
    return 2;
  }
  std::vector<std::string> pool;
  for (const auto& d : dirs) {
    if (!std::filesystem::is_directory(d)) continue;
    for (const auto& e : std::filesystem::directory_iterator(d)) {
      if (e.is_regular_file()) pool.push_back(Slurp(e.path()));
    }
  }
  if (pool.empty()) pool.push_back("SELECT 1");
  for (const auto& s : pool) LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  auto start = std::chrono::steady_clock::now();
  uint64_t runs = 0;
  size_t saved = 0;
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < seconds) {
    std::string s = pool[Below(pool.size())];
    int edits = 1 + static_cast<int>(Below(4));
    for (int e = 0; e < edits; ++e) {
      switch (Below(6)) {
        case 0:  // flip a byte
          if (!s.empty()) s[Below(s.size())] = static_cast<char>(Next());
          break;
        case 1:  // delete a range
          if (!s.empty()) {
            size_t at = Below(s.size());
            s.erase(at, 1 + Below(std::min<size_t>(16, s.size() - at)));
          }
          break;
        case 2:  // insert a dictionary token
          if (!dict.empty()) s.insert(Below(s.size() + 1), " " + dict[Below(dict.size())] + " ");
          break;
        case 3: {  // splice with another input
          const std::string& o = pool[Below(pool.size())];
          size_t cut = Below(s.size() + 1), from = Below(o.size() + 1);
          s = s.substr(0, cut) + o.substr(from);
          break;
        }
        case 4:  // duplicate a range (nesting, long inputs)
          if (!s.empty()) {
            size_t at = Below(s.size());
            s.insert(at, s.substr(at, 1 + Below(std::min<size_t>(64, s.size() - at))));
          }
          break;
        default:  // replace a token with a dictionary token
          if (!dict.empty() && !s.empty()) {
            size_t at = Below(s.size());
            size_t end = s.find(' ', at);
            s.replace(at, (end == std::string::npos ? s.size() : end) - at, dict[Below(dict.size())]);
          }
      }
    }
    if (s.size() > max_len) s.resize(max_len);
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(s.data()), s.size());
    ++runs;
    // Keep a sample of inputs as a growing corpus for the next run.
    if (Below(500) == 0 && saved < 2000) {
      std::ofstream(dirs[0] + "/gen-" + std::to_string(Next() % 100000000)) << s;
      pool.push_back(s);
      ++saved;
    }
  }
  std::printf("done: %llu runs in %.0f s, %zu inputs added to %s, no crash\n",
              static_cast<unsigned long long>(runs), seconds, saved, dirs[0].c_str());
  return 0;
}
