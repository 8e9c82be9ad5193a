// The cost of difference checks (issue 15), side by side in one run: "buyers
// and revenue by campaign" over impressions x purchases through query::Run in
// two rooms over the same data, one with the spec's default (difference checks
// on) and one with `privacy.difference_checks: false`. Before timing, each room
// releases 100 earlier results over the same two datasets (the query with 100
// different purchase-day bounds), so the checked room holds their unit sets.
// Counters: decrypt_s, sql_s (generated SQL, with the per-group unit lists
// when checked), units_s (reading the lists out of DuckDB and building the
// bitmaps) and rest_s (everything after: the check's lock, index and
// comparisons, writing the new sets, sealing the result, audit).
//
//   build/bin/diffcheck_bench [--impressions=N] [--purchases=N] [--people=N] [--dir=DIR]
// Defaults: 10,000,000 impressions x 2,000,000 purchases over 2,000,000 people.
#include <benchmark/benchmark.h>
#include <fmt/core.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "bench_check.h"
#include "bench_room.h"
#include "common/files.h"
#include "crypto/crypto.h"
#include "demo/campaign_spec.h"
#include "query/service.h"
#include "ratio_reporter.h"
#include "room/room.h"
#include "room_passphrase.h"

namespace {

int64_t g_impressions = 10'000'000;
int64_t g_purchases = 2'000'000;
int64_t g_people = 2'000'000;
std::string g_dir;
constexpr int kEarlier = 100;

const char* kQuery =
    "SELECT i.campaign, COUNT(DISTINCT p.email) AS buyers, SUM(p.amount) AS revenue "
    "FROM impressions i JOIN purchases p ON i.email = p.email GROUP BY i.campaign";

using cr::bench::Check;

std::string D(const std::string& rel) { return g_dir + "/" + rel; }

// 2026-10-01 plus `n` days (n < 92).
std::string Day(int n) {
  if (n < 31) return fmt::format("2026-10-{:02}", n + 1);
  if (n < 61) return fmt::format("2026-11-{:02}", n - 30);
  return fmt::format("2026-12-{:02}", n - 60);
}

std::string Spec(bool checks) {
  std::string text = cr::demo::CampaignSpec({"bench-diffcheck", "benchmark", ""});
  if (!checks) {
    const std::string k = "  min_distinct_units: 50\n";
    text.insert(text.find(k) + k.size(), "  difference_checks: false\n");
  }
  return text;
}

// DIR/on and DIR/off, each with both datasets and 100 earlier results.
void SetUpRooms() {
  for (bool checks : {true, false}) {
    cr::bench::BenchRoomOptions o;
    o.dir = D(checks ? "on" : "off");
    o.spec_text = Spec(checks);
    o.people = g_people;
    o.impressions = g_impressions;
    o.purchases = g_purchases;
    Check(cr::MakeDirs(o.dir), "dir");
    Check(cr::bench::SetUpBenchRoom(o), "room");
    const std::string marker = o.dir + "/earlier.done";
    if (cr::PathExists(marker)) continue;
    auto acme = cr::crypto::Identity::Load(o.dir + "/acme.key");
    auto room = cr::room::Room::Open(o.dir + "/room");
    if (!acme || !room)
      Check(cr::Fail(cr::ErrorCode::INTERNAL, "cannot open the bench room"), "room");
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kEarlier; ++i) {
      cr::query::Request req;
      // Purchase-day bounds over the generator's 2026-10-01 .. 2026-12-31:
      // sets from one day's buyers to nearly all of them.
      req.sql = fmt::format(
          "SELECT i.campaign, COUNT(DISTINCT p.email) AS buyers, SUM(p.amount) AS revenue "
          "FROM impressions i JOIN purchases p ON i.email = p.email WHERE p.day {} DATE '{}' "
          "GROUP BY i.campaign",
          i < 92 ? "<=" : ">=", Day(i < 92 ? i : (i - 92) * 11));
      auto out = cr::query::Run(*room, *acme, req);
      if (!out) Check(cr::Status(std::unexpected(out.error())), "earlier result");
    }
    fmt::print("{}: {} earlier results in {:.1f} s\n", o.dir, kEarlier,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    Check(cr::WriteFileAtomic(marker, "done\n"), "marker");
  }
}

void Query(benchmark::State& state, const char* which) {
  auto acme = cr::crypto::Identity::Load(D(std::string(which) + "/acme.key"));
  cr::query::Request req;
  req.sql = kQuery;
  cr::query::ExecStats last;
  double total = 0;
  // Each room has its own passphrase: the one set up last is not this one.
  Check(cr::bench::UseRoomPassphrase(D(which)), "passphrase");
  for (auto _ : state) {
    auto room = cr::room::Room::Open(D(std::string(which) + "/room"));
    if (!room) {
      state.SkipWithError(room.error().ToString().c_str());
      break;
    }
    auto t0 = std::chrono::steady_clock::now();
    auto out = cr::query::Run(*room, *acme, req);
    total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!out || out->result.rows.empty()) {
      state.SkipWithError(out ? "nothing released" : out.error().ToString().c_str());
      break;
    }
    last = std::move(out->stats);
  }
  state.counters["decrypt_s"] = last.decrypt_seconds;
  state.counters["sql_s"] = last.query_seconds - last.unit_set_seconds;
  state.counters["units_s"] = last.unit_set_seconds;
  state.counters["check_s"] = last.unit_check_seconds;
  state.counters["store_s"] = last.unit_store_seconds;
  state.counters["rest_s"] = total - last.decrypt_seconds - last.query_seconds;
  state.counters["released"] = static_cast<double>(last.released_rows);
}

