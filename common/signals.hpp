// Shutdown signals for the project's daemons.
//
// Call block_shutdown_signals() in main() before any thread starts: every
// thread then inherits SIGINT/SIGTERM blocked (and SIGPIPE and SIGXFSZ
// ignored, so a peer closing a socket or a file reaching the file-size
// limit is an error code, not a crash), and the main thread takes them with
// wait_for_shutdown_signal().
#pragma once

#include <chrono>
#include <csignal>
#include <functional>

namespace crmsync {

/// Blocks SIGINT and SIGTERM in the calling thread and ignores SIGPIPE and
/// SIGXFSZ.
sigset_t block_shutdown_signals();

/// Waits for one of the signals blocked above; returns its number.
int wait_for_shutdown_signal(const sigset_t& signals);

/// The same, calling `meanwhile` on the waiting thread every `every`
/// (housekeeping that must block no other thread).
int wait_for_shutdown_signal(const sigset_t& signals,
                             std::chrono::milliseconds every,
                             const std::function<void()>& meanwhile);

} // namespace crmsync
