// The warm room through the query path: a second query reuses what the first
// decrypted, and a new version, a dispose, the budget and Clear drop it.
#include "room/cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <thread>

#include "query/service.h"
#include "room/room_fixture.h"

namespace cr::room {
namespace {

constexpr const char* kSql =
    "SELECT campaign, COUNT(DISTINCT email) AS people FROM impressions GROUP BY campaign";

class CacheTest : public RoomFixture {
 protected:
  void SetUp() override {
    RoomFixture::SetUp();
    if (HasFatalFailure()) return;
    IngestOk(MakePackage("impressions", "imp.crpkg"));
    auto acme = crypto::Identity::Load(dir_ / "keys/acme.key");
    ASSERT_TRUE(acme);
    acme_.emplace(std::move(*acme));
  }

  Result<query::Outcome> Query(Room& room, DecryptCache& cache, const std::string& sql = kSql) {
    query::RunOptions o;
    o.cache = &cache;
    query::Request req;
    req.sql = sql;
    return query::Run(room, *acme_, req, o);
  }

  std::optional<crypto::Identity> acme_;
};

TEST_F(CacheTest, ASecondQueryReusesTheDecryptedDataAndAnswersTheSame) {
  auto room = OpenRoom();
  ASSERT_TRUE(room);
  DecryptCache cache(64 << 20);
  auto first = Query(*room, cache);
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(cache.stats().misses, 1u);
  EXPECT_EQ(cache.stats().hits, 0u);
  EXPECT_EQ(cache.stats().entries, 1u);
  EXPECT_GT(cache.stats().bytes, 0u);
  auto second = Query(*room, cache);
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(cache.stats().misses, 1u);
  EXPECT_EQ(cache.stats().hits, 1u);
  EXPECT_EQ(second->result.rows, first->result.rows);
  EXPECT_EQ(second->result.withheld_rows, first->result.withheld_rows);

  // The same answer as a room without a cache.
  query::Request req;
  req.sql = kSql;
  auto cold = query::Run(*room, *acme_, req);
  ASSERT_TRUE(cold);
  EXPECT_EQ(cold->result.rows, first->result.rows);
}

TEST_F(CacheTest, AnotherColumnSetIsAnotherEntry) {
  auto room = OpenRoom();
  ASSERT_TRUE(room);
  DecryptCache cache(64 << 20);
  ASSERT_TRUE(Query(*room, cache));
  auto other = Query(*room, cache,
                     "SELECT campaign, SUM(cost) AS cost FROM impressions GROUP BY campaign");
  ASSERT_TRUE(other) << other.error().message;
  EXPECT_EQ(cache.stats().misses, 2u);
  EXPECT_EQ(cache.stats().entries, 2u);
}

TEST_F(CacheTest, ANewVersionOfTheDatasetIsNeverAnsweredFromTheOldOne) {
  DecryptCache cache(64 << 20);
  {
    auto room = OpenRoom();
    ASSERT_TRUE(room);
    ASSERT_TRUE(Query(*room, cache));
  }
  IngestOk(MakePackage("impressions", "imp2.crpkg"));
  auto room = OpenRoom();
  ASSERT_TRUE(room);
  auto again = Query(*room, cache);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(cache.stats().hits, 0u);
  EXPECT_EQ(cache.stats().misses, 2u);
  EXPECT_EQ(cache.stats().invalidations, 1u);
  EXPECT_EQ(cache.stats().entries, 1u);
}

TEST_F(CacheTest, DisposeDropsTheDecryptedData) {
  auto room = OpenRoom();
  ASSERT_TRUE(room);
  DecryptCache cache(64 << 20);
  ASSERT_TRUE(Query(*room, cache));
  ASSERT_EQ(cache.stats().entries, 1u);
  ASSERT_TRUE(room->Dispose("impressions", "request", "operator"));
  cache.Sync(*room);
  EXPECT_EQ(cache.stats().entries, 0u);
  EXPECT_EQ(cache.stats().bytes, 0u);
  EXPECT_EQ(cache.stats().invalidations, 1u);
  // And the disposed dataset cannot be answered from memory.
  auto after = Query(*room, cache);
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error().code, ErrorCode::UNKNOWN_DATASET);
  EXPECT_EQ(cache.stats().hits, 0u);
}

TEST_F(CacheTest, DisposeIsNoticedByTheNextQueryWithoutSync) {
  auto room = OpenRoom();
  ASSERT_TRUE(room);
  DecryptCache cache(64 << 20);
  auto cols = std::set<std::string>{"campaign", "email"};
  ASSERT_TRUE(cache.Get(*room, "impressions", cols));
  ASSERT_TRUE(room->Dispose("impressions", "request", "operator"));
  auto after = cache.Get(*room, "impressions", cols);
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error().code, ErrorCode::UNKNOWN_DATASET);
}

