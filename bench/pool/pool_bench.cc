// Pooled datasets at scale (issue 14): 1,000 contributors x 10,000 rows (10M
// rows) in one pooled dataset, each contributor's part its own encrypted file.
//
//   BM_PlainDuckDbBenchmark  baseline: the same answer on plain DuckDB over the
//                            union (one Parquet file with a contributor column,
//                            the bytes the room decrypts): per cell the total,
//                            the peers' mean, median and quartiles, and every
//                            contributor's own figure
//   BM_CleanroomBenchmark    query::Run with benchmark: decrypt the 1,000 parts
//                            into memory, mount them as one view, generated SQL
//                            with unit and contributor counts, dominance and p%,
//                            the benchmark view, one sealed copy per contributor
//   BM_IngestOnePart         one contributor re-contributes its part
//                            (prepare + ingest) into the full room
//
//   build/bin/pool_bench [--contributors=N] [--rows=N] [--dir=DIR]
// With --dir the room is kept and reused by the next run of the same sizes.
#include <benchmark/benchmark.h>
#include <fmt/core.h>
#include <fmt/format.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bench_check.h"
#include "common/files.h"
#include "crypto/crypto.h"
#include "diffcheck/unit_sets.h"
#include "engine/closer.h"
#include "engine/engine.h"
#include "ingest/ingest.h"
#include "ingest/prepare.h"
#include "query/service.h"
#include "ratio_reporter.h"
#include "room/cache.h"
#include "room/room.h"
#include "room_passphrase.h"
#include "spec/spec.h"

