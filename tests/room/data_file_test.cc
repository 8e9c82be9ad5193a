// The room's at-rest data files: a real Parquet file written by DuckDB into
// memory, stored, read back whole and by column, and attacked (bit flips in
// every region, truncation, extension, swapped units, wrong key, wrong binding).
#include "room/data_file.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include <fmt/format.h>

#include "common/files.h"
#include "crypto/crypto.h"
#include "testing/temp_dir.h"

namespace cr::room {
namespace {

using cr::testing::Slurp;
using cr::testing::Spit;
using cr::testing::TempDir;

constexpr std::string_view kBinding = "impressions/0123456789abcdef";

class DataFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::Init());
    auto db = engine::Database::Open();
    ASSERT_TRUE(db);
    db_ = std::make_unique<engine::Database>(std::move(*db));
    auto mem = engine::MemFile::Create("test-plain");
    ASSERT_TRUE(mem);
    plain_ = std::make_unique<engine::MemFile>(std::move(*mem));
    // 300k rows in row groups of 100k: several chunks per column, and a
    // pseudonym-like column of random bytes large enough to span many units.
    ASSERT_TRUE(db_->Execute(fmt::format(
        "COPY (SELECT uuid() AS email, 'c' || (i % 7) AS campaign, (i % 500) / 100.0 AS cost "
        "FROM range(300000) t(i)) TO {} (FORMAT parquet, ROW_GROUP_SIZE 100000, USE_TMP_FILE false)",
        engine::QuoteLiteral(plain_->path()))));
    auto size = plain_->Size();
    ASSERT_TRUE(size);
    ASSERT_TRUE(plain_->ReadAt(0, *size, &bytes_));
    auto segs = ParquetSegments(*db_, *plain_);
    ASSERT_TRUE(segs);
    segments_ = *segs;
    auto w = WriteDataFile(path_, *plain_, segments_, kBinding);
    ASSERT_TRUE(w) << w.error().message;
    key_ = std::move(w->key);
    EXPECT_EQ(w->bytes, std::filesystem::file_size(path_));
  }

  Result<engine::MemFile> Read(const std::set<std::string>* columns = nullptr,
                               std::string_view binding = kBinding) {
    return ReadDataFile(path_, key_, binding, columns);
  }

  std::string Contents(const engine::MemFile& m) {
    std::string out;
    auto size = m.Size();
    EXPECT_TRUE(size);
    EXPECT_TRUE(m.ReadAt(0, *size, &out));
    return out;
  }

  struct StoredUnit {
    std::string column;
    uint64_t at = 0;      // offset in the stored file
    uint64_t length = 0;  // ciphertext bytes
  };
  // Every unit of the stored file, in order (the layout of data_file.h).
  std::vector<StoredUnit> StoredUnits() {
    std::string file = Slurp(path_);
    uint32_t hl = 0;
    for (int i = 0; i < 4; ++i) hl |= static_cast<uint32_t>(static_cast<unsigned char>(file[9 + i])) << (8 * i);
    std::vector<StoredUnit> out;
    uint64_t at = 13 + hl;
    for (const auto& s : segments_) {
      for (uint64_t off = 0; off < s.length; off += kUnitBytes) {
        uint64_t n = std::min(kUnitBytes, s.length - off) + crypto::UnitCipher::kTagBytes;
        out.push_back({s.column, at, n});
        at += n;
      }
    }
    EXPECT_EQ(at, file.size());
    return out;
  }

  uint64_t FirstUnitOffsetOf(const std::string& column) {
    for (const auto& u : StoredUnits()) {
      if (u.column == column) return u.at;
    }
    ADD_FAILURE() << "no unit of " << column;
    return 0;
  }

  void ExpectTampered(const std::string& file, const char* what) {
    Spit(path_, file);
    auto r = Read();
    ASSERT_FALSE(r) << what;
    EXPECT_EQ(r.error().code, ErrorCode::TAMPERED) << what;
  }

  TempDir dir_;
  std::string path_ = dir_ / "d.crdata";
  std::unique_ptr<engine::Database> db_;
  std::unique_ptr<engine::MemFile> plain_;
  std::string bytes_;
  std::vector<Segment> segments_;
  crypto::SecureBuffer key_;
};

TEST_F(DataFileTest, SegmentsAreTheColumnChunksAndCoverTheFile) {
  uint64_t at = 0;
  std::map<std::string, int> chunks;
  for (const auto& s : segments_) {
    EXPECT_EQ(s.offset, at);
    at += s.length;
    chunks[s.column]++;
  }
  EXPECT_EQ(at, bytes_.size());
  EXPECT_GE(chunks["email"], 2);  // one chunk per row group
  EXPECT_EQ(chunks["campaign"], chunks["email"]);
  EXPECT_EQ(chunks["cost"], chunks["email"]);
  EXPECT_GE(chunks[""], 2);  // the magic in front, the footer behind
  EXPECT_EQ(segments_.front().column, "");
  EXPECT_EQ(segments_.back().column, "");
}

