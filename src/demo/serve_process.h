// A room service for the demo, the benchmark and the tests: TLS material made
// with the openssl command (a CA and a certificate it signs for localhost and
// 127.0.0.1), and `cleanroom serve` run as a child process on loopback, on a
// port the kernel picks, stopped with SIGTERM as an operator would.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/error.h"

namespace cr::demo {

struct TlsFiles {
  std::string ca_cert;      // what clients pass as --tls-ca
  std::string server_cert;  // --tls-cert
  std::string server_key;   // --tls-key (mode 0600)
};

// Writes DIR/ca.pem, DIR/ca.key, DIR/server.pem and DIR/server.key (P-256,
// valid 30 days). INTERNAL naming the step when openssl is missing or fails.
Result<TlsFiles> MakeTlsFiles(const std::string& dir);

struct ServeOptions {
  std::string binary;  // the cleanroom executable
  std::string room;
  TlsFiles tls;        // empty cert: plain http on loopback
  std::vector<std::string> extra_args;  // e.g. {"--cache-memory", "512MiB"}
  std::string log_path;                 // the child's stdout and stderr ("": /dev/null)
  int start_timeout_seconds = 120;
};

class ServeProcess {
 public:
  // Starts `binary serve --room ROOM --listen 127.0.0.1:0 --port-file F ...`
  // and waits until it has written the port it listens on. INTERNAL when it
  // exits first or does not listen within the timeout (it is then stopped).
  static Result<ServeProcess> Start(const ServeOptions& options);
  ~ServeProcess();
  ServeProcess(ServeProcess&&) noexcept;
  ServeProcess& operator=(ServeProcess&&) noexcept;
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  // https://127.0.0.1:PORT (http:// without TLS).
  std::string url() const { return url_; }
  // SIGTERM, then waits for the exit. INTERNAL unless it exits with status 0.
  Status Stop();

 private:
  ServeProcess() = default;
  pid_t pid_ = -1;
  int port_ = 0;
  std::string url_;
  std::string port_file_;
};

// The running executable (/proc/self/exe resolved), for spawning `serve`.
std::string SelfExecutable();

}  // namespace cr::demo
