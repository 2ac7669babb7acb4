// The calendar actor's run (sync/calendar/): one pass of one user's sync
// state machine, declared here and defined by concern beside it:
//
//   run.cpp           the run's frame: loading and saving, failures and
//                     blocks, refused events, links
//   initial.cpp       enabling (the product's calendar) and the initial sync
//   to_office365.cpp  an active user's round, the outbox pushed to Office
//                     365, conflicts
//   to_crm.cpp        delta read from Office 365 and applied to the CRM
//   mass_delete.cpp   the mass-delete guard and approvals
//   subscription.cpp  the change notifications' subscription
//   disable.cpp       disabling, and the calendar deleted in Office 365
//   actor.cpp         the actor around the runs: when a run starts, retries,
//                     reminders, passivation (sync/calendar_sync.hpp)
//
// The decisions each step takes are pure functions elsewhere in sync/
// (initial, apply, outbox, conflict, guard, inbox); this code does the I/O.
// Internal to crmsync_sync.
#pragma once

#include "actors/entities.hpp"
#include "actors/idle_check.hpp"
#include "actors/mailbox_slots.hpp"
#include "actors/reminders.hpp"
#include "actors/send_within.hpp"
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
#include "storage/teardown_rows.hpp"
#include "sync/apply.hpp"
#include "sync/calendar_sync.hpp"
#include "sync/conflict.hpp"
#include "sync/errors.hpp"
#include "sync/graph_event.hpp"
#include "sync/guard.hpp"
#include "sync/inbox.hpp"
#include "sync/initial.hpp"
#include "sync/outbox.hpp"
#include <algorithm>
#include <caf/actor_system.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/make_message.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <optional>
#include <set>
#include <vector>

namespace crmsync::sync {

/// A continuation of a run: what to do with an answer that arrived on a
/// Graph I/O thread, handed to the actor as a message so that it runs in
/// the actor's context. Local only (never crosses the wire).
struct step {
  std::function<void()> fn;
};

} // namespace crmsync::sync

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crmsync::sync::step)

namespace crmsync::sync {

namespace calendar {

namespace keys = storage::keys;
namespace codec = storage::codec;
using storage::column;
using namespace crmsync::atom;
using next_fn = std::function<void()>;

/// A 404 that says the resource is gone; a 404 MailboxNotEnabledForRESTAPI
/// is a blocked mailbox instead (sync/errors.hpp).
inline bool is_not_found(const graph::error& e) {
  return classify(e, target::calendar).what == disposition::gone;
}

/// The status a decision (sync/outbox.hpp, sync/apply.hpp) reads from a
/// failed call: 404 only when is_not_found says the thing is gone.
inline int failed_status(const graph::error& e) {
  if (is_not_found(e))
    return 404;
  return e.status == 404 ? 0 : e.status;
}

/// Office 365 refuses this event for good (sync/errors.hpp): retrying
/// cannot help, and it must not hold up the ones after. Access and mailbox
/// errors are not such refusals: a change made meanwhile must wait for
/// them to clear, not be dropped.
inline bool refused_for_good(const graph::error& e) {
  return classify(e, target::event).what == disposition::item_refused;
}

/// Refused events kept per user, so that the record stays small.
constexpr size_t max_skipped = 100;

/// Most delta pages one round reads (a runaway nextLink chain).
constexpr size_t max_delta_pages = 10000;

/// Calls `body(i, next)` for i in [0, n), each once the one before called
/// its `next`, then `done`. A body that calls `next` before it returns
/// continues the loop, not the stack, however many do in a row; one that
/// never calls it ends the loop there (the run ended).
class step_loop : public std::enable_shared_from_this<step_loop> {
public:
  using body_fn = std::function<void(size_t, next_fn)>;

  static void run(size_t n, body_fn body, next_fn done) {
    auto loop = std::make_shared<step_loop>();
    loop->n_ = n;
    loop->body_ = std::move(body);
    loop->done_ = std::move(done);
    loop->go();
  }

private:
  void go() {
    while (i_ < n_) {
      looping_ = true;
      ready_ = false;
      auto me = shared_from_this();
      body_(i_, [me] {
        me->ready_ = true;
        if (!me->looping_) {
          ++me->i_;
          me->go();
        }
      });
      looping_ = false;
      if (!ready_)
        return; // answered later: its next() goes on
      ++i_;
    }
    auto done = std::move(done_);
    done();
  }

