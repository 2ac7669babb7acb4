#include "common/signals.hpp"

#include <pthread.h>

namespace crmsync {

sigset_t block_shutdown_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  // A write past the file-size limit (ulimit -f) then fails with EFBIG,
  // which storage reports as a refused write, instead of killing the
  // process with what it had not yet flushed.
  std::signal(SIGXFSZ, SIG_IGN);
  return signals;
}

int wait_for_shutdown_signal(const sigset_t& signals) {
  int sig = 0;
  sigwait(&signals, &sig);
  return sig;
}

int wait_for_shutdown_signal(const sigset_t& signals,
                             std::chrono::milliseconds every,
                             const std::function<void()>& meanwhile) {
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(every);
  timespec wait{};
  wait.tv_sec = secs.count();
  wait.tv_nsec
      = std::chrono::duration_cast<std::chrono::nanoseconds>(every - secs)
            .count();
  for (;;) {
    int sig = sigtimedwait(&signals, nullptr, &wait);
    if (sig > 0)
      return sig;
    meanwhile(); // timed out (EAGAIN) or interrupted (EINTR)
  }
}

} // namespace crmsync
