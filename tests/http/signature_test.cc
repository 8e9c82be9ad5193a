#include "http/signature.h"

#include <gtest/gtest.h>

namespace cr::http {
namespace {

constexpr std::string_view kUri = "https://127.0.0.1:8443/v1/query?x=1";
constexpr std::string_view kBody = R"({"sql":"SELECT 1"})";
constexpr long long kCreated = 1796000000;

class SignatureTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(sodium_ready_); }

  std::map<std::string, std::string> Headers(const SignatureHeaders& h) {
    return {{"content-digest", h.content_digest},
            {"signature-input", h.signature_input},
            {"signature", h.signature}};
  }
  std::function<std::optional<crypto::PublicIdentity>(std::string_view)> KeyOf() {
    return [this](std::string_view party) -> std::optional<crypto::PublicIdentity> {
      if (party == "acme") return acme_.pub();
      if (party == "globex") return globex_.pub();
      return std::nullopt;
    };
  }
  Result<VerifiedRequest> VerifySigned(std::map<std::string, std::string> headers,
                                       std::string_view method = "POST",
                                       std::string_view uri = kUri,
                                       std::string_view body = kBody) {
    return Verify(method, uri, headers, body, KeyOf());
  }
  // Signs a hand-written Signature-Input so tests can vary what the library
  // itself never writes (order, parameters).
  std::map<std::string, std::string> HandSigned(const std::string& params,
                                                const std::string& base) {
    return {{"content-digest", ContentDigest(kBody)},
            {"signature-input", "sig1=" + params},
            {"signature", "sig1=:" + StdB64(acme_.Sign(base)) + ":"}};
  }
  static std::string StdB64(std::string_view raw) {
    std::string out(sodium_base64_ENCODED_LEN(raw.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
    sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(raw.data()),
                      raw.size(), sodium_base64_VARIANT_ORIGINAL);
    out.pop_back();
    return out;
  }

  // Before the identities: libsodium must be initialised to make them.
  bool sodium_ready_ = crypto::Init().has_value();
  crypto::Identity acme_ = crypto::Identity::Generate();
  crypto::Identity globex_ = crypto::Identity::Generate();
  SignatureHeaders signed_ = Sign(acme_, "acme", "POST", kUri, kBody, kCreated, "bm9uY2Utb25l");
};

TEST_F(SignatureTest, ContentDigestIsTheRfc9530Example) {
  // RFC 9530 section 2 example body and value.
  EXPECT_EQ(ContentDigest(R"({"hello": "world"})"),
            "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:");
}

TEST_F(SignatureTest, HeadersAndBaseFollowRfc9421Layout) {
  EXPECT_EQ(signed_.signature_input,
            "sig1=(\"@method\" \"@target-uri\" \"content-digest\");created=1796000000;"
            "nonce=\"bm9uY2Utb25l\";keyid=\"acme\";alg=\"ed25519\"");
  EXPECT_TRUE(signed_.signature.starts_with("sig1=:"));
  EXPECT_TRUE(signed_.signature.ends_with(":"));
  std::string base = SignatureBase("POST", kUri, ContentDigest(kBody),
                                   SignatureParams(kCreated, "bm9uY2Utb25l", "acme"));
  EXPECT_EQ(base,
            "\"@method\": POST\n"
            "\"@target-uri\": https://127.0.0.1:8443/v1/query?x=1\n"
            "\"content-digest\": " + ContentDigest(kBody) + "\n"
            "\"@signature-params\": (\"@method\" \"@target-uri\" \"content-digest\");"
            "created=1796000000;nonce=\"bm9uY2Utb25l\";keyid=\"acme\";alg=\"ed25519\"");
  // The signature is Ed25519 over exactly that base.
  std::string sig_text = signed_.signature.substr(6, signed_.signature.size() - 7);
  EXPECT_EQ(sig_text, StdB64(acme_.Sign(base)));
}

TEST_F(SignatureTest, ASignedRequestVerifies) {
  auto v = VerifySigned(Headers(signed_));
  ASSERT_TRUE(v) << v.error().ToString();
  EXPECT_EQ(v->party, "acme");
  EXPECT_EQ(v->created, kCreated);
  EXPECT_EQ(v->nonce, "bm9uY2Utb25l");
}

TEST_F(SignatureTest, NewNoncesAreFreshBase64Url) {
  std::string a = NewNonce(), b = NewNonce();
  EXPECT_EQ(a.size(), 22u);  // 16 bytes, unpadded
  EXPECT_NE(a, b);
  auto h = Sign(acme_, "acme", "GET", kUri, "", kCreated, a);
  EXPECT_TRUE(Verify("GET", kUri, Headers(h), "", KeyOf()));
}

TEST_F(SignatureTest, TamperedBodyIsADigestMismatch) {
  auto v = VerifySigned(Headers(signed_), "POST", kUri, R"({"sql":"SELECT 2"})");
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code, ErrorCode::AUTH_DIGEST_MISMATCH);
}

