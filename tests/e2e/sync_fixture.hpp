// End-to-end support for calendar sync (R13-R21): an office365_env (a
// graph-emulator and a crmsyncd wired to it) with contoso.com installed by
// its admin, who is the user whose calendar syncs, plus "the person in
// Outlook": a second app registered at the emulator that reads and writes
// the admin's mailbox through the ordinary Graph routes.
//
// Sync is asynchronous: every wait_* polls with a deadline and REQUIREs the
// outcome, showing what it saw last. The two sides are compared by
// (subject, start, end) with sides_in_sync / wait_in_sync.
// One sync_env belongs to one test thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/e2e/office365_fixture.hpp"
#include "tests/support/eventually.hpp"

namespace crmsync::e2e {

/// How to start the node of a sync_env.
struct sync_options {
  /// --reconcile-interval in seconds.
  int reconcile_interval_s = 300;
  /// --max-initial-events (0: the product's default).
  int max_initial_events = 0;
  std::vector<std::string> node_args;
  /// Appended to graph-emulator's command line (--mailbox-limit, ...).
  std::vector<std::string> emulator_args;
  /// Graph's answer time for the test, after the set-up: uniform in
  /// [latency - jitter, latency + jitter] ms. Microsoft answers in
  /// 100-300 ms; the suites run at 30 ± 20 so that what only works at 0 ms
  /// shows, while staying quick.
  int graph_latency_ms = 30;
  int graph_jitter_ms = 20;
};

/// A CRM event as the API lists it.
struct crm_event {
  std::string id;
  std::string owner;
  std::string title;
  std::string start;
  std::string end;
  std::string origin;
  int64_t version = 0;
  bool all_day = false;  ///< start/end are then dates (2026-12-01)
  std::string time_zone; ///< as the API shows it ("UTC" by default)
  std::vector<std::string> participants; ///< their e-mail addresses
};

/// An event in an Office 365 calendar; start/end as RFC 3339 UTC
/// ("2026-12-01T10:00:00Z") so that they compare with the CRM's, and for
/// an all-day event as the dates it shows in its own zone ("2026-12-01").
struct o365_event {
  std::string id;
  std::string subject;
  std::string start;
  std::string end;
  std::string change_key;
  bool all_day = false;
  std::string time_zone; ///< originalStartTimeZone
  std::string created;   ///< createdDateTime, as Graph writes it
};

/// Someone of contoso.com who joined the organization from Office 365
/// (asked to join, the admin approved) and signed in again: a standard
/// user with their own token and their own mailbox.
struct member {
  std::string id;    ///< CRM user id
  std::string token; ///< their own token
  std::string oid;   ///< their Office 365 id (the mailbox)
};

/// One reading of graph-emulator's GET /_emulator/counters: how often each
/// injected fault struck, and what its notifier delivered.
struct emulator_counters {
  uint64_t errors = 0;        ///< Graph calls answered 503
  uint64_t throttles = 0;     ///< Graph calls answered 429
  uint64_t access_denied = 0; ///< Graph calls answered 403
  /// Graph calls answered 404 MailboxNotEnabledForRESTAPI
  uint64_t mailbox_disabled = 0;
  uint64_t refused_events = 0; ///< event writes refused (refuse_text)
  uint64_t dropped_notifications = 0;
  uint64_t duplicated_notifications = 0;
  uint64_t delivered_notifications = 0; ///< acknowledged by the node
  /// Queued or on the wire: 0 once every notification so far was
  /// acknowledged (or given up).
  uint64_t pending_notifications = 0;
};

/// What `crmsyncctl check ORG` reports for the organization.
struct check_report {
  api_response answer; ///< GET /admin/v1/orgs/{org}/check
  uint64_t differences = 0;
  uint64_t pending = 0; ///< outbox + inbox entries of every user
};

/// RFC 3339 UTC of now + `hours` (whole seconds), for event times relative
/// to the wall clock the node uses.
std::string hours_from_now(double hours);

/// Events whose origin is not "imported": what R19 says is synced.
bool not_imported(const crm_event& e);

class sync_env {
public:
  explicit sync_env(sync_options opts = {});

