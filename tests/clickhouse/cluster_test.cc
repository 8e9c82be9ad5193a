// The ClickHouse client against a real two-shard cluster: the cluster the
// fixture starts, RowBinary inserts through a Distributed table sharded by the
// privacy-unit pseudonym, the mapping of ClickHouse's failures to our codes
// (limits, read-only user, a shard killed), and the URL parser.
#include <gtest/gtest.h>

#include <cstdio>
#include <thread>

#include <fmt/format.h>

#include "clickhouse/client.h"
#include "clickhouse/row_binary.h"
#include "testing/clickhouse_cluster.h"

namespace cr::clickhouse {
namespace {

using cr::testing::ClickHouseCluster;

Client ClientFor(const ClickHouseCluster& c, size_t i, const std::string& user = ClickHouseCluster::kUser) {
  return Client(*ParseUrl(c.servers()[i].Url()), user, ClickHouseCluster::kPassword, 60);
}

// A deterministic UUID for unit i (the room's pseudonyms are UUIDs).
std::array<uint8_t, 16> UnitId(uint64_t i) {
  std::array<uint8_t, 16> b{};
  uint64_t x = i * 0x9E3779B97F4A7C15ULL + 1;
  for (int k = 0; k < 8; ++k) b[k] = static_cast<uint8_t>(x >> (8 * k));
  for (int k = 0; k < 8; ++k) b[8 + k] = static_cast<uint8_t>(i >> (8 * k));
  return b;
}

std::string UuidText(const std::array<uint8_t, 16>& b) {
  std::string hex;
  for (int k = 0; k < 16; ++k) {
    if (k == 4 || k == 6 || k == 8 || k == 10) hex += '-';
    hex += fmt::format("{:02x}", b[k]);
  }
  return hex;
}

class ClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!ClickHouseCluster::Available()) return;
    cluster_ = new ClickHouseCluster(2);
    std::printf("clickhouse: two shards ready in %.2f s\n", cluster_->startup_seconds());
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override {
    if (!ClickHouseCluster::Available()) GTEST_SKIP() << ClickHouseCluster::SkipMessage();
    ASSERT_TRUE(cluster_->ok()) << cluster_->error();
  }
  static ClickHouseCluster* cluster_;
};
ClickHouseCluster* ClusterTest::cluster_ = nullptr;

TEST_F(ClusterTest, BothServersSeeTheTwoShardCluster) {
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(cluster_->Run(i, "SELECT count() FROM system.clusters WHERE cluster = 'cr_test'"), "2\n");
    EXPECT_EQ(cluster_->Run(i, "SELECT toString(toDateTime(86400))"), "1970-01-02 00:00:00\n");
  }
  EXPECT_TRUE(ClientFor(*cluster_, 0).Ping());
}

