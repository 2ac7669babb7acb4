#include "sync/calendar_sync.hpp"

#include <algorithm>
#include <optional>
#include <set>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/make_message.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <simdjson.h>

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
#include "sync/conflict.hpp"
#include "sync/errors.hpp"
#include "sync/graph_event.hpp"
#include "sync/guard.hpp"
#include "sync/inbox.hpp"
#include "sync/initial.hpp"
#include "sync/outbox.hpp"

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

namespace {

namespace keys = storage::keys;
namespace codec = storage::codec;
using storage::column;
using namespace crmsync::atom;
using next_fn = std::function<void()>;

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
  void start(bool notified, bool full) {
    notified_ = notified;
    if (!load()) {
      log::error("sync " + org_.str() + "/" + user_.str()
                 + ": cannot read its records; nothing done");
      failed_ = true;
      return end();
    }
    // Blocked the last time: this run tries again from where it was.
    calendar_state resumed;
    if (status_.state == calendar_state::error
        && from_string(status_.resume_state, resumed))
      status_.state = resumed;
    if (full) {
      status_.delta_link.clear();
      notified_ = true;
    }
    if (!request_.enabled) {
      if (status_.state != calendar_state::disabled)
        return disable(true, [this] { end(); });
      return end();
    }
    if (o365_tenant_.empty() || oid_.empty()) {
      fail("the user or organization is not linked to Office 365");
      return end();
    }
    // An approval stands until a run with it got through (a failure on
    // the way must not hold the user again).
    deletes_approved_ = approval_stored_;
    // An approved run reads delta whatever its inbox says: the round that
    // was held may have been the one a notification asked for.
    notified_ = notified_ || deletes_approved_;
    if (status_.state == calendar_state::held) {
      if (!deletes_approved_)
        return end(); // waiting for an administrator
      status_.deletes_in_window = 0;
      status_.state = calendar_state::active;
      status_.last_error.clear();
    }
    auto after_calendar = [this] {
      if (status_.state == calendar_state::initial_sync)
        return initial_sync([this] { active_round(); });
      active_round();
    };
    if (status_.office365_calendar_id.empty())
      return create_calendar(after_calendar);
    after_calendar();
  }

private:
  // -- the run's frame --------------------------------------------------------

  bool halted() const {
    return ctx_.halt.load();
  }