  size_t i_ = 0;
  size_t n_ = 0;
  bool looping_ = false;
  bool ready_ = false;
  body_fn body_;
  next_fn done_;
};

/// One run of one user's sync: loads what it needs, does one pass of the
/// state machine and writes what changed. Lives in its calendar actor and
/// runs only in the actor's context: each Graph answer is handed back as
/// a `step` message, each tenant actor answer through request/then. Every
/// continuation holds the run, so the run outlives each of its steps.
class calendar_run : public std::enable_shared_from_this<calendar_run> {
public:
  /// Called once, when the run ended: whether it recorded a failure, and
  /// the status it left.
  using end_fn = std::function<void(bool failed, const calendar_status&)>;

  calendar_run(caf::event_based_actor* self, sync_context& ctx,
               actors::ask_deadlines& asks, caf::actor& mailbox, tenant_id org,
               user_id user, end_fn on_end)
      : self_(self)
      , ctx_(ctx)
      , asks_(asks)
      , mailbox_(mailbox)
      , cfg_(ctx.cfg)
      , org_(org)
      , user_(user)
      , trace_{{}, org.str(), user.str()}
      , on_end_(std::move(on_end)) {}

  /// `notified`: a notification arrived since the last run, so delta is
  /// read even if its inbox row was taken by the run before. `full`: a
  /// resync (the whole window is read again, as after a 410).
  void start(bool notified, bool full);

private:
  // -- the run's frame --------------------------------------------------------

  bool halted() const;

  void end();

  /// Hands a Graph callback's result to this run, in the actor.
  template <class T>
  graph::callback<T> in_actor(std::function<void(graph::result<T>&)> k) {
    auto handle = caf::actor_cast<caf::actor>(self_);
    auto me = shared_from_this();
    return [handle, me, k = std::move(k)](graph::result<T> r) {
      caf::anon_send(handle, step{[me, k, r = std::move(r)]() mutable {
                       k(r);
                     }});
    };
  }

  /// Starts a Graph call (`issue`) once the node's governor grants a
  /// permit (none configured: at once) and, for a call against the user's
  /// mailbox (`on_mailbox`), once the mailbox actor grants one of its
  /// slots (actors/mailbox.cpp), which goes back as soon as Graph
  /// answered. Without a permit or a slot in time, `k` gets a failure that
  /// the run treats as throttling (it is retried).
  template <class T>
  void governed(std::function<void(graph::callback<T>)> untraced_issue,
                std::function<void(graph::result<T>&)> untraced_k,
                bool on_mailbox = true, uint32_t weight = 1) {
    // The permit and the slot answer in response handlers, outside the
    // actor's handlers: the call (whose failure the Graph client logs
    // under the context it was started in) and a refusal keep naming
    // the organization and the user. (The run's own context, held through
    // the run: copying it into each continuation cost allocations.)
    auto me = shared_from_this();
    std::function<void(graph::callback<T>)> issue
        = [me, untraced_issue](graph::callback<T> d) {
            log::scope in{me->trace()};
            untraced_issue(std::move(d));
          };
    std::function<void(graph::result<T>&)> k
        = [me, untraced_k](graph::result<T>& r) {
            log::scope in{me->trace()};
            untraced_k(r);
          };
    auto done = in_actor<T>(k);
    std::function<void()> go = [issue, done] {
      issue(done);
    };
    if (on_mailbox && ctx_.directory)
      go = [me, issue, k, weight] {
        me->with_mailbox_slot<T>(issue, k, weight);
      };
    if (!cfg_.governor)
      return go();
    if (cfg_.governor_gate && cfg_.governor_gate->try_take(org_.value))
      return go();
    auto wait = cfg_.permit_timeout;
    auto refused = [me, k] {
      graph::result<T> r;
      r.failure.status = 429;
      r.failure.code = "governor";
      r.failure.message = "the node's Graph governor gave no "
                          "permit in time (request rate capped)";
      k(r);
    };
    // The permit's deadline is the actor's (ask_deadlines.hpp), not a
    // CAF request timeout: no clock wake-ups for a permit granted at once.
    auto* asks = &asks_;
    auto id = asks->add(self_, wait, refused);
    self_
        ->request(cfg_.governor, caf::infinite,
                  permit_request{org_, cfg_.now_ms() + wait.count()})
        .then(
            [me, go, asks, id](graph_permit&) {
              if (asks->answered(id))
                go();
            },
            [me, refused, asks, id](caf::error&) {
              if (asks->answered(id))
                refused();
            });
  }