TEST_F(ClusterTest, RowBinaryInsertIsShardedByTheUnitAndReadsBack) {
  for (size_t i = 0; i < 2; ++i) {
    ASSERT_EQ(cluster_->Run(i, "CREATE TABLE rb_local (unit UUID, campaign String, cost Nullable(Float64), "
                               "day Date) ENGINE = MergeTree ORDER BY unit"), "");
  }
  ASSERT_EQ(cluster_->Run(0, "CREATE TABLE rb AS rb_local ENGINE = Distributed(cr_test, default, rb_local, "
                             "cityHash64(toString(unit)))"), "");
  constexpr int kUnits = 5000;
  // Streamed in chunks of 1000 rows; 3 rows per unit, every 7th cost NULL.
  int next = 0;
  Producer produce = [&](std::string* out) -> Result<bool> {
    RowBinary w(out);
    for (int n = 0; n < 1000 && next < kUnits * 3; ++n, ++next) {
      int unit = next / 3;
      w.Uuid(UnitId(static_cast<uint64_t>(unit)));
      w.String(unit % 2 ? "odd" : std::string(300, 'e'));  // a 300-byte string: two-byte length
      w.Null(next % 7 == 0);
      if (next % 7 != 0) w.Float64(0.5 * (next % 10));
      w.UInt16(static_cast<uint16_t>(19723 + next % 3));  // 2024-01-01 + 0..2
    }
    return next < kUnits * 3;
  };
  // Inserting through the Distributed table with insert_distributed_sync
  // sends each row to its shard before the request returns.
  Client c = ClientFor(*cluster_, 0);
  Settings sync;
  sync.extra["insert_distributed_sync"] = "1";
  ASSERT_TRUE(c.Insert("rb", "RowBinary", produce, sync)) << "insert failed";
  auto total = c.Query("SELECT count(), uniqExact(unit), countIf(isNull(cost)), sum(cost) FROM rb FORMAT TSV");
  ASSERT_TRUE(total) << total.error().message;
  double sum = 0;
  int nulls = 0;
  for (int n = 0; n < kUnits * 3; ++n) {
    if (n % 7 == 0) ++nulls;
    else sum += 0.5 * (n % 10);
  }
  EXPECT_EQ(*total, fmt::format("{}\t{}\t{}\t{}\n", kUnits * 3, kUnits, nulls, sum));
  // Each shard holds a share, and every unit lives on exactly one shard.
  auto a = cluster_->Run(0, "SELECT count() FROM rb_local");
  auto b = cluster_->Run(1, "SELECT count() FROM rb_local");
  EXPECT_GT(std::stoi(a), kUnits / 2);
  EXPECT_GT(std::stoi(b), kUnits / 2);
  EXPECT_EQ(std::stoi(a) + std::stoi(b), kUnits * 3);
  EXPECT_EQ(std::stoi(a) % 3, 0);
  // The UUID layout: ClickHouse prints what we meant.
  EXPECT_EQ(*c.Query("SELECT toString(unit), campaign, day FROM rb WHERE unit = toUUID('" +
                     UuidText(UnitId(7)) + "') LIMIT 1 FORMAT TSV"),
            UuidText(UnitId(7)) + "\todd\t2024-01-0" + std::to_string(1 + 21 % 3) + "\n");
}

// The insert fails with the producer's error. ClickHouse keeps the blocks it
// has already received (18.16 commits them as they arrive), so a loader must
// insert into a staging table and move it into place only after success.
TEST_F(ClusterTest, AProducerErrorFailsTheInsertWithItsCode) {
  ASSERT_EQ(cluster_->Run(0, "CREATE TABLE abort_t (x Int64) ENGINE = MergeTree ORDER BY x"), "");
  int calls = 0;
  Producer produce = [&](std::string* out) -> Result<bool> {
    if (++calls == 3) return Fail(ErrorCode::BAD_INPUT, "the source failed");
    RowBinary w(out);
    for (int i = 0; i < 100; ++i) w.Int64(i);
    return true;
  };
  auto st = ClientFor(*cluster_, 0).Insert("abort_t", "RowBinary", produce);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::BAD_INPUT);
  EXPECT_EQ(calls, 3);
}

TEST_F(ClusterTest, LimitsBecomeClusterSettingsAndFailAsLimitExceeded) {
  Client c = ClientFor(*cluster_, 0, ClickHouseCluster::kReadOnlyUser);
  Settings time;
  time.max_execution_time = 1;
  auto slow = c.Query("SELECT count() FROM system.numbers WHERE sipHash64(number) = 0", time);
  ASSERT_FALSE(slow);
  EXPECT_EQ(slow.error().code, ErrorCode::QUERY_LIMIT_EXCEEDED) << slow.error().message;
  Settings memory;
  memory.max_memory_usage = 10'000'000;
  auto big = c.Query("SELECT length(groupArray(number)) FROM numbers(50000000)", memory);
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code, ErrorCode::QUERY_LIMIT_EXCEEDED) << big.error().message;
  // Within the limits the same user reads.
  EXPECT_EQ(*c.Query("SELECT count() FROM numbers(1000)", memory), "1000\n");
}

