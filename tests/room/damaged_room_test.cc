// A damaged room file never gives INTERNAL: each file of the room missing,
// empty, truncated, bit-flipped, or with a field of the wrong JSON type makes
// Room::Open fail with TAMPERED or AUDIT_CHAIN_BROKEN (exit 6) and change
// nothing; a deterministic mutation loop checks the same over many damages.
// The sealed files (sealed_meta.h) refuse every changed byte; the type checks
// behind the seal are tried with damage resealed under the room's own key
// (what only a holder of the key could write).
#include <random>

#include "room/room_fixture.h"

namespace cr::room {
namespace {

using nlohmann::json;

class DamagedRoomTest : public RoomFixture {
 protected:
  void SetUp() override {
    RoomFixture::SetUp();
    if (HasFatalFailure()) return;
    IngestOk(MakePackage("impressions", "imp.crpkg"));
    {
      auto room = OpenRoom();
      ASSERT_TRUE(room);
      ASSERT_TRUE(room->Dispose("impressions", "request", "operator"));  // "disposed" has an entry
    }
    IngestOk(MakePackage("purchases", "pur.crpkg"));
    {
      auto room = OpenRoom();
      ASSERT_TRUE(room);
      sealer_.emplace(room->key());
    }
    good_ = Files();
  }

  // The body of a sealed file, and damage to it sealed again by the room.
  json Body(const std::string& rel) {
    auto j = sealer_->Open(rel, good_.at(rel).bytes);
    EXPECT_TRUE(j) << rel;
    return j ? *j : json::object();
  }
  std::string Resealed(const std::string& rel, const json& body) { return sealer_->Seal(rel, body); }

  // Opens the room as `damaged` leaves it; on refusal nothing may change.
  // Returns the code (or nullopt when the damage was harmless and it opened).
  std::optional<ErrorCode> OpenDamaged(const RoomFiles& damaged, const std::string& what) {
    Restore(damaged);
    auto room = OpenRoom();
    std::optional<ErrorCode> code;
    if (!room) {
      code = room.error().code;
      EXPECT_NE(room.error().code, ErrorCode::INTERNAL) << what << ": " << room.error().message;
      int exit = ExitCode(room.error().code);
      EXPECT_TRUE(exit == 6 || exit == 7) << what << ": " << room.error().ToString();
      EXPECT_EQ(Files(), damaged) << what << ": a refused open changed the room";
    }
    room = Result<Room>(std::unexpected(Error{}));  // release the lock
    Restore(good_);
    return code;
  }

  void ExpectRefused(const RoomFiles& damaged, const std::string& what,
                     ErrorCode want = ErrorCode::TAMPERED) {
    auto code = OpenDamaged(damaged, what);
    ASSERT_TRUE(code.has_value()) << what << ": the damaged room opened";
    EXPECT_EQ(*code, want) << what;
  }

  RoomFiles With(const std::string& rel, const std::string& bytes) {
    RoomFiles f = good_;
    f[rel].bytes = bytes;
    return f;
  }
  RoomFiles Without(const std::string& rel) {
    RoomFiles f = good_;
    f.erase(rel);
    return f;
  }

  static std::vector<std::string> RoomFileNames() {
    return {"state.json", "catalog.json", "spec-keys.json", "spec.yaml",
            "room.pub",   "keystore.json", "audit.log"};
  }
  static ErrorCode CodeFor(const std::string& rel) {
    return rel == "audit.log" ? ErrorCode::AUDIT_CHAIN_BROKEN : ErrorCode::TAMPERED;
  }

