// TLS material for tests that talk HTTPS on loopback: a CA, a server
// certificate it signs for localhost/127.0.0.1, and a second CA that signed
// nothing (the "wrong" one), made with the openssl command.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "testing/temp_dir.h"

namespace cr::testing {

struct TlsFiles {
  std::string ca_cert, server_cert, server_key, other_ca_cert;
  std::string wrong_host_cert, wrong_host_key;  // signed by the CA, for another name
  std::string self_signed_cert, self_signed_key;
};

// Makes the files under `dir`; fails the test when openssl fails.
inline TlsFiles MakeTlsFiles(const std::string& dir) {
  TlsFiles f{dir + "/ca.pem",         dir + "/server.pem",    dir + "/server.key",
             dir + "/other-ca.pem",   dir + "/wrong-host.pem", dir + "/wrong-host.key",
             dir + "/self-signed.pem", dir + "/self-signed.key"};
  auto q = [](const std::string& s) { return "'" + s + "'"; };
  const std::string o = "openssl ";
  const std::string quiet = " 2>/dev/null";
  auto ca = [&](const std::string& name, const std::string& key, const std::string& cert) {
    return o + "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=" +
           name + " -keyout " + q(key) + " -out " + q(cert) +
           " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign" + quiet;
  };
  auto leaf = [&](const std::string& san, const std::string& key, const std::string& cert) {
    std::string ext = dir + "/ext-" + std::to_string(std::hash<std::string>{}(cert)) + ".cnf";
    Spit(ext, "subjectAltName=" + san + "\nextendedKeyUsage=serverAuth\n");
    return o + "req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=server -keyout " +
           q(key) + " -out " + q(cert + ".csr") + quiet + " && " + o + "x509 -req -in " +
           q(cert + ".csr") + " -CA " + q(dir + "/ca.pem") + " -CAkey " + q(dir + "/ca.key") +
           " -CAcreateserial -days 2 -extfile " + q(ext) + " -out " + q(cert) + quiet;
  };
  const std::string cmd =
      ca("test-ca", dir + "/ca.key", f.ca_cert) + " && " +
      ca("other-ca", dir + "/other-ca.key", f.other_ca_cert) + " && " +
      leaf("DNS:localhost,IP:127.0.0.1", f.server_key, f.server_cert) + " && " +
      leaf("DNS:elsewhere.example", f.wrong_host_key, f.wrong_host_cert) + " && " +
      o + "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost " +
      "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout " + q(f.self_signed_key) +
      " -out " + q(f.self_signed_cert) + quiet;
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  return f;
}

}  // namespace cr::testing
