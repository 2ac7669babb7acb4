// crmsyncd: one node of the crmsync backend.
//
// Opens RocksDB, starts the actor system and its directory, serves HTTP,
// and on SIGTERM/SIGINT shuts down in order: stop accepting, let requests
// in flight finish, stop HTTP, stop the actors, flush storage, exit 0.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <dirent.h>
#include <fstream>
#include <iostream>
#include <mutex>
#include <set>
#include <sys/resource.h>
#include <sys/stat.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/send.hpp>

#include "actors/directory.hpp"
#include "actors/governor.hpp"
#include "actors/purger.hpp"
#include "actors/reminders.hpp"
#include "api/api.hpp"
#include "bin/node_config.hpp"
#include "cluster/node.hpp"
#include "common/clock.hpp"
#include "common/crypto.hpp"
#include "common/fair_pool.hpp"
#include "common/log.hpp"
#include "common/memory.hpp"
#include "common/signals.hpp"
#include "graph/client.hpp"
#include "http/server.hpp"
#include "mail/mailer.hpp"
#include "protocol/type_ids.hpp"
#include "storage/backup.hpp"
#include "storage/db.hpp"
#include "sync/service.hpp"

namespace {

using namespace crmsync;

constexpr const char* version = "0.1.0";

/// The sync service once it exists, for the directory's calendar factory
/// (the directory is spawned before the service, which needs it).
struct sync_service_slot {
  std::mutex mtx;
  sync::service* service = nullptr;
};

/// The ids of this process's threads that carry no name of their own (the
/// process's name, as the main thread has).
std::set<std::string> unnamed_threads() {
  std::set<std::string> out;
  std::string main_name;
  std::ifstream{"/proc/self/comm"} >> main_name;
  DIR* d = ::opendir("/proc/self/task");
  if (d == nullptr)
    return out;
  while (auto* e = ::readdir(d)) {
    std::string tid = e->d_name;
    if (tid == "." || tid == "..")
      continue;
    std::string name;
    std::ifstream{"/proc/self/task/" + tid + "/comm"} >> name;
    if (name == main_name)
      out.insert(tid);
  }
  ::closedir(d);
  return out;
}

/// Names the thread RocksDB starts at its first open without a name (its
/// periodic-task timer: statistics dumps, info-log flushes), so that every
/// thread of the node says whose it is (t13-async).
void name_rocksdb_timer(const std::set<std::string>& before) {
  for (auto& tid : unnamed_threads())
    if (before.count(tid) == 0)
      std::ofstream{"/proc/self/task/" + tid + "/comm"} << "rocksdb:timer";
}

// The service admin token: configured, or kept in DATA_DIR/admin.token
// (created on first start, readable by the owner only).
bool resolve_admin_token(node_config& cfg) {
  if (!cfg.admin_token.empty())
    return true;
  auto path = cfg.data_dir + "/admin.token";
  std::ifstream in{path};
  if (in && std::getline(in, cfg.admin_token) && !cfg.admin_token.empty()) {
    log::info("admin token read from " + path);
    return true;
  }
  cfg.admin_token = crypto::random_token(32);
  auto old = ::umask(077);
  std::ofstream out{path, std::ios::trunc};
  out << cfg.admin_token << '\n';
  out.close();
  ::umask(old);
  if (!out) {
    log::error("cannot write " + path);
    return false;
  }
  log::info("generated an admin token in " + path);
  return true;
}

// The scrape token of --metrics-token-file: its first line, without
// trailing blanks. A file that is named but unreadable or empty stops the
// start: a scraper would otherwise be refused without a word.
bool read_metrics_token(const node_config& cfg, std::string& token) {
  if (cfg.metrics_token_file.empty())
    return true;
  std::ifstream in{cfg.metrics_token_file};
  if (in)
    std::getline(in, token);
  while (
      !token.empty()
      && (token.back() == ' ' || token.back() == '\t' || token.back() == '\r'))
    token.pop_back();
  if (token.empty()) {
    log::error("--metrics-token-file: cannot read a token from "
               + cfg.metrics_token_file);
    return false;
  }
  return true;
}

int run(node_config cfg) {
  log::level lvl;
  if (log::parse_level(cfg.log_level, lvl))
    log::set_level(lvl);
  log::format fmt;
  if (log::parse_format(cfg.log_format, fmt))
    log::set_format(fmt);
  log::set_node(cfg.node_id);
  if (!crypto::init()) {
    log::error("libsodium failed to initialise");
    return 1;
  }
  // Signals are taken synchronously by the main thread only.
  auto signals = block_shutdown_signals();
  // Every keep-alive connection holds a descriptor: use all we may.
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0
      && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &files);
  }

  ::mkdir(cfg.data_dir.c_str(), 0700);
  storage::db_options dbo;
  dbo.path = cfg.data_dir + "/rocksdb";
  dbo.sync_writes = cfg.sync_writes;
  if (!cfg.restore_from.empty()) {
    std::string note;
    std::string err;
    if (!storage::restore_backup(cfg.restore_from, dbo.path, note, err)) {
      log::error("--restore-from " + cfg.restore_from + ": " + err);
      return 1;
    }
    log::info(note);
  }
  auto unnamed = unnamed_threads();
  auto opened = storage::db::open(dbo);
  name_rocksdb_timer(unnamed);
  if (!opened) {
    api_error e = to_api_error(opened.error());
    log::error("storage: " + e.message);
    return 1;
  }
  std::unique_ptr<storage::db> db = std::move(*opened);
  if (!resolve_admin_token(cfg))
    return 1;
  std::string metrics_token;
  if (!read_metrics_token(cfg, metrics_token))
    return 1;

  // Office 365: the Graph client and (once the actor system exists) the
  // mailer draining the outbox. Only when the app's credentials are
  // configured; the routes answer 503 otherwise.
  std::unique_ptr<graph::client> graph;
  if (!cfg.client_id.empty()) {
    graph::config gc;
    gc.graph_base_url = cfg.graph_base_url;
    gc.login_base_url = cfg.login_base_url;
    gc.client_id = cfg.client_id;
    gc.client_secret = cfg.client_secret;
    gc.ca_file = cfg.graph_ca_file;
    gc.io_timeout = std::chrono::milliseconds(cfg.graph_timeout_ms);
    gc.max_connections_per_host = cfg.graph_connections;
    gc.io_threads = cfg.graph_io_threads;
    gc.now_ms = [] {
      return system_now_ms();
    };
    graph = std::make_unique<graph::client>(std::move(gc));
  } else {
    log::warn("no --client-id: Office 365 sign-in, invitations and join "
              "requests are off");
  }

  caf::actor_system_config caf_cfg;
  register_types(caf_cfg);
  const bool clustered
      = !cfg.peer_list.empty() || !cfg.etcd_endpoint_list.empty();
  if (clustered)
    cluster::prepare_actor_system(
        caf_cfg, {cfg.cluster_ca_file, cfg.cluster_cert, cfg.cluster_key});
  caf_cfg.set("scheduler.max-threads", cfg.actor_threads);
  // An idle CAF worker polls its queue 100 times, then (by default) 500
  // times more with a 50 us sleep between two polls, and only then waits
  // on its condition variable: up to ~1,000 context switches per idle
  // stretch and worker. The node's load is short bursts of messages per
  // synced change, so its workers went idle and polled hundreds of times
  // a second (perf, 200 changes/s: ~70 context switches per change, the
  // workers' 50 us nanosleeps the largest source; ~17 with this setting).
  // Without the sleeping polls a worker goes from spinning straight to
  // its condition variable, which a message from another thread signals
  // (docs/BENCHMARKS.md, "CPU per change").
  caf_cfg.set("work-stealing.moderate-poll-attempts", 0);
  auto sys = std::make_unique<caf::actor_system>(caf_cfg);
  // The mailer is an actor of this system, hidden from
  // await_all_actors_done: its destructor ends it (below; declared after
  // the system, so that an early return also ends it before the system).
  std::unique_ptr<mail::mailer> mail;
  if (graph)
    mail = std::make_unique<mail::mailer>(*sys, *db, *graph);

  auto env = std::make_shared<actors::actor_env>();
  env->db = db.get();
  env->now_ms = [] {
    return system_now_ms();
  };
  env->session_ttl_ms = cfg.session_ttl_s * 1000;
  env->random_id = [] {
    uint64_t id;
    do {
      id = crypto::random_u64();
    } while (id == 0);
    return id;
  };
  if (mail) {
    auto* m = mail.get();
    env->mail_queued = [m](std::vector<std::string> keys) {
      m->queued(std::move(keys));
    };
  }
  // Calendars sync once the sync service exists (Office 365 configured):
  // the directory then spawns the syncing calendar actor
  // (sync/calendar_sync.hpp); before, and without Office 365, calendars
  // only answer their status.
  auto sync_slot = std::make_shared<sync_service_slot>();
  env->spawn_calendar
      = [sync_slot](caf::actor_system& sys, const entity_key& key,
                    std::chrono::milliseconds idle_after) {
          std::lock_guard<std::mutex> guard{sync_slot->mtx};
          if (sync_slot->service == nullptr)
            return caf::actor{};
          return sync_slot->service->spawn_calendar(sys, key, idle_after);
        };
  actors::directory_config dcfg;
  dcfg.idle_timeout = std::chrono::seconds(cfg.idle_timeout_s);
  dcfg.sweep_interval = cfg.sweep_interval_ms > 0
                            ? std::chrono::milliseconds(cfg.sweep_interval_ms)
                            : std::min<std::chrono::milliseconds>(
                                dcfg.idle_timeout / 4, std::chrono::seconds(5));
  // Passivated actors free their memory into glibc's arenas; the
  // directory hands it back after its sweeps (common/memory.hpp).
  // The trim itself (hundreds of ms on a fragmented heap of a few hundred
  // MiB) runs on the main thread while it waits for a signal, never on an
  // actor's thread.
  auto trim_wanted = std::make_shared<std::atomic<bool>>(false);
  dcfg.trim_interval = std::chrono::seconds(cfg.memory_trim_s);
  dcfg.release_memory = [trim_wanted] {
    trim_wanted->store(true);
  };
  // Mailboxes own their Graph budget (actors/mailbox.cpp) and, like
  // calendars, leave memory soon after their last request.
  env->mailbox.idle_after
      = std::chrono::seconds(std::min(cfg.calendar_idle_s, cfg.idle_timeout_s));
  // Their first idle time; one back soon after its passivation stays
  // longer, up to --idle-timeout (actors/idle_ladder.hpp).
  dcfg.entity_idle = env->mailbox.idle_after;
  auto directory = actors::spawn_directory(*sys, env, dcfg);
  if (mail)
    mail->set_directory(directory);
  // Expired sign-in states and sessions, old invitations and failed
  // e-mail go on a timer, on a thread of their own (actors/purger.hpp).
  actors::purger_config pcfg;
  pcfg.interval = std::chrono::milliseconds(cfg.purge_interval_ms);
  pcfg.policy.invite_retention_ms = cfg.invite_retention_s * 1000;
  pcfg.policy.failed_mail_retention_ms = cfg.failed_mail_retention_s * 1000;
  pcfg.now_ms = [] {
    return system_now_ms();
  };
  auto purger = actors::spawn_purger(*sys, *db, std::move(pcfg));

  // Threads that spawn actors must be joined before ~actor_system: CAF 0.17
  // hangs in its destructor while such a foreign thread is still alive.
  auto blocking = std::make_unique<fair_pool>(cfg.hash_threads, "hashing");
  http::api_config acfg;
  acfg.admin_token = cfg.admin_token;
  acfg.metrics_token = metrics_token;
  acfg.chart_history_interval
      = std::chrono::seconds(cfg.chart_history_interval_s);
  acfg.request_timeout = std::chrono::milliseconds(cfg.request_timeout_ms);
  acfg.password_setup_lifetime_ms = cfg.password_setup_lifetime_s * 1000;
  auto& limits = acfg.throttles;
  limits.signin.burst = cfg.signin_burst;
  limits.signin.per_minute = cfg.signin_per_minute;
  limits.account_failures.free_failures
      = static_cast<uint32_t>(cfg.password_failures_account);
  limits.source_failures.free_failures
      = static_cast<uint32_t>(cfg.password_failures_source);
  for (auto* b : {&limits.account_failures, &limits.source_failures}) {
    b->base_wait = std::chrono::milliseconds(cfg.password_backoff_ms);
    b->max_wait = std::chrono::seconds(cfg.password_backoff_max_s);
  }
  limits.trusted_proxies = cfg.trusted_proxies;
  limits.hash_queue = cfg.hash_queue;
  limits.hash_queue_anonymous = std::max<size_t>(1, cfg.hash_queue * 3 / 4);
  limits.hash_per_caller = cfg.hash_queue_per_caller;
  http::node_info info{cfg.node_id, version, "", cfg.data_dir, system_now_ms()};
  std::string err; // node_config checked --trusted-proxies
  http::server_config scfg;
  scfg.host = cfg.listen_host;
  scfg.port = cfg.listen_port;
  scfg.threads = cfg.http_threads;
  scfg.max_body_bytes = cfg.max_body_bytes;
  scfg.header_timeout = std::chrono::milliseconds(cfg.header_timeout_ms);
  scfg.max_connections_per_source = cfg.max_connections_per_source;
  scfg.max_header_connections = cfg.max_header_connections;
  scfg.request_ids = true;
  address_set::parse(cfg.trusted_proxies, scfg.trusted_proxies, err);
  // The server is created before the actors' users of its responders and
  // destroyed after the actor system (see the shutdown sequence below).
  // Every request enters through the cluster node, which serves it here or
  // forwards it to the node that owns its organization.
  cluster::config ccfg;
  ccfg.node_id = cfg.node_id;
  ccfg.listen_host = cfg.cluster_host;
  ccfg.listen_port = cfg.cluster_port;
  ccfg.peers = cfg.peer_list;
  ccfg.etcd_endpoints = cfg.etcd_endpoint_list;
  ccfg.lease_ttl = std::chrono::seconds(cfg.etcd_lease_ttl_s);
  ccfg.etcd_security = {cfg.etcd_ca_file, cfg.etcd_cert_file, cfg.etcd_key_file,
                        cfg.etcd_user, cfg.etcd_password_file};
  ccfg.claim_grace = std::chrono::seconds(cfg.claim_grace_s);
  ccfg.rebalance_rate = static_cast<uint32_t>(cfg.rebalance_rate);
  ccfg.initial_members = static_cast<uint32_t>(cfg.initial_members);
  ccfg.shard_count = static_cast<uint32_t>(cfg.shard_count);
  ccfg.replication.factor = static_cast<uint32_t>(cfg.replication_factor);
  cluster::parse_ack_mode(cfg.replication_ack, ccfg.replication.ack);
  ccfg.replication.ack_timeout
      = std::chrono::milliseconds(cfg.replication_timeout_ms);
  ccfg.request_timeout = std::chrono::milliseconds(cfg.request_timeout_ms);
  ccfg.max_notifications_per_post = cfg.max_notifications_per_post;
  auto node = std::make_unique<cluster::node>(*sys, ccfg, *db, directory);
  std::shared_ptr<http::api> api;
  auto* front = node.get();
  auto server = std::make_unique<http::server>(
      scfg, [front](http::request&& req, http::responder_ptr r) {
        front->handle(std::move(req), std::move(r));
      });
  if (!server->bind(err)) {
    log::error(err);
    caf::anon_send_exit(directory, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(purger, caf::exit_reason::user_shutdown);
    return 1;
  }
  auto bound = scfg.host + ":" + std::to_string(server->port());
  info.listen = bound;
  // Set before run(): the I/O threads only read it afterwards.
  api = std::make_shared<http::api>(*sys, directory, *db, *blocking, acfg,
                                    info);
  auto* srv = server.get();
  api->set_server_stats([srv] { return srv->stats(); });
  // Answers of the other nodes continue on the HTTP I/O threads.
  node->set_io([srv](std::function<void()> fn) { srv->post(std::move(fn)); });
  // GET /metrics without a token, for a scraper on a private network.
  std::unique_ptr<http::server> metrics_server;
  if (!cfg.metrics_listen.empty()) {
    auto mcfg = scfg;
    mcfg.host = cfg.metrics_host;
    mcfg.port = cfg.metrics_port;
    mcfg.threads = 1;
    metrics_server = std::make_unique<http::server>(
        mcfg, [a = api.get()](http::request&& req, http::responder_ptr r) {
          a->handle_metrics(std::move(req), std::move(r));
        });
    if (!metrics_server->bind(err)) {
      log::error("--metrics-listen: " + err);
      api.reset();
      caf::anon_send_exit(directory, caf::exit_reason::user_shutdown);
      return 1;
    }
  }
  http::office365_options o365;
  o365.graph = graph.get();
  o365.public_url = cfg.public_url.empty() ? "http://" + bound : cfg.public_url;
  while (!o365.public_url.empty() && o365.public_url.back() == '/')
    o365.public_url.pop_back();
  o365.invite_lifetime = std::chrono::seconds(cfg.invite_lifetime_s);
  o365.signin_lifetime = std::chrono::seconds(cfg.signin_lifetime_s);
  o365.session_lifetime = std::chrono::seconds(cfg.session_lifetime_s);
  std::unique_ptr<sync::service> syncer;
  // Each synced user's reconciliation is a durable reminder at the user's
  // phase of the interval (actors/reminders.hpp); due, it goes through the
  // directory to the user's calendar actor.
  caf::actor reminders;
  // Every Graph call of a calendar sync waits for a permit of the node's
  // governor (per-app and per-tenant request rates, fair between tenants).
  caf::actor governor;
  auto stop_reminders = [&] {
    if (reminders)
      caf::anon_send_exit(reminders, caf::exit_reason::user_shutdown);
    if (governor)
      caf::anon_send_exit(governor, caf::exit_reason::user_shutdown);
  };
  if (graph) {
    actors::reminders_config rc;
    rc.max_per_second = static_cast<uint32_t>(cfg.reminders_per_second);
    rc.deliver_at_once = false; // run_atom below, once the syncer is wired
    reminders = caf::actor_cast<caf::actor>(
        actors::spawn_reminders(*sys, env, directory, rc));
    actors::governor_config gc;
    gc.app_per_second = static_cast<uint32_t>(cfg.graph_app_rps);
    gc.tenant_per_second = static_cast<uint32_t>(cfg.graph_tenant_rps);
    auto gate = std::make_shared<actors::permit_gate>(gc, env->now_ms);
    governor = caf::actor_cast<caf::actor>(actors::spawn_governor(*sys, gate));
    sync::service_config sc;
    sc.public_url = o365.public_url;
    sc.max_initial_events = cfg.max_initial_events;
    sc.reconcile_interval = std::chrono::seconds(cfg.reconcile_interval_s);
    sc.reminders = reminders;
    sc.idle_after = std::chrono::seconds(
        std::min(cfg.calendar_idle_s, cfg.idle_timeout_s));
    sc.governor = governor;
    sc.governor_gate = gate;
    sc.mass_delete_share = cfg.mass_delete_share;
    sc.mass_delete_minimum = cfg.mass_delete_minimum;
    sc.max_notifications_per_post = cfg.max_notifications_per_post;
    sc.actor_timeout = std::chrono::milliseconds(cfg.request_timeout_ms);
    sc.now_ms = [] {
      return system_now_ms();
    };
    sc.owns = node->serves();
    syncer = std::make_unique<sync::service>(*sys, directory, *db, *graph,
                                             std::move(sc));
    {
      std::lock_guard<std::mutex> guard{sync_slot->mtx};
      sync_slot->service = syncer.get();
    }
    o365.sync = syncer.get();
    auto* svc = syncer.get();
    auto* m = mail.get();
    if (m)
      m->set_owner_check(node->serves());
    node->set_sync(
        [svc, m](tenant_id t) { return svc->busy(t) || (m && m->busy(t)); },
        [svc, m](tenant_id t) {
          svc->adopt(t);
          if (m)
            m->wake();
        });
  }
  api->set_office365(std::move(o365));
  node->set_http_url("http://" + bound);
  node->set_local_reader([a = api.get()](storage::column c,
                                         const std::string& key,
                                         std::string& value, bool take) {
    return a->read_local(c, key, value, take);
  });
  api->set_cluster(node->hooks());
  if (!node->start(
          [a = api.get()](http::request&& req, http::responder_ptr r) {
            a->handle(std::move(req), std::move(r));
          },
          err)) {
    log::error(err);
    node.reset();
    api.reset();
    stop_reminders();
    caf::anon_send_exit(directory, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(purger, caf::exit_reason::user_shutdown);
    return 1;
  }
  if (!cfg.etcd_endpoint_list.empty())
    log::info("node " + cfg.node_id
              + " in a cluster whose members register in etcd ("
              + cfg.etcd_endpoints + "), cluster traffic on " + cfg.cluster_host
              + ":" + std::to_string(node->cluster_port()));
  else if (clustered)
    log::info("node " + cfg.node_id + " in a cluster of "
              + std::to_string(cfg.peer_list.size() + 1)
              + " members, cluster traffic on " + cfg.cluster_host + ":"
              + std::to_string(node->cluster_port()));
  server->run();
  if (metrics_server) {
    metrics_server->run();
    log::info("serving GET /metrics without a token on " + cfg.metrics_host
              + ":" + std::to_string(metrics_server->port()));
  }
  if (syncer)
    syncer->start(); // resumes syncs a restart interrupted
  // Reminders overdue from before the restart go out now that every actor
  // they wake is the real one (a calendar activated earlier would be the
  // status-only kind, and would keep that user's messages until passivated).
  if (reminders)
    caf::anon_send(reminders, atom::run_atom_v);
  std::printf("crmsyncd listening on http://%s\n", bound.c_str());
  std::fflush(stdout);
  log::info("node " + cfg.node_id + " serving on " + bound + ", data in "
            + cfg.data_dir);

  int sig = wait_for_shutdown_signal(signals, std::chrono::seconds(1),
                                     [trim_wanted] {
                                       if (trim_wanted->exchange(false))
                                         memory::release_free_memory();
                                     });
  log::info(std::string{"received "} + (sig == SIGINT ? "SIGINT" : "SIGTERM")
            + ", shutting down");
  api->set_ready(false);
  server->stop_accepting();
  // Deletions on threads of their own end now (their requests answered),
  // before the store and the actor system they use.
  api->stop_background();
  if (metrics_server)
    metrics_server->stop_accepting();
  if (!server->wait_idle(std::chrono::milliseconds(cfg.shutdown_grace_ms)))
    log::warn("requests still in flight after the grace period");
  if (metrics_server)
    metrics_server->stop();
  server->stop();
  api->stop_actors();
  blocking.reset();
  // Sync runs stop at their next step; then Graph calls waiting on a
  // mailbox budget or a retry pause end at once.
  if (syncer)
    syncer->begin_stop();
  if (graph)
    graph->shutdown();
  node->stop();
  stop_reminders();
  caf::anon_send_exit(directory, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(purger, caf::exit_reason::user_shutdown);
  sys->await_all_actors_done();
  // A detached actor's thread lives as long as a handle to it does, and
  // ~actor_system waits for that thread.
  purger = caf::actor{};
  // Graph's I/O threads run callbacks that spawn and message actors, which
  // ties each of them to the actor system (CAF keeps its logger in a
  // thread-local of every thread that touched it): they end first, or the
  // system's destructor waits for them forever. The mailer calls Graph:
  // its destructor records the sends still on the wire (the client's
  // shutdown above ended the others) and ends its actor.
  mail.reset();
  graph.reset();
  node.reset();
  {
    std::lock_guard<std::mutex> guard{sync_slot->mtx};
    sync_slot->service = nullptr;
  }
  sys.reset();
  syncer.reset();
  if (auto ferr = db->flush())
    log::error("flush failed: " + to_api_error(ferr).message);
  db.reset();
  log::info("stopped cleanly");
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  int exit_code = -1;
  auto cfg = crmsync::parse_node_config(argc, argv, exit_code);
  if (exit_code >= 0)
    return exit_code;
  return run(std::move(cfg));
}
