// The change notifications' subscription: created, renewed, forgotten.
#include "sync/calendar/run.hpp"

namespace crmsync::sync::calendar {

void calendar_run::ensure_subscription(next_fn next) {
  auto now = cfg_.now_ms();
  auto lifetime = std::chrono::milliseconds(cfg_.subscription_lifetime).count();
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

void calendar_run::subscribe(int64_t expires, next_fn next) {
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

void calendar_run::forget_subscription() {
  if (status_.subscription_id.empty())
    return;
  storage::write_batch b;
  b.del(column::lookup, keys::subscription_lookup(status_.subscription_id));
  ctx_.db.write(b);
  status_.subscription_id.clear();
  status_.subscription_expires_ms = 0;
  status_.client_state.clear();
}

} // namespace crmsync::sync::calendar
