// The room service under load, side by side with the in-process query path
// and with plain DuckDB, in one run: "buyers and revenue by campaign" over
// impressions x purchases (1,000,000 impression rows by default).
//
//  load     16 client threads on loopback, each signing every request (RFC
//           9421) and sending the governed query to `cleanroom serve` over
//           TLS: throughput, p50, p99, errors (must be 0).
//  (a)      the same query through query::Run in this process on a cold room
//           (no cache: decrypts every time): server overhead = in-process
//           throughput / server throughput, target <= 1.10.
//  (b)      warm room: query::Run with a DecryptCache already holding the
//           columns, vs the same SQL on plain DuckDB over the same Parquet in
//           memory (memfd): ratio target <= 1.1.
//
//   build/bin/server_bench [--impressions=N] [--people=N] [--clients=N]
//                          [--per-client=N] [--dir=DIR] [--serve-arg=ARG ...]
// --serve-arg passes one more argument to `cleanroom serve` (e.g. twice:
// --serve-arg=--cache-memory --serve-arg=512MiB). Google Benchmark flags
// (bench/run_all.sh passes one) are ignored.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/core.h>

#include "bench_room.h"
#include "client/client.h"
#include "common/files.h"
#include "crypto/crypto.h"
#include "demo/campaign_spec.h"
#include "demo/serve_process.h"
#include "engine/closer.h"
#include "engine/engine.h"
#include "query/service.h"
#include "room/cache.h"
#include "room/room.h"

namespace {

int64_t g_impressions = 1'000'000;
int64_t g_people = 200'000;
int g_clients = 16;
int g_per_client = 4;
std::string g_dir;
std::vector<std::string> g_serve_args;

const char* kQuery =
    "SELECT i.campaign, COUNT(DISTINCT p.email) AS buyers, SUM(p.amount) AS revenue "
    "FROM impressions i JOIN purchases p ON i.email = p.email GROUP BY i.campaign";

template <typename T>
T Must(cr::Result<T> r, const char* what) {
  if (!r) {
    fmt::print(stderr, "{}: {}\n", what, r.error().ToString());
    std::exit(1);
  }
  return std::move(*r);
}
void Must(const cr::Status& st, const char* what) {
  if (!st) {
    fmt::print(stderr, "{}: {}\n", what, st.error().ToString());
    std::exit(1);
  }
}

std::string D(const std::string& rel) { return g_dir + "/" + rel; }

double Since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// The room with both datasets, built once per --dir (bench_room.h, shared
// with bench/query and bench/dp_query).
void SetUpRoom() {
  cr::bench::BenchRoomOptions o;
  o.dir = g_dir;
  o.spec_text = cr::demo::CampaignSpec({"bench-server", "benchmark", ""});
  o.people = g_people;
  o.impressions = g_impressions;
  o.purchases = g_impressions / 5;
  Must(cr::bench::SetUpBenchRoom(o), "room");
}

struct Latencies {
  std::vector<double> seconds;
  int errors = 0;
  double wall = 0;
  // In-process runs: each query's phases (query::ExecStats), for where the
  // time beyond plain DuckDB goes.
  std::vector<double> mount, sql, unit_sets, check, store;
};

void Print(const char* name, const Latencies& l) {
  const double n = static_cast<double>(l.seconds.size());
  fmt::print("{:<34} {:>6} queries  {:>7.2f} q/s  p50 {:>8.1f} ms  p99 {:>8.1f} ms  errors {}\n",
             name, l.seconds.size(), l.wall > 0 ? n / l.wall : 0, Percentile(l.seconds, 0.5) * 1e3,
             Percentile(l.seconds, 0.99) * 1e3, l.errors);
}

// query::Run in this process, one after the other, each with its own open
// room (what one local `cleanroom query` does, without process start).
Latencies InProcess(int n, cr::room::DecryptCache* cache) {
  auto acme = Must(cr::crypto::Identity::Load(D("acme.key")), "key");
  auto room = Must(cr::room::Room::Open(D("room")), "open");
  cr::query::Request req;
  req.sql = kQuery;
  cr::query::RunOptions o;
  o.cache = cache;
  // As the server: with the warm room, databases close off the answer's path.
  std::optional<cr::engine::Closer> closer;
  if (cache) o.closer = &closer.emplace();
  static cr::diffcheck::SetCache unit_sets(uint64_t{64} << 20);  // as the server's, warm
  if (cache) o.unit_sets = &unit_sets;
  Latencies l;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) {
    auto t = std::chrono::steady_clock::now();
    auto out = cr::query::Run(room, acme, req, o);
    if (!out || out->result.rows.empty()) {
      ++l.errors;
      if (!out) fmt::print(stderr, "in-process: {}\n", out.error().ToString());
      continue;
    }
    l.seconds.push_back(Since(t));
    // Closed before the next query starts, as plain DuckDB's database is
    // (PlainDuckDb): neither side's close is timed or overlaps a timed query.
    if (closer) closer->Wait();
    const auto& st = out->stats;
    l.mount.push_back(st.decrypt_seconds);
    l.sql.push_back(st.query_seconds - st.unit_set_seconds);
    l.unit_sets.push_back(st.unit_set_seconds);
    l.check.push_back(st.unit_check_seconds);
    l.store.push_back(st.unit_store_seconds);
  }
  l.wall = Since(t0);
  return l;
}

