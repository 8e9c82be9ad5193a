// The audit log across room key rotations (room rotate-key): the chain passes
// from key to key through a record signed by the old key and countersigned by
// the new one, and each attack an old key's holder could try is refused.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "audit/audit_log.h"
#include "common/files.h"
#include "crypto/crypto.h"
#include "testing/temp_dir.h"

namespace cr::audit {
namespace {

using cr::testing::Slurp;
using cr::testing::Spit;
using cr::testing::TempDir;
using nlohmann::json;

// An entry hashed and signed again by `key`: what the holder of an old key can do.
json Resigned(json entry, const crypto::Identity& key) {
  json body = entry;
  body.erase("hash");
  body.erase("sig");
  const std::string raw = crypto::Sha256(body.dump());
  entry["hash"] = ToHex(raw);
  entry["sig"] = crypto::Base64Encode(key.Sign(raw));
  return entry;
}

class AuditRotationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::Init());
    path_ = dir_ / "audit.log";
    AuditLog log(path_, k1_);
    ASSERT_TRUE(log.Append("room.init", "operator", {{"catalog", {{"generation", 0}}}}));
    ASSERT_TRUE(log.Append("query.run", "acme", {{"n", 1}}));
  }

  std::vector<std::string> Lines() const {
    std::vector<std::string> out;
    std::istringstream in(Slurp(path_));
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }

  void ExpectBroken(const crypto::PublicIdentity& pub) {
    auto r = Verify(path_, pub);
    ASSERT_FALSE(r) << "not detected";
    EXPECT_EQ(r.error().code, ErrorCode::AUDIT_CHAIN_BROKEN);
  }

  TempDir dir_;
  std::string path_;
  crypto::Identity k1_ = crypto::Identity::Generate();
  crypto::Identity k2_ = crypto::Identity::Generate();
  crypto::Identity k3_ = crypto::Identity::Generate();
};

TEST_F(AuditRotationTest, TheChainFollowsEachRotationToTheCurrentKey) {
  AuditLog old_log(path_, k1_);
  ASSERT_TRUE(old_log.AppendRotation("operator", k2_, {{"catalog", {{"generation", 1}}}}));
  AuditLog log2(path_, k2_);
  ASSERT_TRUE(log2.CheckTail());  // the tail is the rotation, signed by k1 into k2
  ASSERT_TRUE(log2.Append("query.run", "acme", {{"n", 2}}));
  ASSERT_TRUE(log2.AppendRotation("operator", k3_, {}));
  AuditLog log3(path_, k3_);
  ASSERT_TRUE(log3.Append("query.run", "acme", {{"n", 3}}));

  auto r = Verify(path_, k3_.pub());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->entries, 6u);
  // Only the current key is the anchor: the log does not verify under an old one.
  ExpectBroken(k1_.pub());
  ExpectBroken(k2_.pub());
  // Reading back crosses both rotations.
  auto last = LastEntryWith(path_, k3_.pub(), "catalog");
  ASSERT_TRUE(last) << last.error().message;
  EXPECT_EQ(last->at("event"), kRotateEvent);
  EXPECT_EQ(last->at("details").at("new_room_key"), k2_.pub().ToText());
}

TEST_F(AuditRotationTest, TheOldKeyCannotExtendTheLogAfterTheRotation) {
  AuditLog old_log(path_, k1_);
  ASSERT_TRUE(old_log.AppendRotation("operator", k2_, {}));
  // The old key's holder appends an entry of its own: Append refuses (the
  // tail is not k1's to extend) ...
  EXPECT_FALSE(old_log.Append("query.run", "mallory", {}));
  // ... and written by hand, it breaks verification under room.pub (k2).
  AuditLog log2(path_, k2_);
  ASSERT_TRUE(log2.Append("query.run", "acme", {}));
  auto lines = Lines();
  json forged = json::parse(lines.back());
  forged["actor"] = "mallory";
  forged = Resigned(forged, k1_);
  lines.back() = forged.dump();
  std::string data;
  for (const auto& l : lines) data += l + "\n";
  Spit(path_, data);
  ExpectBroken(k2_.pub());
}

TEST_F(AuditRotationTest, ARotationWithoutTheNewKeysCountersignatureIsNotFollowed) {
  // The old key's holder writes a "rotation" into a key of its choosing
  // (or into the real new key) without the new key's signature for this place.
  AuditLog old_log(path_, k1_);
  ASSERT_TRUE(old_log.AppendRotation("operator", k3_, {}));
  auto lines = Lines();
  json rotation = json::parse(lines.back());
  rotation["details"]["new_room_key"] = k2_.pub().ToText();  // claims k2, countersigned by k3
  rotation = Resigned(rotation, k1_);
  lines.back() = rotation.dump();
  std::string data;
  for (const auto& l : lines) data += l + "\n";
  Spit(path_, data);
  ExpectBroken(k2_.pub());
  AuditLog log2(path_, k2_);
  EXPECT_FALSE(log2.CheckTail());
  EXPECT_FALSE(log2.Append("query.run", "acme", {}));
}

TEST_F(AuditRotationTest, ACountersignatureIsBoundToItsPlaceInTheLog) {
  // A genuine rotation record moved onto another history (an old key's
  // holder rewriting what came before it) no longer chains or verifies.
  AuditLog old_log(path_, k1_);
  ASSERT_TRUE(old_log.AppendRotation("operator", k2_, {}));
  auto lines = Lines();
  const std::string rotation = lines.back();
  // Rewrite entry 2 (k1 can sign it) and re-chain the rotation onto it.
  json second = json::parse(lines[1]);
  second["details"]["n"] = 99;
  second = Resigned(second, k1_);
  json moved = json::parse(rotation);
  moved["prev"] = second["hash"];
  moved = Resigned(moved, k1_);
  Spit(path_, lines[0] + "\n" + second.dump() + "\n" + moved.dump() + "\n");
  ExpectBroken(k2_.pub());
}

}  // namespace
}  // namespace cr::audit
