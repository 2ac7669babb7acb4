// End-to-end test support: a graph-emulator child process.
//
// emulator_process starts the real graph-emulator binary on 127.0.0.1 port 0
// (fork/exec; the child is killed when the test process dies), reads its
// "graph-emulator listening on http://HOST:PORT" line from a stdout pipe
// (poll with a deadline) and owns the child until it is stopped or
// destroyed. The child's stderr goes to a log file. Not thread-safe: one
// test thread drives one emulator_process, and it must be started from a
// thread that outlives it (see node_process.hpp). The process handling is
// child_process's; this adds the emulator's command line.
#pragma once

#include "tests/support/child_process.hpp"

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace crmsync::e2e {

/// How to start an emulator.
struct emulator_options {
  std::string log_file; ///< stderr goes here; required
  /// Appended as given (--token-lifetime, --mailbox-limit, ...).
  std::vector<std::string> extra_args;
  std::chrono::milliseconds start_timeout{10000};
};

/// One graph-emulator child process.
class emulator_process {
public:
  emulator_process() = default;
  ~emulator_process();
  emulator_process(const emulator_process&) = delete;
  emulator_process& operator=(const emulator_process&) = delete;

  /// Starts the emulator and waits for its listening line. Throws
  /// std::runtime_error (with the tail of its log) when it cannot be
  /// spawned, exits early or does not announce itself before the deadline.
  void start(const emulator_options& opts);

  /// The port of the plain-HTTP listener (0 before start).
  uint16_t port() const {
    return child_.port();
  }
  /// "http://127.0.0.1:PORT".
  std::string url() const;
  /// True while the child has not been reaped.
  bool running();

  /// SIGTERM, then waits up to `timeout`; SIGKILL after it. Returns the
  /// exit code, 128 + signal, or -1 when it had to be killed (or was not
  /// running).
  int stop(std::chrono::milliseconds timeout = std::chrono::seconds(10));

  /// Everything the emulator has written to stderr so far.
  std::string log_tail(size_t max_bytes = 4000) const;

private:
  child_process child_;
};

/// The path of the graph-emulator binary under test.
std::string graph_emulator_path();

} // namespace crmsync::e2e