  void end() {
    if (ended_)
      return;
    ended_ = true;
    // A delta page partly applied when the run failed keeps what it did
    // (links of the events it made).
    if (page_batch_ && !page_batch_->empty())
      ctx_.db.write(*page_batch_);
    page_batch_.reset();
    auto done = std::move(on_end_);
    done(failed_, status_);
  }

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
            std::function<void(graph::result<graph::response>&)> k) {
    bool on_mailbox = !spec.mailbox.empty();
    governed<graph::response>(
        [this, spec = std::move(spec)](graph::callback<graph::response> done) {
          ctx_.graph.start(spec, std::move(done));
        },
        std::move(k), on_mailbox);
  }

  /// Sends one request a decision asked for, against the user's mailbox.
  void send(const graph_request& r,
            std::function<void(graph::result<graph::response>&)> k) {
    graph::call_spec spec;
    spec.tenant = o365_tenant_;
    spec.mailbox = oid_;
    spec.method = r.method;
    spec.path_or_url = r.url;
    spec.body = r.body;
    spec.headers = r.headers;
    call(std::move(spec), std::move(k));
  }

  graph::call_spec mailbox_call(std::string method, std::string path,
                                std::string body = {}) const {
    graph::call_spec spec;
    spec.tenant = o365_tenant_;
    spec.mailbox = oid_;
    spec.method = std::move(method);
    spec.path_or_url = std::move(path);
    spec.body = std::move(body);
    return spec;
  }

  /// A call that touches no mailbox (subscriptions).
  graph::call_spec tenant_call(std::string method, std::string path,
                               std::string body = {}) const {
    auto spec
        = mailbox_call(std::move(method), std::move(path), std::move(body));
    spec.mailbox.clear();
    return spec;
  }

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
  const log::context& trace() const {
    return trace_;
  }

  // -- loading and saving -----------------------------------------------------

  /// The records a run starts from, read at once (one MultiGet instead of
  /// a read per record): the sync request, the calendar's status, the
  /// user and the organization, a pending teardown and an
  /// administrator's approval.
  bool load() {
    status_.org = org_;
    status_.user = user_;
    auto request_key = keys::sync_request_key(org_, user_);
    auto status_key = keys::sync_state(org_, user_, entity_kind::calendar);
    auto user_key = keys::user(org_, user_);
    auto org_key = keys::org(org_);
    auto teardown_key = storage::teardown_rows::key(org_, user_);
    auto approval_key = keys::sync_approval_key(org_, user_);
    std::vector<std::optional<std::string>> v;
    if (ctx_.db.multi_get({{column::sync, request_key},
                           {column::sync, status_key},
                           {column::users, user_key},
                           {column::orgs, org_key},
                           {column::sync, teardown_key},
                           {column::sync, approval_key}},
                          v))
      return false;
    auto& request = v[0];
    auto& status = v[1];
    auto& user = v[2];
    auto& org = v[3];
    auto& teardown = v[4];
    auto& approval = v[5];
    if (request && !codec::decode(*request, request_))
      return false;
    if (status && !codec::decode(*status, status_))
      return false;
    if (status)
      stored_status_ = std::move(*status);
    user_record u;
    if (user && codec::decode(*user, u))
      oid_ = u.o365_user;
    org_record o;
    if (org && codec::decode(*org, o)) {
      o365_tenant_ = o.o365_tenant;
      policy_ = o.conflicts;
    }
    // Office 365 was disconnected (or the organization is being deleted):
    // the calendar and subscription to remove live where the row says.
    std::string td_tenant, td_user;
    torn_down_
        = teardown
          && storage::teardown_rows::parse(*teardown, td_tenant, td_user);
    if (torn_down_) {
      o365_tenant_ = std::move(td_tenant);
      oid_ = std::move(td_user);
    }
    approval_stored_ = approval.has_value();
    return true;
  }

  /// Puts the status into `b` and returns what it put. What the store
  /// holds is unknown until the caller says the batch was written
  /// (stored_status_).
  std::string put_status(storage::write_batch& b) {
    auto encoded = codec::encode(status_);
    b.put(column::sync, keys::sync_state(org_, user_, entity_kind::calendar),
          encoded);
    stored_status_.clear();
    return encoded;
  }

  /// Writes the status unless the store holds it as it is (a round that
  /// stored it with its last change has nothing to add).
  void save_status() {
    if (!stored_status_.empty() && codec::encode(status_) == stored_status_)
      return;
    storage::write_batch b;
    auto encoded = put_status(b);
    if (ctx_.db.write(b))
      log::error("sync: cannot save the status of " + user_.str());
    else
      stored_status_ = std::move(encoded);
  }

  void fail(const std::string& why) {
    // Calls cut short by a shutdown are not the sync's failures: the next
    // start resumes where this run stopped.
    if (halted())
      return;
    failed_ = true;
    status_.last_error = why;
    if (status_.state == calendar_state::disabled)
      status_.state = calendar_state::error;
    save_status();
    log::warn("sync " + org_.str() + "/" + user_.str() + ": " + why);
  }

  /// Keeps a failed Graph call's ids in the status (saved with it).
  void note_failure(const graph::error& e) {
    if (e.client_request_id.empty())
      return; // never reached the wire: nothing to quote to Microsoft
    auto& f = status_.last_failure;
    f.at_ms = cfg_.now_ms();
    f.status = e.status;
    f.code = e.code;
    f.client_request_id = e.client_request_id;
    f.request_id = e.request_id;
    f.date = e.date;
  }

  void fail(const std::string& what, const graph::error& e) {
    note_failure(e);
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
    if (halted())
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
      if (reason == "mailbox_not_enabled")
        offboard(why);
    }
    put_status(b);
    if (ctx_.db.write(b))
      log::error("sync: cannot save the status of " + user_.str());
    log::warn("sync " + org_.str() + "/" + user_.str() + ": blocked ("
              + status_.alert + "): " + why);
  }

  /// The person's mailbox is gone or disabled in Office 365 (they left or
  /// were blocked): the tenant deactivates the CRM user and tells the
  /// administrators (issue 14). Once per block, with the alert.
  void offboard(const std::string& why) {
    offboard_user cmd;
    cmd.user = user_;
    cmd.reason = "the Office 365 mailbox is gone or disabled: " + why;
    ask_tenant<user_record>(
        std::move(cmd), [](user_record&) {},
        [this](const api_error& err) {
          log::warn("sync " + org_.str() + "/" + user_.str()
                    + ": cannot deactivate the offboarded user: "
                    + err.message);
        });
  }

  /// A run got through after a block: the alert ends (audited too).
  void close_alert() {
    storage::write_batch b;
    put_audit(b, "sync.recovered",
              "calendar sync of user " + user_.str() + " works again after "
                  + status_.alert);
    status_.alert.clear();
    status_.resume_state.clear();
    if (ctx_.db.write(b))
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
    note_failure(err);
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

  // -- links ------------------------------------------------------------------

  bool find_link(event_id e, sync_link& out) {
    std::string v;
    bool found = false;
    return !ctx_.db.get(column::links, keys::link(org_, user_, e), v, found)
           && found && codec::decode(v, out);
  }

  /// The CRM event a Graph event id is linked to, if any.
  bool event_of_graph_id(const std::string& gid, event_id& out) {
    std::string v;
    bool found = false;
    if (ctx_.db.get(column::lookup, keys::graph_event_lookup(gid), v, found)
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
    if (ctx_.db.get(column::events, keys::event(org_, id), v, found))
      return false;
    return !found || codec::decode(v, out);
  }

  /// The CRM event (when `with_event`) and its link, read at once; false
  /// when the read failed or the event's record is damaged (a damaged
  /// link reads as none, as find_link says).
  bool load_event_and_link(event_id id, bool with_event, event_record& e,
                           bool& exists, sync_link& l, bool& linked) {
    auto link_key = keys::link(org_, user_, id);
    auto event_key = keys::event(org_, id);
    std::vector<storage::key_ref> wanted{{column::links, link_key}};
    if (with_event)
      wanted.push_back({column::events, event_key});
    std::vector<std::optional<std::string>> v;
    exists = false;
    linked = false;
    if (ctx_.db.multi_get(wanted, v))
      return false;
    linked = v[0] && codec::decode(*v[0], l);
    if (!with_event || !v[1])
      return true;
    exists = true;
    return codec::decode(*v[1], e);
  }

  calendar_paths paths() const {
    return calendar_paths{oid_, status_.office365_calendar_id};
  }

  // -- enabling ---------------------------------------------------------------

  /// R14: the product's calendar in the user's mailbox. A crash between
  /// Graph's answer and the status write would leave an orphan: the state
  /// says a creation was under way, and the calendar it made is adopted
  /// rather than made twice.
  void create_calendar(next_fn next) {
    if (status_.state != calendar_state::enabling)
      return make_calendar(std::move(next));
    adopt_calendar("/users/" + oid_ + "/calendars?$select=id,name",
                   std::move(next));
  }

  /// Looks for a calendar named "CRM" page by page; none (or a failed
  /// listing): a new one is made.
  void adopt_calendar(std::string url, next_fn next) {
    governed<graph::page>(
        [this, url = std::move(url)](graph::callback<graph::page> done) {
          ctx_.graph.start_page(o365_tenant_, url, std::move(done));
        },
        [this, next](graph::result<graph::page>& r) {
          if (!r.ok)
            return make_calendar(next);
          simdjson::dom::parser parser;
          for (auto& item : r.value.items) {
            simdjson::dom::element v;
            std::string_view id, name;
            if (parser.parse(item).get(v) || v["id"].get_string().get(id)
                || v["name"].get_string().get(name) || name != "CRM")
              continue;
            status_.office365_calendar_id = std::string{id};
            status_.state = calendar_state::initial_sync;
            status_.last_error.clear();
            save_status();
            return next();
          }
          if (r.value.next_link.empty())
            return make_calendar(next);
          adopt_calendar(r.value.next_link, next);
        });
  }

  void make_calendar(next_fn next) {
    status_.state = calendar_state::enabling;
    save_status();
    call(mailbox_call("POST", "/users/" + oid_ + "/calendars",
                      R"({"name":"CRM"})"),
         [this, next](graph::result<graph::response>& r) {
           if (!r.ok) {
             fail("creating the CRM calendar in Office 365 failed", r.failure);
             return end();
           }
           std::string id, ck;
           if (!read_id_and_change_key(r.value.body, id, ck)) {
             fail("Office 365 answered the calendar creation without an id");
             return end();
           }
           status_.office365_calendar_id = id;
           status_.state = calendar_state::initial_sync;
           status_.last_error.clear();
           status_.done = 0;
           status_.total = 0;
           save_status();
           next();
         });
  }

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
  void initial_sync(next_fn next) {
    std::vector<event_record> candidates;
    auto prefix = keys::events_of_owner(org_, user_);
    bool bad = false;
    auto err
        = ctx_.db.scan(column::event_index, prefix, keys::prefix_end(prefix),
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
      return end();
    }
    auto chosen = initial_selection(std::move(candidates), user_, cfg_.now_ms(),
                                    cfg_.max_initial_events);
    status_.total = chosen.size();
    round_ = std::make_unique<initial_round>();
    size_t done = 0;
    for (auto& e : chosen) {
      sync_link l;
      if (find_link(e.id, l))
        ++done;
      else
        round_->todo.push_back(e);
    }
    status_.done = done;
    save_status();
    round_->batches = initial_rounds(round_->todo, paths());
    round_->then = std::move(next);
    send_batches();
  }

  void send_batches() {
    auto& r = *round_;
    while (r.in_flight < std::max<size_t>(1, cfg_.parallel_batches) && !r.stop
           && !halted() && r.next < r.batches.size()) {
      size_t n = r.next++;
      std::vector<graph::batch_request> reqs;
      for (auto& q : r.batches[n])
        reqs.push_back(graph::batch_request{std::to_string(reqs.size() + 1),
                                            q.method, q.url, q.body});
      ++r.in_flight;
      using answers = std::vector<graph::batch_response>;
      // Outlook counts each request of the batch against the mailbox.
      auto weight = static_cast<uint32_t>(reqs.size());
      governed<answers>(
          [this, reqs = std::move(reqs)](graph::callback<answers> done) {
            ctx_.graph.start_batch(o365_tenant_, oid_, reqs, std::move(done));
          },
          [this, n](graph::result<answers>& a) { batch_answered(n, a); }, true,
          weight);
    }
    if (r.in_flight == 0)
      initial_done();
  }

  void batch_answered(size_t n,
                      graph::result<std::vector<graph::batch_response>>& res) {
    auto& r = *round_;
    --r.in_flight;
    if (!res.ok) {
      if (is_not_found(res.failure))
        r.gone = true;
      else if (!r.failure)
        r.failure = res.failure;
      r.stop = true;
    } else if (!r.stop) {
      size_t first = std::min(n * batch_limit, r.todo.size());
      size_t last = std::min(first + batch_limit, r.todo.size());
      std::vector<event_record> sent(r.todo.begin() + first,
                                     r.todo.begin() + last);
      auto outcome = judge_initial_batch(sent, res.value);
      storage::write_batch b;
      for (auto& l : outcome.linked) {
        put_link(b, l);
        unskip(l.event);
        ++status_.done;
        ++status_.out_created;
      }
      for (auto& [e, err] : outcome.refused) {
        ++status_.done; // skipped and recorded; the next ones go on
        skip(e, err);
      }
      if (outcome.calendar_gone) {
        r.gone = true;
        r.stop = true;
      }
      if (outcome.failure) {
        if (!r.failure)
          r.failure = outcome.failure;
        r.stop = true;
      }
      put_status(b);
      if (ctx_.db.write(b)) {
        r.store_failed = true;
        r.stop = true;
      }
    }
    send_batches();
  }

  void initial_done() {
    auto r = std::move(round_);
    if (r->gone)
      return calendar_gone();
    if (halted())
      return end();
    if (r->store_failed) {
      fail("storing links failed");
      return end();
    }
    if (r->failure) {
      fail("sending the initial events failed", *r->failure);
      return end();
    }
    // The first delta round sets the baseline: everything in it is ours.
    status_.delta_link.clear();
    status_.state = calendar_state::active;
    status_.last_error.clear();
    save_status();
    r->then();
  }

  // -- an active user's round -------------------------------------------------

  void active_round() {
    if (halted() || status_.state != calendar_state::active)
      return end();
    drain_outbox([this] {
      if (halted())
        return end();
      pull([this] {
        if (halted())
          return end();
        ensure_subscription([this] {
          if (!failed_ && !status_.alert.empty())
            close_alert();
          save_status();
          if (deletes_approved_ && !failed_)
            spend_approval();
          end();
        });
      });
    });
  }

  // -- CRM -> Office 365 ------------------------------------------------------

  void drain_outbox(next_fn next) {
    outbox_.clear();
    auto prefix = keys::of_user(org_, user_);
    auto err
        = ctx_.db.scan(column::sync_outbox, prefix, keys::prefix_end(prefix),
                       [&](std::string_view k, std::string_view v) {
                         sync_change c;
                         if (codec::decode(v, c))
                           outbox_.emplace_back(std::string{k}, c);
                         return true;
                       });
    if (err) {
      fail("reading the sync outbox failed");
      return end();
    }
    size_t deletions = 0;
    size_t creates = 0;
    first_read_.reset();
    for (auto& [key, change] : outbox_) {
      sync_link l;
      event_record e;
      bool exists = false;
      bool linked = false;
      if (!load_event_and_link(change.event, !change.deleted, e, exists, l,
                               linked))
        continue;
      auto kind = plan_push(change, exists ? &e : nullptr,
                            linked ? &l : nullptr, paths())
                      .kind;
      if (kind == push_kind::remove)
        ++deletions;
      else if (kind == push_kind::create)
        ++creates;
      // The first entry is pushed right after this, in the same turn of
      // the actor: what was just read is still what the store holds.
      if (&key == &outbox_.front().first && !change.deleted)
        first_read_ = entry_read{change.event, std::move(e), exists,
                                 std::move(l), linked};
    }
    if (!guard_deletes(deletions, "in Office 365", creates))
      return end();
    note_deletions(deletions);
    push_entries(std::move(next));
  }

  /// Sends the outbox's entries one after the other, in write order.
  void push_entries(next_fn next) {
    step_loop::run(
        outbox_.size(),
        [this](size_t i, next_fn entry_done) {
          if (halted())
            return end();
          auto b = std::make_shared<storage::write_batch>();
          push_change(i, *b, [this, i, b, entry_done] {
            auto& [key, change] = outbox_[i];
            b->del(column::sync_outbox, key);
            // The counters with the change: the round's end then has no
            // status of its own to write.
            auto status = put_status(*b);
            if (ctx_.db.write(*b)) {
              fail("storing a sent change failed");
              return end();
            }
            stored_status_ = std::move(status);
            metrics::node().sync_lag(metrics::sync_direction::to_office365,
                                     (cfg_.now_ms() - change.at_ms) / 1000.0);
            entry_done();
          });
        },
        [this, next] {
          outbox_.clear();
          next();
        });
  }

  /// Sends outbox entry `i` (plan_push); what it learned goes into `b`.
  /// `next` when the entry is done with (sent, or refused for good and
  /// recorded); otherwise the run ends here.
  void push_change(size_t i, storage::write_batch& b, next_fn next) {
    const sync_change& c = outbox_[i].second;
    auto e = std::make_shared<event_record>();
    auto link = std::make_shared<sync_link>();
    bool exists = false;
    bool linked = false;
    if (i == 0 && first_read_ && first_read_->event == c.event) {
      *e = std::move(first_read_->record);
      exists = first_read_->exists;
      *link = std::move(first_read_->link);
      linked = first_read_->linked;
      first_read_.reset();
    } else {
      if (!load_event_and_link(c.event, true, *e, exists, *link, linked)) {
        fail("reading a CRM event failed");
        return end();
      }
    }
    auto plan = plan_push(c, exists ? e.get() : nullptr,
                          linked ? link.get() : nullptr, paths());
    if (c.deleted || !exists)
      unskip(c.event);
    switch (plan.kind) {
      case push_kind::none:
        return next();
      case push_kind::remove:
        return delete_in_office365(plan.request, [this, link, &b, next] {
          del_link(b, *link);
          next();
        });
      case push_kind::update:
        return push_update(c, e, link, b, next);
      case push_kind::create:
        return push_create(c, plan.request, e, b, next, false);
    }
  }

  /// Sends the CRM's version of `e` as an update of its linked event
  /// (If-Match the link's changeKey); a 412 meets the conflict policy.
  void push_update(const sync_change& c, std::shared_ptr<event_record> e,
                   std::shared_ptr<sync_link> link, storage::write_batch& b,
                   next_fn next) {
    auto plan = plan_push(c, e.get(), link.get(), paths());
    send(plan.request,
         [this, c, e, link, &b, next](graph::result<graph::response>& r) {
           if (!r.ok
               && after_push(push_kind::update, failed_status(r.failure))
                      == push_next::conflict)
             return conflict(c, e, link, b, next);
           updated(c, e, link, b, r, next);
         });
  }

  /// An update's answer (or the answer to the CRM's side of a conflict).
  void updated(const sync_change& c, std::shared_ptr<event_record> e,
               std::shared_ptr<sync_link> link, storage::write_batch& b,
               graph::result<graph::response>& r, next_fn next) {
    if (!r.ok
        && after_push(push_kind::update, failed_status(r.failure))
               == push_next::recreate) {
      // Deleted in Outlook: the CRM's later edit brings it back.
      del_link(b, *link);
      auto plan = plan_push(c, e.get(), nullptr, paths());
      return push_create(c, plan.request, e, b, next, true);
    }
    if (!r.ok && refused_for_good(r.failure)) {
      skip(*e, r.failure);
      return next();
    }
    if (!r.ok) {
      fail("updating an event in Office 365 failed", r.failure);
      return end();
    }
    std::string gid, ck;
    read_id_and_change_key(r.value.body, gid, ck);
    link->change_key = ck;
    link->crm_version = e->version;
    put_link(b, *link);
    unskip(e->id);
    ++status_.out_updated;
    next();
  }

  /// Sends the create of `e`. `recreate`: its linked event met 404 (an
  /// update's answer).
  void push_create(const sync_change& c, const graph_request& req,
                   std::shared_ptr<event_record> e, storage::write_batch& b,
                   next_fn next, bool recreate) {
    send(req,
         [this, c, e, &b, next, recreate](graph::result<graph::response>& r) {
           if (!r.ok) {
             if (after_push(push_kind::create, failed_status(r.failure))
                 == push_next::calendar_gone)
               return calendar_gone();
             if (refused_for_good(r.failure)) {
               skip(*e, r.failure);
               return next();
             }
             fail("creating an event in Office 365 failed", r.failure);
             return end();
           }
           std::string gid, ck;
           if (!read_id_and_change_key(r.value.body, gid, ck)) {
             fail("Office 365 answered an event creation without an id");
             return end();
           }
           auto link = std::make_shared<sync_link>(
               sync_link{e->id, gid, ck, created_version(*e, r.value.body)});
           unskip(e->id);
           ++status_.out_created;
           if (link->crm_version < e->version) {
             // An older version, made by an attempt whose answer was lost (a
             // primary that died before it stored the link): the CRM's goes as
             // an update of it now.
             if (!recreate)
               return push_update(c, e, link, b, next);
             // Its update met 404 and this create found an older copy: an
             // update of that copy could meet 404 again, and so on round a
             // loop. Linked as answered instead.
             log::warn("sync " + org_.str() + "/" + user_.str()
                       + ": Office 365 answered the re-creation of event "
                       + e->id.str() + " with an older copy");
             link->crm_version = e->version;
           }
           put_link(b, *link);
           next();
         });
  }

  // -- conflicts --------------------------------------------------------------

  /// Changed in Outlook too since the last sync: re-read Office 365's
  /// version and let the tenant's policy choose.
  void conflict(const sync_change& c, std::shared_ptr<event_record> e,
                std::shared_ptr<sync_link> link, storage::write_batch& b,
                next_fn next) {
    call(mailbox_call("GET", paths().event(link->graph_id)),
         [this, c, e, link, &b, next](graph::result<graph::response>& got) {
           graph_event theirs;
           if (!got.ok || !from_graph(got.value.body, theirs))
             return updated(c, e, link, b, got, next);
           auto r = resolve_conflict(policy_, user_, *e, *link, theirs, paths(),
                                     cfg_.now_ms());
           if (r.winner == side::office365)
             return keep_office365(r, link, theirs, b, next);
           record_conflict(b, r.record);
           send(r.patch, [this, c, e, link, &b,
                          next](graph::result<graph::response>& patched) {
             updated(c, e, link, b, patched, next);
           });
         });
  }

  void record_conflict(storage::write_batch& b, const sync_conflict& c) {
    std::string key = keys::audit(org_, c.at_ms, crypto::random_u64());
    b.put(column::conflicts, key, codec::encode(c));
  }

  /// Office 365's version wins: it becomes the CRM's, nothing is sent.
  void keep_office365(const conflict_resolution& r,
                      std::shared_ptr<sync_link> link,
                      const graph_event& theirs, storage::write_batch& b,
                      next_fn next) {
    auto record = r.record;
    auto change_key = theirs.change_key;
    ask_tenant<event_record>(
        r.apply,
        [this, record, change_key, link, &b, next](event_record& applied) {
          record_conflict(b, record);
          link->change_key = change_key;
          link->crm_version = applied.version;
          put_link(b, *link);
          ++status_.in_updated;
          next();
        },
        [this](const api_error& err) {
          fail("applying Office 365's side of a conflict failed: "
               + err.message);
          end();
        });
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

  /// One delta round from the stored link (or a fresh one), applying every
  /// item; the new link and the applied changes are stored together per
  /// page.
  void pull(next_fn next) {
    inbox_ = take_inbox(ctx_.db, org_, user_);
    bool due = !inbox_.empty() || notified_ || reconcile_due();
    for (auto& row : inbox_) {
      if (row.kind == inbox_kind::removed) {
        forget_subscription();      // recreated below
        status_.delta_link.clear(); // and everything read again
      }
      if (row.kind == inbox_kind::reauthorize)
        status_.subscription_expires_ms = 0; // renewed below
    }
    if (!due && !status_.delta_link.empty())
      return next();
    pull_next_ = std::move(next);
    restarted_ = false;
    full_ = status_.delta_link.empty();
    pages_.clear();
    read_page(status_.delta_link.empty() ? initial_delta_url()
                                         : status_.delta_link);
  }

  /// The whole round first: the mass-delete guard judges it as a whole.
  void read_page(std::string url) {
    if (halted())
      return end();
    if (pages_.size() >= max_delta_pages) {
      fail("too many delta pages");
      return end();
    }
    auto spec = mailbox_call("GET", std::move(url));
    // Large pages: fewer round trips (Graph may send fewer anyway).
    spec.headers
        = {{"Prefer",
            "odata.maxpagesize=500, outlook.body-content-type=\"text\""}};
    call(std::move(spec), [this](graph::result<graph::response>& r) {
      if (!r.ok) {
        if (r.failure.status == 410 && !restarted_) {
          // The delta token is gone: read the whole window again; links
          // keep it free of duplicates.
          restarted_ = true;
          full_ = true;
          status_.delta_link.clear();
          pages_.clear();
          return read_page(initial_delta_url());
        }
        if (is_not_found(r.failure))
          return calendar_gone();
        fail("reading changes from Office 365 failed", r.failure);
        return end();
      }
      delta_page page;
      if (!parse_delta_page(r.value.body, page)) {
        fail("Office 365 sent a delta page crmsync cannot read");
        return end();
      }
      pages_.push_back(std::move(page));
      if (!pages_.back().delta_link.empty())
        return pages_read();
      read_page(pages_.back().next_link);
    });
  }

  void pages_read() {
    size_t removals = 0;
    std::set<std::string> listed;
    for (auto& page : pages_)
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
    unlisted_.clear();
    if (full_)
      unlisted_ = links_missing_from(listed);
    removals_ = removals + unlisted_.size();
    if (!guard_deletes(removals_, "in the CRM"))
      return end();
    apply_pages();
  }

  /// Applies the pages in order; each page's changes, and with the last
  /// its delta link, are stored in one batch.
  void apply_pages() {
    step_loop::run(
        pages_.size(),
        [this](size_t p, next_fn page_done) {
          page_batch_.emplace();
          step_loop::run(
              pages_[p].items.size(),
              [this, p](size_t i, next_fn item_done) {
                apply_item(pages_[p].items[i], *page_batch_,
                           std::move(item_done));
              },
              [this, p, page_done] {
                auto b = std::move(*page_batch_);
                page_batch_.reset();
                auto& page = pages_[p];
                if (!page.delta_link.empty()) {
                  status_.delta_link = page.delta_link;
                  status_.last_sync_ms = cfg_.now_ms();
                  status_.last_error.clear();
                  for (auto& row : inbox_)
                    b.del(column::inbox, row.key);
                }
                auto status = put_status(b);
                if (ctx_.db.write(b)) {
                  fail("storing applied changes failed");
                  return end();
                }
                stored_status_ = std::move(status);
                page_done();
              });
        },
        [this] { remove_unlisted(); });
  }

  void remove_unlisted() {
    if (unlisted_.empty())
      return pull_done();
    page_batch_.emplace();
    step_loop::run(
        unlisted_.size(),
        [this](size_t i, next_fn done) {
          remove_if_gone(unlisted_[i], *page_batch_, std::move(done));
        },
        [this] {
          auto b = std::move(*page_batch_);
          page_batch_.reset();
          put_status(b);
          if (ctx_.db.write(b)) {
            fail("storing applied deletions failed");
            return end();
          }
          pull_done();
        });
  }

  void pull_done() {
    note_deletions(removals_);
    pages_.clear();
    unlisted_.clear();
    auto next = std::move(pull_next_);
    next();
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
    ctx_.db.scan(column::links, prefix, keys::prefix_end(prefix),
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

  /// A linked event Office 365 reports removed, or that a full round no
  /// longer lists: deleted in the CRM only if a GET confirms it is gone
  /// (it may merely have moved out of the window).
  void remove_if_gone(const sync_link& link, storage::write_batch& b,
                      next_fn next) {
    call(mailbox_call("GET", paths().event(link.graph_id)),
         [this, link, &b, next](graph::result<graph::response>& r) {
           auto act = after_confirm(r.ok ? r.value.status
                                         : failed_status(r.failure));
           if (act == removal_action::keep)
             return next();
           if (act != removal_action::delete_in_crm) {
             fail("confirming a deletion in Office 365 failed", r.failure);
             return end();
           }
           apply_office365 cmd;
           cmd.owner = user_;
           cmd.event = link.event;
           cmd.remove = true;
           auto removed = [this, link, &b, next] {
             del_link(b, link);
             ++status_.in_deleted;
             next();
           };
           ask_tenant<event_record>(
               cmd, [removed](event_record&) { removed(); },
               [this, removed](const api_error& err) {
                 if (err.code == "not_found")
                   return removed(); // gone from the CRM already
                 fail("deleting a CRM event failed: " + err.message);
                 end();
               });
         });
  }

  void apply_item(const std::string& item, storage::write_batch& b,
                  next_fn next) {
    graph_event g;
    if (!from_graph(item, g))
      return next(); // not an event crmsync understands: leave it
    event_id linked_event;
    bool linked = event_of_graph_id(g.id, linked_event);
    sync_link link;
    if (linked && !find_link(linked_event, link))
      linked = false;
    auto decision = decide_item(g, linked ? &link : nullptr, user_);
    switch (decision.action) {
      case item_action::ignore:
      case item_action::own_echo:
        return next();
      case item_action::confirm_removal:
        return remove_if_gone(link, b, std::move(next));
      case item_action::upsert:
        break;
    }
    event_id ours;
    if (!linked && own_create_of(g, org_, ours)) {
      event_record e;
      bool exists = false;
      if (!load_event(ours, e, exists)) {
        fail("reading the CRM event of an Office 365 event failed");
        return end();
      }
      if (!exists)
        return remove_own_copy(g, ours, std::move(next));
      if (e.owner == user_)
        return next(); // its outbox row links it
      // Another user's event: imported like any other item.
    }
    ask_tenant<event_record>(
        decision.command,
        [this, g, linked, &b, next](event_record& applied) {
          put_link(b, link_after_upsert(g, applied));
          if (linked)
            ++status_.in_updated;
          else
            ++status_.in_created;
          next();
        },
        [this, linked, next](const api_error& err) {
          // Deleted or changed in the CRM meanwhile: the outbox carries
          // that change out, and its If-Match meets the conflict policy.
          if (linked && crm_moved_on(err.code))
            return next();
          fail("applying an Office 365 change failed: " + err.message);
          end();
        });
  }

  /// An event crmsync created (its transactionId names the CRM event) that
  /// no link knows: the link of its create was lost (a primary that died
  /// before its write of the link was replicated). Made again from Office
  /// 365, it would be a second CRM event, or the CRM event that was
  /// deleted since, back. If the user's CRM event still exists, its outbox
  /// row links it (the repeated create is answered with this event), see
  /// apply_item; if it is gone, so goes this copy.
  void remove_own_copy(const graph_event& g, event_id ours, next_fn next) {
    log::info("sync " + org_.str() + "/" + user_.str()
              + ": removing from Office 365 the copy of deleted CRM event "
              + ours.str() + " whose create was not linked");
    delete_in_office365(graph_request{"DELETE", paths().event(g.id), "", {}},
                        std::move(next));
  }

  /// Sends a DELETE of an event (`req`); gone already counts as done. Then
  /// counts it and calls `done`; a failure ends the run.
  void delete_in_office365(const graph_request& req, next_fn done) {
    send(req, [this, done](graph::result<graph::response>& r) {
      if (!r.ok
          && after_push(push_kind::remove, failed_status(r.failure))
                 != push_next::done) {
        fail("deleting an event in Office 365 failed", r.failure);
        return end();
      }
      ++status_.out_deleted;
      done();
    });
  }

  // -- the mass-delete guard --------------------------------------------------

  /// How many events are linked (synced) now.
  size_t linked_count() {
    size_t n = 0;
    auto prefix = keys::of_user(org_, user_);
    ctx_.db.scan(column::links, prefix, keys::prefix_end(prefix),
                 [&n](std::string_view, std::string_view) {
                   ++n;
                   return true;
                 });
    return n;
  }

  /// A run that would delete more than the configured share of the user's
  /// synced events stops in state "held" until an administrator approves
  /// (crmsyncctl approve-deletes USER); false when held. `pending_creates`:
  /// the CRM's events this run creates in Office 365 (outbox rows waiting,
  /// as after a failover or an outage); they are part of the calendar the
  /// share is taken of, so a backlog of the user's own creates and
  /// deletes does not read as a mass delete.
  bool guard_deletes(size_t deletions, const char* where,
                     size_t pending_creates = 0) {
    // Counting the links is a scan: only when the guard may hold.
    size_t linked = deletes_approved_ || deletions == 0
                        ? 0
                        : linked_count() + pending_creates;
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

  /// The approval is used up once a run with it got through.
  void spend_approval() {
    storage::write_batch b;
    b.del(column::sync, keys::sync_approval_key(org_, user_));
    ctx_.db.write(b);
  }

  /// Reconciliation reminders come every interval; the last run ended a
  /// little after the previous one, so half an interval counts as due.
  bool reconcile_due() const {
    return cfg_.now_ms() - status_.last_sync_ms
           >= std::chrono::milliseconds(cfg_.reconcile_interval).count() / 2;
  }

  // -- subscription -----------------------------------------------------------

  /// Creates the subscription, or renews it when half its life is gone.
  /// A failure is recorded; the round goes on to its end either way.
  void ensure_subscription(next_fn next) {
    auto now = cfg_.now_ms();
    auto lifetime
        = std::chrono::milliseconds(cfg_.subscription_lifetime).count();
    if (!status_.subscription_id.empty()
        && status_.subscription_expires_ms - now > lifetime / 2)
      return next();
    auto expires = now + lifetime;
    if (status_.subscription_id.empty())
      return subscribe(expires, std::move(next));
    json::writer w;
    w.begin_object()
        .key("expirationDateTime")
        .value(format_rfc3339(expires))
        .end_object();
    call(tenant_call("PATCH", "/subscriptions/" + status_.subscription_id,
                     w.take()),
         [this, expires, next](graph::result<graph::response>& r) {
           if (r.ok) {
             status_.subscription_expires_ms = expires;
             return next();
           }
           if (!is_not_found(r.failure)) {
             fail("renewing the Office 365 subscription failed", r.failure);
             return next();
           }
           forget_subscription();
           subscribe(expires, next);
         });
  }

  void subscribe(int64_t expires, next_fn next) {
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
    call(tenant_call("POST", "/subscriptions", w.take()),
         [this, expires, secret, next](graph::result<graph::response>& r) {
           if (!r.ok) {
             fail("creating the Office 365 subscription failed", r.failure);
             return next();
           }
           std::string id, ck;
           if (!read_id_and_change_key(r.value.body, id, ck)) {
             fail("Office 365 answered the subscription without an id");
             return next();
           }
           status_.subscription_id = id;
           status_.subscription_expires_ms = expires;
           status_.client_state = secret;
           // The lookup and the status together: a notification is
           // accepted from here on, and no restart can forget a
           // subscription that exists.
           storage::write_batch b;
           std::string v;
           keys::put_be64(v, org_.value);
           keys::put_be64(v, user_.value);
           v += secret;
           b.put(column::lookup, keys::subscription_lookup(id), v);
           put_status(b);
           if (ctx_.db.write(b))
             fail("storing the new subscription failed");
           next();
         });
  }

  void forget_subscription() {
    if (status_.subscription_id.empty())
      return;
    storage::write_batch b;
    b.del(column::lookup, keys::subscription_lookup(status_.subscription_id));
    ctx_.db.write(b);
    status_.subscription_id.clear();
    status_.subscription_expires_ms = 0;
    status_.client_state.clear();
  }

  // -- disabling --------------------------------------------------------------

  /// R20 (and R21 with `remote` false: the calendar is already gone): the
  /// subscription and the product's calendar go, with every event in it;
  /// CRM events stay; links, outbox and inbox are cleared.
  void disable(bool remote, next_fn next) {
    if (remote && !status_.subscription_id.empty())
      return call(
          tenant_call("DELETE", "/subscriptions/" + status_.subscription_id),
          [this, next](graph::result<graph::response>& r) {
            if (!r.ok && !is_not_found(r.failure)) {
              fail("deleting the Office 365 subscription failed", r.failure);
              return end();
            }
            forget_subscription();
            disable(true, next);
          });
    if (remote && !status_.office365_calendar_id.empty())
      return call(mailbox_call("DELETE", "/users/" + oid_ + "/calendars/"
                                             + status_.office365_calendar_id),
                  [this, next](graph::result<graph::response>& r) {
                    if (!r.ok && !is_not_found(r.failure)) {
                      fail("deleting the CRM calendar in Office 365 failed",
                           r.failure);
                      return end();
                    }
                    status_.office365_calendar_id.clear();
                    disable(true, next);
                  });
    forget_subscription();
    auto prefix = keys::of_user(org_, user_);
    storage::write_batch b;
    for (auto cf : {column::links, column::sync_outbox, column::inbox})
      ctx_.db.scan(cf, prefix, keys::prefix_end(prefix),
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
    put_status(b);
    storage::teardown_rows::del(b, org_, user_);
    if (ctx_.db.write(b))
      log::error("sync: cannot store a disabled sync");
    // The organization left this tenant (disconnected or deleted): the
    // node keeps no app token for it. Another calendar of the tenant still
    // tearing down fetches one again, and forgets it when it is done.
    if (torn_down_ && !o365_tenant_.empty())
      ctx_.graph.forget_tenant(o365_tenant_);
    next();
  }

  /// R21: the product's calendar was deleted in Office 365. Ends the run.
  void calendar_gone() {
    log::info("sync " + org_.str() + "/" + user_.str()
              + ": the CRM calendar is gone from Office 365; disabling");
    // The request first: were the status written first and the request
    // not, a later run would see sync wanted and make a new calendar.
    set_calendar_sync cmd;
    cmd.who.service_admin = true;
    cmd.user = user_;
    cmd.enabled = false;
    cmd.reason = "the CRM calendar was deleted in Office 365";
    ask_tenant<calendar_status>(
        cmd, [this](calendar_status&) { disable(false, [this] { end(); }); },
        [this](const api_error& err) {
          fail("the CRM calendar is gone from Office 365, and recording that "
               "sync is off failed: "
               + err.message);
          end();
        });
  }

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
  return sys.spawn(calendar_sync, org, user, std::move(ctx), idle_after);
}

} // namespace crmsync::sync
