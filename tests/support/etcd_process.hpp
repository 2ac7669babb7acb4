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

#include "tests/support/child_process.hpp"

namespace crmsync::e2e {

class etcd_process {
public:
  /// Starts etcd with its data under `dir` (made if missing) and waits
  /// until it answers /health; throws std::runtime_error with its log when
  /// it does not.
  explicit etcd_process(const std::string& dir);
  /// Stops etcd (SIGTERM, then SIGKILL).
  ~etcd_process();
  /// Stops it now (the coordination store going away under a cluster).
  void stop();
  etcd_process(const etcd_process&) = delete;
  etcd_process& operator=(const etcd_process&) = delete;

  /// The client URL, for --etcd-endpoints.
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(client_port_);
  }
  uint16_t client_port() const {
    return client_port_;
  }
  std::string log_tail() const {
    return child_.log_tail(3000);
  }

private:
  child_process child_;
  uint16_t client_port_ = 0;
};

/// The path of the etcd binary ("etcd" from Debian's etcd-server).
std::string etcd_path();

} // namespace crmsync::e2e
