// The node's Prometheus metrics (GET /metrics, text format 0.0.4).
//
// A `metrics::registry` owns every metric family of the contract (names and
// labels are fixed: other tools and dashboards read them); `node()` is the
// process's instance, which the recording functions below update from any
// thread (prometheus-cpp's counters, gauges and histograms are
// thread-safe). Gauges that describe stored state (queue depths,
// subscriptions, users by sync state) are set by whoever serves a scrape,
// right before render(). prometheus-cpp stays inside metrics.cpp.
//
// What counts as what:
// - crmsync_graph_requests_total{status}: every HTTP exchange with Graph or
//   the identity platform, retries included (a $batch POST is one exchange);
//   status "error" when no answer came (connection, TLS, timeout).
// - crmsync_graph_throttled_total: every 429 Graph gave, for a whole request
//   or for one item of a $batch: either way the mailbox's budget was spent.
// - crmsync_purged_rows_total{kind}: rows the periodic purge deleted
//   (signin_state, session, invite, outbox).
// - crmsync_refused_requests_total{reason}: requests turned away before any
//   work: signin_rate (sign-in starts per client address), password_backoff
//   (password failures per account or source), hash_share (a caller's share
//   of the password hashing queue), invite_token (not a token this node
//   issues).
// - crmsync_corrupt_records_total{kind}: stored records that could not be
//   read and were replaced by fresh ones (kind: mailbox); each is also
//   logged and audited in its organization. t13-async.
// - crmsync_cluster_claims_released_total: etcd uniqueness claims whose row
//   was gone from the owner for --claim-grace, released (t15-ops).
// - crmsync_cluster_shard_moves_total{reason}: shards a node moved away on
//   its own: rebalance (a member joined or returned) or drain (t15-ops);
//   a hand-over counts here too.
// - crmsync_cluster_hand_overs_total: primary roles a node handed to an
//   in-sync follower (no copy of the shard); crmsync_cluster_follower_
//   changes_total{change}: followers its rebalancer added or dropped;
//   crmsync_cluster_snapshots_sent_total: shard snapshots it began to send
//   to a follower (t15-balance).
// - crmsync_sync_alerts_total{reason}: a user's calendar sync that Office
//   365 started to block (counted once per block, not per retry); reasons
//   as sync/errors.hpp names them.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace crmsync::metrics {

enum class notification_kind { change, lifecycle };
enum class notification_outcome { received, acknowledged, rejected };
enum class sync_direction { to_office365, to_crm };
enum class depth { sync_inbox, sync_outbox, mail_outbox };
enum class purge_kind { signin_state, session, invite, outbox };
enum class refusal { signin_rate, password_backoff, hash_share, invite_token };

class registry {
public:
  registry();
  ~registry();
  registry(const registry&) = delete;
  registry& operator=(const registry&) = delete;

  /// One answered HTTP request; `route` is the matched pattern or
  /// "unmatched". Methods outside the usual verbs count as "other".
  void http_request(std::string_view method, std::string_view route, int status,
                    double seconds);

  /// One exchange with Graph; `status` 0 when no answer came.
  void graph_request(int status, double seconds);
  void graph_throttled();
  /// A request this node sent whole to the node `to` that owns it.
  void forwarded(const std::string& to);

  void notifications(notification_kind kind, notification_outcome outcome,
                     uint64_t n = 1);

  /// `kind`: tenant, mailbox or calendar. A stop is a passivation when the
  /// directory asked for it (else the actor failed).
  void actor_activated(std::string_view kind);
  void actor_stopped(std::string_view kind, bool passivated);

  /// From the moment a change was durably queued to the moment it was
  /// applied on the other side.
  void sync_lag(sync_direction d, double seconds);

  void set_depth(depth which, uint64_t rows);

  /// Rows of `kind` the purge deleted.
  void purged(purge_kind kind, uint64_t n);
  /// A request refused for `why` (429, or 400 for an invite token).
  void refused(refusal why);
  /// Office 365 started to block a user's sync for `reason` (a fixed set of
  /// labels, sync/errors.hpp).
  void sync_alert(std::string_view reason);
  void set_subscriptions(uint64_t live, uint64_t expiring);
  /// Users by calendar sync state; states absent from `by_state` that were
  /// reported before drop to 0.
  void set_sync_users(const std::map<std::string, uint64_t>& by_state);

  /// A mailbox actor granted one of its Graph slots to the calendar sync
  /// (`mail` false) or to an e-mail, after `waited_seconds` in its queue.
  void mailbox_slot(bool mail, double waited_seconds);

  /// A stored record of `kind` (mailbox) that could not be read and was
  /// replaced by a fresh one. t13-async.
  void corrupt_record(std::string_view kind);

  /// A uniqueness claim without its row released by the sweep; a shard
  /// this node moved away on its own (a drain, or else a rebalance).
  /// t15-ops.
  void claim_released();
  void shard_moved(bool drain);
  /// t15-balance: a primary role handed over, a follower added or dropped
  /// by the rebalancer, a snapshot begun for a follower.
  void hand_over();
  void follower_changed(bool added);
  void snapshot_sent();

  /// The text exposition of every family.
  std::string render() const;

  /// The samples of the counter family `name` (e.g.
  /// "crmsync_http_requests_total") summed by the value of their label
  /// `label`; with `label` empty, all under "". Empty when there is no such
  /// family. What the chart history keeps (api/history.hpp). t16-admin.
  std::map<std::string, double> totals(std::string_view name,
                                       std::string_view label) const;

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

/// The process's registry.
registry& node();

/// "text/plain; version=0.0.4; charset=utf-8"
extern const char* const content_type;

} // namespace crmsync::metrics
