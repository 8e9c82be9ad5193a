// Each operation owns its audit records: every success and every refusal class
// of activation, ingest, dispose, retention and the query service writes
// exactly one entry with the right event and code, and nothing else.
#include <sys/file.h>

#include <fcntl.h>
#include <unistd.h>

#include "query/service.h"
#include "room/room_fixture.h"

namespace cr::room {
namespace {

using cr::testing::Slurp;
using cr::testing::Spit;

class RoomAuditTest : public RoomFixture {};

class InactiveRoomAuditTest : public RoomFixture {
 protected:
  bool ActivateOnSetUp() const override { return false; }
};

// The log grew by exactly one entry, `event`, with `code` when given.
#define EXPECT_ONE_NEW_ENTRY(before, event, code)                            \
  do {                                                                       \
    auto all = Entries();                                                    \
    ASSERT_EQ(all.size(), (before) + 1);                                     \
    EXPECT_EQ(all.back().value("event", ""), (event));                       \
    if (std::string(code).empty()) {                                         \
      EXPECT_FALSE(all.back()["details"].contains("code"));                  \
    } else {                                                                 \
      EXPECT_EQ(all.back()["details"].value("code", ""), (code));            \
    }                                                                        \
  } while (0)

TEST_F(InactiveRoomAuditTest, ActivationAuditsSuccessOnce) {
  auto room = OpenRoom();
  ASSERT_TRUE(room);
  size_t before = Entries().size();
  ASSERT_TRUE(room->Activate(sigs_));
  EXPECT_ONE_NEW_ENTRY(before, "room.activate", "");
  EXPECT_EQ(Last()["time"], clock_.NowRfc3339());  // the injected clock stamps it
}

TEST_F(InactiveRoomAuditTest, EachActivationRefusalIsAuditedOnceAndChangesNothing) {
  Spit(dir_ / "garbage.sig", "not a signature");
  auto spec2 = spec::Parse(cr::testing::SpecText("acme-newsco-2026q4", "another version"),
                           dir_.path());
  ASSERT_TRUE(spec2) << spec2.error().message;
  auto other = spec::Sign(*spec2, *crypto::Identity::Load(dir_ / "keys/acme.key"));
  ASSERT_TRUE(other);
  Spit(dir_ / "other.sig", spec::SignatureToJson(*other));
  struct Case {
    std::vector<std::string> files;
    ErrorCode code;
  };
  const std::vector<Case> cases = {
      {{sigs_[0]}, ErrorCode::SIGNATURE_MISSING},
      {{dir_ / "absent.sig"}, ErrorCode::FILE_UNREADABLE},
      {{dir_ / "garbage.sig"}, ErrorCode::BAD_INPUT},
      {{dir_ / "other.sig", sigs_[1]}, ErrorCode::SIGNATURE_INVALID},
  };
  auto room = OpenRoom();
  ASSERT_TRUE(room);
  for (const auto& c : cases) {
    std::string state = Slurp(Dir() + "/state.json");
    size_t before = Entries().size();
    auto st = room->Activate(c.files);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, c.code) << st.error().message;
    EXPECT_ONE_NEW_ENTRY(before, "room.activate.refused", std::string(CodeName(c.code)));
    EXPECT_EQ(Slurp(Dir() + "/state.json"), state);
    EXPECT_FALSE(room->active());
  }
  ASSERT_TRUE(room->Activate(sigs_));
  size_t before = Entries().size();
  auto again = room->Activate(sigs_);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::ROOM_EXISTS);
  EXPECT_ONE_NEW_ENTRY(before, "room.activate.refused", "ROOM_EXISTS");
  EXPECT_EQ(Count("room.activate"), 1u);
}

TEST_F(InactiveRoomAuditTest, IngestIntoAnInactiveRoomIsAuditedOnce) {
  std::string pkg = MakePackage("impressions", "imp.crpkg");
  auto room = OpenRoom();
  ASSERT_TRUE(room);
  size_t before = Entries().size();
  auto r = ingest::Ingest(*room, pkg);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::ROOM_NOT_ACTIVE);
  EXPECT_ONE_NEW_ENTRY(before, "ingest.refused", "ROOM_NOT_ACTIVE");
}

