#include "mail/mailer.hpp"

#include <algorithm>
#include <atomic>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include <caf/actor.hpp>
#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/atom.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/make_message.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/mailbox_slots.hpp"
#include "common/clock.hpp"
#include "common/crypto.hpp"
#include "common/log.hpp"
#include "graph/client.hpp"
#include "protocol/json.hpp"
#include "protocol/timers.hpp"
#include "protocol/type_ids.hpp"
#include "storage/codec.hpp"
#include "storage/keys.hpp"

namespace crmsync::mail {

namespace {

namespace keys = storage::keys;
namespace codec = storage::codec;
using std::chrono::milliseconds;
using storage::column;
using steady = std::chrono::steady_clock;

/// Graph's answer to one send, handed from a Graph I/O thread to the
/// mailer's actor: (sent_atom, outbox key, ok, HTTP status, Graph error
/// code, described error). Never leaves the process.
using sent_atom = caf::atom_constant<caf::atom("mailsent")>;
constexpr sent_atom sent_atom_v = sent_atom{};

/// Graph's sendMail body for one HTML message to one recipient.
std::string send_mail_body(const mail_item& m) {
  json::writer w;
  w.begin_object().key("message").begin_object();
  w.key("subject").value(m.subject);
  w.key("body").begin_object();
  w.key("contentType").value("HTML");
  w.key("content").value(m.html);
  w.end_object();
  w.key("toRecipients").begin_array().begin_object();
  w.key("emailAddress").begin_object().key("address").value(m.to);
  w.end_object().end_object().end_array();
  w.end_object();
  w.key("saveToSentItems").value(true);
  w.end_object();
  return w.take();
}

/// Whether trying again later can help (throttling, outages, transport).
bool transient(int status) {
  return status == 0 || status == 408 || status == 429 || status >= 500;
}

void put_audit(storage::write_batch& b, const mail_item& m, std::string action,
               std::string detail) {
  audit_entry a;
  a.org = m.org;
  a.at_ms = system_now_ms();
  a.seq = crypto::random_u64();
  a.actor = "mailer";
  a.action = std::move(action);
  a.detail = std::move(detail);
  b.put(column::audit, keys::audit(a.org, a.at_ms, a.seq), codec::encode(a));
}

} // namespace

/// What the actor shares with the threads that call the mailer.
struct shared_state {
  mutable std::mutex mtx;
  /// tenant -> its e-mails in flight (busy()).
  std::unordered_map<uint64_t, uint32_t> sending;
  std::function<bool(tenant_id)> serves;
  /// The node's directory: sends wait for a slot of the sending mailbox's
  /// actor. None: they go straight to the Graph client.
  caf::actor directory;
  mailer_stats stats;
  /// A wake message is on its way: wake() sends no second one.
  std::atomic<bool> wake_pending{false};
  /// Outbox keys handed over by queued() and not taken by the actor yet;
  /// a message to take them is on its way while this is not empty.
  std::vector<std::string> fresh;

  void begin(tenant_id t) {
    std::lock_guard<std::mutex> guard{mtx};
    ++sending[t.value];
  }

  void end(tenant_id t) {
    std::lock_guard<std::mutex> guard{mtx};
    auto i = sending.find(t.value);
    if (i != sending.end() && --i->second == 0)
      sending.erase(i);
  }

  void in_flight(size_t n) {
    std::lock_guard<std::mutex> guard{mtx};
    stats.in_flight = n;
    stats.max_in_flight = std::max<uint64_t>(stats.max_in_flight, n);
  }
};

namespace {

/// An outbox item waiting to be sent: its key and the mailbox that sends
/// it.
struct queued {
  std::string key;
  std::string mailbox;
};

/// Which mailbox's budget an e-mail counts against.
std::string mailbox_of(const mail_item& m) {
  return m.o365_tenant + "/" + m.sender;
}

struct mailer_state {
  storage::db* db = nullptr;
  graph::client* graph = nullptr;
  mailer_options opts;
  std::shared_ptr<shared_state> shared;
  /// Due items waiting for a free slot, in outbox order.
  std::deque<queued> due;
  /// Due items whose mailbox has its e-mails in flight already, by
  /// mailbox; one goes back to the front of `due` as one of them ends.
  std::unordered_map<std::string, std::deque<queued>> held;
  /// E-mails in flight per mailbox.
  std::unordered_map<std::string, uint32_t> sending_from;
  /// Keys in `due`, in `held` or in flight: a scan does not queue them
  /// again.
  std::unordered_set<std::string> known;
  /// The items in flight, as sent, by key.
  std::unordered_map<std::string, mail_item> flying;
  /// Only the tick carrying the latest id scans; earlier ones are stale.
  uint64_t timer = 0;
  bool timer_armed = false;
  steady::time_point timer_due;
  /// No new sends: the mailer is being destroyed, or the Graph client
  /// shuts down.
  bool halted = false;
  /// The destructor waits: quit once nothing is in flight.
  bool stopping = false;

