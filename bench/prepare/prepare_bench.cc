// prepare vs plain DuckDB, side by side in one run: the same generated CSV of
// impressions (email, campaign, shown_at, cost, device) converted to Parquet by
// DuckDB's COPY, and turned into a signed, encrypted, pseudonymised package by
// cleanroom's prepare. Also ingest throughput. Prints the ratio.
//
//   build/bin/prepare_bench [--rows=N] [--people=N] [--dir=DIR] [benchmark flags]
// Defaults: 10,000,000 rows over 2,000,000 people in a temporary folder.
#include <benchmark/benchmark.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>

#include <fmt/core.h>

#include "common/files.h"
#include "ratio_reporter.h"
#include "crypto/crypto.h"
#include "demo/generator.h"
#include "engine/engine.h"
#include "ingest/ingest.h"
#include "ingest/prepare.h"
#include "room/key_store.h"
#include "room/room.h"
#include "spec/spec.h"

namespace {

int64_t g_rows = 10'000'000;
int64_t g_people = 2'000'000;
std::string g_dir;

const char* kSpec = R"(collaboration: bench-prepare
parties:
  pub: {public_key: pub.pub, abilities: [contribute, receive_results]}
datasets:
  impressions:
    owner: pub
    privacy_unit_column: email
    columns:
      email:    {type: string, role: join_key, normalize: email}
      campaign: {type: string, role: dimension}
      shown_at: {type: timestamp, role: dimension}
      cost:     {type: double, role: metric, bounds: [0, 5]}
    rule: {kind: aggregation, aggregates: {cost: [sum]}, receivers: [pub]}
)";

void Check(const cr::Status& st, const char* what) {
  if (!st) {
    fmt::print(stderr, "{}: {}\n", what, st.error().ToString());
    std::exit(1);
  }
}

uint64_t FileSize(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

void SetUpData() {
  Check(cr::crypto::Init(), "init");
  std::string csv = g_dir + "/impressions.csv";
  if (!cr::PathExists(csv)) {
    cr::demo::GeneratorOptions o;
    o.impressions = g_rows;
    o.people = g_people;
    Check(cr::demo::WriteImpressionsCsv(o, csv), "generate");
  }
  if (!cr::PathExists(g_dir + "/pub.key")) {
    Check(cr::crypto::WriteIdentityFiles(cr::crypto::Identity::Generate(), g_dir, "pub"), "keygen");
    Check(cr::crypto::WriteNewSharedSecret(g_dir + "/shared.secret"), "secret");
    Check(cr::WriteFileAtomic(g_dir + "/spec.yaml", kSpec), "spec");
  }
}

void BM_PlainDuckDbCsvToParquet(benchmark::State& state) {
  std::string csv = g_dir + "/impressions.csv", out = g_dir + "/plain.parquet";
  for (auto _ : state) {
    auto db = cr::engine::Database::Open();
    Check(db ? cr::Ok() : std::unexpected(db.error()), "open");
    Check(db->Execute(fmt::format("COPY (SELECT * FROM read_csv({})) TO {} (FORMAT parquet)",
                                  cr::engine::QuoteLiteral(csv), cr::engine::QuoteLiteral(out))),
          "copy");
  }
  state.counters["input_MB"] = FileSize(csv) / 1e6;
  state.counters["output_MB"] = FileSize(out) / 1e6;
  state.counters["rows/s"] = benchmark::Counter(static_cast<double>(g_rows) * state.iterations(),
                                                benchmark::Counter::kIsRate);
}

void BM_CleanroomPrepare(benchmark::State& state) {
  cr::ingest::PrepareOptions o;
  o.spec_path = g_dir + "/spec.yaml";
  o.dataset = "impressions";
  o.input = g_dir + "/impressions.csv";
  o.key_path = g_dir + "/pub.key";
  o.secret_path = g_dir + "/shared.secret";
  o.out = g_dir + "/impressions.crpkg";
  std::string room = g_dir + "/room";
  if (!cr::PathExists(room)) {
    // Only room.pub matters here; the key is sealed as in any room.
    Check(cr::WriteFileAtomic(g_dir + "/room.passphrase", "prepare benchmark passphrase\n", 0600), "passphrase");
    cr::room::UsePassphraseFile(g_dir + "/room.passphrase");
    cr::room::InitOptions init_options;
    init_options.key_store.kind = cr::room::KeyStoreKind::kPassphrase;
    auto init = cr::room::Room::Init(room, o.spec_path, init_options);
    Check(init ? cr::Ok() : std::unexpected(init.error()), "room");
  }
  o.room_pub = cr::room::RoomPubPath(room);
  for (auto _ : state) {
    auto r = cr::ingest::Prepare(o);
    Check(r ? cr::Ok() : std::unexpected(r.error()), "prepare");
  }
  state.counters["package_MB"] = FileSize(o.out) / 1e6;
  state.counters["rows/s"] = benchmark::Counter(static_cast<double>(g_rows) * state.iterations(),
                                                benchmark::Counter::kIsRate);
}

// Verifying and storing a package (signature pass, decryption into memory,
// schema and row-count checks through DuckDB, copy into the room).
void BM_CleanroomIngest(benchmark::State& state) {
  std::string pkg = g_dir + "/impressions.crpkg";
  std::string spec_path = g_dir + "/spec.yaml";
  int i = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::string room_dir = fmt::format("{}/ingest-room-{}", g_dir, i++);
    std::filesystem::remove_all(room_dir);
    // A room whose key the package is sealed to: reuse the prepare room's keys.
    std::filesystem::copy(g_dir + "/room", room_dir, std::filesystem::copy_options::recursive);
    auto room = cr::room::Room::Open(room_dir);
    Check(room ? cr::Ok() : std::unexpected(room.error()), "open room");
    auto pub = cr::crypto::Identity::Load(g_dir + "/pub.key");
    auto spec = cr::spec::Load(spec_path);
    auto sig = cr::spec::Sign(*spec, *pub);
    Check(cr::WriteFileAtomic(room_dir + "/sig", cr::spec::SignatureToJson(*sig)), "sig");
    if (!room->active()) Check(room->Activate({room_dir + "/sig"}), "activate");
    state.ResumeTiming();
    auto r = cr::ingest::Ingest(*room, pkg);
    Check(r ? cr::Ok() : std::unexpected(r.error()), "ingest");
    state.PauseTiming();
    std::filesystem::remove_all(room_dir);
    state.ResumeTiming();
  }
  state.SetBytesProcessed(static_cast<int64_t>(FileSize(pkg)) * state.iterations());
}


}  // namespace

