#include "tests/support/child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace crmsync::e2e {

namespace {

using clock_type = std::chrono::steady_clock;

std::string errno_text(const char* what) {
  return std::string{what} + ": " + std::strerror(errno);
}

/// Reads from `fd` until the first newline; "" with `failure` set when the
/// deadline passes or the pipe closes first.
std::string read_first_line(int fd, std::chrono::milliseconds timeout,
                            const std::string& name, std::string& failure) {
  const auto deadline = clock_type::now() + timeout;
  std::string line;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - clock_type::now())
                    .count();
    if (left <= 0) {
      failure = "no listening line within " + std::to_string(timeout.count())
                + " ms";
      return {};
    }
    pollfd p{fd, POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(left));
    if (n < 0 && errno != EINTR) {
      failure = errno_text("poll");
      return {};
    }
    if (n <= 0)
      continue; // EINTR, or the deadline check above ends the loop
    char buf[256];
    auto got = ::read(fd, buf, sizeof(buf));
    if (got < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (got <= 0) {
      failure = got == 0 ? "stdout closed before the listening line (" + name
                               + " exited?)"
                         : errno_text("read");
      return {};
    }
    line.append(buf, static_cast<size_t>(got));
    if (auto nl = line.find('\n'); nl != std::string::npos) {
      line.resize(nl);
      return line;
    }
  }
}

/// The port of "NAME listening on http://HOST:PORT", or 0.
uint16_t parse_listening_line(const std::string& line,
                              const std::string& name) {
  const std::string prefix = name + " listening on http://";
  auto colon = line.rfind(':');
  if (line.compare(0, prefix.size(), prefix) != 0 || colon == std::string::npos
      || colon <= prefix.size())
    return 0;
  auto port_text = line.substr(colon + 1);
  char* end = nullptr;
  auto v = std::strtoul(port_text.c_str(), &end, 10);
  if (port_text.empty() || *end != '\0' || v == 0 || v > 65535)
    return 0;
  return static_cast<uint16_t>(v);
}

} // namespace

child_process::~child_process() {
  if (pid_ > 0)
    kill9();
  close_pipe();
}

void child_process::close_pipe() {
  if (stdout_fd_ >= 0) {
    ::close(stdout_fd_);
    stdout_fd_ = -1;
  }
}

uint16_t child_process::start(const child_options& opts) {
  if (pid_ > 0)
    throw std::runtime_error("child_process::start: already running");
  if (opts.argv.empty())
    throw std::runtime_error("child_process::start: argv is required");
  if (opts.log_file.empty())
    throw std::runtime_error("child_process::start: log_file is required");
  port_ = 0;
  close_pipe();
  log_file_ = opts.log_file;

  std::vector<std::string> args = opts.argv;
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);

  // Keep the test hermetic: the binaries read settings from the environment.
  const std::string& drop = opts.drop_env_prefix;
  std::vector<char*> envp;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e)
    if (drop.empty() || std::strncmp(*e, drop.c_str(), drop.size()) != 0)
      envp.push_back(*e);
  envp.push_back(nullptr);

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    throw std::runtime_error(errno_text("pipe2"));

  // Everything the child needs is prepared before fork(): between fork and
  // exec only async-signal-safe calls are made (the parent has threads).
  const int log_fd = ::open(log_file_.c_str(),
                            O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log_fd < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    throw std::runtime_error(errno_text(("open " + log_file_).c_str()));
  }
  const pid_t parent = ::getpid();
  sigset_t none;
  sigemptyset(&none);

  pid_t child = ::fork();
  if (child == 0) {
    // The child must not outlive the test process, even when the test
    // runner is killed: SIGKILL it when the parent goes away.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent)
      ::_exit(127);
    for (int sig = 1; sig < NSIG; ++sig)
      ::signal(sig, SIG_DFL);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0 || ::dup2(null_fd, STDIN_FILENO) < 0
        || ::dup2(fds[1], STDOUT_FILENO) < 0
        || ::dup2(log_fd, STDERR_FILENO) < 0)
      ::_exit(127);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  const int fork_errno = errno;
  ::close(fds[1]);
  ::close(log_fd);
  if (child < 0) {
    ::close(fds[0]);
    throw std::runtime_error(std::string{"fork: "} + std::strerror(fork_errno));
  }
  pid_ = child;
  // Kept open until the child is reaped: a write to a closed pipe would
  // kill it with SIGPIPE.
  stdout_fd_ = fds[0];

  std::string failure;
  if (opts.ready) {
    if (wait_ready(opts, failure))
      return 0;
  } else {
    auto line
        = read_first_line(stdout_fd_, opts.start_timeout, opts.name, failure);
    if (failure.empty()) {
      port_ = parse_listening_line(line, opts.name);
      if (port_ != 0)
        return port_;
      failure = "unexpected listening line: '" + line + "'";
    }
  }

  kill9();
  close_pipe();
  throw std::runtime_error(opts.name + " did not start: " + failure + "\n--- "
                           + opts.log_label + " log ---\n" + log_tail());
}

bool child_process::wait_ready(const child_options& opts,
                               std::string& failure) {
  const auto deadline = clock_type::now() + opts.start_timeout;
  for (;;) {
    if (!running()) {
      failure = "it exited";
      return false;
    }
    if (opts.ready())
      return true;
    if (clock_type::now() >= deadline) {
      failure = "not ready within " + std::to_string(opts.start_timeout.count())
                + " ms";
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

bool child_process::running() {
  if (pid_ <= 0)
    return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    close_pipe();
    return false;
  }
  return true;
}

int child_process::wait_for_exit(std::chrono::milliseconds timeout) {
  const auto deadline = clock_type::now() + timeout;
  for (;;) {
    int status = 0;
    auto r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      close_pipe();
      if (WIFEXITED(status))
        return WEXITSTATUS(status);
      if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
      return -1;
    }
    if (r < 0 && errno != EINTR) {
      pid_ = -1;
      close_pipe();
      return -1;
    }
    if (clock_type::now() >= deadline)
      return -2;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

int child_process::stop(std::chrono::milliseconds timeout) {
  if (pid_ <= 0)
    return -1;
  ::kill(pid_, SIGTERM);
  int rc = wait_for_exit(timeout);
  if (rc == -2) {
    kill9();
    return -1;
  }
  return rc;
}

void child_process::kill9() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }
  close_pipe();
}

std::string child_process::log() const {
  std::ifstream in{log_file_, std::ios::binary};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string child_process::log_tail(size_t max_bytes) const {
  auto all = log();
  if (all.size() <= max_bytes)
    return all;
  return "..." + all.substr(all.size() - max_bytes);
}

} // namespace crmsync::e2e
