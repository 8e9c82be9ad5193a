// `cleanroom serve`: the room as an HTTPS service (src/server/server.h).
#include <fmt/core.h>

#include "cli/cli.h"
#include "room/cache.h"
#include "server/server.h"

namespace cr::cli {

void RegisterServe(CLI::App& root, Globals& g, Registry& r) {
  auto* cmd = root.add_subcommand(
      "serve", "serve the room over HTTPS to parties signing their requests (docs/server.md); "
               "holds the room until SIGTERM");
  static server::Options o;
  cmd->add_option("--listen", o.listen, "HOST:PORT to listen on (port 0: any free port)")
      ->capture_default_str();
  cmd->add_option("--tls-cert", o.tls_cert, "PEM certificate chain (required off loopback)");
  cmd->add_option("--tls-key", o.tls_key, "PEM private key of the certificate");
  cmd->add_option("--host", o.hosts,
                  "a host name parties reach this server by (the Host they sign; repeatable)");
  cmd->add_option("--threads", o.threads, "worker threads (default: twice the cores)")
      ->check(CLI::Range(0, 1024));
  cmd->add_option("--max-upload", o.max_upload, "largest package upload in bytes")
      ->capture_default_str();
  cmd->add_option("--max-body", o.max_body, "largest other request body in bytes")
      ->capture_default_str();
  cmd->add_option("--read-timeout", o.read_timeout_seconds,
                  "seconds a client may stay silent mid-request (408 after)")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  cmd->add_option("--write-timeout", o.write_timeout_seconds,
                  "seconds a client may take to accept the response")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  cmd->add_option("--query-timeout", o.query_timeout_seconds,
                  "longest a query may run, seconds (0: no limit)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e7));
  cmd->add_option("--retention-check", o.retention_check_seconds,
                  "seconds between two applications of the spec's retention while serving")
      ->capture_default_str()
      ->check(CLI::Range(1, 86400));
  cmd->add_option("--unauthenticated-audits-per-minute", o.unauthenticated_audits_per_minute,
                  "refusals of unsigned or unverifiable requests audited per client address and "
                  "minute (the rest are counted in /v1/metrics)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000000));
  cmd->add_option("--port-file", o.port_file, "write the bound port here once listening");
  static std::string cache_memory = "512MiB";
  cmd->add_option("--cache-memory", cache_memory,
                  "decrypted data kept in memory between queries, e.g. 512MiB (0: none)")
      ->capture_default_str();
  r.Add(cmd, Uses{.room = true, .formats = {"table", "json"}}, [&g]() -> Status {
    o.room_dir = g.room;
    CR_ASSIGN(o.cache_memory, room::ParseByteSize(cache_memory));
    return server::Serve(o);
  });
}

}  // namespace cr::cli
