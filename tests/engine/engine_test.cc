#include "engine/closer.h"
#include "engine/engine.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <filesystem>

#include "testing/temp_dir.h"

namespace cr::engine {
namespace {

TEST(EngineTest, QueriesAndTypes) {
  auto db = Database::Open();
  ASSERT_TRUE(db) << db.error().message;
  auto r = db->Query("SELECT 42 AS a, 'x' AS b, NULL::INTEGER AS c");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->names(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(r->types()[0], "INTEGER");
  EXPECT_EQ(*r->at(0, 0), "42");
  EXPECT_EQ(*r->at(0, 1), "x");
  EXPECT_FALSE(r->at(0, 2).has_value());
  EXPECT_EQ(r->ScalarInt(), 42);
}

TEST(EngineTest, ExtensionAutoloadAndInstallAreOff) {
  auto db = Database::Open();
  ASSERT_TRUE(db);
  auto r = db->Query("SELECT current_setting('autoload_known_extensions')::VARCHAR, "
                     "current_setting('autoinstall_known_extensions')::VARCHAR");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r->at(0, 0), "false");
  EXPECT_EQ(*r->at(0, 1), "false");
}

// Plaintext must never touch the disk: DuckDB's default for an in-memory
// database is to spill to ./.tmp under memory pressure. Here a statement that
// needs more than the memory limit fails instead,
// and nothing appears on disk; the same statement with a temporary directory
// set (DuckDB's default behaviour) does write spill files there. The failure
// is reported as out of memory (the query executor refuses it as a limit).
TEST(EngineTest, NothingSpillsToDiskWhenMemoryRunsShort) {
  testing::TempDir dir;
  struct Cwd {
    std::filesystem::path old = std::filesystem::current_path();
    ~Cwd() { std::filesystem::current_path(old); }
  } restore;
  std::filesystem::current_path(dir.path());
  // Sorting 8M strings needs ~200 MB: within 64 MB only by spilling.
  const std::string big =
      "SELECT count(*) FROM (SELECT i, 'row-' || i::VARCHAR AS s FROM range(8000000) t(i) "
      "ORDER BY s DESC)";
  {
    auto db = Database::Open({.threads = 1, .memory_limit = "64MB"});
    ASSERT_TRUE(db);
    auto setting = db->Query("SELECT current_setting('temp_directory')::VARCHAR");
    ASSERT_TRUE(setting);
    EXPECT_EQ(setting->at(0, 0).value_or("?"), "");
    auto r = db->Query(big, ErrorCode::INTERNAL, false);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::INTERNAL);  // the caller's code
    EXPECT_EQ(db->LastFailure(), FailureKind::kOutOfMemory);
    ASSERT_TRUE(db->Query("SELECT 1"));
    EXPECT_EQ(db->LastFailure(), FailureKind::kNone);
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
  {
    auto db = Database::Open({.threads = 1, .memory_limit = "64MB"});
    ASSERT_TRUE(db);
    ASSERT_TRUE(db->Execute("SET temp_directory = " + QuoteLiteral(dir / "spill")));
    auto r = db->Query(big);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(*r->at(0, 0), "8000000");
    // The control: it did spill there (DuckDB removes the folder on close).
    EXPECT_TRUE(std::filesystem::exists(dir / "spill"));
  }
}

TEST(EngineTest, ErrorsCarryCodeAndCanHideDetail) {
  auto db = Database::Open();
  ASSERT_TRUE(db);
  auto r = db->Query("SELECT CAST('secret-value' AS INTEGER)", ErrorCode::CAST_FAILED, false);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::CAST_FAILED);
  EXPECT_EQ(r.error().message.find("secret-value"), std::string::npos);
}

TEST(EngineTest, ParquetRoundTripThroughMemoryOnly) {
  auto db = Database::Open();
  ASSERT_TRUE(db);
  auto mem = MemFile::Create("t");
  ASSERT_TRUE(mem);
  ASSERT_TRUE(db->Execute("COPY (SELECT range AS i, range * 2 AS j FROM range(1000)) TO " +
                          QuoteLiteral(mem->path()) + " (FORMAT parquet, USE_TMP_FILE false)"));
  EXPECT_GT(*mem->Size(), 100u);
  auto r = db->Query("SELECT count(*), sum(j) FROM read_parquet(" + QuoteLiteral(mem->path()) + ")");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r->at(0, 0), "1000");
  EXPECT_EQ(*r->at(0, 1), "999000");
  std::string head;
  ASSERT_TRUE(mem->ReadAt(0, 4, &head));
  EXPECT_EQ(head, "PAR1");
  mem->Wipe();
  EXPECT_EQ(*mem->Size(), 0u);
}