namespace {

int64_t g_contributors = 1000;
int64_t g_rows = 10000;
std::string g_dir;

// The analyst's question; --benchmark adds each contributor's own figure.
const char* kQuery =
    "SELECT category, department, SUM(amount) AS spend FROM it_spend GROUP BY category, department";

using cr::bench::Check;
using cr::bench::Must;

std::string D(const std::string& rel) { return g_dir + "/" + rel; }
std::string Name(int64_t i) { return fmt::format("c{:04d}", i); }

std::string SpecText() {
  std::string s = "collaboration: pool-bench\nparties:\n";
  for (int64_t i = 0; i < g_contributors; ++i) {
    s += fmt::format(
        "  {0}: {{public_key: keys/{0}.pub, abilities: [contribute, receive_results]}}\n", Name(i));
  }
  s += "  analyst: {public_key: keys/analyst.pub, abilities: [query, receive_results]}\n"
       "privacy: {unit: budget_line, min_distinct_units: 10}\n"
       "datasets:\n  it_spend:\n    contributors: [";
  for (int64_t i = 0; i < g_contributors; ++i) s += (i ? ", " : "") + Name(i);
  s += "]\n    privacy_unit_column: line_id\n    columns:\n"
       "      line_id: {type: string, role: join_key}\n"
       "      category: {type: string, role: dimension}\n"
       "      department: {type: string, role: dimension}\n"
       "      amount: {type: double, role: metric, bounds: [0, 1000]}\n"
       "    rule:\n      kind: aggregation\n      aggregates: {amount: [sum, avg]}\n"
       "      min_contributors: 3\n      dominance: {n: 1, k: 0.6}\n      p_percent: 10\n"
       "      receivers: [analyst";
  for (int64_t i = 0; i < g_contributors; ++i) s += ", " + Name(i);
  s += "]\n";
  return s;
}

// Contributor i's raw part: 10 categories x 5 departments, amounts in [0, 1000).
void WritePart(cr::engine::Database& db, int64_t i, const std::string& path, int64_t salt) {
  Check(db.Execute(fmt::format(
            "COPY (SELECT '{0}-' || range || '-{2}' AS line_id, 'cat' || (range % 10) AS category, "
            "'dep' || (range % 5) AS department, (hash(range * 7919 + {1}) % 100000) / 100.0 AS "
            "amount FROM range({3})) TO {4} (FORMAT parquet)",
            Name(i), i + salt * 1000003, salt, g_rows, cr::engine::QuoteLiteral(path))),
        "write part");
}

// The real party-side path: ingest::Prepare signs and encrypts the part.
cr::Result<cr::ingest::PrepareReport> PreparePart(cr::engine::Database& db, int64_t i, int64_t salt,
                                                  const std::string& out, int threads) {
  std::string input = D(fmt::format("in-{}.parquet", Name(i)));
  WritePart(db, i, input, salt);
  cr::ingest::PrepareOptions o;
  o.spec_path = D("spec.yaml");
  o.dataset = "it_spend";
  o.input = input;
  o.key_path = D("keys/" + Name(i) + ".key");
  o.secret_path = D("shared.secret");
  o.room_pub = cr::room::RoomPubPath(D("room"));
  o.out = out;
  o.threads = threads;
  auto r = cr::ingest::Prepare(o);
  std::filesystem::remove(input);
  return r;
}

// Keys, the spec signed by every party, the room initialised and activated.
void SetUpParties() {
  std::filesystem::remove_all(D("room"));
  std::filesystem::remove_all(D("keys"));
  std::filesystem::remove(D("pool-room.done"));
  Check(cr::MakeDirs(D("keys")), "keys");
  for (int64_t i = 0; i <= g_contributors; ++i) {
    std::string name = i < g_contributors ? Name(i) : "analyst";
    Check(cr::crypto::WriteIdentityFiles(cr::crypto::Identity::Generate(), D("keys"), name),
          "keygen");
  }
  Check(cr::WriteFileAtomic(D("spec.yaml"), SpecText()), "spec");
  Check(cr::crypto::WriteNewSharedSecret(D("shared.secret")), "secret");
  auto spec = Must(cr::spec::Load(D("spec.yaml")), "spec load");
  cr::room::InitOptions init;
  init.key_store.kind = cr::room::KeyStoreKind::kPassphrase;
  Must(cr::room::Room::Init(D("room"), D("spec.yaml"), init), "room init");
  std::vector<std::string> sigs;
  for (const auto& p : spec.parties) {
    auto id = cr::crypto::Identity::Load(D("keys/" + p.name + ".key"));
    auto sig = cr::spec::Sign(spec, *id);
    sigs.push_back(D("sig-" + p.name + ".json"));
    Check(cr::WriteFileAtomic(sigs.back(), cr::spec::SignatureToJson(*sig)), "sign");
  }
  auto room = Must(cr::room::Room::Open(D("room")), "open");
  Check(room.Activate(sigs), "activate");
  for (const auto& s : sigs) std::filesystem::remove(s);
}

// The room with every part ingested, and the union in plain Parquet. Every
// part is a real contribution: written, prepared (pseudonymised, encrypted,
// signed by its contributor) and ingested with every check. Parts are
// prepared on a second thread while the first ingests, and a setup that was
// stopped resumes with the parts not yet in the room (kept by --dir).
void SetUpRoom() {
  Check(cr::bench::UseRoomPassphrase(g_dir), "passphrase");
  const std::string marker = D("pool-room.done"), sizes = D("pool-room.sizes");
  const std::string want = fmt::format("{} {}\n", g_contributors, g_rows);
  if (cr::PathExists(marker) && cr::ReadFile(marker).value_or("") == want) return;
  if (!cr::PathExists(sizes) || cr::ReadFile(sizes).value_or("") != want ||
      !cr::PathExists(D("room"))) {
    fmt::print("setting up {} contributors x {} rows...\n", g_contributors, g_rows);
    SetUpParties();
    Check(cr::WriteFileAtomic(sizes, want), "sizes");
  }
  auto spec = Must(cr::spec::Load(D("spec.yaml")), "spec load");
  auto room = Must(cr::room::Room::Open(D("room")), "open");
  std::vector<int64_t> todo;
  {
    std::set<std::string> done;
    for (const auto* part : room.Parts("it_spend")) done.insert(part->owner);
    for (int64_t i = 0; i < g_contributors; ++i) {
      if (!done.count(Name(i))) todo.push_back(i);
    }
    if (!done.empty()) fmt::print("resuming: {} parts in the room\n", done.size());
  }
  auto started = std::chrono::steady_clock::now();
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> ready;  // prepared packages, in order
  constexpr size_t kAhead = 4;
  std::jthread preparer([&] {
    auto db = Must(cr::engine::Database::Open(), "duckdb");
    for (int64_t i : todo) {
      std::string pkg = D(fmt::format("part-{}.crpkg", Name(i)));
      Must(PreparePart(db, i, 0, pkg, 1), "prepare");
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return ready.size() < kAhead; });
      ready.push_back(pkg);
      cv.notify_all();
    }
  });
  for (size_t n = 0; n < todo.size(); ++n) {
    std::string pkg;
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return !ready.empty(); });
      pkg = ready.front();
      ready.pop_front();
      cv.notify_all();
    }
    Must(cr::ingest::Ingest(room, pkg), "ingest");
    std::filesystem::remove(pkg);
    if ((n + 1) % 100 == 0 || n + 1 == todo.size()) {
      fmt::print("  {} parts ingested ({:.0f} s)\n", n + 1,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    }
  }
  preparer.join();
  // The baseline's union: every part's decrypted Parquet with its contributor
  // (one read_parquet over the list, as the room mounts it: a UNION ALL of
  // 1,000 SELECTs is deeper than DuckDB's parser allows).
  auto db = cr::engine::Database::Open();
  std::vector<cr::engine::MemFile> files;
  std::vector<std::string> paths, contributors;
  for (const auto* part : room.Parts("it_spend")) {
    auto mem = Must(room.Decrypt(part->name), "decrypt");
    paths.push_back(cr::engine::QuoteLiteral(mem.path()));
    contributors.push_back(
        fmt::format("{}", spec.FindDataset("it_spend")->ContributorIndex(part->owner)));
    files.push_back(std::move(mem));
  }
  Check(db->Execute(fmt::format(
            "COPY (SELECT line_id, category, department, amount, CAST([{}][CAST(file_index AS "
            "BIGINT) + 1] AS INTEGER) AS contributor FROM read_parquet([{}])) TO {} (FORMAT "
            "parquet)",
            fmt::join(contributors, ", "), fmt::join(paths, ", "),
            cr::engine::QuoteLiteral(D("union.parquet")))),
        "union");
  Check(cr::WriteFileAtomic(marker, want), "marker");
}

