// Shared fixture for library tests of the room: two parties' keys, the shared
// campaign spec, a room created and (by default) activated on a fixed clock,
// and helpers to make packages and read the audit log.
#pragma once

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "audit/audit_log.h"
#include "common/env.h"
#include "common/files.h"
#include "crypto/crypto.h"
#include "demo/generator.h"
#include "e2e/e2e_fixture.h"
#include "ingest/ingest.h"
#include "ingest/prepare.h"
#include "room/room.h"
#include "spec/spec.h"

namespace cr::room {

class RoomFixture : public ::testing::Test {
 protected:
  // 2025-12-02T00:00:00Z: far from the epoch, so a clock that fell back to 0 shows.
  static constexpr long long kStart = 1764633600LL;

  virtual bool ActivateOnSetUp() const { return true; }

  void SetUp() override {
    ASSERT_TRUE(crypto::Init());
    ASSERT_TRUE(MakeDirs(dir_ / "keys"));
    for (const char* name : {"acme", "newsco"}) {
      ASSERT_TRUE(crypto::WriteIdentityFiles(crypto::Identity::Generate(), dir_ / "keys", name));
    }
    ASSERT_TRUE(crypto::WriteNewSharedSecret(dir_ / "secret"));
    cr::testing::Spit(dir_ / "spec.yaml", cr::testing::SpecText());
    InitOptions init;
    init.clock = &clock_;
    init.key_store.kind = KeyStoreKind::kTestPlain;
    init.region = "eu";  // the campaign spec's region
    ASSERT_TRUE(Room::Init(Dir(), dir_ / "spec.yaml", init));
    auto spec = spec::Load(dir_ / "spec.yaml");
    ASSERT_TRUE(spec);
    for (const char* name : {"acme", "newsco"}) {
      auto sig = spec::Sign(*spec, *crypto::Identity::Load(dir_ / "keys" + "/" + name + ".key"));
      ASSERT_TRUE(sig);
      std::string path = dir_ / (std::string(name) + ".sig");
      cr::testing::Spit(path, spec::SignatureToJson(*sig));
      sigs_.push_back(path);
    }
    if (ActivateOnSetUp()) {
      auto room = OpenRoom();
      ASSERT_TRUE(room) << room.error().message;
      ASSERT_TRUE(room->Activate(sigs_));
    }
  }

  std::string Dir() const { return dir_ / "room"; }

  OpenOptions Options() {
    OpenOptions o;
    o.clock = &clock_;
    o.lock_wait = std::chrono::milliseconds(0);  // nothing else holds it in these tests
    return o;
  }
  Result<Room> OpenRoom() { return Room::Open(Dir(), Options()); }

  // A package of `dataset` ("impressions" by newsco, "purchases" by acme).
  std::string MakePackage(const std::string& dataset, const std::string& out_name) {
    demo::GeneratorOptions g;
    g.impressions = 500;
    g.purchases = 200;
    g.people = 100;
    const bool imp = dataset == "impressions";
    std::string csv = dir_ / (out_name + ".csv");
    EXPECT_TRUE(imp ? demo::WriteImpressionsCsv(g, csv) : demo::WritePurchasesCsv(g, csv));
    ingest::PrepareOptions o;
    o.spec_path = dir_ / "spec.yaml";
    o.dataset = dataset;
    o.input = csv;
    o.key_path = dir_ / (imp ? "keys/newsco.key" : "keys/acme.key");
    o.secret_path = dir_ / "secret";
    o.room_pub = RoomPubPath(Dir());
    o.out = dir_ / out_name;
    auto r = ingest::Prepare(o);
    EXPECT_TRUE(r) << r.error().message;
    return o.out;
  }

  void IngestOk(const std::string& pkg) {
    auto room = OpenRoom();
    ASSERT_TRUE(room) << room.error().message;
    auto r = ingest::Ingest(*room, pkg);
    ASSERT_TRUE(r) << r.error().message;
  }

  std::vector<nlohmann::json> Entries() {
    auto e = audit::ReadEntries(AuditLogPath(Dir()));
    EXPECT_TRUE(e);
    return e ? *e : std::vector<nlohmann::json>{};
  }
  size_t Count(const std::string& event) {
    size_t n = 0;
    for (const auto& e : Entries()) n += e.value("event", "") == event;
    return n;
  }
  nlohmann::json Last() {
    auto all = Entries();
    return all.empty() ? nlohmann::json() : all.back();
  }

  // Every file under the room with its mode, to restore or compare exactly.
  struct FileState {
    std::string bytes;
    mode_t mode = 0;
    bool operator==(const FileState&) const = default;
  };
  using RoomFiles = std::map<std::string, FileState>;
  RoomFiles Files() {
    RoomFiles out;
    for (auto& e : std::filesystem::recursive_directory_iterator(Dir())) {
      if (!e.is_regular_file()) continue;
      struct stat st;
      ::stat(e.path().c_str(), &st);
      out[std::filesystem::relative(e.path(), Dir()).string()] = {
          cr::testing::Slurp(e.path().string()), st.st_mode & 07777};
    }
    return out;
  }
  // Rewrites only what differs: most checks damage one file.
  void Restore(const RoomFiles& files) {
    RoomFiles now = Files();
    for (const auto& [rel, f] : now) {
      if (!files.count(rel)) std::filesystem::remove(Dir() + "/" + rel);
    }
    for (const auto& [rel, f] : files) {
      auto it = now.find(rel);
      if (it != now.end() && it->second == f) continue;
      std::string path = Dir() + "/" + rel;
      cr::testing::Spit(path, f.bytes);
      ::chmod(path.c_str(), f.mode);
    }
  }

  cr::testing::TempDir dir_;
  FixedClock clock_{kStart};
  std::vector<std::string> sigs_;
};

}  // namespace cr::room
