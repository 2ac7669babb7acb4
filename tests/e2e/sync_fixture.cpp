#include "tests/e2e/sync_fixture.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <stdexcept>
#include <thread>
#include <tuple>

#include "common/time_format.hpp"

namespace crmsync::e2e {

namespace {

constexpr const char* outlook_id = "outlook";
constexpr const char* outlook_secret = "o";

office365_env::options env_options(const sync_options& o) {
  office365_env::options out;
  out.node_args
      = {"--reconcile-interval", std::to_string(o.reconcile_interval_s)};
  if (o.max_initial_events > 0) {
    out.node_args.emplace_back("--max-initial-events");
    out.node_args.push_back(std::to_string(o.max_initial_events));
  }
  out.node_args.insert(out.node_args.end(), o.node_args.begin(),
                       o.node_args.end());
  out.emulator_args = o.emulator_args;
  return out;
}

/// Graph's dateTime ("2026-12-01T10:00:00.0000000", UTC) as RFC 3339.
std::string graph_time_to_rfc3339(const api_response& r,
                                  const std::string& base) {
  auto zone = r.str(base + "/timeZone");
  if (zone != "UTC")
    throw std::runtime_error("event time not in UTC: " + r.json(base));
  return r.str(base + "/dateTime").substr(0, 19) + "Z";
}

using triple = std::tuple<std::string, std::string, std::string>;

std::string show(const triple& t) {
  return "'" + std::get<0>(t) + "' " + std::get<1>(t) + ".." + std::get<2>(t);
}

} // namespace

std::string hours_from_now(double hours) {
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  return format_rfc3339((now + static_cast<int64_t>(hours * 3600)) * 1000);
}

bool not_imported(const crm_event& e) {
  return e.origin != "imported";
}

sync_env::sync_env(sync_options opts) : env_(env_options(opts)) {
  // Paid: colleagues join by approved join requests (join()).
  org_ = env_.install_paid();
  oid_ = env_.o365_id("admin@contoso.com");
  // "The person in Outlook": another app the tenant has consented to.
  auto app = env_.emulator().post(
      "", "/_emulator/apps",
      std::string{R"({"client_id":")"} + outlook_id + R"(","client_secret":")"
          + outlook_secret + R"(","tenants":["contoso.com"]})");
  E2E_REQUIRE_STATUS(app, 201);
  outlook_ = std::make_unique<graph_app>(env_.emulator().port(), "contoso.com",
                                         outlook_id, outlook_secret);
  // The emulator's jitter only adds: latency - jitter, plus up to 2 jitter.
  const int jitter = std::min(opts.graph_jitter_ms, opts.graph_latency_ms);
  set_faults("{\"latency_ms\":" + std::to_string(opts.graph_latency_ms - jitter)
             + ",\"jitter_ms\":" + std::to_string(2 * jitter) + "}");
}

void sync_env::restart_node() {
  env_.restart_node();
}

void sync_env::kill9_and_start() {
  env_.node_process().kill9();
  env_.node_process().start();
}

emulator_counters sync_env::counters() {
  auto r = env_.emulator().get("", "/_emulator/counters");
  E2E_REQUIRE_STATUS(r, 200);
  emulator_counters c;
  c.errors = r.u64("/faults/errors");
  c.throttles = r.u64("/faults/throttles");
  c.access_denied = r.u64("/faults/access_denied");
  c.mailbox_disabled = r.u64("/faults/mailbox_disabled");
  c.refused_events = r.u64("/faults/refused_events");
  c.dropped_notifications = r.u64("/faults/dropped_notifications");
  c.duplicated_notifications = r.u64("/faults/duplicated_notifications");
  c.delivered_notifications = r.u64("/notifications/delivered");
  c.pending_notifications = r.u64("/notifications/pending");
  return c;
}

member sync_env::join(std::string_view upn) {
  auto session = env_.session_of(upn);
  auto request
      = expect_status(node().post(session, "/api/v1/join-requests", "{}"), 201);
  auto approved
      = expect_status(node().post(org_.token,
                                  "/api/v1/orgs/" + org_.id + "/join-requests/"
                                      + request.str("/id") + "/approve",
                                  "{}"),
                      200);
  REQUIRE(approved.str("/user/profile") == "standard");
  auto signin = env_.sign_in("/o365/signin", upn);
  E2E_REQUIRE_STATUS(signin.answer, 200);
  REQUIRE(signin.answer.str("/status") == "member");
  member m{approved.str("/user/id"), signin.token, env_.o365_id(upn)};
  REQUIRE(signin.answer.str("/user/id") == m.id);
  REQUIRE(m.token.rfind("crm_", 0) == 0);
  return m;
}

