// End-to-end test support: a crmsyncd child process.
//
// node_process starts the real node binary (fork/exec; the child is killed
// when the test process dies), reads its one
// "crmsyncd listening on http://HOST:PORT" line from a stdout pipe (poll with
// a deadline) and owns the child until it is stopped, killed or destroyed.
// The child's stderr goes to a log file so a failing test can show it.
// Not thread-safe: one test thread drives one node_process. Start nodes from
// a thread that outlives them (the main test thread): the child's
// parent-death signal fires when the thread that forked it exits. The
// process handling is child_process's; this adds the node's command line.
#pragma once

#include "tests/support/child_process.hpp"

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace crmsync::e2e {

/// How to start a node.
struct node_options {
  std::string data_dir;               ///< required
  std::string listen = "127.0.0.1:0"; ///< --listen
  std::string admin_token;            ///< passed as --admin-token if set
  std::string log_file; ///< stderr goes here ("" = data_dir + ".log")
  std::vector<std::string> extra_args; ///< appended as given
  std::chrono::milliseconds start_timeout{20000};
};

/// One crmsyncd child process.
class node_process {
public:
  node_process() = default;
  ~node_process() = default; ///< kills the node if it is still running
  node_process(const node_process&) = delete;
  node_process& operator=(const node_process&) = delete;

  /// Starts the node and waits for its listening line. Throws
  /// std::runtime_error (with the tail of the node's log) when it cannot be
  /// spawned, exits early or does not announce itself before the deadline.
  void start(const node_options& opts);

  /// The port from the listening line (0 before start).
  uint16_t port() const {
    return child_.port();
  }
  pid_t pid() const {
    return child_.pid();
  }
  /// True while the child has not been reaped.
  bool running();

  /// SIGTERM, then waits up to `timeout` for the exit. Returns the exit code
  /// (0..255), 128 + signal when it died from a signal, or -1 when it had to
  /// be killed after the timeout (or was not running).
  int stop(std::chrono::milliseconds timeout = std::chrono::seconds(20));

  /// SIGKILL and reap. No-op when not running.
  void kill9();

  /// Everything the node has written to stderr so far (its log).
  std::string log() const;
  /// The last `max_bytes` of log().
  std::string log_tail(size_t max_bytes = 4000) const;

private:
  child_process child_;
};

/// The path of the crmsyncd binary under test.
std::string crmsyncd_path();

} // namespace crmsync::e2e
