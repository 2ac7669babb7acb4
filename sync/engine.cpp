#include "sync/engine.hpp"

#include <algorithm>
#include <atomic>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/make_message.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <simdjson.h>

#include "actors/reminders.hpp"
#include "common/crypto.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "common/time_format.hpp"
#include "graph/client.hpp"
#include "protocol/json.hpp"
#include "protocol/timers.hpp"
#include "protocol/type_ids.hpp"
#include "storage/codec.hpp"
#include "storage/keys.hpp"
#include "storage/sync_links.hpp"
#include "sync/apply.hpp"
#include "sync/conflict.hpp"
#include "sync/errors.hpp"
#include "sync/graph_event.hpp"
#include "sync/guard.hpp"
#include "sync/initial.hpp"
#include "sync/notifications.hpp"
#include "sync/outbox.hpp"

namespace crmsync::sync {

namespace {

namespace keys = storage::keys;
namespace codec = storage::codec;
using storage::column;

// Inbox entry kinds (the value of an inbox row).
constexpr char inbox_change = 'c';
constexpr char inbox_missed = 'm';
constexpr char inbox_removed = 'x';
constexpr char inbox_reauthorize = 'r';

/// A 404 that says the resource is gone; a 404 MailboxNotEnabledForRESTAPI
/// is a blocked mailbox instead (sync/errors.hpp).
bool is_not_found(const graph::error& e) {
  return classify(e, target::calendar).what == disposition::gone;
}

/// The status a decision (sync/outbox.hpp, sync/apply.hpp) reads from a
/// failed call: 404 only when is_not_found says the thing is gone.
int failed_status(const graph::error& e) {
  if (is_not_found(e))
    return 404;
  return e.status == 404 ? 0 : e.status;
}

/// Office 365 refuses this event for good (sync/errors.hpp): retrying
/// cannot help, and it must not hold up the ones after. Access and mailbox
/// errors are not such refusals: a change made meanwhile must wait for
/// them to clear, not be dropped.
bool refused_for_good(const graph::error& e) {
  return classify(e, target::event).what == disposition::item_refused;
}

/// Refused events kept per user, so that the record stays small.
constexpr size_t max_skipped = 100;

/// One run of one user's sync: loads what it needs, does one pass of the
/// state machine, and writes what changed.
class user_sync {
public:
  user_sync(caf::actor_system& sys, caf::actor directory, storage::db& db,
            graph::client& graph, const engine_config& cfg,
            const std::atomic<bool>& halt, tenant_id org, user_id user)
      : halt_(halt)
      , sys_(sys)
      , directory_(std::move(directory))
      , db_(db)
      , graph_(graph)
      , cfg_(cfg)
      , org_(org)
      , user_(user) {}

  /// `notified`: a notification arrived since the last run, so delta is
  /// read even if its inbox row was taken by the run before.
  void run(bool notified, bool full = false) {
    notified_ = notified;
    if (!load()) {
      log::error("sync " + org_.str() + "/" + user_.str()
                 + ": cannot read its records; nothing done");
      return;
    }
    // Blocked the last time: this run tries again from where it was.
    calendar_state resumed;
    if (status_.state == calendar_state::error
        && from_string(status_.resume_state, resumed))
      status_.state = resumed;
    if (full) {
      // A resync: the round reads the whole window, as after a 410.
      status_.delta_link.clear();
      notified_ = true;
    }
    if (!request_.enabled) {
      if (status_.state != calendar_state::disabled)
        disable(true);
      return;
    }
    if (o365_tenant_.empty() || oid_.empty()) {
      fail("the user or organization is not linked to Office 365");
      return;
    }
    // An approval stands until a run with it got through (a failure on
    // the way must not hold the user again).
    deletes_approved_ = has_approval();
    // An approved run reads delta whatever its inbox says: the round that
    // was held may have been the one a notification asked for.
    notified_ = notified_ || deletes_approved_;
    if (status_.state == calendar_state::held) {
      if (!deletes_approved_)
        return; // waiting for an administrator
      status_.deletes_in_window = 0;
      status_.state = calendar_state::active;
      status_.last_error.clear();
    }
    if (status_.office365_calendar_id.empty() && !create_calendar())
      return;
    if (status_.state == calendar_state::initial_sync && !initial_sync())
      return;
    if (halt_)
      return;
    if (status_.state != calendar_state::active)
      return;
    if (!drain_outbox() || halt_)
      return;
    if (!pull() || halt_)
      return;
    ensure_subscription();
    if (!failed_ && !status_.alert.empty())
      close_alert();
    save_status();
    if (deletes_approved_ && !failed_)
      spend_approval();
  }

private:
  // -- loading and saving -----------------------------------------------------

  bool load() {
    status_.org = org_;
    status_.user = user_;
    std::string v;
    bool found = false;
    if (db_.get(column::sync, keys::sync_request_key(org_, user_), v, found))
      return false;
    if (found && !codec::decode(v, request_))
      return false;
    if (db_.get(column::sync,
                keys::sync_state(org_, user_, entity_kind::calendar), v, found))
      return false;
    if (found && !codec::decode(v, status_))
      return false;
    if (db_.get(column::users, keys::user(org_, user_), v, found))
      return false;
    user_record u;
    if (found && codec::decode(v, u))
      oid_ = u.o365_user;
    if (db_.get(column::orgs, keys::org(org_), v, found))
      return false;
    org_record o;
    if (found && codec::decode(v, o)) {
      o365_tenant_ = o.o365_tenant;
      policy_ = o.conflicts;
    }
    return true;
  }

  void save_status() {
    storage::write_batch b;
    b.put(column::sync, keys::sync_state(org_, user_, entity_kind::calendar),
          codec::encode(status_));
    if (auto err = db_.write(b))
      log::error("sync: cannot save the status of " + user_.str());
  }

  void fail(const std::string& why) {
    // Calls cut short by a shutdown are not the sync's failures: the next
    // start resumes where this run stopped.
    if (halt_)
      return;
    failed_ = true;
    status_.last_error = why;
    if (status_.state == calendar_state::disabled)
      status_.state = calendar_state::error;
    save_status();
    log::warn("sync " + org_.str() + "/" + user_.str() + ": " + why);
  }

  void fail(const std::string& what, const graph::error& e) {
    auto c = classify(e, target::calendar);
    if (c.what == disposition::blocked)
      block(what + ": " + e.describe(), c.reason);
    else
      fail(what + ": " + e.describe());
  }