TEST_F(DataFileTest, NotParquetIsOneSharedSegment) {
  auto mem = engine::MemFile::Create("junk");
  ASSERT_TRUE(mem);
  ASSERT_TRUE(mem->Append("this is not a parquet file"));
  auto segs = ParquetSegments(*db_, *mem);
  ASSERT_TRUE(segs);
  ASSERT_EQ(segs->size(), 1u);
  EXPECT_EQ((*segs)[0], (Segment{"", 0, 26}));
}

TEST_F(DataFileTest, StoredBytesAreCiphertext) {
  std::string file = Slurp(path_);
  EXPECT_EQ(file.find("PAR1"), std::string::npos);
  EXPECT_EQ(file.find("campaign"), std::string::npos);  // the header is sealed too
  // A pseudonym (16 random bytes) from the plaintext does not appear.
  EXPECT_EQ(file.find(bytes_.substr(bytes_.size() / 3, 16)), std::string::npos);
}

TEST_F(DataFileTest, ReadsBackEveryByte) {
  for (unsigned threads : {1u, 2u, 7u}) {
    auto m = ReadDataFile(path_, key_, kBinding, nullptr, threads);
    ASSERT_TRUE(m) << m.error().message;
    EXPECT_EQ(Contents(*m), bytes_) << threads;
  }
}

TEST_F(DataFileTest, ReadsOnlyTheWantedColumnsAndDuckDbAgrees) {
  std::set<std::string> wanted = {"campaign", "cost"};
  auto m = Read(&wanted);
  ASSERT_TRUE(m);
  std::string got = Contents(*m);
  ASSERT_EQ(got.size(), bytes_.size());
  for (const auto& s : segments_) {
    std::string want = s.column == "email" ? std::string(s.length, '\0') : bytes_.substr(s.offset, s.length);
    EXPECT_EQ(got.substr(s.offset, s.length), want) << s.column << " at " << s.offset;
  }
  auto q = [&](const std::string& path) {
    auto r = db_->Query(fmt::format(
        "SELECT campaign, count(*), round(sum(cost), 4) FROM read_parquet({}) GROUP BY ALL ORDER BY ALL",
        engine::QuoteLiteral(path)));
    EXPECT_TRUE(r);
    std::string out;
    for (size_t i = 0; r && i < r->row_count(); ++i) {
      out += *r->at(i, 0) + "," + *r->at(i, 1) + "," + *r->at(i, 2) + ";";
    }
    return out;
  };
  std::string expected = q(plain_->path());
  EXPECT_FALSE(expected.empty());
  EXPECT_EQ(q(m->path()), expected);
}

TEST_F(DataFileTest, EveryRegionIsAuthenticated) {
  const std::string file = Slurp(path_);
  struct Case { uint64_t at; const char* what; };
  std::vector<Case> cases = {{0, "magic"}, {8, "cipher"}, {9, "header length"},
                             {20, "header"}, {FirstUnitOffsetOf("email") + 5, "email unit"},
                             {FirstUnitOffsetOf("cost") + 3, "cost unit"},
                             {file.size() - 1, "last tag"}};
  for (const auto& c : cases) {
    std::string bad = file;
    bad[c.at] ^= 0x01;
    ExpectTampered(bad, c.what);
  }
  ExpectTampered(file.substr(0, file.size() - 1), "truncated");
  ExpectTampered(file + "x", "extended");
  ExpectTampered(file.substr(0, 12), "header cut");
  ExpectTampered("", "empty");
}

TEST_F(DataFileTest, SwappedUnitsAreDetected) {
  // Two full units of the email column (each row group's chunk spans more than
  // one unit), exchanged: every byte is authentic, only the order is wrong.
  std::vector<StoredUnit> full;
  for (const auto& u : StoredUnits()) {
    if (u.column == "email" && u.length == kUnitBytes + crypto::UnitCipher::kTagBytes) full.push_back(u);
  }
  ASSERT_GE(full.size(), 2u);
  std::string file = Slurp(path_);
  std::string bad = file;
  bad.replace(full[0].at, full[0].length, file.substr(full[1].at, full[1].length));
  bad.replace(full[1].at, full[1].length, file.substr(full[0].at, full[0].length));
  ExpectTampered(bad, "swapped");
}

TEST_F(DataFileTest, AColumnNotReadIsNotChecked) {
  // Damage in a column the reader does not ask for is not seen by that read
  // (those bytes are never decrypted nor used); a read of it fails.
  std::string bad = Slurp(path_);
  bad[FirstUnitOffsetOf("email") + 5] ^= 1;
  Spit(path_, bad);
  std::set<std::string> wanted = {"campaign"};
  EXPECT_TRUE(Read(&wanted));
  wanted = {"email"};
  auto r = Read(&wanted);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::TAMPERED);
}

TEST_F(DataFileTest, DamageInSharedBytesOrTruncationFailsAPartialRead) {
  const std::string file = Slurp(path_);
  std::set<std::string> wanted = {"campaign"};
  // The footer (last shared unit) is read by every query.
  std::string bad = file;
  bad[StoredUnits().back().at + 7] ^= 1;
  Spit(path_, bad);
  auto r = Read(&wanted);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::TAMPERED);
  // Cutting bytes out of a column the query does not read still changes the
  // file's size, which every read checks.
  uint64_t email = FirstUnitOffsetOf("email");
  bad = file.substr(0, email) + file.substr(email + 100);
  Spit(path_, bad);
  r = Read(&wanted);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::TAMPERED);
}

