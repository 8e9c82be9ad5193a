// The room folder through the library: creation, re-opening, tampering at rest,
// decryption into memory only.
#include "room/room.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "common/files.h"
#include "crypto/crypto.h"
#include "demo/generator.h"
#include "e2e/e2e_fixture.h"
#include "ingest/ingest.h"
#include "ingest/prepare.h"
#include "spec/spec.h"

namespace cr::room {
namespace {

using cr::testing::Slurp;
using cr::testing::Spit;
using cr::testing::TempDir;

class RoomTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::Init());
    ASSERT_TRUE(MakeDirs(dir_ / "keys"));
    for (const char* name : {"acme", "newsco"}) {
      ASSERT_TRUE(crypto::WriteIdentityFiles(crypto::Identity::Generate(), dir_ / "keys", name));
    }
    ASSERT_TRUE(crypto::WriteNewSharedSecret(dir_ / "secret"));
    Spit(dir_ / "spec.yaml", cr::testing::SpecText());
    InitOptions init;
    init.region = "eu";  // the campaign spec's region
    ASSERT_TRUE(Room::Init(dir_ / "room", dir_ / "spec.yaml", init));
    auto spec = spec::Load(dir_ / "spec.yaml");
    ASSERT_TRUE(spec);
    std::vector<std::string> sigs;
    for (const char* name : {"acme", "newsco"}) {
      auto sig = spec::Sign(*spec, *crypto::Identity::Load(dir_ / "keys" + "/" + name + ".key"));
      ASSERT_TRUE(sig);
      std::string path = dir_ / (std::string(name) + ".sig");
      Spit(path, spec::SignatureToJson(*sig));
      sigs.push_back(path);
    }
    auto room = Room::Open(dir_ / "room");
    ASSERT_TRUE(room);
    ASSERT_TRUE(room->Activate(sigs));
  }

  void IngestImpressions() {
    demo::GeneratorOptions g;
    g.impressions = 500;
    g.people = 100;
    ASSERT_TRUE(demo::WriteImpressionsCsv(g, dir_ / "imp.csv"));
    ingest::PrepareOptions o;
    o.spec_path = dir_ / "spec.yaml";
    o.dataset = "impressions";
    o.input = dir_ / "imp.csv";
    o.key_path = dir_ / "keys/newsco.key";
    o.secret_path = dir_ / "secret";
    o.room_pub = RoomPubPath(dir_ / "room");
    o.out = dir_ / "imp.crpkg";
    ASSERT_TRUE(ingest::Prepare(o));
    auto room = Room::Open(dir_ / "room");
    ASSERT_TRUE(room);
    auto r = ingest::Ingest(*room, o.out);
    ASSERT_TRUE(r) << r.error().message;
  }

  std::string StoredPackage() {
    for (auto& e : std::filesystem::directory_iterator(dir_ / "room/data")) return e.path();
    return "";
  }
  std::string StoredKey() {
    for (auto& e : std::filesystem::directory_iterator(dir_ / "room/keys")) return e.path();
    return "";
  }

  TempDir dir_;
};

TEST_F(RoomTest, InitRefusesAFolderThatIsNotEmpty) {
  auto again = Room::Init(dir_ / "room", dir_ / "spec.yaml");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::ROOM_EXISTS);
  EXPECT_FALSE(Room::Open(dir_.path()));  // not a room
}

TEST_F(RoomTest, DecryptsIntoMemoryAndMountsViews) {
  IngestImpressions();
  auto room = Room::Open(dir_ / "room");
  ASSERT_TRUE(room);
  EXPECT_EQ(room->datasets().at("impressions").rows, 500);
  auto db = engine::Database::Open();
  auto files = room->MountAll(*db);
  ASSERT_TRUE(files) << files.error().message;
  ASSERT_EQ(files->size(), 1u);
  EXPECT_EQ((*files)[0].path().rfind("/proc/self/fd/", 0), 0u);
  auto r = db->Query("SELECT count(*), count(DISTINCT email) FROM impressions");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r->at(0, 0), "500");
  EXPECT_EQ(*r->at(0, 1), "100");
  // The undeclared column never arrived.
  EXPECT_FALSE(db->Query("SELECT device FROM impressions"));
}

TEST_F(RoomTest, DataTamperedAtRestIsDetectedBeforeUse) {
  IngestImpressions();
  std::string pkg = StoredPackage();
  std::string bytes = Slurp(pkg);
  bytes[bytes.size() / 2] ^= 1;
  Spit(pkg, bytes);
  auto room = Room::Open(dir_ / "room");
  ASSERT_TRUE(room);
  auto mem = room->Decrypt("impressions");
  ASSERT_FALSE(mem);
  EXPECT_EQ(mem.error().code, ErrorCode::TAMPERED);
}

TEST_F(RoomTest, SwappedStoredPackageIsDetected) {
  IngestImpressions();
  std::string first = Slurp(StoredPackage());
  std::string first_key = Slurp(StoredKey());
  IngestImpressions();  // a new version replaces (and shreds) the first
  std::string pkg = StoredPackage();
  std::string key = StoredKey();
  Spit(pkg, first);  // an attacker puts the old data back
  {
    auto room = Room::Open(dir_ / "room");
    ASSERT_TRUE(room);
    auto mem = room->Decrypt("impressions");
    ASSERT_FALSE(mem);
    EXPECT_EQ(mem.error().code, ErrorCode::TAMPERED);
  }
  Spit(key, first_key);  // ... and its old wrapped key (bound to the old package id)
  auto room = Room::Open(dir_ / "room");
  ASSERT_TRUE(room);
  auto mem = room->Decrypt("impressions");
  ASSERT_FALSE(mem);
  EXPECT_EQ(mem.error().code, ErrorCode::TAMPERED);
}

TEST_F(RoomTest, WrappedKeyTamperedOrSpecChangedIsDetected) {
  IngestImpressions();
  for (auto& e : std::filesystem::directory_iterator(dir_ / "room/keys")) {
    std::string k = Slurp(e.path());
    k[k.size() - 1] ^= 1;
    Spit(e.path(), k);
  }
  {
    auto room = Room::Open(dir_ / "room");
    ASSERT_TRUE(room);
    EXPECT_EQ(room->Decrypt("impressions").error().code, ErrorCode::TAMPERED);
  }
  // The stored spec no longer matches the hash the room was created with.
  std::string spec = Slurp(dir_ / "room/spec.yaml");
  Spit(dir_ / "room/spec.yaml", spec + "# edited\n");
  auto reopened = Room::Open(dir_ / "room");
  ASSERT_FALSE(reopened);
  EXPECT_EQ(reopened.error().code, ErrorCode::TAMPERED);
}

TEST_F(RoomTest, DisposeDeletesKeyThenData) {
  IngestImpressions();
  auto room = Room::Open(dir_ / "room");
  ASSERT_TRUE(room);
  ASSERT_TRUE(room->Dispose("impressions", "request", "test"));
  EXPECT_TRUE(std::filesystem::is_empty(dir_ / "room/keys"));
  EXPECT_TRUE(std::filesystem::is_empty(dir_ / "room/data"));
  EXPECT_EQ(room->Decrypt("impressions").error().code, ErrorCode::UNKNOWN_DATASET);
  auto v = audit::Verify(AuditLogPath(dir_ / "room"), room->key().pub());
  ASSERT_TRUE(v);
  EXPECT_GE(v->entries, 3u);
}

}  // namespace
}  // namespace cr::room