  /// Office 365 blocks this user (access denied, no mailbox, token
  /// refused): every change stays queued, the sync shows "error" with the
  /// reason and is retried with backoff like any failed run; an
  /// administrator hears of it once per block (audit entry and metric).
  void block(const std::string& why, std::string_view reason) {
    if (halt_)
      return;
    failed_ = true;
    status_.last_error = why;
    if (status_.state != calendar_state::error) {
      status_.resume_state = to_string(status_.state);
      status_.state = calendar_state::error;
    }
    storage::write_batch b;
    if (status_.alert != reason) {
      status_.alert = std::string{reason};
      put_audit(b, "sync.blocked",
                "calendar sync of user " + user_.str() + " is blocked ("
                    + status_.alert + "): " + why);
      metrics::node().sync_alert(status_.alert);
    }
    b.put(column::sync, keys::sync_state(org_, user_, entity_kind::calendar),
          codec::encode(status_));
    if (db_.write(b))
      log::error("sync: cannot save the status of " + user_.str());
    log::warn("sync " + org_.str() + "/" + user_.str() + ": blocked ("
              + status_.alert + "): " + why);
  }

  /// A run got through after a block: the alert ends (audited too).
  void close_alert() {
    storage::write_batch b;
    put_audit(b, "sync.recovered",
              "calendar sync of user " + user_.str() + " works again after "
                  + status_.alert);
    status_.alert.clear();
    status_.resume_state.clear();
    if (db_.write(b))
      log::error("sync: cannot audit the recovery of " + user_.str());
  }

  void put_audit(storage::write_batch& b, std::string action,
                 std::string detail) {
    audit_entry a;
    a.org = org_;
    a.at_ms = cfg_.now_ms();
    a.seq = crypto::random_u64();
    a.actor = "sync";
    a.action = std::move(action);
    a.detail = std::move(detail);
    b.put(column::audit, keys::audit(a.org, a.at_ms, a.seq), codec::encode(a));
  }

  // -- refused events ---------------------------------------------------------

  /// Records that Office 365 refuses this version of the event for good;
  /// shown in the user's sync status until the event syncs or goes.
  void skip(const event_record& e, const graph::error& err) {
    unskip(e.id);
    if (status_.skipped.size() >= max_skipped)
      status_.skipped.erase(status_.skipped.begin());
    status_.skipped.push_back(skipped_event{e.id, e.version, cfg_.now_ms(),
                                            err.status, err.code, err.message});
    status_.last_error = "Office 365 refused CRM event " + e.id.str() + ": "
                         + err.describe() + "; it is not synced";
    log::warn("sync " + org_.str() + "/" + user_.str() + ": "
              + status_.last_error);
  }

  void unskip(event_id e) {
    auto& v = status_.skipped;
    v.erase(
        std::remove_if(v.begin(), v.end(),
                       [e](const skipped_event& k) { return k.event == e; }),
        v.end());
  }

  // -- the tenant actor -------------------------------------------------------

  template <class Reply, class Msg>
  bool ask_tenant(Msg msg, Reply& out, std::string& err) {
    caf::scoped_actor self{sys_};
    bool ok = false;
    self->request(directory_, cfg_.actor_timeout, atom::route_atom_v,
                  entity_key{entity_kind::tenant, org_, user_id{}},
                  caf::make_message(std::move(msg)))
        .receive(
            [&](Reply& r) {
              out = std::move(r);
              ok = true;
            },
            [&](caf::error& e) { err = to_api_error(e).message; });
    return ok;
  }

  // -- links ------------------------------------------------------------------

  bool find_link(event_id e, sync_link& out) {
    std::string v;
    bool found = false;
    return !db_.get(column::links, keys::link(org_, user_, e), v, found)
           && found && codec::decode(v, out);
  }

  /// The CRM event a Graph event id is linked to, if any.
  bool event_of_graph_id(const std::string& gid, event_id& out) {
    std::string v;
    bool found = false;
    if (db_.get(column::lookup, keys::graph_event_lookup(gid), v, found)
        || !found || v.size() != 24 || keys::get_be64(v, 0) != org_.value
        || keys::get_be64(v, 8) != user_.value)
      return false;
    out = event_id{keys::get_be64(v, 16)};
    return true;
  }

  void put_link(storage::write_batch& b, const sync_link& l) {
    storage::put_sync_link(b, org_, user_, l);
  }

  void del_link(storage::write_batch& b, const sync_link& l) {
    storage::del_sync_link(b, org_, user_, l);
  }

  bool load_event(event_id id, event_record& out, bool& found) {
    std::string v;
    found = false;
    if (db_.get(column::events, keys::event(org_, id), v, found))
      return false;
    return !found || codec::decode(v, out);
  }

  calendar_paths paths() const {
    return calendar_paths{oid_, status_.office365_calendar_id};
  }

  std::string event_path(const std::string& gid) const {
    return paths().event(gid);
  }

  /// Sends one request a decision asked for.
  bool send(const graph_request& r, graph::response& res, graph::error& err) {
    return graph_.call(o365_tenant_, oid_, r.method, r.url, r.body, r.headers,
                       res, err);
  }

  // -- enabling ---------------------------------------------------------------

  /// R14: the product's calendar in the user's mailbox.
  bool create_calendar() {
    graph::response res;
    graph::error err;
    // A crash between Graph's answer and the status write would leave an
    // orphan: the state says a creation was under way, and the calendar
    // it made is adopted rather than made twice.
    if (status_.state == calendar_state::enabling && adopt_calendar())
      return true;
    status_.state = calendar_state::enabling;
    save_status();
    if (!graph_.call(o365_tenant_, oid_, "POST",
                     "/users/" + oid_ + "/calendars", R"({"name":"CRM"})", res,
                     err)) {
      fail("creating the CRM calendar in Office 365 failed", err);
      return false;
    }
    std::string id, ck;
    if (!read_id_and_change_key(res.body, id, ck)) {
      fail("Office 365 answered the calendar creation without an id");
      return false;
    }
    status_.office365_calendar_id = id;
    status_.state = calendar_state::initial_sync;
    status_.last_error.clear();
    status_.done = 0;
    status_.total = 0;
    save_status();
    return true;
  }

  bool adopt_calendar() {
    std::vector<std::string> items;
    graph::error err;
    if (!graph_.list_all(o365_tenant_,
                         "/users/" + oid_ + "/calendars?$select=id,name", items,
                         err))
      return false;
    thread_local simdjson::dom::parser parser;
    for (auto& item : items) {
      simdjson::dom::element v;
      std::string_view id, name;
      if (parser.parse(item).get(v) || v["id"].get_string().get(id)
          || v["name"].get_string().get(name) || name != "CRM")
        continue;
      status_.office365_calendar_id = std::string{id};
      status_.state = calendar_state::initial_sync;
      status_.last_error.clear();
      save_status();
      return true;
    }
    return false;
  }

