// Test fixture: a two-shard ClickHouse cluster on loopback, started by the
// test and stopped by it. Each server gets its own temporary folder with its
// config, users file and data; both list the same `remote_servers` cluster
// (`cr_test`, one replica per shard, over the native TCP ports). The servers
// are started with PR_SET_PDEATHSIG, so a crashed test cannot leave them
// running, and the destructor stops them (TERM, then KILL) on every way out.
//
// Users: `cleanroom` (password `kPassword`, may create tables: what the room's
// ingest uses) and `cleanroom_ro` (same password, readonly = 2: may run
// SELECTs with settings such as max_execution_time, but not write).
//
// Only a missing binary is a reason to skip (Available()); CI installs it
// through scripts/setup, so there the tests run.
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <httplib.h>

#include "testing/temp_dir.h"

namespace cr::testing {

class ClickHouseCluster {
 public:
  static constexpr const char* kCluster = "cr_test";
  static constexpr const char* kUser = "cleanroom";
  static constexpr const char* kReadOnlyUser = "cleanroom_ro";
  static constexpr const char* kPassword = "test-cluster-password";

  // The server binary: $CLEANROOM_CLICKHOUSE_SERVER or Debian's path.
  static std::string Binary() {
    const char* env = std::getenv("CLEANROOM_CLICKHOUSE_SERVER");
    return env && *env ? env : "/usr/sbin/clickhouse-server";
  }
  static bool Available() { return ::access(Binary().c_str(), X_OK) == 0; }
  static std::string SkipMessage() {
    return Binary() + " is not installed (scripts/setup installs clickhouse-server): ClickHouse tests skipped";
  }

  struct Server {
    int http_port = 0;
    int tcp_port = 0;
    pid_t pid = -1;
    std::string dir;
    std::string Url() const { return fmt::format("http://127.0.0.1:{}", http_port); }
  };

  // Starts `shards` servers (all at once) and waits until every one answers
  // /ping. On failure ok() is false and error() says why.
  explicit ClickHouseCluster(int shards = 2) {
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < shards; ++i) {
      Server s;
      s.http_port = FreePort();
      s.tcp_port = FreePort();
      s.dir = dir_ / fmt::format("shard{}", i);
      servers_.push_back(s);
    }
    for (auto& s : servers_) {
      std::filesystem::create_directories(s.dir + "/data");
      Spit(s.dir + "/config.xml", Config(s));
      Spit(s.dir + "/users.xml", Users());
      s.pid = Spawn(s);
      if (s.pid < 0) {
        error_ = "could not start " + Binary();
        return;
      }
    }
    for (auto& s : servers_) {
      if (!WaitReady(s)) return;
    }
    startup_seconds_ =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ok_ = true;
  }
  ~ClickHouseCluster() {
    for (size_t i = 0; i < servers_.size(); ++i) Stop(i);
  }
  ClickHouseCluster(const ClickHouseCluster&) = delete;
  ClickHouseCluster& operator=(const ClickHouseCluster&) = delete;

  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  double startup_seconds() const { return startup_seconds_; }
  const std::vector<Server>& servers() const { return servers_; }
  // "http://127.0.0.1:P1,http://127.0.0.1:P2", as `room init --clickhouse` takes it.
  std::string Urls() const {
    std::string out;
    for (const auto& s : servers_) out += (out.empty() ? "" : ",") + s.Url();
    return out;
  }

  // SIGKILL one server (a shard dying mid-query) and reap it.
  void Kill(size_t i) {
    Server& s = servers_[i];
    if (s.pid <= 0) return;
    ::kill(s.pid, SIGKILL);
    ::waitpid(s.pid, nullptr, 0);
    s.pid = -1;
  }

  // Runs a statement on server `i` as `user` (default: kUser); the body, or
  // "ERROR <status>: <body>".
  std::string Run(size_t i, const std::string& sql, const std::string& user = kUser) const {
    httplib::Client cli("127.0.0.1", servers_[i].http_port);
    cli.set_basic_auth(user, kPassword);
    cli.set_read_timeout(120, 0);
    auto res = cli.Post("/", sql, "text/plain");
    if (!res) return "ERROR unreachable";
    if (res->status != 200) return fmt::format("ERROR {}: {}", res->status, res->body);
    return res->body;
  }