// -- CRM side
// ---------------------------------------------------------------------------

std::string sync_env::create_event(std::string_view title,
                                   std::string_view start,
                                   std::string_view end) {
  auto r = node().post(org_.token, user_events_path(org_.id, org_.admin_id),
                       event_body(title, start, end));
  E2E_REQUIRE_STATUS(r, 201);
  return r.str("/id");
}

api_response sync_env::patch_event(std::string_view id, std::string_view body) {
  auto r = node().patch(org_.token, event_path(org_.id, id), body);
  E2E_REQUIRE_STATUS(r, 200);
  return r;
}

void sync_env::delete_event(std::string_view id) {
  auto r = node().del(org_.token, event_path(org_.id, id));
  E2E_REQUIRE_STATUS(r, 204);
}

std::string sync_env::create_event_json(std::string_view body) {
  auto r
      = node().post(org_.token, user_events_path(org_.id, org_.admin_id), body);
  E2E_REQUIRE_STATUS(r, 201);
  return r.str("/id");
}

std::vector<std::string>
sync_env::import_events(const std::vector<std::string>& event_bodies,
                        std::string owner) {
  if (owner.empty())
    owner = org_.admin_id;
  std::string list;
  for (auto& b : event_bodies)
    list += (list.empty() ? "" : ",") + b;
  auto r = node().post(org_.token, "/api/v1/orgs/" + org_.id + "/events/import",
                       "{\"owner\":" + json_str(owner) + ",\"events\":[" + list
                           + "]}");
  E2E_REQUIRE_STATUS(r, 201);
  std::vector<std::string> ids;
  for (size_t i = 0; i < r.size("/ids"); ++i)
    ids.push_back(r.str("/ids/" + std::to_string(i)));
  return ids;
}

namespace {

crm_event read_crm_event(const api_response& r, const std::string& base) {
  crm_event e;
  e.id = r.str(base + "/id");
  e.owner = r.str(base + "/owner");
  e.title = r.str(base + "/title");
  e.start = r.str(base + "/start");
  e.end = r.str(base + "/end");
  e.origin = r.str(base + "/origin");
  e.version = r.i64(base + "/version");
  e.all_day = r.boolean(base + "/all_day");
  e.time_zone = r.str(base + "/time_zone");
  for (size_t i = 0; i < r.size(base + "/participants"); ++i)
    e.participants.push_back(
        r.str(base + "/participants/" + std::to_string(i) + "/email"));
  return e;
}

} // namespace

crm_event sync_env::get_event(std::string_view id) {
  auto r = node().get(org_.token, event_path(org_.id, id));
  E2E_REQUIRE_STATUS(r, 200);
  return read_crm_event(r, "");
}

std::vector<crm_event> sync_env::crm_events(std::string user) {
  if (user.empty())
    user = org_.admin_id;
  std::vector<crm_event> out;
  for (auto& item :
       walk_pages(node(), org_.token, user_events_path(org_.id, user), 500)) {
    api_response r{200, item, {}};
    out.push_back(read_crm_event(r, ""));
  }
  return out;
}

// -- sync
// -------------------------------------------------------------------------------

api_response sync_env::set_sync(bool enabled) {
  auto r = put_sync(org_.token, org_.admin_id, enabled);
  E2E_REQUIRE_STATUS(r, 200);
  return r;
}

api_response sync_env::put_sync(std::string_view token, std::string_view user,
                                bool enabled) {
  return node().put(token, user_path(org_.id, user) + "/calendar-sync",
                    enabled ? R"({"enabled":true})" : R"({"enabled":false})");
}