  /// R16-R19: the user's own eligible events in the order and number
  /// initial_selection chooses; sent in $batch rounds (initial_rounds).
  /// Resumable: linked events are skipped and a repeated create is
  /// recognised by its transactionId.
  bool initial_sync() {
    std::vector<event_record> candidates;
    auto prefix = keys::events_of_owner(org_, user_);
    bool bad = false;
    auto err = db_.scan(column::event_index, prefix, keys::prefix_end(prefix),
                        [&](std::string_view k, std::string_view) {
                          auto entry = keys::parse_event_index(k);
                          event_record e;
                          bool found = false;
                          if (!entry || !load_event(entry->event, e, found)) {
                            bad = true;
                            return false;
                          }
                          if (found)
                            candidates.push_back(std::move(e));
                          return true;
                        });
    if (err || bad) {
      fail("reading the user's CRM events failed");
      return false;
    }
    auto chosen = initial_selection(std::move(candidates), user_, cfg_.now_ms(),
                                    cfg_.max_initial_events);
    status_.total = chosen.size();
    std::vector<event_record> todo;
    size_t done = 0;
    for (auto& e : chosen) {
      sync_link l;
      if (find_link(e.id, l))
        ++done;
      else
        todo.push_back(e);
    }
    status_.done = done;
    save_status();
    // Up to 4 batches of 20 in flight at once (the mailbox's concurrency,
    // which graph::client enforces in any case), pipelined: a sender takes
    // the next batch as soon as its last one is answered and recorded, so
    // no batch waits for the slowest of a round.
    constexpr size_t parallel_batches = 4;
    const auto rounds = initial_rounds(todo, paths());
    const size_t batches = rounds.size();
    std::atomic<size_t> next{0};
    std::mutex record_mtx;
    bool stop = false, gone = false, store_failed = false;
    // What stopped the senders; nothing it answered counts as done.
    std::optional<graph::error> failure;
    auto sender = [&] {
      for (;;) {
        {
          std::lock_guard<std::mutex> guard{record_mtx};
          if (stop || halt_)
            return; // resumed after a restart: links skip what went
        }
        size_t n = next.fetch_add(1);
        if (n >= batches)
          return;
        size_t first = n * batch_limit;
        std::vector<graph::batch_request> reqs;
        for (auto& r : rounds[n])
          reqs.push_back(graph::batch_request{std::to_string(reqs.size() + 1),
                                              r.method, r.url, r.body});
        std::vector<graph::batch_response> answers;
        graph::error error;
        bool sent = graph_.batch(o365_tenant_, oid_, reqs, answers, error);
        std::lock_guard<std::mutex> guard{record_mtx};
        if (!sent) {
          if (is_not_found(error))
            gone = true;
          else
            failure = error;
          stop = true;
          return;
        }
        storage::write_batch b;
        for (size_t k = 0; k < answers.size(); ++k) {
          auto& a = answers[k];
          auto& e = todo[first + k];
          std::string gid, ck;
          if (a.status >= 200 && a.status < 300
              && read_id_and_change_key(a.body, gid, ck)) {
            put_link(b, sync_link{e.id, gid, ck, e.version});
            unskip(e.id);
            ++status_.done;
            ++status_.out_created;
            continue;
          }
          auto ie = item_error(a);
          if (is_not_found(ie)) {
            gone = true;
            stop = true;
          } else if (refused_for_good(ie)) {
            ++status_.done; // skipped and recorded; the next ones go on
            skip(e, ie);
          } else {
            // Blocked, throttled beyond the client's retries, or down:
            // not done, sent again by the next run.
            if (!failure)
              failure = ie;
            stop = true;
          }
        }
        b.put(column::sync,
              keys::sync_state(org_, user_, entity_kind::calendar),
              codec::encode(status_));
        if (db_.write(b)) {
          store_failed = true;
          stop = true;
        }
      }
    };
    {
      std::vector<std::thread> senders;
      for (size_t t = 0; t < std::min(parallel_batches, batches); ++t)
        senders.emplace_back(sender);
      for (auto& t : senders)
        t.join();
    }
    if (gone)
      return calendar_gone();
    if (halt_)
      return false;
    if (store_failed) {
      fail("storing links failed");
      return false;
    }
    if (failure) {
      fail("sending the initial events failed", *failure);
      return false;
    }
    // The first delta round sets the baseline: everything in it is ours.
    status_.delta_link.clear();
    status_.state = calendar_state::active;
    status_.last_error.clear();
    save_status();
    return true;
  }

  // -- CRM -> Office 365 ------------------------------------------------------

  bool drain_outbox() {
    std::vector<std::pair<std::string, sync_change>> entries;
    auto prefix = keys::of_user(org_, user_);
    auto err = db_.scan(column::sync_outbox, prefix, keys::prefix_end(prefix),
                        [&](std::string_view k, std::string_view v) {
                          sync_change c;
                          if (codec::decode(v, c))
                            entries.emplace_back(std::string{k}, c);
                          return true;
                        });
    if (err) {
      fail("reading the sync outbox failed");
      return false;
    }
    size_t deletions = 0;
    for (auto& [key, change] : entries) {
      sync_link l;
      event_record e;
      bool exists = false;
      if (!change.deleted && !load_event(change.event, e, exists))
        continue;
      bool linked = find_link(change.event, l);
      if (plan_push(change, exists ? &e : nullptr, linked ? &l : nullptr,
                    paths())
              .kind
          == push_kind::remove)
        ++deletions;
    }
    if (!guard_deletes(deletions, "in Office 365"))
      return false;
    note_deletions(deletions);
    for (auto& [key, change] : entries) {
      if (halt_)
        return false;
      storage::write_batch b;
      if (!push_change(change, b))
        return false;
      b.del(column::sync_outbox, key);
      if (db_.write(b)) {
        fail("storing a sent change failed");
        return false;
      }
      metrics::node().sync_lag(metrics::sync_direction::to_office365,
                               (cfg_.now_ms() - change.at_ms) / 1000.0);
    }
    return true;
  }

  /// Records that Office 365 refused an event for good and lets the queue
  /// go on (the entry is dropped; a later CRM edit tries again).
  bool skip_refused(const event_record& e, const graph::error& err) {
    skip(e, err);
    return true;
  }

