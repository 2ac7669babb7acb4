#include "tests/support/node_process.hpp"

#include <stdexcept>

#include "tests/support/answer_record.hpp"

#ifndef CRMSYNCD_PATH
#error "CRMSYNCD_PATH must name the crmsyncd binary under test"
#endif

namespace crmsync::e2e {

std::string crmsyncd_path() {
  return CRMSYNCD_PATH;
}

void node_process::start(const node_options& opts) {
  if (child_.pid() > 0)
    throw std::runtime_error("node_process::start: already running");
  if (opts.data_dir.empty())
    throw std::runtime_error("node_process::start: data_dir is required");

  child_options child;
  child.argv
      = {crmsyncd_path(), "--listen", opts.listen, "--data-dir", opts.data_dir};
  if (!opts.admin_token.empty()) {
    child.argv.emplace_back("--admin-token");
    child.argv.push_back(opts.admin_token);
  }
  child.argv.insert(child.argv.end(), opts.extra_args.begin(),
                    opts.extra_args.end());
  child.log_file
      = opts.log_file.empty() ? opts.data_dir + ".log" : opts.log_file;
  // The node reads CRMSYNC_* from the environment: keep the test hermetic.
  child.drop_env_prefix = "CRMSYNC_";
  child.name = "crmsyncd";
  child.log_label = "node";
  child.start_timeout = opts.start_timeout;
  child_.start(child);
  note_node_port(child_.port());
}

bool node_process::running() {
  return child_.running();
}

int node_process::stop(std::chrono::milliseconds timeout) {
  forget_node_port(child_.port());
  return child_.stop(timeout);
}

void node_process::kill9() {
  forget_node_port(child_.port());
  child_.kill9();
}

std::string node_process::log() const {
  return child_.log();
}

std::string node_process::log_tail(size_t max_bytes) const {
  return child_.log_tail(max_bytes);
}

} // namespace crmsync::e2e