void PrintPhases(const char* name, const Latencies& l) {
  auto ms = [](const std::vector<double>& v) { return Percentile(v, 0.5) * 1e3; };
  fmt::print(
      "{:<34} p50 mount {:.1f} ms, SQL {:.1f} ms, unit sets read {:.1f} ms, difference check "
      "{:.1f} ms, unit sets stored {:.1f} ms\n",
      name, ms(l.mount), ms(l.sql), ms(l.unit_sets), ms(l.check), ms(l.store));
}

// The same SQL on plain DuckDB over the same Parquet bytes in memory.
Latencies PlainDuckDb(int n) {
  auto room = Must(cr::room::Room::Open(D("room"), cr::room::OpenMode::kReadOnly), "open");
  auto imp = Must(room.Decrypt("impressions"), "decrypt");
  auto pur = Must(room.Decrypt("purchases"), "decrypt");
  std::string sql = kQuery;
  auto replace = [&](const std::string& from, const std::string& to) {
    sql.replace(sql.find(from), from.size(), to);
  };
  replace("FROM impressions", "FROM read_parquet(" + cr::engine::QuoteLiteral(imp.path()) + ")");
  replace("JOIN purchases", "JOIN read_parquet(" + cr::engine::QuoteLiteral(pur.path()) + ")");
  Latencies l;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) {
    auto t = std::chrono::steady_clock::now();
    auto db = cr::engine::Database::Open();
    auto r = db ? db->Query(sql) : cr::Result<cr::engine::QueryResult>(std::unexpected(db.error()));
    if (!r || r->row_count() == 0) {
      ++l.errors;
      continue;
    }
    l.seconds.push_back(Since(t));
  }
  l.wall = Since(t0);
  return l;
}