  /// Sends one CRM change (plan_push); what it learned goes into `b`.
  bool push_change(const sync_change& c, storage::write_batch& b) {
    event_record e;
    bool exists = false;
    if (!load_event(c.event, e, exists)) {
      fail("reading a CRM event failed");
      return false;
    }
    sync_link link;
    bool linked = find_link(c.event, link);
    auto plan = plan_push(c, exists ? &e : nullptr, linked ? &link : nullptr,
                          paths());
    graph::response res;
    graph::error err;
    if (c.deleted || !exists)
      unskip(c.event);
    if (plan.kind == push_kind::none)
      return true;
    if (plan.kind == push_kind::remove) {
      if (!send(plan.request, res, err)
          && after_push(plan.kind, failed_status(err)) != push_next::done) {
        fail("deleting an event in Office 365 failed", err);
        return false;
      }
      del_link(b, link);
      ++status_.out_deleted;
      return true;
    }
    if (plan.kind == push_kind::update) {
      bool ok = send(plan.request, res, err);
      if (!ok
          && after_push(plan.kind, failed_status(err)) == push_next::conflict) {
        // Changed in Outlook too since the last sync: a conflict. Re-read
        // Office 365's version and let the tenant's policy choose.
        ok = graph_.call(o365_tenant_, oid_, "GET", event_path(link.graph_id),
                         "", res, err);
        graph_event theirs;
        if (ok && from_graph(res.body, theirs)) {
          auto r = resolve_conflict(policy_, user_, e, link, theirs, paths(),
                                    cfg_.now_ms());
          if (r.winner == side::office365)
            return keep_office365(r, link, theirs, b);
          record_conflict(b, r.record);
          ok = send(r.patch, res, err);
        }
      }
      if (!ok
          && after_push(plan.kind, failed_status(err)) == push_next::recreate) {
        // Deleted in Outlook: the CRM's later edit brings it back.
        del_link(b, link);
        plan = plan_push(c, &e, nullptr, paths());
      } else if (!ok && refused_for_good(err)) {
        return skip_refused(e, err);
      } else if (!ok) {
        fail("updating an event in Office 365 failed", err);
        return false;
      } else {
        std::string gid, ck;
        read_id_and_change_key(res.body, gid, ck);
        link.change_key = ck;
        link.crm_version = e.version;
        put_link(b, link);
        unskip(e.id);
        ++status_.out_updated;
        return true;
      }
    }
    if (!send(plan.request, res, err)) {
      if (after_push(plan.kind, failed_status(err)) == push_next::calendar_gone)
        return calendar_gone();
      if (refused_for_good(err))
        return skip_refused(e, err);
      fail("creating an event in Office 365 failed", err);
      return false;
    }
    std::string gid, ck;
    if (!read_id_and_change_key(res.body, gid, ck)) {
      fail("Office 365 answered an event creation without an id");
      return false;
    }
    put_link(b, sync_link{e.id, gid, ck, e.version});
    unskip(e.id);
    ++status_.out_created;
    return true;
  }

  // -- conflicts --------------------------------------------------------------

  void record_conflict(storage::write_batch& b, const sync_conflict& c) {
    std::string key = keys::audit(org_, c.at_ms, crypto::random_u64());
    b.put(column::conflicts, key, codec::encode(c));
    ++conflicts_;
  }

  /// Office 365's version wins: it becomes the CRM's, nothing is sent.
  bool keep_office365(const conflict_resolution& r, sync_link link,
                      const graph_event& theirs, storage::write_batch& b) {
    event_record applied;
    std::string err;
    if (!ask_tenant(r.apply, applied, err)) {
      fail("applying Office 365's side of a conflict failed: " + err);
      return false;
    }
    record_conflict(b, r.record);
    link.change_key = theirs.change_key;
    link.crm_version = applied.version;
    put_link(b, link);
    ++status_.in_updated;
    return true;
  }

  // -- Office 365 -> CRM ------------------------------------------------------

  std::string initial_delta_url() const {
    auto now = cfg_.now_ms();
    auto from = now - std::chrono::milliseconds(cfg_.window_past).count();
    auto to = now + std::chrono::milliseconds(cfg_.window_future).count();
    return "/users/" + oid_ + "/calendars/" + status_.office365_calendar_id
           + "/calendarView/delta?startDateTime=" + format_rfc3339(from)
           + "&endDateTime=" + format_rfc3339(to);
  }

  /// Inbox rows present when the run started; removed once applied.
  std::vector<std::pair<std::string, char>> take_inbox() {
    std::vector<std::pair<std::string, char>> rows;
    auto prefix = keys::of_user(org_, user_);
    db_.scan(column::inbox, prefix, keys::prefix_end(prefix),
             [&](std::string_view k, std::string_view v) {
               rows.emplace_back(std::string{k},
                                 v.empty() ? inbox_change : v[0]);
               return true;
             });
    return rows;
  }

  /// One delta round from the stored link (or a fresh one), applying
  /// every item; the new link and the applied changes are stored together
  /// per page.
  bool pull() {
    auto inbox = take_inbox();
    bool due = !inbox.empty() || notified_ || reconcile_due();
    for (auto& [k, kind] : inbox) {
      if (kind == inbox_removed) {
        forget_subscription();      // recreated below
        status_.delta_link.clear(); // and everything read again
      }
      if (kind == inbox_reauthorize)
        status_.subscription_expires_ms = 0; // renewed below
    }
    if (!due && !status_.delta_link.empty())
      return true;
    std::string url
        = status_.delta_link.empty() ? initial_delta_url() : status_.delta_link;
    bool restarted = false;
    bool full = status_.delta_link.empty();
    // The whole round first: the mass-delete guard judges it as a whole.
    std::vector<delta_page> pages;
    while (!halt_) {
      if (pages.size() >= 10000) {
        fail("too many delta pages");
        return false;
      }
      graph::response res;
      graph::error err;
      // Large pages: fewer round trips (Graph may send fewer anyway).
      static const http::header_list prefer{
          {"Prefer",
           "odata.maxpagesize=500, outlook.body-content-type=\"text\""}};
      if (!graph_.call(o365_tenant_, oid_, "GET", url, "", prefer, res, err)) {
        if (err.status == 410 && !restarted) {
          // The delta token is gone: read the whole window again; links
          // keep it free of duplicates.
          restarted = true;
          full = true;
          status_.delta_link.clear();
          pages.clear();
          url = initial_delta_url();
          continue;
        }
        if (is_not_found(err))
          return calendar_gone();
        fail("reading changes from Office 365 failed", err);
        return false;
      }
      delta_page page;
      if (!parse_delta_page(res.body, page)) {
        fail("Office 365 sent a delta page crmsync cannot read");
        return false;
      }
      pages.push_back(std::move(page));
      if (!pages.back().delta_link.empty())
        break;
      url = pages.back().next_link;
    }
    if (halt_)
      return false;
    size_t removals = 0;
    std::set<std::string> listed;
    for (auto& page : pages)
      for (auto& item : page.items) {
        graph_event g;
        event_id e;
        if (!from_graph(item, g))
          continue;
        listed.insert(g.id);
        if (g.removed && event_of_graph_id(g.id, e))
          ++removals;
      }
    // A full round (first, or after 410) reports no removals: a linked
    // event of the window it no longer lists may have been deleted.
    std::vector<sync_link> unlisted;
    if (full)
      unlisted = links_missing_from(listed);
    if (!guard_deletes(removals + unlisted.size(), "in the CRM"))
      return false;
    for (auto& page : pages) {
      storage::write_batch b;
      for (auto& item : page.items)
        if (!apply_item(item, b)) {
          // Keep what this page already applied (links of events made).
          db_.write(b);
          return false;
        }
      if (!page.delta_link.empty()) {
        status_.delta_link = page.delta_link;
        status_.last_sync_ms = cfg_.now_ms();
        status_.last_error.clear();
        for (auto& [k, kind] : inbox)
          b.del(column::inbox, k);
      }
      b.put(column::sync, keys::sync_state(org_, user_, entity_kind::calendar),
            codec::encode(status_));
      if (db_.write(b)) {
        fail("storing applied changes failed");
        return false;
      }
    }
    if (!unlisted.empty()) {
      storage::write_batch b;
      for (auto& l : unlisted)
        if (!remove_if_gone(l, b))
          return false;
      b.put(column::sync, keys::sync_state(org_, user_, entity_kind::calendar),
            codec::encode(status_));
      if (db_.write(b)) {
        fail("storing applied deletions failed");
        return false;
      }
    }
    note_deletions(removals + unlisted.size());
    return true;
  }