void sync_env::edit_both_sides(std::string_view outlook_event,
                               std::string_view crm_id,
                               std::string_view outlook_subject,
                               std::string_view crm_title) {
  set_faults(R"({"drop_notifications":1})");
  // Whatever was notified before is delivered and applied first, and no
  // run of the admin is left in progress: a run still reading delta would
  // take Outlook's edit in before the CRM's, and there would be no
  // conflict (seen under load and at Graph latency).
  wait_in_sync();
  REQUIRE(crmsync::test::eventually([&] {
    if (counters().pending_notifications != 0)
      return false;
    auto st = status(); // keeps the calendar actor live
    auto a
        = node().get(admin_token, "/admin/v1/actors/calendar/" + org_.admin_id);
    return st.u64("/inbox") == 0 && st.u64("/outbox") == 0 && a.status == 200
           && !a.boolean("/sync_run/running") && !a.boolean("/sync_run/queued");
  }));
  outlook_rename(outlook_event, outlook_subject);
  // Modification times have millisecond resolution: make the CRM's later.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  auto r = patch_event(crm_id, "{\"title\":" + json_str(crm_title) + "}");
  E2E_REQUIRE_STATUS(r, 200);
}

api_response sync_env::status() {
  return status_of(org_.token, org_.admin_id);
}

api_response sync_env::status_of(std::string_view token,
                                 std::string_view user) {
  auto r = node().get(token, user_path(org_.id, user) + "/calendar-sync");
  E2E_REQUIRE_STATUS(r, 200);
  return r;
}

api_response
sync_env::wait_for_status(const std::function<bool(const api_response&)>& done,
                          std::string_view what,
                          std::chrono::milliseconds timeout) {
  return wait_for_status_of(org_.token, org_.admin_id, done, what, timeout);
}

api_response sync_env::wait_for_status_of(
    std::string_view token, std::string_view user,
    const std::function<bool(const api_response&)>& done, std::string_view what,
    std::chrono::milliseconds timeout) {
  api_response last;
  bool ok = crmsync::test::eventually(
      [&] {
        last = status_of(token, user);
        return done(last);
      },
      timeout);
  INFO("waiting for " << what << "; the status is " << last.body);
  INFO(env_.node_process().log_tail());
  REQUIRE(ok);
  return last;
}

void sync_env::wait_for_runs(std::string_view token, std::string_view user,
                             int runs, std::chrono::milliseconds timeout) {
  auto last = status_of(token, user).str("/last_sync");
  for (int i = 0; i < runs; ++i)
    last = wait_for_status_of(
               token, user,
               [&](const api_response& s) {
                 return !s.is_null("/last_sync") && s.str("/last_sync") != last;
               },
               "sync run " + std::to_string(i + 1) + " of "
                   + std::to_string(runs),
               timeout)
               .str("/last_sync");
}

api_response sync_env::wait_for_state(std::string_view state,
                                      std::chrono::milliseconds timeout) {
  return wait_for_status(
      [&](const api_response& r) { return r.str("/state") == state; },
      "state " + std::string{state}, timeout);
}

api_response sync_env::enable_and_wait(std::chrono::milliseconds timeout) {
  auto r = set_sync(true);
  CHECK(r.str("/state") == "enabling");
  return wait_for_status(
      [](const api_response& s) {
        return s.str("/state") == "active" && s.u64("/outbox") == 0
               && !s.is_null("/subscription_id");
      },
      "active with a subscription", timeout);
}

// -- Outlook side
// -----------------------------------------------------------------------

api_response sync_env::graph(std::string_view method, std::string_view path,
                             std::string_view body,
                             const http::header_list& headers) {
  return outlook_->call(method, path, body, headers);
}

std::vector<std::string> sync_env::calendar_names() {
  auto r = graph("GET", "/users/" + oid_ + "/calendars");
  E2E_REQUIRE_STATUS(r, 200);
  std::vector<std::string> out;
  for (size_t i = 0; i < r.size("/value"); ++i)
    out.push_back(r.str("/value/" + std::to_string(i) + "/name"));
  return out;
}

std::string sync_env::crm_calendar_id(std::string_view mailbox) {
  auto r
      = graph("GET", "/users/" + std::string{mailbox.empty() ? oid_ : mailbox}
                         + "/calendars");
  E2E_REQUIRE_STATUS(r, 200);
  std::string id;
  for (size_t i = 0; i < r.size("/value"); ++i) {
    auto base = "/value/" + std::to_string(i);
    if (r.str(base + "/name") == "CRM") {
      INFO("two calendars named CRM: " << r.body);
      REQUIRE(id.empty());
      id = r.str(base + "/id");
    }
  }
  return id;
}

