// graph-emulator's service internals, shared by the files that implement
// it by resource: identity.cpp (token endpoint, sign-in, admin consent),
// users.cpp, calendars.cpp, events.cpp (events and calendarView's
// rendering), delta.cpp (calendarView and calendarView/delta),
// subscriptions.cpp, mail.cpp (sendMail), control.cpp (/_emulator), and
// service.cpp (dispatch, $batch, faults on the way in). Not a public
// header: only emulator/*.cpp include it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <simdjson.h>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "emulator/jwt_signer.hpp"
#include "emulator/model.hpp"
#include "emulator/notifier.hpp"
#include "emulator/service.hpp"
#include "http/router.hpp"
#include "http/url.hpp"
#include "protocol/json.hpp"

namespace crmsync::emulator {

using http::request;
using http::responder_ptr;
using http::response;
using simdjson::dom::element;
using simdjson::dom::object;

constexpr size_t default_user_page = 100;
constexpr size_t default_event_page = 10;

// -- identifiers (service_support.cpp) ---------------------------------------

std::string new_guid();
/// Outlook item ids are long, opaque, case-sensitive base64 strings.
std::string new_item_id();
std::string new_change_key();

// -- responses ---------------------------------------------------------------

response json_response(int status, std::string body);
/// Graph's error shape: {"error":{"code","message","innerError":{…}}}.
response graph_error(const request& req, int status, std::string_view code,
                     std::string_view message, int64_t now);
/// The identity platform's OAuth error shape.
response oauth_error(int status, std::string_view error, int code,
                     std::string_view description, int64_t now);
/// The request path as sent (still percent-encoded), for links back to it.
std::string raw_path(const request& req);
/// Absolute URLs use the scheme and host the client used.
std::string base_url(const request& req);
// "2026-12-01T10:00:00.0000000", Graph's dateTime in a dateTimeTimeZone.
std::string graph_date_time(int64_t ms);
/// The zone asked for with `Prefer: outlook.timezone="…"` (reads only),
/// or "" when none or an unknown one was asked for.
std::string preferred_zone(const request& req);
/// Marks a response as rendered in the preferred zone, as Graph does.
void applied_zone(response& res, const std::string& zone);

// -- JSON input --------------------------------------------------------------

struct body_error {
  std::string code = "BadRequest";
  std::string message;
};

bool parse_body(std::string_view body, object& out, body_error& err);
std::string to_json_text(element e);
bool read_string(element v, std::string& out);
/// Reads the string member `name` of an object element.
bool member_string(element obj, const char* name, std::string& out);
/// Reads a dateTimeTimeZone object into UTC milliseconds.
bool read_date_time_zone(element v, const char* name, int64_t& ms,
                         std::string& zone, body_error& err);

/// Faults injected through POST /_emulator/faults.
struct faults {
  int64_t latency_ms = 0;
  int64_t jitter_ms = 0;
  double error_rate = 0;    ///< share of Graph calls answered 503
  double throttle_rate = 0; ///< share of Graph calls answered 429
  /// Share of Graph calls answered 403 ErrorAccessDenied, as while an
  /// administrator has blocked the app's access to mailboxes.
  double access_denied_rate = 0;
  /// Share of Graph calls answered 404 MailboxNotEnabledForRESTAPI, as
  /// after the user's Exchange Online licence was removed.
  double mailbox_disabled_rate = 0;
  /// An event created or updated with this text in its body (say, in its
  /// subject) is answered `refuse_status` `refuse_code` (by default 400
  /// ErrorInvalidProperty, as Outlook refuses an event it can never
  /// accept); "" = none.
  std::string refuse_text;
  int64_t refuse_status = 400;
  std::string refuse_code = "ErrorInvalidProperty";
  double drop_notifications = 0;
  double duplicate_notifications = 0;
  int64_t notification_delay_ms = 0; ///< extra delay before delivery
  /// Share of due change notifications that instead end their subscription
  /// (subscriptionRemoved), as Graph does when it drops a subscription.
  double remove_subscriptions = 0;
};

/// How often each fault struck since the start (or the last reset), so
/// that a test can show its fault happened before it judges the outcome
/// (GET /_emulator/counters).
struct fault_counts {
  uint64_t errors = 0;           ///< Graph calls answered 503
  uint64_t throttles = 0;        ///< Graph calls answered 429
  uint64_t access_denied = 0;    ///< Graph calls answered 403
  uint64_t mailbox_disabled = 0; ///< Graph calls answered 404 (no mailbox)
  uint64_t refused_events = 0;   ///< event writes answered 400
  uint64_t dropped_notifications = 0;
  uint64_t duplicated_notifications = 0;
  uint64_t removed_subscriptions = 0;
};

/// Holds answers back for an injected latency without blocking any I/O
/// thread: a responder wrapped here hands its answer to one timer thread,
/// which passes it on when it is due. Pending answers are sent at once
/// when the line is destroyed.
class delay_line {
public:
  delay_line() : worker_([this] { run(); }) {}

