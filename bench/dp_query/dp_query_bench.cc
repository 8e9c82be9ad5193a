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

#include "common/files.h"
#include "ratio_reporter.h"
#include "crypto/crypto.h"
#include "demo/campaign_spec.h"
#include "demo/generator.h"
#include "engine/engine.h"
#include "ingest/ingest.h"
#include "ingest/prepare.h"
#include "query/service.h"
#include "room/key_store.h"
#include "room_passphrase.h"
#include "room/room.h"
#include "spec/spec.h"

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

// Builds (once per --dir) the room with both datasets ingested, and the same
// Parquet bytes in plain files for the baseline.
void SetUpRoom() {
  Check(cr::crypto::Init(), "sodium");
  Check(cr::bench::UseRoomPassphrase(g_dir), "passphrase");
  if (cr::PathExists(D("room/catalog.json")) && cr::PathExists(D("purchases.parquet"))) return;
  std::filesystem::remove_all(D("room"));
  for (const char* name : {"acme", "newsco"}) {
    if (!cr::PathExists(D(std::string(name) + ".key"))) {
      Check(cr::crypto::WriteIdentityFiles(cr::crypto::Identity::Generate(), g_dir, name), "keygen");
    }
  }
  if (!cr::PathExists(D("shared.secret"))) Check(cr::crypto::WriteNewSharedSecret(D("shared.secret")), "secret");
  // The demo spec with a budget large enough for every repetition.
  std::string text = cr::demo::CampaignSpec({"bench-dp-query", "benchmark", ""});
  const std::string threshold = "  min_distinct_units: 50\n";
  text.insert(text.find(threshold) + threshold.size(),
              "  dp: {epsilon: 1000000, delta: 1.0e-6, max_groups_per_unit: 4, "
              "max_query_epsilon: 2}\n");
  Check(cr::WriteFileAtomic(D("spec.yaml"), text), "spec");
  auto spec = cr::spec::Load(D("spec.yaml"));
  Check(spec ? cr::Ok() : cr::Status(std::unexpected(spec.error())), "spec load");
  cr::room::InitOptions init_options;
  init_options.key_store.kind = cr::room::KeyStoreKind::kPassphrase;
  auto init = cr::room::Room::Init(D("room"), D("spec.yaml"), init_options);
  Check(init ? cr::Ok() : cr::Status(std::unexpected(init.error())), "room init");
  std::vector<std::string> sigs;
  for (const char* name : {"acme", "newsco"}) {
    auto id = cr::crypto::Identity::Load(D(std::string(name) + ".key"));
    auto sig = cr::spec::Sign(*spec, *id);
    std::string path = D(std::string("spec.") + name + ".sig");
    Check(cr::WriteFileAtomic(path, cr::spec::SignatureToJson(*sig)), "sig");
    sigs.push_back(path);
  }
  {
    auto room = cr::room::Room::Open(D("room"));
    Check(room->Activate(sigs), "activate");
  }
  cr::demo::GeneratorOptions g;
  g.people = g_people;
  g.impressions = g_impressions;
  g.purchases = g_purchases;
  fmt::print("generating {} impressions and {} purchases...\n", g_impressions, g_purchases);
  Check(cr::demo::WriteImpressionsCsv(g, D("impressions.csv")), "impressions.csv");
  Check(cr::demo::WritePurchasesCsv(g, D("purchases.csv")), "purchases.csv");
  struct Job { const char* dataset; const char* owner; };
  for (Job j : {Job{"impressions", "newsco"}, Job{"purchases", "acme"}}) {
    cr::ingest::PrepareOptions o;
    o.spec_path = D("spec.yaml");
    o.dataset = j.dataset;
    o.input = D(std::string(j.dataset) + ".csv");
    o.key_path = D(std::string(j.owner) + ".key");
    o.secret_path = D("shared.secret");
    o.room_pub = cr::room::RoomPubPath(D("room"));
    o.out = D(std::string(j.dataset) + ".crpkg");
    std::filesystem::remove(o.out);
    fmt::print("preparing {}...\n", j.dataset);
    auto rep = cr::ingest::Prepare(o);
    Check(rep ? cr::Ok() : cr::Status(std::unexpected(rep.error())), "prepare");
    auto room = cr::room::Room::Open(D("room"));
    auto ing = cr::ingest::Ingest(*room, o.out);
    Check(ing ? cr::Ok() : cr::Status(std::unexpected(ing.error())), "ingest");
    // The baseline reads exactly the bytes the room decrypts.
    auto mem = room->Decrypt(j.dataset);
    Check(mem ? cr::Ok() : cr::Status(std::unexpected(mem.error())), "decrypt");
    auto size = mem->Size();
    std::string bytes;
    Check(mem->ReadAt(0, *size, &bytes), "read");
    Check(cr::WriteFileAtomic(D(std::string(j.dataset) + ".parquet"), bytes), "parquet");
    std::filesystem::remove(o.input);
    std::filesystem::remove(o.out);
  }
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
  static int64_t n = 0;
  for (auto _ : state) {
    // An identical query would be the stored answer at no cost: each run asks
    // a different epsilon (1 + n * 1e-9) so every one is computed afresh.
    req.epsilon = 1 + static_cast<double>(++n) * 1e-9;
    auto room = cr::room::Room::Open(D("room"));
    auto out = cr::query::Run(*room, *acme, req);
    if (!out || out->result.rows.empty()) {
      state.SkipWithError(out ? "nothing released" : out.error().ToString().c_str());
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
