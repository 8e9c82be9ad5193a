// The difference check's sets and store (src/diffcheck/unit_sets.h): the
// withholding rule at its edges (0, 1, k-1 and k units apart), hash
// collisions that can only withhold more, datasets that must match exactly,
// tampering, and removal by result and by dataset.
#include "diffcheck/unit_sets.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <iterator>
#include <numeric>
#include <random>
#include <vector>

#include "common/files.h"
#include "testing/temp_dir.h"

namespace cr::diffcheck {
namespace {

using cr::testing::TempDir;
using nlohmann::json;
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

// The merge that stops at k agrees with the full symmetric difference on
// random sets, some near one another, some unrelated, of about equal sizes
// (so the size gap settles nothing).
TEST_F(UnitSetsTest, TheStoppingCountAgreesWithTheFullDifferenceOnRandomSets) {
  std::mt19937_64 rng(7);
  std::vector<UnitSet> stored;
  std::vector<std::vector<uint64_t>> stored_values;
  for (int s = 0; s < 40; ++s) {
    std::vector<uint64_t> v;
    const size_t n = 2000 + rng() % 20;
    const uint64_t base = (s % 4 == 0) ? 0 : rng();  // a quarter share most units
    for (size_t i = 0; i < n; ++i) v.push_back((base + i) * 0x9e3779b97f4a7c15ULL);
    UnitSet u;
    u.Add(v.data(), v.size(), true);
    u.Finish();
    AddOne("r" + std::to_string(s), u);
    stored_values.push_back(v);
    stored.push_back(std::move(u));
  }
  for (int t = 0; t < 60; ++t) {
    // Near one of the shared-base sets: drop or add a few units, anywhere.
    std::vector<uint64_t> v = stored_values[(t % 10) * 4];
    const int change = static_cast<int>(rng() % (2 * kK));
    for (int c = 0; c < change; ++c) {
      if (rng() % 2) {
        v.erase(v.begin() + static_cast<long>(rng() % v.size()));
      } else {
        v.push_back(rng());
      }
    }
    UnitSet u;
    u.Add(v.data(), v.size(), true);
    u.Finish();
    bool expected = false;
    for (const UnitSet& s : stored) {
      const uint64_t gap = s.count() > u.count() ? s.count() - u.count() : u.count() - s.count();
      if (gap >= static_cast<uint64_t>(kK)) continue;
      if (gap == 0 && s.fingerprint() == u.fingerprint()) continue;
      std::vector<uint32_t> x;
      std::set_symmetric_difference(u.low().begin(), u.low().end(), s.low().begin(),
                                    s.low().end(), std::back_inserter(x));
      expected = expected || x.size() < static_cast<uint64_t>(kK);
    }
    EXPECT_EQ(CheckOne(u), std::vector<bool>{expected}) << "case " << t << ", " << change << " changes";
  }
}

TEST(LowDifferenceTest, CountsTheSymmetricDifferenceUpToEnough) {
  const std::vector<uint32_t> a = {1, 5, 9, 12}, b = {1, 6, 9, 13, 20};
  EXPECT_EQ(LowDifference(a, b, 100), 5u);  // 5, 6, 12, 13, 20
  EXPECT_EQ(LowDifference(b, a, 100), 5u);
  EXPECT_EQ(LowDifference(a, b, 3), 3u);    // stops there
  EXPECT_EQ(LowDifference(a, a, 100), 0u);
  EXPECT_EQ(LowDifference(a, {}, 100), 4u);
  EXPECT_EQ(LowDifference({}, {}, 100), 0u);
  EXPECT_EQ(LowDifference({0, UINT32_MAX}, {UINT32_MAX}, 100), 1u);
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

// The warm room's cache (SetCache): a cached store withholds exactly what an
// uncached one does, a result it stored is checked without its file being
// read, a result the index no longer lists is dropped, and the byte budget
// evicts the least recently used result.
TEST_F(UnitSetsTest, ACachedStoreDecidesAsTheFilesDoWithoutRereadingThem) {
  SetCache cache(uint64_t{1} << 20);
  Store cached(dir_.path(), key_, &cache);
  auto check = [&](const Store& store, const UnitSet& s) {
    auto lock = store.Acquire();
    EXPECT_TRUE(lock.has_value());
    std::vector<UnitSet> rows;
    rows.push_back(s);
    auto r = store.Check(*lock, {"a", "b"}, rows, kK);
    EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().ToString());
    return r ? *r : std::vector<bool>{};
  };
  {
    auto lock = cached.Acquire();
    ASSERT_TRUE(lock.has_value());
    UnitSet first = Set(0, 300);
    ASSERT_TRUE(cached.Add(*lock, "r1", {"a", "b"}, {&first}).has_value());
  }
  EXPECT_EQ(cache.entries(), 1u);
  for (const UnitSet& probe : {Set(0, 299), Set(0, 300), Set(0, 300 - kK), Set(1, 301)}) {
    EXPECT_EQ(check(cached, probe), check(store_, probe));
  }
  // The file is not read again: without it the cached store still decides,
  // while the uncached one finds the result's sets missing.
  fs::remove(dir_.path() + "/unitsets/r1.units");
  EXPECT_EQ(check(cached, Set(0, 299)), std::vector<bool>{true});
  EXPECT_EQ(CheckFails(Set(0, 299)), ErrorCode::TAMPERED);
  // Removed from the index (a failed release, a disposal): dropped at the next check.
  {
    auto lock = store_.Acquire();
    ASSERT_TRUE(store_.Remove(*lock, "r1").has_value());
  }
  EXPECT_EQ(check(cached, Set(0, 299)), std::vector<bool>{false});
  EXPECT_EQ(cache.entries(), 0u);
  EXPECT_EQ(cache.bytes(), 0u);
}

// Every write of the index is one generation on, and the mark the audit log
// keeps is a lower bound: the same generation with its hash, or a later one
// (the room's own writes a crash left unrecorded), never an earlier one.
TEST_F(UnitSetsTest, TheIndexMarkRefusesAnOlderIndexAndAcceptsTheRoomsOwnLaterOnes) {
  room::MetaSealer sealer(key_);
  auto none = IndexMark(dir_.path(), sealer);
  ASSERT_TRUE(none.has_value());
  EXPECT_TRUE(none->is_null());
  AddOne("r1", Set(0, 300));
  auto first = IndexMark(dir_.path(), sealer);
  ASSERT_TRUE(first.has_value());
  // The first Add writes the empty index before the first set file.
  EXPECT_EQ((*first)["generation"], 2);
  const std::string older = *ReadFile(dir_.path() + "/unitsets/index.json");
  AddOne("r2", Set(1000, 1300));
  auto second = IndexMark(dir_.path(), sealer);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ((*second)["generation"], 3);
  EXPECT_TRUE(CheckIndexMark(*second, *second).has_value());
  EXPECT_TRUE(CheckIndexMark(*first, *second).has_value());   // ahead of the log
  EXPECT_TRUE(CheckIndexMark(nullptr, *second).has_value());  // nothing recorded yet
  ASSERT_TRUE(WriteFileAtomic(dir_.path() + "/unitsets/index.json", older).has_value());
  auto put_back = IndexMark(dir_.path(), sealer);
  ASSERT_TRUE(put_back.has_value());
  auto behind = CheckIndexMark(*second, *put_back);
  ASSERT_FALSE(behind.has_value());
  EXPECT_EQ(behind.error().code, ErrorCode::TAMPERED);
  json forged = *second;
  forged["sha256"] = std::string(64, '0');
  EXPECT_FALSE(CheckIndexMark(forged, *second).has_value());  // same generation, other index
  EXPECT_FALSE(CheckIndexMark(*second, nullptr).has_value());  // the store removed
  EXPECT_FALSE(CheckIndexMark(json{{"generation", "2"}}, *second).has_value());
}

// A summary (size and fingerprint, as a query over a dataset whose units are
// each in one row computes them) decides as the full set does, and its units
// are fetched only when a stored set is near it in size or it is new.
TEST_F(UnitSetsTest, ASummaryIsFilledOnlyWhenNeededAndMustAgreeWithItsUnits) {
  AddOne("r1", Set(0, 1000));
  std::vector<std::vector<size_t>> asked;
  // Checks the summary of units [from, to) claiming `claimed` units from
  // `from`; the fill lists the real ones, as the query would.
  auto check = [&](uint64_t from, uint64_t to, uint64_t claimed_to, bool can_fill) {
    const UnitSet claimed = Set(from, claimed_to);
    std::vector<UnitSet> rows(1);
    rows[0].SetSummary(claimed.count(), claimed.fingerprint());
    auto lock = store_.Acquire();
    EXPECT_TRUE(lock.has_value());
    Store::Fill fill = [&](std::vector<UnitSet>& r, const std::vector<size_t>& which) -> Status {
      asked.push_back(which);
      std::vector<uint64_t> v;
      for (uint64_t i = from; i < to; ++i) v.push_back(i * 0x9e3779b97f4a7c15ULL);
      for (size_t i : which) {
        r[i].Add(v.data(), v.size(), /*distinct=*/false);
        r[i].Finish();
      }
      return Ok();
    };
    return store_.Check(*lock, {"a", "b"}, rows, kK, can_fill ? fill : Store::Fill{});
  };
  // The same set as stored: nothing fetched, released.
  auto r = check(0, 1000, 1000, true);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(*r, std::vector<bool>{false});
  EXPECT_TRUE(asked.empty());
  // Far in size and not stored yet: fetched (for the store), released.
  r = check(0, 2000, 2000, true);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(*r, std::vector<bool>{false});
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0], std::vector<size_t>{0});
  // One unit fewer than the stored set: fetched and withheld (the pair).
  r = check(1, 1000, 1000, true);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(*r, std::vector<bool>{true});
  EXPECT_EQ(asked.size(), 2u);
  // Units that disagree with the summary (a unit counted in two rows):
  // INTERNAL, nothing decided.
  r = check(1, 1000, 1001, true);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::INTERNAL);
  // A summary whose units are needed with no way to fetch them: INTERNAL.
  r = check(1, 1000, 1000, false);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::INTERNAL);
  // And the store refuses to record a summary it was never given units for.
  UnitSet bare;
  bare.SetSummary(5, 42);
  auto lock = store_.Acquire();
  ASSERT_TRUE(lock.has_value());
  auto added = store_.Add(*lock, "r2", {"a", "b"}, {&bare});
  ASSERT_FALSE(added.has_value());
  EXPECT_EQ(added.error().code, ErrorCode::INTERNAL);
}

TEST(SetCacheTest, TheByteBudgetEvictsTheLeastRecentlyUsed) {
  auto sets = [](size_t n) {
    return std::make_shared<const SetCache::Sets>(SetCache::Sets{std::vector<uint32_t>(n, 1)});
  };
  SetCache cache(3 * 4096 + 512);  // room for three results of 1,000 values
  cache.Put("a", sets(1000));
  cache.Put("b", sets(1000));
  cache.Put("c", sets(1000));
  ASSERT_NE(cache.Get("a"), nullptr);  // a is now more recent than b
  cache.Put("d", sets(1000));
  EXPECT_EQ(cache.entries(), 3u);
  EXPECT_EQ(cache.Get("b"), nullptr);
  EXPECT_NE(cache.Get("a"), nullptr);
  EXPECT_NE(cache.Get("d"), nullptr);
  cache.Put("huge", sets(10000));  // larger than the whole budget: not kept
  EXPECT_EQ(cache.Get("huge"), nullptr);
  EXPECT_EQ(cache.entries(), 3u);
  cache.Retain({"d"});
  EXPECT_EQ(cache.entries(), 1u);
  EXPECT_NE(cache.Get("d"), nullptr);
}

}  // namespace
}  // namespace cr::diffcheck