  /// Links of events inside the delta window whose Office 365 id is not in
  /// `listed`.
  std::vector<sync_link>
  links_missing_from(const std::set<std::string>& listed) {
    std::vector<sync_link> out;
    auto now = cfg_.now_ms();
    auto from = now - std::chrono::milliseconds(cfg_.window_past).count();
    auto to = now + std::chrono::milliseconds(cfg_.window_future).count();
    auto prefix = keys::of_user(org_, user_);
    db_.scan(column::links, prefix, keys::prefix_end(prefix),
             [&](std::string_view, std::string_view v) {
               sync_link l;
               event_record e;
               bool exists = false;
               if (codec::decode(v, l) && listed.count(l.graph_id) == 0
                   && load_event(l.event, e, exists) && exists
                   && e.end_ms >= from && e.start_ms < to)
                 out.push_back(l);
               return true;
             });
    return out;
  }

  // -- the mass-delete guard --------------------------------------------------

  /// How many events are linked (synced) now.
  size_t linked_count() {
    size_t n = 0;
    auto prefix = keys::of_user(org_, user_);
    db_.scan(column::links, prefix, keys::prefix_end(prefix),
             [&n](std::string_view, std::string_view) {
               ++n;
               return true;
             });
    return n;
  }

  /// A run that would delete more than the configured share of the
  /// user's synced events stops in state "held" until an administrator
  /// approves (crmsyncctl approve-deletes USER); false when held.
  bool guard_deletes(size_t deletions, const char* where) {
    // Counting the links is a scan: only when the guard may hold.
    size_t linked = deletes_approved_ || deletions == 0 ? 0 : linked_count();
    auto v = judge_deletes(deletions, linked, deletes_approved_,
                           delete_window_of_status(), cfg_.now_ms(),
                           guard_settings());
    set_delete_window(v.window);
    if (!v.hold)
      return true;
    status_.state = calendar_state::held;
    status_.last_error = hold_reason(v, where);
    save_status();
    log::warn("sync " + org_.str() + "/" + user_.str() + ": "
              + status_.last_error);
    return false;
  }

  /// Counts applied deletions towards the guard's window.
  void note_deletions(size_t n) {
    set_delete_window(count_deletions(delete_window_of_status(), n,
                                      cfg_.now_ms(), guard_settings()));
  }

  guard_config guard_settings() const {
    guard_config g;
    g.share = cfg_.mass_delete_share;
    g.minimum = cfg_.mass_delete_minimum;
    return g;
  }

  delete_window delete_window_of_status() const {
    return delete_window{status_.deletes_window_ms, status_.deletes_in_window};
  }

  void set_delete_window(const delete_window& w) {
    status_.deletes_window_ms = w.start_ms;
    status_.deletes_in_window = w.count;
  }

  /// An administrator's approval of a held run: kept until a run with it
  /// gets through, so a failure on the way does not hold the user again.
  bool has_approval() {
    std::string v;
    bool found = false;
    return !db_.get(column::sync, keys::sync_approval_key(org_, user_), v,
                    found)
           && found;
  }

  /// The approval is used up once a run with it got through.
  void spend_approval() {
    storage::write_batch b;
    b.del(column::sync, keys::sync_approval_key(org_, user_));
    db_.write(b);
  }

  /// The reconciliation timer wakes every interval; the last run ended a
  /// little after the previous wake, so half an interval counts as due.
  bool reconcile_due() const {
    return cfg_.now_ms() - status_.last_sync_ms
           >= std::chrono::milliseconds(cfg_.reconcile_interval).count() / 2;
  }

  /// A linked event Office 365 reports removed, or that a full round no
  /// longer lists: deleted in the CRM only if a GET confirms it is gone
  /// (it may merely have moved out of the window).
  bool remove_if_gone(const sync_link& link, storage::write_batch& b) {
    graph::response res;
    graph::error gerr;
    bool got = graph_.call(o365_tenant_, oid_, "GET", event_path(link.graph_id),
                           "", res, gerr);
    auto next = after_confirm(got ? res.status : failed_status(gerr));
    if (next == removal_action::keep)
      return true;
    if (next != removal_action::delete_in_crm) {
      fail("confirming a deletion in Office 365 failed", gerr);
      return false;
    }
    apply_office365 cmd;
    cmd.owner = user_;
    cmd.event = link.event;
    cmd.remove = true;
    event_record gone;
    std::string err;
    if (!ask_tenant(cmd, gone, err)
        && err.find("not found") == std::string::npos) {
      fail("deleting a CRM event failed: " + err);
      return false;
    }
    del_link(b, link);
    ++status_.in_deleted;
    return true;
  }

  bool apply_item(const std::string& item, storage::write_batch& b) {
    graph_event g;
    if (!from_graph(item, g))
      return true; // not an event crmsync understands: leave it
    event_id linked_event;
    bool linked = event_of_graph_id(g.id, linked_event);
    sync_link link;
    if (linked && !find_link(linked_event, link))
      linked = false;
    auto decision = decide_item(g, linked ? &link : nullptr, user_);
    switch (decision.action) {
      case item_action::ignore:
      case item_action::own_echo:
        return true;
      case item_action::confirm_removal:
        return remove_if_gone(link, b);
      case item_action::upsert:
        break;
    }
    std::string err;
    event_record applied;
    if (!ask_tenant(decision.command, applied, err)) {
      if (linked && crm_moved_on(err)) {
        // Deleted or changed in the CRM meanwhile: the outbox carries that
        // change out, and its If-Match meets the conflict policy.
        return true;
      }
      fail("applying an Office 365 change failed: " + err);
      return false;
    }
    put_link(b, link_after_upsert(g, applied));
    if (linked)
      ++status_.in_updated;
    else
      ++status_.in_created;
    return true;
  }

  // -- subscription -----------------------------------------------------------

