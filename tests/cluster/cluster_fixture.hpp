// End-to-end support for a crmsync cluster: the Office 365 fixture's
// emulator (office365_tenant: contoso.com and the CRM's app, plus
// "outlook", a second app playing people in Outlook), and three crmsyncd
// children n1..n3 on loopback that form one cluster. Each node's HTTP
// listener binds port 0 and reports its port; only the cluster ports are
// chosen beforehand (see cluster_port()).
//
// Requests go to a random running node unless a test names one; answers
// carry X-Crmsync-Node, the node that served them. A "browser" plays the
// Office 365 sign-ins and opens every callback on a random node, so a
// sign-in started on one node can finish on another.
// One cluster_env belongs to one test thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tests/e2e/office365_fixture.hpp"
#include "tests/support/api_client.hpp"
#include "tests/support/temp_dir.hpp"

namespace crmsync::e2e {

class tcp_front;

class cluster_env {
public:
  static constexpr int size = 3;

  /// `node_args` go to every node.
  explicit cluster_env(std::vector<std::string> node_args = {});
  /// A cluster whose membership comes from etcd at `etcd_url` (ADR 0007)
  /// instead of --peers; the nodes' cluster ports are their own choice.
  /// Returns once every node's /readyz answers 200 — not later: what a
  /// load balancer sends right then must work.
  cluster_env(std::vector<std::string> node_args, std::string etcd_url);
  ~cluster_env();

  /// The client of node i (0-based); throws when it is not running.
  api_client& node(int i);
  /// The HTTP port node i reported when it last started (0 while down).
  uint16_t http_port(int i) const {
    return http_ports_[i];
  }
  bool running(int i) const {
    return clients_[i] != nullptr;
  }
  std::string node_id(int i) const {
    return "n" + std::to_string(i + 1);
  }
  int index_of(std::string_view node_id) const;
  /// A running node chosen at random (the seed is printed on failure).
  int any();

  /// A request to a random running node.
  api_response call(std::string_view method, std::string_view target,
                    std::string_view token, std::string_view body = {});
  /// Like call(), but a 503 (a node away, an owner restarting) is retried
  /// after its Retry-After until `timeout`, as a well-behaved client does.
  api_response call_retrying(std::string_view method, std::string_view target,
                             std::string_view token, std::string_view body = {},
                             std::chrono::milliseconds timeout
                             = std::chrono::seconds(30));