  ~delay_line() {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      stopping_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }

  responder_ptr wrap(responder_ptr inner, std::chrono::milliseconds delay) {
    return std::make_shared<held>(this, std::move(inner), delay);
  }

private:
  struct pending {
    std::chrono::steady_clock::time_point due;
    responder_ptr target;
    response res;
  };

  class held : public http::responder {
  public:
    held(delay_line* line, responder_ptr inner, std::chrono::milliseconds d)
        : line_(line), inner_(std::move(inner)), delay_(d) {}
    void reply(response r) override {
      line_->schedule(std::chrono::steady_clock::now() + delay_, inner_,
                      std::move(r));
    }

  private:
    delay_line* line_;
    responder_ptr inner_;
    std::chrono::milliseconds delay_;
  };

  void schedule(std::chrono::steady_clock::time_point due, responder_ptr target,
                response r) {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      queue_.push_back({due, std::move(target), std::move(r)});
    }
    cv_.notify_all();
  }

  void run() {
    std::unique_lock<std::mutex> lock{mtx_};
    for (;;) {
      if (queue_.empty()) {
        if (stopping_)
          return;
        cv_.wait(lock);
        continue;
      }
      auto first = std::min_element(
          queue_.begin(), queue_.end(),
          [](const pending& a, const pending& b) { return a.due < b.due; });
      if (!stopping_ && first->due > std::chrono::steady_clock::now()) {
        cv_.wait_until(lock, first->due);
        continue;
      }
      auto p = std::move(*first);
      queue_.erase(first);
      lock.unlock();
      p.target->reply(std::move(p.res));
      lock.lock();
    }
  }

  std::mutex mtx_;
  std::condition_variable cv_;
  std::vector<pending> queue_;
  bool stopping_ = false;
  std::thread worker_;
};

using mailbox_key = std::pair<std::string, std::string>;

/// Sits in front of a request's responder and frees its mailbox
/// concurrency slot when the answer finally leaves.
class mailbox_slot : public http::responder {
public:
  mailbox_slot(responder_ptr inner,
               std::function<void(const mailbox_key&)> release)
      : inner_(std::move(inner)), release_(std::move(release)) {}
  ~mailbox_slot() override {
    free();
  }
  void hold(mailbox_key key) {
    free(); // one slot per request
    key_ = std::move(key);
    held_ = true;
  }
  void reply(response r) override {
    free();
    inner_->reply(std::move(r));
  }

private:
  void free() {
    if (held_) {
      held_ = false;
      release_(key_);
    }
  }
  responder_ptr inner_;
  std::function<void(const mailbox_key&)> release_;
  mailbox_key key_;
  bool held_ = false;
};

/// The slot of the request the current thread is dispatching, if any.
extern thread_local mailbox_slot* current_slot;
/// True while the items of a $batch are dispatched: they answer at once
/// (into the batch's answer), and the batch as a whole carries the
/// injected latency.
extern thread_local bool dispatching_batch_items;

struct service::impl {
  service_config cfg;
  jwt_signer signer;
  notifier notifications;

