// The one-shot commands of crmsyncctl: each sends GET requests to the node's
// admin API, prints a table (or the raw JSON with --json) on stdout, reports
// failures on stderr and returns the process exit code.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace crmsync::ctl {

/// Process exit codes; scripts rely on these.
enum exit_code : int {
  exit_ok = 0,
  exit_failure = 1,     // unexpected status, bad JSON, other errors
  exit_usage = 2,       // bad command line, missing token, bad --node
  exit_unreachable = 3, // connect/read/write failed or timed out
  exit_unauthorized = 4,
  exit_not_found = 5,
};

struct global_options {
  std::string node = "http://127.0.0.1:8080";
  std::string token;
  bool json = false;
  bool wide = false; ///< tables show a user's e-mail and id, not only e-mail
};

/// Options of the paged commands (tenants, events).
struct list_options {
  std::optional<int> limit;
  bool all = false;
  std::string from; // events only, RFC 3339
  std::string to;
};

int cmd_status(const global_options& g);
int cmd_actors(const global_options& g);
int cmd_tenants(const global_options& g, const list_options& l);
int cmd_tenant(const global_options& g, const std::string& id);
/// `id` is a user id or an e-mail address.
int cmd_user(const global_options& g, const std::string& id);
int cmd_events(const global_options& g, const std::string& user,
               const list_options& l);
/// An organization's audit log, newest first.
int cmd_audit(const global_options& g, const std::string& org,
              const list_options& l);
int cmd_invites(const global_options& g, const std::string& org);
/// The calendar sync conflict log of an organization, newest first.
int cmd_conflicts(const global_options& g, const std::string& org,
                  const list_options& l);
/// Lets a sync held by the mass-delete guard apply its deletions once.
int cmd_approve_deletes(const global_options& g, const std::string& user);
/// One user's calendar sync status.
int cmd_sync(const global_options& g, const std::string& user);
/// The convergence checker; exits 1 when it finds differences.
int cmd_check(const global_options& g, const std::string& org);
int cmd_join_requests(const global_options& g, const std::string& org);

// -- cluster (answer 404 on nodes older than the cluster routes) ----------
int cmd_cluster(const global_options& g);
int cmd_shards(const global_options& g);
int cmd_move_shard(const global_options& g, std::uint64_t shard,
                   const std::string& node);
/// t15-ops: marks NODE drained (POST /admin/v1/cluster/members/{id}/drain)
/// and, unless `no_wait`, follows its progress until it owns no shard;
/// `cancel` ends a drain instead (DELETE).
int cmd_drain(const global_options& g, const std::string& node, bool cancel,
              bool no_wait);

// -- organization data (t14-data) -------------------------------------------
/// GET /admin/v1/orgs/{org}/export: the JSON lines as they are, on stdout.
int cmd_export(const global_options& g, const std::string& org);
/// An online backup of the node into DIR (new or empty).
int cmd_backup(const global_options& g, const std::string& dir);
/// DELETE /admin/v1/orgs/{org}?confirm=: `confirm` must be the
/// organization's name or id.
int cmd_delete_org(const global_options& g, const std::string& org,
                   const std::string& confirm);

// -- actors, resync, holds --------------------------------------------------
/// One live actor: ids, activation, queue, timers, kind summary.
int cmd_actor(const global_options& g, const std::string& kind,
              const std::string& id);
/// Passivates a live actor now (5 when it is not live).
int cmd_passivate(const global_options& g, const std::string& kind,
                  const std::string& id);
/// Forces a full round of a user's calendar sync; with `follow`, shows its
/// progress until the round is through (or Ctrl-C).
int cmd_resync(const global_options& g, const std::string& user, bool follow);
/// cmd_sync with --follow: a live progress bar (plain lines when stdout is
/// not a terminal) until the sync is active, held or failed, or Ctrl-C.
int cmd_sync_follow(const global_options& g, const std::string& user);
/// Users of an organization whose sync the mass-delete guard holds.
int cmd_holds(const global_options& g, const std::string& org);

/// A quiet GET for the console's completion: the body of a 2xx answer, or
/// false (nothing printed).
bool fetch_quietly(const global_options& g, const std::string& target,
                   std::string& body);

} // namespace crmsync::ctl