void BM_PlainDuckDbBenchmark(benchmark::State& state) {
  const std::string u = "read_parquet(" + cr::engine::QuoteLiteral(D("union.parquet")) + ")";
  for (auto _ : state) {
    auto db = cr::engine::Database::Open();
    bool ok =
        db->Execute(
              fmt::format("CREATE TEMP TABLE parts AS SELECT category, department, contributor, "
                          "SUM(amount) AS s FROM {} GROUP BY category, department, contributor",
                          u))
            .has_value();
    auto peers = db->Query(
        "SELECT category, department, sum(s), avg(s), median(s), quantile_cont(s, 0.25), "
        "quantile_cont(s, 0.75) FROM parts GROUP BY category, department");
    auto own = db->Query("SELECT category, department, contributor, s FROM parts");
    if (!ok || !peers || !own || peers->row_count() == 0) state.SkipWithError("baseline failed");
  }
}

void BM_CleanroomBenchmark(benchmark::State& state) {
  auto analyst = cr::crypto::Identity::Load(D("keys/analyst.key"));
  cr::query::Request req;
  req.sql = kQuery;
  req.benchmark = true;
  cr::query::ExecStats last;
  for (auto _ : state) {
    auto room = cr::room::Room::Open(D("room"));
    auto out = room ? cr::query::Run(*room, *analyst, req) : std::unexpected(room.error());
    if (!out || out->result.rows.empty()) {
      state.SkipWithError(out ? "nothing released" : out.error().ToString().c_str());
      break;
    }
    last = out->stats;
    // A result holds a sealed copy per contributor: keep the room from growing.
    std::filesystem::remove_all(D("room/results/" + out->result.result_id));
  }
  state.counters["decrypt_s"] = last.decrypt_seconds;
  state.counters["sql_s"] = last.query_seconds;
  state.counters["released"] = static_cast<double>(last.released_rows);
}

// The same query on a warm room, as `serve` answers it: the room opened once,
// the parts' decrypted columns kept in memory (room::DecryptCache), stored
// unit sets decoded once (diffcheck::SetCache), databases closed off the
// answer's path (engine::Closer; waited for between queries, untimed).
void BM_CleanroomBenchmarkWarm(benchmark::State& state) {
  auto analyst = cr::crypto::Identity::Load(D("keys/analyst.key"));
  auto room = cr::room::Room::Open(D("room"));
  if (!room) {
    state.SkipWithError(room.error().ToString().c_str());
    return;
  }
  cr::room::DecryptCache cache(uint64_t{4} << 30);
  cr::diffcheck::SetCache sets(uint64_t{512} << 20);
  cr::engine::Closer closer;
  cr::query::RunOptions options;
  options.cache = &cache;
  options.unit_sets = &sets;
  options.closer = &closer;
  cr::query::Request req;
  req.sql = kQuery;
  req.benchmark = true;
  cr::query::ExecStats last;
  // One untimed query fills the cache, as the server's first query does.
  if (auto first = cr::query::Run(*room, *analyst, req, options); first) {
    std::filesystem::remove_all(D("room/results/" + first->result.result_id));
  }
  closer.Wait();
  for (auto _ : state) {
    auto out = cr::query::Run(*room, *analyst, req, options);
    if (!out || out->result.rows.empty()) {
      state.SkipWithError(out ? "nothing released" : out.error().ToString().c_str());
      break;
    }
    last = out->stats;
    state.PauseTiming();
    std::filesystem::remove_all(D("room/results/" + out->result.result_id));
    closer.Wait();
    state.ResumeTiming();
  }
  state.counters["decrypt_s"] = last.decrypt_seconds;
  state.counters["sql_s"] = last.query_seconds;
  state.counters["check_s"] = last.unit_check_seconds;
  state.counters["store_s"] = last.unit_store_seconds;
}

