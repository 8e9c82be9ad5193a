#include "server/console.h"

#include <cmath>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "query/service.h"
#include "spec/spec.h"

namespace cr::server::console {

void SetAssetHeaders(httplib::Response& res) {
  // 'wasm-unsafe-eval' lets libsodium compile its WebAssembly; nothing else is
  // evaluated. connect-src 'self': the page talks to this server only, so a
  // script that got in could not send a key elsewhere.
  res.set_header("Content-Security-Policy",
                 "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; "
                 "style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                 "form-action 'none'; frame-ancestors 'none'");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("Referrer-Policy", "no-referrer");
  res.set_header("X-Frame-Options", "DENY");
  res.set_header("Cross-Origin-Opener-Policy", "same-origin");
  // Assets change with the binary: always revalidated, never kept stale.
  res.set_header("Cache-Control", "no-cache");
}

Status ServeAsset(std::string_view name, httplib::Response& res) {
  for (const Asset& a : Assets()) {
    if (a.name == name) {
      SetAssetHeaders(res);
      res.status = 200;
      res.set_content(std::string(a.body), std::string(a.content_type));
      return Ok();
    }
  }
  return Fail(ErrorCode::NOT_SUPPORTED, "the console has no such file");
}

Status ServeSpec(const room::Room& room, httplib::Response& res) {
  res.status = 200;
  res.set_content(spec::Summary(room.spec()).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
                  "application/json");
  return Ok();
}

Status ParseQueryField(const std::string& key, const nlohmann::json& value, query::Request& q) {
  if (key == "sql") {
    if (!value.is_string()) return Fail(ErrorCode::BAD_INPUT, "\"sql\" must be a string");
    q.sql = value.get<std::string>();
  } else if (key == "params") {
    if (!value.is_object()) return Fail(ErrorCode::BAD_INPUT, "\"params\" must be an object of strings");
    for (const auto& [name, v] : value.items()) {
      if (!v.is_string()) return Fail(ErrorCode::BAD_INPUT, "\"params\" must be an object of strings");
      q.params[name] = v.get<std::string>();
    }
  } else if (key == "receivers") {
    if (!value.is_array()) return Fail(ErrorCode::BAD_INPUT, "\"receivers\" must be an array of names");
    for (const auto& v : value) {
      if (!v.is_string() || v.get<std::string>().empty()) {
        return Fail(ErrorCode::BAD_INPUT, "\"receivers\" must be an array of names");
      }
      q.receivers.push_back(v.get<std::string>());
    }
  } else if (key == "epsilon") {
    // The same check as `query --epsilon`: a positive finite number; the
    // service refuses it for a room without privacy.dp, before anything runs.
    if (!value.is_number() || !std::isfinite(value.get<double>()) || value.get<double>() <= 0) {
      return Fail(ErrorCode::USAGE, "\"epsilon\" must be a positive number");
    }
    q.epsilon = value.get<double>();
  } else if (key == "benchmark") {
    if (!value.is_boolean())
      return Fail(ErrorCode::BAD_INPUT, "\"benchmark\" must be true or false");
    q.benchmark = value.get<bool>();
  } else {
    return Fail(ErrorCode::BAD_INPUT, "unexpected field in the request body");
  }
  return Ok();
}

Status CheckQuery(room::Room& room, const crypto::PublicIdentity& caller, const std::string& body,
                  httplib::Response& res) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Fail(ErrorCode::BAD_INPUT, "the request body is not a JSON object");
  query::Request q;
  for (const auto& [key, value] : j.items()) {
    if (key == "template") {
      if (!value.is_string() || value.get<std::string>().empty()) {
        return Fail(ErrorCode::BAD_INPUT, "\"template\" must be a template's name");
      }
      q.template_name = value.get<std::string>();
    } else {
      CR_TRY(ParseQueryField(key, value, q));
    }
  }
  if (j.contains("sql") == j.contains("template")) {
    return Fail(ErrorCode::BAD_INPUT, "the request body needs \"sql\" or \"template\", not both");
  }
  if (j.contains("params") && !j.contains("template")) {
    return Fail(ErrorCode::BAD_INPUT, "\"params\" belong to a template");
  }
  CR_ASSIGN(auto outcome, query::Check(room, caller, q));
  nlohmann::json answer = {{"ok", true},
                           {"datasets", outcome.datasets},
                           {"columns", outcome.columns},
                           {"receivers", outcome.receivers},
                           {"caller_receives", outcome.caller_receives},
                           {"dp", outcome.dp},
                           {"epsilon", outcome.epsilon ? nlohmann::json(*outcome.epsilon) : nlohmann::json(nullptr)}};
  res.status = 200;
  res.set_content(answer.dump() + "\n", "application/json");
  return Ok();
}

}  // namespace cr::server::console
