// The API's shared internals: its state (api::impl), authentication and
// actor plumbing, for the translation units that install routes
// (api.cpp: CRM and admin routes; office365_api.cpp: Office 365 routes).
// Not part of the api/ library's public surface.
#pragma once

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/make_message.hpp>

#include "actors/askers.hpp"
#include "api/api.hpp"
#include "api/history.hpp"
#include "api/web_assets.hpp"
#include "common/crypto.hpp"
#include "common/log.hpp"
#include "common/text.hpp"
#include "common/time_format.hpp"
#include "http/url.hpp"
#include "protocol/json.hpp"
#include "protocol/type_ids.hpp"

namespace crmsync::http {

using namespace crmsync::atom;

// -- plumbing
// -------------------------------------------------------------------------

namespace detail {

inline response json_response(int status, std::string body) {
  response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

inline void fail(const responder_ptr& r, int status, std::string code,
                 std::string message, std::string field = {}) {
  r->reply(error_response(api_error{status, std::move(code), std::move(message),
                                    std::move(field)}));
}

inline void fail(const responder_ptr& r, const caf::error& err) {
  r->reply(error_response(to_api_error(err)));
}

inline bool is_code(const caf::error& err, crm_errc code,
                    std::string_view api_code) {
  if (err.category() != caf::atom("crm")
      || static_cast<crm_errc>(err.code()) != code)
    return false;
  const auto& ctx = err.context();
  return ctx.match_elements<std::string, std::string, std::string>()
         && ctx.get_as<std::string>(0) == api_code;
}

/// The authenticated principal and, for users, the tenant of their token.
struct principal {
  caller who;
  tenant_id token_org;
};

inline bool json_content_type(std::string_view ct) {
  auto semi = ct.find(';');
  auto mime = ct.substr(0, semi);
  while (!mime.empty() && mime.back() == ' ')
    mime.remove_suffix(1);
  if (mime.size() != 16)
    return false;
  for (size_t i = 0; i < mime.size(); ++i) {
    char c = mime[i];
    if (c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
    if (c != "application/json"[i])
      return false;
  }
  return true;
}

} // namespace detail

using namespace detail;

/// Adds an entry to the node's own audit log (org_data_api.cpp): who did
/// what to the node as a whole (deleted an organization, took a backup).
void put_node_audit(storage::write_batch& b, int64_t now, std::string action,
                    std::string detail);

/// Global reads fetched ahead of a continuation, by table and key
/// (t13-async).
using fetched_reads = std::map<std::pair<storage::column, std::string>,
                               cluster_hooks::read_answer>;

/// While a fetched_scope lives on a thread, read_global answers the keys it
/// (or a scope around it) holds from it instead of asking the other nodes:
/// a continuation whose reads were fetched without a thread waiting runs
/// its synchronous code as it is.
class fetched_scope {
public:
  explicit fetched_scope(const fetched_reads& reads);
  ~fetched_scope();
  fetched_scope(const fetched_scope&) = delete;
  fetched_scope& operator=(const fetched_scope&) = delete;

  /// What the scopes open on this thread hold for (c, key), innermost
  /// first; nullptr when none does.
  static const cluster_hooks::read_answer* find(storage::column c,
                                                const std::string& key);
  /// Whether a scope is open on this thread.
  static bool open();

private:
  const fetched_reads& reads_;
  const fetched_scope* outer_;
};

struct api::impl : std::enable_shared_from_this<api::impl> {
  caf::actor_system& sys;
  caf::actor directory;
  storage::db& db;
  /// Password hashing, shared fairly between callers.
  fair_pool& blocking;
  api_config cfg;
  throttles limits;
  node_info info;
  router routes;
  /// What the --metrics-listen address serves: GET /metrics, no token.
  router metrics_routes;
  std::function<server_stats()> server_stats_fn;
  std::atomic<bool> ready{true};
  office365_options o365;
  cluster_hooks cluster;
  /// Makes taking a single-use sign-in state atomic (read, then delete).
  std::mutex states_mtx;
  /// The actors that ask the directory for the HTTP threads (askers.hpp);
  /// null once stop_actors() ran. Read with std::atomic_load.
  std::shared_ptr<actors::askers> askers;

  impl(caf::actor_system& s, caf::actor d, storage::db& database,
       fair_pool& pool, api_config c, node_info i)
      : sys(s)
      , directory(std::move(d))
      , db(database)
      , blocking(pool)
      , cfg(std::move(c))
      , limits(cfg.throttles, steady_now_ms)
      , info(std::move(i))
      , askers(std::make_shared<actors::askers>(s, asker_count)) {}

  /// Askers per node: enough that rendering one large answer does not
  /// hold up the others' (each runs on one scheduler thread at a time).
  static constexpr size_t asker_count = 4;

  /// Sends `msg` to `dest` from an asker (askers.hpp) with the API's
  /// request timeout; the asker runs ok(reply) or on_err(error). A node
  /// that is stopping answers 503.
  template <class Reply, class Ok, class Err>
  void ask_actor(caf::actor dest, caf::message msg, Ok ok, Err on_err) {
    auto a = std::atomic_load(&askers);
    if (!a) {
      caf::error err = make_crm_error(crm_errc::unavailable, "node_stopping",
                                      "the node is stopping");
      return on_err(err);
    }
    a->ask<Reply>(std::move(dest), cfg.request_timeout, std::move(msg),
                  std::move(ok), std::move(on_err));
  }

  /// Ends the askers (before the actor system waits for its actors).
  void stop_actors() {
    std::atomic_store(&askers, std::shared_ptr<actors::askers>{});
  }

  /// The limits' clock: monotonic, so that a clock step neither lifts nor
  /// prolongs a backoff.
  static int64_t steady_now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  // Sends `msg` to the entity at `key`; calls ok(reply) or answers the
  // error. Runs in a short-lived actor, so the caller never blocks.
  template <class Reply, class Msg, class Ok, class Err>
  void ask(entity_key key, Msg msg, Ok ok, Err on_err) {
    auto dir = directory;
    if (cluster.directory_for) {
      auto owner = cluster.directory_for(key.tenant);
      if (!owner) {
        auto err = owner.error();
        return on_err(err);
      }
      dir = std::move(*owner);
    }
    ask_actor<Reply>(
        std::move(dir),
        caf::make_message(route_atom_v, key, caf::make_message(std::move(msg))),
        std::move(ok), std::move(on_err));
  }

  template <class Reply, class Msg, class Ok>
  void ask(entity_key key, Msg msg, responder_ptr r, Ok ok) {
    ask<Reply>(key, std::move(msg), std::move(ok),
               [r](const caf::error& err) { fail(r, err); });
  }

  // Asks the directory itself (not an entity) for its statistics.
  template <class Ok>
  void with_directory_stats(responder_ptr r, Ok ok) {
    ask_actor<directory_stats>(directory, caf::make_message(stats_atom_v),
                               std::move(ok),
                               [r](const caf::error& err) { fail(r, err); });
  }

  /// A key of a node-local, non-tenant table (lookups, sessions): this
  /// node, then the cluster. `unavailable` when a node that may hold it
  /// cannot be asked.
  cluster_hooks::read_outcome read_global(storage::column c,
                                          const std::string& key,
                                          std::string& value,
                                          bool take = false);
  /// read_global for several keys without a thread waiting on the
  /// cluster: `done` gets one answer per key, in their order; at once when
  /// this node answered them all (always on a single node), else on an
  /// HTTP I/O thread once the other nodes answered. t13-async.
  void read_global_async(storage::column c, std::vector<std::string> keys,
                         bool take, cluster_hooks::read_done done);

  static entity_key tenant_key(tenant_id t) {
    return entity_key{entity_kind::tenant, t, user_id{}};
  }

  // -- authentication
  // --------------------------------------------------------------

  /// Reads the bearer token; answers 401 itself and returns false if absent.
  bool authenticate(const request& req, const responder_ptr& r,
                    principal& out) {
    auto h = req.header("authorization");
    if (h.empty()) {
      fail(r, 401, "missing_token",
           "send 'Authorization: Bearer TOKEN' with an API token");
      return false;
    }
    // The scheme name is case-insensitive (RFC 7235 section 2.1).
    if (h.size() < 7 || ascii_lower(h.substr(0, 7)) != "bearer ") {
      fail(r, 401, "invalid_token",
           "the Authorization header must be 'Bearer TOKEN'");
      return false;
    }
    auto token = h.substr(7);
    if (!cfg.admin_token.empty()
        && crypto::equal_secret(token, cfg.admin_token)) {
      out.who.service_admin = true;
      return true;
    }
    uint64_t org = 0, user = 0;
    if (!parse_user_token(token, org, user)) {
      fail(r, 401, "unauthorized", "the API token is not valid");
      return false;
    }
    out.token_org = tenant_id{org};
    out.who.user = user_id{user};
    out.who.token_hash = crypto::sha256_hex(token);
    return true;
  }

  /// Reads a {user} path parameter: a user id, or `me` for the caller's own
  /// user. The service-admin token is nobody's user: `me` is refused with
  /// 400 and false is returned (the answer is sent). An id that does not
  /// parse leaves `out` empty for the route's own 404.
  bool user_param(const principal& p, const std::string& param,
                  const responder_ptr& r, std::optional<user_id>& out) {
    if (param != "me") {
      out = user_id::parse(param);
      return true;
    }
    if (p.who.service_admin) {
      fail(r, 400, "invalid_field",
           "'me' names the caller's own user; the service-admin token has "
           "none: give the user's id",
           "user");
      return false;
    }
    out = p.who.user;
    return true;
  }

  /// Answers a user token where only the service admin may act: 403 when
  /// the token is genuine, 401 when it is not (checked by its tenant).
  void refuse_user(const principal& p, responder_ptr r, std::string message) {
    ask<user_record>(
        tenant_key(p.token_org), crmsync::authenticate{p.who}, r,
        [r, message](user_record&) { fail(r, 403, "forbidden", message); });
  }

  /// Calls next() when the principal may add users to `org` (service admin,
  /// or a genuine user with Manage Users). Checked before any costly work
  /// such as password hashing is done on the caller's behalf.
  template <class Next>
  void with_user_manager(const principal& p, tenant_id org, responder_ptr r,
                         Next next) {
    if (p.who.service_admin)
      return next();
    ask<user_record>(tenant_key(org), crmsync::authenticate{p.who}, r,
                     [r, next](user_record& u) mutable {
                       if (!u.manage_users && !u.super_admin)
                         return fail(r, 403, "forbidden",
                                     "adding users needs the Manage Users "
                                     "permission");
                       next();
                     });
  }

  // -- limits on unauthenticated work (throttles.hpp)
  // ----------------------------------------------------------

  /// Sign-in starts per client address: false, after answering 429, when
  /// this client has started too many lately.
  bool admit_signin(const request& req, const responder_ptr& r);

  /// Before a password of `account` is checked for this request's client:
  /// false, after answering 429, while the account or the client is
  /// backing off after wrong passwords.
  bool admit_password(const request& req, const std::string& account,
                      const responder_ptr& r);
  /// A wrong password for `account` from `client`; once the account is
  /// backing off, an audit entry by `actor` goes to `org` (the account's
  /// organization; none when the account does not exist).
  void password_failed(const std::string& client, const std::string& account,
                       tenant_id org, const std::string& actor);
  void password_ok(const std::string& account);

  /// Who a hashing job is charged to: a signed-in principal, or (not
  /// signed in) the request's client address.
  static std::string hash_caller(const principal& p) {
    return p.who.service_admin ? std::string{"admin"}
                               : "user:" + p.who.user.str();
  }
  std::string hash_caller(const request& req) const {
    return "client:" + limits.client_of(req);
  }

  /// Queues password hashing charged to `caller` (hash_caller). A caller
  /// over its share gets 429; a pool full of many callers' work 503.
  /// Callers that are not signed in (`anonymous`) may fill only part of
  /// the queue, so signed-in administrators always find room.
  template <class Job>
  void hash_then(const std::string& caller, bool anonymous, responder_ptr r,
                 Job job) {
    const auto& c = limits.config();
    switch (blocking.try_post(caller, std::move(job),
                              anonymous ? c.hash_queue_anonymous : c.hash_queue,
                              c.hash_per_caller)) {
      case fair_pool::admission::queued:
        return;
      case fair_pool::admission::caller_full:
        return refuse_hash_share(r);
      default:
        fail(r, 503, "busy", "too many password operations in progress; retry");
    }
  }
  void refuse_hash_share(const responder_ptr& r);

  /// Resolves "/orgs/{org}" for this principal and calls next(org). A user
  /// of another organization gets the same 404 as for a missing one (after
  /// their token is verified, so an invalid token is still a 401).
  template <class Next>
  void with_org(const principal& p, const std::string& org_param,
                responder_ptr r, Next next) {
    auto org = tenant_id::parse(org_param);
    if (p.who.service_admin) {
      if (!org)
        return fail(r, 404, "not_found", "organization not found");
      return next(*org);
    }
    if (org && *org == p.token_org)
      return next(*org);
    ask<user_record>(tenant_key(p.token_org), crmsync::authenticate{p.who}, r,
                     [r](user_record&) {
                       fail(r, 404, "not_found", "organization not found");
                     });
  }

  /// authenticate() for routes with a JSON body (415 otherwise).
  bool authenticate_json(const request& req, const responder_ptr& r,
                         principal& out) {
    return authenticate(req, r, out) && require_json(req, r);
  }

  bool require_json(const request& req, const responder_ptr& r) {
    if (!json_content_type(req.header("content-type"))) {
      fail(r, 415, "unsupported_media_type",
           "send the body as 'Content-Type: application/json'");
      return false;
    }
    return true;
  }

  // -- query parameters
  // --------------------------------------------------------------

  bool read_limit(const query_params& q, const responder_ptr& r,
                  uint32_t& limit) {
    limit = 100;
    auto v = find_param(q, "limit");
    if (v == nullptr)
      return true;
    char* end = nullptr;
    errno = 0;
    auto n = std::strtoll(v->c_str(), &end, 10);
    if (v->empty() || *end != '\0' || errno != 0 || n < 1 || n > 1000) {
      fail(r, 400, "invalid_field", "'limit' must be an integer from 1 to 1000",
           "limit");
      return false;
    }
    limit = static_cast<uint32_t>(n);
    return true;
  }

  bool read_query(const request& req, const responder_ptr& r, query_params& q) {
    if (!parse_query(req.query, q)) {
      fail(r, 400, "bad_request", "the query string has a bad percent-escape");
      return false;
    }
    return true;
  }

  bool read_time_param(const query_params& q, const char* name,
                       const responder_ptr& r, int64_t& out) {
    auto v = find_param(q, name);
    if (v == nullptr)
      return true;
    auto t = v->size() == 10 ? parse_date_ms(*v) : parse_rfc3339_ms(*v);
    if (!t) {
      fail(r, 400, "invalid_field",
           std::string{"'"} + name + "' must be an RFC 3339 time or a date",
           name);
      return false;
    }
    out = *t;
    return true;
  }

  // -- rendering
  // ---------------------------------------------------------------------------

  static std::string user_with_token(const user_record& u,
                                     const std::string& token) {
    json::writer w;
    json::write_user(w, u);
    std::string body = w.take();
    if (!token.empty()) {
      // Shown once: only its hash is stored.
      body.pop_back();
      body += ",\"token\":";
      json::append_string(body, token);
      body += '}';
    }
    return body;
  }

  static std::string event_page_json(const event_page& page) {
    json::writer w;
    w.begin_object().key("items").begin_array();
    for (auto& e : page.items)
      json::write_event(w, e);
    w.end_array().key("next_cursor").value_or_null(page.next_cursor);
    w.end_object();
    return w.take();
  }

  static std::string event_json(const event_record& e) {
    json::writer w;
    json::write_event(w, e);
    return w.take();
  }

  // -- routes
  // ------------------------------------------------------------------------------

  void install_routes();
  void install_office365_routes();
  void install_user_routes();           // users_api.cpp
  void install_password_setup_routes(); // password_setup_api.cpp
  // org_data_api.cpp (t14-data): disconnect, export, delete
  void install_org_data_routes();
  void finish_delete(org_record o, responder_ptr r);
  /// Organizations whose deletion runs on this node: a second DELETE of
  /// one of them is refused (409 org_closing) instead of run alongside.
  std::mutex deletes_mtx;
  std::set<uint64_t> deleting;
  /// Claims `org` for a deletion; false when one already runs.
  bool claim_delete(tenant_id org);
  void release_delete(tenant_id org);
  /// Long admin jobs (deletions, backups) run on threads of their own:
  /// how many run (under jobs_mtx, signalled by jobs_done), and the flag
  /// that ends them at shutdown.
  std::mutex jobs_mtx;
  size_t job_threads = 0;
  std::condition_variable jobs_done;
  std::atomic<bool> stopping_jobs{false};
  /// Runs `job` on a thread of its own; false (and `job` not run) once the
  /// node is stopping.
  bool spawn_job(std::function<void()> job);
  /// Starts finish_delete as a job (or answers 503 when stopping).
  void spawn_delete(org_record o, responder_ptr r);
  /// Ends the jobs (a deletion answers 503, the organization stays closed)
  /// and waits for them: they use the store and the actor system.
  void stop_jobs();
  // backup_api.cpp: online backups of the node's database
  void install_backup_routes();
  std::atomic<bool> backup_running{false};
  /// Makes one backup and answers `r`, clearing backup_running first.
  void make_backup(responder_ptr r);
  void export_org(tenant_id org, responder_ptr r);
  /// Drops this node's cached app-only Graph token of an Office 365 tenant
  /// an organization left (disconnected or deleted).
  void forget_o365_tenant(const std::string& tenant);
  /// admin_web.cpp: /metrics, /admin/v1/sync and the page under /admin/.
  void install_web_routes();
  /// cluster_admin_api.cpp (t15-ops): drains of cluster members.
  void install_cluster_admin_routes();
  /// memory_api.cpp (t13-mem): GET /admin/v1/memory.
  void install_memory_routes();
  void admin_memory(responder_ptr r);
  /// doctor_api.cpp (t16-m365): POST /admin/v1/doctor.
  void install_doctor_routes();
  void run_doctor(const std::string& tenant, responder_ptr r);
  /// history_api.cpp (t16-admin): the charts' last hour, sampled on a
  /// thread of its own, and GET /admin/v1/history.
  std::unique_ptr<chart_history> history;
  void install_history_routes();
  void admin_history(const request& req, const responder_ptr& r);
  static void serve_asset(const std::string& name, const responder_ptr& r);
  /// Answers an embedded file (web_assets.hpp); `asset` may be nullptr
  /// (404 naming `what`).
  static void serve_file(const web_asset* asset, const std::string& what,
                         const responder_ptr& r);
  /// A page's path without its trailing slash ("/admin"): answers 301 to
  /// `location` (the path with it) and returns true; false for the path
  /// with the slash (the router takes both as one).
  static bool slash_redirect(const request& req, const char* location,
                             const responder_ptr& r);
  /// openapi_api.cpp (t16-openapi): GET /api/v1/openapi.json and the page
  /// that renders it, /api/docs.
  void install_openapi_routes();
  /// Sets the gauges that describe stored state, before a scrape.
  void refresh_gauges();
  /// The scrape token (--metrics-token-file) or the admin token; answers
  /// 401/403 itself when neither.
  bool scrape_auth(const request& req, const responder_ptr& r);
  /// Answers the text exposition.
  void scrape(const responder_ptr& r);
  /// Routes `req` in `table` (404 and 405 as every route answers them).
  void dispatch(const router& table, request&& req, responder_ptr r);
  void admin_sync(const request& req, responder_ptr r);
  /// Wraps `r` so that its answer is counted under the route pattern
  /// (nullptr: "unmatched").
  responder_ptr metered(responder_ptr r, std::string_view method,
                        const std::string* route, const log::context& ctx);
  void create_org_attempt(std::shared_ptr<create_org> cmd, responder_ptr r,
                          int attempts_left);
  void create_user_attempt(std::shared_ptr<create_user> cmd, tenant_id org,
                           responder_ptr r, int attempts_left);
  void admin_status(responder_ptr r);
  void admin_actors(responder_ptr r);
  void admin_tenants(const request& req, responder_ptr r);
  void admin_tenant(const std::string& id, responder_ptr r);
  void admin_user(const std::string& id, responder_ptr r);
  void admin_user_events(const request& req, const std::string& id,
                         responder_ptr r);
  bool admin_auth(const request& req, const responder_ptr& r);
  cluster_hooks::read_outcome read_local(storage::column c,
                                         const std::string& key,
                                         std::string& value, bool take);
  void admin_cluster(const responder_ptr& r, bool shards);
  /// In a cluster, e-mail addresses claimed on other nodes count too (a
  /// check before the owner's atomic claim: two creations racing on two
  /// nodes are not caught). Runs `free` when it is free, else answers
  /// 409/503 itself; the other nodes are asked without a thread waiting
  /// (t13-async).
  void email_free_in_cluster(const std::string& email, const char* field,
                             const responder_ptr& r,
                             std::function<void()> free);
  /// read_global as found / not found, with `err` set when unavailable.
  bool found_global(storage::column c, const std::string& key,
                    std::string& value, caf::error& err);
  bool lookup_user(const std::string& id_or_email, tenant_id& org,
                   user_id& user, caf::error& err);
};

} // namespace crmsync::http
