// The difference check's sets and store (src/diffcheck/unit_sets.h): the
// withholding rule at its edges (0, 1, k-1 and k units apart), hash
// collisions that can only withhold more, datasets that must match exactly,
// tampering, and removal by result and by dataset.
#include "diffcheck/unit_sets.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <numeric>
#include <vector>

#include "common/files.h"
#include "testing/temp_dir.h"

namespace cr::diffcheck {
namespace {

using cr::testing::TempDir;
namespace fs = std::filesystem;

constexpr int64_t kK = 10;

// Units `from` .. `to`-1 as well-spread 64-bit hashes, plus `extra`.
UnitSet Set(uint64_t from, uint64_t to, std::vector<uint64_t> extra = {}) {
  std::vector<uint64_t> v;
  for (uint64_t i = from; i < to; ++i) v.push_back(i * 0x9e3779b97f4a7c15ULL);
  v.insert(v.end(), extra.begin(), extra.end());
  UnitSet s;
  s.Add(v.data(), v.size(), /*distinct=*/true);
  s.Finish();
  return s;
}

class UnitSetsTest : public ::testing::Test {
 protected:
  std::vector<bool> CheckOne(const UnitSet& s, const std::vector<std::string>& ds = {"a", "b"}) {
    auto lock = store_.Acquire();
    EXPECT_TRUE(lock.has_value());
    std::vector<UnitSet> rows;
    rows.push_back(s);
    auto r = store_.Check(*lock, ds, rows, kK);
    EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().ToString());
    return r ? *r : std::vector<bool>{};
  }
  // The code of checking `s` against the store, which must fail.
  ErrorCode CheckFails(const UnitSet& s) {
    auto lock = store_.Acquire();
    EXPECT_TRUE(lock.has_value());
    std::vector<UnitSet> rows;
    rows.push_back(s);
    auto r = store_.Check(*lock, {"a", "b"}, rows, kK);
    EXPECT_FALSE(r.has_value());
    return r ? ErrorCode::INTERNAL : r.error().code;
  }
  void AddOne(const std::string& id, const UnitSet& s,
              const std::vector<std::string>& ds = {"a", "b"}) {
    auto lock = store_.Acquire();
    ASSERT_TRUE(lock.has_value());
    ASSERT_TRUE(store_.Add(*lock, id, ds, {&s}).has_value());
  }
  static crypto::Identity NewKey() {
    (void)crypto::Init();  // before the first key: members are built before SetUp
    return crypto::Identity::Generate();
  }
  TempDir dir_;
  crypto::Identity key_ = NewKey();
  Store store_{dir_.path(), key_};
};

TEST_F(UnitSetsTest, CountsDistinctUnitsAndFingerprintsIgnoreOrder) {
  UnitSet a = Set(0, 100);
  std::vector<uint64_t> v;
  for (uint64_t i = 100; i-- > 0;) v.push_back(i * 0x9e3779b97f4a7c15ULL);
  v.push_back(v[3]);  // a duplicate across two lists
  UnitSet b;
  b.Add(v.data(), 50, true);
  b.Add(v.data() + 50, v.size() - 50, true);
  b.Finish();
  EXPECT_EQ(a.count(), 100u);
  EXPECT_EQ(b.count(), 100u);
  EXPECT_EQ(a.fingerprint(), b.fingerprint());
}

TEST_F(UnitSetsTest, WithholdsOneToKMinusOneApartAndReleasesTheRest) {
  AddOne("r1", Set(0, 300));
  EXPECT_EQ(CheckOne(Set(0, 300)), std::vector<bool>{false});             // the same set
  EXPECT_EQ(CheckOne(Set(0, 299)), std::vector<bool>{true});              // one fewer
  EXPECT_EQ(CheckOne(Set(0, 301)), std::vector<bool>{true});              // one more
  EXPECT_EQ(CheckOne(Set(1, 301)), std::vector<bool>{true});              // one swapped: 2 apart
  EXPECT_EQ(CheckOne(Set(0, 300 - kK + 1)), std::vector<bool>{true});     // k-1 apart
  EXPECT_EQ(CheckOne(Set(0, 300 - kK)), std::vector<bool>{false});        // k apart
  EXPECT_EQ(CheckOne(Set(5, 305)), std::vector<bool>{false});             // same size, 10 apart
  EXPECT_EQ(CheckOne(Set(0, 299), {"a"}), std::vector<bool>{false});      // other datasets
  EXPECT_EQ(CheckOne(Set(0, 299), {"b", "a"}), std::vector<bool>{true});  // order does not matter
}

TEST_F(UnitSetsTest, ACollisionOfTheLowBitsCanOnlyWithholdMore) {
  // x and y share their lower 32 bits: the bitmaps cannot tell them apart,
  // the fingerprints can. Two units apart, below k: withheld.
  const uint64_t x = 0x00000001deadbeefULL, y = 0x00000002deadbeefULL;
  AddOne("r1", Set(0, 300, {x}));
  EXPECT_EQ(CheckOne(Set(0, 300, {y})), std::vector<bool>{true});
  EXPECT_EQ(CheckOne(Set(0, 300, {x})), std::vector<bool>{false});
}

TEST_F(UnitSetsTest, SizesFarApartAreSettledWithoutOpeningABitmap) {
  AddOne("r1", Set(0, 300));
  fs::remove(dir_.path() + "/unitsets/r1.units");
  EXPECT_EQ(CheckOne(Set(0, 200)), std::vector<bool>{false});
  // A near one needs the bitmap, and its absence is tampering.
  EXPECT_EQ(CheckFails(Set(0, 299)), ErrorCode::TAMPERED);
}

TEST_F(UnitSetsTest, AChangedBitmapOrIndexIsTampered) {
  AddOne("r1", Set(0, 300));
  const std::string units = dir_.path() + "/unitsets/r1.units";
  std::string bytes = *ReadFile(units);
  std::string flipped = bytes;
  flipped[flipped.size() / 2] ^= 0x10;
  ASSERT_TRUE(WriteFileAtomic(units, flipped).has_value());
  EXPECT_EQ(CheckFails(Set(0, 299)), ErrorCode::TAMPERED);
  ASSERT_TRUE(WriteFileAtomic(units, bytes).has_value());
  // Moved under another result's name: bound to its name, it does not open.
  fs::rename(units, dir_.path() + "/unitsets/r2.units");
  EXPECT_EQ(CheckFails(Set(0, 299)), ErrorCode::TAMPERED);
  fs::rename(dir_.path() + "/unitsets/r2.units", units);
  const std::string index = dir_.path() + "/unitsets/index.json";
  std::string text = *ReadFile(index);
  text[text.find("\"count\":") + 8] = '7';
  ASSERT_TRUE(WriteFileAtomic(index, text).has_value());
  EXPECT_EQ(CheckFails(Set(0, 299)), ErrorCode::TAMPERED);
}

TEST_F(UnitSetsTest, TheSameSetIsStoredOnceAndRemovalsDropTheirSets) {
  AddOne("r1", Set(0, 300));
  AddOne("r2", Set(0, 300));  // nothing new: no file
  EXPECT_FALSE(fs::exists(dir_.path() + "/unitsets/r2.units"));
  AddOne("r3", Set(0, 500), {"a"});
  {
    auto lock = store_.Acquire();
    ASSERT_TRUE(store_.Remove(*lock, "r1").has_value());
  }
  EXPECT_FALSE(fs::exists(dir_.path() + "/unitsets/r1.units"));
  EXPECT_EQ(CheckOne(Set(0, 299)), std::vector<bool>{false});
  EXPECT_EQ(CheckOne(Set(0, 499), {"a"}), std::vector<bool>{true});
  room::MetaSealer sealer(key_);
  ASSERT_TRUE(RemoveCovering(dir_.path(), sealer, "a").has_value());
  EXPECT_FALSE(fs::exists(dir_.path() + "/unitsets/r3.units"));
  EXPECT_EQ(CheckOne(Set(0, 499), {"a"}), std::vector<bool>{false});
}

}  // namespace
}  // namespace cr::diffcheck
