#include "cli/remote.h"

#include <cctype>

#include <fmt/format.h>

namespace cr::cli {

Result<bool> Remote(const Globals& g, std::string_view command) {
  if (g.server.empty()) {
    if (!g.tls_ca.empty()) return Fail(ErrorCode::USAGE, "{}: --tls-ca is for --server", command);
    return false;
  }
  if (!g.room.empty()) {
    return Fail(ErrorCode::USAGE,
                "{} takes --room DIR (a room on this machine) or --server URL, not both", command);
  }
  return true;
}

Result<client::Client> ConnectServer(const Globals& g, std::string_view command) {
  if (g.key.empty()) return Fail(ErrorCode::USAGE, "{} --server needs --key FILE", command);
  return client::Client::Connect({.url = g.server, .tls_ca = g.tls_ca, .key_path = g.key});
}

Result<results::ResultSet> OpenSealedAnswer(const client::Client& c, const nlohmann::json& answer) {
  if (!answer.is_object() || !answer.contains("result_id") || !answer["result_id"].is_string() ||
      !answer.contains("sealed") || !answer["sealed"].is_string()) {
    return Fail(ErrorCode::INTERNAL, "the server's answer has no sealed result");
  }
  const std::string id = answer["result_id"].get<std::string>();
  auto sealed = crypto::Base64Decode(answer["sealed"].get<std::string>());
  if (!sealed) return Fail(ErrorCode::TAMPERED, "the sealed copy of result {} is not base64", id);
  return results::OpenSealed(*sealed, id, c.party(), c.key());
}

std::string PathSegment(std::string_view s) {
  std::string out;
  for (unsigned char ch : s) {
    if (std::isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
      out += static_cast<char>(ch);
    } else {
      out += fmt::format("%{:02X}", ch);
    }
  }
  return out;
}

}  // namespace cr::cli