  void ensure_subscription() {
    auto now = cfg_.now_ms();
    auto lifetime
        = std::chrono::milliseconds(cfg_.subscription_lifetime).count();
    if (!status_.subscription_id.empty()
        && status_.subscription_expires_ms - now > lifetime / 2)
      return;
    auto expires = now + lifetime;
    graph::response res;
    graph::error err;
    if (!status_.subscription_id.empty()) {
      json::writer w;
      w.begin_object()
          .key("expirationDateTime")
          .value(format_rfc3339(expires))
          .end_object();
      if (graph_.call(o365_tenant_, "", "PATCH",
                      "/subscriptions/" + status_.subscription_id, w.take(),
                      res, err)) {
        status_.subscription_expires_ms = expires;
        return;
      }
      if (!is_not_found(err)) {
        fail("renewing the Office 365 subscription failed", err);
        return;
      }
      forget_subscription();
    }
    auto secret = crypto::random_token(24);
    json::writer w;
    w.begin_object();
    w.key("changeType").value("created,updated,deleted");
    // The organization in the query string routes a notification to the
    // node that owns it in a cluster (Graph repeats the URL as given).
    auto route = "?org=" + org_.str();
    w.key("notificationUrl").value(cfg_.public_url + "/webhooks/graph" + route);
    w.key("lifecycleNotificationUrl")
        .value(cfg_.public_url + "/webhooks/graph/lifecycle" + route);
    w.key("resource")
        .value("/users/" + oid_ + "/calendars/" + status_.office365_calendar_id
               + "/events");
    w.key("expirationDateTime").value(format_rfc3339(expires));
    w.key("clientState").value(secret);
    w.end_object();
    std::string id;
    if (!graph_.call(o365_tenant_, "", "POST", "/subscriptions", w.take(), res,
                     err)) {
      fail("creating the Office 365 subscription failed", err);
      return;
    }
    std::string ck;
    if (!read_id_and_change_key(res.body, id, ck)) {
      fail("Office 365 answered the subscription without an id");
      return;
    }
    status_.subscription_id = id;
    status_.subscription_expires_ms = expires;
    status_.client_state = secret;
    // The lookup and the status together: a notification is accepted from
    // here on, and no restart can forget a subscription that exists.
    storage::write_batch b;
    std::string v;
    keys::put_be64(v, org_.value);
    keys::put_be64(v, user_.value);
    v += secret;
    b.put(column::lookup, keys::subscription_lookup(id), v);
    b.put(column::sync, keys::sync_state(org_, user_, entity_kind::calendar),
          codec::encode(status_));
    if (db_.write(b))
      fail("storing the new subscription failed");
  }

  void forget_subscription() {
    if (status_.subscription_id.empty())
      return;
    storage::write_batch b;
    b.del(column::lookup, keys::subscription_lookup(status_.subscription_id));
    db_.write(b);
    status_.subscription_id.clear();
    status_.subscription_expires_ms = 0;
    status_.client_state.clear();
  }

  // -- disabling --------------------------------------------------------------

  /// R20 (and R21 with `remote` false: the calendar is already gone):
  /// the subscription and the product's calendar go, with every event in
  /// it; CRM events stay; links, outbox and inbox are cleared.
  void disable(bool remote) {
    graph::response res;
    graph::error err;
    if (remote && !status_.subscription_id.empty()
        && !graph_.call(o365_tenant_, "", "DELETE",
                        "/subscriptions/" + status_.subscription_id, "", res,
                        err)
        && !is_not_found(err)) {
      fail("deleting the Office 365 subscription failed", err);
      return;
    }
    if (remote && !status_.office365_calendar_id.empty()
        && !graph_.call(o365_tenant_, oid_, "DELETE",
                        "/users/" + oid_ + "/calendars/"
                            + status_.office365_calendar_id,
                        "", res, err)
        && !is_not_found(err)) {
      fail("deleting the CRM calendar in Office 365 failed", err);
      return;
    }
    forget_subscription();
    auto prefix = keys::of_user(org_, user_);
    storage::write_batch b;
    for (auto cf : {column::links, column::sync_outbox, column::inbox})
      db_.scan(cf, prefix, keys::prefix_end(prefix),
               [&](std::string_view k, std::string_view v) {
                 sync_link l;
                 if (cf == column::links && codec::decode(v, l))
                   del_link(b, l);
                 else
                   b.del(cf, std::string{k});
                 return true;
               });
    calendar_status fresh;
    fresh.org = org_;
    fresh.user = user_;
    fresh.state = calendar_state::disabled;
    fresh.out_created = status_.out_created;
    fresh.out_updated = status_.out_updated;
    fresh.out_deleted = status_.out_deleted;
    fresh.in_created = status_.in_created;
    fresh.in_updated = status_.in_updated;
    fresh.in_deleted = status_.in_deleted;
    if (!remote)
      fresh.last_error = "the CRM calendar was deleted in Office 365; sync "
                         "is off";
    status_ = fresh;
    b.put(column::sync, keys::sync_state(org_, user_, entity_kind::calendar),
          codec::encode(status_));
    if (db_.write(b))
      log::error("sync: cannot store a disabled sync");
  }

  /// R21: the product's calendar was deleted in Office 365.
  bool calendar_gone() {
    log::info("sync " + org_.str() + "/" + user_.str()
              + ": the CRM calendar is gone from Office 365; disabling");
    // The request first: were the status written first and the request
    // not, a later run would see sync wanted and make a new calendar.
    set_calendar_sync cmd;
    cmd.who.service_admin = true;
    cmd.user = user_;
    cmd.enabled = false;
    calendar_status ignored;
    std::string err;
    if (!ask_tenant(cmd, ignored, err)) {
      fail("the CRM calendar is gone from Office 365, and recording that "
           "sync is off failed: "
           + err);
      return false;
    }
    disable(false);
    return false;
  }

  /// Set when the node stops: a run ends at the next step boundary (what
  /// it did is stored; the next start resumes it).
  const std::atomic<bool>& halt_;
  caf::actor_system& sys_;
  caf::actor directory_;
  storage::db& db_;
  graph::client& graph_;
  const engine_config& cfg_;
  tenant_id org_;
  user_id user_;
  sync_request request_;
  calendar_status status_;
  std::string o365_tenant_;
  std::string oid_;
  conflict_policy policy_ = conflict_policy::latest;
  uint64_t conflicts_ = 0;
  bool deletes_approved_ = false;
  bool notified_ = false;
  bool failed_ = false;

public:
  /// Whether this run recorded a failure (the engine retries it soon).
  bool failed() const {
    return failed_;
  }
  const calendar_status& status() const {
    return status_;
  }
};

} // namespace

engine::engine(caf::actor_system& sys, caf::actor directory, storage::db& db,
               graph::client& graph, engine_config cfg)
    : sys_(sys)
    , directory_(std::move(directory))
    , db_(db)
    , graph_(graph)
    , cfg_(std::move(cfg))
    , pool_(std::make_unique<work_pool>(cfg_.threads)) {}

engine::~engine() {
  stop();
}

namespace {

/// Users with a sync request or state under `prefix` ("" = all tenants).
std::set<std::pair<uint64_t, uint64_t>> sync_users(const storage::db& db,
                                                   const std::string& prefix) {
  std::set<std::pair<uint64_t, uint64_t>> users;
  db.scan(column::sync, prefix, prefix.empty() ? "" : keys::prefix_end(prefix),
          [&](std::string_view k, std::string_view) {
            if (k.size() == 17)
              users.emplace(keys::get_be64(k, 0), keys::get_be64(k, 8));
            return true;
          });
  return users;
}

} // namespace

bool engine::busy(tenant_id org) const {
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto& [key, run] : runs_)
    if (key.first == org.value && run.running)
      return true;
  return false;
}

