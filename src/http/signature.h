// RFC 9421 HTTP Message Signatures (Ed25519) and RFC 9530 Content-Digest for the
// room's API: the one signing and verifying code shared by server and client.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"
#include "crypto/crypto.h"

namespace cr::http {

// The signature label and the components every request signs.
inline constexpr std::string_view kSignatureLabel = "sig1";
// Bounds on what a verifier accepts before any lookup: the nonce is stored by
// the server, the keyid is looked up and audited, so neither may be arbitrary.
inline constexpr size_t kMaxNonceChars = 64;
inline constexpr size_t kMaxKeyIdChars = 128;

// RFC 9530: "sha-256=:BASE64:" of the body.
std::string ContentDigest(std::string_view body);

// A fresh nonce: 16 random bytes, base64url without padding.
std::string NewNonce();

struct SignatureHeaders {
  std::string content_digest, signature_input, signature;
};

// RFC 9421, label "sig1", components ("@method" "@target-uri" "content-digest"),
// params created, nonce, keyid = party, alg="ed25519". `target_uri` is the
// absolute URI the request goes to (https://HOST:PORT/PATH?QUERY).
SignatureHeaders Sign(const crypto::Identity& key, std::string_view party,
                      std::string_view method, std::string_view target_uri,
                      std::string_view body, long long created, std::string_view nonce);

// The same for a body known by its SHA-256 (32 raw bytes): a file streamed
// to the server is hashed on the way, never held whole.
SignatureHeaders SignDigest(const crypto::Identity& key, std::string_view party,
                            std::string_view method, std::string_view target_uri,
                            std::string_view body_sha256, long long created, std::string_view nonce);

struct VerifiedRequest {
  std::string party;
  long long created = 0;
  std::string nonce;
};

// Parses Signature-Input / Signature / Content-Digest (any order of params,
// strict structured-field syntax for what we use), looks the keyid up with
// `key_of` (nullopt: unknown party), verifies the signature over the
// recomputed signature base, then checks the digest of `body` against the
// signed Content-Digest. `headers` has lower-case names. Errors (HTTP 401):
// AUTH_MISSING (no signature headers), AUTH_MALFORMED, AUTH_UNKNOWN_PARTY,
// AUTH_BAD_SIGNATURE, AUTH_DIGEST_MISMATCH. Clock skew and replay are the
// server's checks: it knows the time and the nonces seen.
Result<VerifiedRequest> Verify(
    std::string_view method, std::string_view target_uri,
    const std::map<std::string, std::string>& headers, std::string_view body,
    const std::function<std::optional<crypto::PublicIdentity>(std::string_view)>& key_of);

// Verify in two steps, for a body too large to hold: everything but the
// digest (before the body is read, so an unsigned upload is refused before
// it is stored), then the sha-256 of the body as streamed.
struct SignedHeaders {
  VerifiedRequest request;
  std::string body_sha256;  // 32 raw bytes the signed Content-Digest names
};
Result<SignedHeaders> VerifyHeaders(
    std::string_view method, std::string_view target_uri,
    const std::map<std::string, std::string>& headers,
    const std::function<std::optional<crypto::PublicIdentity>(std::string_view)>& key_of);
// AUTH_DIGEST_MISMATCH unless `body_sha256` (32 raw bytes) is the signed one.
Status CheckBodyDigest(const SignedHeaders& signed_headers, std::string_view body_sha256);

// The signature base (RFC 9421 section 2.5) for our three components and the
// serialized signature parameters; exposed so tests can check it against the
// RFC's layout.
std::string SignatureBase(std::string_view method, std::string_view target_uri,
                          std::string_view content_digest, std::string_view signature_params);

// The serialized inner list for our components and params, in this order.
std::string SignatureParams(long long created, std::string_view nonce, std::string_view party);

}  // namespace cr::http
