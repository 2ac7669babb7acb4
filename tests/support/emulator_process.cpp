#include "tests/support/emulator_process.hpp"

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

#ifndef GRAPH_EMULATOR_PATH
#error "GRAPH_EMULATOR_PATH must name the graph-emulator binary under test"
#endif

namespace crmsync::e2e {

namespace {

using clock_type = std::chrono::steady_clock;

std::string errno_text(const char* what) {
  return std::string{what} + ": " + std::strerror(errno);
}

/// Reads from `fd` until the first newline; "" with `failure` set when the
/// deadline passes or the pipe closes first.
std::string read_first_line(int fd, clock_type::time_point deadline,
                            std::string& failure) {
  std::string line;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - clock_type::now())
                    .count();
    if (left <= 0) {
      failure = "no listening line before the deadline";
      return {};
    }
    pollfd p{fd, POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(left));
    if (n < 0 && errno != EINTR) {
      failure = errno_text("poll");
      return {};
    }
    if (n <= 0)
      continue;
    char buf[256];
    auto got = ::read(fd, buf, sizeof(buf));
    if (got < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (got <= 0) {
      failure = got == 0 ? "stdout closed before the listening line"
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

} // namespace

std::string graph_emulator_path() {
  return GRAPH_EMULATOR_PATH;
}

emulator_process::~emulator_process() {
  if (pid_ > 0)
    stop(std::chrono::seconds(5));
  close_pipe();
}

std::string emulator_process::url() const {
  return "http://127.0.0.1:" + std::to_string(port_);
}

void emulator_process::start(const emulator_options& opts) {
  if (pid_ > 0)
    throw std::runtime_error("emulator_process::start: already running");
  if (opts.log_file.empty())
    throw std::runtime_error("emulator_process::start: log_file is required");
  port_ = 0;
  log_file_ = opts.log_file;
  std::vector<std::string> args{graph_emulator_path(), "--listen",
                                "127.0.0.1:0"};
  args.insert(args.end(), opts.extra_args.begin(), opts.extra_args.end());
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  // The emulator reads GRAPH_EMULATOR_* from the environment.
  std::vector<char*> envp;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e)
    if (std::strncmp(*e, "GRAPH_EMULATOR_", 15) != 0)
      envp.push_back(*e);
  envp.push_back(nullptr);

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    throw std::runtime_error(errno_text("pipe2"));
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
  // Between fork and exec only async-signal-safe calls (the parent has
  // threads).
  pid_t child = ::fork();
  if (child == 0) {
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

  std::string failure;
  auto line = read_first_line(fds[0], clock_type::now() + opts.start_timeout,
                              failure);
  // Kept open until the child is reaped: a write to a closed pipe would
  // kill it with SIGPIPE.
  stdout_fd_ = fds[0];
  const std::string prefix = "graph-emulator listening on http://";
  if (failure.empty()) {
    auto colon = line.rfind(':');
    if (line.compare(0, prefix.size(), prefix) == 0
        && colon != std::string::npos && colon > prefix.size()) {
      auto port_text = line.substr(colon + 1);
      char* end = nullptr;
      auto v = std::strtoul(port_text.c_str(), &end, 10);
      if (!port_text.empty() && *end == '\0' && v > 0 && v <= 65535) {
        port_ = static_cast<uint16_t>(v);
        return;
      }
    }
    failure = "unexpected listening line: '" + line + "'";
  }
  kill9();
  throw std::runtime_error("graph-emulator did not start: " + failure
                           + "\n--- emulator log ---\n" + log_tail());
}

bool emulator_process::running() {
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

int emulator_process::stop(std::chrono::milliseconds timeout) {
  if (pid_ <= 0)
    return -1;
  ::kill(pid_, SIGTERM);
  const auto deadline = clock_type::now() + timeout;
  for (;;) {
    int status = 0;
    auto r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      close_pipe();
      if (WIFEXITED(status))
        return WEXITSTATUS(status);
      return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
    }
    if ((r < 0 && errno != EINTR) || clock_type::now() >= deadline) {
      kill9();
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void emulator_process::kill9() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }
  close_pipe();
}

void emulator_process::close_pipe() {
  if (stdout_fd_ >= 0) {
    ::close(stdout_fd_);
    stdout_fd_ = -1;
  }
}

std::string emulator_process::log_tail(size_t max_bytes) const {
  std::ifstream in{log_file_, std::ios::binary};
  std::ostringstream ss;
  ss << in.rdbuf();
  auto all = ss.str();
  if (all.size() <= max_bytes)
    return all;
  return "..." + all.substr(all.size() - max_bytes);
}

} // namespace crmsync::e2e