TEST_F(RoomAuditTest, IngestAuditsSuccessOnce) {
  std::string pkg = MakePackage("impressions", "imp.crpkg");
  auto room = OpenRoom();
  ASSERT_TRUE(room);
  size_t before = Entries().size();
  auto r = ingest::Ingest(*room, pkg);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_ONE_NEW_ENTRY(before, "dataset.ingest", "");
  auto d = Last()["details"];
  EXPECT_EQ(d["dataset"], "impressions");
  EXPECT_EQ(d["package_id"], r->package_id);
  EXPECT_EQ(d["rows"], 500);
  EXPECT_EQ(d["replaced"], false);
  EXPECT_EQ(Last()["actor"], "newsco");
  EXPECT_EQ(room->datasets().at("impressions").ingested_unix, kStart);
}

TEST_F(RoomAuditTest, EachIngestRefusalIsAuditedOnceAndChangesNothing) {
  std::string imp = MakePackage("impressions", "imp.crpkg");
  IngestOk(imp);
  // acme signs a package of newsco's dataset.
  ingest::PrepareOptions o;
  o.spec_path = dir_ / "spec.yaml";
  o.dataset = "impressions";
  o.input = dir_ / "imp.crpkg.csv";
  o.key_path = dir_ / "keys/acme.key";
  o.secret_path = dir_ / "secret";
  o.room_pub = RoomPubPath(Dir());
  o.out = dir_ / "wrong-signer.crpkg";
  bool have_wrong_signer = static_cast<bool>(ingest::Prepare(o));
  std::string flipped = Slurp(imp);
  flipped[flipped.size() / 2] ^= 1;
  Spit(dir_ / "flipped.crpkg", flipped);
  Spit(dir_ / "garbage.crpkg", "not a package at all");
  struct Case {
    std::string file;
    ErrorCode code;
  };
  std::vector<Case> cases = {
      {imp, ErrorCode::PACKAGE_REPLAYED},
      {dir_ / "absent.crpkg", ErrorCode::FILE_UNREADABLE},
      {dir_ / "flipped.crpkg", ErrorCode::TAMPERED},
  };
  if (have_wrong_signer) cases.push_back({o.out, ErrorCode::WRONG_SIGNER});
  auto room = OpenRoom();
  ASSERT_TRUE(room);
  for (const auto& c : cases) {
    auto files = Files();
    files.erase("audit.log");
    size_t before = Entries().size();
    auto r = ingest::Ingest(*room, c.file);
    ASSERT_FALSE(r) << c.file;
    EXPECT_EQ(r.error().code, c.code) << r.error().message;
    EXPECT_ONE_NEW_ENTRY(before, "ingest.refused", std::string(CodeName(c.code)));
    auto after = Files();
    after.erase("audit.log");
    EXPECT_EQ(after, files);
  }
  // A garbage file is refused too (whatever its code), once.
  size_t before = Entries().size();
  auto r = ingest::Ingest(*room, dir_ / "garbage.crpkg");
  ASSERT_FALSE(r);
  EXPECT_ONE_NEW_ENTRY(before, "ingest.refused", std::string(CodeName(r.error().code)));
  EXPECT_EQ(Count("dataset.ingest"), 1u);
}

TEST_F(RoomAuditTest, AReplacingIngestIsAuditedOnceAndShredsThePrevious) {
  IngestOk(MakePackage("impressions", "imp1.crpkg"));
  size_t keys = 0;
  for (const auto& [rel, f] : Files()) keys += rel.rfind("keys/", 0) == 0;
  EXPECT_EQ(keys, 1u);
  size_t before = Entries().size();
  IngestOk(MakePackage("impressions", "imp2.crpkg"));
  EXPECT_ONE_NEW_ENTRY(before, "dataset.ingest", "");
  EXPECT_EQ(Last()["details"]["replaced"], true);
  keys = 0;
  for (const auto& [rel, f] : Files()) keys += rel.rfind("keys/", 0) == 0;
  EXPECT_EQ(keys, 1u);
}

TEST_F(RoomAuditTest, AnIngestTheLogCannotRecordIsUndone) {
  std::string pkg = MakePackage("impressions", "imp.crpkg");
  auto room = OpenRoom();
  ASSERT_TRUE(room);
  // The log is damaged after the room was opened: the ingest cannot be recorded.
  auto files = Files();
  std::string log = Slurp(AuditLogPath(Dir()));
  Spit(AuditLogPath(Dir()), log + "{\"damaged\":true}\n");
  auto r = ingest::Ingest(*room, pkg);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::AUDIT_CHAIN_BROKEN);
  EXPECT_TRUE(room->datasets().empty());
  Spit(AuditLogPath(Dir()), log);
  EXPECT_EQ(Files(), files);  // no data, no key, the catalogue as it was
}