  /// Asks the user's mailbox actor for a slot that counts `weight`
  /// requests in its window, issues the call with it and gives it back when
  /// the answer reaches this actor, before `k` sees it. (Given back from
  /// the Graph I/O thread, the ticket woke a worker of its own per call;
  /// should this actor stop first, the mailbox takes its slots back.)
  template <class T>
  void with_mailbox_slot(std::function<void(graph::callback<T>)> issue,
                         std::function<void(graph::result<T>&)> k,
                         uint32_t weight) {
    auto me = shared_from_this();
    actors::request_mailbox_slot(
        self_, ctx_.directory, entity_key{entity_kind::mailbox, org_, user_},
        false, weight, cfg_.permit_timeout, cfg_.now_ms(),
        [me, issue, k](actors::slot_release release) {
          issue(me->in_actor<T>([me, release, k](graph::result<T>& r) {
            release.within(me->self_);
            k(r);
          }));
        },
        [me, k](bool busy) {
          graph::result<T> r;
          r.failure.status = 429;
          r.failure.code = "mailbox_budget";
          r.failure.message
              = busy ? "the mailbox's Graph budget gave no slot in time (4 "
                       "requests in flight at most)"
                     : "the mailbox actor could not be reached";
          k(r);
        },
        &asks_, &mailbox_);
  }

  void call(graph::call_spec spec,
            std::function<void(graph::result<graph::response>&)> k);

  /// Sends one request a decision asked for, against the user's mailbox.
  void send(const graph_request& r,
            std::function<void(graph::result<graph::response>&)> k);

  graph::call_spec mailbox_call(std::string method, std::string path,
                                std::string body = {}) const;

  /// A call that touches no mailbox (subscriptions).
  graph::call_spec tenant_call(std::string method, std::string path,
                               std::string body = {}) const;

  /// Asks the tenant actor; `ok` with its answer, `bad` with the reason.
  template <class Reply, class Msg>
  void ask_tenant(Msg msg, std::function<void(Reply&)> ok,
                  std::function<void(const api_error&)> bad) {
    auto me = shared_from_this();
    self_
        ->request(ctx_.directory, cfg_.actor_timeout, route_atom_v,
                  entity_key{entity_kind::tenant, org_, user_id{}},
                  caf::make_message(std::move(msg)))
        .then(
            [me, ok](Reply& r) {
              log::scope in{me->trace()};
              ok(r);
            },
            [me, bad](caf::error& e) {
              log::scope in{me->trace()};
              bad(to_api_error(e));
            });
  }

  /// What the run's lines say of it: the organization and the user.
  const log::context& trace() const;

  // -- loading and saving -----------------------------------------------------

  /// The records a run starts from, read at once (one MultiGet instead of
  /// a read per record): the sync request, the calendar's status, the
  /// user and the organization, a pending teardown and an
  /// administrator's approval.
  bool load();

  /// Puts the status into `b` and returns what it put. What the store
  /// holds is unknown until the caller says the batch was written
  /// (stored_status_).
  std::string put_status(storage::write_batch& b);

  /// Writes the status unless the store holds it as it is (a round that
  /// stored it with its last change has nothing to add).
  void save_status();

  void fail(const std::string& why);

  /// Keeps a failed Graph call's ids in the status (saved with it).
  void note_failure(const graph::error& e);

  void fail(const std::string& what, const graph::error& e);

  /// Office 365 blocks this user (access denied, no mailbox, token
  /// refused): every change stays queued, the sync shows "error" with the
  /// reason and is retried with backoff like any failed run; an
  /// administrator hears of it once per block (audit entry and metric).
  void block(const std::string& why, std::string_view reason);

  /// The person's mailbox is gone or disabled in Office 365 (they left or
  /// were blocked): the tenant deactivates the CRM user and tells the
  /// administrators (issue 14). Once per block, with the alert.
  void offboard(const std::string& why);

  /// A run got through after a block: the alert ends (audited too).
  void close_alert();

  void put_audit(storage::write_batch& b, std::string action,
                 std::string detail);

  // -- refused events ---------------------------------------------------------

  /// Records that Office 365 refuses this version of the event for good;
  /// shown in the user's sync status until the event syncs or goes.
  void skip(const event_record& e, const graph::error& err);

  void unskip(event_id e);

  // -- links ------------------------------------------------------------------

  bool find_link(event_id e, sync_link& out);

  /// The CRM event a Graph event id is linked to, if any.
  bool event_of_graph_id(const std::string& gid, event_id& out);

  void put_link(storage::write_batch& b, const sync_link& l);

  void del_link(storage::write_batch& b, const sync_link& l);

  bool load_event(event_id id, event_record& out, bool& found);