BENCHMARK(BM_PlainDuckDbCsvToParquet)->Unit(benchmark::kSecond)->UseRealTime()->Iterations(3);
BENCHMARK(BM_CleanroomPrepare)->Unit(benchmark::kSecond)->UseRealTime()->Iterations(3);
BENCHMARK(BM_CleanroomIngest)->Unit(benchmark::kSecond)->UseRealTime()->Iterations(3);

int main(int argc, char** argv) {
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--rows=", 7) == 0) g_rows = std::atoll(argv[i] + 7);
    else if (std::strncmp(argv[i], "--people=", 9) == 0) g_people = std::atoll(argv[i] + 9);
    else if (std::strncmp(argv[i], "--dir=", 6) == 0) g_dir = argv[i] + 6;
    else rest.push_back(argv[i]);
  }
  bool temp = g_dir.empty();
  if (temp) {
    std::string tmpl = "/tmp/cleanroom-bench-XXXXXX";
    g_dir = ::mkdtemp(tmpl.data());
  }
  if (auto st = cr::MakeDirs(g_dir); !st) {
    fmt::print(stderr, "{}\n", st.error().ToString());
    return 1;
  }
  fmt::print("prepare benchmark: {} impression rows over {} people in {}\n", g_rows, g_people, g_dir);
  SetUpData();
  int rest_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_argc, rest.data());
  cr::bench::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  auto s = reporter.seconds();
  if (s.count("BM_PlainDuckDbCsvToParquet") && s.count("BM_CleanroomPrepare")) {
    double plain = s["BM_PlainDuckDbCsvToParquet"], prep = s["BM_CleanroomPrepare"];
    fmt::print("\nplain DuckDB CSV->Parquet {:.2f} s | cleanroom prepare {:.2f} s | ratio {:.2f}x "
               "(target <= 1.50x)\n", plain, prep, prep / plain);
  }
  if (s.count("BM_CleanroomIngest")) {
    double mb = FileSize(g_dir + "/impressions.crpkg") / 1e6;
    fmt::print("cleanroom ingest {:.2f} s for {:.0f} MB: {:.0f} MB/s\n", s["BM_CleanroomIngest"],
               mb, mb / s["BM_CleanroomIngest"]);
  }
  if (temp) std::filesystem::remove_all(g_dir);
  return 0;
}