std::string sync_env::default_calendar_id() {
  auto r = graph("GET", "/users/" + oid_ + "/calendars");
  E2E_REQUIRE_STATUS(r, 200);
  for (size_t i = 0; i < r.size("/value"); ++i) {
    auto base = "/value/" + std::to_string(i);
    if (r.boolean(base + "/isDefaultCalendar"))
      return r.str(base + "/id");
  }
  FAIL("no default calendar: " << r.body);
  return {};
}

std::vector<o365_event> sync_env::o365_events(std::string_view cal,
                                              std::string_view mailbox) {
  std::vector<o365_event> out;
  std::string target = "/users/" + std::string{mailbox.empty() ? oid_ : mailbox}
                       + "/calendars/" + std::string{cal} + "/events?$top=1000";
  each_graph_page(
      [&](const std::string& p) { return graph("GET", p); }, target,
      [&](const api_response& r) {
        for (size_t i = 0; i < r.size("/value"); ++i) {
          auto base = "/value/" + std::to_string(i);
          o365_event e;
          e.id = r.str(base + "/id");
          e.subject = r.str(base + "/subject");
          e.change_key = r.str(base + "/changeKey");
          e.all_day = r.boolean(base + "/isAllDay");
          e.time_zone = r.str(base + "/originalStartTimeZone");
          e.created = r.str(base + "/createdDateTime");
          if (e.all_day) {
            // The dates it shows in its own zone: Graph's dateTime there is
            // midnight; anything else stays visible as a time.
            auto one = outlook_get(e.id, e.time_zone, mailbox);
            for (auto [field, value] :
                 {std::pair{"/start", &e.start}, {"/end", &e.end}}) {
              auto t = one.str(std::string{field} + "/dateTime");
              *value = t.rfind("T00:00:00", 10) == 10 ? t.substr(0, 10) : t;
            }
          } else {
            e.start = graph_time_to_rfc3339(r, base + "/start");
            e.end = graph_time_to_rfc3339(r, base + "/end");
          }
          out.push_back(std::move(e));
        }
      });
  return out;
}

std::string sync_env::outlook_create(std::string_view cal,
                                     std::string_view subject,
                                     std::string_view start,
                                     std::string_view end) {
  auto graph_time = [](std::string_view t) {
    return R"({"dateTime":")" + std::string{t.substr(0, 19)}
           + R"(","timeZone":"UTC"})";
  };
  auto r = graph(
      "POST", "/users/" + oid_ + "/calendars/" + std::string{cal} + "/events",
      "{\"subject\":" + json_str(subject) + ",\"start\":" + graph_time(start)
          + ",\"end\":" + graph_time(end) + "}");
  E2E_REQUIRE_STATUS(r, 201);
  return r.str("/id");
}

std::string sync_env::outlook_create_json(std::string_view cal,
                                          std::string_view body) {
  auto r = graph(
      "POST", "/users/" + oid_ + "/calendars/" + std::string{cal} + "/events",
      body);
  E2E_REQUIRE_STATUS(r, 201);
  return r.str("/id");
}

api_response sync_env::outlook_get(std::string_view event,
                                   std::string_view zone,
                                   std::string_view mailbox) {
  http::header_list h;
  if (!zone.empty())
    h.emplace_back("Prefer", "outlook.timezone=\"" + std::string{zone} + "\"");
  auto r = graph("GET",
                 "/users/" + std::string{mailbox.empty() ? oid_ : mailbox}
                     + "/events/" + std::string{event},
                 "", h);
  E2E_REQUIRE_STATUS(r, 200);
  return r;
}

void sync_env::outlook_patch(std::string_view event, std::string_view body) {
  auto r = graph("PATCH", "/users/" + oid_ + "/events/" + std::string{event},
                 body);
  E2E_REQUIRE_STATUS(r, 200);
}

void sync_env::outlook_rename(std::string_view event,
                              std::string_view subject) {
  auto r = graph("PATCH", "/users/" + oid_ + "/events/" + std::string{event},
                 "{\"subject\":" + json_str(subject) + "}");
  E2E_REQUIRE_STATUS(r, 200);
}

