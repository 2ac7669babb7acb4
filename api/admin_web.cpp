// Observability routes of every node: GET /metrics (Prometheus text; also
// alone on the --metrics-listen address, see api::handle_metrics), the
// node-wide sync health list GET /admin/v1/sync, and the web admin page
// under /admin/ (files from web/, embedded at build time: web_assets.hpp).
#include "api/api.hpp"
#include "api/api_impl.hpp"

#include <chrono>

#include "api/web_assets.hpp"
#include "common/log.hpp"
#include "common/log_enabled.hpp"
#include "common/metrics.hpp"
#include "storage/codec.hpp"
#include "storage/keys.hpp"
#include "sync/service.hpp"

namespace crmsync::http {

namespace keys = storage::keys;
namespace codec = storage::codec;
using storage::column;

namespace {

/// Counts the rows of a table, or of one user's part of it. Used for the
/// queues only (inbox, outboxes): they stay short while sync keeps up.
uint64_t count_rows(const storage::db& db, column c,
                    std::string_view begin = {}, std::string_view end = {}) {
  uint64_t n = 0;
  db.scan(c, begin, end, [&n](std::string_view, std::string_view) {
    ++n;
    return true;
  });
  return n;
}

/// Counts the answer on the responder it wraps (the route pattern, the
/// status, and the time from arrival to answer) and writes the request's
/// access line, with its id, organization and user, whichever thread
/// answers.
class metered_responder : public responder {
public:
  metered_responder(responder_ptr inner, std::string_view method,
                    const std::string& route, log::context ctx)
      : inner_(std::move(inner))
      , method_(method)
      , route_(route)
      , ctx_(std::move(ctx))
      , started_(std::chrono::steady_clock::now()) {}

  ~metered_responder() override {
    // Dropped without an answer: the inner responder sends 503.
    if (inner_)
      record(503);
  }

  void reply(response r) override {
    if (!inner_)
      return;
    record(r.status);
    auto inner = std::move(inner_);
    inner->reply(std::move(r));
  }

private:
  void record(int status) {
    auto took = std::chrono::steady_clock::now() - started_;
    metrics::node().http_request(method_, route_, status,
                                 std::chrono::duration<double>(took).count());
    // The route's pattern, never the path: paths carry invitation and
    // password-setup tokens. Made only when written: at --log-level warn
    // the line per request costs nothing.
    if (!log::enabled(log::level::info))
      return;
    log::scope in{ctx_};
    log::info(
        "http: " + method_ + " " + route_ + " " + std::to_string(status) + " "
        + std::to_string(
            std::chrono::duration_cast<std::chrono::milliseconds>(took).count())
        + " ms");
  }

