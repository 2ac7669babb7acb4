// crmsync-loadgen's steady-state calendar-sync benchmark (issue 5, target
// b): bring many Office 365 users into sync (--steady-setup), then keep a
// paced stream of changes going both ways and measure how long each takes
// to reach the other side (--steady-run). See bench/run-steady.sh.
#pragma once

#include <string>

namespace crmsync::bench {

struct steady_config {
  std::string node;        ///< crmsyncd, http://host:port
  std::string emulator;    ///< graph-emulator, http://host:port
  std::string admin_token; ///< the node's service admin token
  std::string state_file;  ///< written by setup, read by run
  int users = 10000;       ///< setup: users to bring into sync
  int tenants = 0;         ///< setup: Office 365 tenants (0 = users / 100)
  int threads = 16;        ///< setup and verification threads
  bool enable_sync = true; ///< setup: turn calendar sync on and wait for it
  int enable_wave = 0;     ///< setup: users turned on before waiting (0 = all)
  double rate = 1000;      ///< run: changes per second, both ways together
  double duration_s = 60;  ///< run: seconds of load
  double drain_s = 120;    ///< run: longest wait for the other side
  int connections = 64;    ///< run: writer threads
  double update_share = 0.3; ///< run: share of updates (rest: creates, deletes)
  double delete_share = 0.2; ///< run: share of deletes
  std::string outlook_client_id = "bench-outlook";
  std::string outlook_secret = "bench-outlook-secret";
  bool json = false; ///< run: also print the result as one JSON line
  /// run: -1 both directions (alternating), 0 only CRM -> Office 365, 1
  /// only Office 365 -> CRM
  int only_direction = -1;
  /// run: crmsyncd's process id (0: unknown); when set, the run reads its
  /// CPU time (/proc/PID/stat) and prints the node's CPU per change
  int node_pid = 0;
};

/// Creates the tenants, installs the CRM in each, brings every user in
/// (sign-in, join request, approval), turns calendar sync on for all and
/// waits until every one is active; writes the state file. 0 on success.
/// Without enable_sync the users are left with sync off (state file with
/// calendar "-"), for a benchmark that turns it on itself.
int steady_setup(const steady_config& cfg);

/// Runs the paced load from the state file, waits for the other sides to
/// hold every change and prints latencies and counts. 0 when every change
/// arrived, 1 when some did not, 2 on a setup error.
int steady_run(const steady_config& cfg);

} // namespace crmsync::bench