  office365_env& o365() {
    return env_;
  }
  api_client& node() {
    return env_.node();
  }

  /// The installed organization; its admin is the syncing user.
  const installed_org& org() const {
    return org_;
  }
  /// The admin's Office 365 id (the mailbox).
  const std::string& oid() const {
    return oid_;
  }

  /// SIGTERM (exit 0 required) and start again on the same data dir.
  void restart_node();
  /// SIGKILL and start again on the same data dir.
  void kill9_and_start();
  /// POST /_emulator/faults; throws unless 200.
  void set_faults(std::string_view json) {
    env_.set_faults(json);
  }
  /// GET /_emulator/counters; REQUIREs 200.
  emulator_counters counters();

  /// `upn` (of contoso.com) signs in, asks to join, the admin approves and
  /// `upn` signs in again as a member; REQUIREs every step.
  member join(std::string_view upn);

  // -- CRM side --------------------------------------------------------------

  /// Creates an event for the admin; REQUIREs 201; returns its id.
  std::string create_event(std::string_view title, std::string_view start,
                           std::string_view end);
  /// Creates an event for the admin from a whole JSON body (all_day,
  /// time_zone, participants, ...); REQUIREs 201; returns its id.
  std::string create_event_json(std::string_view body);
  /// PATCH /events/{id}; REQUIREs 200; returns the answer.
  api_response patch_event(std::string_view id, std::string_view body);
  /// DELETE /events/{id}; REQUIREs 204.
  void delete_event(std::string_view id);
  /// POST /events/import for `owner` (default: the admin); returns the ids.
  std::vector<std::string>
  import_events(const std::vector<std::string>& event_bodies,
                std::string owner = {});
  /// GET /events/{id}; REQUIREs 200.
  crm_event get_event(std::string_view id);
  /// Every event of `user` (default: the admin), in start order.
  std::vector<crm_event> crm_events(std::string user = {});

  // -- sync ------------------------------------------------------------------

  /// PUT …/calendar-sync {"enabled":…} for the admin; REQUIREs 200.
  api_response set_sync(bool enabled);
  /// PUT …/users/{user}/calendar-sync {"enabled":…} with `token`, whoever
  /// it belongs to; returns the answer, whatever its status.
  api_response put_sync(std::string_view token, std::string_view user,
                        bool enabled);
  /// GET …/calendar-sync for the admin; REQUIREs 200.
  api_response status();
  /// GET …/users/{user}/calendar-sync with `token`; REQUIREs 200.
  api_response status_of(std::string_view token, std::string_view user);
  /// Polls status_of until `done` says so; REQUIREs it before `timeout`.
  api_response
  wait_for_status_of(std::string_view token, std::string_view user,
                     const std::function<bool(const api_response&)>& done,
                     std::string_view what,
                     std::chrono::milliseconds timeout
                     = std::chrono::seconds(20));
  /// Waits until `user`'s last successful sync run has ended `runs` more
  /// times (for an active user with nothing to do, each is a
  /// reconciliation round); REQUIREs it.
  void wait_for_runs(std::string_view token, std::string_view user, int runs,
                     std::chrono::milliseconds timeout
                     = std::chrono::seconds(20));
  /// Polls the status until `done` says so; REQUIREs it before `timeout`.
  api_response
  wait_for_status(const std::function<bool(const api_response&)>& done,
                  std::string_view what,
                  std::chrono::milliseconds timeout = std::chrono::seconds(20));
  /// Polls until the state is `state`.
  api_response wait_for_state(std::string_view state,
                              std::chrono::milliseconds timeout
                              = std::chrono::seconds(20));
  /// set_sync(true), then waits for "active" with the outbox drained.
  api_response enable_and_wait(std::chrono::milliseconds timeout
                               = std::chrono::seconds(30));

