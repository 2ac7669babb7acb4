// graph-emulator: mailboxes (with Outlook's per-mailbox limits) and
// calendars (/v1.0/users/{user}/calendars).

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

/// Deletes a calendar with its events; subscriptions on it are removed
/// (call with mtx held; `c` must not be the default calendar).
void service::impl::delete_calendar(const user& u, mailbox& mb,
                                    const calendar& c) {
  for (auto& id : c.event_ids)
    mb.events.erase(id);
  // Only this user's subscriptions (a copy: removing edits the index).
  auto mine = dir.subscriptions_by_user.find(u.id);
  std::vector<std::string> ids;
  if (mine != dir.subscriptions_by_user.end())
    ids.assign(mine->second.begin(), mine->second.end());
  for (auto& sid : ids) {
    auto i = dir.subscriptions.find(sid);
    if (i != dir.subscriptions.end() && i->second.calendar_id == c.id)
      remove_subscription(i);
  }
  auto id = c.id;
  mb.calendars.erase(
      std::remove_if(mb.calendars.begin(), mb.calendars.end(),
                     [&](const calendar& x) { return x.id == id; }),
      mb.calendars.end());
}

/// Authenticates and resolves the user and their mailbox; answers and
/// returns nullptr on any failure.
mailbox* service::impl::open_mailbox(const request& req, const responder_ptr& r,
                                     const std::string& key, user*& u) {
  response err;
  auto tok = check_token(req, err);
  if (tok == nullptr) {
    r->reply(std::move(err));
    return nullptr;
  }
  u = resolve_user(req, r, *tok, key);
  if (u == nullptr)
    return nullptr;
  if (!within_mailbox_budget(req, r, *tok, *u))
    return nullptr;
  if (!u->has_mailbox) {
    r->reply(graph_error(req, 404, "MailboxNotEnabledForRESTAPI",
                         "The mailbox is either inactive, soft-deleted, or "
                         "is hosted on-premise.",
                         now()));
    return nullptr;
  }
  auto& mb = dir.mailboxes[u->id];
  if (mb.calendars.empty()) {
    calendar def;
    def.id = new_item_id();
    def.name = "Calendar";
    def.change_key = new_change_key();
    def.is_default = true;
    mb.calendars.push_back(def);
  }
  return &mb;
}

/// Outlook limits each (app, mailbox) pair to N requests per window;
/// beyond it, 429 with Retry-After until the oldest request ages out.
bool service::impl::within_mailbox_budget(const request& req,
                                          const responder_ptr& r,
                                          const access_token& tok,
                                          const user& u) {
  auto& times = dir.usage[{tok.client_id, u.id}];
  auto window_ms = static_cast<int64_t>(cfg.mailbox_window.count()) * 1000;
  auto t = now();
  while (!times.empty() && times.front() <= t - window_ms)
    times.pop_front();
  auto throttle = [&](int64_t wait_s) {
    auto res = graph_error(req, 429, "ApplicationThrottled",
                           "Application is over its MailboxConcurrency "
                           "limit.",
                           t);
    res.headers.emplace_back("Retry-After",
                             std::to_string(std::max<int64_t>(1, wait_s)));
    r->reply(std::move(res));
    return false;
  };
  if (times.size() >= cfg.mailbox_requests_per_window)
    return throttle((times.front() + window_ms - t + 999) / 1000);
  // At most N requests of one app on one mailbox are in flight; a request
  // stays in flight until its (possibly delayed) answer is sent.
  mailbox_key key{tok.client_id, u.id};
  if (current_slot != nullptr) {
    std::lock_guard<std::mutex> guard{inflight_mtx};
    if (inflight[key] >= cfg.mailbox_concurrency)
      return throttle(1);
    ++inflight[key];
    current_slot->hold(key);
  }
  times.push_back(t);
  return true;
}

/// The named calendar, or the default one when `id` is null; answers
/// 404 ErrorItemNotFound itself and returns nullptr when there is none.
calendar* service::impl::open_calendar(const request& req,
                                       const responder_ptr& r, mailbox& mb,
                                       const std::string* id) {
  auto c = id ? find_calendar(mb, *id) : &mb.calendars[0];
  if (c == nullptr)
    r->reply(item_not_found(req));
  return c;
}

calendar* service::impl::find_calendar(mailbox& mb, std::string_view id) {
  for (auto& c : mb.calendars)
    if (c.id == id)
      return &c;
  return nullptr;
}