class XorMapper : public StringMapper {
 public:
  bool Map(std::string_view in, unsigned char out[16]) const override {
    if (in.empty()) return false;
    std::memset(out, 0, 16);
    for (size_t i = 0; i < in.size(); ++i) out[15 - (i % 16)] ^= static_cast<unsigned char>(in[i]);
    return true;
  }
};

TEST(EngineTest, UuidFunctionRunsVectorisedWithNulls) {
  auto db = Database::Open();
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->RegisterUuidFunction("xmap", std::make_shared<XorMapper>()));
  auto r = db->Query(
      "SELECT xmap('A')::VARCHAR, xmap(NULL)::VARCHAR, xmap('')::VARCHAR, typeof(xmap('A'))");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r->at(0, 0), "80000000-0000-0000-0000-000000000041");
  EXPECT_FALSE(r->at(0, 1).has_value());
  EXPECT_FALSE(r->at(0, 2).has_value());
  EXPECT_EQ(*r->at(0, 3), "UUID");
  // Pseudonyms survive a Parquet round trip bit for bit (UHUGEINT would not).
  auto mem = MemFile::Create("p");
  ASSERT_TRUE(db->Execute("COPY (SELECT xmap('hello world, a long key') AS k) TO " +
                          QuoteLiteral(mem->path()) + " (FORMAT parquet, USE_TMP_FILE false)"));
  auto back = db->Query("SELECT k = xmap('hello world, a long key'), typeof(k) FROM read_parquet(" +
                        QuoteLiteral(mem->path()) + ")");
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back->at(0, 0), "true");
  EXPECT_EQ(*back->at(0, 1), "UUID");
  // A UUID column must be cast to be read back, rather than crash the reader.
  auto raw = db->Query("SELECT xmap('A')");
  ASSERT_FALSE(raw);
  EXPECT_NE(raw.error().message.find("cast it to VARCHAR"), std::string::npos);
  // Over many rows (several vectors, several threads) results stay consistent.
  auto big = db->Query(
      "SELECT count(*), count(DISTINCT xmap(chr(65 + (range % 26)::INTEGER))) FROM range(100000)");
  ASSERT_TRUE(big);
  EXPECT_EQ(*big->at(0, 0), "100000");
  EXPECT_EQ(*big->at(0, 1), "26");
}

TEST(EngineTest, Quoting) {
  EXPECT_EQ(QuoteLiteral("a'b"), "'a''b'");
  EXPECT_EQ(QuoteIdent("a\"b"), "\"a\"\"b\"");
}

// Databases handed to a Closer are closed on its thread: a database holds
// the functions registered in it, so each mapper is released once its
// database is gone. Past max_pending, Close closes on the caller's thread.
TEST(CloserTest, ClosesEveryDatabaseHandedOverAndWaitSeesThemGone) {
  std::vector<std::weak_ptr<const StringMapper>> held;
  {
    Closer closer(/*max_pending=*/2);
    for (int i = 0; i < 6; ++i) {
      auto db = Database::Open();
      ASSERT_TRUE(db);
      auto mapper = std::make_shared<XorMapper>();
      held.push_back(mapper);
      ASSERT_TRUE(db->RegisterUuidFunction("xmap", std::move(mapper)));
      ASSERT_TRUE(db->Execute("CREATE TEMP TABLE t AS SELECT xmap(range::VARCHAR) AS k FROM range(50000)"));
      ASSERT_FALSE(held.back().expired());  // the database holds it
      closer.Close(std::move(*db));
    }
    closer.Wait();
    for (const auto& w : held) EXPECT_TRUE(w.expired());
    // After Wait the Closer takes more, and its destructor closes them.
    auto db = Database::Open();
    ASSERT_TRUE(db);
    auto mapper = std::make_shared<XorMapper>();
    held.push_back(mapper);
    ASSERT_TRUE(db->RegisterUuidFunction("xmap", std::move(mapper)));
    closer.Close(std::move(*db));
  }
  EXPECT_TRUE(held.back().expired());
}

}  // namespace
}  // namespace cr::engine
