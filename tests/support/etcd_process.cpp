#include "tests/support/etcd_process.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <sys/stat.h>

#include "http/client.hpp"

namespace crmsync::e2e {

namespace {

/// A loopback port that was free a moment ago: etcd takes its ports from
/// its command line and reports none.
uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    throw std::runtime_error("socket() failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0
            && ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  ::close(fd);
  if (!ok)
    throw std::runtime_error("bind() failed");
  return ntohs(a.sin_port);
}

} // namespace

std::string etcd_path() {
  for (const char* p : {"/usr/bin/etcd", "/usr/local/bin/etcd"})
    if (::access(p, X_OK) == 0)
      return p;
  throw std::runtime_error("etcd is not installed (Debian: etcd-server; "
                           "scripts/install-deps.sh installs it)");
}

etcd_process::etcd_process(const std::string& dir) {
  ::mkdir(dir.c_str(), 0700);
  client_port_ = free_port();
  auto peer_port = free_port();
  auto client = "http://127.0.0.1:" + std::to_string(client_port_);
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
  o.log_file = dir + "/etcd.log";
  o.drop_env_prefix = "ETCD_";
  o.name = "etcd";
  o.log_label = "etcd";
  o.ready = [port = client_port_] {
    http::client c{"127.0.0.1", port, std::chrono::milliseconds(1000)};
    http::client_response res;
    std::string err;
    return c.request("GET", "/health", "", {}, res, err) && res.status == 200
           && res.body.find("\"true\"") != std::string::npos;
  };
  child_.start(o);
}

etcd_process::~etcd_process() {
  stop();
}

void etcd_process::stop() {
  child_.stop(std::chrono::seconds(10));
}

} // namespace crmsync::e2e
