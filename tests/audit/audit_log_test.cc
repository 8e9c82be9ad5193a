#include "audit/audit_log.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "common/files.h"
#include "crypto/crypto.h"
#include "testing/temp_dir.h"

namespace cr::audit {
namespace {

using cr::testing::Slurp;
using cr::testing::Spit;
using cr::testing::TempDir;
using nlohmann::json;

std::vector<std::string> Lines(const std::string& path) {
  std::vector<std::string> out;
  std::istringstream in(Slurp(path));
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

void WriteLines(const std::string& path, const std::vector<std::string>& lines) {
  std::string data;
  for (const auto& l : lines) data += l + "\n";
  Spit(path, data);
}

// Re-hashes an entry the way Append does; an attacker without the room key can
// do this much but cannot produce the signature.
std::string Rehash(json entry) {
  json body = entry;
  body.erase("hash");
  body.erase("sig");
  entry["hash"] = ToHex(crypto::Sha256(body.dump()));
  return entry.dump();
}

std::string Resign(json entry, const crypto::Identity& key) {
  entry = json::parse(Rehash(entry));
  std::string raw;
  EXPECT_TRUE(FromHex(entry["hash"].get<std::string>(), &raw));
  entry["sig"] = crypto::Base64Encode(key.Sign(raw));
  return entry.dump();
}

class AuditLogTest : public ::testing::Test {
 protected:
  // The fixture's identities are generated as members, before SetUp runs.
  static void SetUpTestSuite() { ASSERT_TRUE(crypto::Init()); }
  void SetUp() override {
    ASSERT_TRUE(crypto::Init());
    path_ = dir_ / "audit.log";
  }

  // Writes `n` entries with the room key.
  void Fill(int n) {
    AuditLog log(path_, room_);
    for (int i = 1; i <= n; ++i) {
      ASSERT_TRUE(log.Append("query.run", "acme", {{"n", i}, {"template", "reach"}}));
    }
  }

  // Asserts the log is reported broken at `line`, with `why` in the message.
  void ExpectBroken(int line, const std::string& why) {
    auto r = Verify(path_, room_.pub());
    ASSERT_FALSE(r) << "tampering not detected";
    EXPECT_EQ(r.error().code, ErrorCode::AUDIT_CHAIN_BROKEN);
    EXPECT_NE(r.error().message.find(fmt::format("line {} ", line)), std::string::npos)
        << r.error().message;
    EXPECT_NE(r.error().message.find(why), std::string::npos) << r.error().message;
  }

  TempDir dir_;
  std::string path_;
  crypto::Identity room_ = crypto::Identity::Generate();
  crypto::Identity mallory_ = crypto::Identity::Generate();
};

TEST_F(AuditLogTest, MissingLogVerifiesAsEmpty) {
  auto r = Verify(path_, room_.pub());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->entries, 0u);
  EXPECT_EQ(r->head_hash, kGenesisHash);
  auto entries = ReadEntries(path_);
  ASSERT_TRUE(entries);
  EXPECT_TRUE(entries->empty());
}

TEST_F(AuditLogTest, AppendVerifyRoundTrip) {
  AuditLog log(path_, room_);
  ASSERT_TRUE(log.Append("room.init", "operator", {{"collaboration", "acme-newsco"}}));
  ASSERT_TRUE(log.Append("query.refused", "acme", {{"code", "QUERY_REFUSED"}}));
  ASSERT_TRUE(log.Append("room.activate", "operator", nullptr));

  auto r = Verify(path_, room_.pub());
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->entries, 3u);

