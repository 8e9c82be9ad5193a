#include "http/signature.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <utility>
#include <vector>

#include <sodium.h>

namespace cr::http {
namespace {

constexpr std::string_view kComponents[] = {"@method", "@target-uri", "content-digest"};
constexpr size_t kSha256Bytes = 32;

// RFC 8941 byte sequences use the standard alphabet with padding (not the
// URL-safe form crypto::Base64Encode writes for ids and keys).
std::string StdBase64(std::string_view bytes) {
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

std::optional<std::string> StdBase64Decode(std::string_view text) {
  std::string out(text.size() / 4 * 3 + 3, '\0');
  size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                        text.size(), nullptr, &len, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != text.data() + text.size()) {
    return std::nullopt;
  }
  out.resize(len);
  return out;
}

// ----- RFC 8941 structured fields: the subset the two headers use -------------

struct BareItem {
  enum class Kind { kInteger, kString, kToken, kBytes, kBoolean } kind = Kind::kBoolean;
  long long integer = 0;
  std::string text;  // string, token, or decoded bytes
  bool boolean = true;
};

using Params = std::vector<std::pair<std::string, BareItem>>;

struct Item {
  BareItem bare;
  Params params;
};

struct Member {
  bool is_inner_list = false;
  Item item;                // when !is_inner_list
  std::vector<Item> list;   // when is_inner_list
  Params list_params;       // when is_inner_list
};

using Dictionary = std::vector<std::pair<std::string, Member>>;

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  // A whole dictionary field value; nullopt on any syntax error (strict: no
  // duplicate keys, no trailing comma, nothing left over).
  std::optional<Dictionary> ParseDictionary() {
    SkipSp();
    Dictionary dict;
    std::set<std::string> seen;
    while (!AtEnd()) {
      auto key = ParseKey();
      if (!key || !seen.insert(*key).second) return std::nullopt;
      Member member;
      if (Peek() == '=') {
        ++pos_;
        if (Peek() == '(') {
          member.is_inner_list = true;
          if (!ParseInnerList(&member)) return std::nullopt;
        } else {
          auto item = ParseItem();
          if (!item) return std::nullopt;
          member.item = std::move(*item);
        }
      } else {
        // A bare key is boolean true with parameters.
        auto params = ParseParams();
        if (!params) return std::nullopt;
        member.item.params = std::move(*params);
      }
      dict.emplace_back(std::move(*key), std::move(member));
      SkipOws();
      if (AtEnd()) break;
      if (Peek() != ',') return std::nullopt;
      ++pos_;
      SkipOws();
      if (AtEnd()) return std::nullopt;  // trailing comma
    }
    return dict;
  }

 private:
  bool AtEnd() const { return pos_ >= s_.size(); }
  char Peek() const { return AtEnd() ? '\0' : s_[pos_]; }
  void SkipSp() {
    while (Peek() == ' ') ++pos_;
  }
  void SkipOws() {
    while (Peek() == ' ' || Peek() == '\t') ++pos_;
  }

  std::optional<std::string> ParseKey() {
    char c = Peek();
    if (!((c >= 'a' && c <= 'z') || c == '*')) return std::nullopt;
    std::string key;
    while (!AtEnd()) {
      c = Peek();
      if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.' ||
          c == '*') {
        key += c;
        ++pos_;
      } else {
        break;
      }
    }
    return key;
  }

  std::optional<Params> ParseParams() {
    Params params;
    std::set<std::string> seen;
    while (Peek() == ';') {
      ++pos_;
      SkipSp();
      auto key = ParseKey();
      if (!key || !seen.insert(*key).second) return std::nullopt;
      BareItem value;
      if (Peek() == '=') {
        ++pos_;
        auto bare = ParseBareItem();
        if (!bare) return std::nullopt;
        value = std::move(*bare);
      }
      params.emplace_back(std::move(*key), std::move(value));
    }
    return params;
  }

  std::optional<Item> ParseItem() {
    auto bare = ParseBareItem();
    if (!bare) return std::nullopt;
    auto params = ParseParams();
    if (!params) return std::nullopt;
    return Item{std::move(*bare), std::move(*params)};
  }

