#include "room/sealed_meta.h"

#include <fmt/format.h>

#include "common/files.h"

namespace cr::room {
namespace {

constexpr char kMetaContext[8] = {'c', 'r', 'm', 'e', 't', 'a', 'm', '1'};
constexpr std::string_view kMarker = "\"mac\": \"";
constexpr std::string_view kTail = "\"\n}\n";
constexpr size_t kMacHex = 64;

}  // namespace

MetaSealer::MetaSealer(const crypto::Identity& room_key) : key_(room_key.DeriveKey(2, kMetaContext)) {}

std::string MetaSealer::Mac(std::string_view name, std::string_view head,
                            std::string_view tail) const {
  crypto_generichash_state st;
  crypto_generichash_init(&st, key_.data(), key_.size(), 32);
  // Length-prefixed name: "a" + "bc" and "ab" + "c" must not collide.
  const uint64_t n = name.size();
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(&n), sizeof n);
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(name.data()), name.size());
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(head.data()), head.size());
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(tail.data()), tail.size());
  unsigned char out[32];
  crypto_generichash_final(&st, out, sizeof out);
  return ToHex(std::string_view(reinterpret_cast<const char*>(out), sizeof out));
}

std::string MetaSealer::Seal(std::string_view name, const nlohmann::json& body) const {
  nlohmann::json b = body;
  b.erase("mac");
  std::string text = b.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
  // Reopen the object and add "mac" as its last member.
  text.pop_back();  // '}'
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  std::string head = text + (text.ends_with("{") ? "\n  " : ",\n  ") + std::string(kMarker);
  return head + Mac(name, head, kTail) + std::string(kTail);
}

bool MetaSealer::LooksSealed(std::string_view text) {
  if (text.size() < kMarker.size() + kMacHex + kTail.size() || !text.ends_with(kTail)) return false;
  return text.substr(text.size() - kTail.size() - kMacHex - kMarker.size(), kMarker.size()) ==
         kMarker;
}

Result<nlohmann::json> MetaSealer::Open(std::string_view name, std::string_view text) const {
  if (!LooksSealed(text)) {
    return Fail(ErrorCode::TAMPERED, "the room's {} is damaged (no valid seal)", name);
  }
  const size_t mac_at = text.size() - kTail.size() - kMacHex;
  std::string_view head = text.substr(0, mac_at);
  std::string_view mac = text.substr(mac_at, kMacHex);
  const std::string want = Mac(name, head, kTail);
  if (sodium_memcmp(want.data(), mac.data(), kMacHex) != 0) {
    return Fail(ErrorCode::TAMPERED,
                "the room's {} was changed, cut, swapped or made by another room (its seal "
                "does not verify)",
                name);
  }
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Fail(ErrorCode::TAMPERED, "the room's {} is damaged (not a JSON object)", name);
  }
  j.erase("mac");
  return j;
}

Status MetaSealer::Write(const std::string& dir, const std::string& name,
                         const nlohmann::json& body, mode_t mode) const {
  return WriteFileAtomic(JoinPath(dir, name), Seal(name, body), mode);
}

Result<nlohmann::json> MetaSealer::Read(const std::string& dir, const std::string& name) const {
  const std::string path = JoinPath(dir, name);
  if (!PathExists(path)) return Fail(ErrorCode::TAMPERED, "the room's {} is missing", name);
  CR_ASSIGN(auto text, ReadFile(path));
  return Open(name, text);
}

}  // namespace cr::room
