// The differentially private query path vs plain DuckDB, side by side in one
// run: "buyers and revenue by campaign" over impressions x purchases.
// Baseline: the SQL on plain DuckDB over the same data (the packages' Parquet,
// decrypted once to disk), no privacy. cleanroom: query::Run with epsilon 1,
// as `cleanroom query --epsilon 1` does it -- rule checks, the budget charge,
// decryption into memory, the contribution-bounding SQL, noise per cell,
// partition selection, the stored answer, sealing, audit.
//
//   build/bin/dp_query_bench [--impressions=N] [--purchases=N] [--people=N] [--dir=DIR]
// Defaults: 10,000,000 impressions x 2,000,000 purchases over 2,000,000 people.
// With --dir the room and files are kept and reused by the next run.
#include <benchmark/benchmark.h>
#include <sys/stat.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>

#include <fmt/core.h>

#include "bench_room.h"
#include "common/files.h"
#include "crypto/crypto.h"
#include "ratio_reporter.h"
#include "demo/campaign_spec.h"
#include "engine/engine.h"
#include "query/service.h"
#include "room/key_store.h"
#include "room/room.h"

namespace {

int64_t g_impressions = 10'000'000;
int64_t g_purchases = 2'000'000;
int64_t g_people = 2'000'000;
std::string g_dir;

const char* kQuery =
    "SELECT i.campaign, COUNT(DISTINCT p.email) AS buyers, SUM(p.amount) AS revenue "
    "FROM impressions i JOIN purchases p ON i.email = p.email GROUP BY i.campaign";

void Check(const cr::Status& st, const char* what) {
  if (!st) {
    fmt::print(stderr, "{}: {}\n", what, st.error().ToString());
    std::exit(1);
  }
}

std::string D(const std::string& rel) { return g_dir + "/" + rel; }

// The room with both datasets ingested (built once per --dir), and the same
// Parquet bytes in plain files for the baseline.
void SetUpRoom() {
  // The demo spec with a budget large enough for every repetition.
  std::string text = cr::demo::CampaignSpec({"bench-dp-query", "benchmark", ""});
  const std::string threshold = "  min_distinct_units: 50\n";
  text.insert(text.find(threshold) + threshold.size(),
              "  dp: {epsilon: 1000000, delta: 1.0e-6, max_groups_per_unit: 4, "
              "max_query_epsilon: 2}\n");
  cr::bench::BenchRoomOptions o;
  o.dir = g_dir;
  o.spec_text = std::move(text);
  o.people = g_people;
  o.impressions = g_impressions;
  o.purchases = g_purchases;
  o.plain_parquet = true;
  Check(cr::bench::SetUpBenchRoom(o), "room");
}

void BM_PlainDuckDbParquet(benchmark::State& state) {
  std::string sql = kQuery;
  auto replace = [&](const std::string& from, const std::string& to) {
    sql.replace(sql.find(from), from.size(), to);
  };
  replace("FROM impressions", "FROM read_parquet(" + cr::engine::QuoteLiteral(D("impressions.parquet")) + ")");
  replace("JOIN purchases", "JOIN read_parquet(" + cr::engine::QuoteLiteral(D("purchases.parquet")) + ")");
  for (auto _ : state) {
    auto db = cr::engine::Database::Open();
    auto r = db->Query(sql);
    if (!r || r->row_count() == 0) state.SkipWithError("baseline query failed");
  }
}

void BM_CleanroomDpQuery(benchmark::State& state) {
  auto acme = cr::crypto::Identity::Load(D("acme.key"));
  cr::query::Request req;
  req.sql = kQuery;
  cr::query::ExecStats last;
  // An identical query would be the stored answer at no cost: each iteration
  // asks a different epsilon (1 + n * 1e-9) so every one is computed afresh.
  // n starts at a random point, so a room kept by --dir from an earlier run
  // (whose ledger holds that run's answers) does not answer from storage.
  static int64_t n = [] {
    uint32_t start = 0;
    cr::crypto::RandomBytes(&start, sizeof start);
    return static_cast<int64_t>(start % 100'000) * 1000;  // epsilon stays below 1.1
  }();
  for (auto _ : state) {
    req.epsilon = 1 + static_cast<double>(++n) * 1e-9;
    auto room = cr::room::Room::Open(D("room"));
    auto out = cr::query::Run(*room, *acme, req);
    if (!out || out->result.rows.empty() || out->cached) {
      state.SkipWithError(!out ? out.error().ToString().c_str()
                               : out->cached ? "answered from a stored answer, not computed"
                                             : "nothing released");
      break;
    }
    last = out->stats;
  }
  state.counters["decrypt_s"] = last.decrypt_seconds;
  state.counters["sql_s"] = last.query_seconds;
  state.counters["released"] = static_cast<double>(last.released_rows);
}


}  // namespace

// Five repetitions of three queries each, interleaved at random between the
// two (unless --benchmark_enable_random_interleaving=false): the ratio is of
// the median repetitions, so drift on the machine hits both sides alike.
BENCHMARK(BM_PlainDuckDbParquet)->Unit(benchmark::kSecond)->UseRealTime()->Iterations(3)->Repetitions(5);
BENCHMARK(BM_CleanroomDpQuery)->Unit(benchmark::kSecond)->UseRealTime()->Iterations(3)->Repetitions(5);

int main(int argc, char** argv) {
  std::vector<char*> rest;
  static char interleave[] = "--benchmark_enable_random_interleaving=true";
  bool interleave_given = false;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--benchmark_enable_random_interleaving", 38) == 0) interleave_given = true;
    if (std::strncmp(argv[i], "--impressions=", 14) == 0) g_impressions = std::atoll(argv[i] + 14);
    else if (std::strncmp(argv[i], "--purchases=", 12) == 0) g_purchases = std::atoll(argv[i] + 12);
    else if (std::strncmp(argv[i], "--people=", 9) == 0) g_people = std::atoll(argv[i] + 9);
    else if (std::strncmp(argv[i], "--dir=", 6) == 0) g_dir = argv[i] + 6;
    else rest.push_back(argv[i]);
  }
  bool temp = g_dir.empty();
  if (temp) {
    std::string tmpl = "/tmp/cleanroom-dpbench-XXXXXX";
    g_dir = ::mkdtemp(tmpl.data());
  }
  Check(cr::MakeDirs(g_dir), "dir");
  fmt::print("query benchmark: {} impressions x {} purchases over {} people in {}\n",
             g_impressions, g_purchases, g_people, g_dir);
  SetUpRoom();
  if (!interleave_given) rest.push_back(interleave);
  int rest_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_argc, rest.data());
  cr::bench::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  auto s = reporter.seconds();
  if (s.count("BM_PlainDuckDbParquet") && s.count("BM_CleanroomDpQuery")) {
    double plain = s["BM_PlainDuckDbParquet"], ours = s["BM_CleanroomDpQuery"];
    fmt::print("\nplain DuckDB on Parquet {:.2f} s | cleanroom query --epsilon 1 {:.2f} s | ratio "
               "{:.2f}x (target <= 1.50x; medians of 5 interleaved repetitions)\n",
               plain, ours, ours / plain);
  }
  if (temp) std::filesystem::remove_all(g_dir);
  return 0;
}