TEST_F(SignatureTest, TamperedMethodPathQueryOrHostIsABadSignature) {
  for (auto [method, uri] : std::vector<std::pair<std::string_view, std::string_view>>{
           {"PUT", kUri},
           {"POST", "https://127.0.0.1:8443/v1/templates/x/run?x=1"},
           {"POST", "https://127.0.0.1:8443/v1/query?x=2"},
           {"POST", "https://127.0.0.1:8443/v1/query"},
           {"POST", "https://evil.example:8443/v1/query?x=1"},
           {"POST", "http://127.0.0.1:8443/v1/query?x=1"}}) {
    auto v = VerifySigned(Headers(signed_), method, uri);
    ASSERT_FALSE(v) << method << " " << uri;
    EXPECT_EQ(v.error().code, ErrorCode::AUTH_BAD_SIGNATURE) << uri;
  }
}

TEST_F(SignatureTest, TamperedHeadersAreABadSignature) {
  // A digest header matching a different body: the body check would pass but
  // the signature covers the header.
  auto h = Headers(signed_);
  h["content-digest"] = ContentDigest(R"({"sql":"SELECT 2"})");
  auto v = VerifySigned(h, "POST", kUri, R"({"sql":"SELECT 2"})");
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code, ErrorCode::AUTH_BAD_SIGNATURE);
  // A moved clock or another nonce in the parameters.
  for (auto [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"created=1796000000", "created=1796000001"},
           {"nonce=\"bm9uY2Utb25l\"", "nonce=\"bm9uY2UtdHdv\""},
           {"keyid=\"acme\"", "keyid=\"globex\""}}) {
    auto t = Headers(signed_);
    t["signature-input"].replace(t["signature-input"].find(from), from.size(), to);
    auto r = VerifySigned(t);
    ASSERT_FALSE(r) << to;
    EXPECT_EQ(r.error().code, ErrorCode::AUTH_BAD_SIGNATURE) << to;
  }
  // A flipped signature bit.
  auto f = Headers(signed_);
  f["signature"][10] = f["signature"][10] == 'A' ? 'B' : 'A';
  EXPECT_EQ(VerifySigned(f).error().code, ErrorCode::AUTH_BAD_SIGNATURE);
}

TEST_F(SignatureTest, WrongKeyIsABadSignature) {
  // globex signs but claims to be acme.
  auto h = Sign(globex_, "acme", "POST", kUri, kBody, kCreated, "bm9uY2Utb25l");
  EXPECT_EQ(VerifySigned(Headers(h)).error().code, ErrorCode::AUTH_BAD_SIGNATURE);
}

TEST_F(SignatureTest, UnknownPartyIsRefused) {
  auto h = Sign(acme_, "initech", "POST", kUri, kBody, kCreated, "bm9uY2Utb25l");
  EXPECT_EQ(VerifySigned(Headers(h)).error().code, ErrorCode::AUTH_UNKNOWN_PARTY);
}

TEST_F(SignatureTest, UnsignedRequestIsAuthMissing) {
  EXPECT_EQ(VerifySigned({}).error().code, ErrorCode::AUTH_MISSING);
  EXPECT_EQ(VerifySigned({{"content-digest", signed_.content_digest}}).error().code,
            ErrorCode::AUTH_MISSING);
}

TEST_F(SignatureTest, ParametersAndComponentsInAnyOrderVerify) {
  std::string params =
      "(\"content-digest\" \"@method\" \"@target-uri\");alg=\"ed25519\";keyid=\"acme\";"
      "nonce=\"abc\";created=1796000000";
  std::string base = "\"content-digest\": " + ContentDigest(kBody) +
                     "\n\"@method\": POST\n\"@target-uri\": " + std::string(kUri) +
                     "\n\"@signature-params\": " + params;
  auto v = VerifySigned(HandSigned(params, base));
  ASSERT_TRUE(v) << v.error().ToString();
  EXPECT_EQ(v->nonce, "abc");
}