  bool ParseInnerList(Member* member) {
    ++pos_;  // '('
    while (true) {
      SkipSp();
      if (Peek() == ')') {
        ++pos_;
        auto params = ParseParams();
        if (!params) return false;
        member->list_params = std::move(*params);
        return true;
      }
      auto item = ParseItem();
      if (!item) return false;
      member->list.push_back(std::move(*item));
      if (Peek() != ' ' && Peek() != ')') return false;
    }
  }

  std::optional<BareItem> ParseBareItem() {
    char c = Peek();
    BareItem item;
    if (c == '-' || (c >= '0' && c <= '9')) {
      item.kind = BareItem::Kind::kInteger;
      bool negative = c == '-';
      if (negative) ++pos_;
      size_t digits = 0;
      long long value = 0;
      while (Peek() >= '0' && Peek() <= '9') {
        if (++digits > 15) return std::nullopt;
        value = value * 10 + (Peek() - '0');
        ++pos_;
      }
      // Decimals are valid structured fields but nothing here uses one.
      if (digits == 0 || Peek() == '.') return std::nullopt;
      item.integer = negative ? -value : value;
      return item;
    }
    if (c == '"') {
      item.kind = BareItem::Kind::kString;
      ++pos_;
      while (true) {
        if (AtEnd()) return std::nullopt;
        char ch = s_[pos_++];
        if (ch == '"') return item;
        if (ch == '\\') {
          if (AtEnd()) return std::nullopt;
          ch = s_[pos_++];
          if (ch != '"' && ch != '\\') return std::nullopt;
        } else if (ch < 0x20 || ch > 0x7e) {
          return std::nullopt;
        }
        item.text += ch;
      }
    }
    if (c == ':') {
      item.kind = BareItem::Kind::kBytes;
      ++pos_;
      size_t end = s_.find(':', pos_);
      if (end == std::string_view::npos) return std::nullopt;
      auto bytes = StdBase64Decode(s_.substr(pos_, end - pos_));
      if (!bytes) return std::nullopt;
      item.text = std::move(*bytes);
      pos_ = end + 1;
      return item;
    }
    if (c == '?') {
      item.kind = BareItem::Kind::kBoolean;
      ++pos_;
      if (Peek() != '0' && Peek() != '1') return std::nullopt;
      item.boolean = Peek() == '1';
      ++pos_;
      return item;
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '*') {
      item.kind = BareItem::Kind::kToken;
      static constexpr std::string_view kTchar = "!#$%&'*+-.^_`|~:/";
      while (!AtEnd() && (std::isalnum(static_cast<unsigned char>(Peek())) ||
                          kTchar.find(Peek()) != std::string_view::npos)) {
        item.text += s_[pos_++];
      }
      return item;
    }
    return std::nullopt;
  }

  std::string_view s_;
  size_t pos_ = 0;
};

std::string SerializeString(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

const Member* Find(const Dictionary& dict, std::string_view key) {
  for (const auto& [k, member] : dict) {
    if (k == key) return &member;
  }
  return nullptr;
}

bool IsBase64UrlChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
}

std::unexpected<Error> Malformed(std::string_view what) {
  return Fail(ErrorCode::AUTH_MALFORMED, "the request's signature headers are malformed: {}",
              what);
}

std::optional<std::string> HeaderOf(const std::map<std::string, std::string>& headers,
                                    const std::string& name) {
  auto it = headers.find(name);
  if (it == headers.end()) return std::nullopt;
  return it->second;
}

}  // namespace

std::string ContentDigest(std::string_view body) {
  return "sha-256=:" + StdBase64(crypto::Sha256(body)) + ":";
}

std::string NewNonce() { return crypto::Base64Encode(crypto::RandomBytes(16)); }

