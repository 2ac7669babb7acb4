// crmsyncctl's interactive console: `crmsyncctl` without a command.
//
// On a terminal it reads lines with libedit (line editing, history kept in
// ~/.crmsyncctl_history or --history FILE / CRMSYNCCTL_HISTORY, tab
// completion of commands, options and ids fetched from the node and cached
// for a few seconds). Without a terminal it reads commands line by line,
// so scripts and tests can drive it. Every line runs through the same
// dispatch as the one-shot command line; an error is reported and the
// console goes on.
#pragma once

#include "ctl/commands.hpp"

#include <functional>
#include <string>
#include <vector>

namespace crmsync::ctl {

/// Runs one command line (words after the program name) with `g` as the
/// defaults of the global options; returns its exit code.
using dispatch_fn = std::function<int(const std::vector<std::string>& words,
                                      const global_options& g)>;

struct console_options {
  /// "" = $CRMSYNCCTL_HISTORY, else ~/.crmsyncctl_history.
  std::string history_file;
  /// Where the admin token is read from when none is given.
  std::string token_file = "data/admin.token";
};

/// The console loop; returns 0 when every command succeeded, else the exit
/// code of the last one that failed.
int run_console(const global_options& g, const console_options& c,
                dispatch_fn dispatch);

} // namespace crmsync::ctl
