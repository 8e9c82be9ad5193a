#include "bench_room.h"

#include <filesystem>
#include <vector>

#include <fmt/core.h>

#include "common/files.h"
#include "crypto/crypto.h"
#include "demo/generator.h"
#include "ingest/ingest.h"
#include "ingest/prepare.h"
#include "room/room.h"
#include "room_passphrase.h"
#include "spec/spec.h"

namespace cr::bench {
namespace {

// What the room was built from: a room kept by --dir is reused only when the
// benchmark would build the same one.
std::string Fingerprint(const BenchRoomOptions& o) {
  return fmt::format("bench-room-v1\npeople {}\nimpressions {}\npurchases {}\nparquet {}\n{}",
                     o.people, o.impressions, o.purchases, o.plain_parquet, o.spec_text);
}

}  // namespace

Status SetUpBenchRoom(const BenchRoomOptions& o) {
  CR_TRY(crypto::Init());
  CR_TRY(MakeDirs(o.dir));
  CR_TRY(UseRoomPassphrase(o.dir));
  auto d = [&](const std::string& rel) { return o.dir + "/" + rel; };
  const std::string marker = d("bench-room.done");
  const std::string fingerprint = Fingerprint(o);
  if (PathExists(marker)) {
    auto old = ReadFile(marker);
    if (old && *old == fingerprint) return Ok();
  }
  std::filesystem::remove(marker);
  std::filesystem::remove_all(d("room"));
  for (const char* name : {"acme", "newsco"}) {
    if (!PathExists(d(std::string(name) + ".key"))) {
      CR_TRY(crypto::WriteIdentityFiles(crypto::Identity::Generate(), o.dir, name));
    }
  }
  if (!PathExists(d("shared.secret"))) CR_TRY(crypto::WriteNewSharedSecret(d("shared.secret")));
  CR_TRY(WriteFileAtomic(d("spec.yaml"), o.spec_text));
  CR_ASSIGN(auto spec, spec::Load(d("spec.yaml")));
  room::InitOptions init_options;
  init_options.key_store.kind = room::KeyStoreKind::kPassphrase;
  init_options.region = spec.region;  // the room runs where the spec says
  CR_TRY(room::Room::Init(d("room"), d("spec.yaml"), init_options));
  std::vector<std::string> sigs;
  for (const char* name : {"acme", "newsco"}) {
    CR_ASSIGN(auto id, crypto::Identity::Load(d(std::string(name) + ".key")));
    CR_ASSIGN(auto sig, spec::Sign(spec, id));
    std::string path = d(std::string("spec.") + name + ".sig");
    CR_TRY(WriteFileAtomic(path, spec::SignatureToJson(sig)));
    sigs.push_back(path);
  }
  {
    CR_ASSIGN(auto room, room::Room::Open(d("room")));
    CR_TRY(room.Activate(sigs));
  }
  demo::GeneratorOptions g;
  g.people = o.people;
  g.impressions = o.impressions;
  g.purchases = o.purchases;
  fmt::print("generating {} impressions and {} purchases...\n", g.impressions, g.purchases);
  CR_TRY(demo::WriteImpressionsCsv(g, d("impressions.csv")));
  CR_TRY(demo::WritePurchasesCsv(g, d("purchases.csv")));
  struct Job {
    const char* dataset;
    const char* owner;
  };
  for (Job j : {Job{"impressions", "newsco"}, Job{"purchases", "acme"}}) {
    ingest::PrepareOptions p;
    p.spec_path = d("spec.yaml");
    p.dataset = j.dataset;
    p.input = d(std::string(j.dataset) + ".csv");
    p.key_path = d(std::string(j.owner) + ".key");
    p.secret_path = d("shared.secret");
    p.room_pub = room::RoomPubPath(d("room"));
    p.out = d(std::string(j.dataset) + ".crpkg");
    std::filesystem::remove(p.out);
    fmt::print("preparing {}...\n", j.dataset);
    CR_TRY(ingest::Prepare(p));
    CR_ASSIGN(auto room, room::Room::Open(d("room")));
    CR_TRY(ingest::Ingest(room, p.out));
    if (o.plain_parquet) {
      CR_ASSIGN(auto mem, room.Decrypt(j.dataset));
      CR_ASSIGN(auto size, mem.Size());
      std::string bytes;
      CR_TRY(mem.ReadAt(0, size, &bytes));
      CR_TRY(WriteFileAtomic(d(std::string(j.dataset) + ".parquet"), bytes));
    }
    std::filesystem::remove(p.input);
    std::filesystem::remove(p.out);
  }
  return WriteFileAtomic(marker, fingerprint);
}

}  // namespace cr::bench