std::string SignatureParams(long long created, std::string_view nonce, std::string_view party) {
  std::string out = "(";
  for (size_t i = 0; i < std::size(kComponents); ++i) {
    if (i) out += ' ';
    out += SerializeString(kComponents[i]);
  }
  out += fmt::format(");created={};nonce={};keyid={};alg=\"ed25519\"", created,
                     SerializeString(nonce), SerializeString(party));
  return out;
}

std::string SignatureBase(std::string_view method, std::string_view target_uri,
                          std::string_view content_digest, std::string_view signature_params) {
  return fmt::format(
      "\"@method\": {}\n\"@target-uri\": {}\n\"content-digest\": {}\n\"@signature-params\": {}",
      method, target_uri, content_digest, signature_params);
}

SignatureHeaders Sign(const crypto::Identity& key, std::string_view party,
                      std::string_view method, std::string_view target_uri,
                      std::string_view body, long long created, std::string_view nonce) {
  return SignDigest(key, party, method, target_uri, crypto::Sha256(body), created, nonce);
}

SignatureHeaders SignDigest(const crypto::Identity& key, std::string_view party,
                            std::string_view method, std::string_view target_uri,
                            std::string_view body_sha256, long long created, std::string_view nonce) {
  SignatureHeaders out;
  out.content_digest = "sha-256=:" + StdBase64(body_sha256) + ":";
  std::string params = SignatureParams(created, nonce, party);
  std::string base = SignatureBase(method, target_uri, out.content_digest, params);
  out.signature_input = std::string(kSignatureLabel) + "=" + params;
  out.signature = std::string(kSignatureLabel) + "=:" + StdBase64(key.Sign(base)) + ":";
  return out;
}

