// Unlocking the room key, per key store, side by side in one run: the
// passphrase store (Argon2id at the limits `room init` records), the PKCS#11
// store (AES-GCM unwrap on a SoftHSM2 token: load the module, find the token,
// log in, decrypt) and, as the floor, the test-only store with no protection.
// Every iteration forgets the process's remembered unlocks, as a CLI command
// starts without them.
//
//   build/bin/unlock_bench [--pkcs11-module=/usr/lib/softhsm/libsofthsm2.so]
#include <benchmark/benchmark.h>
#include <sys/stat.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include <fmt/core.h>

#include "common/files.h"
#include "crypto/crypto.h"
#include "ratio_reporter.h"
#include "room/key_store.h"

namespace {

std::string g_dir;
std::string g_module = "/usr/lib/softhsm/libsofthsm2.so";
std::string g_passphrase_store, g_pkcs11_store, g_plain_store;

void Check(bool ok, const std::string& what) {
  if (!ok) {
    fmt::print(stderr, "unlock_bench: {}\n", what);
    std::exit(1);
  }
}

void SetUp() {
  Check(static_cast<bool>(cr::crypto::Init()), "sodium");
  auto id = cr::crypto::Identity::Generate();
  const std::string pass = g_dir + "/pass";
  Check(static_cast<bool>(cr::WriteFileAtomic(pass, "a benchmark passphrase\n", 0600)), "passphrase file");
  cr::room::UsePassphraseFile(pass);
  cr::room::KeyStoreChoice c;
  c.kind = cr::room::KeyStoreKind::kPassphrase;
  auto p = cr::room::CreateKeyStore(c, id);
  Check(static_cast<bool>(p), p ? "" : p.error().ToString());
  g_passphrase_store = *p;
  c.kind = cr::room::KeyStoreKind::kTestPlain;
  auto t = cr::room::CreateKeyStore(c, id);
  Check(static_cast<bool>(t), t ? "" : t.error().ToString());
  g_plain_store = *t;
  if (!cr::PathExists(g_module)) {
    fmt::print("no PKCS#11 module at {}: the pkcs11 figure is skipped\n", g_module);
    return;
  }
  std::filesystem::create_directories(g_dir + "/tokens");
  Check(static_cast<bool>(cr::WriteFileAtomic(g_dir + "/softhsm2.conf",
                                              "directories.tokendir = " + g_dir + "/tokens\nlog.level = ERROR\n")),
        "softhsm2.conf");
  ::setenv("SOFTHSM2_CONF", (g_dir + "/softhsm2.conf").c_str(), 1);
  Check(std::system("softhsm2-util --init-token --free --label bench --so-pin 12345678 --pin 87654321 >/dev/null") == 0,
        "softhsm2-util --init-token");
  Check(static_cast<bool>(cr::WriteFileAtomic(g_dir + "/pin", "87654321\n", 0600)), "pin file");
  ::setenv("CLEANROOM_PKCS11_PIN_FILE", (g_dir + "/pin").c_str(), 1);
  c.kind = cr::room::KeyStoreKind::kPkcs11;
  c.pkcs11_module = g_module;
  c.pkcs11_token = "bench";
  auto k = cr::room::CreateKeyStore(c, id);
  Check(static_cast<bool>(k), k ? "" : k.error().ToString());
  g_pkcs11_store = *k;
}

void Unlock(benchmark::State& state, const std::string& store) {
  if (store.empty()) {
    state.SkipWithError("key store not available");
    return;
  }
  for (auto _ : state) {
    cr::room::ForgetUnlockedKeys();
    auto id = cr::room::UnlockKeyStore(store);
    if (!id) {
      state.SkipWithError(id.error().ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(id->pub().sign_pk[0]);
  }
}

void BM_UnlockTestPlain(benchmark::State& state) { Unlock(state, g_plain_store); }
void BM_UnlockPassphraseArgon2id(benchmark::State& state) { Unlock(state, g_passphrase_store); }
void BM_UnlockPkcs11SoftHsm(benchmark::State& state) { Unlock(state, g_pkcs11_store); }

}  // namespace

BENCHMARK(BM_UnlockTestPlain)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(50)->Repetitions(5);
BENCHMARK(BM_UnlockPassphraseArgon2id)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3)->Repetitions(5);
BENCHMARK(BM_UnlockPkcs11SoftHsm)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(10)->Repetitions(5);

int main(int argc, char** argv) {
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--pkcs11-module=", 16) == 0) g_module = argv[i] + 16;
    else rest.push_back(argv[i]);
  }
  std::string tmpl = "/tmp/cleanroom-unlock-XXXXXX";
  g_dir = ::mkdtemp(tmpl.data());
  SetUp();
  int rest_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_argc, rest.data());
  cr::bench::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  auto s = reporter.seconds();
  fmt::print("\nunlock (medians of 5 repetitions): no protection {:.3f} ms | passphrase, Argon2id "
             "opslimit {} memlimit {} MiB {:.0f} ms | PKCS#11 on SoftHSM2 {:.1f} ms\n",
             s["BM_UnlockTestPlain"] * 1e3, crypto_pwhash_OPSLIMIT_MODERATE,
             crypto_pwhash_MEMLIMIT_MODERATE >> 20, s["BM_UnlockPassphraseArgon2id"] * 1e3,
             s["BM_UnlockPkcs11SoftHsm"] * 1e3);
  std::filesystem::remove_all(g_dir);
  return 0;
}
