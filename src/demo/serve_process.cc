#include "demo/serve_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include <fmt/format.h>

#include "common/files.h"

extern char** environ;

namespace cr::demo {
namespace {

// Runs argv[0] from PATH with its output discarded; the exit status.
Result<int> RunQuiet(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return Fail(ErrorCode::INTERNAL, "cannot run {}: {}", args[0], std::strerror(rc));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

}  // namespace

std::string SelfExecutable() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("/proc/self/exe") : p.string();
}

Result<TlsFiles> MakeTlsFiles(const std::string& dir) {
  TlsFiles f{dir + "/ca.pem", dir + "/server.pem", dir + "/server.key"};
  const std::string ca_key = dir + "/ca.key", csr = dir + "/server.csr", ext = dir + "/server.ext";
  CR_TRY(WriteFileAtomic(ext, "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                              "extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"));
  const std::vector<std::pair<std::string, std::vector<std::string>>> steps = {
      {"make the CA",
       {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-days", "30", "-subj", "/CN=cleanroom demo CA", "-keyout", ca_key, "-out",
        f.ca_cert, "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
        "keyUsage=critical,keyCertSign,cRLSign"}},
      {"make the server key",
       {"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-subj", "/CN=localhost", "-keyout", f.server_key, "-out", csr}},
      {"sign the server certificate",
       {"openssl", "x509", "-req", "-in", csr, "-CA", f.ca_cert, "-CAkey", ca_key,
        "-CAcreateserial", "-days", "30", "-extfile", ext, "-out", f.server_cert}},
  };
  for (const auto& [what, args] : steps) {
    CR_ASSIGN(int rc, RunQuiet(args));
    if (rc != 0) {
      return Fail(ErrorCode::INTERNAL, "openssl could not {} (exit {}); is openssl installed?", what,
                  rc);
    }
  }
  ::chmod(f.server_key.c_str(), 0600);
  ::chmod(ca_key.c_str(), 0600);
  return f;
}

Result<ServeProcess> ServeProcess::Start(const ServeOptions& o) {
  ServeProcess p;
  p.port_file_ = o.room + ".port";
  std::error_code ec;
  std::filesystem::remove(p.port_file_, ec);
  std::vector<std::string> args = {o.binary, "serve", "--room", o.room, "--listen", "127.0.0.1:0",
                                   "--port-file", p.port_file_};
  if (!o.tls.server_cert.empty()) {
    args.insert(args.end(), {"--tls-cert", o.tls.server_cert, "--tls-key", o.tls.server_key});
  }
  args.insert(args.end(), o.extra_args.begin(), o.extra_args.end());
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  const std::string log = o.log_path.empty() ? "/dev/null" : o.log_path;
  posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
  int rc = posix_spawn(&p.pid_, o.binary.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    p.pid_ = -1;
    return Fail(ErrorCode::INTERNAL, "cannot start {} serve: {}", o.binary, std::strerror(rc));
  }
  // Waits on the server's own signal that it listens (the port file), not on
  // a guess of how long starting takes.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(o.start_timeout_seconds);
  while (true) {
    int status = 0;
    if (::waitpid(p.pid_, &status, WNOHANG) == p.pid_) {
      p.pid_ = -1;
      return Fail(ErrorCode::INTERNAL, "cleanroom serve exited (status {}) before listening{}",
                  WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
                  o.log_path.empty() ? "" : fmt::format("; see {}", o.log_path));
    }
    if (auto text = ReadFile(p.port_file_); text && !text->empty() && text->back() == '\n') {
      int port = 0;
      auto [ptr, err] = std::from_chars(text->data(), text->data() + text->size() - 1, port);
      if (err == std::errc() && port > 0) {
        p.port_ = port;
        break;
      }
    }
    if (std::chrono::steady_clock::now() > deadline) {
      (void)p.Stop();
      return Fail(ErrorCode::INTERNAL, "cleanroom serve did not listen within {} s",
                  o.start_timeout_seconds);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  p.url_ = fmt::format("{}://127.0.0.1:{}", o.tls.server_cert.empty() ? "http" : "https", p.port_);
  return p;
}

Status ServeProcess::Stop() {
  if (pid_ < 0) return Ok();
  ::kill(pid_, SIGTERM);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  std::error_code ec;
  std::filesystem::remove(port_file_, ec);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Fail(ErrorCode::INTERNAL, "cleanroom serve did not shut down cleanly (status {})",
                WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  }
  return Ok();
}

ServeProcess::~ServeProcess() { (void)Stop(); }

ServeProcess::ServeProcess(ServeProcess&& o) noexcept
    : pid_(o.pid_), port_(o.port_), url_(std::move(o.url_)), port_file_(std::move(o.port_file_)) {
  o.pid_ = -1;
}

ServeProcess& ServeProcess::operator=(ServeProcess&& o) noexcept {
  if (this != &o) {
    (void)Stop();
    pid_ = o.pid_;
    port_ = o.port_;
    url_ = std::move(o.url_);
    port_file_ = std::move(o.port_file_);
    o.pid_ = -1;
  }
  return *this;
}

}  // namespace cr::demo
