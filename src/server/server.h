// `cleanroom serve`: the room as an HTTPS service. Every request but health and
// metrics is signed (RFC 9421, src/http/signature.h) by a party of the spec;
// the server holds the room, never a party's secret key, and returns results
// only as the sealed box made for the caller.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.h"

namespace cr::server {

struct Options {
  std::string room_dir;
  std::string listen = "127.0.0.1:8443";  // HOST:PORT; port 0 picks a free one
  std::string tls_cert, tls_key;          // PEM files; required off loopback
  // Extra host names the Host header (and so the signed @target-uri) may
  // carry besides the listen address: the name parties use for this server.
  std::vector<std::string> hosts;
  int threads = 0;  // worker threads; 0: twice the cores
  uint64_t max_upload = 4ull << 30;  // bytes of a contribution package
  uint64_t max_body = 1 << 20;       // bytes of any other request body
  int read_timeout_seconds = 30;
  int write_timeout_seconds = 30;
  double query_timeout_seconds = 600;
  // Bytes of decrypted datasets kept between queries (room/cache.h: memfd
  // pages, MADV_DONTDUMP, dropped on a new version and at shutdown); 0: off.
  uint64_t cache_memory = 512ull << 20;
  // How often retention (the spec's retention_days) is applied while serving,
  // besides once at start.
  int retention_check_seconds = 60;
  // Refusals of requests whose signature did not verify that are audited per
  // client address and minute; the rest are only counted in the metrics, so
  // an unauthenticated flood cannot grow the audit log without bound.
  int unauthenticated_audits_per_minute = 60;
  // Written (atomically) with the bound port once the server listens.
  std::string port_file;
};

// The clock window a signature's `created` must fall in, and so how long a
// nonce is remembered.
inline constexpr long long kMaxClockSkewSeconds = 300;

// A served route: method and path in OpenAPI syntax ("/v1/results/{id}").
struct Route {
  std::string method;
  std::string path;
  bool signed_request = true;
};

// Every route the server registers, from the same table it registers them
// from (the test compares it with docs/api/openapi.yaml).
std::vector<Route> Routes();

// docs/api/openapi.yaml as built into the binary.
std::string_view OpenApiDocument();

// "HOST:PORT" or "[V6]:PORT"; USAGE otherwise.
Result<std::pair<std::string, int>> ParseListen(std::string_view listen);

// The Host header values a server listening on `host`:`port` answers to
// (loopback names for a loopback address, `options.hosts`), each with the
// port, and also without it on the scheme's default port.
std::vector<std::string> ServedHosts(const std::string& host, int port, bool tls,
                                     const Options& options);

// 127.0.0.0/8, ::1 and localhost: the addresses plain HTTP may listen on.
bool IsLoopback(std::string_view host);

// Opens the room read-write (holding its lock: local commands get ROOM_BUSY
// while it serves), cleans what a killed server left (upload and atomic-write
// temporaries, results never committed), listens and serves until SIGTERM or
// SIGINT, applying retention every `retention_check_seconds`, then lets
// in-flight requests finish and returns Ok. USAGE for a non-loopback address
// without TLS.
Status Serve(const Options& options);

}  // namespace cr::server