  auto entries = ReadEntries(path_);
  ASSERT_TRUE(entries);
  ASSERT_EQ(entries->size(), 3u);
  const json& first = (*entries)[0];
  EXPECT_EQ(first["seq"], 1);
  EXPECT_EQ(first["prev"], std::string(kGenesisHash));
  EXPECT_EQ(first["event"], "room.init");
  EXPECT_EQ(first["actor"], "operator");
  EXPECT_EQ(first["details"]["collaboration"], "acme-newsco");
  EXPECT_EQ(first["time"].get<std::string>().size(), 20u);  // 2026-10-01T00:00:00Z
  EXPECT_EQ((*entries)[1]["seq"], 2);
  EXPECT_EQ((*entries)[1]["prev"], first["hash"]);
  EXPECT_EQ((*entries)[2]["details"], json::object());
  EXPECT_EQ(r->head_hash, (*entries)[2]["hash"]);

  // The hash is SHA-256 over the sorted compact dump without hash and sig, and
  // the signature is over the raw hash bytes: anyone can recheck with the spec.
  json body = first;
  body.erase("hash");
  body.erase("sig");
  std::string raw = crypto::Sha256(body.dump());
  EXPECT_EQ(first["hash"], ToHex(raw));
  auto sig = crypto::Base64Decode(first["sig"].get<std::string>());
  ASSERT_TRUE(sig);
  EXPECT_TRUE(crypto::Verify(room_.pub(), raw, *sig));

  // A second writer object continues the same chain.
  AuditLog again(path_, room_);
  ASSERT_TRUE(again.Append("dispose", "operator", {{"dataset", "impressions"}}));
  r = Verify(path_, room_.pub());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->entries, 4u);
}

TEST_F(AuditLogTest, VerifyUnderAnotherKeyFails) {
  Fill(2);
  auto r = Verify(path_, mallory_.pub());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::AUDIT_CHAIN_BROKEN);
}

TEST_F(AuditLogTest, NonObjectDetailsAreRefused) {
  AuditLog log(path_, room_);
  EXPECT_FALSE(log.Append("x", "y", json::array({1, 2})));
  EXPECT_FALSE(PathExists(path_) && !Slurp(path_).empty());
}

TEST_F(AuditLogTest, DetectsChangedField) {
  Fill(3);
  auto lines = Lines(path_);
  json e = json::parse(lines[1]);
  e["actor"] = "newsco";
  lines[1] = e.dump();
  WriteLines(path_, lines);
  ExpectBroken(2, "changed");
}

TEST_F(AuditLogTest, ErrorNeverEchoesEntryContents) {
  Fill(3);
  auto lines = Lines(path_);
  json e = json::parse(lines[1]);
  e["actor"] = "SECRET-VALUE-xyz";
  e["details"]["email"] = "jane@example.com";
  lines[1] = e.dump();
  WriteLines(path_, lines);
  auto r = Verify(path_, room_.pub());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message.find("SECRET-VALUE"), std::string::npos);
  EXPECT_EQ(r.error().message.find("jane"), std::string::npos);
  // Garbage on a line is not echoed either.
  lines[1] = "{not json SECRET-VALUE";
  WriteLines(path_, lines);
  r = Verify(path_, room_.pub());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message.find("SECRET-VALUE"), std::string::npos);
}

TEST_F(AuditLogTest, DetectsDeletedEntry) {
  Fill(4);
  auto lines = Lines(path_);
  lines.erase(lines.begin() + 1);
  WriteLines(path_, lines);
  ExpectBroken(2, "deleted");
}

TEST_F(AuditLogTest, DetectsInsertedEntrySignedWithAnotherKey) {
  Fill(3);
  auto lines = Lines(path_);
  // A well-formed entry that chains perfectly after line 1, with the right seq,
  // signed by mallory: only the room signature check can catch it.
  json forged = json::parse(lines[1]);
  forged["actor"] = "mallory";
  forged["event"] = "budget.reset";
  lines.insert(lines.begin() + 1, Resign(forged, mallory_));
  WriteLines(path_, lines);
  ExpectBroken(2, "bad signature");

  // A verbatim copy of a genuine entry (a replay) is caught by the chain.
  lines = Lines(path_);
  lines.erase(lines.begin() + 1);
  std::string replay = lines[1];
  lines.insert(lines.begin() + 2, replay);
  WriteLines(path_, lines);
  ExpectBroken(3, "inserted");
}

