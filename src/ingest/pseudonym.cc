#include "ingest/pseudonym.h"

#include <cctype>
#include <cstring>

namespace cr::ingest {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::string_view TrimView(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

bool Normalize(spec::Normalize mode, std::string_view in, std::string* out) {
  out->clear();
  switch (mode) {
    case spec::Normalize::kEmail: {
      std::string_view t = TrimView(in);
      out->reserve(t.size());
      for (char c : t) out->push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
      break;
    }
    case spec::Normalize::kPhone:
      for (char c : in) {
        if (c >= '0' && c <= '9') out->push_back(c);
      }
      break;
    case spec::Normalize::kText:
      out->assign(TrimView(in));
      break;
    case spec::Normalize::kNone:
      out->assign(in);
      break;
  }
  return !out->empty();
}

crypto::SecureBuffer PseudonymKey(const crypto::SecureBuffer& secret,
                                  std::string_view collaboration, std::string_view column) {
  std::string info = "cleanroom/pseudonym/v1/";
  info.append(column);
  return crypto::HkdfSha256(secret.view(), collaboration, info, crypto::kKeyBytes);
}

Pseudonymizer::Pseudonymizer(const crypto::SecureBuffer& key, spec::Normalize mode)
    : hmac_(key.view()), mode_(mode) {}

bool Pseudonymizer::Map(std::string_view in, unsigned char out[16]) const {
  thread_local std::string buf;
  if (!Normalize(mode_, in, &buf)) return false;
  unsigned char mac[32];
  hmac_.Mac(buf.data(), buf.size(), mac);
  std::memcpy(out, mac, 16);
  sodium_memzero(mac, sizeof mac);
  return true;
}

}  // namespace cr::ingest