  void kill9(int i);
  void start(int i);
  /// The process id of node i (SIGSTOP/SIGCONT from a test). t15-repl.
  pid_t pid(int i) const;
  /// Waits until every running node answers /readyz with 200.
  void wait_ready(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  /// Waits until every running node sees every running node up.
  void wait_connected(std::chrono::milliseconds timeout
                      = std::chrono::seconds(20));

  /// t15-ops: starts one more member `id` of a cluster on etcd, with a
  /// certificate of the cluster CA of its own, the nodes' flags and `more`;
  /// waits until it answers, not until it is ready. Its HTTP port.
  uint16_t start_extra(const std::string& id,
                       const std::vector<std::string>& more = {});
  /// Stops (SIGTERM) a member start_extra started.
  void stop_extra(const std::string& id);

  /// The node that owns an organization (from GET /admin/v1/tenants/{id}).
  std::string owner_of(std::string_view org);

  // -- Office 365 ------------------------------------------------------------
  std::string emulator_url() const {
    return o365_.url();
  }
  api_client& emulator() {
    return o365_.emulator();
  }
  const std::string& tenant() const {
    return o365_.tenant();
  }
  std::string o365_id(std::string_view upn) const {
    return o365_.o365_id(upn);
  }
  void set_faults(std::string_view json) {
    o365_.set_faults(json);
  }

  struct signin {
    api_response answer;
    std::string token;   ///< the CRM user's token, when there is one
    std::string session; ///< office365_session, when not a member
  };
  /// GET `path` on a random node, sign in as `upn` at the emulator (with
  /// admin consent when asked), open each callback on a random node.
  signin sign_in(std::string_view path, std::string_view upn);

  /// A Graph call as the "outlook" app (429/503 retried).
  api_response graph(std::string_view method, std::string_view path,
                     std::string_view body = {});
  /// Every event of `upn`'s Office 365 calendar `calendar`, read back
  /// through Graph as the "outlook" app.
  std::vector<graph_event> o365_events(std::string_view upn,
                                       std::string_view calendar);

  std::string proc_log(int i) const {
    return procs_[i].log_tail(3000);
  }
  /// Everything node i has logged so far.
  std::string full_log(int i) const {
    return procs_[i].log();
  }
  /// Node i's data directory (--data-dir).
  std::string data_dir(int i) const {
    return dir_.path() + "/" + node_id(i);
  }
  /// Who seeded the run (for INFO).
  uint32_t seed() const {
    return seed_;
  }

private:
  std::vector<std::string> args_for(int i) const;
  std::string follow(const std::string& url, std::string_view upn);

  test::temp_dir dir_;
  std::unique_ptr<tcp_front> front_;
  office365_tenant o365_;
  std::unique_ptr<graph_app> outlook_;
  std::vector<std::string> node_args_;
  std::string etcd_url_; ///< "" with static membership (--peers)
  /// Read by the front's threads while the test restarts nodes.
  std::atomic<uint16_t> http_ports_[size] = {};
  uint16_t cluster_ports_[size] = {};
  node_process procs_[size];
  /// Members beyond the three (start_extra), by id.
  std::map<std::string, std::unique_ptr<node_process>> extras_;
  /// One browser in front of every node: they share the public origin.
  std::shared_ptr<cookie_jar> cookies_ = std::make_shared<cookie_jar>();
  std::unique_ptr<api_client> clients_[size];
  uint32_t seed_;
  std::mt19937 rng_;
};

/// A TCP port on 127.0.0.1 that was free a moment ago, for a cluster
/// port only: every other listener binds port 0 and reports its port.
/// A member's cluster port must be known before it starts, because the
/// others' --peers name it before they start (crmsyncd refuses
/// --cluster-listen with port 0 in a cluster), and a member restarted
/// after SIGKILL must come back where the others' --peers say it is.
uint16_t cluster_port();

/// A TCP port on 127.0.0.1 held, bound but not listening, for as long as
/// this lives: nothing else can listen there, so connecting to it is
/// refused (a peer that never comes).
class closed_port {
public:
  closed_port();
  ~closed_port();
  closed_port(const closed_port&) = delete;
  closed_port& operator=(const closed_port&) = delete;
  uint16_t port() const {
    return port_;
  }

private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

/// The body of POST /api/v1/orgs: a free organization named `name` whose
/// administrator "Admin" has `email`.
std::string org_body(const std::string& name, const std::string& email);

/// The value of one unlabelled or fully labelled series of a node's
/// /metrics (0 when it is not there).
uint64_t metric(api_client& node, const std::string& series);

/// Runs a shell command line; returns what it printed (stdout and, when
/// the line redirects it, stderr) and sets `code` to its exit status (-1
/// when it did not exit normally).
std::string run_command(const std::string& cmd, int& code);

/// Makes a throwaway cluster CA in `dir` (ca.pem, ca.key) and a certificate
/// and key per node (NODE.pem, NODE.key) with scripts/cluster-ca.sh, as an
/// operator would.
void make_cluster_certs(const std::string& dir,
                        const std::vector<std::string>& nodes);

/// The cluster's front door, as nginx or a cloud load balancer would be: a
/// TCP proxy on 127.0.0.1 that hands each connection to a random backend
/// that accepts it. The nodes' --public-url points here, so Graph's
/// notifications and the sign-in callbacks land on any node.
class tcp_front {
public:
  /// `backends` says which ports to try (called per connection).
  explicit tcp_front(std::function<std::vector<uint16_t>()> backends);
  ~tcp_front();
  uint16_t port() const {
    return port_;
  }

private:
  void accept_loop();
  void serve(int client);

  std::function<std::vector<uint16_t>()> backends_;
  int listener_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::mutex mtx_;
  std::vector<int> open_;
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

} // namespace crmsync::e2e
