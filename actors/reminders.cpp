#include "actors/reminders.hpp"

#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/rate_window.hpp"
#include "common/log.hpp"
#include "protocol/errors.hpp"
#include "storage/reminder_rows.hpp"

namespace crmsync::actors {

namespace {

namespace rows = storage::reminder_rows;

constexpr int64_t no_time = std::numeric_limits<int64_t>::max();

/// How long to wait before trying again after a storage failure.
constexpr int64_t retry_ms = 1000;

/// splitmix64's finalizer: a fixed, well-mixed hash (std::hash of an
/// integer is the identity in libstdc++ and may differ between builds).
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

struct reminders_state {
  static inline const char* name = "reminders";
  std::shared_ptr<const actor_env> env;
  caf::actor handler;
  rate_window window{1};
  /// No due row is earlier than this (a lower bound, so a scan starts
  /// past the tombstones of delivered rows).
  int64_t floor_ms = std::numeric_limits<int64_t>::min();
  /// The armed wake-up: its generation and time (no_time: none armed).
  uint64_t generation = 0;
  int64_t armed_ms = no_time;
  uint64_t delivered = 0;
  bool started = false; ///< delivering (reminders_config::deliver_at_once)
};

using self_ptr = reminders_actor::stateful_pointer<reminders_state>;

/// Arms the wake-up for `at` unless one at or before it is armed already;
/// an earlier arming makes the later one stale (its generation is old).
void arm(self_ptr self, int64_t at) {
  auto& st = self->state;
  if (at == no_time || at >= st.armed_ms)
    return;
  st.armed_ms = at;
  auto gen = ++st.generation;
  auto delay = std::max<int64_t>(at - st.env->now_ms(), 0);
  self->delayed_send(self, std::chrono::milliseconds(delay), atom::wake_atom_v,
                     gen);
}

/// The due time after `r` that keeps its phase and lies after `now`.
int64_t next_due(const reminder& r, int64_t now) {
  auto next = r.due_ms + r.period_ms;
  if (next <= now)
    next += ((now - next) / r.period_ms + 1) * r.period_ms;
  return next;
}

/// Delivers every row due by now, earliest first, as far as the cap
/// allows, then arms the next wake-up.
void process(self_ptr self) {
  auto& st = self->state;
  if (!st.started)
    return; // `run_atom` processes whatever is due then
  auto now = st.env->now_ms();
  storage::write_batch batch;
  std::vector<reminder_due> out;
  int64_t next = no_time;    // the first row not yet due
  int64_t rearmed = no_time; // the earliest periodic row moved on
  int64_t held = no_time;    // the first due row the cap held back
  bool bad_row = false;
  auto window = st.window; // counts only what is really sent
  auto err = st.env->db->scan(
      storage::column::reminders, rows::due_begin(st.floor_ms), rows::due_end(),
      [&](std::string_view k, std::string_view v) {
        auto r = rows::decode_due(k, v);
        if (!r) {
          // Unreadable: remove it rather than stall every reminder behind.
          batch.del(storage::column::reminders, std::string{k});
          bad_row = true;
          return true;
        }
        if (r->due_ms > now) {
          next = r->due_ms;
          return false;
        }
        if (!window.admits(now)) {
          held = r->due_ms;
          return false;
        }
        window.record(now);
        out.push_back(reminder_due{r->target, r->kind, r->due_ms});
        if (r->period_ms > 0) {
          auto moved = *r;
          moved.due_ms = next_due(*r, now);
          rows::put(batch, moved, r->due_ms);
          rearmed = std::min(rearmed, moved.due_ms);
        } else {
          rows::remove(batch, r->target, r->kind, r->due_ms);
        }
        return true;
      });
  if (bad_row)
    log::warn("reminders: removed a malformed row");
  if (!err)
    err = st.env->db->write(batch);
  if (err) {
    // Nothing was sent: the rows stay and are tried again.
    log::error("reminders: " + caf::to_string(err));
    arm(self, now + retry_ms);
    return;
  }
  st.window = std::move(window);
  for (auto& d : out)
    caf::anon_send(st.handler, std::move(d)); // the handler is untyped
  st.delivered += out.size();
  if (held != no_time) {
    st.floor_ms = held;
    arm(self, st.window.next_free(now));
    return;
  }
  st.floor_ms = std::min(next, rearmed);
  arm(self, st.floor_ms);
}

/// Whether the due row of `r` (its target, kind and due time) holds r's
/// period.
bool already_stored(const storage::db& db, const reminder& r) {
  std::string value;
  bool found = false;
  if (db.get(storage::column::reminders, rows::due_key(r), value, found)
      || !found)
    return false;
  auto stored = rows::decode_due(rows::due_key(r), value);
  return stored && stored->period_ms == r.period_ms;
}

reminders_actor::behavior_type
reminders_behavior(self_ptr self, std::shared_ptr<const actor_env> env,
                   caf::actor handler, reminders_config cfg) {
  auto& st = self->state;
  st.env = std::move(env);
  st.handler = std::move(handler);
  st.window = rate_window{cfg.max_per_second};
  st.started = cfg.deliver_at_once;
  // Whatever is overdue from before a restart goes out at the cap.
  process(self);
  return {
      [=](reminder& r) -> caf::result<reminder> {
        auto& st = self->state;
        // What decode_due() would refuse must not be stored.
        if (r.period_ms < 0
            || static_cast<size_t>(r.target.kind) >= entity_kind_count)
          return make_crm_error(crm_errc::invalid_input, "bad_reminder",
                                "a reminder needs a known target kind and a "
                                "period of zero or more");
        std::optional<int64_t> old;
        if (auto err = rows::find(*st.env->db, r.target, r.kind, old))
          return err;
        // The same reminder again (a calendar sets its reconciliation
        // reminder each time it is activated, at the same phase): stored
        // and armed for already, nothing to write.
        if (old == r.due_ms && already_stored(*st.env->db, r))
          return r;
        storage::write_batch batch;
        rows::put(batch, r, old);
        if (auto err = st.env->db->write(batch))
          return err;
        st.floor_ms = std::min(st.floor_ms, r.due_ms);
        if (r.due_ms <= st.env->now_ms())
          process(self);
        else
          arm(self, r.due_ms);
        return r;
      },
      [=](cancel_reminder& c) -> caf::result<bool> {
        auto& st = self->state;
        std::optional<int64_t> old;
        if (auto err = rows::find(*st.env->db, c.target, c.kind, old))
          return err;
        if (!old)
          return false;
        storage::write_batch batch;
        rows::remove(batch, c.target, c.kind, *old);
        if (auto err = st.env->db->write(batch))
          return err;
        // An armed wake-up for it finds nothing due and re-arms.
        return true;
      },
      [=](atom::stats_atom) -> reminder_stats {
        auto& st = self->state;
        return reminder_stats{st.delivered,
                              st.armed_ms == no_time ? 0 : st.armed_ms};
      },
      // Started: everything due goes out now, the rest is armed.
      [=](atom::run_atom) {
        if (self->state.started)
          return;
        self->state.started = true;
        process(self);
      },
      [=](atom::wake_atom, uint64_t gen) {
        auto& st = self->state;
        if (gen != st.generation)
          return; // superseded by an earlier arming
        st.armed_ms = no_time;
        process(self);
      },
  };
}

} // namespace

int64_t reminder_phase(const entity_key& target,
                       std::chrono::milliseconds interval) {
  auto i = interval.count();
  if (i <= 0)
    return 0;
  auto h = mix(target.tenant.value ^ mix(target.user.value)
               ^ (uint64_t{static_cast<uint8_t>(target.kind)} << 56));
  return static_cast<int64_t>(h % static_cast<uint64_t>(i));
}

int64_t spread_due(const entity_key& target, std::chrono::milliseconds interval,
                   int64_t now_ms) {
  auto i = interval.count();
  if (i <= 0)
    return now_ms;
  auto start = now_ms - (((now_ms % i) + i) % i); // floor, negatives too
  auto due = start + reminder_phase(target, interval);
  return due < now_ms ? due + i : due;
}

reminders_actor spawn_reminders(caf::actor_system& sys,
                                std::shared_ptr<const actor_env> env,
                                caf::actor handler, reminders_config cfg) {
  return sys.spawn(reminders_behavior, std::move(env), std::move(handler), cfg);
}

} // namespace crmsync::actors