  RoomFiles good_;
  std::optional<MetaSealer> sealer_;
};

TEST_F(DamagedRoomTest, TheUndamagedRoomOpens) {
  auto room = OpenRoom();
  ASSERT_TRUE(room) << room.error().message;
  EXPECT_EQ(room->datasets().size(), 1u);
  EXPECT_EQ(Files(), good_);
}

TEST_F(DamagedRoomTest, MissingEmptyOrTruncatedFilesAreRefused) {
  for (const auto& rel : RoomFileNames()) {
    const std::string& bytes = good_.at(rel).bytes;
    ExpectRefused(Without(rel), rel + " missing", CodeFor(rel));
    ExpectRefused(With(rel, ""), rel + " empty", CodeFor(rel));
    // size - 2: the last byte is a newline whose loss would change no value.
    for (size_t keep : {size_t{1}, bytes.size() / 2, bytes.size() - 2}) {
      // Cutting audit.log at a line end leaves a shorter valid chain: not detectable here.
      if (rel == "audit.log" && bytes[keep - 1] == '\n') continue;
      ExpectRefused(With(rel, bytes.substr(0, keep)),
                    rel + " truncated to " + std::to_string(keep), CodeFor(rel));
    }
  }
}

TEST_F(DamagedRoomTest, BitFlipsAreRefusedOrHarmlessNeverInternal) {
  size_t refused = 0, total = 0;
  for (const auto& rel : RoomFileNames()) {
    const std::string& bytes = good_.at(rel).bytes;
    for (int i = 0; i < 12; ++i) {
      size_t at = bytes.size() * static_cast<size_t>(i) / 12;
      std::string damaged = bytes;
      damaged[at] = static_cast<char>(damaged[at] ^ (1 << (i % 8)));
      refused += OpenDamaged(With(rel, damaged), rel + " bit flipped at " + std::to_string(at))
                     .has_value();
      ++total;
    }
  }
  // Most flips hit structure, keys or signed bytes; a flip inside a free-text
  // timestamp can be harmless, but never crashes or gives INTERNAL.
  EXPECT_GT(refused, total / 2);
}

// A sealed file refuses a flip of any bit of any byte: timestamps, whitespace
// and the seal itself included (every 3rd byte, a different bit each time).
TEST_F(DamagedRoomTest, EveryFlipInASealedFileIsTampered) {
  size_t cases = 0;
  for (const std::string rel : {"state.json", "catalog.json", "spec-keys.json"}) {
    const std::string& bytes = good_.at(rel).bytes;
    for (size_t at = 0; at < bytes.size(); at += 3) {
      std::string damaged = bytes;
      damaged[at] = static_cast<char>(damaged[at] ^ (1 << (at % 8)));
      ExpectRefused(With(rel, damaged), rel + " bit flipped at " + std::to_string(at));
      ++cases;
      if (HasFailure()) return;
    }
  }
  EXPECT_GT(cases, 300u);
}

// The same bytes under another name, or sealed by another room: TAMPERED.
TEST_F(DamagedRoomTest, ASealedFileMovedOrFromAnotherRoomIsTampered) {
  ExpectRefused(With("state.json", Resealed("catalog.json", Body("state.json"))), "sealed as another file");
  MetaSealer foreign(crypto::Identity::Generate());
  for (const std::string rel : {"state.json", "catalog.json", "spec-keys.json"}) {
    ExpectRefused(With(rel, foreign.Seal(rel, Body(rel))), rel + " sealed by another room");
  }
}

// Every field of every JSON room file, replaced by values of other types.
TEST_F(DamagedRoomTest, WrongJsonTypesForEachFieldAreRefused) {
  const std::vector<json> others = {nullptr, true, "x", json::array(), json::object(), 1.5, -7};
  auto same_kind = [](const json& a, const json& b) {
    if (a.is_number_integer() && b.is_number_integer()) {
      return a.is_number_unsigned() == b.is_number_unsigned();
    }
    return a.type() == b.type();
  };
  size_t cases = 0;
  for (const std::string rel : {"state.json", "catalog.json", "spec-keys.json"}) {
    json doc = Body(rel);
    // Every value's JSON pointer, objects and arrays included, the root excepted.
    std::vector<json::json_pointer> pointers;
    const json flat = doc.flatten();
    for (const auto& item : flat.items()) {
      json::json_pointer p(item.key());
      while (!p.empty()) {
        if (std::find(pointers.begin(), pointers.end(), p) == pointers.end()) pointers.push_back(p);
        p = p.parent_pointer();
      }
    }
    for (const auto& p : pointers) {
      const json& original = doc.at(p);
      for (const auto& other : others) {
        if (same_kind(original, other)) continue;
        // A negative time of ingest is still a time.
        if (p.back() == "ingested_unix" && other.is_number_integer()) continue;
        json damaged = doc;
        damaged[p] = other;
        ExpectRefused(With(rel, Resealed(rel, damaged)), rel + " " + p.to_string() + " = " + other.dump());
        // And unsealed, as someone without the key would write it.
        ExpectRefused(With(rel, damaged.dump(2)), rel + " " + p.to_string() + " unsealed");
        ++cases;
      }
    }
  }
  EXPECT_GT(cases, 150u);
}

TEST_F(DamagedRoomTest, EditedStateOrCatalogValuesAreRefused) {
  json state = Body("state.json");
  json s1 = state;
  s1["signatures"] = json::array({state["signatures"][0]});  // one party's consent removed
  ExpectRefused(With("state.json", Resealed("state.json", s1)), "a signature removed");
  json s2 = state;
  s2["status"] = "open";
  ExpectRefused(With("state.json", Resealed("state.json", s2)), "an unknown status");
  json s3 = state;
  s3["format"] = 2;
  ExpectRefused(With("state.json", Resealed("state.json", s3)), "another format");

  json catalog = Body("catalog.json");
  auto id = catalog["datasets"]["purchases"]["package_id"].get<std::string>();
  json c1 = catalog;
  c1["datasets"]["purchases"]["package_id"] = "../../../../tmp/evil-0123456789ab";
  ExpectRefused(With("catalog.json", Resealed("catalog.json", c1)), "a path in the package id");
  json c2 = catalog;
  c2["datasets"]["nosuch"] = catalog["datasets"]["purchases"];
  ExpectRefused(With("catalog.json", Resealed("catalog.json", c2)), "a dataset of no spec");
  json c3 = catalog;
  c3["packages"].erase(id);
  ExpectRefused(With("catalog.json", Resealed("catalog.json", c3)), "a dataset outside the replay ledger");

  auto other = crypto::Identity::Generate();
  ExpectRefused(With("room.pub", other.pub().ToText() + "\n"), "room.pub of another key");
}

TEST_F(DamagedRoomTest, DeterministicMutationsNeverGiveInternal) {
  std::mt19937 rng(20261201);
  const auto names = RoomFileNames();
  size_t refused = 0;
  constexpr int kMutations = 300;
  for (int i = 0; i < kMutations; ++i) {
    const std::string& rel = names[rng() % names.size()];
    std::string bytes = good_.at(rel).bytes;
    size_t at = bytes.empty() ? 0 : rng() % bytes.size();
    std::string how;
    switch (rng() % 6) {
      case 0:
        bytes[at] = static_cast<char>(bytes[at] ^ (1 << (rng() % 8)));
        how = "flip";
        break;
      case 1:
        bytes.resize(at);
        how = "truncate";
        break;
      case 2:
        bytes.erase(at, 1 + rng() % 16);
        how = "delete";
        break;
      case 3:
        bytes.insert(at, 1, static_cast<char>(rng() % 256));
        how = "insert";
        break;
      case 4:
        bytes.insert(at, bytes.substr(at, 1 + rng() % 32));
        how = "duplicate";
        break;
      default:
        for (size_t j = at; j < std::min(bytes.size(), at + 8); ++j) {
          bytes[j] = static_cast<char>(rng() % 256);
        }
        how = "scramble";
        break;
    }
    refused += OpenDamaged(With(rel, bytes), rel + " " + how + " at " + std::to_string(at))
                   .has_value();
    if (HasFailure()) break;  // one clear failure, not hundreds
  }
  EXPECT_GT(refused, static_cast<size_t>(kMutations / 2));
}

}  // namespace
}  // namespace cr::room
