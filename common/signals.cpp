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

} // namespace crmsync
