// The party's side of the room service: HTTPS requests to `cleanroom serve`,
// each signed with the party's key (src/http/signature.h), the server's
// certificate verified (a private CA with --tls-ca, the system store
// otherwise), and error bodies turned back into the same Error the local
// command would have returned.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/env.h"
#include "common/error.h"
#include "crypto/crypto.h"

namespace cr::client {

// The parts of a --server URL: https://HOST[:PORT], or http:// for a
// loopback host only (a room's traffic never crosses a network in clear).
struct Endpoint {
  bool tls = true;
  std::string host;  // as written (IPv6 without brackets)
  int port = 443;
  // scheme://host:port as it goes into the signed @target-uri.
  std::string Origin() const;
};

// USAGE for anything but scheme://host[:port] with an optional trailing "/"
// (no path, query, user info or fragment), and for http:// to a host that is
// not loopback (localhost, 127.0.0.0/8, ::1).
Result<Endpoint> ParseServerUrl(std::string_view url);

// The party a key file speaks for: its file name without ".key" (keygen
// --name NAME writes NAME.key). The server checks the claim: the signature
// must verify under the key the spec gives that party.
Result<std::string> PartyOfKeyFile(const std::string& key_path);

// The error an error response stands for: {"error": CODE, "message": M}
// with a CODE this build knows becomes Error{CODE, M}, exactly as the local
// command reports it. Anything else (no JSON, unknown code) is INTERNAL,
// naming the HTTP status only: a body that is not ours is not repeated.
Error ErrorFromResponse(int http_status, std::string_view body);

class Client {
 public:
  struct Options {
    std::string url;
    std::string tls_ca;    // PEM file of the CA to trust; "" for the system store
    std::string key_path;  // the acting party's key
    // created= of each signature; DefaultClock() when null (must outlive the Client).
    const Clock* clock = nullptr;
    int timeout_seconds = 600;  // a governed query may run this long (RunOptions)
  };
  // Loads the key, parses the URL, checks the CA file can be read. Connects
  // lazily, on the first request.
  static Result<Client> Connect(const Options& options);
  ~Client();
  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;

  const std::string& party() const;
  const crypto::Identity& key() const;

  // A signed request to `path_and_query` ("/v1/results?x=y"); the body of a
  // 2xx response, the server's Error otherwise. TLS_UNTRUSTED when the
  // certificate does not verify (nothing was sent), SERVER_UNREACHABLE when
  // no connection could be made or the server went away mid-request.
  Result<std::string> Get(std::string_view path_and_query);
  Result<std::string> Post(std::string_view path_and_query, std::string_view body,
                           std::string_view content_type);
  // POSTs the file at `file_path` as the body, streamed from the file (never
  // held whole) after the server accepted the request's headers ("Expect:
  // 100-continue"): a refusal made on the headers (a signature that does not
  // verify, a missing ability, a Content-Length past the server's limit)
  // comes back as the server's Error, not as a connection reset mid-upload.
  // FILE_UNREADABLE when the file cannot be read.
  Result<std::string> Upload(std::string_view path_and_query, const std::string& file_path,
                             std::string_view content_type);
  // The same, parsing a JSON response (INTERNAL when it is not JSON).
  Result<nlohmann::json> GetJson(std::string_view path_and_query);
  Result<nlohmann::json> PostJson(std::string_view path_and_query, const nlohmann::json& body);

 private:
  Client();
  Result<std::string> Send(std::string_view method, std::string_view path_and_query,
                           std::string_view body, std::string_view content_type);
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace cr::client