  /// The CRM event (when `with_event`) and its link, read at once; false
  /// when the read failed or the event's record is damaged (a damaged
  /// link reads as none, as find_link says).
  bool load_event_and_link(event_id id, bool with_event, event_record& e,
                           bool& exists, sync_link& l, bool& linked);

  calendar_paths paths() const;

  // -- enabling ---------------------------------------------------------------

  /// R14: the product's calendar in the user's mailbox. A crash between
  /// Graph's answer and the status write would leave an orphan: the state
  /// says a creation was under way, and the calendar it made is adopted
  /// rather than made twice.
  void create_calendar(next_fn next);

  /// Looks for a calendar named "CRM" page by page; none (or a failed
  /// listing): a new one is made.
  void adopt_calendar(std::string url, next_fn next);

  void make_calendar(next_fn next);

  // -- the initial sync -------------------------------------------------------

  struct initial_round {
    std::vector<event_record> todo;
    std::vector<std::vector<graph_request>> batches;
    size_t next = 0;      ///< the next batch to send
    size_t in_flight = 0; ///< batches sent, not answered
    bool stop = false;
    bool gone = false;
    bool store_failed = false;
    /// What stopped the round; nothing it answered counts as done.
    std::optional<graph::error> failure;
    next_fn then;
  };

  /// R16-R19: the user's own eligible events in the order and number
  /// initial_selection chooses, sent in $batch requests (initial_rounds),
  /// `parallel_batches` of them in flight and pipelined: the next batch
  /// goes as soon as one is answered and recorded. Resumable: linked
  /// events are skipped and a repeated create is recognised by its
  /// transactionId.
  void initial_sync(next_fn next);

  void send_batches();

  void batch_answered(size_t n,
                      graph::result<std::vector<graph::batch_response>>& res);

  void initial_done();

  // -- an active user's round -------------------------------------------------

  void active_round();

  // -- CRM -> Office 365 ------------------------------------------------------

  void drain_outbox(next_fn next);

  /// Sends the outbox's entries one after the other, in write order.
  void push_entries(next_fn next);

  /// Sends outbox entry `i` (plan_push); what it learned goes into `b`.
  /// `next` when the entry is done with (sent, or refused for good and
  /// recorded); otherwise the run ends here.
  void push_change(size_t i, storage::write_batch& b, next_fn next);

  /// Sends the CRM's version of `e` as an update of its linked event
  /// (If-Match the link's changeKey); a 412 meets the conflict policy.
  void push_update(const sync_change& c, std::shared_ptr<event_record> e,
                   std::shared_ptr<sync_link> link, storage::write_batch& b,
                   next_fn next);

  /// An update's answer (or the answer to the CRM's side of a conflict).
  void updated(const sync_change& c, std::shared_ptr<event_record> e,
               std::shared_ptr<sync_link> link, storage::write_batch& b,
               graph::result<graph::response>& r, next_fn next);

  /// Sends the create of `e`. `recreate`: its linked event met 404 (an
  /// update's answer).
  void push_create(const sync_change& c, const graph_request& req,
                   std::shared_ptr<event_record> e, storage::write_batch& b,
                   next_fn next, bool recreate);

  // -- conflicts --------------------------------------------------------------

  /// Changed in Outlook too since the last sync: re-read Office 365's
  /// version and let the tenant's policy choose.
  void conflict(const sync_change& c, std::shared_ptr<event_record> e,
                std::shared_ptr<sync_link> link, storage::write_batch& b,
                next_fn next);

  void record_conflict(storage::write_batch& b, const sync_conflict& c);

  /// Office 365's version wins: it becomes the CRM's, nothing is sent.
  void keep_office365(const conflict_resolution& r,
                      std::shared_ptr<sync_link> link,
                      const graph_event& theirs, storage::write_batch& b,
                      next_fn next);

  // -- Office 365 -> CRM ------------------------------------------------------

  std::string initial_delta_url() const;

  /// One delta round from the stored link (or a fresh one), applying every
  /// item; the new link and the applied changes are stored together per
  /// page.
  void pull(next_fn next);

  /// The whole round first: the mass-delete guard judges it as a whole.
  void read_page(std::string url);

  void pages_read();

  /// Applies the pages in order; each page's changes, and with the last
  /// its delta link, are stored in one batch.
  void apply_pages();

  void remove_unlisted();

  void pull_done();

  /// Links of events inside the delta window whose Office 365 id is not in
  /// `listed`.
  std::vector<sync_link>
  links_missing_from(const std::set<std::string>& listed);

  /// A linked event Office 365 reports removed, or that a full round no
  /// longer lists: deleted in the CRM only if a GET confirms it is gone
  /// (it may merely have moved out of the window).
  void remove_if_gone(const sync_link& link, storage::write_batch& b,
                      next_fn next);