void BM_QueryWithoutChecks(benchmark::State& state) { Query(state, "off"); }
void BM_QueryWithChecks(benchmark::State& state) { Query(state, "on"); }

}  // namespace

// Interleaved repetitions (as bench/query): the ratio is of the medians.
BENCHMARK(BM_QueryWithoutChecks)
    ->Unit(benchmark::kSecond)
    ->UseRealTime()
    ->Iterations(3)
    ->Repetitions(5);
BENCHMARK(BM_QueryWithChecks)
    ->Unit(benchmark::kSecond)
    ->UseRealTime()
    ->Iterations(3)
    ->Repetitions(5);

int main(int argc, char** argv) {
  std::vector<char*> rest = cr::bench::BenchArgs(
      argc, argv,
      {{"--impressions=", [](const char* v) { g_impressions = std::atoll(v); }},
       {"--purchases=", [](const char* v) { g_purchases = std::atoll(v); }},
       {"--people=", [](const char* v) { g_people = std::atoll(v); }},
       {"--dir=", [](const char* v) { g_dir = v; }}});
  bool temp = g_dir.empty();
  if (temp) {
    std::string tmpl = "/tmp/cleanroom-dcbench-XXXXXX";
    g_dir = ::mkdtemp(tmpl.data());
  }
  Check(cr::MakeDirs(g_dir), "dir");
  fmt::print(
      "difference-check benchmark: {} impressions x {} purchases over {} people in {}, "
      "{} earlier results per room\n",
      g_impressions, g_purchases, g_people, g_dir, kEarlier);
  SetUpRooms();
  int rest_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_argc, rest.data());
  cr::bench::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  auto s = reporter.seconds();
  if (s.count("BM_QueryWithoutChecks") && s.count("BM_QueryWithChecks")) {
    double off = s["BM_QueryWithoutChecks"], on = s["BM_QueryWithChecks"];
    fmt::print(
        "\nquery without difference checks {:.2f} s | with them ({} earlier results) {:.2f} s "
        "| ratio {:.2f}x (target <= 1.20x; medians of 5 interleaved repetitions)\n",
        off, kEarlier, on, on / off);
  }
  if (temp) std::filesystem::remove_all(g_dir);
  return 0;
}