TEST_F(SignatureTest, MalformedHeadersAreRefused) {
  const std::string good = signed_.signature_input;
  std::vector<std::pair<std::string, std::string>> cases = {
      {"signature-input", "sig1=(\"@method\" \"@target-uri\");created=1;nonce=\"a\";keyid=\"acme\";alg=\"ed25519\""},
      {"signature-input", "sig1=(\"@method\" \"@target-uri\" \"content-digest\" \"@authority\");created=1;nonce=\"a\";keyid=\"acme\";alg=\"ed25519\""},
      {"signature-input", "sig1=(\"@method\" \"@method\" \"content-digest\");created=1;nonce=\"a\";keyid=\"acme\";alg=\"ed25519\""},
      {"signature-input", "sig1=(\"@method\" \"@target-uri\" \"content-digest\");nonce=\"a\";keyid=\"acme\";alg=\"ed25519\""},
      {"signature-input", "sig1=(\"@method\" \"@target-uri\" \"content-digest\");created=1;keyid=\"acme\";alg=\"ed25519\""},
      {"signature-input", "sig1=(\"@method\" \"@target-uri\" \"content-digest\");created=1;nonce=\"a\";alg=\"ed25519\""},
      {"signature-input", "sig1=(\"@method\" \"@target-uri\" \"content-digest\");created=1;nonce=\"a\";keyid=\"acme\""},
      {"signature-input", "sig1=(\"@method\" \"@target-uri\" \"content-digest\");created=1;nonce=\"a\";keyid=\"acme\";alg=\"rsa-pss-sha512\""},
      {"signature-input", "sig1=(\"@method\" \"@target-uri\" \"content-digest\");created=1;nonce=\"a\";keyid=\"acme\";alg=\"ed25519\";expires=2"},
      {"signature-input", "sig1=(\"@method\" \"@target-uri\" \"content-digest\");created=1;created=2;nonce=\"a\";keyid=\"acme\";alg=\"ed25519\""},
      {"signature-input", "sig1=(\"@method\" \"@target-uri\" \"content-digest\");created=\"1\";nonce=\"a\";keyid=\"acme\";alg=\"ed25519\""},
      {"signature-input", "sig1=(\"@method\" \"@target-uri\" \"content-digest\");created=1.5;nonce=\"a\";keyid=\"acme\";alg=\"ed25519\""},
      {"signature-input", "sig1=(\"@method\" \"@target-uri\" \"content-digest\");created=1;nonce=\"a/b\";keyid=\"acme\";alg=\"ed25519\""},
      {"signature-input", "sig1=(\"@method\" \"@target-uri\" \"content-digest\");created=1;nonce=\"" + std::string(65, 'a') + "\";keyid=\"acme\";alg=\"ed25519\""},
      {"signature-input", "sig1=(\"@method\" \"@target-uri\" \"content-digest\");created=1;nonce=\"a\";keyid=acme;alg=\"ed25519\""},
      {"signature-input", "sig1=(\"@method\" \"@target-uri\" \"content-digest\";x);created=1;nonce=\"a\";keyid=\"acme\";alg=\"ed25519\""},
      {"signature-input", "sig1=(\"@method\"  \"@target-uri\" \"content-digest\"created=1"},
      {"signature-input", "sig2=(\"@method\" \"@target-uri\" \"content-digest\");created=1;nonce=\"a\";keyid=\"acme\";alg=\"ed25519\""},
      {"signature-input", good + ","},
      {"signature-input", good + ", " + good},
      {"signature-input", "sig1=\"@method\""},
      {"signature", "sig1=:AAAA:"},
      {"signature", "sig1=:not base64!:"},
      {"signature", "sig2=" + signed_.signature.substr(5)},
      {"signature", "sig1=\"abc\""},
      {"content-digest", "sha-512=:" + std::string(88, 'A') + ":"},
      {"content-digest", "sha-256=:AAAA:"},
      {"content-digest", "sha-256"},
      {"content-digest", "sha-256=:%%%:"},
  };
  for (const auto& [name, value] : cases) {
    auto h = Headers(signed_);
    h[name] = value;
    auto v = VerifySigned(h);
    ASSERT_FALSE(v) << name << ": " << value;
    EXPECT_EQ(v.error().code, ErrorCode::AUTH_MALFORMED) << name << ": " << value;
  }
  // One header without the other.
  auto h = Headers(signed_);
  h.erase("signature");
  EXPECT_EQ(VerifySigned(h).error().code, ErrorCode::AUTH_MALFORMED);
  h = Headers(signed_);
  h.erase("content-digest");
  EXPECT_EQ(VerifySigned(h).error().code, ErrorCode::AUTH_MALFORMED);
}

TEST_F(SignatureTest, TwoStepVerificationChecksTheStreamedDigest) {
  auto h = VerifyHeaders("POST", kUri, Headers(signed_), KeyOf());
  ASSERT_TRUE(h);
  EXPECT_TRUE(CheckBodyDigest(*h, crypto::Sha256(kBody)));
  EXPECT_EQ(CheckBodyDigest(*h, crypto::Sha256("other")).error().code,
            ErrorCode::AUTH_DIGEST_MISMATCH);
  EXPECT_EQ(CheckBodyDigest(*h, "short").error().code, ErrorCode::AUTH_DIGEST_MISMATCH);
}

TEST_F(SignatureTest, MessagesCarryNoRequestValues) {
  auto v = VerifySigned(Headers(signed_), "POST", kUri, R"({"sql":"SELECT secret_value"})");
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().message.find("secret_value"), std::string::npos);
}

}  // namespace
}  // namespace cr::http