  responder_ptr inner_;
  std::string method_;
  const std::string& route_; // a router pattern: lives as long as the api
  log::context ctx_;
  std::chrono::steady_clock::time_point started_;
};

const std::string unmatched_route = "unmatched";

} // namespace

responder_ptr api::impl::metered(responder_ptr r, std::string_view method,
                                 const std::string* route,
                                 const log::context& ctx) {
  return std::make_shared<metered_responder>(
      std::move(r), method, route != nullptr ? *route : unmatched_route, ctx);
}

void api::impl::install_web_routes() {
  auto self = this; // routes live as long as the impl that owns them

  // On the node's port the scrape needs a token: the scrape token, or the
  // admin token (the web admin page). --metrics-listen serves it without.
  routes.add("GET", "/metrics",
             [self](request& req, const path_params&, responder_ptr r) {
               if (self->scrape_auth(req, r))
                 self->scrape(r);
             });
  metrics_routes.add("GET", "/metrics",
                     [self](request&, const path_params&, responder_ptr r) {
                       self->scrape(r);
                     });

  routes.add("GET", "/admin/v1/sync",
             [self](request& req, const path_params&, responder_ptr r) {
               if (self->admin_auth(req, r))
                 self->admin_sync(req, r);
             });

  // The page: "/admin" and "/admin/" are one path to the router.
  routes.add("GET", "/admin",
             [](request& req, const path_params&, responder_ptr r) {
               if (!slash_redirect(req, "/admin/", r))
                 serve_asset("index.html", r);
             });
  routes.add("GET", "/admin/{file}",
             [](request&, const path_params& pp, responder_ptr r) {
               serve_asset(pp[0], r);
             });
}

void api::impl::serve_asset(const std::string& name, const responder_ptr& r) {
  serve_file(find_web_asset(name), "no such file of the admin page: " + name,
             r);
}

bool api::impl::slash_redirect(const request& req, const char* location,
                               const responder_ptr& r) {
  if (!req.path.empty() && req.path.back() == '/')
    return false;
  response res;
  res.status = 301;
  res.content_type = "text/plain; charset=utf-8";
  res.body = std::string{"moved to "} + location + "\n";
  res.headers.emplace_back("Location", location);
  r->reply(std::move(res));
  return true;
}

void api::impl::serve_file(const web_asset* asset, const std::string& what,
                           const responder_ptr& r) {
  if (asset == nullptr)
    return fail(r, 404, "not_found", what);
  response res;
  res.content_type = std::string{asset->content_type};
  res.body = std::string{asset->body};
  // The files change with the binary only; the page itself is always
  // asked again so that an upgrade shows at once.
  res.headers.emplace_back("Cache-Control", "no-cache");
  res.headers.emplace_back("X-Content-Type-Options", "nosniff");
  res.headers.emplace_back("Content-Security-Policy",
                           "default-src 'self'; img-src 'self' data:; "
                           "frame-ancestors 'none'");
  r->reply(std::move(res));
}

bool api::impl::scrape_auth(const request& req, const responder_ptr& r) {
  auto h = req.header("authorization");
  if (!cfg.metrics_token.empty() && h.size() > 7
      && ascii_lower(h.substr(0, 7)) == "bearer "
      && crypto::equal_secret(h.substr(7), cfg.metrics_token))
    return true;
  return admin_auth(req, r);
}

void api::impl::scrape(const responder_ptr& r) {
  refresh_gauges();
  response res;
  res.content_type = metrics::content_type;
  res.body = metrics::node().render();
  r->reply(std::move(res));
}

void api::impl::refresh_gauges() {
  // Counts the storage keeps as rows come and go: a scrape reads no table.
  auto& m = metrics::node();
  m.set_depth(metrics::depth::sync_inbox, db.rows(column::inbox));
  m.set_depth(metrics::depth::sync_outbox, db.rows(column::sync_outbox));
  m.set_depth(metrics::depth::mail_outbox, db.rows(column::outbox));
  if (o365.sync != nullptr) {
    auto h = o365.sync->health();
    m.set_subscriptions(h.subscriptions_live, h.subscriptions_expiring);
    m.set_sync_users(h.users_by_state);
  }
}

void api::impl::admin_sync(const request& req, responder_ptr r) {
  query_params q;
  uint32_t limit = 100;
  if (!read_query(req, r, q) || !read_limit(q, r, limit))
    return;
  std::string state_filter;
  if (auto s = find_param(q, "state"))
    state_filter = *s;
  std::string begin;
  if (auto c = find_param(q, "cursor")) {
    auto dot = c->find('.');
    auto org = tenant_id::parse(std::string_view{*c}.substr(0, dot));
    std::optional<user_id> user;
    if (dot != std::string::npos)
      user = user_id::parse(std::string_view{*c}.substr(dot + 1));
    if (!org || !user)
      return fail(r, 400, "invalid_field",
                  "'cursor' is not a cursor from this listing", "cursor");
    begin = keys::sync_state(*org, *user, entity_kind::calendar) + '\0';
  }
  json::writer w;
  w.begin_object();
  w.key("node_id").value(info.node_id);
  w.key("summary").begin_object();
  if (o365.sync != nullptr) {
    auto h = o365.sync->health();
    w.key("users").begin_object();
    for (auto& [state, n] : h.users_by_state)
      w.key(state).value(n);
    w.end_object();
    w.key("subscriptions").begin_object();
    w.key("live").value(h.subscriptions_live);
    w.key("expiring").value(h.subscriptions_expiring);
    w.end_object();
  }
  w.key("inbox").value(db.rows(column::inbox));
  w.key("outbox").value(db.rows(column::sync_outbox));
  w.key("mail_outbox").value(db.rows(column::outbox));
  w.end_object();
  w.key("items").begin_array();
  size_t n = 0;
  std::string next;
  std::string last;
  bool corrupt = false;
  auto err = db.scan(
      column::sync, begin, {}, [&](std::string_view k, std::string_view v) {
        if (k.size() != 17 || k[16] != static_cast<char>(entity_kind::calendar))
          return true;
        calendar_status s;
        if (!codec::decode(v, s)) {
          corrupt = true;
          return false;
        }
        if (!state_filter.empty() && to_string(s.state) != state_filter)
          return true;
        if (n == limit) {
          next = last;
          return false;
        }
        tenant_id org{keys::get_be64(k, 0)};
        user_id user{keys::get_be64(k, 8)};
        auto prefix = keys::of_user(org, user);
        auto end = keys::prefix_end(prefix);
        s.inbox = count_rows(db, column::inbox, prefix, end);
        s.outbox = count_rows(db, column::sync_outbox, prefix, end);
        std::string value;
        bool found = false;
        user_record u;
        org_record o;
        if (!db.get(column::users, keys::user(org, user), value, found)
            && found)
          codec::decode(value, u);
        if (!db.get(column::orgs, keys::org(org), value, found) && found)
          codec::decode(value, o);
        w.begin_object();
        w.key("org").value(org.str());
        w.key("org_name").value(o.name);
        w.key("user").value(user.str());
        w.key("email").value(u.email);
        w.key("name").value(u.name);
        w.key("sync");
        json::write_calendar_status(w, s);
        w.end_object();
        last = org.str() + "." + user.str();
        ++n;
        return true;
      });
  if (err)
    return fail(r, err);
  if (corrupt)
    return fail(r, 500, "storage_failure",
                "a stored calendar sync status could not be read");
  w.end_array().key("next_cursor").value_or_null(next);
  w.end_object();
  r->reply(json_response(200, w.take()));
}

} // namespace crmsync::http