TEST_F(RoomAuditTest, DisposeAuditsSuccessAndEachRefusalOnce) {
  IngestOk(MakePackage("impressions", "imp.crpkg"));
  auto room = OpenRoom();
  ASSERT_TRUE(room);
  size_t before = Entries().size();
  ASSERT_TRUE(room->Dispose("impressions", "request", "operator"));
  EXPECT_ONE_NEW_ENTRY(before, "dataset.dispose", "");
  EXPECT_EQ(Last()["details"]["reason"], "request");
  ASSERT_NE(room->Disposed("impressions"), nullptr);
  EXPECT_EQ(room->Disposed("impressions")->reason, "request");

  // Again: it says so, and the refusal is recorded once.
  before = Entries().size();
  auto again = room->Dispose("impressions", "request", "operator");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::UNKNOWN_DATASET);
  EXPECT_NE(again.error().message.find("already disposed"), std::string::npos)
      << again.error().message;
  EXPECT_ONE_NEW_ENTRY(before, "dataset.dispose.refused", "UNKNOWN_DATASET");

  before = Entries().size();
  auto never = room->Dispose("purchases", "request", "operator");
  ASSERT_FALSE(never);
  EXPECT_EQ(never.error().code, ErrorCode::UNKNOWN_DATASET);
  EXPECT_EQ(never.error().message.find("already disposed"), std::string::npos);
  EXPECT_ONE_NEW_ENTRY(before, "dataset.dispose.refused", "UNKNOWN_DATASET");

  // The catalogue remembers the disposal across opens.
  room = Result<Room>(std::unexpected(Error{}));
  auto reopened = OpenRoom();
  ASSERT_TRUE(reopened);
  ASSERT_NE(reopened->Disposed("impressions"), nullptr);
  EXPECT_EQ(reopened->Disposed("purchases"), nullptr);
}

TEST_F(RoomAuditTest, AKeyThatCannotBeDeletedIsReportedAndNotAuditedAsDisposed) {
  IngestOk(MakePackage("impressions", "imp.crpkg"));
  std::string key;
  for (auto& e : std::filesystem::directory_iterator(Dir() + "/keys")) key = e.path();
  ASSERT_FALSE(key.empty());
  // A non-empty directory where the key was: unlink() fails even for root.
  std::filesystem::remove(key);
  ASSERT_TRUE(MakeDirs(key));
  Spit(key + "/pinned", "x");
  auto room = OpenRoom();
  ASSERT_TRUE(room) << room.error().message;
  size_t before = Entries().size();
  auto st = room->Dispose("impressions", "request", "operator");
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::INTERNAL);
  EXPECT_ONE_NEW_ENTRY(before, "dataset.dispose.refused", "INTERNAL");
  EXPECT_EQ(Count("dataset.dispose"), 0u);
  EXPECT_EQ(room->datasets().count("impressions"), 1u);
  EXPECT_EQ(room->Disposed("impressions"), nullptr);
}

TEST_F(RoomAuditTest, ReplacedPackageWhoseKeyCannotBeDeletedIsReported) {
  IngestOk(MakePackage("impressions", "imp1.crpkg"));
  std::string key;
  for (auto& e : std::filesystem::directory_iterator(Dir() + "/keys")) key = e.path();
  std::string bytes = Slurp(key);
  std::filesystem::remove(key);
  ASSERT_TRUE(MakeDirs(key));
  Spit(key + "/pinned", bytes);
  std::string pkg = MakePackage("impressions", "imp2.crpkg");
  auto room = OpenRoom();
  ASSERT_TRUE(room) << room.error().message;
  size_t before = Entries().size();
  auto r = ingest::Ingest(*room, pkg);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::INTERNAL);
  auto all = Entries();
  ASSERT_EQ(all.size(), before + 2);  // the ingest, then the failed shred: never "disposed"
  EXPECT_EQ(all[before]["event"], "dataset.ingest");
  EXPECT_EQ(all[before + 1]["event"], "dataset.dispose.refused");
  EXPECT_EQ(all[before + 1]["details"]["reason"], "replaced");

  // Once the key can be deleted, the next open finishes the shredding, audited once.
  room = Result<Room>(std::unexpected(Error{}));
  std::filesystem::remove_all(key);
  Spit(key, bytes);
  before = Entries().size();
  auto reopened = OpenRoom();
  ASSERT_TRUE(reopened) << reopened.error().message;
  EXPECT_FALSE(std::filesystem::exists(key));
  EXPECT_ONE_NEW_ENTRY(before, "dataset.dispose", "");
  EXPECT_EQ(Last()["details"]["reason"], "replaced");
  EXPECT_EQ(reopened->datasets().size(), 1u);
  size_t keys = 0;
  for (auto& e : std::filesystem::directory_iterator(Dir() + "/keys")) keys += e.is_regular_file();
  EXPECT_EQ(keys, 1u);
}

