// graph-emulator: subscriptions (/v1.0/subscriptions), change and
// lifecycle notifications.

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

/// "created,updated" -> {"created","updated"} (spaces ignored).
std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == ',') {
      out.push_back(cur);
      cur.clear();
    } else if (c != ' ') {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

/// https anywhere; plain http only to a loopback host.
bool acceptable_notification_url(const std::string& url) {
  if (url.rfind("https://", 0) == 0)
    return true;
  std::string host, target;
  uint16_t port = 0;
  if (!split_http_url(url, host, port, target))
    return false;
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

} // namespace

void service::impl::add_subscription(const subscription& s) {
  dir.subscriptions[s.id] = s;
  dir.subscriptions_by_user[s.user_id].insert(s.id);
  dir.subscriptions_by_expiry.emplace(s.expires_ms, s.id);
}

std::map<std::string, subscription>::iterator service::impl::erase_subscription(
    std::map<std::string, subscription>::iterator i) {
  auto& s = i->second;
  dir.subscriptions_by_expiry.erase({s.expires_ms, s.id});
  auto mine = dir.subscriptions_by_user.find(s.user_id);
  if (mine != dir.subscriptions_by_user.end()) {
    mine->second.erase(s.id);
    if (mine->second.empty())
      dir.subscriptions_by_user.erase(mine);
  }
  return dir.subscriptions.erase(i);
}

void service::impl::renew_subscription(subscription& s, int64_t expires_ms) {
  dir.subscriptions_by_expiry.erase({s.expires_ms, s.id});
  s.expires_ms = expires_ms;
  dir.subscriptions_by_expiry.emplace(s.expires_ms, s.id);
}

/// Drops subscriptions past their expiration (Graph deletes them
/// quietly), earliest first: only those that expired are visited.
void service::impl::expire_subscriptions() {
  auto t = now();
  auto& by_expiry = dir.subscriptions_by_expiry;
  while (!by_expiry.empty() && by_expiry.begin()->first <= t) {
    auto i = dir.subscriptions.find(by_expiry.begin()->second);
    if (i == dir.subscriptions.end())
      by_expiry.erase(by_expiry.begin()); // not reached: kept in step
    else
      erase_subscription(i);
  }
}

std::string service::impl::subscription_json(const request& req,
                                             const subscription& s) {
  json::writer w;
  w.begin_object();
  w.key("@odata.context")
      .value(base_url(req) + "/v1.0/$metadata#subscriptions/$entity");
  w.key("id").value(s.id);
  w.key("resource").value(s.resource);
  w.key("applicationId").value(s.client_id);
  w.key("changeType").value(s.change_types);
  w.key("clientState");
  if (s.has_client_state)
    w.value(s.client_state);
  else
    w.null();
  w.key("notificationUrl").value(s.notification_url);
  w.key("lifecycleNotificationUrl");
  if (s.lifecycle_url.empty())
    w.null();
  else
    w.value(s.lifecycle_url);
  w.key("expirationDateTime").value(format_rfc3339_ms(s.expires_ms));
  w.key("creatorId").value(s.client_id);
  w.key("includeResourceData").value(false);
  w.key("latestSupportedTlsVersion").value("v1_2");
  w.end_object();
  return w.take();
}

/// Queues a lifecycle notification for a subscription (call with mtx
/// held); a subscription without a lifecycleNotificationUrl gets none.
void service::impl::notify_lifecycle(const subscription& s,
                                     std::string_view event_name) {
  if (s.lifecycle_url.empty())
    return;
  json::writer w;
  w.begin_object();
  w.key("subscriptionId").value(s.id);
  w.key("subscriptionExpirationDateTime")
      .value(format_rfc3339_ms(s.expires_ms));
  w.key("tenantId").value(s.tenant_id);
  w.key("clientState");
  if (s.has_client_state)
    w.value(s.client_state);
  else
    w.null();
  w.key("lifecycleEvent").value(event_name);
  w.end_object();
  notifications.enqueue(s.lifecycle_url, w.take());
}

/// Ends a subscription as Graph does on its own initiative: a
/// subscriptionRemoved lifecycle notification, then it is gone.
std::map<std::string, subscription>::iterator
service::impl::remove_subscription(
    std::map<std::string, subscription>::iterator i) {
  notify_lifecycle(i->second, "subscriptionRemoved");
  return erase_subscription(i);
}

/// Queues change notifications for every live subscription covering
/// this calendar and change type (call with mtx held).
void service::impl::notify_change(const user& u, const calendar& c,
                                  const event& e, const char* change_type) {
  // Only this user's subscriptions: a write must not walk every
  // subscription of the directory (thousands of mailboxes).
  auto mine = dir.subscriptions_by_user.find(u.id);
  if (mine == dir.subscriptions_by_user.end())
    return;
  auto t = now();
  // A copy: erasing an expired or removed subscription edits the index.
  std::vector<std::string> ids(mine->second.begin(), mine->second.end());
  for (auto& id : ids) {
    auto i = dir.subscriptions.find(id);
    if (i == dir.subscriptions.end())
      continue; // not reached: the index is kept in step
    if (i->second.expires_ms <= t) {
      erase_subscription(i); // expired: gone, as Graph forgets it
      continue;
    }
    auto& s = i->second;
    if (s.calendar_id.empty() ? !c.is_default : s.calendar_id != c.id)
      continue;
    bool wanted = false;
    for (auto& type : split_list(s.change_types))
      wanted = wanted || type == change_type;
    if (!wanted)
      continue;
    if (roll(fault.remove_subscriptions)) {
      ++struck.removed_subscriptions;
      remove_subscription(i);
      continue;
    }
    auto resource = "Users/" + u.id + "/Events/" + e.id;
    json::writer w;
    w.begin_object();
    w.key("id").value(crypto::random_token(12));
    w.key("subscriptionId").value(s.id);
    w.key("subscriptionExpirationDateTime")
        .value(format_rfc3339_ms(s.expires_ms));
    w.key("clientState");
    if (s.has_client_state)
      w.value(s.client_state);
    else
      w.null();
    w.key("changeType").value(change_type);
    w.key("resource").value(resource);
    w.key("tenantId").value(s.tenant_id);
    w.key("resourceData").begin_object();
    w.key("@odata.type").value("#Microsoft.Graph.Event");
    w.key("@odata.id").value(resource);
    w.key("@odata.etag").value("W/\"" + e.change_key + "\"");
    w.key("id").value(e.id);
    w.end_object().end_object();
    std::chrono::milliseconds delay{fault.notification_delay_ms};
    if (roll(fault.drop_notifications)) {
      ++struck.dropped_notifications;
      continue; // lost on the way, as webhooks sometimes are
    }
    auto body = w.take();
    if (roll(fault.duplicate_notifications)) {
      ++struck.duplicated_notifications;
      notifications.enqueue(s.notification_url, body, delay);
    }
    notifications.enqueue(s.notification_url, std::move(body), delay);
  }
}

// -- routes

void service::impl::install_subscriptions_routes() {
  auto self = this;

  // ---- Graph: subscriptions
  // ---------------------------------------------------------

  routes.add(
      "POST", "/v1.0/subscriptions",
      [self](request& req, const http::path_params&, responder_ptr r) {
        auto bad = [&](std::string message) {
          r->reply(
              graph_error(req, 400, "InvalidRequest", message, self->now()));
        };
        object o;
        body_error err;
        if (!parse_body(req.body, o, err))
          return bad(err.message);
        subscription s;
        std::string resource, expiration;
        element v;
        if (o["changeType"].get(v) || !read_string(v, s.change_types)
            || s.change_types.empty())
          return bad("'changeType' is required.");
        for (auto part : split_list(s.change_types))
          if (part != "created" && part != "updated" && part != "deleted")
            return bad("Invalid 'changeType' value '" + part + "'.");
        if (o["notificationUrl"].get(v) || !read_string(v, s.notification_url))
          return bad("'notificationUrl' is required.");
        if (!o["lifecycleNotificationUrl"].get(v))
          read_string(v, s.lifecycle_url);
        if (o["resource"].get(v) || !read_string(v, resource))
          return bad("'resource' is required.");
        if (o["expirationDateTime"].get(v) || !read_string(v, expiration))
          return bad("'expirationDateTime' is required.");
        if (!o["clientState"].get(v)) {
          if (!read_string(v, s.client_state) || s.client_state.size() > 128)
            return bad("'clientState' must be a string of at most 128 "
                       "characters.");
          s.has_client_state = true;
        }
        for (auto* url : {&s.notification_url, &s.lifecycle_url})
          if (!url->empty() && !acceptable_notification_url(*url))
            return bad(
                "Subscription validation request failed. Notification "
                "endpoint must use https (plain http only on loopback): '"
                + *url + "'.");
        auto expires = parse_rfc3339_ms(expiration);
        if (!expires)
          return bad("'expirationDateTime' is not a valid date and time.");
        s.expires_ms = *expires;
        {
          std::lock_guard<std::mutex> guard{self->mtx};
          response auth_err;
          auto tok = self->check_token(req, auth_err);
          if (tok == nullptr)
            return r->reply(std::move(auth_err));
          auto max_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            self->cfg.max_subscription_lifetime)
                            .count();
          if (s.expires_ms <= self->now())
            return bad("Subscription expiration must be in the future.");
          if (s.expires_ms > self->now() + max_ms)
            return r->reply(graph_error(req, 400, "ExtensionError",
                                        "Subscription expiration can only be "
                                            + std::to_string(max_ms / 60000)
                                            + " minutes in the future.",
                                        self->now()));
          // /users/{id}/events (default calendar) or
          // /users/{id}/calendars/{id}/events.
          std::vector<std::string> segs;
          for (auto seg : http::split_path(resource))
            segs.emplace_back(seg);
          bool shape_ok
              = (segs.size() == 3 || segs.size() == 5)
                && ascii_lower(segs[0]) == "users"
                && ascii_lower(segs.back()) == "events"
                && (segs.size() == 3 || ascii_lower(segs[2]) == "calendars");
          if (!shape_ok)
            return bad("Resource '" + resource + "' is not supported.");
          auto u = self->resolve_user(req, r, *tok, segs[1]);
          if (u == nullptr)
            return;
          user* owner = nullptr;
          auto mb = self->open_mailbox(req, r, u->id, owner);
          if (mb == nullptr)
            return;
          if (segs.size() == 5) {
            if (self->find_calendar(*mb, segs[3]) == nullptr)
              return r->reply(self->item_not_found(req));
            s.calendar_id = segs[3];
          }
          s.user_id = u->id;
          s.client_id = tok->client_id;
          s.tenant_id = tok->tenant_id;
          s.resource = resource;
        }
        // The handshake talks to the subscriber: never under the lock.
        std::string why;
        if (!self->notifications.validate(s.notification_url, why)
            || (!s.lifecycle_url.empty()
                && !self->notifications.validate(s.lifecycle_url, why)))
          return bad("Subscription validation request failed. " + why);
        s.id = new_guid();
        std::lock_guard<std::mutex> guard{self->mtx};
        self->add_subscription(s);
        r->reply(json_response(201, self->subscription_json(req, s)));
      });

  routes.add("GET", "/v1.0/subscriptions",
             [self](request& req, const http::path_params&, responder_ptr r) {
               std::lock_guard<std::mutex> guard{self->mtx};
               response err;
               auto tok = self->check_token(req, err);
               if (tok == nullptr)
                 return r->reply(std::move(err));
               self->expire_subscriptions();
               // A subscription's user is in its tenant: the tenant's users'
               // subscriptions, in id order as before, not every one there is.
               std::set<std::string> ids;
               auto t = self->dir.tenants.find(tok->tenant_id);
               if (t != self->dir.tenants.end())
                 for (auto& uid : t->second.user_ids) {
                   auto mine = self->dir.subscriptions_by_user.find(uid);
                   if (mine != self->dir.subscriptions_by_user.end())
                     ids.insert(mine->second.begin(), mine->second.end());
                 }
               std::string body = "{\"value\":[";
               bool first = true;
               for (auto& id : ids) {
                 auto i = self->dir.subscriptions.find(id);
                 if (i == self->dir.subscriptions.end()
                     || i->second.client_id != tok->client_id
                     || i->second.tenant_id != tok->tenant_id)
                   continue;
                 if (!first)
                   body += ',';
                 first = false;
                 body += self->subscription_json(req, i->second);
               }
               body += "]}";
               r->reply(json_response(200, body));
             });

  enum class sub_verb { get, patch, del };
  auto one_subscription = [self](sub_verb v, request& req,
                                 const std::string& id, responder_ptr r) {
    std::string new_expiration;
    if (v == sub_verb::patch) {
      object o;
      body_error err;
      element e;
      if (!parse_body(req.body, o, err) || o["expirationDateTime"].get(e)
          || !read_string(e, new_expiration))
        return r->reply(graph_error(req, 400, "InvalidRequest",
                                    "'expirationDateTime' is required.",
                                    self->now()));
    }
    std::lock_guard<std::mutex> guard{self->mtx};
    response err;
    auto tok = self->check_token(req, err);
    if (tok == nullptr)
      return r->reply(std::move(err));
    self->expire_subscriptions();
    auto i = self->dir.subscriptions.find(id);
    if (i == self->dir.subscriptions.end()
        || i->second.client_id != tok->client_id
        || i->second.tenant_id != tok->tenant_id)
      return r->reply(graph_error(req, 404, "ResourceNotFound",
                                  "The object was not found.", self->now()));
    if (v == sub_verb::del) {
      self->erase_subscription(i);
      response res;
      res.status = 204;
      return r->reply(std::move(res));
    }
    if (v == sub_verb::patch) {
      auto expires = parse_rfc3339_ms(new_expiration);
      auto max_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        self->cfg.max_subscription_lifetime)
                        .count();
      if (!expires || *expires <= self->now())
        return r->reply(graph_error(req, 400, "InvalidRequest",
                                    "Subscription expiration must be a time "
                                    "in the future.",
                                    self->now()));
      if (*expires > self->now() + max_ms)
        return r->reply(graph_error(req, 400, "ExtensionError",
                                    "Subscription expiration can only be "
                                        + std::to_string(max_ms / 60000)
                                        + " minutes in the future.",
                                    self->now()));
      self->renew_subscription(i->second, *expires);
    }
    r->reply(json_response(200, self->subscription_json(req, i->second)));
  };
  for (auto [method, v] : {std::pair{"GET", sub_verb::get},
                           {"PATCH", sub_verb::patch},
                           {"DELETE", sub_verb::del}}) {
    auto verb = v;
    routes.add(method, "/v1.0/subscriptions/{id}",
               [one_subscription, verb](
                   request& req, const http::path_params& pp, responder_ptr r) {
                 one_subscription(verb, req, pp[0], r);
               });
  }

  // Every live subscription of every app and tenant, with its clientState
  // (what a test or benchmark needs to post notifications as Graph would).
  routes.add(
      "GET", "/_emulator/subscriptions",
      [self](request&, const http::path_params&, responder_ptr r) {
        std::lock_guard<std::mutex> guard{self->mtx};
        self->expire_subscriptions();
        json::writer w;
        w.begin_object().key("value").begin_array();
        for (auto& [id, s] : self->dir.subscriptions) {
          w.begin_object().key("id").value(id);
          w.key("resource").value(s.resource);
          w.key("applicationId").value(s.client_id);
          w.key("tenantId").value(s.tenant_id);
          w.key("notificationUrl").value(s.notification_url);
          w.key("clientState");
          if (s.has_client_state)
            w.value(s.client_state);
          else
            w.null();
          w.key("expirationDateTime").value(format_rfc3339_ms(s.expires_ms));
          w.end_object();
        }
        w.end_array().end_object();
        r->reply(json_response(200, w.take()));
      });

  // Sends a lifecycle notification (reauthorizationRequired,
  // subscriptionRemoved, missed); subscriptionRemoved also removes it.
  routes.add(
      "POST", "/_emulator/subscriptions/{id}/lifecycle",
      [self](request& req, const http::path_params& pp, responder_ptr r) {
        object o;
        body_error err;
        element e;
        std::string event_name;
        if (!parse_body(req.body, o, err) || o["lifecycleEvent"].get(e)
            || !read_string(e, event_name)
            || (event_name != "reauthorizationRequired"
                && event_name != "subscriptionRemoved"
                && event_name != "missed"))
          return r->reply(
              graph_error(req, 400, "BadRequest",
                          "'lifecycleEvent' must be reauthorizationRequired, "
                          "subscriptionRemoved or missed",
                          self->now()));
        std::lock_guard<std::mutex> guard{self->mtx};
        auto i = self->dir.subscriptions.find(pp[0]);
        if (i == self->dir.subscriptions.end())
          return r->reply(graph_error(req, 404, "ResourceNotFound",
                                      "no such subscription", self->now()));
        if (i->second.lifecycle_url.empty())
          return r->reply(graph_error(
              req, 409, "Conflict",
              "the subscription has no lifecycleNotificationUrl", self->now()));
        if (event_name == "subscriptionRemoved")
          self->remove_subscription(i);
        else
          self->notify_lifecycle(i->second, event_name);
        response res;
        res.status = 202;
        r->reply(std::move(res));
      });
}

} // namespace crmsync::emulator