TEST_F(AuditLogTest, DetectsSwappedEntries) {
  Fill(4);
  auto lines = Lines(path_);
  std::swap(lines[1], lines[2]);
  WriteLines(path_, lines);
  ExpectBroken(2, "reordered");
}

TEST_F(AuditLogTest, DetectsRehashedButUnsignedChange) {
  Fill(3);
  auto lines = Lines(path_);
  json e = json::parse(lines[1]);
  e["actor"] = "newsco";
  lines[1] = Rehash(e);  // hash is right again, the old signature no longer matches
  WriteLines(path_, lines);
  ExpectBroken(2, "bad signature");
}

TEST_F(AuditLogTest, DetectsTruncatedLastLine) {
  Fill(3);
  std::string data = Slurp(path_);
  Spit(path_, data.substr(0, data.size() - 40));
  ExpectBroken(3, "truncated");
  // Cutting only the final newline still leaves an incomplete entry.
  Spit(path_, data.substr(0, data.size() - 1));
  ExpectBroken(3, "truncated");
}

// Documented limit: dropping whole entries from the end leaves a valid, shorter
// chain. Only the head hash a party kept from an earlier verify reveals it.
TEST_F(AuditLogTest, TailTruncationIsOnlyVisibleThroughTheHeadWitness) {
  Fill(3);
  auto witness = Verify(path_, room_.pub());
  ASSERT_TRUE(witness);
  auto lines = Lines(path_);
  lines.pop_back();
  WriteLines(path_, lines);
  auto now = Verify(path_, room_.pub());
  ASSERT_TRUE(now);
  EXPECT_EQ(now->entries, 2u);
  EXPECT_NE(now->head_hash, witness->head_hash);
}

TEST_F(AuditLogTest, AppendAfterBrokenLastLineIsRefused) {
  Fill(2);
  std::string data = Slurp(path_);
  std::string cut = data.substr(0, data.size() - 30);
  Spit(path_, cut);
  AuditLog log(path_, room_);
  auto st = log.Append("query.run", "acme", json::object());
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::AUDIT_CHAIN_BROKEN);
  EXPECT_EQ(Slurp(path_), cut);  // nothing appended

  // A complete but unparsable last line is refused too.
  Spit(path_, data + "garbage\n");
  st = log.Append("query.run", "acme", json::object());
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::AUDIT_CHAIN_BROKEN);
  EXPECT_EQ(Slurp(path_), data + "garbage\n");
}

TEST_F(AuditLogTest, AppendRefusesToChainOntoForgedTail) {
  Fill(2);
  auto lines = Lines(path_);
  json forged = json::parse(lines[1]);
  forged["seq"] = 3;
  forged["prev"] = forged["hash"];
  lines.push_back(Resign(forged, mallory_));
  WriteLines(path_, lines);
  std::string before = Slurp(path_);
  AuditLog log(path_, room_);
  auto st = log.Append("query.run", "acme", json::object());
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::AUDIT_CHAIN_BROKEN);
  EXPECT_EQ(Slurp(path_), before);
}

TEST_F(AuditLogTest, LongEntriesChainAcrossReadBlocks) {
  AuditLog log(path_, room_);
  std::string long_name(10000, 'a');
  ASSERT_TRUE(log.Append("spec.sign", "acme", {{"file", long_name}}));
  ASSERT_TRUE(log.Append("spec.sign", "newsco", {{"file", long_name}}));
  auto r = Verify(path_, room_.pub());
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->entries, 2u);
}

TEST_F(AuditLogTest, InvalidUtf8InDetailsStillVerifies) {
  AuditLog log(path_, room_);
  ASSERT_TRUE(log.Append("ingest", "acme", {{"file", std::string("bad\xff\xfe")}}));
  ASSERT_TRUE(log.Append("ingest", "acme", {{"file", "ok"}}));
  auto r = Verify(path_, room_.pub());
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->entries, 2u);
}

}  // namespace
}  // namespace cr::audit