void engine::keep_reminder(tenant_id org, user_id user, calendar_state state) {
  if (!cfg_.reminders)
    return;
  user_key key{org.value, user.value};
  const bool on = state != calendar_state::disabled;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (on == (reminded_.count(key) > 0))
      return;
    if (on)
      reminded_.insert(key);
    else
      reminded_.erase(key);
  }
  entity_key target{entity_kind::calendar, org, user};
  if (!on) {
    caf::anon_send(cfg_.reminders, cancel_reminder{target});
    return;
  }
  auto interval = std::chrono::milliseconds(cfg_.reconcile_interval);
  caf::anon_send(cfg_.reminders,
                 reminder{target, reminder_kind::reconcile,
                          actors::spread_due(target, interval, cfg_.now_ms()),
                          interval.count()});
}

void engine::adopt(tenant_id org) {
  resume(keys::org(org));
}

void engine::start() {
  resume("");
  reconciler_ = std::thread([this] { reconcile_loop(); });
}

void engine::resume(const std::string& prefix) {
  // Every user with a calendar sync record gets their reconciliation
  // reminder (set again: the same phase, so a restart moves nothing).
  // Only those with something to do run now: a sync on its way in or out,
  // a failure to retry, or rows in their outbox or inbox (a notification
  // stored before a crash is in the inbox). The others wait for their
  // reminder, so a restart is no stampede.
  for (auto& [t, u] : sync_users(db_, prefix)) {
    tenant_id org{t};
    user_id user{u};
    std::string v;
    bool found = false;
    calendar_status st;
    if (db_.get(column::sync,
                keys::sync_state(org, user, entity_kind::calendar), v, found)
        || (found && !codec::decode(v, st))) {
      schedule(org, user, true); // the run reports what is wrong
      continue;
    }
    {
      std::lock_guard<std::mutex> guard{mtx_};
      auto& h = health_[{t, u}];
      h.state = st.state;
      h.subscription_expires_ms
          = st.subscription_id.empty() ? 0 : st.subscription_expires_ms;
    }
    keep_reminder(org, user, st.state);
    auto pending = [&](column cf) {
      bool any = false;
      auto p = keys::of_user(org, user);
      db_.scan(cf, p, keys::prefix_end(p),
               [&any](std::string_view, std::string_view) {
                 any = true;
                 return false;
               });
      return any;
    };
    sync_request req;
    bool has_request = false;
    if (!db_.get(column::sync, keys::sync_request_key(org, user), v,
                 has_request)
        && has_request && !codec::decode(v, req))
      has_request = false;
    const bool settled = st.state == calendar_state::active
                         || (st.state == calendar_state::disabled
                             && !(has_request && req.enabled));
    if (!settled || pending(column::sync_outbox) || pending(column::inbox))
      schedule(org, user, true);
  }
}

void engine::begin_stop() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stopping_ = true;
  }
  halt_ = true;
  cv_.notify_all();
}

void engine::stop() {
  // One caller stops; a second (the destructor after an explicit stop)
  // finds nothing left to do.
  std::lock_guard<std::mutex> once{stop_mtx_};
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (!pool_)
      return;
    stopping_ = true;
  }
  halt_ = true;
  cv_.notify_all();
  if (reconciler_.joinable())
    reconciler_.join();
  pool_.reset();
}

void engine::wanted(tenant_id org, user_id user) {
  schedule(org, user, false);
}

void engine::schedule(tenant_id org, user_id user, bool notified) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (stopping_ || !pool_)
    return;
  auto& r = runs_[{org.value, user.value}];
  r.notified = r.notified || notified;
  if (r.running) {
    r.again = true;
    return;
  }
  r.running = true;
  pool_->post([this, org, user] { run_loop(org, user); });
}

void engine::run_loop(tenant_id org, user_id user) {
  for (;;) {
    bool pull = false;
    bool full = false;
    int64_t queued_ms = 0;
    {
      std::unique_lock<std::mutex> g{mtx_};
      auto& me = runs_[{org.value, user.value}];
      if (stopping_ || (cfg_.owns && !cfg_.owns(org))) {
        runs_.erase({org.value, user.value});
        return;
      }
      // Back-to-back runs (a flood of notifications) keep a minimum gap,
      // so one user cannot spend their mailbox's Graph budget on delta
      // rounds; what arrives meanwhile coalesces into the next run. The
      // reconciler's timer posts the run when the gap has passed: this
      // pool thread must not sleep it away while other users wait.
      auto next = me.last_start + cfg_.min_run_gap;
      if (std::chrono::steady_clock::now() < next) {
        gap_waits_.emplace(next, std::make_pair(org.value, user.value));
        cv_.notify_all();
        return; // still running: what arrives meanwhile sets `again`
      }
      me.last_start = std::chrono::steady_clock::now();
      me.again = false;
      pull = me.notified;
      me.notified = false;
      queued_ms = me.queued_ms;
      me.queued_ms = 0;
      ++stats_.runs;
      full = full_rounds_.count({org.value, user.value}) > 0;
    }
    bool ok = false;
    try {
      ok = run_user(org, user, pull, full);
    } catch (const std::exception& e) {
      log::error(std::string{"sync: run failed: "} + e.what());
    }
    // Notifications that came before this run are applied by now (a
    // failed run's are not measured: its retry does not know them).
    if (ok && queued_ms != 0)
      metrics::node().sync_lag(metrics::sync_direction::to_crm,
                               (cfg_.now_ms() - queued_ms) / 1000.0);
    std::lock_guard<std::mutex> g{mtx_};
    // A failed run (Graph down, a timeout) is tried again soon, doubling
    // the pause up to the reconciliation interval; a good one clears it.
    if (ok) {
      retries_.erase({org.value, user.value});
      if (full)
        full_rounds_.erase({org.value, user.value});
    } else {
      auto& r = retries_[{org.value, user.value}];
      auto pause = std::min<std::chrono::milliseconds>(
          std::chrono::milliseconds(int64_t{2000} << std::min(r.attempt, 10)),
          cfg_.reconcile_interval);
      r.due = std::chrono::steady_clock::now() + pause;
      ++r.attempt;
    }
    auto& run = runs_[{org.value, user.value}];
    if (!run.again || stopping_) {
      runs_.erase({org.value, user.value});
      return;
    }
  }
}