void sync_env::outlook_delete(std::string_view event) {
  auto r = graph("DELETE", "/users/" + oid_ + "/events/" + std::string{event});
  E2E_REQUIRE_STATUS(r, 204);
}

// -- the two sides
// ----------------------------------------------------------------------

bool sync_env::sides_in_sync(
    const std::function<bool(const crm_event&)>& synced, std::string& diff) {
  diff.clear();
  auto cal = crm_calendar_id();
  if (cal.empty()) {
    diff = "there is no CRM calendar in Office 365";
    return false;
  }
  std::map<triple, int> crm, o365;
  for (auto& e : crm_events())
    if (synced(e))
      ++crm[{e.title, e.start, e.end}];
  for (auto& e : o365_events(cal))
    ++o365[{e.subject, e.start, e.end}];
  for (auto& [t, n] : crm) {
    auto i = o365.find(t);
    int m = i == o365.end() ? 0 : i->second;
    if (n != 1)
      diff += "CRM has " + std::to_string(n) + " of " + show(t) + "\n";
    if (m != 1)
      diff += "Office 365 has " + std::to_string(m) + " of CRM event " + show(t)
              + "\n";
  }
  for (auto& [t, m] : o365)
    if (crm.count(t) == 0)
      diff += "Office 365 has " + std::to_string(m) + " of " + show(t)
              + ", which the CRM does not sync\n";
  return diff.empty();
}

void sync_env::wait_in_sync(const std::function<bool(const crm_event&)>& synced,
                            std::chrono::milliseconds timeout) {
  std::string diff;
  api_response last;
  bool ok = crmsync::test::eventually(
      [&] {
        last = status();
        return sides_in_sync(synced, diff) && last.u64("/outbox") == 0
               && last.u64("/inbox") == 0;
      },
      timeout);
  INFO("the sides differ:\n" << diff << "the status is " << last.body);
  INFO(env_.node_process().log_tail());
  REQUIRE(ok);
}

// -- the convergence checker
// -------------------------------------------------------------

check_report sync_env::check() {
  check_report out;
  out.answer = node().get(admin_token, "/admin/v1/orgs/" + org_.id + "/check");
  E2E_REQUIRE_STATUS(out.answer, 200);
  out.differences = out.answer.u64("/differences");
  for (size_t i = 0; i < out.answer.size("/users"); ++i)
    out.pending += out.answer.u64("/users/" + std::to_string(i) + "/pending");
  return out;
}

check_report sync_env::wait_converged(std::chrono::milliseconds timeout) {
  check_report last;
  bool ok = crmsync::test::eventually(
      [&] {
        last = check();
        return last.differences == 0 && last.pending == 0
               && last.answer.size("/users") == 1;
      },
      timeout);
  INFO("the convergence checker reports " << last.answer.body);
  INFO(env_.node_process().log_tail());
  REQUIRE(ok);
  return last;
}

// -- webhooks by hand
// ---------------------------------------------------------------------

sync_env::subscription_info sync_env::subscription() {
  auto r = env_.emulator().get("", "/_emulator/subscriptions");
  E2E_REQUIRE_STATUS(r, 200);
  INFO("the emulator's subscriptions: " << r.body);
  REQUIRE(r.size("/value") == 1);
  subscription_info s;
  s.id = r.str("/value/0/id");
  s.client_state = r.str("/value/0/clientState");
  s.target = split_url(r.str("/value/0/notificationUrl")).target;
  return s;
}

api_response sync_env::notify(const subscription_info& s,
                              std::string_view change_type,
                              std::string_view graph_id) {
  auto resource = "Users/" + oid_ + "/Events/" + std::string{graph_id};
  auto body = "{\"value\":[{\"subscriptionId\":" + json_str(s.id)
              + ",\"clientState\":" + json_str(s.client_state)
              + ",\"changeType\":" + json_str(change_type) + ",\"resource\":"
              + json_str(resource) + ",\"tenantId\":" + json_str(env_.tenant())
              + ",\"resourceData\":{\"@odata.type\":\"#Microsoft.Graph."
                "Event\",\"@odata.id\":"
              + json_str(resource) + ",\"id\":" + json_str(graph_id) + "}}]}";
  return node().post("", s.target, body);
}

} // namespace crmsync::e2e
