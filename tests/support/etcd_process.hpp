// End-to-end test support: a one-member etcd (Debian's etcd-server) of a
// test's own, on free loopback ports, with its data in a directory of the
// test's. The cluster's coordination store for the etcd tests (ADR 0007).
//
// Not thread-safe: one test thread drives one etcd_process; start it from a
// thread that outlives it (the child is SIGKILLed when its parent thread's
// process dies, like every child_process).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tests/support/child_process.hpp"

namespace crmsync::e2e {

/// t15-ops: etcd serving https (with --cert-file/--key-file), and asking
/// clients for a certificate of `client_ca` when that is set
/// (--client-cert-auth --trusted-ca-file). The probe of /health trusts
/// `ca_file` and shows `probe_cert`/`probe_key`.
struct etcd_tls {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string client_ca;
  std::string probe_cert;
  std::string probe_key;
};

/// t15-ops: a throwaway CA and certificates for an etcd on 127.0.0.1, made
/// with openssl in `dir`: ca.pem (+ ca.key), server.pem/.key (for
/// 127.0.0.1 and localhost), client.pem/.key (CN crmsync) under that CA,
/// and rogue-ca.pem with rogue.pem/.key, a client of another CA. Keys are
/// 0600.
void make_etcd_certs(const std::string& dir);

class etcd_process {
public:
  /// Starts etcd with its data under `dir` (made if missing) and waits
  /// until it answers /health; throws std::runtime_error with its log when
  /// it does not.
  explicit etcd_process(const std::string& dir);
  /// The same over TLS (t15-ops), with more flags for etcd (`extra`).
  etcd_process(const std::string& dir, etcd_tls tls,
               std::vector<std::string> extra = {});
  /// Stops etcd (SIGTERM, then SIGKILL).
  ~etcd_process();
  /// Stops it now (the coordination store going away under a cluster).
  void stop();
  etcd_process(const etcd_process&) = delete;
  etcd_process& operator=(const etcd_process&) = delete;

  /// The client URL, for --etcd-endpoints.
  std::string url() const {
    return (tls_ ? "https://127.0.0.1:" : "http://127.0.0.1:")
           + std::to_string(client_port_);
  }
  uint16_t client_port() const {
    return client_port_;
  }
  std::string log_tail() const {
    return child_.log_tail(3000);
  }

private:
  void start(const std::string& dir, const etcd_tls* tls,
             const std::vector<std::string>& extra);

  child_process child_;
  uint16_t client_port_ = 0;
  bool tls_ = false;
};

/// The path of the etcd binary ("etcd" from Debian's etcd-server).
std::string etcd_path();

} // namespace crmsync::e2e
