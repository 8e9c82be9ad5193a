// The room a benchmark queries: two parties' keys, the spec signed by both, a
// passphrase key store, and the demo impressions and purchases prepared and
// ingested; built once per directory and reused while nothing changed.
#pragma once

#include <cstdint>
#include <string>

#include "common/error.h"

namespace cr::bench {

struct BenchRoomOptions {
  std::string dir;        // the room is DIR/room; keys, spec and marker beside it
  std::string spec_text;  // the collaboration spec (YAML), e.g. demo::CampaignSpec
  int64_t people = 2'000'000;
  int64_t impressions = 10'000'000;
  int64_t purchases = 2'000'000;
  // Also write each dataset's decrypted Parquet to DIR/<dataset>.parquet, so a
  // plain DuckDB baseline reads exactly the bytes the room decrypts.
  bool plain_parquet = false;
};

// Makes DIR/room.passphrase the passphrase source (UseRoomPassphrase), then
// builds the room unless DIR/bench-room.done records the same spec, sizes and
// Parquet choice: a changed benchmark rebuilds instead of measuring stale data.
// Prints progress to stdout, as the benchmarks' setup always did.
Status SetUpBenchRoom(const BenchRoomOptions& o);

}  // namespace cr::bench
