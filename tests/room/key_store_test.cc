// Key stores and sealed metadata in process: a passphrase store opens with its
// passphrase only and records its Argon2id limits; its file damaged is TAMPERED
// or UNLOCK_FAILED, never a key; a sealed file verifies only unchanged, under
// its own name and its own room's key.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "room/key_store.h"
#include "room/sealed_meta.h"
#include "testing/temp_dir.h"

namespace cr::room {
namespace {

using nlohmann::json;

class KeyStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::Init());
    ForgetUnlockedKeys();
    Use("pass", "a passphrase of some length");
  }
  void TearDown() override {
    UsePassphraseFile("");
    ForgetUnlockedKeys();
  }
  void Use(const std::string& name, const std::string& passphrase) {
    const std::string path = dir_ / name;
    cr::testing::Spit(path, passphrase + "\n");
    ::chmod(path.c_str(), 0600);
    UsePassphraseFile(path);
    ForgetUnlockedKeys();
  }
  cr::testing::TempDir dir_;
};

TEST_F(KeyStoreTest, APassphraseStoreOpensWithItsPassphraseOnly) {
  auto id = crypto::Identity::Generate();
  KeyStoreChoice c;
  c.kind = KeyStoreKind::kPassphrase;
  auto text = CreateKeyStore(c, id);
  ASSERT_TRUE(text) << text.error().message;
  json store = json::parse(*text);
  EXPECT_EQ(store["kdf"], "argon2id13");
  EXPECT_EQ(store["opslimit"], crypto_pwhash_OPSLIMIT_MODERATE);
  EXPECT_EQ(store["memlimit"], crypto_pwhash_MEMLIMIT_MODERATE);
  EXPECT_EQ(crypto::Base64Decode(store["salt"].get<std::string>())->size(), crypto_pwhash_SALTBYTES);
  auto key_text = id.ToText();
  EXPECT_EQ(text->find(std::string(key_text.view()).substr(7, 20)), std::string::npos);

  auto opened = UnlockKeyStore(*text);
  ASSERT_TRUE(opened) << opened.error().message;
  EXPECT_EQ(opened->pub(), id.pub());

  Use("wrong", "another passphrase");
  auto wrong = UnlockKeyStore(*text);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, ErrorCode::UNLOCK_FAILED);

  // Lowered limits or another salt derive another key: not a way in.
  Use("pass", "a passphrase of some length");
  json weaker = store;
  weaker["opslimit"] = crypto_pwhash_OPSLIMIT_MIN;
  auto w = UnlockKeyStore(weaker.dump());
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code, ErrorCode::UNLOCK_FAILED);
  for (const char* field : {"kdf", "opslimit", "memlimit", "salt", "sealed", "room_key", "format", "kind"}) {
    json bad = store;
    bad[field] = json::array();
    auto r = UnlockKeyStore(bad.dump());
    ASSERT_FALSE(r) << field;
    EXPECT_EQ(r.error().code, ErrorCode::TAMPERED) << field;
  }
  json huge = store;
  huge["memlimit"] = uint64_t{1} << 40;  // a changed file cannot ask for a terabyte
  EXPECT_EQ(UnlockKeyStore(huge.dump()).error().code, ErrorCode::TAMPERED);
}

TEST_F(KeyStoreTest, NoPassphraseSourceIsRefusedNotPrompted) {
  UsePassphraseFile("");
  ::unsetenv("CLEANROOM_PASSPHRASE_FILE");
  KeyStoreChoice c;
  c.kind = KeyStoreKind::kPassphrase;
  auto created = CreateKeyStore(c, crypto::Identity::Generate());
  ASSERT_FALSE(created);  // the test's stdin is no terminal
  EXPECT_EQ(created.error().code, ErrorCode::USAGE);
}

TEST(SealedMetaTest, OnlyTheUnchangedFileUnderItsNameAndKeyVerifies) {
  ASSERT_TRUE(crypto::Init());
  auto id = crypto::Identity::Generate();
  MetaSealer sealer(id);
  json body = {{"status", "active"}, {"n", 3}, {"list", {1, 2}}, {"empty", json::object()}};
  const std::string text = sealer.Seal("state.json", body);
  auto back = sealer.Open("state.json", text);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, body);
  EXPECT_TRUE(json::parse(text).contains("mac"));  // still JSON for operators' tools
  EXPECT_TRUE(sealer.Open("{}", sealer.Seal("{}", json::object())));
  for (size_t at = 0; at < text.size(); ++at) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string d = text;
      d[at] = static_cast<char>(d[at] ^ (1 << bit));
      auto r = sealer.Open("state.json", d);
      ASSERT_FALSE(r) << "byte " << at << " bit " << bit;
      ASSERT_EQ(r.error().code, ErrorCode::TAMPERED);
    }
  }
  for (size_t cut = 0; cut < text.size(); ++cut) {
    ASSERT_FALSE(sealer.Open("state.json", text.substr(0, cut))) << cut;
  }
  EXPECT_FALSE(sealer.Open("state.json", text + " "));
  EXPECT_FALSE(sealer.Open("catalog.json", text));
  MetaSealer other(crypto::Identity::Generate());
  EXPECT_FALSE(other.Open("state.json", text));
}

}  // namespace
}  // namespace cr::room