  static inline const char* name = "mailer";
};

using self_ptr = caf::stateful_actor<mailer_state>*;

/// Makes sure a scan runs within `delay` (one timer at a time: the
/// earliest wins).
void arm(self_ptr self, milliseconds delay) {
  auto& st = self->state;
  auto due = steady::now() + delay;
  if (st.timer_armed && st.timer_due <= due)
    return;
  st.timer_armed = true;
  st.timer_due = due;
  self->delayed_send(self, delay, caf::tick_atom_v, ++st.timer);
}

/// Reads the item again just before its send: it may have been sent by
/// another path, purged or moved to another node since the scan.
bool still_due(const mailer_state& st, const std::string& key, int64_t now,
               mail_item& m) {
  std::string value;
  bool found = false;
  if (st.db->get(column::outbox, key, value, found) || !found)
    return false;
  return codec::decode(value, m) && !m.failed && m.next_attempt_ms <= now;
}

/// The CRM user whose Office 365 mailbox sends `m` (the link's lookup
/// row); false when the sender is no linked user of the item's
/// organization (then the send is not routed through a mailbox actor).
bool sender_user(const mailer_state& st, const mail_item& m, user_id& user) {
  std::string v;
  bool found = false;
  if (st.db->get(column::lookup,
                 keys::o365_user_lookup(m.o365_tenant, m.sender), v, found)
      || !found || v.size() != 16 || keys::get_be64(v, 0) != m.org.value)
    return false;
  user = user_id{keys::get_be64(v, 8)};
  return true;
}

/// What an e-mail's log lines say of it: its organization and, when the
/// sending mailbox is a CRM user's, that user (`user` invalid: none).
log::context context_of(const mail_item& m, user_id user) {
  return log::context{{}, m.org.str(), user.valid() ? user.str() : ""};
}

/// How long a send waits for a slot of its mailbox before it is tried
/// again later (not counted as an attempt).
constexpr milliseconds slot_wait{std::chrono::seconds(60)};

/// Whether organization `t` is closed for deletion (keys::org_closed): its
/// e-mail is not sent, and nothing more is written under it.
bool org_closed(const mailer_state& st, tenant_id t) {
  std::string value;
  bool found = false;
  return !st.db->get(column::orgs, keys::org_closed(t), value, found) && found;
}

/// Whether the stored item was marked failed (or removed) since its send
/// began.
bool given_up_meanwhile(const mailer_state& st, const std::string& key) {
  std::string value;
  bool found = false;
  mail_item stored;
  if (st.db->get(column::outbox, key, value, found))
    return false;
  return !found || (codec::decode(value, stored) && stored.failed);
}

void start(self_ptr self, const std::string& key, mail_item m) {
  auto& st = self->state;
  graph::call_spec call;
  call.tenant = m.o365_tenant;
  call.mailbox = m.sender;
  call.method = "POST";
  call.path_or_url = "/users/" + m.sender + "/sendMail";
  call.body = send_mail_body(m);
  ++st.sending_from[mailbox_of(m)];
  auto org = m.org;
  user_id user;
  bool routed = sender_user(st, m, user);
  // The send's lines (and the Graph client's, should it fail) name the
  // organization and the sending user.
  log::scope traced{context_of(m, routed ? user : user_id{})};
  st.flying.emplace(key, std::move(m));
  st.shared->in_flight(st.flying.size());
  auto weak = caf::actor_cast<caf::weak_actor_ptr>(self);
  auto answer = [weak, key](graph::result<graph::response> r) {
    // A Graph I/O thread: hand the answer over and return. The actor may
    // be gone (a stop that did not wait for this answer): drop it then.
    if (auto h = caf::actor_cast<caf::actor>(weak))
      caf::anon_send(h, sent_atom_v, key, r.ok,
                     static_cast<int32_t>(r.failure.status), r.failure.code,
                     r.ok ? std::string{} : r.failure.describe());
  };
  caf::actor directory;
  {
    std::lock_guard<std::mutex> guard{st.shared->mtx};
    directory = st.shared->directory;
  }
  if (!directory || !routed)
    return st.graph->start(std::move(call), std::move(answer));
  // The sender's mailbox actor owns its Graph budget: the send waits for
  // one of its slots (the mail lane, taking turns with the calendar sync)
  // and gives it back as soon as Graph answered.
  auto* graph = st.graph;
  actors::request_mailbox_slot(
      self, directory, entity_key{entity_kind::mailbox, org, user}, true, 1,
      slot_wait, system_now_ms(),
      [graph, call, answer](actors::slot_release release) mutable {
        graph->start(std::move(call),
                     [release, answer](graph::result<graph::response> r) {
                       release();
                       answer(std::move(r));
                     });
      },
      [self, key](bool busy) {
        // A busy mailbox is not the e-mail's fault (not an attempt); a
        // mailbox that cannot be reached is a failed attempt like any.
        caf::anon_send(self, sent_atom_v, key, false, int32_t{busy ? 429 : 0},
                       std::string{busy ? "mailbox_budget" : "mailbox"},
                       std::string{busy ? "waiting for a slot of the sending "
                                          "mailbox's Graph budget"
                                        : "the sending mailbox's actor could "
                                          "not be reached"});
      });
}

/// Starts sends of due items while slots are free.
void pump(self_ptr self) {
  auto& st = self->state;
  if (st.halted || st.due.empty())
    return;
  std::function<bool(tenant_id)> serves;
  {
    std::lock_guard<std::mutex> guard{st.shared->mtx};
    serves = st.shared->serves;
  }
  auto now = system_now_ms();
  while (!st.due.empty() && st.flying.size() < st.opts.max_in_flight) {
    auto next = std::move(st.due.front());
    st.due.pop_front();
    auto from = st.sending_from.find(next.mailbox);
    if (from != st.sending_from.end()
        && from->second >= st.opts.max_in_flight_per_mailbox) {
      st.held[next.mailbox].push_back(std::move(next));
      continue;
    }
    const auto& key = next.key;
    mail_item m;
    if (!still_due(st, key, now, m)) {
      st.known.erase(key);
      continue;
    }
    // Marked busy before the ownership check: a shard move marks the
    // tenant moving before it waits for busy, so one of the two sees the
    // other.
    tenant_id tenant{keys::get_be64(key, 0)};
    st.shared->begin(tenant);
    if (serves && !serves(tenant)) {
      st.shared->end(tenant);
      st.known.erase(key);
      continue;
    }
    if (org_closed(st, tenant)) {
      // Being deleted: the e-mail goes with the organization, unsent.
      storage::write_batch b;
      b.del(column::outbox, key);
      if (st.db->write(b))
        log::error("mailer: cannot drop an e-mail of a closed organization");
      st.shared->end(tenant);
      st.known.erase(key);
      continue;
    }
    start(self, key, std::move(m));
  }
}

/// Queues outbox item `m` (at `key`) if it is due and not queued or in
/// flight yet. Failed rows stay for operators; a row backing off waits
/// however often the mailer is woken: its due time is returned.
std::optional<int64_t> consider(mailer_state& st, std::string key,
                                const mail_item& m, int64_t now) {
  if (m.failed || st.known.count(key) > 0)
    return std::nullopt;
  if (m.next_attempt_ms > now)
    return m.next_attempt_ms;
  st.known.insert(key);
  st.due.push_back({std::move(key), mailbox_of(m)});
  return std::nullopt;
}

/// Queues every due item of the outbox not queued or in flight yet, then
/// sends; the next scan is due when the earliest waiting item is, or
/// after the idle poll.
void scan(self_ptr self) {
  auto& st = self->state;
  if (st.halted)
    return;
  {
    std::lock_guard<std::mutex> guard{st.shared->mtx};
    ++st.shared->stats.scans;
  }
  auto now = system_now_ms();
  std::optional<int64_t> next;
  auto err = st.db->scan(
      column::outbox, "", "", [&](std::string_view k, std::string_view v) {
        mail_item m;
        if (!codec::decode(v, m)) {
          log::error("mailer: undecodable outbox item");
          return true;
        }
        if (auto later = consider(st, std::string{k}, m, now))
          next = std::min(next.value_or(*later), *later);
        return true;
      });
  auto pause = st.opts.idle_poll;
  if (err) {
    log::error("mailer: cannot read the outbox");
    pause = std::min(pause, st.opts.retry_delay);
  } else if (next) {
    pause = std::min(pause, milliseconds(*next - now));
  }
  arm(self, pause);
  pump(self);
}

/// Queues the rows of `keys` that are due and not queued yet, then sends;
/// a row backing off arms the timer for its due time (a later scan finds
/// it).
void take(self_ptr self, const std::vector<std::string>& keys) {
  auto& st = self->state;
  if (st.halted)
    return;
  auto now = system_now_ms();
  for (const auto& key : keys) {
    if (st.known.count(key) > 0)
      continue;
    std::string value;
    bool found = false;
    mail_item m;
    if (st.db->get(column::outbox, key, value, found)) {
      log::error("mailer: cannot read the outbox");
      arm(self, st.opts.retry_delay);
      continue;
    }
    if (!found || !codec::decode(value, m))
      continue;
    if (auto later = consider(st, key, m, now))
      arm(self, milliseconds(*later - now));
  }
  pump(self);
}

/// Records Graph's answer to one send.
void finish(self_ptr self, const std::string& key, bool ok, int32_t status,
            const std::string& code, const std::string& why) {
  auto& st = self->state;
  auto i = st.flying.find(key);
  if (i == st.flying.end())
    return;
  auto m = std::move(i->second);
  st.flying.erase(i);
  st.known.erase(key);
  // The mailbox has a slot again: its next held item goes first.
  auto mailbox = mailbox_of(m);
  auto from = st.sending_from.find(mailbox);
  if (from != st.sending_from.end() && --from->second == 0)
    st.sending_from.erase(from);
  auto h = st.held.find(mailbox);
  if (h != st.held.end()) {
    st.due.push_front(std::move(h->second.front()));
    h->second.pop_front();
    if (h->second.empty())
      st.held.erase(h);
  }
  tenant_id tenant{keys::get_be64(key, 0)};
  user_id sender;
  log::scope traced{
      context_of(m, sender_user(st, m, sender) ? sender : user_id{})};
  storage::write_batch b;
  std::optional<bool> given_up; // empty: sent, or not an attempt
  if (ok) {
    b.del(column::outbox, key);
    if (!org_closed(st, tenant))
      put_audit(b, m, "mail.sent", "\"" + m.subject + "\" to " + m.to);
    if (auto werr = st.db->write(b))
      log::error("mailer: sent, but cannot clear the outbox item");
  } else if (code == "shutting_down") {
    // The Graph client stops with the node: not the e-mail's fault, and
    // nothing more can be sent; the next run sends it.
    st.halted = true;
  } else if (code == "mailbox_budget") {
    // Never sent: the mailbox was busy for a minute. Not an attempt; the
    // next scan after the pause tries again.
    arm(self, st.opts.retry_delay);
  } else if (given_up_meanwhile(st, key)) {
    // Given up while it was with Graph (its organization disconnected
    // Office 365): the row says why, not this attempt.
  } else {
    ++m.attempts;
    m.last_error = why;
    m.failed = !transient(status) || m.attempts >= st.opts.max_attempts;
    // Doubling pauses (the Graph client already waited out any
    // Retry-After it could within the call).
    auto pause = milliseconds(st.opts.retry_delay.count()
                              << std::min<uint32_t>(m.attempts - 1, 6));
    m.next_attempt_ms = system_now_ms() + pause.count();
    b.put(column::outbox, key, codec::encode(m));
    if (m.failed)
      put_audit(b, m, "mail.failed",
                "\"" + m.subject + "\" to " + m.to
                    + " was not sent: " + m.last_error);
    if (auto werr = st.db->write(b))
      log::error("mailer: cannot record a failed send");
    log::warn("mailer: sending to " + m.to + " failed: " + m.last_error);
    given_up = m.failed;
    if (!m.failed)
      arm(self, pause);
  }
  // Not busy before the outbox says what became of the e-mail: a shard
  // move that copied the row earlier would send it again.
  st.shared->end(tenant);
  {
    std::lock_guard<std::mutex> guard{st.shared->mtx};
    auto& s = st.shared->stats;
    s.in_flight = st.flying.size();
    if (ok)
      ++s.sent;
    else if (given_up)
      ++(*given_up ? s.failed : s.retried);
  }
  if (st.stopping && st.flying.empty()) {
    self->quit();
    return;
  }
  pump(self);
}

caf::behavior mailer_actor(self_ptr self, storage::db* db, graph::client* graph,
                           mailer_options opts,
                           std::shared_ptr<shared_state> shared) {
  auto& st = self->state;
  st.db = db;
  st.graph = graph;
  st.opts = opts;
  st.shared = std::move(shared);
  return {
      [=](atom::wake_atom) {
        self->state.shared->wake_pending = false;
        scan(self);
      },
      [=](atom::wake_atom, bool) {
        std::vector<std::string> keys;
        {
          std::lock_guard<std::mutex> guard{self->state.shared->mtx};
          keys.swap(self->state.shared->fresh);
        }
        take(self, keys);
      },
      [=](caf::tick_atom, uint64_t id) {
        auto& s = self->state;
        if (!s.timer_armed || id != s.timer)
          return;
        s.timer_armed = false;
        scan(self);
      },
      [=](sent_atom, const std::string& key, bool ok, int32_t status,
          const std::string& code,
          const std::string& why) { finish(self, key, ok, status, code, why); },
      // From the destructor: no new sends; quit once those in flight are
      // recorded, or when the grace is over.
      [=](caf::close_atom) {
        auto& s = self->state;
        s.halted = true;
        s.stopping = true;
        if (s.flying.empty())
          return self->quit();
        self->delayed_send(self, s.opts.stop_grace, caf::timeout_atom_v);
      },
      [=](caf::timeout_atom) {
        auto& s = self->state;
        log::warn("mailer: stopped with " + std::to_string(s.flying.size())
                  + " e-mail(s) unanswered; the next run sends them");
        for (auto& [key, m] : s.flying)
          s.shared->end(tenant_id{keys::get_be64(key, 0)});
        self->quit();
      },
  };
}

} // namespace

struct mailer::impl {
  explicit impl(caf::actor_system& s) : sys(s) {}
  caf::actor_system& sys;
  std::shared_ptr<shared_state> shared = std::make_shared<shared_state>();
  caf::actor actor;
};

mailer::mailer(caf::actor_system& sys, storage::db& db, graph::client& graph,
               mailer_options opts)
    : impl_(std::make_unique<impl>(sys)) {
  opts.max_in_flight = std::max<uint32_t>(opts.max_in_flight, 1);
  opts.max_in_flight_per_mailbox
      = std::max<uint32_t>(opts.max_in_flight_per_mailbox, 1);
  impl_->actor
      = sys.spawn<caf::hidden>(mailer_actor, &db, &graph, opts, impl_->shared);
  // The first scan picks up whatever an earlier run left unsent.
  wake();
}

mailer::~mailer() {
  caf::scoped_actor self{impl_->sys};
  self->send(impl_->actor, caf::close_atom_v);
  self->wait_for(impl_->actor);
}

void mailer::wake() {
  if (!impl_->shared->wake_pending.exchange(true))
    caf::anon_send(impl_->actor, atom::wake_atom_v);
}

void mailer::queued(std::vector<std::string> keys) {
  if (keys.empty())
    return;
  bool first = false;
  {
    std::lock_guard<std::mutex> guard{impl_->shared->mtx};
    auto& fresh = impl_->shared->fresh;
    first = fresh.empty();
    fresh.insert(fresh.end(), std::make_move_iterator(keys.begin()),
                 std::make_move_iterator(keys.end()));
  }
  if (first)
    caf::anon_send(impl_->actor, atom::wake_atom_v, true);
}

mailer_stats mailer::stats() const {
  std::lock_guard<std::mutex> guard{impl_->shared->mtx};
  return impl_->shared->stats;
}

void mailer::set_directory(caf::actor directory) {
  std::lock_guard<std::mutex> guard{impl_->shared->mtx};
  impl_->shared->directory = std::move(directory);
}

void mailer::set_owner_check(std::function<bool(tenant_id)> serves) {
  std::lock_guard<std::mutex> guard{impl_->shared->mtx};
  impl_->shared->serves = std::move(serves);
}

bool mailer::busy(tenant_id t) const {
  std::lock_guard<std::mutex> guard{impl_->shared->mtx};
  return impl_->shared->sending.count(t.value) > 0;
}

} // namespace crmsync::mail
