// The calendar actor: starts runs (sync/calendar/run.hpp) when a notification,
// an outbox entry or a reminder asks, spaces and retries them, keeps its
// reconciliation reminder and asks to be passivated when idle.
#include "sync/calendar/run.hpp"

namespace crmsync::sync {

namespace calendar {

namespace {

// -- the actor ----------------------------------------------------------------

struct calendar_sync_state {
  static inline const char* name = "calendar";
  std::shared_ptr<sync_context> ctx;
  tenant_id org;
  user_id user;
  std::shared_ptr<calendar_run> run; ///< the run in progress, if any
  bool again = false;                ///< something arrived during the run
  bool notified = false;   ///< a notification came: the next run reads delta
  bool full_round = false; ///< a resync waits for a good run
  int64_t queued_ms = 0;   ///< first notification not yet applied (lag)
  bool gap_wait = false;   ///< a run waits for the gap after the last
  caf::actor_clock::time_point last_start{};
  int retry_attempt = 0;    ///< failed runs in a row
  uint64_t retry_timer = 0; ///< generation of the pending retry (0: none)
  int64_t retry_at_ms = 0;
  std::optional<bool> reminded; ///< what this actor last told the reminders
  uint64_t runs = 0; ///< runs started by this activation (idle checks)
  /// Deadlines of the asks to the governor and the mailbox (one timer).
  actors::ask_deadlines asks;
  /// The user's mailbox actor, once it granted a slot (calendar_run).
  caf::actor mailbox;
  /// When it asks to be passivated (one check pending at a time), and
  /// after how long idle (this activation's: actors/idle_ladder.hpp).
  actors::idle_check idle;
  std::chrono::milliseconds idle_after{};
  log::context trace; ///< the organization and the user, for log lines
};

using sync_ptr = caf::stateful_actor<calendar_sync_state>*;

user_key key_of(sync_ptr self) {
  return {self->state.org.value, self->state.user.value};
}

/// What this user's sync logs under: its lines, and those of the Graph
/// calls it starts, name the organization and the user (--log-format
/// json: "org", "user"). Set on entry to every handler of the actor.
const log::context& traced(sync_ptr self) {
  return self->state.trace;
}

/// Publishes the run state for the admin pages and shard moves; a user
/// with nothing pending leaves the map.
void publish(sync_ptr self) {
  auto& st = self->state;
  user_timers t;
  t.running = st.run != nullptr;
  t.again = st.again || st.gap_wait;
  t.full_round = st.full_round;
  t.retry_attempt = st.retry_attempt;
  t.retry_at_ms = st.retry_timer != 0 ? st.retry_at_ms : 0;
  std::lock_guard<std::mutex> guard{st.ctx->mtx};
  if (!t.running && !t.again && !t.full_round && t.retry_attempt == 0)
    st.ctx->runs.erase(key_of(self));
  else
    st.ctx->runs[key_of(self)] = {t, self->id()};
}

void start_run(sync_ptr self);

/// Something wants a run: now, after the gap since the last run's start,
/// or after the run in progress.
void want(sync_ptr self, bool notified) {
  auto& st = self->state;
  st.notified = st.notified || notified;
  if (st.run) {
    st.again = true;
    return publish(self);
  }
  if (st.gap_wait)
    return;
  // Back-to-back runs (a flood of notifications) keep a minimum gap, so
  // one user cannot spend their mailbox's Graph budget on delta rounds;
  // what arrives meanwhile coalesces into the next run.
  auto due = st.last_start + st.ctx->cfg.min_run_gap;
  auto now = self->clock().now();
  if (now < due) {
    st.gap_wait = true;
    self->delayed_send(self, due - now, run_atom_v);
    return publish(self);
  }
  start_run(self);
}

void run_ended(sync_ptr self, bool failed, const calendar_status& status,
               bool full, int64_t queued_ms) {
  auto& st = self->state;
  auto& ctx = *st.ctx;
  // Notifications that came before this run are applied by now (a failed
  // run's are not measured: its retry does not know them).
  if (!failed && queued_ms != 0)
    metrics::node().sync_lag(metrics::sync_direction::to_crm,
                             (ctx.cfg.now_ms() - queued_ms) / 1000.0);
  if (!failed) {
    st.retry_attempt = 0;
    st.retry_timer = 0;
    if (full)
      st.full_round = false;
  } else if (!ctx.halt) {
    // A failed run (Graph down, a timeout) is tried again soon, doubling
    // the pause up to the reconciliation interval; a good one clears it.
    ++ctx.failed_runs;
    auto pause = std::min<std::chrono::milliseconds>(
        std::chrono::milliseconds(int64_t{2000}
                                  << std::min(st.retry_attempt, 10)),
        ctx.cfg.reconcile_interval);
    ++st.retry_attempt;
    st.retry_timer = static_cast<uint64_t>(st.retry_attempt);
    st.retry_at_ms = ctx.cfg.now_ms() + pause.count();
    self->delayed_send(self, pause, retry_atom_v, st.retry_timer);
  }
  {
    std::lock_guard<std::mutex> guard{ctx.mtx};
    auto& h = ctx.states[key_of(self)];
    h.state = status.state;
    h.subscription_expires_ms
        = status.subscription_id.empty() ? 0 : status.subscription_expires_ms;
  }
  bool on = status.state != calendar_state::disabled;
  if (st.reminded != on) {
    keep_reminder(ctx, st.org, st.user, on);
    st.reminded = on;
  }
  st.run.reset();
  if (st.again && !ctx.halt) {
    st.again = false;
    want(self, false);
  }
  publish(self);
  // Nothing more to do: leave memory soon unless something comes. One
  // idle check at a time: a pending one moves on to the new due time when
  // it fires (a timer per run would wake CAF's clock thread per run).
  if (!st.run && !st.gap_wait && st.retry_timer == 0)
    st.idle.start(self, st.idle_after, idle_atom_v, st.runs);
}

void start_run(sync_ptr self) {
  auto& st = self->state;
  auto& ctx = *st.ctx;
  // The run reads the inbox later: a notification stored from now on
  // needs a message of its own (sync/notify_gate.hpp).
  ctx.notifies.run_starts(key_of(self));
  if (ctx.halt || (ctx.cfg.owns && !ctx.cfg.owns(st.org))) {
    // Stopping, or the tenant moved to another node: nothing runs here.
    st.again = false;
    st.notified = false;
    return publish(self);
  }
  st.last_start = self->clock().now();
  st.again = false;
  bool pull = st.notified;
  st.notified = false;
  int64_t queued_ms = st.queued_ms;
  st.queued_ms = 0;
  bool full = st.full_round;
  ++ctx.run_count;
  ++st.runs;
  auto run = std::make_shared<calendar_run>(
      self, ctx, st.asks, st.mailbox, st.org, st.user,
      [self, full, queued_ms](bool failed, const calendar_status& status) {
        run_ended(self, failed, status, full, queued_ms);
      });
  st.run = run;
  publish(self);
  try {
    run->start(pull, full);
  } catch (const std::exception& e) {
    log::error(std::string{"sync: run failed: "} + e.what());
  }
}

caf::behavior calendar_sync(sync_ptr self, tenant_id org, user_id user,
                            std::shared_ptr<sync_context> ctx,
                            std::chrono::milliseconds idle_after) {
  auto& st = self->state;
  st.ctx = std::move(ctx);
  st.idle_after = idle_after.count() > 0 ? idle_after : st.ctx->cfg.idle_after;
  st.org = org;
  st.user = user;
  st.trace = log::context{{}, org.str(), user.str()};
  // However it ends (passivated, stopped with the node, failed), nothing
  // of it may stay published as running: a shard move would wait for it.
  // Only its own entry: a next activation may have published already.
  self->attach_functor(
      [ctx = st.ctx, key = user_key{org.value, user.value}, id = self->id()] {
        ctx->notifies.run_starts(key); // a message it had is lost with it
        std::lock_guard<std::mutex> guard{ctx->mtx};
        auto i = ctx->runs.find(key);
        if (i != ctx->runs.end() && i->second.actor == id)
          ctx->runs.erase(i);
      });
  return {
      // A CRM write (the tenant actor), the REST API, a retry or the
      // reconciliation reminder: run soon.
      [=](wake_atom) {
        log::scope in{traced(self)};
        want(self, false);
      },
      // A change notification stored in the inbox at `queued_ms`.
      [=](notify_atom, int64_t queued_ms) {
        log::scope in{traced(self)};
        auto& s = self->state;
        if (s.queued_ms == 0)
          s.queued_ms = queued_ms;
        want(self, true);
      },
      // Resync: the next good run reads the whole window again.
      [=](resync_atom) {
        log::scope in{traced(self)};
        self->state.full_round = true;
        want(self, true);
      },
      [=](const reminder_due& due) {
        log::scope in{traced(self)};
        if (due.kind == reminder_kind::reconcile)
          want(self, false);
      },
      [=](run_atom) {
        log::scope in{traced(self)};
        self->state.gap_wait = false;
        if (!self->state.run)
          start_run(self);
      },
      [=](retry_atom, uint64_t generation) {
        log::scope in{traced(self)};
        if (generation == self->state.retry_timer) {
          self->state.retry_timer = 0;
          want(self, false);
        }
      },
      // A Graph answer's continuation: in the run's log scope already
      // (governed() wraps it).
      [=](step& s) { s.fn(); },
      // Idle since the run that set this check: the directory passivates
      // (and asks first, so a message that came meanwhile keeps it).
      [=](idle_atom, uint64_t) {
        auto& s = self->state;
        // Busy: the end of its run sets the next check.
        if (s.run || s.gap_wait || s.again || s.retry_timer != 0)
          return s.idle.dropped();
        if (!s.idle.fired(self, idle_atom_v, s.runs))
          return; // a run ended after this check was set
        actors::send_within(self, s.ctx->directory, passivate_atom_v,
                            entity_key{entity_kind::calendar, s.org, s.user});
      },
      // The earliest deadline of an ask to the governor or the mailbox.
      [=](sweep_atom, uint64_t generation) {
        self->state.asks.sweep(self, generation);
      },
      [=](status_request&) -> caf::result<calendar_status> {
        auto& s = self->state;
        calendar_status out;
        if (!actors::read_calendar_status(s.ctx->db, s.org, s.user, out))
          return make_crm_error(crm_errc::storage_failure, "storage_failure",
                                "cannot read the calendar sync status");
        return out;
      },
      [=](stats_atom) -> uint64_t { return self->mailbox().size(); },
      // Idle: nothing running, queued or to retry. Otherwise it stays (a
      // retry or a run due after its gap is a timer of this actor).
      [=](passivate_atom) -> bool {
        auto& s = self->state;
        if (s.run || s.gap_wait || s.again || s.retry_timer != 0)
          return false;
        self->quit();
        return true;
      },
  };
}

} // namespace

} // namespace calendar

void graph_client_port::start(graph::call_spec call,
                              graph::callback<graph::response> done) {
  client_.start(std::move(call), std::move(done));
}

void graph_client_port::start_page(std::string tenant, std::string path_or_url,
                                   graph::callback<graph::page> done) {
  client_.start_page(std::move(tenant), std::move(path_or_url),
                     std::move(done));
}

void graph_client_port::start_batch(
    std::string tenant, std::string mailbox,
    std::vector<graph::batch_request> requests,
    graph::callback<std::vector<graph::batch_response>> done) {
  client_.start_batch(std::move(tenant), std::move(mailbox),
                      std::move(requests), std::move(done));
}

void graph_client_port::forget_tenant(const std::string& tenant) {
  client_.forget_token(tenant);
}

void keep_reminder(const sync_context& ctx, tenant_id org, user_id user,
                   bool on) {
  if (!ctx.cfg.reminders)
    return;
  entity_key target{entity_kind::calendar, org, user};
  if (!on) {
    caf::anon_send(ctx.cfg.reminders, cancel_reminder{target});
    return;
  }
  auto interval = std::chrono::milliseconds(ctx.cfg.reconcile_interval);
  caf::anon_send(
      ctx.cfg.reminders,
      reminder{target, reminder_kind::reconcile,
               actors::spread_due(target, interval, ctx.cfg.now_ms()),
               interval.count()});
}

caf::actor spawn_calendar_sync(caf::actor_system& sys, tenant_id org,
                               user_id user, std::shared_ptr<sync_context> ctx,
                               std::chrono::milliseconds idle_after) {
  return sys.spawn(calendar::calendar_sync, org, user, std::move(ctx),
                   idle_after);
}

} // namespace crmsync::sync