Result<SignedHeaders> VerifyHeaders(
    std::string_view method, std::string_view target_uri,
    const std::map<std::string, std::string>& headers,
    const std::function<std::optional<crypto::PublicIdentity>(std::string_view)>& key_of) {
  auto input_header = HeaderOf(headers, "signature-input");
  auto signature_header = HeaderOf(headers, "signature");
  if (!input_header && !signature_header) {
    return Fail(ErrorCode::AUTH_MISSING,
                "the request is not signed (Signature-Input and Signature headers)");
  }
  if (!input_header || !signature_header) {
    return Malformed("Signature-Input and Signature must come together");
  }
  auto digest_header = HeaderOf(headers, "content-digest");
  if (!digest_header) return Malformed("no Content-Digest header");

  auto inputs = Parser(Trim(*input_header)).ParseDictionary();
  if (!inputs) return Malformed("Signature-Input is not a structured-field dictionary");
  auto signatures = Parser(Trim(*signature_header)).ParseDictionary();
  if (!signatures) return Malformed("Signature is not a structured-field dictionary");
  auto digests = Parser(Trim(*digest_header)).ParseDictionary();
  if (!digests) return Malformed("Content-Digest is not a structured-field dictionary");

  const Member* input = Find(*inputs, kSignatureLabel);
  if (!input || !input->is_inner_list) {
    return Malformed("Signature-Input has no inner list labelled sig1");
  }
  const Member* signature = Find(*signatures, kSignatureLabel);
  if (!signature || signature->is_inner_list ||
      signature->item.bare.kind != BareItem::Kind::kBytes || !signature->item.params.empty() ||
      signature->item.bare.text.size() != crypto::kSignatureBytes) {
    return Malformed("Signature has no 64-byte sequence labelled sig1");
  }

  // The covered components: exactly ours, each once, in the order sent (the
  // order the signature base follows).
  std::set<std::string_view> expected(std::begin(kComponents), std::end(kComponents));
  std::vector<std::string> components;
  for (const Item& item : input->list) {
    if (item.bare.kind != BareItem::Kind::kString || !item.params.empty() ||
        !expected.erase(item.bare.text)) {
      return Malformed("sig1 must cover \"@method\", \"@target-uri\" and \"content-digest\" once each");
    }
    components.push_back(item.bare.text);
  }
  if (!expected.empty()) {
    return Malformed("sig1 must cover \"@method\", \"@target-uri\" and \"content-digest\"");
  }

  SignedHeaders signed_headers;
  VerifiedRequest& out = signed_headers.request;
  bool has_created = false, has_alg = false;
  std::string params = "(";
  for (size_t i = 0; i < components.size(); ++i) {
    if (i) params += ' ';
    params += SerializeString(components[i]);
  }
  params += ')';
  for (const auto& [name, value] : input->list_params) {
    if (name == "created" && value.kind == BareItem::Kind::kInteger) {
      out.created = value.integer;
      has_created = true;
      params += fmt::format(";created={}", value.integer);
    } else if (name == "nonce" && value.kind == BareItem::Kind::kString) {
      if (value.text.empty() || value.text.size() > kMaxNonceChars ||
          !std::all_of(value.text.begin(), value.text.end(), IsBase64UrlChar)) {
        return Malformed("the nonce must be 1 to 64 base64url characters");
      }
      out.nonce = value.text;
      params += ";nonce=" + SerializeString(value.text);
    } else if (name == "keyid" && value.kind == BareItem::Kind::kString) {
      if (value.text.empty() || value.text.size() > kMaxKeyIdChars) {
        return Malformed("the keyid must be a party name of 1 to 128 characters");
      }
      out.party = value.text;
      params += ";keyid=" + SerializeString(value.text);
    } else if (name == "alg" && value.kind == BareItem::Kind::kString) {
      if (value.text != "ed25519") return Malformed("alg must be \"ed25519\"");
      has_alg = true;
      params += ";alg=" + SerializeString(value.text);
    } else {
      // Unknown or mistyped parameters would be signed but not enforced: refuse.
      return Malformed(fmt::format("unexpected signature parameter '{}'", name));
    }
  }
  if (!has_created || out.nonce.empty() || out.party.empty() || !has_alg) {
    return Malformed("sig1 needs created, nonce, keyid and alg parameters");
  }

  const Member* sha256 = Find(*digests, "sha-256");
  if (!sha256 || sha256->is_inner_list || sha256->item.bare.kind != BareItem::Kind::kBytes ||
      sha256->item.bare.text.size() != kSha256Bytes) {
    return Malformed("Content-Digest has no 32-byte sha-256 member");
  }

  auto key = key_of(out.party);
  if (!key) {
    return Fail(ErrorCode::AUTH_UNKNOWN_PARTY, "the request is signed by a party this room does not know");
  }
  std::string base;
  for (const std::string& component : components) {
    if (component == "@method") {
      base += fmt::format("\"@method\": {}\n", method);
    } else if (component == "@target-uri") {
      base += fmt::format("\"@target-uri\": {}\n", target_uri);
    } else {
      base += fmt::format("\"content-digest\": {}\n", Trim(*digest_header));
    }
  }
  base += "\"@signature-params\": " + params;
  if (!crypto::Verify(*key, base, signature->item.bare.text)) {
    return Fail(ErrorCode::AUTH_BAD_SIGNATURE,
                "the request's signature does not verify with the party's key for this method, "
                "URI and digest");
  }
  signed_headers.body_sha256 = sha256->item.bare.text;
  return signed_headers;
}

Status CheckBodyDigest(const SignedHeaders& signed_headers, std::string_view body_sha256) {
  if (body_sha256.size() != kSha256Bytes ||
      sodium_memcmp(body_sha256.data(), signed_headers.body_sha256.data(), kSha256Bytes) != 0) {
    return Fail(ErrorCode::AUTH_DIGEST_MISMATCH,
                "the request body does not match its signed Content-Digest");
  }
  return Ok();
}

Result<VerifiedRequest> Verify(
    std::string_view method, std::string_view target_uri,
    const std::map<std::string, std::string>& headers, std::string_view body,
    const std::function<std::optional<crypto::PublicIdentity>(std::string_view)>& key_of) {
  CR_ASSIGN(SignedHeaders signed_headers, VerifyHeaders(method, target_uri, headers, key_of));
  // The signature covers the digest header; the body is checked against it.
  CR_TRY(CheckBodyDigest(signed_headers, crypto::Sha256(body)));
  return signed_headers.request;
}

}  // namespace cr::http
