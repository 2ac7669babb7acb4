#include "common/metrics.hpp"

#include <array>
#include <mutex>
#include <unordered_map>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace crmsync::metrics {

const char* const content_type = "text/plain; version=0.0.4; charset=utf-8";

namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;

const Histogram::BucketBoundaries http_buckets{
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1,    0.25,  0.5,    1,     2.5,  5,     10};
const Histogram::BucketBoundaries graph_buckets{
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
const Histogram::BucketBoundaries lag_buckets{
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800};

std::string_view known_method(std::string_view m) {
  for (std::string_view k :
       {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
    if (m == k)
      return k;
  return "other";
}

/// Graph answers with a status from 100 to 599; anything else is ours.
std::string graph_status(int status) {
  if (status >= 100 && status <= 599)
    return std::to_string(status);
  return "error";
}

constexpr std::array<std::string_view, 3> actor_kinds{"tenant", "mailbox",
                                                      "calendar"};

} // namespace

struct registry::impl {
  prometheus::Registry reg;

  Family<Counter>& http_requests
      = prometheus::BuildCounter()
            .Name("crmsync_http_requests_total")
            .Help("HTTP requests answered, by method, route pattern and status")
            .Register(reg);
  Family<Histogram>& http_duration
      = prometheus::BuildHistogram()
            .Name("crmsync_http_request_duration_seconds")
            .Help("Time from a request's arrival to its answer, by route")
            .Register(reg);
  Family<Counter>& graph_requests
      = prometheus::BuildCounter()
            .Name("crmsync_graph_requests_total")
            .Help("HTTP exchanges with Microsoft Graph and the identity "
                  "platform, by status (\"error\": no answer)")
            .Register(reg);
  Counter& graph_throttled
      = prometheus::BuildCounter()
            .Name("crmsync_graph_throttled_total")
            .Help("429 answers from Graph, whole requests and $batch items")
            .Register(reg)
            .Add({});
  Family<Counter>& forwarded
      = prometheus::BuildCounter()
            .Name("crmsync_forwarded_requests_total")
            .Help("Requests sent whole to the node that owns their "
                  "organization, by that node")
            .Register(reg);
  Histogram& graph_duration
      = prometheus::BuildHistogram()
            .Name("crmsync_graph_request_duration_seconds")
            .Help("Duration of one exchange with Graph")
            .Register(reg)
            .Add({}, graph_buckets);
  Family<Counter>& notifications
      = prometheus::BuildCounter()
            .Name("crmsync_notifications_total")
            .Help("Graph notifications received, acknowledged (durably in "
                  "the inbox) and rejected (unknown subscription or wrong "
                  "clientState)")
            .Register(reg);
  std::array<std::array<Counter*, 3>, 2> notification_counters{};
  Family<Gauge>& inbox = prometheus::BuildGauge()
                             .Name("crmsync_sync_inbox_depth")
                             .Help("Rows in this node's sync inbox")
                             .Register(reg);
  Family<Gauge>& outbox
      = prometheus::BuildGauge()
            .Name("crmsync_sync_outbox_depth")
            .Help("Rows in this node's sync outbox (CRM changes to send)")
            .Register(reg);
  Family<Gauge>& mail_outbox = prometheus::BuildGauge()
                                   .Name("crmsync_mail_outbox_depth")
                                   .Help("E-mails waiting to be sent")
                                   .Register(reg);
  std::array<Gauge*, 3> depths{};
  Family<Counter>& purged
      = prometheus::BuildCounter()
            .Name("crmsync_purged_rows_total")
            .Help("Rows the periodic purge deleted: expired sign-in states "
                  "and sessions, invitations and failed e-mail past their "
                  "retention")
            .Register(reg);
  std::array<Counter*, 4> purged_counters{};
  Family<Counter>& refused
      = prometheus::BuildCounter()
            .Name("crmsync_refused_requests_total")
            .Help("Requests turned away before any work, by reason")
            .Register(reg);
  std::array<Counter*, 4> refused_counters{};
  Family<Counter>& sync_alerts
      = prometheus::BuildCounter()
            .Name("crmsync_sync_alerts_total")
            .Help("Users whose calendar sync Office 365 started to block, "
                  "by reason (access_denied, unauthorized, "
                  "mailbox_not_enabled, mailbox_unavailable, forbidden)")
            .Register(reg);
  Family<Counter>& activations
      = prometheus::BuildCounter()
            .Name("crmsync_actor_activations_total")
            .Help("Virtual actors started on this node, by kind")
            .Register(reg);
  Family<Counter>& passivations
      = prometheus::BuildCounter()
            .Name("crmsync_actor_passivations_total")
            .Help("Virtual actors stopped on this node, by kind")
            .Register(reg);
  Family<Gauge>& active = prometheus::BuildGauge()
                              .Name("crmsync_actors_active")
                              .Help("Virtual actors live on this node, by kind")
                              .Register(reg);
  Family<Histogram>& lag
      = prometheus::BuildHistogram()
            .Name("crmsync_sync_lag_seconds")
            .Help("From a change durably queued (outbox or inbox row) to "
                  "its application on the other side")
            .Register(reg);
  std::array<Histogram*, 2> lags{};
  Family<Gauge>& subscriptions
      = prometheus::BuildGauge()
            .Name("crmsync_subscriptions")
            .Help("Graph subscriptions of this node's users (expiring: "
                  "within the next hour)")
            .Register(reg);
  Gauge& subs_live = subscriptions.Add({{"state", "live"}});
  Gauge& subs_expiring = subscriptions.Add({{"state", "expiring"}});
  Family<Gauge>& sync_users
      = prometheus::BuildGauge()
            .Name("crmsync_sync_users")
            .Help("Users of this node by calendar sync state")
            .Register(reg);

  Family<Histogram>& mailbox_waits
      = prometheus::BuildHistogram()
            .Name("crmsync_mailbox_slot_wait_seconds")
            .Help("Time a Graph request waited for a slot of its mailbox's "
                  "budget (4 in flight, 10,000 per 10 minutes), by lane "
                  "(sync: the calendar sync; mail: e-mail sent from it)")
            .Register(reg);
  std::array<Histogram*, 2> slot_waits{};
  Family<Counter>& corrupt
      = prometheus::BuildCounter()
            .Name("crmsync_corrupt_records_total")
            .Help("Stored records that could not be read and were replaced "
                  "by fresh ones, by kind (mailbox)")
            .Register(reg);
  Counter& corrupt_mailbox = corrupt.Add({{"kind", "mailbox"}});
  // t15-ops: the cluster's upkeep on etcd.
  Counter& claims_released
      = prometheus::BuildCounter()
            .Name("crmsync_cluster_claims_released_total")
            .Help("Uniqueness claims in etcd this node released because "
                  "their row no longer existed on it, the owner, after the "
                  "grace period (--claim-grace)")
            .Register(reg)
            .Add({});
  Family<Counter>& auto_moves
      = prometheus::BuildCounter()
            .Name("crmsync_cluster_shard_moves_total")
            .Help("Shards this node moved away on its own, by reason "
                  "(rebalance: to a member that joined; drain: off this "
                  "node while it is drained)")
            .Register(reg);
  Counter& moves_rebalance = auto_moves.Add({{"reason", "rebalance"}});
  Counter& moves_drain = auto_moves.Add({{"reason", "drain"}});
  Counter& hand_overs
      = prometheus::BuildCounter()
            .Name("crmsync_cluster_hand_overs_total")
            .Help("Shards whose primary role this node handed to an in-sync "
                  "follower (the map changed, no rows were copied)")
            .Register(reg)
            .Add({});
  Family<Counter>& follower_changes
      = prometheus::BuildCounter()
            .Name("crmsync_cluster_follower_changes_total")
            .Help("Followers this node's rebalancer added to or dropped "
                  "from the shards it is the primary of")
            .Register(reg);
  Counter& followers_added = follower_changes.Add({{"change", "added"}});
  Counter& followers_dropped = follower_changes.Add({{"change", "dropped"}});
  Counter& snapshots_sent
      = prometheus::BuildCounter()
            .Name("crmsync_cluster_snapshots_sent_total")
            .Help("Shard snapshots this node began to send to a follower "
                  "(a new follower, one behind the kept batches, or of "
                  "another history)")
            .Register(reg)
            .Add({});

  /// Labelled series looked up once: prometheus-cpp's Family::Add builds
  /// a throw-away metric on every call.
  std::mutex mtx;
  std::unordered_map<std::string, Counter*> http_counters;
  std::unordered_map<std::string, Histogram*> http_histograms;
  std::unordered_map<int, Counter*> graph_counters;
  std::unordered_map<std::string_view, std::array<Counter*, 2>> actor_counters;
  std::unordered_map<std::string_view, Gauge*> actor_gauges;
  std::unordered_map<std::string, Gauge*> user_states;
  std::unordered_map<std::string, Counter*> forwarded_to;
  std::unordered_map<std::string, Counter*> alert_counters;

  impl() {
    const char* kinds[] = {"change", "lifecycle"};
    const char* outcomes[] = {"received", "acknowledged", "rejected"};
    for (size_t k = 0; k < 2; ++k)
      for (size_t o = 0; o < 3; ++o)
        notification_counters[k][o] = &notifications.Add(
            {{"kind", kinds[k]}, {"outcome", outcomes[o]}});
    depths[0] = &inbox.Add({});
    depths[1] = &outbox.Add({});
    depths[2] = &mail_outbox.Add({});
    const char* purge_kinds[] = {"signin_state", "session", "invite", "outbox"};
    for (size_t i = 0; i < purged_counters.size(); ++i)
      purged_counters[i] = &purged.Add({{"kind", purge_kinds[i]}});
    const char* reasons[]
        = {"signin_rate", "password_backoff", "hash_share", "invite_token"};
    for (size_t i = 0; i < refused_counters.size(); ++i)
      refused_counters[i] = &refused.Add({{"reason", reasons[i]}});
    slot_waits[0] = &mailbox_waits.Add({{"lane", "sync"}}, graph_buckets);
    slot_waits[1] = &mailbox_waits.Add({{"lane", "mail"}}, graph_buckets);
    lags[0] = &lag.Add({{"direction", "to_office365"}}, lag_buckets);
    lags[1] = &lag.Add({{"direction", "to_crm"}}, lag_buckets);
    // Every kind shows from the start, at 0.
    for (auto kind : actor_kinds) {
      std::string k{kind};
      actor_counters[kind]
          = {&activations.Add({{"kind", k}}), &passivations.Add({{"kind", k}})};
      actor_gauges[kind] = &active.Add({{"kind", k}});
    }
  }

  Counter& http_counter(std::string_view method, std::string_view route,
                        int status) {
    std::string key{method};
    key += ' ';
    key += std::to_string(status);
    key += ' ';
    key += route;
    auto i = http_counters.find(key);
    if (i != http_counters.end())
      return *i->second;
    auto& c = http_requests.Add({{"method", std::string{method}},
                                 {"route", std::string{route}},
                                 {"status", std::to_string(status)}});
    http_counters.emplace(std::move(key), &c);
    return c;
  }

  Histogram& http_histogram(std::string_view route) {
    std::string key{route};
    auto i = http_histograms.find(key);
    if (i != http_histograms.end())
      return *i->second;
    auto& h = http_duration.Add({{"route", key}}, http_buckets);
    http_histograms.emplace(std::move(key), &h);
    return h;
  }
};

registry::registry() : impl_(std::make_unique<impl>()) {}

registry::~registry() = default;

void registry::http_request(std::string_view method, std::string_view route,
                            int status, double seconds) {
  Counter* c;
  Histogram* h;
  {
    std::lock_guard<std::mutex> guard{impl_->mtx};
    c = &impl_->http_counter(known_method(method), route, status);
    h = &impl_->http_histogram(route);
  }
  c->Increment();
  h->Observe(seconds);
}

void registry::graph_request(int status, double seconds) {
  Counter* c;
  {
    std::lock_guard<std::mutex> guard{impl_->mtx};
    int key = status >= 100 && status <= 599 ? status : 0;
    auto& slot = impl_->graph_counters[key];
    if (slot == nullptr)
      slot = &impl_->graph_requests.Add({{"status", graph_status(status)}});
    c = slot;
  }
  c->Increment();
  impl_->graph_duration.Observe(seconds);
}

void registry::graph_throttled() {
  impl_->graph_throttled.Increment();
}

void registry::forwarded(const std::string& to) {
  Counter* c;
  {
    std::lock_guard<std::mutex> guard{impl_->mtx};
    auto& slot = impl_->forwarded_to[to];
    if (slot == nullptr)
      slot = &impl_->forwarded.Add({{"to", to}});
    c = slot;
  }
  c->Increment();
}

void registry::notifications(notification_kind kind,
                             notification_outcome outcome, uint64_t n) {
  if (n > 0)
    impl_
        ->notification_counters[static_cast<size_t>(kind)]
                               [static_cast<size_t>(outcome)]
        ->Increment(static_cast<double>(n));
}

void registry::actor_activated(std::string_view kind) {
  std::lock_guard<std::mutex> guard{impl_->mtx};
  auto c = impl_->actor_counters.find(kind);
  if (c == impl_->actor_counters.end())
    return; // not an actor kind of the contract
  c->second[0]->Increment();
  impl_->actor_gauges[kind]->Increment();
}

void registry::actor_stopped(std::string_view kind, bool passivated) {
  std::lock_guard<std::mutex> guard{impl_->mtx};
  auto c = impl_->actor_counters.find(kind);
  if (c == impl_->actor_counters.end())
    return;
  if (passivated)
    c->second[1]->Increment();
  impl_->actor_gauges[kind]->Decrement();
}

void registry::sync_lag(sync_direction d, double seconds) {
  impl_->lags[static_cast<size_t>(d)]->Observe(seconds < 0 ? 0 : seconds);
}

void registry::set_depth(depth which, uint64_t rows) {
  impl_->depths[static_cast<size_t>(which)]->Set(static_cast<double>(rows));
}

void registry::purged(purge_kind kind, uint64_t n) {
  if (n > 0)
    impl_->purged_counters[static_cast<size_t>(kind)]->Increment(
        static_cast<double>(n));
}

void registry::refused(refusal why) {
  impl_->refused_counters[static_cast<size_t>(why)]->Increment();
}

void registry::sync_alert(std::string_view reason) {
  std::lock_guard<std::mutex> guard{impl_->mtx};
  auto& c = impl_->alert_counters[std::string{reason}];
  if (c == nullptr)
    c = &impl_->sync_alerts.Add({{"reason", std::string{reason}}});
  c->Increment();
}

void registry::mailbox_slot(bool mail, double waited_seconds) {
  impl_->slot_waits[mail ? 1 : 0]->Observe(waited_seconds);
}

void registry::corrupt_record(std::string_view kind) {
  if (kind == "mailbox")
    impl_->corrupt_mailbox.Increment();
}

void registry::claim_released() {
  impl_->claims_released.Increment();
}

void registry::shard_moved(bool drain) {
  (drain ? impl_->moves_drain : impl_->moves_rebalance).Increment();
}

void registry::hand_over() {
  impl_->hand_overs.Increment();
}

void registry::follower_changed(bool added) {
  (added ? impl_->followers_added : impl_->followers_dropped).Increment();
}

void registry::snapshot_sent() {
  impl_->snapshots_sent.Increment();
}

void registry::set_subscriptions(uint64_t live, uint64_t expiring) {
  impl_->subs_live.Set(static_cast<double>(live));
  impl_->subs_expiring.Set(static_cast<double>(expiring));
}

void registry::set_sync_users(const std::map<std::string, uint64_t>& by_state) {
  std::lock_guard<std::mutex> guard{impl_->mtx};
  for (auto& [state, gauge] : impl_->user_states)
    if (by_state.count(state) == 0)
      gauge->Set(0);
  for (auto& [state, n] : by_state) {
    auto& slot = impl_->user_states[state];
    if (slot == nullptr)
      slot = &impl_->sync_users.Add({{"state", state}});
    slot->Set(static_cast<double>(n));
  }
}

std::string registry::render() const {
  return prometheus::TextSerializer{}.Serialize(impl_->reg.Collect());
}

std::map<std::string, double> registry::totals(std::string_view name,
                                               std::string_view label) const {
  std::map<std::string, double> out;
  for (auto& family : impl_->reg.Collect()) {
    if (family.name != name)
      continue;
    for (auto& m : family.metric) {
      std::string key;
      for (auto& l : m.label)
        if (!label.empty() && l.name == label)
          key = l.value;
      out[key] += m.counter.value;
    }
  }
  return out;
}

registry& node() {
  static registry r;
  return r;
}

} // namespace crmsync::metrics