  // -- Outlook side (the "outlook" app) --------------------------------------

  /// A Graph call under /v1.0 with the outlook app's token (429 and 503
  /// are retried after their Retry-After, as a client would).
  api_response graph(std::string_view method, std::string_view path,
                     std::string_view body = {},
                     const http::header_list& headers = {});
  // `mailbox`: an Office 365 user id; empty for the admin's.

  /// GET one event, with `Prefer: outlook.timezone="zone"` unless `zone`
  /// is empty; REQUIREs 200.
  api_response outlook_get(std::string_view event, std::string_view zone = {},
                           std::string_view mailbox = {});
  /// The names of the admin's calendars.
  std::vector<std::string> calendar_names();
  /// The id of the calendar named "CRM" ("" when there is none).
  std::string crm_calendar_id(std::string_view mailbox = {});
  /// The admin's default calendar id (never synced).
  std::string default_calendar_id();
  /// Every event in calendar `cal`, in the order Graph lists them (the
  /// emulator: the order they were created in).
  std::vector<o365_event> o365_events(std::string_view cal,
                                      std::string_view mailbox = {});
  /// Creates an event in calendar `cal`; returns its Graph id.
  std::string outlook_create(std::string_view cal, std::string_view subject,
                             std::string_view start, std::string_view end);
  /// Creates an event in calendar `cal` from a whole Graph body (any
  /// zone, isAllDay, recurrence, ...); REQUIREs 201; returns its id.
  std::string outlook_create_json(std::string_view cal, std::string_view body);
  /// PATCHes an event's subject.
  void outlook_rename(std::string_view event, std::string_view subject);
  /// PATCHes an event with a whole Graph body; REQUIREs 200.
  void outlook_patch(std::string_view event, std::string_view body);
  /// DELETEs an event.
  void outlook_delete(std::string_view event);
  /// A conflict: with Graph's notifications dropped from here on, once
  /// nothing of the admin's sync is pending or running, renames the
  /// admin's Outlook event `outlook_event` to `outlook_subject` and, a
  /// little later, the CRM event `crm_id` to `crm_title`: the CRM's update
  /// then meets a changed event (412).
  void edit_both_sides(std::string_view outlook_event, std::string_view crm_id,
                       std::string_view outlook_subject,
                       std::string_view crm_title);

  // -- the two sides ---------------------------------------------------------

  /// True when every CRM event of the admin that `synced` selects has
  /// exactly one event with the same subject/start/end in the CRM calendar,
  /// and every event there has exactly one such CRM event; `diff` says
  /// what does not match otherwise.
  bool sides_in_sync(const std::function<bool(const crm_event&)>& synced,
                     std::string& diff);
  /// Polls sides_in_sync (and an empty outbox and inbox) until it holds;
  /// REQUIREs it before `timeout`.
  void wait_in_sync(const std::function<bool(const crm_event&)>& synced
                    = not_imported,
                    std::chrono::milliseconds timeout
                    = std::chrono::seconds(30));

  /// The convergence checker (crmsyncctl check ORG) as the service admin.
  check_report check();
  /// Polls the checker until it reports no difference and nothing
  /// pending; REQUIREs it before `timeout`.
  check_report wait_converged(std::chrono::milliseconds timeout
                              = std::chrono::seconds(30));

  // -- webhooks by hand ------------------------------------------------------

  /// The admin's live subscription at the emulator (REQUIREs exactly one):
  /// its id, clientState and the notification URL's path and query.
  struct subscription_info {
    std::string id;
    std::string client_state;
    std::string target; ///< "/webhooks/graph?…" on the node
  };
  subscription_info subscription();
  /// POSTs one change notification for event `graph_id` to the node as
  /// Graph would deliver it; returns the node's answer.
  api_response notify(const subscription_info& s, std::string_view change_type,
                      std::string_view graph_id);

private:
  office365_env env_;
  installed_org org_;
  std::string oid_;
  std::unique_ptr<graph_app> outlook_;
};

} // namespace crmsync::e2e
