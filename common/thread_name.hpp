// Names the calling thread as `ps -L`, top and /proc/PID/task/*/comm show
// it, so an operator can tell a node's threads apart (what each pool
// costs is then visible, e.g. in docs/BENCHMARKS.md's thread counts).
#pragma once

#include <pthread.h>

#include <string>

namespace crmsync {

/// Linux keeps 15 characters; a longer name is cut there.
inline void name_this_thread(const std::string& name) {
  ::pthread_setname_np(::pthread_self(), name.substr(0, 15).c_str());
}

} // namespace crmsync
