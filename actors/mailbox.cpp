// The mailbox actor: one CRM user's Office 365 mailbox.
//
// Loads its link record from the sync family when activated (a user
// without one is simply not linked yet) and answers with its status. A
// record that cannot be decoded is reported (error log,
// crmsync_corrupt_records_total, an audit entry in the organization) and
// replaced by a fresh one: the mailbox starts from an empty window instead
// of failing each activation, which would refuse the user's sync every
// Graph slot for good (t13-async).
//
// It owns the mailbox's Graph budget, as Outlook enforces it per mailbox
// and app: at most `concurrency` requests in flight and `per_window`
// requests per `window` (actor_env::mailbox; 4 and 10,000 per 10 minutes).
// A slot carries a weight: a $batch holds one slot of the concurrency but
// counts each of its inner requests in the window, as Outlook counts them
// (t13-async).
// Whoever calls Graph against the mailbox asks for a slot first
// (mailbox_slot_request), sends its request when granted and gives the
// ticket back when answered (mailbox_slot_release). Two lanes queue apart,
// the user's calendar sync and the e-mail sent from this mailbox, and
// take turns when both wait: a hundred invitations cannot hold up the
// sync, nor an initial sync the invitations. A request is counted in the
// window when it was answered (by then Graph has surely counted it), so
// our window never ends before Graph's.
//
// Requesters are watched: one that stops (a calendar passivated or
// killed) loses its place in the queue and its slots come back. A request
// still queued at its `not_after_ms` is answered with an error, so no slot
// goes to someone who no longer waits; and a slot held past its `lease`
// (a release that got lost) is taken back, so a mailbox never stalls.
//
// Idle for `idle_after` (nothing queued or in flight), it asks the
// directory to passivate it, and agrees while its window holds at most
// `forget_at_most` requests, so a million users' mailboxes are not kept in
// memory by the reconciliation that touches each every few minutes; a busy
// mailbox stays until its window thins out.
#include "actors/entities.hpp"
#include "actors/idle_check.hpp"

#include <algorithm>
#include <deque>
#include <limits>
#include <unordered_map>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/send_within.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "protocol/errors.hpp"
#include "storage/codec.hpp"
#include "storage/keys.hpp"