bool engine::run_user(tenant_id org, user_id user, bool notified, bool full) {
  user_sync s{sys_, directory_, db_, graph_, cfg_, halt_, org, user};
  s.run(notified, full);
  {
    std::lock_guard<std::mutex> guard{mtx_};
    auto& h = health_[{org.value, user.value}];
    h.state = s.status().state;
    h.subscription_expires_ms = s.status().subscription_id.empty()
                                    ? 0
                                    : s.status().subscription_expires_ms;
  }
  keep_reminder(org, user, s.status().state);
  return !s.failed();
}

void engine::resync(tenant_id org, user_id user) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    full_rounds_.insert({org.value, user.value});
  }
  schedule(org, user, true);
}

user_timers engine::timers(tenant_id org, user_id user) const {
  user_timers out;
  auto wall = [this](std::chrono::steady_clock::time_point t) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        t - std::chrono::steady_clock::now());
    return cfg_.now_ms() + std::max<int64_t>(0, left.count());
  };
  {
    std::lock_guard<std::mutex> guard{mtx_};
    user_key key{org.value, user.value};
    if (auto r = runs_.find(key); r != runs_.end()) {
      out.running = r->second.running;
      out.again = r->second.again;
    }
    if (auto r = retries_.find(key); r != retries_.end()) {
      out.retry_at_ms = wall(r->second.due);
      out.retry_attempt = r->second.attempt;
    }
    out.full_round = full_rounds_.count(key) > 0;
    if (reminded_.count(key) > 0)
      out.reconcile_at_ms = actors::spread_due(
          entity_key{entity_kind::calendar, org, user},
          std::chrono::milliseconds(cfg_.reconcile_interval), cfg_.now_ms());
  }
  std::string v;
  bool found = false;
  calendar_status st;
  if (!db_.get(column::sync, keys::sync_state(org, user, entity_kind::calendar),
               v, found)
      && found && codec::decode(v, st) && !st.subscription_id.empty())
    out.renew_at_ms
        = st.subscription_expires_ms
          - std::chrono::milliseconds(cfg_.subscription_lifetime).count() / 2;
  return out;
}

void engine::reconcile_loop() {
  const auto tick = std::min<std::chrono::milliseconds>(
      std::chrono::milliseconds(500), cfg_.reconcile_interval);
  for (;;) {
    std::vector<user_key> due;
    {
      std::unique_lock<std::mutex> lock{mtx_};
      // Wakes at the next tick or the first run gap's end, whichever
      // comes first; a gap that ends earlier than that wakes it too.
      auto wake = std::chrono::steady_clock::now() + tick;
      if (!gap_waits_.empty())
        wake = std::min(wake, gap_waits_.begin()->first);
      cv_.wait_until(lock, wake, [this, wake] {
        return stopping_
               || (!gap_waits_.empty() && gap_waits_.begin()->first < wake);
      });
      if (stopping_)
        return;
      auto now = std::chrono::steady_clock::now();
      while (!gap_waits_.empty() && gap_waits_.begin()->first <= now) {
        auto key = gap_waits_.begin()->second;
        gap_waits_.erase(gap_waits_.begin());
        pool_->post([this, key] {
          run_loop(tenant_id{key.first}, user_id{key.second});
        });
      }
      for (auto& [key, r] : retries_)
        if (r.due <= now) {
          due.push_back(key);
          r.due = now + cfg_.reconcile_interval; // until the run reports
        }
    }
    for (auto& [t, u] : due)
      wanted(tenant_id{t}, user_id{u});
  }
}

ingest_result engine::ingest(std::string_view body, bool lifecycle) {
  // The body is bounded by the server's body limit, so decoding every item
  // before counting them is bounded too.
  std::vector<notification> items;
  if (!parse_notifications(body, items))
    return ingest_result::malformed;
  if (items.size() > cfg_.max_notifications_per_post)
    return ingest_result::too_many;
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
    if (db_.get(column::lookup, keys::subscription_lookup(n.subscription_id), v,
                found)
        || !found || v.size() < 16
        || !crypto::equal_secret(std::string_view{v}.substr(16),
                                 n.client_state)) {
      // Unknown subscription or wrong clientState: never applied.
      ++rejected;
      continue;
    }
    tenant_id org{keys::get_be64(v, 0)};
    user_id user{keys::get_be64(v, 8)};
    char kind = inbox_change;
    if (lifecycle) {
      auto& event = n.lifecycle_event;
      kind = event == "subscriptionRemoved"       ? inbox_removed
             : event == "reauthorizationRequired" ? inbox_reauthorize
                                                  : inbox_missed;
    }
    // One row per user and kind: notifications are hints, and a flood of
    // them while a user's sync is stuck must not grow the inbox.
    b.put(column::inbox,
          keys::user_item(org, user, static_cast<unsigned char>(kind)),
          std::string(1, kind));
    users.emplace(org.value, user.value);
    ++accepted;
  }
  if (!b.empty() && db_.write(b))
    return ingest_result::unavailable;
  auto kind = lifecycle ? metrics::notification_kind::lifecycle
                        : metrics::notification_kind::change;
  metrics::node().notifications(kind, metrics::notification_outcome::received,
                                accepted + rejected);
  metrics::node().notifications(
      kind, metrics::notification_outcome::acknowledged, accepted);
  metrics::node().notifications(kind, metrics::notification_outcome::rejected,
                                rejected);
  auto now = cfg_.now_ms();
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stats_.notifications_accepted += accepted;
    stats_.notifications_rejected += rejected;
    for (auto& u : users) {
      auto& r = runs_[u];
      if (r.queued_ms == 0)
        r.queued_ms = now;
    }
  }
  for (auto& [t, u] : users)
    schedule(tenant_id{t}, user_id{u}, true);
  return ingest_result::stored;
}

engine_stats engine::stats() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return stats_;
}

sync_health engine::health() const {
  auto now = cfg_.now_ms();
  auto soon = now + 3600 * 1000;
  sync_health out;
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto& [key, h] : health_) {
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

caf::actor spawn_reminder_bridge(caf::actor_system& sys,
                                 std::shared_ptr<std::atomic<engine*>> engine) {
  return sys.spawn([engine](caf::event_based_actor*) -> caf::behavior {
    return {
        [engine](const reminder_due& due) {
          auto* e = engine->load();
          if (e != nullptr && due.target.kind == entity_kind::calendar
              && due.kind == reminder_kind::reconcile)
            e->wanted(due.target.tenant, due.target.user);
        },
    };
  });
}

} // namespace crmsync::sync