void BM_IngestOnePart(benchmark::State& state) {
  int64_t salt = 1;
  for (auto _ : state) {
    std::string pkg = D("again.crpkg");
    auto db = cr::engine::Database::Open();
    auto prepared = db ? PreparePart(*db, 7, salt++, pkg, 0) : std::unexpected(db.error());
    auto room = cr::room::Room::Open(D("room"));
    cr::Result<cr::ingest::IngestReport> ingested = !prepared ? std::unexpected(prepared.error())
                                                    : !room   ? std::unexpected(room.error())
                                                              : cr::ingest::Ingest(*room, pkg);
    std::filesystem::remove(pkg);
    if (!ingested) {
      state.SkipWithError(ingested.error().ToString().c_str());
      break;
    }
  }
}

}  // namespace

BENCHMARK(BM_PlainDuckDbBenchmark)
    ->Unit(benchmark::kSecond)
    ->UseRealTime()
    ->Iterations(2)
    ->Repetitions(3);
BENCHMARK(BM_CleanroomBenchmark)
    ->Unit(benchmark::kSecond)
    ->UseRealTime()
    ->Iterations(2)
    ->Repetitions(3);
BENCHMARK(BM_CleanroomBenchmarkWarm)
    ->Unit(benchmark::kSecond)
    ->UseRealTime()
    ->Iterations(2)
    ->Repetitions(3);
BENCHMARK(BM_IngestOnePart)->Unit(benchmark::kSecond)->UseRealTime()->Iterations(2)->Repetitions(3);

int main(int argc, char** argv) {
  std::vector<char*> rest = cr::bench::BenchArgs(
      argc, argv,
      {{"--contributors=", [](const char* v) { g_contributors = std::atoll(v); }},
       {"--rows=", [](const char* v) { g_rows = std::atoll(v); }},
       {"--dir=", [](const char* v) { g_dir = v; }}});
  bool temp = g_dir.empty();
  if (temp) {
    std::string tmpl = "/tmp/cleanroom-poolbench-XXXXXX";
    g_dir = ::mkdtemp(tmpl.data());
  }
  Check(cr::MakeDirs(g_dir), "dir");
  Check(cr::crypto::Init(), "sodium");
  fmt::print("pool benchmark: {} contributors x {} rows in {}\n", g_contributors, g_rows, g_dir);
  SetUpRoom();
  int rest_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_argc, rest.data());
  cr::bench::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  auto s = reporter.seconds();
  // Each cleanroom run against the same baseline (medians of 3 repetitions).
  for (const auto& [name, label] :
       {std::pair<std::string, std::string>{"BM_CleanroomBenchmark", "cleanroom benchmark query"},
        {"BM_CleanroomBenchmarkWarm", "warm room (serve) benchmark query"}}) {
    if (!s.count("BM_PlainDuckDbBenchmark") || !s.count(name)) continue;
    double plain = s["BM_PlainDuckDbBenchmark"], ours = s[name];
    fmt::print("plain DuckDB over the union {:.2f} s | {} {:.2f} s | ratio {:.2f}x (target <= "
               "1.50x; medians of 3 repetitions)\n",
               plain, label, ours, ours / plain);
  }
  if (s.count("BM_IngestOnePart")) {
    fmt::print("ingest of one part ({} rows, prepare + ingest) into the {}-part room: {:.2f} s\n",
               g_rows, g_contributors, s["BM_IngestOnePart"]);
  }
  if (temp) std::filesystem::remove_all(g_dir);
  return 0;
}
