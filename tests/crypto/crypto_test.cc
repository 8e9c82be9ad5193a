#include "crypto/crypto.h"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include "common/files.h"
#include "testing/temp_dir.h"

namespace cr::crypto {
namespace {

using cr::testing::TempDir;

class CryptoTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(Init()); }
};

TEST_F(CryptoTest, IdentityTextRoundTrip) {
  auto id = Identity::Generate();
  auto text = id.ToText();
  auto back = Identity::FromText(text.view());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->pub(), id.pub());
  auto pub = PublicIdentity::FromText(id.pub().ToText());
  ASSERT_TRUE(pub);
  EXPECT_EQ(*pub, id.pub());
}

TEST_F(CryptoTest, MalformedKeysAreRefused) {
  EXPECT_EQ(PublicIdentity::FromText("crpub1:AAAA").error().code, ErrorCode::KEY_INVALID);
  EXPECT_EQ(PublicIdentity::FromText("ssh-ed25519 AAAA").error().code, ErrorCode::KEY_INVALID);
  EXPECT_EQ(Identity::FromText("crkey1:!!!").error().code, ErrorCode::KEY_INVALID);
}

TEST_F(CryptoTest, KeyFilesAreWrittenOnceWithSecretMode) {
  TempDir dir;
  auto id = Identity::Generate();
  ASSERT_TRUE(WriteIdentityFiles(id, dir.path(), "acme"));
  struct stat st;
  ASSERT_EQ(stat((dir / "acme.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto loaded = Identity::Load(dir / "acme.key");
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->pub(), id.pub());
  auto again = WriteIdentityFiles(Identity::Generate(), dir.path(), "acme");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::FILE_EXISTS);
  EXPECT_EQ(Identity::Load(dir / "acme.key")->pub(), id.pub());  // unchanged
  // A world-readable key file is refused.
  chmod((dir / "acme.key").c_str(), 0644);
  EXPECT_EQ(Identity::Load(dir / "acme.key").error().code, ErrorCode::KEY_INVALID);
}

TEST_F(CryptoTest, SignaturesDetectChanges) {
  auto id = Identity::Generate();
  auto other = Identity::Generate();
  std::string sig = id.Sign("hello");
  EXPECT_TRUE(Verify(id.pub(), "hello", sig));
  EXPECT_FALSE(Verify(id.pub(), "hellp", sig));
  EXPECT_FALSE(Verify(other.pub(), "hello", sig));
  sig[3] ^= 1;
  EXPECT_FALSE(Verify(id.pub(), "hello", sig));
}

TEST_F(CryptoTest, SealOpensOnlyForRecipient) {
  auto room = Identity::Generate();
  auto other = Identity::Generate();
  std::string sealed = Seal(room.pub(), "data key");
  auto opened = room.Unseal(sealed);
  ASSERT_TRUE(opened);
  EXPECT_EQ(opened->view(), "data key");
  EXPECT_EQ(other.Unseal(sealed).error().code, ErrorCode::TAMPERED);
  sealed[40] ^= 1;
  EXPECT_EQ(room.Unseal(sealed).error().code, ErrorCode::TAMPERED);
}

TEST_F(CryptoTest, AeadBindsAssociatedData) {
  SecureBuffer key(kKeyBytes);
  RandomBytes(key.data(), key.size());
  std::string c = AeadSeal(key, "secret", "dataset=a");
  EXPECT_EQ(AeadOpen(key, c, "dataset=a")->view(), "secret");
  EXPECT_FALSE(AeadOpen(key, c, "dataset=b"));
  c.back() ^= 1;
  EXPECT_FALSE(AeadOpen(key, c, "dataset=a"));
}

TEST_F(CryptoTest, StreamDetectsTamperReorderAndTruncation) {
  SecureBuffer key(kKeyBytes);
  RandomBytes(key.data(), key.size());
  StreamEncryptor enc(key);
  std::string c1 = enc.Push("one", "ad", false);
  std::string c2 = enc.Push("two", "ad", true);

  auto dec = StreamDecryptor::Create(key, enc.header());
  ASSERT_TRUE(dec);
  std::string p;
  bool final = false;
  ASSERT_TRUE(dec->Pull(c1, "ad", &p, &final));
  EXPECT_EQ(p, "one");
  EXPECT_FALSE(final);
  ASSERT_TRUE(dec->Pull(c2, "ad", &p, &final));
  EXPECT_EQ(p, "two");
  EXPECT_TRUE(final);

  auto reordered = StreamDecryptor::Create(key, enc.header());
  EXPECT_FALSE(reordered->Pull(c2, "ad", &p, &final));

  auto tampered = StreamDecryptor::Create(key, enc.header());
  std::string bad = c1;
  bad[5] ^= 1;
  EXPECT_FALSE(tampered->Pull(bad, "ad", &p, &final));

  auto wrong_ad = StreamDecryptor::Create(key, enc.header());
  EXPECT_FALSE(wrong_ad->Pull(c1, "other", &p, &final));
}

// RFC 5869 test case 1.
TEST_F(CryptoTest, HkdfMatchesRfc5869) {
  std::string ikm(22, '\x0b');
  std::string salt, info;
  ASSERT_TRUE(FromHex("000102030405060708090a0b0c", &salt));
  ASSERT_TRUE(FromHex("f0f1f2f3f4f5f6f7f8f9", &info));
  auto okm = HkdfSha256(ikm, salt, info, 42);
  EXPECT_EQ(ToHex(okm.view()),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

// RFC 4231 test case 2.
TEST_F(CryptoTest, HmacMatchesRfc4231) {
  std::string mac = HmacSha256("Jefe", "what do ya want for nothing?");
  EXPECT_EQ(ToHex(mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  KeyedHmac keyed("Jefe");
  unsigned char out[32];
  std::string msg = "what do ya want for nothing?";
  keyed.Mac(msg.data(), msg.size(), out);
  EXPECT_EQ(ToHex(std::string_view(reinterpret_cast<char*>(out), 32)), ToHex(mac));
  // The OpenSSL-backed keyed HMAC equals libsodium's for many keys and lengths,
  // including keys longer than a block (hashed first).
  for (size_t key_len : {0, 1, 32, 64, 65, 200}) {
    std::string key = RandomBytes(key_len);
    KeyedHmac k(key);
    for (size_t msg_len : {0, 1, 55, 56, 64, 100, 1000}) {
      std::string m = RandomBytes(msg_len);
      k.Mac(m.data(), m.size(), out);
      EXPECT_EQ(ToHex(std::string_view(reinterpret_cast<char*>(out), 32)),
                ToHex(HmacSha256(key, m)))
          << key_len << "/" << msg_len;
    }
  }
}

TEST_F(CryptoTest, Blake2bStreamMatchesAcrossChunking) {
  Blake2bStream a;
  a.Update("hello ");
  a.Update("world");
  Blake2bStream b;
  b.Update("hello world");
  Blake2bStream c;
  c.Update("hello worle");
  std::string da = a.Final();
  EXPECT_EQ(da.size(), 64u);
  EXPECT_EQ(da, b.Final());
  EXPECT_NE(da, c.Final());
  // RFC 7693 appendix A: BLAKE2b-512("abc").
  Blake2bStream abc;
  abc.Update("abc");
  EXPECT_EQ(ToHex(abc.Final()),
            "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1"
            "7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923");
}

TEST_F(CryptoTest, SharedSecretFile) {
  TempDir dir;
  ASSERT_TRUE(WriteNewSharedSecret(dir / "s"));
  auto s = LoadSharedSecret(dir / "s");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->size(), 32u);
  EXPECT_EQ(WriteNewSharedSecret(dir / "s").error().code, ErrorCode::FILE_EXISTS);
  cr::testing::Spit(dir / "t", "nonsense");
  EXPECT_EQ(LoadSharedSecret(dir / "t").error().code, ErrorCode::KEY_INVALID);
}

}  // namespace
}  // namespace cr::crypto
