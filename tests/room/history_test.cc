// The room's version history (room/history.h): its file form, read back
// strictly (any damaged field is TAMPERED), and what a new version changes.
#include "room/history.h"

#include <gtest/gtest.h>

#include <functional>

#include "common/files.h"
#include "crypto/crypto.h"
#include "e2e/e2e_fixture.h"
#include "spec/spec.h"

namespace cr::room {
namespace {

using nlohmann::json;

VersionRecord Record(uint64_t version, const std::string& bytes) {
  VersionRecord v;
  v.version = version;
  v.spec_hash = "h" + std::to_string(version);
  v.spec_sha256 = ToHex(crypto::Sha256(bytes));
  v.activated_at = "2026-12-02T00:00:00Z";
  v.parties = {"acme", "newsco"};
  v.signed_by = {"acme", "newsco"};
  v.spec_bytes = bytes;
  v.key_files = {{"keys/acme.pub", "crpub1:..."}};
  v.signatures = json::array({{{"party", "acme"}}});
  return v;
}

TEST(HistoryTest, RoundTrips) {
  auto j = HistoryToJson({Record(1, "a: 1\n"), Record(2, "a: 2\n")});
  auto back = HistoryFromJson(j);
  ASSERT_TRUE(back) << back.error().message;
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ((*back)[1].spec_bytes, "a: 2\n");
  EXPECT_EQ((*back)[0].key_files.at("keys/acme.pub"), "crpub1:...");
  EXPECT_EQ(VersionSummary((*back)[1])["version"], 2);
  EXPECT_FALSE(VersionSummary((*back)[1]).contains("spec"));
}

TEST(HistoryTest, EveryDamagedFieldIsTampered) {
  const json good = HistoryToJson({Record(1, "a: 1\n"), Record(2, "a: 2\n")});
  const std::vector<std::pair<std::string, std::function<void(json&)>>> cases = {
      {"format", [](json& j) { j["format"] = 2; }},
      {"versions", [](json& j) { j["versions"] = json::array(); }},
      {"version", [](json& j) { j["versions"][1]["version"] = 3; }},  // a gap
      {"version", [](json& j) { j["versions"].erase(0); }},           // starts at 2
      {"spec_hash", [](json& j) { j["versions"][0]["spec_hash"] = 1; }},
      {"activated_at", [](json& j) { j["versions"][0].erase("activated_at"); }},
      {"parties", [](json& j) { j["versions"][0]["parties"] = json::array({1}); }},
      {"signed_by", [](json& j) { j["versions"][0]["signed_by"] = "acme"; }},
      {"spec", [](json& j) { j["versions"][0]["spec"] = crypto::Base64Encode("a: 9\n"); }},
      {"spec", [](json& j) { j["versions"][0]["spec"] = "not base64!"; }},
      {"spec_keys", [](json& j) { j["versions"][0]["spec_keys"]["keys/acme.pub"] = 7; }},
      {"signatures", [](json& j) { j["versions"][0]["signatures"] = json::object(); }},
  };
  for (const auto& [field, damage] : cases) {
    json j = good;
    damage(j);
    auto r = HistoryFromJson(j);
    ASSERT_FALSE(r) << field;
    EXPECT_EQ(r.error().code, ErrorCode::TAMPERED) << field;
    EXPECT_NE(r.error().message.find("\"" + field + "\""), std::string::npos) << r.error().message;
  }
}

class HistoryCompareTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::Init());
    ASSERT_TRUE(MakeDirs(dir_ / "keys"));
    for (const char* name : {"acme", "newsco", "newsco2"}) {
      ASSERT_TRUE(crypto::WriteIdentityFiles(crypto::Identity::Generate(), dir_ / "keys", name));
    }
  }
  spec::Spec Load(const std::string& text) {
    cr::testing::Spit(dir_ / "s.yaml", text);
    auto s = spec::Load(dir_ / "s.yaml");
    EXPECT_TRUE(s) << s.error().message;
    return *s;
  }
  cr::testing::TempDir dir_;
};

TEST_F(HistoryCompareTest, ARuleChangeKeepsDataAndAColumnChangeDoesNot) {
  const std::string base = cr::testing::SpecText();
  spec::Spec from = Load(base);
  std::string tighter = base;
  tighter.replace(tighter.find("min_distinct_units: 100"), 23, "min_distinct_units: 200");
  std::string rebounded = base;
  rebounded.replace(rebounded.find("bounds: [0, 500]"), 16, "bounds: [0, 900]");
  std::string rekeyed = base;
  rekeyed.replace(rekeyed.find("keys/newsco.pub"), 15, "keys/newsco2.pub");

  auto tight = Compare(from, Load(tighter), {"impressions", "purchases"});
  EXPECT_EQ(tight.datasets_kept, (std::vector<std::string>{"impressions", "purchases"}));
  EXPECT_TRUE(tight.datasets_disposed.empty());
  auto bounds = Compare(from, Load(rebounded), {"impressions", "purchases"});
  EXPECT_EQ(bounds.datasets_kept, (std::vector<std::string>{"impressions"}));
  EXPECT_EQ(bounds.datasets_disposed, (std::vector<std::string>{"purchases"}));
  auto keys = Compare(from, Load(rekeyed), {"impressions"});
  EXPECT_EQ(keys.keys_replaced, (std::vector<std::string>{"newsco"}));
  EXPECT_TRUE(keys.parties_added.empty());
  EXPECT_TRUE(keys.parties_removed.empty());
  EXPECT_EQ(keys.datasets_kept, (std::vector<std::string>{"impressions"}));
}

}  // namespace
}  // namespace cr::room
