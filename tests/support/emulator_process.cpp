#include "tests/support/emulator_process.hpp"

#include <stdexcept>

#ifndef GRAPH_EMULATOR_PATH
#error "GRAPH_EMULATOR_PATH must name the graph-emulator binary under test"
#endif

namespace crmsync::e2e {

std::string graph_emulator_path() {
  return GRAPH_EMULATOR_PATH;
}

emulator_process::~emulator_process() {
  if (child_.pid() > 0)
    child_.stop(std::chrono::seconds(5));
}

std::string emulator_process::url() const {
  return "http://127.0.0.1:" + std::to_string(port());
}

void emulator_process::start(const emulator_options& opts) {
  if (child_.pid() > 0)
    throw std::runtime_error("emulator_process::start: already running");
  if (opts.log_file.empty())
    throw std::runtime_error("emulator_process::start: log_file is required");

  child_options child;
  child.argv = {graph_emulator_path(), "--listen", "127.0.0.1:0"};
  child.argv.insert(child.argv.end(), opts.extra_args.begin(),
                    opts.extra_args.end());
  child.log_file = opts.log_file;
  // The emulator reads GRAPH_EMULATOR_* from the environment.
  child.drop_env_prefix = "GRAPH_EMULATOR_";
  child.name = "graph-emulator";
  child.log_label = "emulator";
  child.start_timeout = opts.start_timeout;
  child_.start(child);
}

bool emulator_process::running() {
  return child_.running();
}

int emulator_process::stop(std::chrono::milliseconds timeout) {
  return child_.stop(timeout);
}

std::string emulator_process::log_tail(size_t max_bytes) const {
  return child_.log_tail(max_bytes);
}

} // namespace crmsync::e2e