// `clients` threads, each with its own connection, signing and sending the
// query `per_client` times.
Latencies Load(const std::string& url, const std::string& ca, int clients, int per_client) {
  std::vector<Latencies> each(static_cast<size_t>(clients));
  std::vector<std::thread> threads;
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  auto t0 = std::chrono::steady_clock::now();
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      auto client = Must(cr::client::Client::Connect({.url = url, .tls_ca = ca, .key_path = D("acme.key")}),
                         "connect");
      // Connected (TCP and TLS) before the clock starts: the load measures
      // queries, not handshakes.
      if (!client.Get("/v1/health")) ++each[static_cast<size_t>(c)].errors;
      ++ready;
      while (!go) std::this_thread::yield();
      Latencies& l = each[static_cast<size_t>(c)];
      for (int i = 0; i < per_client; ++i) {
        auto t = std::chrono::steady_clock::now();
        auto answer = client.PostJson("/v1/query", {{"sql", kQuery}});
        if (!answer || !answer->contains("result_id")) {
          ++l.errors;
          if (!answer) fmt::print(stderr, "server: {}\n", answer.error().ToString());
          continue;
        }
        l.seconds.push_back(Since(t));
      }
    });
  }
  while (ready < clients) std::this_thread::yield();
  t0 = std::chrono::steady_clock::now();
  go = true;
  for (auto& t : threads) t.join();
  Latencies all;
  all.wall = Since(t0);
  for (auto& l : each) {
    all.seconds.insert(all.seconds.end(), l.seconds.begin(), l.seconds.end());
    all.errors += l.errors;
  }
  return all;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&](const char* flag) -> const char* {
      size_t n = std::strlen(flag);
      return a.compare(0, n, flag) == 0 ? argv[i] + n : nullptr;
    };
    if (auto v = val("--impressions=")) g_impressions = std::atoll(v);
    else if (auto v = val("--people=")) g_people = std::atoll(v);
    else if (auto v = val("--clients=")) g_clients = std::atoi(v);
    else if (auto v = val("--per-client=")) g_per_client = std::atoi(v);
    else if (auto v = val("--dir=")) g_dir = v;
    else if (auto v = val("--serve-arg=")) g_serve_args.push_back(v);
    else if (a.rfind("--benchmark_", 0) != 0) {
      fmt::print(stderr, "unknown argument {}\n", a);
      return 2;
    }
  }
  Must(cr::crypto::Init(), "sodium");
  bool temp = g_dir.empty();
  if (temp) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "cr-server-bench-XXXXXX").string();
    g_dir = ::mkdtemp(tmpl.data());
  }
  SetUpRoom();
  const int total = g_clients * g_per_client;
  fmt::print("room: {} impressions, {} purchases; query: {}\n\n", g_impressions, g_impressions / 5,
             kQuery);

  // (a) in-process, cold: every query decrypts what it reads.
  (void)InProcess(1, nullptr);  // page cache and allocator warm, as the server's are
  Latencies cold = InProcess(std::max(8, total / 4), nullptr);
  Print("(a) query::Run in-process, cold", cold);

  // The server, under load.
  Must(cr::MakeDirs(D("tls")), "tls dir");
  auto tls = Must(cr::demo::MakeTlsFiles(D("tls")), "tls");
  cr::demo::ServeOptions so;
  const char* bin = std::getenv("CLEANROOM_BIN");
  so.binary = bin ? bin : (std::filesystem::path(cr::demo::SelfExecutable()).parent_path() / "cleanroom").string();
  so.room = D("room");
  so.tls = tls;
  so.extra_args = g_serve_args;
  so.log_path = D("serve.log");
  Latencies load, single;
  {
    auto server = Must(cr::demo::ServeProcess::Start(so), "serve");
    (void)Load(server.url(), tls.ca_cert, 1, 1);
    single = Load(server.url(), tls.ca_cert, 1, std::max(8, total / 4));
    load = Load(server.url(), tls.ca_cert, g_clients, g_per_client);
    Must(server.Stop(), "serve stop");
  }
  Print("server, 1 client", single);
  Print(fmt::format("server, {} clients", g_clients).c_str(), load);

  // (b) warm room vs plain DuckDB over the same Parquet in memory.
  cr::room::DecryptCache cache(uint64_t{4} << 30);
  (void)InProcess(1, &cache);
  // Interleaved in rounds, so a drift of the machine (another process, the
  // page cache, the CPU clock) falls on both sides alike; one block of each
  // side after the other moved the ratio between 1.00x and 1.40x on a quiet
  // machine.
  Latencies warm, plain;
  const int rounds = 8;
  const int per_round = std::max(3, total / 16);
  auto append = [](Latencies& into, const Latencies& part) {
    into.seconds.insert(into.seconds.end(), part.seconds.begin(), part.seconds.end());
    into.errors += part.errors;
    into.wall += part.wall;
    for (auto [to, from] : {std::pair{&into.mount, &part.mount}, {&into.sql, &part.sql},
                            {&into.unit_sets, &part.unit_sets}, {&into.check, &part.check},
                            {&into.store, &part.store}}) {
      to->insert(to->end(), from->begin(), from->end());
    }
  };
  for (int round = 0; round < rounds; ++round) {
    append(warm, InProcess(per_round, &cache));
    append(plain, PlainDuckDb(per_round));
  }
  Print("(b) query::Run in-process, warm", warm);
  Print("(b) plain DuckDB, Parquet in memory", plain);
  PrintPhases("(b) warm, phases", warm);

  const double in_qps = static_cast<double>(cold.seconds.size()) / cold.wall;
  const double srv_qps = static_cast<double>(load.seconds.size()) / load.wall;
  const double overhead = srv_qps > 0 ? in_qps / srv_qps : 0;
  const double warm_ratio = Percentile(warm.seconds, 0.5) / Percentile(plain.seconds, 0.5);
  fmt::print("\nserver overhead (in-process cold q/s / server q/s, {} clients): {:.2f}x (target <= 1.10)\n",
             g_clients, overhead);
  fmt::print("server vs in-process, one client, p50: {:.2f}x\n",
             Percentile(single.seconds, 0.5) / Percentile(cold.seconds, 0.5));
  fmt::print("warm room vs plain DuckDB, p50: {:.2f}x (target <= 1.10)\n", warm_ratio);
  fmt::print("errors under load: {} of {} (must be 0)\n", load.errors, total);
  if (temp) std::filesystem::remove_all(g_dir);
  return load.errors == 0 && single.errors == 0 ? 0 : 1;
}