response service::impl::item_not_found(const request& req) {
  return graph_error(req, 404, "ErrorItemNotFound",
                     "The specified object was not found in the store.", now());
}

void service::impl::write_calendar(json::writer& w, const calendar& c,
                                   const user& owner) {
  w.begin_object();
  w.key("id").value(c.id);
  w.key("name").value(c.name);
  w.key("color").value("auto");
  w.key("hexColor").value("");
  w.key("isDefaultCalendar").value(c.is_default);
  w.key("changeKey").value(c.change_key);
  w.key("canShare").value(true);
  w.key("canViewPrivateItems").value(true);
  w.key("canEdit").value(true);
  w.key("isRemovable").value(!c.is_default);
  w.key("isTallyingResponses").value(true);
  w.key("allowedOnlineMeetingProviders")
      .begin_array()
      .value("teamsForBusiness")
      .end_array();
  w.key("defaultOnlineMeetingProvider").value("teamsForBusiness");
  w.key("owner").begin_object();
  w.key("name").value(owner.display_name);
  w.key("address").value(owner.mail.empty() ? owner.user_principal_name
                                            : owner.mail);
  w.end_object();
  w.end_object();
}

// -- routes

void service::impl::install_calendars_routes() {
  auto self = this;

  // ---- Graph: calendars
  // ------------------------------------------------------------------------

  routes.add(
      "GET", "/v1.0/users/{user}/calendars",
      [self](request& req, const http::path_params& pp, responder_ptr r) {
        std::lock_guard<std::mutex> guard{self->mtx};
        user* u = nullptr;
        auto mb = self->open_mailbox(req, r, pp[0], u);
        if (mb == nullptr)
          return;
        json::writer w;
        w.begin_object().key("value").begin_array();
        for (auto& c : mb->calendars)
          self->write_calendar(w, c, *u);
        w.end_array().end_object();
        r->reply(json_response(200, w.take()));
      });

  routes.add(
      "POST", "/v1.0/users/{user}/calendars",
      [self](request& req, const http::path_params& pp, responder_ptr r) {
        object o;
        body_error err;
        if (!parse_body(req.body, o, err))
          return r->reply(
              graph_error(req, 400, err.code, err.message, self->now()));
        std::string_view name;
        if (o["name"].get_string().get(name) || name.empty())
          return r->reply(graph_error(req, 400, "ErrorInvalidRequest",
                                      "The calendar name is required.",
                                      self->now()));
        std::lock_guard<std::mutex> guard{self->mtx};
        user* u = nullptr;
        auto mb = self->open_mailbox(req, r, pp[0], u);
        if (mb == nullptr)
          return;
        for (auto& c : mb->calendars)
          if (ascii_lower(c.name) == ascii_lower(name))
            return r->reply(
                graph_error(req, 409, "ErrorFolderExists",
                            "A folder with the specified name already exists.",
                            self->now()));
        calendar c;
        c.id = new_item_id();
        c.name = std::string{name};
        c.change_key = new_change_key();
        mb->calendars.push_back(c);
        json::writer w;
        self->write_calendar(w, c, *u);
        r->reply(json_response(201, w.take()));
      });

  routes.add(
      "GET", "/v1.0/users/{user}/calendars/{cal}",
      [self](request& req, const http::path_params& pp, responder_ptr r) {
        std::lock_guard<std::mutex> guard{self->mtx};
        user* u = nullptr;
        auto mb = self->open_mailbox(req, r, pp[0], u);
        if (mb == nullptr)
          return;
        auto c = self->find_calendar(*mb, pp[1]);
        if (c == nullptr)
          return r->reply(self->item_not_found(req));
        json::writer w;
        self->write_calendar(w, *c, *u);
        r->reply(json_response(200, w.take()));
      });

  routes.add(
      "DELETE", "/v1.0/users/{user}/calendars/{cal}",
      [self](request& req, const http::path_params& pp, responder_ptr r) {
        std::lock_guard<std::mutex> guard{self->mtx};
        user* u = nullptr;
        auto mb = self->open_mailbox(req, r, pp[0], u);
        if (mb == nullptr)
          return;
        auto c = self->find_calendar(*mb, pp[1]);
        if (c == nullptr)
          return r->reply(self->item_not_found(req));
        if (c->is_default)
          return r->reply(graph_error(req, 400, "ErrorCannotDeleteObject",
                                      "The default calendar cannot be deleted.",
                                      self->now()));
        self->delete_calendar(*u, *mb, *c);
        response res;
        res.status = 204;
        r->reply(std::move(res));
      });
}

} // namespace crmsync::emulator
