#include "tests/support/etcd_process.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <sys/stat.h>

#include "http/client.hpp"
#include "tests/support/free_port.hpp"

namespace crmsync::e2e {

std::string etcd_path() {
  for (const char* p : {"/usr/bin/etcd", "/usr/local/bin/etcd"})
    if (::access(p, X_OK) == 0)
      return p;
  throw std::runtime_error("etcd is not installed (Debian: etcd-server; "
                           "scripts/install-deps.sh installs it)");
}

etcd_process::etcd_process(const std::string& dir) {
  start(dir, nullptr, {});
}

etcd_process::etcd_process(const std::string& dir, etcd_tls tls,
                           std::vector<std::string> extra) {
  start(dir, &tls, extra);
}

void etcd_process::start(const std::string& dir, const etcd_tls* tls,
                         const std::vector<std::string>& extra) {
  ::mkdir(dir.c_str(), 0700);
  tls_ = tls != nullptr;
  client_port_ = test::free_port();
  auto peer_port = test::free_port();
  auto client = url();
  auto peer = "http://127.0.0.1:" + std::to_string(peer_port);
  child_options o;
  o.argv = {etcd_path(),   "--name",
            "test",        "--data-dir",
            dir + "/data", "--listen-client-urls",
            client,        "--advertise-client-urls",
            client,        "--listen-peer-urls",
            peer,          "--initial-advertise-peer-urls",
            peer,          "--initial-cluster",
            "test=" + peer};
  http::tls_options probe;
  if (tls) {
    o.argv.insert(o.argv.end(),
                  {"--cert-file", tls->cert_file, "--key-file", tls->key_file});
    if (!tls->client_ca.empty())
      o.argv.insert(o.argv.end(), {"--client-cert-auth", "--trusted-ca-file",
                                   tls->client_ca});
    probe.enabled = true;
    probe.system_store = false;
    probe.extra_ca_file = tls->ca_file;
    probe.cert_file = tls->probe_cert;
    probe.key_file = tls->probe_key;
  }
  o.argv.insert(o.argv.end(), extra.begin(), extra.end());
  o.log_file = dir + "/etcd.log";
  o.drop_env_prefix = "ETCD_";
  o.name = "etcd";
  o.log_label = "etcd";
  o.ready = [port = client_port_, probe] {
    http::client c{"127.0.0.1", port, std::chrono::milliseconds(1000), probe};
    http::client_response res;
    std::string err;
    return c.request("GET", "/health", "", {}, res, err) && res.status == 200
           && res.body.find("\"true\"") != std::string::npos;
  };
  child_.start(o);
}

void make_etcd_certs(const std::string& dir) {
  auto run = [&](const std::string& cmd) {
    auto line = "cd '" + dir + "' && " + cmd + " >/dev/null 2>&1";
    if (std::system(line.c_str()) != 0)
      throw std::runtime_error("make_etcd_certs: failed: " + cmd);
  };
  ::mkdir(dir.c_str(), 0700);
  const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
                          "-nodes";
  for (std::string ca : {"ca", "rogue-ca"})
    run("openssl req -x509 " + key + " -keyout " + ca + ".key -out " + ca
        + ".pem -days 2 -subj '/CN=etcd test " + ca
        + "' -addext 'basicConstraints=critical,CA:TRUE' -addext "
          "'keyUsage=critical,keyCertSign,cRLSign'");
  struct leaf {
    std::string name, ca, cn, ext;
  };
  for (auto& l : std::vector<leaf>{
           {"server", "ca", "etcd",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
            "extendedKeyUsage=serverAuth,clientAuth"},
           {"client", "ca", "crmsync", "extendedKeyUsage=clientAuth"},
           {"rogue", "rogue-ca", "crmsync", "extendedKeyUsage=clientAuth"}}) {
    {
      std::ofstream ext{dir + "/" + l.name + ".ext"};
      ext << l.ext << "\n";
    }
    run("openssl req " + key + " -keyout " + l.name + ".key -out " + l.name
        + ".csr -subj '/CN=" + l.cn + "'");
    run("openssl x509 -req -in " + l.name + ".csr -CA " + l.ca + ".pem -CAkey "
        + l.ca + ".key -CAcreateserial -days 2 -extfile " + l.name
        + ".ext -out " + l.name + ".pem");
    run("chmod 0600 " + l.name + ".key");
  }
}

etcd_process::~etcd_process() {
  stop();
}

void etcd_process::stop() {
  child_.stop(std::chrono::seconds(10));
}

} // namespace crmsync::e2e