TEST_F(DataFileTest, AWantedColumnTheFileLacksIsAnError) {
  std::set<std::string> wanted = {"campaign", "device"};
  auto r = Read(&wanted);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::INTERNAL);
}

TEST_F(DataFileTest, WrongKeyOrBindingIsRefused) {
  crypto::SecureBuffer other(crypto::kKeyBytes);
  crypto::RandomBytes(other.data(), other.size());
  auto r = ReadDataFile(path_, other, kBinding, nullptr);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::TAMPERED);
  r = Read(nullptr, "purchases/0123456789abcdef");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::TAMPERED);
}

TEST_F(DataFileTest, FailedWriteLeavesNothing) {
  auto w = WriteDataFile(dir_ / "missing/d.crdata", *plain_, segments_, kBinding);
  ASSERT_FALSE(w);
  // Segments that do not cover the data are refused before anything is written.
  auto partial = segments_;
  partial.pop_back();
  w = WriteDataFile(dir_ / "p.crdata", *plain_, partial, kBinding);
  ASSERT_FALSE(w);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "p.crdata"));
  // Everything written, then the rename fails (the destination is a folder
  // that is not empty): the temporary file is removed.
  std::filesystem::create_directory(dir_ / "occupied");
  Spit(dir_ / "occupied/x", "x");
  w = WriteDataFile(dir_ / "occupied", *plain_, segments_, kBinding);
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code, ErrorCode::INTERNAL);
  std::vector<std::string> files;
  for (auto& e : std::filesystem::directory_iterator(dir_.path())) files.push_back(e.path().filename());
  std::sort(files.begin(), files.end());
  EXPECT_EQ(files, (std::vector<std::string>{"d.crdata", "occupied"}));  // no temporary files
}

TEST(UnitCipherTest, IsAes256GcmKnownAnswer) {
  // McGrew & Viega, "The Galois/Counter Mode of Operation", test case 14:
  // K = 0^256, IV = 0^96 (our unit 0), P = 0^128.
  ASSERT_TRUE(crypto::Init());
  crypto::SecureBuffer key(32);
  std::memset(key.data(), 0, 32);
  auto c = crypto::UnitCipher::Create(crypto::UnitCipherKind::kAes256Gcm, key);
  ASSERT_TRUE(c);
  unsigned char plain[16] = {0}, out[32], back[16];
  ASSERT_TRUE(c->Seal(0, "", plain, 16, out));
  EXPECT_EQ(ToHex(std::string_view(reinterpret_cast<char*>(out), 32)),
            "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919");
  EXPECT_TRUE(c->Open(0, "", out, 32, back));
  EXPECT_EQ(std::memcmp(back, plain, 16), 0);
  unsigned char in_place[32];
  std::memcpy(in_place, out, 32);
  EXPECT_TRUE(c->Open(0, "", in_place, 32, in_place));  // decrypting in place
  EXPECT_EQ(std::memcmp(in_place, plain, 16), 0);
  EXPECT_FALSE(c->Open(1, "", out, 32, back));   // another unit's nonce
  EXPECT_FALSE(c->Open(0, "x", out, 32, back));  // other associated data
  out[31] ^= 1;
  EXPECT_FALSE(c->Open(0, "", out, 32, back));
  EXPECT_FALSE(c->Open(0, "", out, 15, back));   // shorter than a tag
  // The nonce is the unit index, little-endian: checked against libsodium's
  // independent AES-256-GCM where the CPU runs it.
  if (crypto_aead_aes256gcm_is_available()) {
    crypto::SecureBuffer k(32);
    crypto::RandomBytes(k.data(), k.size());
    auto u = crypto::UnitCipher::Create(crypto::UnitCipherKind::kAes256Gcm, k);
    ASSERT_TRUE(u);
    const std::string ad = "bound";
    for (uint64_t index : {uint64_t{1}, (uint64_t{1} << 40) + 5, ~uint64_t{0}}) {
      unsigned char mine[16 + 16], theirs[16 + 16], nonce[12] = {0};
      for (int i = 0; i < 8; ++i) nonce[i] = static_cast<unsigned char>(index >> (8 * i));
      unsigned long long len = 0;
      ASSERT_TRUE(u->Seal(index, ad, plain, 16, mine));
      crypto_aead_aes256gcm_encrypt(theirs, &len, plain, 16,
                                    reinterpret_cast<const unsigned char*>(ad.data()), ad.size(),
                                    nullptr, nonce, k.data());
      EXPECT_EQ(std::memcmp(mine, theirs, 32), 0) << index;
    }
  }
  crypto::SecureBuffer short_key(16);
  EXPECT_FALSE(crypto::UnitCipher::Create(crypto::UnitCipherKind::kAes256Gcm, short_key));
}

}  // namespace
}  // namespace cr::room
