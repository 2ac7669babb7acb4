// graph-emulator: the /_emulator control API (seeding tenants, users and
// apps, state, reset, injected faults, counters).

#include "emulator/service_impl.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "common/crypto.hpp"
#include "common/text.hpp"
#include "common/time_format.hpp"
#include "emulator/recurrence.hpp"
#include "emulator/time_zones.hpp"
#include "http/url.hpp"

namespace crmsync::emulator {

namespace {

std::string faults_json(const faults& f) {
  json::writer w;
  w.begin_object();
  w.key("latency_ms").value(f.latency_ms);
  w.key("jitter_ms").value(f.jitter_ms);
  w.key("error_rate").raw(std::to_string(f.error_rate));
  w.key("throttle_rate").raw(std::to_string(f.throttle_rate));
  w.key("access_denied_rate").raw(std::to_string(f.access_denied_rate));
  w.key("mailbox_disabled_rate").raw(std::to_string(f.mailbox_disabled_rate));
  w.key("refuse_text").value(f.refuse_text);
  w.key("refuse_status").value(f.refuse_status);
  w.key("refuse_code").value(f.refuse_code);
  w.key("drop_notifications").raw(std::to_string(f.drop_notifications));
  w.key("duplicate_notifications")
      .raw(std::to_string(f.duplicate_notifications));
  w.key("notification_delay_ms").value(f.notification_delay_ms);
  w.key("remove_subscriptions").raw(std::to_string(f.remove_subscriptions));
  w.end_object();
  return w.take();
}

} // namespace

// -- routes

void service::impl::install_control_routes() {
  auto self = this;

  // ---- control API
  // --------------------------------------------------------------

  routes.add(
      "POST", "/_emulator/tenants",
      [self](request& req, const http::path_params&, responder_ptr r) {
        object o;
        body_error err;
        if (!parse_body(req.body, o, err))
          return r->reply(
              graph_error(req, 400, "BadRequest", err.message, self->now()));
        std::lock_guard<std::mutex> guard{self->mtx};
        tenant t;
        std::string_view sv;
        t.id = o["id"].get_string().get(sv) ? new_guid() : std::string{sv};
        if (o["domain"].get_string().get(sv) || sv.empty())
          return r->reply(graph_error(req, 400, "BadRequest",
                                      "'domain' is required", self->now()));
        t.domain = ascii_lower(sv);
        if (self->find_tenant(t.id) || self->find_tenant(t.domain))
          return r->reply(graph_error(req, 409, "Conflict",
                                      "tenant already exists", self->now()));
        std::vector<user> users;
        response refused;
        if (!self->read_new_users(req, o, t.id, users, refused))
          return r->reply(std::move(refused));
        self->dir.tenant_by_domain[t.domain] = t.id;
        auto& added = self->dir.tenants[t.id] = t;
        json::writer w;
        w.begin_object().key("id").value(t.id);
        w.key("domain").value(t.domain);
        self->add_users(w, added, users);
        w.end_object();
        r->reply(json_response(201, w.take()));
      });

  // More people join an existing tenant (by id or domain); the same
  // fields and the same uniqueness as when seeding the tenant.
  routes.add(
      "POST", "/_emulator/tenants/{tenant}/users",
      [self](request& req, const http::path_params& pp, responder_ptr r) {
        object o;
        body_error err;
        if (!parse_body(req.body, o, err))
          return r->reply(
              graph_error(req, 400, "BadRequest", err.message, self->now()));
        std::lock_guard<std::mutex> guard{self->mtx};
        auto t = self->find_tenant(pp[0]);
        if (t == nullptr)
          return r->reply(graph_error(
              req, 404, "NotFound", "no tenant '" + pp[0] + "'", self->now()));
        std::vector<user> users;
        response refused;
        if (!self->read_new_users(req, o, t->id, users, refused))
          return r->reply(std::move(refused));
        json::writer w;
        w.begin_object();
        self->add_users(w, *t, users);
        w.end_object();
        r->reply(json_response(201, w.take()));
      });

  // A person leaves the organization: the user, their mailbox and the
  // subscriptions on it (subscriptionRemoved) are gone; their UPN is free.
  routes.add(
      "DELETE", "/_emulator/users/{user}",
      [self](request& req, const http::path_params& pp, responder_ptr r) {
        std::lock_guard<std::mutex> guard{self->mtx};
        auto u = self->find_any_user(pp[0]);
        if (u == nullptr)
          return r->reply(self->user_not_found(req, pp[0]));
        self->delete_user(*u);
        response res;
        res.status = 204;
        r->reply(std::move(res));
      });

  routes.add(
      "POST", "/_emulator/apps",
      [self](request& req, const http::path_params&, responder_ptr r) {
        object o;
        body_error err;
        if (!parse_body(req.body, o, err))
          return r->reply(
              graph_error(req, 400, "BadRequest", err.message, self->now()));
        std::lock_guard<std::mutex> guard{self->mtx};
        app a;
        std::string_view sv;
        if (o["client_id"].get_string().get(sv) || sv.empty())
          return r->reply(graph_error(req, 400, "BadRequest",
                                      "'client_id' is required", self->now()));
        a.client_id = std::string{sv};
        if (o["client_secret"].get_string().get(sv) || sv.empty())
          return r->reply(graph_error(req, 400, "BadRequest",
                                      "'client_secret' is required",
                                      self->now()));
        a.client_secret = std::string{sv};
        simdjson::dom::array arr;
        if (!o["tenants"].get_array().get(arr))
          for (element te : arr) {
            if (te.get_string().get(sv))
              continue;
            auto t = self->find_tenant(sv);
            if (t == nullptr)
              return r->reply(graph_error(
                  req, 400, "BadRequest",
                  "unknown tenant '" + std::string{sv} + "'", self->now()));
            a.consented_tenants.insert(t->id);
          }
        self->dir.apps[a.client_id] = a;
        json::writer w;
        w.begin_object().key("client_id").value(a.client_id).end_object();
        r->reply(json_response(201, w.take()));
      });

  routes.add(
      "GET", "/_emulator/state",
      [self](request&, const http::path_params&, responder_ptr r) {
        std::lock_guard<std::mutex> guard{self->mtx};
        json::writer w;
        w.begin_object().key("tenants").begin_array();
        for (auto& [id, t] : self->dir.tenants) {
          w.begin_object().key("id").value(id);
          w.key("domain").value(t.domain);
          w.key("users").value(static_cast<uint64_t>(t.user_ids.size()));
          w.end_object();
        }
        w.end_array().key("apps").begin_array();
        for (auto& [id, a] : self->dir.apps) {
          w.begin_object().key("client_id").value(id);
          w.key("tenants").begin_array();
          for (auto& t : a.consented_tenants)
            w.value(t);
          w.end_array().end_object();
        }
        w.end_array();
        uint64_t events = 0, calendars = 0, mails = 0, log = 0;
        for (auto& [uid, mb] : self->dir.mailboxes) {
          events += mb.events.size();
          calendars += mb.calendars.size();
          mails += mb.outbox.size();
          for (auto& c : mb.calendars)
            log += c.log.size() + c.deleted_series.size()
                   + c.changed_series.size();
        }
        w.key("calendars").value(calendars);
        w.key("change_log_entries").value(log);
        w.key("events").value(events);
        w.key("mail").value(mails);
        w.key("tokens").value(static_cast<uint64_t>(self->dir.tokens.size()));
        w.key("code_redemptions").value(self->dir.code_redemptions);
        w.key("app_tokens_issued").begin_object();
        for (auto& [tenant, n] : self->dir.app_tokens_issued)
          w.key(tenant).value(n);
        w.end_object();
        // The subscription indexes' entries next to the subscriptions
        // (equal while the indexes are in step) and the delta chains
        // indexed by calendar (dead ones go at compaction).
        uint64_t by_user = 0, chains = 0;
        for (auto& [uid, ids] : self->dir.subscriptions_by_user)
          by_user += ids.size();
        for (auto& [key, ids] : self->dir.calendar_chains)
          chains += ids.size();
        w.key("subscriptions")
            .value(static_cast<uint64_t>(self->dir.subscriptions.size()));
        w.key("subscriptions_by_user").value(by_user);
        w.key("subscriptions_by_expiry")
            .value(static_cast<uint64_t>(
                self->dir.subscriptions_by_expiry.size()));
        w.key("delta_chains").value(chains);
        w.end_object();
        r->reply(json_response(200, w.take()));
      });

  routes.add("POST", "/_emulator/reset",
             [self](request&, const http::path_params&, responder_ptr r) {
               std::lock_guard<std::mutex> guard{self->mtx};
               self->dir = directory{};
               self->fault = faults{};
               self->struck = fault_counts{};
               response res;
               res.status = 204;
               r->reply(std::move(res));
             });

  // Fault injection: partial updates; every rate is a share in [0, 1].
  routes.add(
      "POST", "/_emulator/faults",
      [self](request& req, const http::path_params&, responder_ptr r) {
        object o;
        body_error err;
        if (!parse_body(req.body, o, err))
          return r->reply(
              graph_error(req, 400, "BadRequest", err.message, self->now()));
        std::lock_guard<std::mutex> guard{self->mtx};
        auto next = self->fault;
        for (auto kv : o) {
          std::string key{kv.key};
          if (key == "refuse_text" || key == "refuse_code") {
            std::string_view text;
            if (kv.value.get_string().get(text))
              return r->reply(graph_error(req, 400, "BadRequest",
                                          "'" + key + "' must be a string",
                                          self->now()));
            (key == "refuse_text" ? next.refuse_text : next.refuse_code)
                = std::string{text};
            continue;
          }
          double number = 0;
          if (kv.value.get_double().get(number)) {
            int64_t whole = 0;
            if (kv.value.get_int64().get(whole))
              return r->reply(graph_error(req, 400, "BadRequest",
                                          "'" + key + "' must be a number",
                                          self->now()));
            number = static_cast<double>(whole);
          }
          bool is_rate = key != "latency_ms" && key != "jitter_ms"
                         && key != "notification_delay_ms"
                         && key != "refuse_status";
          if (number < 0 || (is_rate && number > 1) || number > 600000)
            return r->reply(graph_error(req, 400, "BadRequest",
                                        "'" + key + "' is out of range",
                                        self->now()));
          if (key == "latency_ms")
            next.latency_ms = static_cast<int64_t>(number);
          else if (key == "jitter_ms")
            next.jitter_ms = static_cast<int64_t>(number);
          else if (key == "error_rate")
            next.error_rate = number;
          else if (key == "throttle_rate")
            next.throttle_rate = number;
          else if (key == "access_denied_rate")
            next.access_denied_rate = number;
          else if (key == "mailbox_disabled_rate")
            next.mailbox_disabled_rate = number;
          else if (key == "refuse_status" && number >= 400 && number <= 599)
            next.refuse_status = static_cast<int64_t>(number);
          else if (key == "drop_notifications")
            next.drop_notifications = number;
          else if (key == "duplicate_notifications")
            next.duplicate_notifications = number;
          else if (key == "notification_delay_ms")
            next.notification_delay_ms = static_cast<int64_t>(number);
          else if (key == "remove_subscriptions")
            next.remove_subscriptions = number;
          else
            return r->reply(graph_error(req, 400, "BadRequest",
                                        "unknown fault '" + key + "'",
                                        self->now()));
        }
        self->fault = next;
        r->reply(json_response(200, faults_json(next)));
      });

  routes.add("GET", "/_emulator/faults",
             [self](request&, const http::path_params&, responder_ptr r) {
               std::lock_guard<std::mutex> guard{self->mtx};
               r->reply(json_response(200, faults_json(self->fault)));
             });

  // What the faults did and what the notifier delivered, counted since
  // the start (faults: since the last reset).
  routes.add(
      "GET", "/_emulator/counters",
      [self](request&, const http::path_params&, responder_ptr r) {
        auto sent = self->notifications.stats();
        std::lock_guard<std::mutex> guard{self->mtx};
        auto& c = self->struck;
        json::writer w;
        w.begin_object().key("faults").begin_object();
        w.key("errors").value(c.errors);
        w.key("throttles").value(c.throttles);
        w.key("access_denied").value(c.access_denied);
        w.key("mailbox_disabled").value(c.mailbox_disabled);
        w.key("refused_events").value(c.refused_events);
        w.key("dropped_notifications").value(c.dropped_notifications);
        w.key("duplicated_notifications").value(c.duplicated_notifications);
        w.key("removed_subscriptions").value(c.removed_subscriptions);
        w.end_object().key("notifications").begin_object();
        w.key("delivered").value(sent.delivered);
        w.key("retried").value(sent.retried);
        w.key("dropped").value(sent.dropped);
        w.key("pending").value(sent.pending);
        w.end_object().end_object();
        r->reply(json_response(200, w.take()));
      });

  // A person deletes one of their calendars in Outlook: the calendar and
  // its events are gone and subscriptions on it end (subscriptionRemoved),
  // whichever app created them. The default calendar cannot be deleted.
  routes.add(
      "DELETE", "/_emulator/users/{user}/calendars/{cal}",
      [self](request& req, const http::path_params& pp, responder_ptr r) {
        std::lock_guard<std::mutex> guard{self->mtx};
        auto u = self->find_any_user(pp[0]);
        if (u == nullptr)
          return r->reply(self->user_not_found(req, pp[0]));
        auto mb = self->dir.mailboxes.find(u->id);
        auto c = mb == self->dir.mailboxes.end()
                     ? nullptr
                     : self->find_calendar(mb->second, pp[1]);
        if (c == nullptr)
          return r->reply(self->item_not_found(req));
        if (c->is_default)
          return r->reply(graph_error(req, 400, "ErrorCannotDeleteObject",
                                      "The default calendar cannot be deleted.",
                                      self->now()));
        self->delete_calendar(*u, mb->second, *c);
        response res;
        res.status = 204;
        r->reply(std::move(res));
      });
}

} // namespace crmsync::emulator
