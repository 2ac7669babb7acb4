#include "sync/service.hpp"

#include <set>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/make_message.hpp>
#include <caf/send.hpp>

#include "actors/reminders.hpp"
#include "common/known_length_secret.hpp"
#include "common/metrics.hpp"
#include "protocol/type_ids.hpp"
#include "storage/codec.hpp"
#include "storage/keys.hpp"
#include "sync/inbox.hpp"
#include "sync/notifications.hpp"

namespace crmsync::sync {

namespace {

namespace keys = storage::keys;
namespace codec = storage::codec;
using storage::column;
using namespace crmsync::atom;

/// Users with a sync request or state under `prefix` ("" = all tenants).
std::set<user_key> sync_users(const storage::db& db,
                              const std::string& prefix) {
  std::set<user_key> users;
  db.scan(column::sync, prefix, prefix.empty() ? "" : keys::prefix_end(prefix),
          [&](std::string_view k, std::string_view) {
            if (k.size() == 17)
              users.emplace(keys::get_be64(k, 0), keys::get_be64(k, 8));
            return true;
          });
  return users;
}

} // namespace

service::service(caf::actor_system&, caf::actor directory, storage::db& db,
                 graph::client& graph, service_config cfg)
    : directory_(directory)
    , graph_(std::make_unique<graph_client_port>(graph))
    , ctx_(std::make_shared<sync_context>(db, *graph_, std::move(cfg)))
    , inbox_writes_(db) {
  ctx_->directory = std::move(directory);
}

caf::actor service::spawn_calendar(caf::actor_system& sys,
                                   const entity_key& key,
                                   std::chrono::milliseconds idle_after) {
  return spawn_calendar_sync(sys, key.tenant, key.user, ctx_, idle_after);
}

void service::route(tenant_id org, user_id user, caf::message msg) {
  caf::anon_send(directory_, route_atom_v,
                 entity_key{entity_kind::calendar, org, user}, std::move(msg));
}

void service::start() {
  resume("");
}

void service::adopt(tenant_id org) {
  resume(keys::org(org));
}

void service::resume(const std::string& prefix) {
  // Every user with a calendar sync record gets their reconciliation
  // reminder (set again: the same phase, so a restart moves nothing).
  // Only those with something to do are woken now: a sync on its way in
  // or out, a failure to retry, or rows in their outbox or inbox (a
  // notification stored before a crash is in the inbox). The others wait
  // for their reminder, passivated.
  auto& db = ctx_->db;
  for (auto& [t, u] : sync_users(db, prefix)) {
    tenant_id org{t};
    user_id user{u};
    std::string v;
    bool found = false;
    calendar_status st;
    if (db.get(column::sync, keys::sync_state(org, user, entity_kind::calendar),
               v, found)
        || (found && !codec::decode(v, st))) {
      // The run reports what is wrong.
      route(org, user, caf::make_message(notify_atom_v, int64_t{0}));
      continue;
    }
    {
      std::lock_guard<std::mutex> guard{ctx_->mtx};
      auto& h = ctx_->states[{t, u}];
      h.state = st.state;
      h.subscription_expires_ms
          = st.subscription_id.empty() ? 0 : st.subscription_expires_ms;
    }
    keep_reminder(*ctx_, org, user, st.state != calendar_state::disabled);
    sync_request req;
    bool has_request = false;
    if (!db.get(column::sync, keys::sync_request_key(org, user), v, has_request)
        && has_request && !codec::decode(v, req))
      has_request = false;
    // Active with its request turned off is a disable still to do (sync
    // turned off, Office 365 disconnected, organization being deleted).
    const bool wanted = has_request && req.enabled;
    const bool settled = (st.state == calendar_state::active && wanted)
                         || (st.state == calendar_state::disabled && !wanted);
    if (!settled || has_pending_rows(db, org, user))
      route(org, user, caf::make_message(notify_atom_v, int64_t{0}));
  }
}

void service::begin_stop() {
  ctx_->halt = true;
}

void service::wanted(tenant_id org, user_id user) {
  route(org, user, caf::make_message(wake_atom_v));
}

void service::resync(tenant_id org, user_id user) {
  {
    // Shown at once, before the actor has the message.
    std::lock_guard<std::mutex> guard{ctx_->mtx};
    ctx_->runs[{org.value, user.value}].timers.full_round = true;
  }
  route(org, user, caf::make_message(resync_atom_v));
}

void service::ingest(std::string_view body, bool lifecycle, ingest_done done) {
  // The body is bounded by the server's body limit, so decoding every item
  // before counting them is bounded too.
  std::vector<notification> items;
  if (!parse_notifications(body, items))
    return done(ingest_result::malformed);
  if (items.size() > ctx_->cfg.max_notifications_per_post)
    return done(ingest_result::too_many);
  storage::write_batch b;
  std::set<user_key> users;
  uint64_t accepted = 0, rejected = 0;
  for (auto& n : items) {
    if (n.subscription_id.empty()) {
      ++rejected;
      continue;
    }
    std::string v;
    bool found = false;
    if (ctx_->db.get(column::lookup,
                     keys::subscription_lookup(n.subscription_id), v, found)
        || !found
        || v.size() < 16
        // The clientState this node chose has a fixed length (a
        // 24-byte random token): only the bytes are secret.
        || !crypto::equal_known_length(std::string_view{v}.substr(16),
                                       n.client_state)) {
      // Unknown subscription or wrong clientState: never applied.
      ++rejected;
      continue;
    }
    tenant_id org{keys::get_be64(v, 0)};
    user_id user{keys::get_be64(v, 8)};
    put_inbox(b, org, user,
              lifecycle ? lifecycle_kind(n.lifecycle_event)
                        : inbox_kind::change);
    users.emplace(org.value, user.value);
    ++accepted;
  }
  // Counted and told once stored (or at once: nothing to store).
  auto stored = [this, lifecycle, accepted, rejected, users = std::move(users),
                 done = std::move(done)](const caf::error& err) {
    if (err)
      return done(ingest_result::unavailable);
    auto kind = lifecycle ? metrics::notification_kind::lifecycle
                          : metrics::notification_kind::change;
    metrics::node().notifications(kind, metrics::notification_outcome::received,
                                  accepted + rejected);
    metrics::node().notifications(
        kind, metrics::notification_outcome::acknowledged, accepted);
    metrics::node().notifications(kind, metrics::notification_outcome::rejected,
                                  rejected);
    ctx_->notifications_accepted += accepted;
    ctx_->notifications_rejected += rejected;
    auto now = ctx_->cfg.now_ms();
    for (auto& [t, u] : users)
      if (ctx_->notifies.should_send({t, u}, now))
        route(tenant_id{t}, user_id{u}, caf::make_message(notify_atom_v, now));
    done(ingest_result::stored);
  };
  if (b.empty())
    return stored(caf::error{});
  inbox_writes_.submit(std::move(b), std::move(stored));
}

sync_stats service::stats() const {
  sync_stats out;
  out.runs = ctx_->run_count;
  out.notifications_accepted = ctx_->notifications_accepted;
  out.notifications_rejected = ctx_->notifications_rejected;
  out.failed_runs = ctx_->failed_runs;
  std::lock_guard<std::mutex> guard{ctx_->mtx};
  out.users_known = ctx_->states.size();
  out.runs_published = ctx_->runs.size();
  return out;
}

sync_health service::health() const {
  auto now = ctx_->cfg.now_ms();
  auto soon = now + 3600 * 1000;
  sync_health out;
  std::lock_guard<std::mutex> guard{ctx_->mtx};
  for (auto& [key, h] : ctx_->states) {
    ++out.users_by_state[to_string(h.state)];
    if (h.subscription_expires_ms <= now)
      continue;
    if (h.subscription_expires_ms <= soon)
      ++out.subscriptions_expiring;
    else
      ++out.subscriptions_live;
  }
  return out;
}

bool service::busy(tenant_id org) const {
  std::lock_guard<std::mutex> guard{ctx_->mtx};
  auto i = ctx_->runs.lower_bound({org.value, 0});
  for (; i != ctx_->runs.end() && i->first.first == org.value; ++i)
    if (i->second.timers.running)
      return true;
  return false;
}

user_timers service::timers(tenant_id org, user_id user) const {
  user_timers out;
  auto& cfg = ctx_->cfg;
  {
    std::lock_guard<std::mutex> guard{ctx_->mtx};
    user_key key{org.value, user.value};
    if (auto r = ctx_->runs.find(key); r != ctx_->runs.end())
      out = r->second.timers;
    if (auto h = ctx_->states.find(key);
        h != ctx_->states.end() && h->second.state != calendar_state::disabled)
      out.reconcile_at_ms = actors::spread_due(
          entity_key{entity_kind::calendar, org, user},
          std::chrono::milliseconds(cfg.reconcile_interval), cfg.now_ms());
  }
  std::string v;
  bool found = false;
  calendar_status st;
  if (!ctx_->db.get(column::sync,
                    keys::sync_state(org, user, entity_kind::calendar), v,
                    found)
      && found && codec::decode(v, st) && !st.subscription_id.empty())
    out.renew_at_ms
        = st.subscription_expires_ms
          - std::chrono::milliseconds(cfg.subscription_lifetime).count() / 2;
  return out;
}

} // namespace crmsync::sync
