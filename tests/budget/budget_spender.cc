// Test-only executable for the ledger's concurrency test: opens the ledger of
// ROOM_DIR with the room key and total, spends EPSILON once under QUERY_KEY,
// and exits 0 (charged), 4 (BUDGET_EXHAUSTED) or the error's exit code.
//   budget_spender ROOM_DIR KEY_FILE TOTAL EPSILON QUERY_KEY
#include <cstdio>
#include <cstdlib>
#include <string>

#include "budget/ledger.h"
#include "common/env.h"
#include "crypto/crypto.h"

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: budget_spender ROOM_DIR KEY_FILE TOTAL EPSILON QUERY_KEY\n");
    return 2;
  }
  if (!cr::crypto::Init()) return 1;
  auto key = cr::crypto::Identity::Load(argv[2]);
  if (!key) {
    std::fprintf(stderr, "%s\n", key.error().ToString().c_str());
    return cr::ExitCode(key.error().code);
  }
  cr::spec::Dp dp;
  dp.epsilon = std::strtod(argv[3], nullptr);
  dp.refresh = "monthly";
  cr::FixedClock clock(1796169600);  // 2026-12-02T00:00:00Z
  auto ledger = cr::budget::Ledger::Open(argv[1], *key, dp, clock);
  if (!ledger) {
    std::fprintf(stderr, "%s\n", ledger.error().ToString().c_str());
    return cr::ExitCode(ledger.error().code);
  }
  auto charge = ledger->Spend(argv[5], std::strtod(argv[4], nullptr), "spender");
  if (!charge) {
    std::fprintf(stderr, "%s\n", charge.error().ToString().c_str());
    return cr::ExitCode(charge.error().code);
  }
  return 0;
}
