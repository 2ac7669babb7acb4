// End-to-end test support: runs the crmsyncctl under test as a child
// process, a script on its stdin (a file, so not a terminal), and captures
// its exit code, stdout and stderr separately. The admin token variables
// of the test's environment are not passed on: a test names its token.
#pragma once

#include <string>
#include <vector>

namespace crmsync::e2e {

struct ctl_result {
  int rc = -1;
  std::string out;
  std::string err;
};

/// Runs crmsyncctl with `args` in `cwd` (the test's when empty) and waits
/// for it to exit.
ctl_result run_ctl(const std::vector<std::string>& args,
                   const std::string& script = {}, const std::string& cwd = {});

/// Replaces the calling (forked) process with crmsyncctl `args`; exits
/// 127 when it cannot.
[[noreturn]] void exec_ctl(const std::vector<std::string>& args);

/// The whole content of a file ("" when it cannot be read).
std::string slurp(const std::string& path);

} // namespace crmsync::e2e