  explicit impl(service_config c)
      : cfg(std::move(c)), notifications(cfg.notifications) {}
  faults fault;                                 ///< guarded by mtx
  fault_counts struck;                          ///< guarded by mtx
  std::mt19937_64 dice{std::random_device{}()}; ///< guarded by mtx

  /// True with probability p (call with mtx held).
  bool roll(double p) {
    return p > 0 && std::uniform_real_distribution<double>{0, 1}(dice) < p;
  }
  std::mutex mtx;
  directory dir;
  http::router routes;

  int64_t now() const {
    return cfg.now_ms();
  }

  void install_routes();

  /// Requests in flight per (client id, user id), for Outlook's
  /// concurrency limit. Its own lock: answers may leave under `mtx`.
  std::mutex inflight_mtx;
  std::map<mailbox_key, size_t> inflight;

  /// Answers held back by injected latency. Declared after `inflight`:
  /// destroying the line sends what it holds, which frees those answers'
  /// mailbox slots, so the slots' counts must still exist then.
  delay_line delayed;

  void release(const mailbox_key& key) {
    std::lock_guard<std::mutex> guard{inflight_mtx};
    auto i = inflight.find(key);
    if (i != inflight.end() && --i->second == 0)
      inflight.erase(i);
  }
  void dispatch(request& req, responder_ptr r);
  void batch(request& req, responder_ptr r);

  // -- identity platform: tenants, sign-in, tokens (identity.cpp)

  void install_identity_routes();

  tenant* find_tenant(std::string_view id_or_domain);

  /// A user by userPrincipalName (case-insensitive), in any tenant.
  user* find_user_by_upn(std::string_view upn);

  /// The person signing in: `login_hint` is their UPN; the tenant in the
  /// path (id or domain) must be theirs unless it is common/organizations.
  user* find_sign_in_user(const std::string& tenant_key,
                          const std::string& login_hint);

  /// What a browser gets from the sign-in and admin consent endpoints when
  /// no login_hint names the person: a page to pick a person of the tenant
  /// (administrators only for `admins_only`), whose buttons come back to
  /// the same endpoint with every parameter and the chosen login_hint.
  /// Programs name the person and never see it. Call with mtx held.
  response pick_person_page(const std::string& tenant_key,
                            const http::query_params& q,
                            const std::string& path, bool admins_only);

  /// The origin of an http(s) URL as split_url reads it, when its host has
  /// only letters, digits, '.', '-' and ':' (IPv6); "" for anything else.
  static std::string plain_origin(const std::string& url);

  void issue_access_token(const std::string& client_id,
                          const std::string& tenant_id, std::string& token,
                          int64_t& lifetime);

  /// The authorization_code grant: access token plus a signed id_token.
  void redeem_code(const request& req, const std::string& tenant_key,
                   const http::query_params& form, const responder_ptr& r);

  /// Checks the bearer token; on failure fills `err` with Graph's 401.
  const access_token* check_token(const request& req, response& err);

  // -- users (users.cpp)

  void install_users_routes();

  /// The "users" of a seeding request, checked (call with mtx held): each
  /// needs a userPrincipalName with '@'; ids and UPNs (case-insensitively)
  /// are unique in the whole directory, the request's users included.
  /// Fills `refused` (400 or 409) and returns false otherwise.
  bool read_new_users(const request& req, object& o,
                      const std::string& tenant_id, std::vector<user>& out,
                      response& refused);

  /// Adds checked users to their tenant, the directory and its UPN index,
  /// and writes them as "users":[...] (call with mtx held).
  void add_users(json::writer& w, tenant& t, const std::vector<user>& users);

  /// Removes a user with what is theirs (call with mtx held): the UPN
  /// index entry, their place in the tenant's list, their mailbox, their
  /// subscriptions (subscriptionRemoved) and their calendars' delta chains.
  /// Sign-in codes issued to them are refused when redeemed.
  void delete_user(const user& gone);

  /// A user by id or userPrincipalName, in any tenant.
  user* find_any_user(std::string_view key);

  /// A user of the token's tenant by id or userPrincipalName; answers and
  /// returns nullptr when there is none: 404 for an unknown user, 401 when
  /// the user belongs to another tenant (the token is not valid there).
  user* resolve_user(const request& req, const responder_ptr& r,
                     const access_token& tok, std::string_view key);

