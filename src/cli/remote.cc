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
  return results::OpenSealed(*sealed, id, c.key());
}

// A /v1/query or template-run answer as the Outcome the local run returns:
// the result opened with the caller's key when it is sealed to the caller,
// only its id otherwise.
Result<query::Outcome> RemoteOutcome(const client::Client& c, Result<nlohmann::json> answer) {
  if (!answer) return std::unexpected(answer.error());
  const nlohmann::json& a = *answer;
  if (!a.is_object() || !a.contains("result_id") || !a["result_id"].is_string() ||
      !a.contains("receivers") || !a["receivers"].is_array() || !a.contains("caller_receives") ||
      !a["caller_receives"].is_boolean()) {
    return Fail(ErrorCode::INTERNAL, "the server's answer to a query lacks its result id or receivers");
  }
  query::Outcome o;
  o.caller = c.party();
  for (const auto& r : a["receivers"]) {
    if (!r.is_string()) return Fail(ErrorCode::INTERNAL, "the server's receivers are not names");
    o.receivers.push_back(r.get<std::string>());
  }
  o.caller_receives = a["caller_receives"].get<bool>();
  if (auto w = a.find("withheld_receivers"); w != a.end() && w->is_array()) {
    for (const auto& e : *w) {
      if (!e.is_object() || !e.value("party", nlohmann::json()).is_string() ||
          !e.value("reason", nlohmann::json()).is_string()) {
        return Fail(ErrorCode::INTERNAL, "the server's withheld receivers are malformed");
      }
      o.withheld_receivers.push_back({e["party"].get<std::string>(), e["reason"].get<std::string>()});
    }
  }
  if (o.caller_receives) {
    CR_ASSIGN(o.result, OpenSealedAnswer(c, a));
  } else {
    o.result.result_id = a["result_id"].get<std::string>();
  }
  return o;
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
