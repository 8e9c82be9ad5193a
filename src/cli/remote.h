// The `--server` side of the CLI: which commands go to a room service, the
// connection they use, and the helpers that turn its answers into the same
// values the local commands print.
#pragma once

#include <string>
#include <string_view>

#include "cli/cli.h"
#include "client/client.h"
#include "common/error.h"
#include "query/service.h"
#include "results/results.h"

namespace cr::cli {

// Whether `command` runs against a server (--server given). USAGE for
// --server with --room (a command talks to one room, local or remote), and
// for --tls-ca without --server.
Result<bool> Remote(const Globals& g, std::string_view command);

// A signing client for --server/--tls-ca/--key; USAGE without --key.
Result<client::Client> ConnectServer(const Globals& g, std::string_view command);

// Opens the sealed box of a /v1/query, /v1/templates/.../run or
// /v1/results/ID answer with the caller's key: the result, checked to be the
// one the server named. TAMPERED when it does not open or holds another.
Result<results::ResultSet> OpenSealedAnswer(const client::Client& c, const nlohmann::json& answer);

// A /v1/query or /v1/templates/NAME/run answer as the Outcome the local run
// returns: the result opened with the caller's key when it is sealed to the
// caller, only its id otherwise.
Result<query::Outcome> RemoteOutcome(const client::Client& c, Result<nlohmann::json> answer);

// Percent-encodes a path segment (RFC 3986 unreserved characters pass).
std::string PathSegment(std::string_view s);

}  // namespace cr::cli
