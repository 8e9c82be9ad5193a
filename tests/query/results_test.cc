// Results: the JSON contract, rendering, sealing to receivers only, and
// tamper detection.
#include <gtest/gtest.h>

#include "results/results.h"
#include "testing/temp_dir.h"

namespace cr::results {
namespace {

ResultSet Sample() {
  ResultSet r;
  r.result_id = "0123456789abcdef0123456789abcdef";
  r.columns = {"channel", "people"};
  r.rows = nlohmann::json::parse(R"([["tv", 1234], ["web, mobile", 99]])");
  r.withheld_rows = 1;
  return r;
}

TEST(ResultsTest, JsonShapeIsTheContract) {
  auto j = nlohmann::json::parse(Render(Sample(), "json"));
  EXPECT_EQ(j["result_id"], "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(j["columns"], nlohmann::json({"channel", "people"}));
  EXPECT_EQ(j["rows"][0], nlohmann::json({"tv", 1234}));
  EXPECT_EQ(j["withheld_rows"], 1);
  auto s = Sample();
  s.withheld_rows.reset();
  EXPECT_TRUE(nlohmann::json::parse(Render(s, "json"))["withheld_rows"].is_null());
  EXPECT_EQ(Render(Sample(), "json").rfind("{\"result_id\"", 0), 0u);
  EXPECT_EQ(Render(Sample(), "csv"), "channel,people\ntv,1234\n\"web, mobile\",99\n");
  auto back = FromJson(ToJson(Sample()));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->rows, Sample().rows);
}

TEST(ResultsTest, SealedOnlyToReceivers) {
  ASSERT_TRUE(crypto::Init());
  cr::testing::TempDir dir;
  auto a = crypto::Identity::Generate(), b = crypto::Identity::Generate();
  room::MetaSealer sealer(crypto::Identity::Generate());  // the room's
  ASSERT_TRUE(Store(dir.path(), sealer, Sample(), {{"acme", a.pub()}}, {{"n", 1}}));
  auto ok = Open(dir.path(), sealer, Sample().result_id, "acme", a);
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->rows, Sample().rows);
  auto other = Open(dir.path(), sealer, Sample().result_id, "newsco", b);
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code, ErrorCode::NOT_AUTHORIZED);
  // Another party's key on acme's copy does not open it.
  auto wrong = Open(dir.path(), sealer, Sample().result_id, "acme", b);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, ErrorCode::TAMPERED);
  auto missing = Open(dir.path(), sealer, "ffffffffffffffffffffffffffffffff", "acme", a);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::RESULT_NOT_FOUND);
  auto traversal = Open(dir.path(), sealer, "../../etc", "acme", a);
  ASSERT_FALSE(traversal);
  EXPECT_EQ(traversal.error().code, ErrorCode::RESULT_NOT_FOUND);
  // A flipped byte is detected.
  std::string path = dir.path() + "/results/" + Sample().result_id + "/acme.sealed";
  std::string bytes = cr::testing::Slurp(path);
  bytes[bytes.size() / 2] ^= 1;
  cr::testing::Spit(path, bytes);
  auto t = Open(dir.path(), sealer, Sample().result_id, "acme", a);
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, ErrorCode::TAMPERED);
  // The plaintext is nowhere in the room folder.
  for (auto& [rel, content] : cr::testing::Snapshot(dir.path())) {
    EXPECT_EQ(content.find("1234"), std::string::npos) << rel;
  }
  EXPECT_FALSE(Store(dir.path(), sealer, Sample(), {{"acme", a.pub()}}, {}));
  // The metadata is sealed by the room: changed, or read by another room, it is TAMPERED.
  std::string meta_path = dir.path() + "/results/" + Sample().result_id + "/meta.json";
  EXPECT_TRUE(ReadMeta(dir.path(), sealer, Sample().result_id));
  room::MetaSealer other_room(crypto::Identity::Generate());
  auto foreign = ReadMeta(dir.path(), other_room, Sample().result_id);
  ASSERT_FALSE(foreign);
  EXPECT_EQ(foreign.error().code, ErrorCode::TAMPERED);
  std::string meta = cr::testing::Slurp(meta_path);
  meta[3] ^= 1;
  cr::testing::Spit(meta_path, meta);
  auto changed = ListFor(dir.path(), sealer, "acme");
  ASSERT_FALSE(changed);
  EXPECT_EQ(changed.error().code, ErrorCode::TAMPERED);
}

}  // namespace
}  // namespace cr::results