 private:
  static int FreePort() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    int port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
      port = ntohs(a.sin_port);
    }
    ::close(fd);
    return port;
  }

  std::string Config(const Server& s) const {
    std::string shards;
    for (const auto& o : servers_) {
      shards += fmt::format(
          "<shard><replica><host>127.0.0.1</host><port>{}</port><user>{}</user>"
          "<password>{}</password></replica></shard>",
          o.tcp_port, kUser, kPassword);
    }
    return fmt::format(R"(<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{0}/server.log</log><errorlog>{0}/server.err.log</errorlog>
    <size>10M</size><count>1</count></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{1}</http_port>
  <tcp_port>{2}</tcp_port>
  <interserver_http_port>0</interserver_http_port>
  <path>{0}/data/</path>
  <tmp_path>{0}/data/tmp/</tmp_path>
  <user_files_path>{0}/data/user_files/</user_files_path>
  <format_schema_path>{0}/data/format_schemas/</format_schema_path>
  <users_config>{0}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>67108864</mark_cache_size>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
  <max_concurrent_queries>16</max_concurrent_queries>
  <remote_servers><{3}>{4}</{3}></remote_servers>
</yandex>
)",
                       s.dir, s.http_port, s.tcp_port, kCluster, shards);
  }

  static std::string Users() {
    // SHA-256 of kPassword, computed here so the file never holds it in clear.
    std::string hex = Sha256Hex(kPassword);
    return fmt::format(R"(<?xml version="1.0"?>
<yandex>
  <profiles>
    <default><max_memory_usage>4000000000</max_memory_usage><max_threads>2</max_threads></default>
    <readonly><readonly>2</readonly><max_threads>2</max_threads></readonly>
  </profiles>
  <users>
    <{0}><password_sha256_hex>{2}</password_sha256_hex><networks><ip>127.0.0.1</ip></networks>
      <profile>default</profile><quota>default</quota></{0}>
    <{1}><password_sha256_hex>{2}</password_sha256_hex><networks><ip>127.0.0.1</ip></networks>
      <profile>readonly</profile><quota>default</quota></{1}>
  </users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
    <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>
  </interval></default></quotas>
</yandex>
)",
                       kUser, kReadOnlyUser, hex);
  }

  static std::string Sha256Hex(const std::string& s) {
    auto r = RunShell("printf %s " + Q(s) + " | sha256sum");
    return r.out.substr(0, 64);
  }

  pid_t Spawn(const Server& s) const {
    std::string bin = Binary();
    std::string config = "--config-file=" + s.dir + "/config.xml";
    std::string out = s.dir + "/stdout";
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid != 0) return pid;
    // Child: die with the test process; no inherited stdin; output to a file.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    FILE* f = std::freopen(out.c_str(), "w", stdout);
    if (f) ::dup2(::fileno(stdout), 2);
    FILE* in = std::freopen("/dev/null", "r", stdin);
    (void)in;
    ::execl(bin.c_str(), bin.c_str(), config.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }

  bool WaitReady(const Server& s) {
    httplib::Client cli("127.0.0.1", s.http_port);
    cli.set_connection_timeout(0, 200000);
    for (int i = 0; i < 600; ++i) {  // up to 60 s on a loaded machine
      int status = 0;
      if (::waitpid(s.pid, &status, WNOHANG) == s.pid) {
        error_ = fmt::format("clickhouse-server exited at start; see {}/stdout:\n{}", s.dir,
                             Slurp(s.dir + "/stdout") + Slurp(s.dir + "/server.err.log"));
        const_cast<Server&>(s).pid = -1;
        return false;
      }
      auto res = cli.Get("/ping");
      if (res && res->status == 200) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    error_ = fmt::format("clickhouse-server on port {} did not answer within 60 s", s.http_port);
    return false;
  }

  void Stop(size_t i) {
    Server& s = servers_[i];
    if (s.pid <= 0) return;
    ::kill(s.pid, SIGTERM);
    for (int n = 0; n < 100; ++n) {  // 10 s for a clean shutdown, then KILL
      if (::waitpid(s.pid, nullptr, WNOHANG) == s.pid) {
        s.pid = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    Kill(i);
  }

  TempDir dir_holder_;
  std::filesystem::path dir_ = dir_holder_.path();
  std::vector<Server> servers_;
  bool ok_ = false;
  std::string error_;
  double startup_seconds_ = 0;
};

}  // namespace cr::testing