TEST_F(RoomAuditTest, RetentionShredsAtTheNextOpenAuditedOnceAndKeepsTheYounger) {
  IngestOk(MakePackage("impressions", "imp.crpkg"));
  clock_.Advance(60LL * 86400);
  IngestOk(MakePackage("purchases", "pur.crpkg"));
  clock_.Advance(30LL * 86400 - 1);  // impressions: 90 days less a second
  {
    size_t before = Entries().size();
    auto room = OpenRoom();
    ASSERT_TRUE(room);
    EXPECT_EQ(room->datasets().size(), 2u);
    EXPECT_EQ(Entries().size(), before);
  }
  clock_.Advance(1);  // exactly 90 days
  size_t before = Entries().size();
  auto room = OpenRoom();
  ASSERT_TRUE(room);
  EXPECT_EQ(room->datasets().count("impressions"), 0u);
  EXPECT_EQ(room->datasets().count("purchases"), 1u);
  EXPECT_ONE_NEW_ENTRY(before, "dataset.dispose", "");
  EXPECT_EQ(Last()["details"]["reason"], "retention");
  EXPECT_EQ(Last()["details"]["dataset"], "impressions");
  EXPECT_EQ(room->Disposed("impressions")->reason, "retention");
}

TEST_F(RoomAuditTest, ABusyRoomSaysRoomBusy) {
  int fd = ::open(Dir().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);  // another holder of the room
  auto options = Options();
  options.lock_wait = std::chrono::milliseconds(30);
  auto busy = Room::Open(Dir(), options);
  ASSERT_FALSE(busy);
  EXPECT_EQ(busy.error().code, ErrorCode::ROOM_BUSY);
  EXPECT_EQ(ExitCode(busy.error().code), 1);
  // Inspection does not need the lock.
  options.mode = OpenMode::kReadOnly;
  EXPECT_TRUE(Room::Open(Dir(), options));
  ::close(fd);
  options.mode = OpenMode::kReadWrite;
  EXPECT_TRUE(Room::Open(Dir(), options));
}

TEST_F(RoomAuditTest, QueryServiceAuditsEachOutcomeOnce) {
  IngestOk(MakePackage("impressions", "imp.crpkg"));
  auto room = OpenRoom();
  ASSERT_TRUE(room);
  auto stranger = crypto::Identity::Generate();
  auto acme = crypto::Identity::Load(dir_ / "keys/acme.key");
  ASSERT_TRUE(acme);

  size_t before = Entries().size();
  EXPECT_FALSE(query::ListResults(*room, stranger));
  EXPECT_ONE_NEW_ENTRY(before, "result.list.refused", "NOT_AUTHORIZED");
  before = Entries().size();
  EXPECT_TRUE(query::ListResults(*room, *acme));
  EXPECT_ONE_NEW_ENTRY(before, "result.list", "");

  before = Entries().size();
  EXPECT_FALSE(query::GetResult(*room, stranger, "0123"));
  EXPECT_ONE_NEW_ENTRY(before, "result.get.refused", "NOT_AUTHORIZED");
  before = Entries().size();
  auto missing = query::GetResult(*room, *acme, std::string(32, 'a'));
  ASSERT_FALSE(missing);
  EXPECT_ONE_NEW_ENTRY(before, "result.get.refused", std::string(CodeName(missing.error().code)));

  before = Entries().size();
  query::Request req;
  req.sql = "SELECT campaign, count(*) FROM impressions GROUP BY campaign";
  EXPECT_FALSE(query::Run(*room, stranger, req));
  EXPECT_ONE_NEW_ENTRY(before, "query.refused", "NOT_AUTHORIZED");
  before = Entries().size();
  req.sql = "SELECT email FROM impressions";
  auto refused = query::Run(*room, *acme, req);
  ASSERT_FALSE(refused);
  EXPECT_ONE_NEW_ENTRY(before, "query.refused", std::string(CodeName(refused.error().code)));
}

}  // namespace
}  // namespace cr::room
