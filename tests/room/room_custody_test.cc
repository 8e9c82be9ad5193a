// Custody in process: opening a room makes the process non-dumpable; a
// catalogue one commit ahead of the log (a crash between commit and audit) is
// recorded and accepted, anything further or older is TAMPERED; a backup
// restores to an equal room and a changed one is refused.
#include <sys/prctl.h>

#include "room/room_fixture.h"

namespace cr::room {
namespace {

using nlohmann::json;

class RoomCustodyTest : public RoomFixture {
 protected:
  // The catalogue as the room would seal it with `generation`.
  std::string CatalogAt(uint64_t generation) {
    auto room = OpenRoom();
    EXPECT_TRUE(room);
    MetaSealer sealer(room->key());
    auto body = sealer.Open("catalog.json", cr::testing::Slurp(Dir() + "/catalog.json"));
    EXPECT_TRUE(body);
    (*body)["generation"] = generation;
    return sealer.Seal("catalog.json", *body);
  }
  uint64_t Generation() {
    return json::parse(cr::testing::Slurp(Dir() + "/catalog.json"))["generation"].get<uint64_t>();
  }
};

TEST_F(RoomCustodyTest, AnOpenRoomsProcessIsNotDumpable) {
  auto room = OpenRoom();
  ASSERT_TRUE(room);
  EXPECT_EQ(::prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
}

TEST_F(RoomCustodyTest, ACommitWhoseAuditACrashCutOffIsRecordedOnce) {
  IngestOk(MakePackage("impressions", "imp.crpkg"));
  const uint64_t g = Generation();
  cr::testing::Spit(Dir() + "/catalog.json", CatalogAt(g + 1));
  const auto cut = Files();
  {
    OpenOptions ro = Options();
    ro.mode = OpenMode::kReadOnly;
    ASSERT_TRUE(Room::Open(Dir(), ro));  // inspection accepts it and writes nothing
    EXPECT_EQ(Files(), cut);
  }
  ASSERT_TRUE(OpenRoom());
  EXPECT_EQ(Count("catalog.recovered"), 1u);
  ASSERT_TRUE(OpenRoom());
  EXPECT_EQ(Count("catalog.recovered"), 1u);

  // Two ahead is no crash, and an older one is a rollback.
  for (uint64_t bad : {g + 3, g - 1}) {
    const auto good = Files();
    cr::testing::Spit(Dir() + "/catalog.json", CatalogAt(bad));
    auto r = OpenRoom();
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::TAMPERED);
    Restore(good);
  }
}

TEST_F(RoomCustodyTest, ABackupRestoresTheSameRoomAndAChangedOneIsRefused) {
  IngestOk(MakePackage("impressions", "imp.crpkg"));
  {
    auto room = OpenRoom();
    ASSERT_TRUE(room);
    ASSERT_TRUE(room->Backup(dir_ / "room.bak"));
    auto again = room->Backup(dir_ / "room.bak");
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().code, ErrorCode::FILE_EXISTS);
  }
  auto kept = Room::Restore(dir_ / "copy", dir_ / "room.bak", clock_);
  ASSERT_TRUE(kept) << kept.error().message;
  EXPECT_TRUE(kept->empty());
  OpenOptions o = Options();
  auto copy = Room::Open(dir_ / "copy", o);
  ASSERT_TRUE(copy) << copy.error().message;
  EXPECT_EQ(copy->datasets().size(), 1u);
  auto plain = copy->Decrypt("impressions");
  ASSERT_TRUE(plain) << plain.error().message;

  const std::string bak = cr::testing::Slurp(dir_ / "room.bak");
  for (size_t at : {size_t{5}, bak.size() / 4, bak.size() / 2, bak.size() - 1}) {
    std::string d = bak;
    d[at] = static_cast<char>(d[at] ^ 0x10);
    cr::testing::Spit(dir_ / "bad.bak", d);
    auto r = Room::Restore(dir_ / "bad", dir_ / "bad.bak", clock_);
    ASSERT_FALSE(r) << at;
    EXPECT_EQ(ExitCode(r.error().code) == 6 || r.error().code == ErrorCode::BAD_INPUT, true)
        << at << ": " << r.error().ToString();
    EXPECT_FALSE(PathExists(dir_ / "bad")) << at;
  }
  cr::testing::Spit(dir_ / "cut.bak", bak.substr(0, bak.size() - 1));
  EXPECT_FALSE(Room::Restore(dir_ / "cut", dir_ / "cut.bak", clock_));
  EXPECT_FALSE(PathExists(dir_ / "cut"));
}

}  // namespace
}  // namespace cr::room