  void apply_item(const std::string& item, storage::write_batch& b,
                  next_fn next);

  /// An event crmsync created (its transactionId names the CRM event) that
  /// no link knows: the link of its create was lost (a primary that died
  /// before its write of the link was replicated). Made again from Office
  /// 365, it would be a second CRM event, or the CRM event that was
  /// deleted since, back. If the user's CRM event still exists, its outbox
  /// row links it (the repeated create is answered with this event), see
  /// apply_item; if it is gone, so goes this copy.
  void remove_own_copy(const graph_event& g, event_id ours, next_fn next);

  /// Sends a DELETE of an event (`req`); gone already counts as done. Then
  /// counts it and calls `done`; a failure ends the run.
  void delete_in_office365(const graph_request& req, next_fn done);

  // -- the mass-delete guard --------------------------------------------------

  /// How many events are linked (synced) now.
  size_t linked_count();

  /// A run that would delete more than the configured share of the user's
  /// synced events stops in state "held" until an administrator approves
  /// (crmsyncctl approve-deletes USER); false when held. `pending_creates`:
  /// the CRM's events this run creates in Office 365 (outbox rows waiting,
  /// as after a failover or an outage); they are part of the calendar the
  /// share is taken of, so a backlog of the user's own creates and
  /// deletes does not read as a mass delete.
  bool guard_deletes(size_t deletions, const char* where,
                     size_t pending_creates = 0);

  /// Counts applied deletions towards the guard's window.
  void note_deletions(size_t n);

  guard_config guard_settings() const;

  delete_window delete_window_of_status() const;

  void set_delete_window(const delete_window& w);

  /// The approval is used up once a run with it got through.
  void spend_approval();

  /// Reconciliation reminders come every interval; the last run ended a
  /// little after the previous one, so half an interval counts as due.
  bool reconcile_due() const;

  // -- subscription -----------------------------------------------------------

  /// Creates the subscription, or renews it when half its life is gone.
  /// A failure is recorded; the round goes on to its end either way.
  void ensure_subscription(next_fn next);

  void subscribe(int64_t expires, next_fn next);

  void forget_subscription();

  // -- disabling --------------------------------------------------------------

  /// R20 (and R21 with `remote` false: the calendar is already gone): the
  /// subscription and the product's calendar go, with every event in it;
  /// CRM events stay; links, outbox and inbox are cleared.
  void disable(bool remote, next_fn next);

  /// R21: the product's calendar was deleted in Office 365. Ends the run.
  void calendar_gone();

  caf::event_based_actor* self_;
  sync_context& ctx_;
  actors::ask_deadlines& asks_; ///< the actor's (outlives the run)
  /// The user's mailbox actor as it last answered (the actor's), asked
  /// directly for the next slot; null: through the directory.
  caf::actor& mailbox_;
  const service_config& cfg_;
  tenant_id org_;
  user_id user_;
  log::context trace_; ///< the organization and the user, for log lines
  end_fn on_end_;
  bool ended_ = false;
  sync_request request_;
  calendar_status status_;
  std::string o365_tenant_;
  std::string oid_;
  /// Whether a teardown row named the tenant (Office 365 disconnected, or
  /// the organization being deleted).
  bool torn_down_ = false;
  conflict_policy policy_ = conflict_policy::latest;
  /// An administrator's approval of a held run is stored (load()): it
  /// stands until a run with it gets through, so a failure on the way does
  /// not hold the user again.
  bool approval_stored_ = false;
  bool deletes_approved_ = false;
  bool notified_ = false;
  bool failed_ = false;
  // The initial sync's round.
  std::unique_ptr<initial_round> round_;
  // The outbox being pushed.
  std::vector<std::pair<std::string, sync_change>> outbox_;
  /// What drain_outbox read for the outbox's first entry.
  struct entry_read {
    event_id event;
    event_record record;
    bool exists = false;
    sync_link link;
    bool linked = false;
  };
  std::optional<entry_read> first_read_;
  /// The status as the store holds it (encoded), when known: what
  /// save_status need not write again. Empty: unknown.
  std::string stored_status_;
  // The delta round being read and applied.
  std::vector<inbox_row> inbox_;
  std::vector<delta_page> pages_;
  std::vector<sync_link> unlisted_;
  std::optional<storage::write_batch> page_batch_;
  size_t removals_ = 0;
  bool restarted_ = false;
  bool full_ = false;
  next_fn pull_next_;
};

} // namespace calendar

} // namespace crmsync::sync