  response user_not_found(const request& req, std::string_view key);

  void write_user(json::writer& w, const user& u,
                  const std::vector<std::string>& select);

  // -- mailboxes and calendars (calendars.cpp)

  void install_calendars_routes();

  /// Deletes a calendar with its events; subscriptions on it are removed
  /// (call with mtx held; `c` must not be the default calendar).
  void delete_calendar(const user& u, mailbox& mb, const calendar& c);

  /// Authenticates and resolves the user and their mailbox; answers and
  /// returns nullptr on any failure.
  mailbox* open_mailbox(const request& req, const responder_ptr& r,
                        const std::string& key, user*& u);

  /// Outlook limits each (app, mailbox) pair to N requests per window;
  /// beyond it, 429 with Retry-After until the oldest request ages out.
  bool within_mailbox_budget(const request& req, const responder_ptr& r,
                             const access_token& tok, const user& u);

  /// The named calendar, or the default one when `id` is null; answers
  /// 404 ErrorItemNotFound itself and returns nullptr when there is none.
  calendar* open_calendar(const request& req, const responder_ptr& r,
                          mailbox& mb, const std::string* id);

  calendar* find_calendar(mailbox& mb, std::string_view id);

  response item_not_found(const request& req);

  void write_calendar(json::writer& w, const calendar& c, const user& owner);

  // -- events: rendering and bodies (events.cpp)

  void install_events_routes();

  /// Renders an event; start/end in `zone` (UTC unless a read asked for
  /// another with Prefer: outlook.timezone).
  void write_event(json::writer& w, const event& e, const user& owner,
                   const std::vector<std::string>& expand_props,
                   const std::string& zone = {});

  /// Applies a create/PATCH body to an event. `create` demands start/end.
  bool apply_event_body(std::string_view body, event& e, bool create,
                        body_error& err);

  /// `$expand=singleValueExtendedProperties($filter=id eq '…')` → ids.
  static std::vector<std::string> expanded_props(const http::query_params& q);

  /// `$filter=singleValueExtendedProperties/Any(ep: ep/id eq 'I' and
  /// ep/value eq 'V')` → (I, V); false when there is no such filter.
  static bool extended_filter(const http::query_params& q, std::string& id,
                              std::string& value);

  // -- change log for delta rounds (delta.cpp)

  void install_delta_routes();

  /// Appends a write to the calendar's change log (call with mtx held).
  /// The log and the deleted series only serve delta rounds that started
  /// before a write; whenever the log has doubled since it was last
  /// compacted, what every live delta token of the calendar has already
  /// seen is dropped, so memory follows the oldest live token, not the
  /// calendar's history.
  void record_change(const user& u, calendar& c, const std::string& event_id);

  // -- subscriptions and change notifications (subscriptions.cpp)

  void install_subscriptions_routes();

  void add_subscription(const subscription& s);

  std::map<std::string, subscription>::iterator
  erase_subscription(std::map<std::string, subscription>::iterator i);

  void renew_subscription(subscription& s, int64_t expires_ms);

  /// Drops subscriptions past their expiration (Graph deletes them
  /// quietly), earliest first: only those that expired are visited.
  void expire_subscriptions();

  std::string subscription_json(const request& req, const subscription& s);

  /// Queues a lifecycle notification for a subscription (call with mtx
  /// held); a subscription without a lifecycleNotificationUrl gets none.
  void notify_lifecycle(const subscription& s, std::string_view event_name);

  /// Ends a subscription as Graph does on its own initiative: a
  /// subscriptionRemoved lifecycle notification, then it is gone.
  std::map<std::string, subscription>::iterator
  remove_subscription(std::map<std::string, subscription>::iterator i);

  /// Queues change notifications for every live subscription covering
  /// this calendar and change type (call with mtx held).
  void notify_change(const user& u, const calendar& c, const event& e,
                     const char* change_type);

  // -- the other routes

  void install_control_routes();
  void install_mail_routes();
};

} // namespace crmsync::emulator
