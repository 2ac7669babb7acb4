// End-to-end test support: one child process of a binary under test.
//
// child_process starts a binary (fork/exec; the child is SIGKILLed when the
// test process dies), reads its one "NAME listening on http://HOST:PORT"
// line from a stdout pipe (poll with a deadline) and owns the child until it
// is stopped, killed or destroyed. The child's stderr goes to a log file so
// a failing test can show it. node_process and test::emulator wrap it.
// Not thread-safe: one test thread drives one child_process. Start children
// from a thread that outlives them (the main test thread): the child's
// parent-death signal fires when the thread that forked it exits.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace crmsync::e2e {

/// How to start a child.
struct child_options {
  std::vector<std::string> argv; ///< argv[0] is the binary's path; required
  std::string log_file;          ///< stderr goes here; required
  /// Environment variables whose names start with this are not passed on
  /// ("" = pass the whole environment).
  std::string drop_env_prefix;
  /// The program name that starts the listening line ("crmsyncd").
  std::string name;
  /// Names the log in error messages ("node" gives "--- node log ---").
  std::string log_label;
  std::chrono::milliseconds start_timeout{20000};
  /// For a binary that prints no listening line (etcd): asked until it
  /// answers true, instead of reading one; start() then returns 0.
  std::function<bool()> ready;
};

/// One child process that announces an HTTP listener on stdout.
class child_process {
public:
  child_process() = default;
  /// SIGKILLs the child if it is still running.
  ~child_process();
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  /// Starts the child and waits for its listening line; returns the port.
  /// Throws std::runtime_error (with the tail of the log) when it cannot be
  /// spawned, exits early or does not announce itself before the deadline.
  uint16_t start(const child_options& opts);

  /// The port from the listening line (0 before start).
  uint16_t port() const {
    return port_;
  }
  pid_t pid() const {
    return pid_;
  }
  /// True while the child has not been reaped.
  bool running();

  /// SIGTERM, then waits up to `timeout` for the exit. Returns the exit code
  /// (0..255), 128 + signal when it died from a signal, or -1 when it had to
  /// be killed after the timeout (or was not running).
  int stop(std::chrono::milliseconds timeout);

  /// SIGKILL and reap. No-op when not running.
  void kill9();

  /// Everything the child has written to stderr so far (its log).
  std::string log() const;
  /// The last `max_bytes` of log().
  std::string log_tail(size_t max_bytes = 4000) const;

private:
  bool wait_ready(const child_options& opts, std::string& failure);
  int wait_for_exit(std::chrono::milliseconds timeout);
  void close_pipe();

  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  uint16_t port_ = 0;
  std::string log_file_;
};

} // namespace crmsync::e2e
