// End-to-end test support: one run of the real crmsyncctl binary.
#pragma once

#include <string>
#include <vector>

namespace crmsync::e2e {

struct ctl_result {
  int rc = -1;     ///< exit code, or 128 + signal
  std::string out; ///< stdout
  std::string err; ///< stderr
};

/// Runs crmsyncctl with `args`, `script` on its stdin (a file, so not a
/// terminal), in `cwd` when given; stdout and stderr are captured apart.
/// CRMSYNC_ADMIN_TOKEN(_FILE) from the test's environment are not passed
/// on. Throws std::runtime_error when it cannot be started.
ctl_result run_ctl(const std::vector<std::string>& args,
                   const std::string& script = {}, const std::string& cwd = {});

} // namespace crmsync::e2e
