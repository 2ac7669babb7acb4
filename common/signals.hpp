// Shutdown signals for the project's daemons.
//
// Call block_shutdown_signals() in main() before any thread starts: every
// thread then inherits SIGINT/SIGTERM blocked (and SIGPIPE and SIGXFSZ
// ignored, so a peer closing a socket or a file reaching the file-size
// limit is an error code, not a crash), and the main thread takes them with
// wait_for_shutdown_signal().
#pragma once

#include <csignal>

namespace crmsync {

/// Blocks SIGINT and SIGTERM in the calling thread and ignores SIGPIPE and
/// SIGXFSZ.
sigset_t block_shutdown_signals();

/// Waits for one of the signals blocked above; returns its number.
int wait_for_shutdown_signal(const sigset_t& signals);

} // namespace crmsync
