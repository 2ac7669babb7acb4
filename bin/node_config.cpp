#include "bin/node_config.hpp"

#include <iostream>

#include <CLI/CLI.hpp>

#include "cluster/etcd.hpp"
#include "cluster/tls.hpp"
#include "common/address_set.hpp"

namespace crmsync {

bool split_host_port(const std::string& s, std::string& host, uint16_t& port) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == s.size())
    return false;
  host = s.substr(0, colon);
  if (host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  auto p = s.substr(colon + 1);
  if (p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos)
    return false;
  auto n = std::stoul(p);
  if (n > 65535)
    return false;
  port = static_cast<uint16_t>(n);
  return !host.empty();
}

node_config parse_node_config(int argc, char** argv, int& exit_code) {
  node_config c;
  exit_code = -1;
  CLI::App app{"crmsyncd - one node of the crmsync backend (CRM <-> Office "
               "365).\nEvery option can also be set as CRMSYNC_<NAME> in the "
               "environment (e.g. CRMSYNC_LISTEN) or in the --config file "
               "(INI/TOML, 'name = value').\nPrecedence: flags, then the "
               "config file, then the environment, then defaults.",
               "crmsyncd"};
  app.set_config("--config", "", "read options from this file");
  // A misspelt key in the file is refused, naming it, like a misspelt
  // flag: ignored, the operator would run on a default believing it set.
  app.allow_config_extras(CLI::config_extras_mode::error);
  auto add = [&](const char* flag, auto& var, const char* env,
                 const char* help) {
    return app.add_option(flag, var, help)->envname(env)->capture_default_str();
  };
  add("--listen", c.listen, "CRMSYNC_LISTEN",
      "HOST:PORT of the HTTP listener (port 0 picks a free one)");
  add("--data-dir", c.data_dir, "CRMSYNC_DATA_DIR", "RocksDB data directory");
  add("--restore-from", c.restore_from, "CRMSYNC_RESTORE_FROM",
      "a backup directory (crmsyncctl backup DIR) to restore into the "
      "data directory before starting; refused when it already holds a "
      "database other than this backup's");
  add("--public-url", c.public_url, "CRMSYNC_PUBLIC_URL",
      "how Microsoft reaches this node (webhooks, redirects)");
  add("--graph-base-url", c.graph_base_url, "CRMSYNC_GRAPH_BASE_URL",
      "Microsoft Graph base URL");
  add("--login-base-url", c.login_base_url, "CRMSYNC_LOGIN_BASE_URL",
      "Microsoft identity platform base URL");
  add("--graph-ca-file", c.graph_ca_file, "CRMSYNC_GRAPH_CA_FILE",
      "extra CA certificate trusted for Graph and the identity platform");
  add("--client-id", c.client_id, "CRMSYNC_CLIENT_ID",
      "the app's Microsoft Entra client id");
  add("--client-secret", c.client_secret, "CRMSYNC_CLIENT_SECRET",
      "the app's client secret");
  add("--admin-token", c.admin_token, "CRMSYNC_ADMIN_TOKEN",
      "service admin token; if unset, one is generated and kept in "
      "DATA_DIR/admin.token");
  add("--node-id", c.node_id, "CRMSYNC_NODE_ID", "this node's id");
  add("--cluster-listen", c.cluster_listen, "CRMSYNC_CLUSTER_LISTEN",
      "HOST:PORT where this node takes cluster traffic (CAF middleman); "
      "needed with --peers");
  add("--peers", c.peers, "CRMSYNC_PEERS",
      "ID=HOST:PORT,... the other members' cluster addresses (every node "
      "of a cluster gets the same membership)");
  add("--etcd-endpoints", c.etcd_endpoints, "CRMSYNC_ETCD_ENDPOINTS",
      "http[s]://HOST:PORT,... etcd's client URLs: membership, the shard "
      "map and global uniqueness come from etcd (instead of --peers); keep "
      "them on a private network");
  add("--etcd-ca-file", c.etcd_ca_file, "CRMSYNC_ETCD_CA_FILE",
      "PEM file of the CA that signed etcd's server certificate (needed "
      "with https:// endpoints; the only CA trusted for etcd)");
  add("--etcd-cert-file", c.etcd_cert_file, "CRMSYNC_ETCD_CERT_FILE",
      "PEM client certificate this node presents to etcd (etcd's "
      "--client-cert-auth)");
  add("--etcd-key-file", c.etcd_key_file, "CRMSYNC_ETCD_KEY_FILE",
      "PEM private key of --etcd-cert-file (unencrypted; not readable by "
      "others)");
  add("--etcd-user", c.etcd_user, "CRMSYNC_ETCD_USER",
      "etcd user this node authenticates as (etcd's user/role auth; with "
      "--etcd-password-file and https:// endpoints)");
  add("--etcd-password-file", c.etcd_password_file,
      "CRMSYNC_ETCD_PASSWORD_FILE",
      "file whose first line is --etcd-user's password (not readable by "
      "others; read again whenever etcd asks to authenticate anew)");
  add("--claim-grace", c.claim_grace_s, "CRMSYNC_CLAIM_GRACE",
      "with etcd: seconds a uniqueness claim may stay without its row on "
      "the owner before the owner's node releases it")
      ->check(CLI::Range(int64_t{1}, int64_t{30} * 24 * 3600));
  add("--rebalance-rate", c.rebalance_rate, "CRMSYNC_REBALANCE_RATE",
      "with etcd: shards per minute a node moves on its own, to a member "
      "that joined or off a node being drained")
      ->check(CLI::Range(uint64_t{1}, uint64_t{6000}));
  add("--etcd-lease-ttl", c.etcd_lease_ttl_s, "CRMSYNC_ETCD_LEASE_TTL",
      "seconds a node stays a member after its last keep-alive to etcd")
      ->check(CLI::Range(int64_t{1}, int64_t{3600}));
  add("--initial-members", c.initial_members, "CRMSYNC_INITIAL_MEMBERS",
      "with etcd: how many nodes must register before the first shard map "
      "is written (the shards are spread over them)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1000}));
  add("--replication-factor", c.replication_factor,
      "CRMSYNC_REPLICATION_FACTOR",
      "with etcd: copies of each shard, its primary's included (1: no "
      "followers, no failover)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{16}));
  add("--replication-ack", c.replication_ack, "CRMSYNC_REPLICATION_ACK",
      "with etcd: how many followers must hold a write before it is "
      "acknowledged: 0, 1 or all")
      ->check(CLI::IsMember({"0", "1", "all"}));
  add("--replication-timeout", c.replication_timeout_ms,
      "CRMSYNC_REPLICATION_TIMEOUT",
      "with etcd: milliseconds a write waits for its followers before "
      "503 replication_timeout")
      ->check(CLI::Range(int64_t{50}, int64_t{600000}));
  add("--cluster-ca-file", c.cluster_ca_file, "CRMSYNC_CLUSTER_CA_FILE",
      "PEM file of the cluster CA: a peer must present a certificate it "
      "signed (mutual TLS; needed with --peers)");
  add("--cluster-cert", c.cluster_cert, "CRMSYNC_CLUSTER_CERT",
      "PEM certificate (chain) this node presents to its peers, signed by "
      "the cluster CA");
  add("--cluster-key", c.cluster_key, "CRMSYNC_CLUSTER_KEY",
      "PEM private key of --cluster-cert (unencrypted; keep it 0600)");
  add("--shards", c.shard_count, "CRMSYNC_SHARDS",
      "number of shards tenants map to (the same on every node)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{65536}));
  add("--log-level", c.log_level, "CRMSYNC_LOG_LEVEL",
      "debug, info, warn or error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  add("--log-format", c.log_format, "CRMSYNC_LOG_FORMAT",
      "text (one readable line per record; the default) or json (one JSON "
      "object per line: time, level, message, node, request_id, org, user)")
      ->check(CLI::IsMember({"text", "json"}));
  add("--idle-timeout", c.idle_timeout_s, "CRMSYNC_IDLE_TIMEOUT",
      "seconds before an idle actor is passivated")
      ->check(CLI::Range(int64_t{1}, int64_t{86400 * 7}));
  add("--calendar-idle", c.calendar_idle_s, "CRMSYNC_CALENDAR_IDLE",
      "seconds after its last sync run (or Graph request) before a calendar "
      "(or mailbox) with nothing pending leaves memory (at most "
      "--idle-timeout); one that comes back within the idle time it had "
      "stays twice as long the next time, up to --idle-timeout, and one "
      "away longer starts again at this")
      ->check(CLI::Range(int64_t{1}, int64_t{86400 * 7}));
  add("--memory-trim-interval", c.memory_trim_s, "CRMSYNC_MEMORY_TRIM_INTERVAL",
      "seconds: after actors were passivated, give the memory they freed "
      "back to the system at most this often (0: never)")
      ->check(CLI::Range(int64_t{0}, int64_t{86400}));
  add("--sweep-interval-ms", c.sweep_interval_ms, "CRMSYNC_SWEEP_INTERVAL_MS",
      "how often idle actors are looked for (0: automatic)")
      ->check(CLI::Range(int64_t{0}, int64_t{3600000}));
  add("--request-timeout-ms", c.request_timeout_ms,
      "CRMSYNC_REQUEST_TIMEOUT_MS", "how long a request may wait for actors")
      ->check(CLI::Range(int64_t{100}, int64_t{600000}));
  add("--shutdown-grace-ms", c.shutdown_grace_ms, "CRMSYNC_SHUTDOWN_GRACE_MS",
      "how long shutdown waits for requests in flight")
      ->check(CLI::Range(int64_t{0}, int64_t{600000}));
  add("--max-body-bytes", c.max_body_bytes, "CRMSYNC_MAX_BODY_BYTES",
      "largest accepted request body (413 beyond)")
      ->check(CLI::Range(uint64_t{1024}, uint64_t{64} << 20));
  add("--max-notifications-per-post", c.max_notifications_per_post,
      "CRMSYNC_MAX_NOTIFICATIONS_PER_POST",
      "most Graph notifications one webhook POST may carry (413 above)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1000000}));
  add("--http-threads", c.http_threads, "CRMSYNC_HTTP_THREADS",
      "HTTP I/O threads")
      ->check(CLI::Range(uint64_t{1}, uint64_t{64}));
  add("--actor-threads", c.actor_threads, "CRMSYNC_ACTOR_THREADS",
      "actor scheduler threads")
      ->check(CLI::Range(uint64_t{1}, uint64_t{64}));
  add("--graph-io-threads", c.graph_io_threads, "CRMSYNC_GRAPH_IO_THREADS",
      "threads that carry every Graph and identity-platform request (none "
      "waits on an answer)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{64}));
  add("--graph-connections", c.graph_connections, "CRMSYNC_GRAPH_CONNECTIONS",
      "most connections open at once to Graph and to the identity platform "
      "(each); more requests wait for one to come free")
      ->check(CLI::Range(uint64_t{1}, uint64_t{100000}));
  add("--graph-timeout-ms", c.graph_timeout_ms, "CRMSYNC_GRAPH_TIMEOUT_MS",
      "how long each step of an exchange with Microsoft Graph or the "
      "identity platform (connect, send, read the answer) may take before "
      "the exchange counts as failed and is retried")
      ->check(CLI::Range(int64_t{100}, int64_t{600000}));
  add("--invite-lifetime", c.invite_lifetime_s, "CRMSYNC_INVITE_LIFETIME",
      "seconds an invitation link works (default 7 days)")
      ->check(CLI::Range(int64_t{1}, int64_t{90} * 24 * 3600));
  add("--max-initial-events", c.max_initial_events,
      "CRMSYNC_MAX_INITIAL_EVENTS",
      "most CRM events the initial sync sends to Office 365 (R17)")
      ->check(CLI::Range(uint64_t{0}, uint64_t{1000000}));
  add("--reconcile-interval", c.reconcile_interval_s,
      "CRMSYNC_RECONCILE_INTERVAL",
      "seconds between reconciliations of every synced calendar")
      ->check(CLI::Range(int64_t{1}, int64_t{86400}));
  add("--reminders-per-second", c.reminders_per_second,
      "CRMSYNC_REMINDERS_PER_SECOND",
      "most reconciliations started per second (each synced user's comes at "
      "its own phase of the interval; keep this above users / interval)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1000000}));
  add("--graph-app-rps", c.graph_app_rps, "CRMSYNC_GRAPH_APP_RPS",
      "most Graph requests per second the calendar syncs of this node send "
      "for the app, all tenants together (Graph's per-app limit)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1000000}));
  add("--graph-tenant-rps", c.graph_tenant_rps, "CRMSYNC_GRAPH_TENANT_RPS",
      "most Graph requests per second the calendar syncs of this node send "
      "to one Office 365 tenant (Graph's app+tenant limit)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1000000}));
  add("--mass-delete-share", c.mass_delete_share, "CRMSYNC_MASS_DELETE_SHARE",
      "a sync run that would delete more than this share of a user's synced "
      "events (with the CRM's events it is about to create in Office 365) "
      "waits for an administrator (crmsyncctl approve-deletes)")
      ->check(CLI::Range(0.0, 1.0));
  add("--mass-delete-minimum", c.mass_delete_minimum,
      "CRMSYNC_MASS_DELETE_MINIMUM",
      "deletions below this count are never held by the guard")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1000000}));
  add("--metrics-listen", c.metrics_listen, "CRMSYNC_METRICS_LISTEN",
      "HOST:PORT of a second listener that serves GET /metrics without a "
      "token (for a scraper on a private network; off by default)");
  add("--metrics-token-file", c.metrics_token_file,
      "CRMSYNC_METRICS_TOKEN_FILE",
      "a file holding a token that may read GET /metrics on --listen (as "
      "may the admin token)");
  add("--chart-history-interval", c.chart_history_interval_s,
      "CRMSYNC_CHART_HISTORY_INTERVAL",
      "seconds between the samples of the admin page's charts that the node "
      "keeps for an hour (GET /admin/v1/history)")
      ->check(CLI::Range(int64_t{1}, int64_t{600}));
  add("--header-timeout-ms", c.header_timeout_ms, "CRMSYNC_HEADER_TIMEOUT_MS",
      "how long a request's headers may take to arrive (from the "
      "connection, or from the first byte of a later request)")
      ->check(CLI::Range(int64_t{100}, int64_t{600000}));
  add("--max-connections-per-source", c.max_connections_per_source,
      "CRMSYNC_MAX_CONNECTIONS_PER_SOURCE",
      "open connections from one remote address (0: no cap; behind a proxy "
      "every connection comes from the proxy)")
      ->check(CLI::Range(uint64_t{0}, uint64_t{1000000}));
  add("--max-header-connections", c.max_header_connections,
      "CRMSYNC_MAX_HEADER_CONNECTIONS",
      "connections still sending a request's headers (0: no cap); more are "
      "closed at accept")
      ->check(CLI::Range(uint64_t{0}, uint64_t{1000000}));
  add("--signin-lifetime", c.signin_lifetime_s, "CRMSYNC_SIGNIN_LIFETIME",
      "seconds a started sign-in may take to come back")
      ->check(CLI::Range(int64_t{1}, int64_t{24} * 3600));
  add("--session-lifetime", c.session_lifetime_s, "CRMSYNC_SESSION_LIFETIME",
      "seconds an office365_session works")
      ->check(CLI::Range(int64_t{1}, int64_t{30} * 24 * 3600));
  add("--session-ttl", c.session_ttl_s, "CRMSYNC_SESSION_TTL",
      "seconds an API token issued by an Office 365 sign-in works (then "
      "401 until the person signs in again)")
      ->check(CLI::Range(int64_t{1}, int64_t{365} * 24 * 3600));
  add("--password-setup-lifetime", c.password_setup_lifetime_s,
      "CRMSYNC_PASSWORD_SETUP_LIFETIME",
      "seconds the e-mailed link to set a first password works (a user "
      "made without a password)")
      ->check(CLI::Range(int64_t{1}, int64_t{90} * 24 * 3600));
  add("--purge-interval-ms", c.purge_interval_ms, "CRMSYNC_PURGE_INTERVAL_MS",
      "how often expired sign-in states and sessions, old invitations and "
      "failed e-mail are deleted")
      ->check(CLI::Range(int64_t{10}, int64_t{24} * 3600 * 1000));
  add("--invite-retention", c.invite_retention_s, "CRMSYNC_INVITE_RETENTION",
      "seconds an invitation is kept once used, superseded or expired")
      ->check(CLI::Range(int64_t{0}, int64_t{3650} * 24 * 3600));
  add("--failed-mail-retention", c.failed_mail_retention_s,
      "CRMSYNC_FAILED_MAIL_RETENTION",
      "seconds an e-mail that could not be sent is kept after it was queued")
      ->check(CLI::Range(int64_t{0}, int64_t{3650} * 24 * 3600));
  add("--signin-burst", c.signin_burst, "CRMSYNC_SIGNIN_BURST",
      "sign-ins (/o365/signin, /o365/install, /invite/...) one client "
      "address may start at once")
      ->check(CLI::Range(1.0, 1e9));
  add("--signin-per-minute", c.signin_per_minute, "CRMSYNC_SIGNIN_PER_MINUTE",
      "sign-ins one client address may start per minute after its burst")
      ->check(CLI::Range(0.001, 1e9));
  add("--password-failures-account", c.password_failures_account,
      "CRMSYNC_PASSWORD_FAILURES_ACCOUNT",
      "wrong passwords in a row for one account before attempts wait "
      "(doubling each time)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1000000}));
  add("--password-failures-source", c.password_failures_source,
      "CRMSYNC_PASSWORD_FAILURES_SOURCE",
      "wrong passwords in a row from one client address before attempts "
      "wait (doubling each time)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1000000}));
  add("--password-backoff-ms", c.password_backoff_ms,
      "CRMSYNC_PASSWORD_BACKOFF_MS",
      "the first wait after too many wrong passwords")
      ->check(CLI::Range(int64_t{1}, int64_t{3600000}));
  add("--password-backoff-max", c.password_backoff_max_s,
      "CRMSYNC_PASSWORD_BACKOFF_MAX", "the longest wait, in seconds")
      ->check(CLI::Range(int64_t{1}, int64_t{86400}));
  add("--trusted-proxies", c.trusted_proxies, "CRMSYNC_TRUSTED_PROXIES",
      "addresses or CIDR ranges of reverse proxies whose X-Forwarded-For "
      "names the client and whose X-Request-Id is kept (comma-separated)")
      ->delimiter(',');
  add("--hash-threads", c.hash_threads, "CRMSYNC_HASH_THREADS",
      "threads hashing passwords (Argon2id, 64 MiB each)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{64}));
  add("--hash-queue", c.hash_queue, "CRMSYNC_HASH_QUEUE",
      "password hashing jobs that may wait (503 beyond); callers not signed "
      "in may fill three quarters")
      ->check(CLI::Range(uint64_t{4}, uint64_t{100000}));
  add("--hash-queue-per-caller", c.hash_queue_per_caller,
      "CRMSYNC_HASH_QUEUE_PER_CALLER",
      "password hashing jobs one caller (address or account) may have "
      "queued or running (429 beyond)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{100000}));
  app.add_flag("--sync-writes", c.sync_writes,
               "fsync the WAL before acknowledging each write")
      ->envname("CRMSYNC_SYNC_WRITES");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    exit_code = app.exit(e) == 0 ? 0 : 2;
    return c;
  }
  if (!split_host_port(c.listen, c.listen_host, c.listen_port)) {
    std::cerr << "crmsyncd: --listen must be HOST:PORT, got '" << c.listen
              << "'\n";
    exit_code = 2;
    return c;
  }
  if (!c.metrics_listen.empty()
      && !split_host_port(c.metrics_listen, c.metrics_host, c.metrics_port)) {
    std::cerr << "crmsyncd: --metrics-listen must be HOST:PORT, got '"
              << c.metrics_listen << "'\n";
    exit_code = 2;
    return c;
  }
  if (!c.peers.empty() && !c.etcd_endpoints.empty()) {
    std::cerr << "crmsyncd: --peers and --etcd-endpoints exclude each other: "
                 "membership comes from one of them\n";
    exit_code = 2;
    return c;
  }
  if (c.etcd_endpoints.empty()
      && (!c.etcd_ca_file.empty() || !c.etcd_cert_file.empty()
          || !c.etcd_key_file.empty() || !c.etcd_user.empty()
          || !c.etcd_password_file.empty())) {
    std::cerr << "crmsyncd: --etcd-ca-file, --etcd-cert-file, "
                 "--etcd-key-file, --etcd-user and --etcd-password-file "
                 "are for --etcd-endpoints\n";
    exit_code = 2;
    return c;
  }
  if (!c.etcd_endpoints.empty()) {
    std::string err;
    if (!cluster::etcd::parse_endpoints(c.etcd_endpoints, c.etcd_endpoint_list,
                                        err)) {
      std::cerr << "crmsyncd: " << err << "\n";
      exit_code = 2;
      return c;
    }
    if (!cluster::etcd::check_security(c.etcd_endpoint_list,
                                       {c.etcd_ca_file, c.etcd_cert_file,
                                        c.etcd_key_file, c.etcd_user,
                                        c.etcd_password_file},
                                       err)) {
      std::cerr << "crmsyncd: " << err << "\n";
      exit_code = 2;
      return c;
    }
    // The port may be 0: the bound port is what the node registers.
    if (c.cluster_listen.empty()
        || !split_host_port(c.cluster_listen, c.cluster_host, c.cluster_port)
        || c.cluster_host == "0.0.0.0" || c.cluster_host == "::") {
      std::cerr << "crmsyncd: --etcd-endpoints needs --cluster-listen "
                   "HOST:PORT with an address the other nodes can reach, "
                   "got '"
                << c.cluster_listen << "'\n";
      exit_code = 2;
      return c;
    }
    if (!cluster::check_tls_files(
            {c.cluster_ca_file, c.cluster_cert, c.cluster_key}, err)) {
      std::cerr << "crmsyncd: " << err << "\n";
      exit_code = 2;
      return c;
    }
  } else if (!c.peers.empty()) {
    if (c.cluster_listen.empty()
        || !split_host_port(c.cluster_listen, c.cluster_host, c.cluster_port)
        || c.cluster_port == 0) {
      std::cerr << "crmsyncd: --peers needs --cluster-listen HOST:PORT with "
                   "a fixed port, got '"
                << c.cluster_listen << "'\n";
      exit_code = 2;
      return c;
    }
    std::string err;
    if (!cluster::parse_peers(c.peers, c.peer_list, err)) {
      std::cerr << "crmsyncd: " << err << "\n";
      exit_code = 2;
      return c;
    }
    for (const auto& p : c.peer_list)
      if (p.id == c.node_id) {
        std::cerr << "crmsyncd: --peers names this node ('" << c.node_id
                  << "'); list only the other members\n";
        exit_code = 2;
        return c;
      }
    if (!cluster::check_tls_files(
            {c.cluster_ca_file, c.cluster_cert, c.cluster_key}, err)) {
      std::cerr << "crmsyncd: " << err << "\n";
      exit_code = 2;
      return c;
    }
  } else if (!c.cluster_listen.empty()) {
    std::cerr << "crmsyncd: --cluster-listen without --peers or "
                 "--etcd-endpoints: a cluster "
                 "needs its other members\n";
    exit_code = 2;
    return c;
  } else if (!c.cluster_ca_file.empty() || !c.cluster_cert.empty()
             || !c.cluster_key.empty()) {
    std::cerr << "crmsyncd: --cluster-ca-file, --cluster-cert and "
                 "--cluster-key are for a cluster (--peers or "
                 "--etcd-endpoints)\n";
    exit_code = 2;
    return c;
  }
  {
    std::string err;
    address_set ignored;
    if (!address_set::parse(c.trusted_proxies, ignored, err)) {
      std::cerr << "crmsyncd: --trusted-proxies: " << err << "\n";
      exit_code = 2;
      return c;
    }
  }
  if (c.node_id.empty()) {
    std::cerr << "crmsyncd: --node-id must not be empty\n";
    exit_code = 2;
    return c;
  }
  if (c.data_dir.empty()) {
    std::cerr << "crmsyncd: --data-dir must not be empty\n";
    exit_code = 2;
  }
  return c;
}

} // namespace crmsync
