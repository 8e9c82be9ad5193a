// The web console (docs/console.md): the built-in page and scripts `serve`
// hands to browsers unsigned, and the two signed routes only the console needs
// (the spec as JSON, and a query check that runs nothing).
#pragma once

#include <span>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "query/service.h"
#include "room/room.h"

namespace httplib {
struct Response;
}

namespace cr::server::console {

// One built-in file. `name` is its path under /console/ ("index.html" is also
// served at /).
struct Asset {
  std::string_view name;
  std::string_view content_type;
  std::string_view body;
};

// Every built-in file, generated at build time from web/ (src/server/CMakeLists.txt).
std::span<const Asset> Assets();

// The headers every console file goes out with: a CSP that admits scripts
// from this origin only (and libsodium's WebAssembly) and requests to this
// origin only, no sniffing, no referrer, no framing, revalidated on each load.
void SetAssetHeaders(httplib::Response& res);

// GET / and GET /console/{name}: the asset or NOT_SUPPORTED (no such file). Never data.
Status ServeAsset(std::string_view name, httplib::Response& res);

// GET /v1/spec: the agreed spec as JSON (spec::Summary: parties, datasets with
// columns, roles and rules, templates with typed parameters). Settings only.
Status ServeSpec(const room::Room& room, httplib::Response& res);

// One field of a query body ("sql", "params", "receivers", "epsilon"), as
// POST /v1/query, the template runs and the check read it: BAD_INPUT (USAGE
// for epsilon) naming the field, or for any other key.
Status ParseQueryField(const std::string& key, const nlohmann::json& value, query::Request& q);

// POST /v1/query/check {"sql"} or {"template", "params"} (+ "receivers",
// "epsilon" as /v1/query): query::Check, so the editor shows why a query would
// be refused before anything runs. {"ok": true, "datasets", "columns",
// "receivers", "caller_receives", "dp", "epsilon"}; a refusal is the usual
// error body with the code the run would have. BAD_INPUT for a body of
// another shape.
Status CheckQuery(room::Room& room, const crypto::PublicIdentity& caller, const std::string& body,
                  httplib::Response& res);

}  // namespace cr::server::console