namespace crmsync::actors {

namespace {

constexpr int64_t no_time = std::numeric_limits<int64_t>::max();

struct slot_waiter {
  caf::typed_response_promise<mailbox_slot> promise;
  caf::actor_addr requester;
  int64_t not_after_ms = 0;
  int64_t queued_ms = 0;
  uint64_t weight = 1; ///< requests it counts in the window
};

/// Requests answered at `at_ms` (a $batch: its inner requests).
struct answered_at {
  int64_t at_ms = 0;
  uint64_t weight = 1;
};

struct mailbox_state {
  static inline const char* name = "mailbox";
  std::shared_ptr<const actor_env> env;
  caf::actor directory;
  mailbox_status status;
  mailbox_limits limits;
  std::deque<slot_waiter> lanes[2]; ///< [0] sync, [1] mail
  bool mail_went_last = false;
  /// Granted tickets: who holds them, since when.
  struct holding {
    caf::actor_addr holder;
    int64_t since_ms = 0;
    uint64_t weight = 1;
  };
  std::unordered_map<uint64_t, holding> held;
  uint64_t held_weight = 0; ///< the weights of `held`, summed
  /// Waiting requests plus held tickets per watched requester.
  std::unordered_map<caf::actor_addr, uint64_t> watched;
  /// Answers still within the window, oldest first, and their weights
  /// summed.
  std::deque<answered_at> answered;
  uint64_t in_window = 0;
  uint64_t next_ticket = 0;
  mailbox_budget figures;
  uint64_t timer = 0; ///< generation of the pending wake-up
  int64_t timer_at = no_time;
  /// When it asks to be passivated: one check pending at a time (a
  /// delayed message per answered request woke CAF's clock thread per
  /// Graph call).
  idle_check idle_timer;
};

using self_ptr = mailbox_actor::stateful_pointer<mailbox_state>;

void watch(self_ptr self, const caf::actor_addr& who) {
  if (self->state.watched[who]++ == 0)
    self->monitor(who);
}

void unwatch(self_ptr self, const caf::actor_addr& who) {
  auto& w = self->state.watched;
  auto i = w.find(who);
  if (i == w.end())
    return;
  if (--i->second == 0) {
    self->demonitor(who);
    w.erase(i);
  }
}

/// A held slot's requests count in the window from `now` on.
void count_answered(mailbox_state& st, int64_t now, uint64_t weight) {
  st.answered.push_back(answered_at{now, weight});
  st.in_window += weight;
}

/// Drops the answers that left the window.
void slide(mailbox_state& st, int64_t now) {
  auto window = static_cast<int64_t>(st.limits.window.count());
  while (!st.answered.empty() && st.answered.front().at_ms + window <= now) {
    st.in_window -= st.answered.front().weight;
    st.answered.pop_front();
  }
}

/// Takes a held slot off the books (its weight with it).
std::unordered_map<uint64_t, mailbox_state::holding>::iterator
drop_held(mailbox_state& st,
          std::unordered_map<uint64_t, mailbox_state::holding>::iterator i) {
  st.held_weight -= i->second.weight;
  return st.held.erase(i);
}

bool idle(const mailbox_state& st) {
  return st.held.empty() && st.lanes[0].empty() && st.lanes[1].empty();
}

void arm(self_ptr self, int64_t at) {
  auto& st = self->state;
  if (at == no_time || at >= st.timer_at)
    return;
  st.timer_at = at;
  auto delay = std::max<int64_t>(at - st.env->now_ms(), 0);
  self->delayed_send(self, std::chrono::milliseconds(delay), atom::wake_atom_v,
                     ++st.timer);
}

/// Once idle, asks the directory (after `idle_after`) to passivate it.
void arm_idle_check(self_ptr self) {
  auto& st = self->state;
  if (!idle(st) || !st.directory)
    return;
  st.idle_timer.start(self, st.limits.idle_after, atom::idle_atom_v,
                      uint64_t{0});
}

/// Answers the waiting requests whose askers stopped waiting; returns the
/// earliest `not_after_ms` among those left.
int64_t drop_expired(self_ptr self, int64_t now) {
  auto& st = self->state;
  int64_t earliest = no_time;
  for (auto& lane : st.lanes) {
    for (auto i = lane.begin(); i != lane.end();) {
      if (i->not_after_ms != 0 && i->not_after_ms <= now) {
        i->promise.deliver(caf::make_error(caf::sec::request_timeout));
        unwatch(self, i->requester);
        i = lane.erase(i);
        continue;
      }
      if (i->not_after_ms != 0)
        earliest = std::min(earliest, i->not_after_ms);
      ++i;
    }
  }
  return earliest;
}

/// Takes back the slots held past their lease (their release was lost:
/// a reply that came after its requester stopped waiting, say); they
/// count as answered now.
void reclaim(self_ptr self, int64_t now) {
  auto& st = self->state;
  auto lease = static_cast<int64_t>(st.limits.lease.count());
  for (auto i = st.held.begin(); i != st.held.end();) {
    if (i->second.since_ms + lease > now) {
      ++i;
      continue;
    }
    count_answered(st, now, i->second.weight);
    unwatch(self, i->second.holder);
    i = drop_held(st, i);
    ++st.figures.reclaimed;
  }
}

/// Grants slots while the budget allows, the two lanes taking turns; then
/// arms a wake-up for when the window or a waiter's deadline needs one.
void pump(self_ptr self) {
  auto& st = self->state;
  auto now = st.env->now_ms();
  auto window = static_cast<int64_t>(st.limits.window.count());
  reclaim(self, now);
  slide(st, now);
  int64_t wake = drop_expired(self, now);
  while (!st.lanes[0].empty() || !st.lanes[1].empty()) {
    if (st.held.size() >= st.limits.concurrency)
      break; // a release pumps again
    // The other lane's turn when both wait.
    bool mail = !st.mail_went_last;
    if (st.lanes[mail ? 1 : 0].empty())
      mail = !mail;
    auto& lane = st.lanes[mail ? 1 : 0];
    // What is held counts as if answered: the window never holds more
    // than `per_window` requests once they are.
    if (st.held_weight + st.in_window + lane.front().weight
        > st.limits.per_window) {
      if (!st.answered.empty())
        wake = std::min(wake, st.answered.front().at_ms + window);
      break;
    }
    auto w = std::move(lane.front());
    lane.pop_front();
    st.mail_went_last = mail;
    auto ticket = ++st.next_ticket;
    st.held.emplace(ticket, mailbox_state::holding{w.requester, now, w.weight});
    st.held_weight += w.weight;
    // The requester stays watched while it holds the slot.
    ++(mail ? st.figures.granted_mail : st.figures.granted_sync);
    st.figures.max_in_flight
        = std::max<uint64_t>(st.figures.max_in_flight, st.held.size());
    metrics::node().mailbox_slot(mail, static_cast<double>(now - w.queued_ms)
                                           / 1000.0);
    w.promise.deliver(mailbox_slot{ticket});
  }
  // Requests wait behind held slots: the first lease to run out frees one
  // if its release never comes.
  if (!st.lanes[0].empty() || !st.lanes[1].empty()) {
    auto lease = static_cast<int64_t>(st.limits.lease.count());
    for (auto& [ticket, h] : st.held)
      wake = std::min(wake, h.since_ms + lease);
  }
  arm(self, wake);
}

void give_back(self_ptr self, uint64_t ticket, bool answered) {
  auto& st = self->state;
  auto i = st.held.find(ticket);
  if (i == st.held.end())
    return; // given back already (or by a requester that stopped)
  auto who = i->second.holder;
  if (answered)
    count_answered(st, st.env->now_ms(), i->second.weight);
  drop_held(st, i);
  unwatch(self, who);
  pump(self);
  arm_idle_check(self);
}

/// A requester stopped: its waiting requests go, its slots come back (its
/// requests may still be on the wire; they count as answered now).
void forget(self_ptr self, const caf::actor_addr& who) {
  auto& st = self->state;
  st.watched.erase(who);
  for (auto& lane : st.lanes)
    lane.erase(std::remove_if(
                   lane.begin(), lane.end(),
                   [&](const slot_waiter& w) { return w.requester == who; }),
               lane.end());
  auto now = st.env->now_ms();
  for (auto i = st.held.begin(); i != st.held.end();) {
    if (i->second.holder == who) {
      count_answered(st, now, i->second.weight);
      i = drop_held(st, i);
    } else {
      ++i;
    }
  }
  pump(self);
  arm_idle_check(self);
}

/// Loads the mailbox's record; a damaged one is reported and rewritten
/// fresh. A failed read stops the actor (the directory reactivates it on
/// the next message, as for any actor).
void load_record(self_ptr self) {
  auto& st = self->state;
  auto org = st.status.org;
  auto user = st.status.user;
  auto key = storage::keys::sync_state(org, user, entity_kind::mailbox);
  std::string value;
  bool found = false;
  auto what = "mailbox " + user.str() + " of organization " + org.str();
  log::scope traced{log::context{{}, org.str(), user.str()}};
  if (auto err = st.env->db->get(storage::column::sync, key, value, found)) {
    log::error(what + ": cannot load: " + self->system().render(err));
    self->quit(err);
    return;
  }
  if (!found || storage::codec::decode(value, st.status))
    return;
  metrics::node().corrupt_record("mailbox");
  auto detail = "the stored record of " + what + " could not be read ("
                + std::to_string(value.size())
                + " bytes); it was replaced by a fresh one and the "
                  "mailbox's Graph budget starts from an empty window";
  log::error(detail);
  st.status = mailbox_status{};
  st.status.org = org;
  st.status.user = user;
  storage::write_batch b;
  b.put(storage::column::sync, key, storage::codec::encode(st.status));
  audit_entry a;
  a.org = org;
  a.at_ms = st.env->now_ms();
  a.seq = st.env->random_id ? st.env->random_id()
                            : static_cast<uint64_t>(a.at_ms);
  a.actor = "mailbox";
  a.action = "mailbox.record_corrupt";
  a.detail = detail;
  b.put(storage::column::audit, storage::keys::audit(org, a.at_ms, a.seq),
        storage::codec::encode(a));
  // Running on is right even if the rewrite fails: the next activation
  // reports it again.
  if (auto err = st.env->db->write(b))
    log::error(what + ": cannot rewrite the corrupt record: "
               + self->system().render(err));
}

mailbox_budget figures(const mailbox_state& st) {
  auto out = st.figures;
  out.in_flight = st.held.size();
  out.queued_sync = st.lanes[0].size();
  out.queued_mail = st.lanes[1].size();
  out.in_window = st.in_window;
  return out;
}

} // namespace

mailbox_actor::behavior_type mailbox(self_ptr self, tenant_id org, user_id user,
                                     std::shared_ptr<const actor_env> env,
                                     caf::actor directory,
                                     std::chrono::milliseconds idle_after) {
  auto& st = self->state;
  st.env = std::move(env);
  st.directory = std::move(directory);
  st.limits = st.env->mailbox;
  if (idle_after.count() > 0)
    st.limits.idle_after = idle_after;
  st.limits.concurrency = std::max<size_t>(1, st.limits.concurrency);
  st.limits.per_window = std::max<size_t>(1, st.limits.per_window);
  st.status.org = org;
  st.status.user = user;
  load_record(self);
  self->set_down_handler([=](caf::down_msg& dm) { forget(self, dm.source); });
  using namespace crmsync::atom;
  return {
      [=](status_request&) -> mailbox_status { return self->state.status; },
      [=](stats_atom) -> uint64_t {
        // Asked from inside the actor: the queue behind this message.
        return self->mailbox().size();
      },
      [=](mailbox_slot_request& r) -> caf::result<mailbox_slot> {
        auto& st = self->state;
        auto who = caf::actor_cast<caf::actor_addr>(self->current_sender());
        if (!who)
          return make_crm_error(crm_errc::invalid_input, "no_requester",
                                "a mailbox slot needs a requester to hold it");
        auto rp = self->make_response_promise<mailbox_slot>();
        // A weight above the whole window could never be granted: it
        // waits for an empty window instead.
        uint64_t weight
            = std::clamp<uint64_t>(r.weight, 1, st.limits.per_window);
        st.lanes[r.mail ? 1 : 0].push_back(
            slot_waiter{rp, who, r.not_after_ms, st.env->now_ms(), weight});
        watch(self, who);
        pump(self);
        return rp;
      },
      [=](mailbox_slot_release& r) { give_back(self, r.ticket, true); },
      [=](mailbox_budget_request&) -> mailbox_budget {
        return figures(self->state);
      },
      [=](wake_atom, uint64_t generation) {
        auto& st = self->state;
        if (generation != st.timer)
          return;
        st.timer_at = no_time;
        pump(self);
      },
      [=](idle_atom, uint64_t) {
        auto& st = self->state;
        if (!idle(st))
          return st.idle_timer.dropped(); // the next give-back arms one
        if (!st.idle_timer.fired(self, atom::idle_atom_v, uint64_t{0}))
          return; // used since this check was set
        send_within(
            self, st.directory, passivate_atom_v,
            entity_key{entity_kind::mailbox, st.status.org, st.status.user});
      },
      [=](passivate_atom) -> bool {
        auto& st = self->state;
        auto now = st.env->now_ms();
        reclaim(self, now);
        slide(st, now);
        if (!idle(st) || st.in_window > st.limits.forget_at_most)
          return false;
        self->quit();
        return true;
      },
  };
}

mailbox_actor spawn_mailbox(caf::actor_system& sys, tenant_id org, user_id user,
                            std::shared_ptr<const actor_env> env,
                            caf::actor directory,
                            std::chrono::milliseconds idle_after) {
  return sys.spawn(mailbox, org, user, std::move(env), std::move(directory),
                   idle_after);
}

} // namespace crmsync::actors