TEST_F(ClusterTest, TheReadOnlyUserCannotWriteAndAWrongPasswordIsRefused) {
  auto w = ClientFor(*cluster_, 0, ClickHouseCluster::kReadOnlyUser)
               .Query("CREATE TABLE ro_t (x Int64) ENGINE = Memory");
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code, ErrorCode::NOT_AUTHORIZED) << w.error().message;
  Client wrong(*ParseUrl(cluster_->servers()[0].Url()), ClickHouseCluster::kUser, "not-the-password");
  auto r = wrong.Query("SELECT 1");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::NOT_AUTHORIZED);
}

TEST_F(ClusterTest, ServerErrorTextIsNotPassedOn) {
  // ClickHouse's message would quote the literal; ours keeps only its code.
  auto r = ClientFor(*cluster_, 0).Query("SELECT toDate('secret-value-1234')");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::SQL_INVALID);
  EXPECT_EQ(r.error().message.find("secret-value-1234"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("ClickHouse code"), std::string::npos) << r.error().message;
}

// Its own cluster: one shard is killed while a query over both runs.
TEST(ClusterKillTest, AShardKilledMidQueryFailsAsServerUnreachable) {
  if (!ClickHouseCluster::Available()) GTEST_SKIP() << ClickHouseCluster::SkipMessage();
  ClickHouseCluster cluster(2);
  ASSERT_TRUE(cluster.ok()) << cluster.error();
  for (size_t i = 0; i < 2; ++i) {
    ASSERT_EQ(cluster.Run(i, "CREATE TABLE n_local ENGINE = MergeTree ORDER BY number AS "
                             "SELECT number FROM numbers(1000)"), "");
  }
  ASSERT_EQ(cluster.Run(0, "CREATE TABLE n AS n_local ENGINE = Distributed(cr_test, default, n_local, "
                           "rand())"), "");
  Client c = ClientFor(cluster, 0);
  ASSERT_EQ(*c.Query("SELECT count() FROM n"), "2000\n");
  // A query that keeps shard 1 busy for long; shard 1 is killed while it runs.
  Result<std::string> r;
  std::thread q([&] {
    r = c.Query("SELECT count() FROM n AS a CROSS JOIN numbers(100000000) AS b "
                "WHERE sipHash64(a.number, b.number) = 0");
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  cluster.Kill(1);
  q.join();
  ASSERT_FALSE(r) << *r;
  EXPECT_EQ(r.error().code, ErrorCode::SERVER_UNREACHABLE) << r.error().message;
  // Afterwards every query over the cluster fails the same way, and a dead
  // server is unreachable.
  auto after = c.Query("SELECT count() FROM n");
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error().code, ErrorCode::SERVER_UNREACHABLE) << after.error().message;
  auto direct = ClientFor(cluster, 1).Query("SELECT 1");
  ASSERT_FALSE(direct);
  EXPECT_EQ(direct.error().code, ErrorCode::SERVER_UNREACHABLE);
}

TEST(ClickHouseUrlTest, OnlyHttpHostPortIsAccepted) {
  auto ok = ParseUrl("http://127.0.0.1:8123");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->host, "127.0.0.1");
  EXPECT_EQ(ok->port, 8123);
  EXPECT_TRUE(ParseUrl("http://ch-1.internal:9123/"));
  for (const char* bad : {"", "127.0.0.1:8123", "https://h:8443", "http://h", "http://h:0",
                          "http://h:99999", "http://h:12x", "http://:8123", "http://h/x:1",
                          "http://user@h:8123"}) {
    auto r = ParseUrl(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::USAGE) << bad;
  }
}

TEST(RowBinaryTest, LayoutMatchesClickHouse) {
  std::string out;
  RowBinary w(&out);
  w.String(std::string(300, 'x'));
  EXPECT_EQ(out.substr(0, 2), std::string("\xac\x02", 2));
  out.clear();
  std::array<uint8_t, 16> u{};
  for (int i = 0; i < 16; ++i) u[i] = static_cast<uint8_t>(i * 0x11);
  w.Uuid(u);  // 00112233-4455-6677-8899-aabbccddeeff, as 18.16 writes it
  EXPECT_EQ(out, std::string("\x77\x66\x55\x44\x33\x22\x11\x00\xff\xee\xdd\xcc\xbb\xaa\x99\x88", 16));
}

}  // namespace
}  // namespace cr::clickhouse