TEST_F(CacheTest, ABudgetTooSmallKeepsNothingAndEvictsTheLeastRecentlyUsed) {
  auto room = OpenRoom();
  ASSERT_TRUE(room);
  const std::set<std::string> a{"campaign", "email"};
  const std::set<std::string> b{"campaign", "cost"};
  uint64_t size_a = 0;
  {
    DecryptCache probe(64 << 20);
    ASSERT_TRUE(probe.Get(*room, "impressions", a));
    size_a = probe.stats().bytes;
    ASSERT_TRUE(probe.Get(*room, "impressions", b));
    ASSERT_GT(probe.stats().bytes, size_a);
  }
  DecryptCache tiny(size_a - 1);
  ASSERT_TRUE(tiny.Get(*room, "impressions", a));
  ASSERT_TRUE(tiny.Get(*room, "impressions", a));
  EXPECT_EQ(tiny.stats().entries, 0u);
  EXPECT_EQ(tiny.stats().misses, 2u);

  // Room for the larger entry only, not both: the other is evicted.
  DecryptCache one(std::max(size_a, uint64_t{1}) * 2 - 1);
  ASSERT_TRUE(one.Get(*room, "impressions", a));
  ASSERT_TRUE(one.Get(*room, "impressions", a));
  EXPECT_EQ(one.stats().hits, 1u);
  ASSERT_TRUE(one.Get(*room, "impressions", b));
  EXPECT_EQ(one.stats().entries, 1u);
  EXPECT_EQ(one.stats().evictions, 1u);
  EXPECT_LE(one.stats().bytes, one.max_bytes());
  ASSERT_TRUE(one.Get(*room, "impressions", a));
  EXPECT_EQ(one.stats().hits, 1u);  // a was the one evicted
}

TEST_F(CacheTest, ZeroTurnsItOff) {
  auto room = OpenRoom();
  ASSERT_TRUE(room);
  DecryptCache off(0);
  ASSERT_TRUE(Query(*room, off));
  ASSERT_TRUE(Query(*room, off));
  EXPECT_EQ(off.stats().hits, 0u);
  EXPECT_EQ(off.stats().misses, 2u);
  EXPECT_EQ(off.stats().entries, 0u);
}

TEST_F(CacheTest, AFileInUseOutlivesItsEviction) {
  auto room = OpenRoom();
  ASSERT_TRUE(room);
  DecryptCache cache(64 << 20);
  auto held = cache.Get(*room, "impressions", {"campaign", "email"});
  ASSERT_TRUE(held);
  auto size = (*held)->Size();
  ASSERT_TRUE(size);
  cache.Clear();
  EXPECT_EQ(cache.stats().entries, 0u);
  EXPECT_EQ(cache.stats().bytes, 0u);
  auto db = engine::Database::Open();
  ASSERT_TRUE(db);
  auto n = db->Query("SELECT count(*) FROM read_parquet(" + engine::QuoteLiteral((*held)->path()) +
                     ")");
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(n->ScalarInt(), 500);
}

TEST_F(CacheTest, ManyQueriesAtOnceShareOneEntry) {
  auto room = OpenRoom();
  ASSERT_TRUE(room);
  DecryptCache cache(64 << 20);
  ASSERT_TRUE(cache.Get(*room, "impressions", {"campaign", "email"}));
  std::vector<std::jthread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        auto f = cache.Get(*room, "impressions", {"campaign", "email"});
        if (f && (*f)->Size() && *(*f)->Size() > 0) ++ok;
      }
    });
  }
  threads.clear();
  EXPECT_EQ(ok.load(), 160);
  EXPECT_EQ(cache.stats().misses, 1u);
  EXPECT_EQ(cache.stats().hits, 160u);
  EXPECT_EQ(cache.stats().entries, 1u);
}

TEST(ParseByteSize, AcceptsWholeNumbersOfBinaryUnits) {
  EXPECT_EQ(*ParseByteSize("0"), 0u);
  EXPECT_EQ(*ParseByteSize("1000"), 1000u);
  EXPECT_EQ(*ParseByteSize("64KiB"), 64u << 10);
  EXPECT_EQ(*ParseByteSize("512MiB"), 512ull << 20);
  EXPECT_EQ(*ParseByteSize("2GiB"), 2ull << 30);
  for (const char* bad : {"", "MiB", "1.5GiB", "-1", "12 MiB", "12mb", "99999999999999999999",
                          "20000000000TiB"}) {
    auto r = ParseByteSize(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::BAD_INPUT) << bad;
  }
}

}  // namespace
}  // namespace cr::room
