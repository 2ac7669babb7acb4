// The Office 365 routes: sign-in and install (/o365/...), "associate my
// account", the tenant's Office 365 users, invitations, join requests,
// approvals and the audit log (R1-R12).
//
// Graph and the identity platform are called through graph::client's
// asynchronous calls: no thread waits for them. What follows an answer and
// may wait for the cluster (looking a key up on its owner node) or read
// storage at length runs on the Office 365 work pool; state changes go to
// the tenant actors, which persist them before answering. Sign-in states and
// office365_session tokens live in the sessions column family, so a flow
// survives a restart of the node between its steps.
#include "api/api_impl.hpp"
#include "api/pages.hpp"
#include "api/pages_flows.hpp"
#include "api/records_json.hpp"
#include "api/sessions.hpp"

#include <map>
#include <mutex>

#include "common/clock.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "graph/client.hpp"
#include "protocol/permissions.hpp"
#include "storage/codec.hpp"
#include "storage/keys.hpp"
#include "sync/check.hpp"
#include "sync/service.hpp"

namespace crmsync::http {

namespace {

namespace keys = storage::keys;
namespace codec = storage::codec;
using storage::column;
using impl = api::impl;

constexpr size_t max_invitees = 100;
/// Fresh ids an install tries before it gives up (a clash is rare).
constexpr int max_create_attempts = 3;

entity_key tenant_key(tenant_id t) {
  return entity_key{entity_kind::tenant, t, user_id{}};
}

caller service_caller() {
  caller c;
  c.service_admin = true;
  return c;
}

api_error graph_failure(const graph::error& e) {
  return api_error{502, "office365_error",
                   "Office 365 did not complete the request: " + e.describe(),
                   ""};
}

response redirect(const std::string& location) {
  response res;
  res.status = 302;
  res.headers.emplace_back("Location", location);
  json::writer w;
  w.begin_object().key("location").value(location).end_object();
  res.body = w.take();
  return res;
}

void write_identity(json::writer& w, const o365_identity& who) {
  w.begin_object();
  w.key("tenant_id").value(who.tenant);
  w.key("user_id").value(who.user);
  w.key("email").value(who.email);
  w.key("name").value(who.name);
  w.key("is_admin").value(who.is_admin);
  w.end_object();
}

using pages::page;

/// Turns the API's JSON error answers into pages for a browser: what the
/// shared code answers with fail() shows as a page with its message.
class html_errors : public responder {
public:
  explicit html_errors(responder_ptr inner) : inner_(std::move(inner)) {}

  void reply(response r) override {
    api_error e;
    if (!json::decode_error(r.body, e)) {
      e.status = r.status;
      e.message = "the request failed";
    }
    done(page(r.status, "Not approved",
              "<p>" + pages::escape(e.message) + "</p><p>(HTTP "
                  + std::to_string(r.status) + ", <code>"
                  + pages::escape(e.code) + "</code>)</p>"));
  }

  /// Answers with a page.
  void done(response r) {
    inner_->reply(std::move(r));
  }

private:
  responder_ptr inner_;
};

/// Adds a Set-Cookie header to the answer.
class cookie_setter : public responder {
public:
  cookie_setter(responder_ptr inner, std::string cookie)
      : inner_(std::move(inner)), cookie_(std::move(cookie)) {}

  void reply(response r) override {
    r.headers.emplace_back("Set-Cookie", cookie_);
    inner_->reply(std::move(r));
  }

private:
  responder_ptr inner_;
  std::string cookie_;
};

/// A fresh user id with its API token (shown once; only the hash is kept).
struct minted_user {
  new_user user;
  std::string token;
};

minted_user mint_user(tenant_id org) {
  minted_user m;
  do
    m.user.id = user_id{crypto::random_u64()};
  while (!m.user.id.valid());
  m.token = make_user_token(org.value, m.user.id.value);
  m.user.token_hash = crypto::sha256_hex(m.token);
  return m;
}

/// The cookie that binds a sign-in to the browser that started it, so that
/// a state (and the code that comes back with it) is of no use anywhere
/// else: a forged or replayed callback is refused before any call to the
/// identity platform.
constexpr std::string_view signin_cookie = "crmsync_signin";
/// crypto::random_token(24): 32 base64url characters.
constexpr size_t signin_cookie_size = 32;

/// Whether a cookie value is one this node could have minted.
bool well_formed_cookie(std::string_view v) {
  return pages::well_formed_secret(v, signin_cookie_size);
}

using pages::cookie_value;

/// The person's e-mail address as the CRM keys accounts by it: the
/// userPrincipalName (preferred_username) only, whose domain is one the
/// tenant verified. The optional `email` claim is never used, not even as
/// a fallback: it can be an address nobody verified, and an account found
/// or created under it (R2) would hand that address to whoever typed it.
/// Empty when the sign-in name is not an address.
std::string identity_email(const graph::identity& id) {
  std::string out;
  if (json::normalize_email(id.preferred_username, out))
    return out;
  return {};
}

} // namespace

// Everything the routes share, as one small class over the API's state.
class office365_flows : public flow_hooks,
                        public std::enable_shared_from_this<office365_flows> {
public:
  explicit office365_flows(impl& s) : s_(s) {}

  /// The browser pages (pages_flows.cpp), which a browser's sign-in ends
  /// on.
  void set_pages(const std::shared_ptr<page_flows>& p) {
    pages_ = p;
  }
  std::shared_ptr<page_flows> pages() const {
    return pages_.lock();
  }

  /// Thrown by lookup() when the cluster cannot answer for sure.
  struct node_unreachable {};

  // -- plumbing ---------------------------------------------------------------

  /// Runs `job` once the global lookups `keys` are known, with lookup()
  /// answering them from what was fetched: this node's tables at once, the
  /// other nodes' asked without a thread waiting (the job then runs on an
  /// HTTP I/O thread). On a single node the job runs at once. t13-async.
  void with_lookups(const responder_ptr& r, std::vector<std::string> keys,
                    std::function<void()> job) {
    auto asked = std::make_shared<std::vector<std::string>>(keys);
    s_.read_global_async(
        column::lookup, std::move(keys), false,
        [asked, r, job = std::move(job)](
            std::vector<cluster_hooks::read_answer> answers) {
          fetched_reads got;
          for (size_t i = 0; i < asked->size() && i < answers.size(); ++i)
            got.emplace(std::make_pair(column::lookup, (*asked)[i]),
                        std::move(answers[i]));
          fetched_scope scope{got};
          try {
            job();
          } catch (const node_unreachable&) {
            unreachable(r);
          }
        });
  }

  /// The global lookups the flows make about a person: their tenant's
  /// organization, their link, their e-mail's account.
  static std::vector<std::string> lookups_of(const o365_identity& who) {
    std::vector<std::string> out{keys::o365_tenant_lookup(who.tenant),
                                 keys::o365_user_lookup(who.tenant, who.user)};
    if (!who.email.empty())
      out.push_back(keys::email_lookup(who.email));
    return out;
  }

  /// with_lookups(lookups_of(who)).
  void about(const o365_identity& who, const responder_ptr& r,
             std::function<void()> job) override {
    with_lookups(r, lookups_of(who), std::move(job));
  }

  bool configured(const responder_ptr& r) {
    if (s_.o365.graph != nullptr)
      return true;
    fail(r, 503, "office365_not_configured",
         "this node has no Office 365 app configured (--client-id, "
         "--client-secret)");
    return false;
  }

  int64_t now() const {
    return system_now_ms();
  }

  std::string callback_url(const char* path) const {
    return s_.o365.public_url + path;
  }

  /// A global lookup, on this node or another one of the cluster (from
  /// what with_lookups fetched, when it did). When a node that may hold the
  /// key cannot be asked, the flow stops with 503 (node_unreachable, caught
  /// where routes and continuations start) rather than take "not found"
  /// and create a second account.
  bool lookup(const std::string& key, std::string& value) {
    switch (s_.read_global(column::lookup, key, value)) {
      case cluster_hooks::read_outcome::found:
        return true;
      case cluster_hooks::read_outcome::missing:
        return false;
      default:
        throw node_unreachable{};
    }
  }

  static void unreachable(const responder_ptr& r) {
    fail(r, 503, "node_unavailable",
         "a node of the cluster that may hold this is unreachable; retry");
  }

  bool org_of_tenant(const std::string& o365_tenant, tenant_id& org) override {
    std::string v;
    if (!lookup(keys::o365_tenant_lookup(o365_tenant), v) || v.size() != 8)
      return false;
    org = tenant_id{keys::get_be64(v, 0)};
    return true;
  }

  static bool split_tenant_user(const std::string& v, tenant_id& org,
                                user_id& user) {
    if (v.size() != 16)
      return false;
    org = tenant_id{keys::get_be64(v, 0)};
    user = user_id{keys::get_be64(v, 8)};
    return true;
  }

  bool member_of(const o365_identity& who, tenant_id& org, user_id& user) {
    std::string v;
    return lookup(keys::o365_user_lookup(who.tenant, who.user), v)
           && split_tenant_user(v, org, user);
  }

  bool user_by_email(const std::string& email, tenant_id& org, user_id& user) {
    std::string v;
    return !email.empty() && lookup(keys::email_lookup(email), v)
           && split_tenant_user(v, org, user);
  }

  // -- sign-in states and sessions --------------------------------------------

  std::string put_state(const signin_state_record& rec) {
    auto state = crypto::random_token(24);
    storage::write_batch b;
    b.put(column::sessions, keys::signin_state(state), codec::encode(rec));
    if (auto err = s_.db.write(b)) {
      log::error("office365: cannot store a sign-in state: "
                 + s_.sys.render(err));
      return {};
    }
    return state;
  }

  /// What a callback route goes on with once its state was taken.
  using state_step
      = void (office365_flows::*)(const request&, const query_params&,
                                  const signin_state_record*,
                                  const responder_ptr&);

  /// A callback route (sign-in, consent): reads its query, takes its
  /// single-use state (gone afterwards, whatever the outcome; nullptr when
  /// there is none or it expired), then `next`. No thread waits on the
  /// cluster for the state (`next` then runs on an HTTP I/O thread).
  /// t13-async.
  void with_state(const request& req, const responder_ptr& r, state_step next) {
    query_params q;
    if (!s_.read_query(req, r, q) || !configured(r))
      return;
    auto state = find_param(q, "state");
    if (state == nullptr || state->empty())
      return (this->*next)(req, q, nullptr, r);
    auto self = shared_from_this();
    auto held = std::make_shared<request>(req);
    s_.read_global_async(
        column::sessions, {keys::signin_state(*state)}, true,
        [self, held, q, r, next](std::vector<cluster_hooks::read_answer> a) {
          signin_state_record rec;
          bool ok = !a.empty()
                    && a[0].outcome == cluster_hooks::read_outcome::found
                    && codec::decode(a[0].value, rec)
                    && rec.expires_ms > self->now();
          self->guarded(
              r, [&] { ((*self).*next)(*held, q, ok ? &rec : nullptr, r); });
        });
  }

  std::string put_session(const o365_identity& who) {
    auto token = "o365_" + crypto::random_token(32);
    o365_session_record rec;
    rec.who = who;
    rec.expires_ms = now() + s_.o365.session_lifetime.count();
    storage::write_batch b;
    b.put(column::sessions, keys::o365_session(crypto::sha256_hex(token)),
          codec::encode(rec));
    if (auto err = s_.db.write(b)) {
      log::error("office365: cannot store a session: " + s_.sys.render(err));
      return {};
    }
    return token;
  }

  /// What a route signed in with an Office 365 session goes on with.
  using signed_in_k = std::function<void(const request&, const o365_identity&)>;

  /// Runs `k` with the person behind `Authorization: Bearer
  /// {office365_session}` (answers 401 itself when there is none), their
  /// lookups and `more` fetched (with_lookups): the session and the
  /// lookups are read without a thread waiting on the cluster. t13-async.
  void with_session(const request& req, const responder_ptr& r,
                    std::vector<std::string> more, signed_in_k k) {
    auto h = req.header("authorization");
    if (h.size() < 8 || ascii_lower(h.substr(0, 7)) != "bearer ")
      return fail(r, 401, "missing_session",
                  "sign in with Office 365 (GET /o365/signin) and send "
                  "'Authorization: Bearer OFFICE365_SESSION'");
    auto self = shared_from_this();
    auto held = std::make_shared<request>(req);
    s_.read_global_async(
        column::sessions, {keys::o365_session(crypto::sha256_hex(h.substr(7)))},
        false,
        [self, held, r, more = std::move(more),
         k = std::move(k)](std::vector<cluster_hooks::read_answer> a) {
          o365_session_record rec;
          if (a.empty() || a[0].outcome != cluster_hooks::read_outcome::found
              || !codec::decode(a[0].value, rec)
              || rec.expires_ms <= self->now())
            return fail(r, 401, "invalid_session",
                        "the Office 365 session is not valid or has expired; "
                        "sign in again");
          auto wanted = lookups_of(rec.who);
          wanted.insert(wanted.end(), more.begin(), more.end());
          self->with_lookups(r, std::move(wanted),
                             [held, who = rec.who, k] { k(*held, who); });
        });
  }

  // -- sign-in ----------------------------------------------------------------

  /// The browser's sign-in cookie: the one it sent if this node could
  /// have minted it (several sign-ins of one browser share it), else a new
  /// one.
  static std::string browser_secret(const request& req) {
    auto v = cookie_value(req.header("cookie"), signin_cookie);
    return well_formed_cookie(v) ? v : crypto::random_token(24);
  }

  /// Set-Cookie for the browser's secret; it lives as long as a sign-in.
  std::string set_cookie(const std::string& secret) const {
    using std::chrono::duration_cast;
    using std::chrono::seconds;
    return pages::set_cookie(
        signin_cookie, s_.o365.public_url, secret,
        duration_cast<seconds>(s_.o365.signin_lifetime).count());
  }

  /// Whether the callback comes from the browser that started the flow;
  /// answers 400 itself when not.
  static bool same_browser(const request& req, const signin_state_record& rec,
                           const responder_ptr& r) {
    auto v = cookie_value(req.header("cookie"), signin_cookie);
    if (!rec.browser.empty() && well_formed_cookie(v)
        && crypto::equal_secret(crypto::sha256_hex(v), rec.browser))
      return true;
    fail(r, 400, "browser_mismatch",
         "this sign-in was started in another browser, or the browser did not "
         "keep its cookie; start again in this browser");
    return false;
  }

  void start_signin(const request& req, const std::string& purpose,
                    const responder_ptr& r,
                    const std::string& invite_token = {}) override {
    if (!configured(r) || !s_.admit_signin(req, r))
      return;
    auto secret = browser_secret(req);
    signin_state_record rec;
    rec.purpose = purpose;
    rec.invite_token = invite_token;
    rec.nonce = crypto::random_token(16);
    rec.expires_ms = now() + s_.o365.signin_lifetime.count();
    rec.browser = crypto::sha256_hex(secret);
    auto state = put_state(rec);
    if (state.empty())
      return fail(r, 503, "storage_failure", "could not start the sign-in");
    auto res = redirect(s_.o365.graph->authorize_url(
        callback_url("/o365/signin-callback"), state, rec.nonce));
    res.headers.emplace_back("Set-Cookie", set_cookie(secret));
    r->reply(std::move(res));
  }

  /// GET /invite/{token}: a token of a shape this node never issues is
  /// refused before anything is stored for it.
  void open_invite(const request& req, const std::string& token,
                   const responder_ptr& r) {
    if (!is_invite_token(token)) {
      metrics::node().refused(metrics::refusal::invite_token);
      return fail(r, 400, "invalid_invite_token",
                  "this is not an invitation link of this service; open the "
                  "link from the invitation e-mail as it is");
    }
    auto p = pages_.lock();
    if (p != nullptr && pages::prefers_html(req.header("accept")))
      return invite_page(*p, req, token, r);
    start_signin(req, "signin", r, token);
  }

  void signin_callback(const request& req, const responder_ptr& r) {
    with_state(req, r, &office365_flows::signin_state_taken);
  }

  void signin_state_taken(const request& req, const query_params& q,
                          const signin_state_record* taken,
                          const responder_ptr& r) {
    if (taken == nullptr
        || (taken->purpose != "install" && taken->purpose != "signin"
            && taken->purpose != "page"))
      return fail(r, 400, "invalid_state",
                  "the sign-in is unknown, was already completed or has "
                  "expired; start again");
    auto& rec = *taken;
    if (!same_browser(req, rec, r))
      return;
    if (auto e = find_param(q, "error")) {
      auto d = find_param(q, "error_description");
      return fail(r, 403, "signin_refused",
                  "Office 365 refused the sign-in: " + *e
                      + (d ? " (" + *d + ")" : std::string{}));
    }
    auto code = find_param(q, "code");
    if (code == nullptr || code->empty())
      return fail(r, 400, "missing_code", "the callback carries no 'code'");
    // Token-endpoint calls are bounded by sign-in starts: each needs a
    // state that a start stored (rate-limited per client address, see
    // admit_signin), that is taken here once, and whose browser cookie
    // matches; anything else was answered above without calling Graph.
    // Redeemed without a thread waiting; what follows looks up the
    // person across the cluster, also without a thread waiting.
    // A browser's sign-in ends on a page with a cookie session.
    bool browser
        = pages::prefers_html(req.header("accept")) || rec.purpose == "page";
    auto self = shared_from_this();
    s_.o365.graph->start_redeem(
        *code, callback_url("/o365/signin-callback"), rec.nonce,
        [self, r, rec, browser](graph::result<graph::identity> redeemed) {
          if (!redeemed.ok)
            return self->redeemed(redeemed, rec, r, browser);
          self->about(identity_of(redeemed.value), r,
                      [self, r, rec, redeemed, browser] {
                        self->redeemed(redeemed, rec, r, browser);
                      });
        });
  }

  /// The person a redeemed sign-in names.
  static o365_identity identity_of(const graph::identity& id) {
    o365_identity who;
    who.tenant = id.tenant_id;
    who.user = id.object_id;
    who.email = identity_email(id);
    who.name = id.name.empty() ? who.email : id.name;
    who.is_admin = id.is_global_admin;
    return who;
  }

  /// The sign-in code redeemed (or not), the person's lookups fetched.
  void redeemed(const graph::result<graph::identity>& redeemed,
                const signin_state_record& rec, const responder_ptr& r,
                bool browser) {
    auto& err = redeemed.failure;
    if (!redeemed.ok) {
      if (err.status >= 500 || err.status == 0 || err.status == 429)
        return r->reply(error_response(graph_failure(err)));
      return fail(r, 401, "signin_failed",
                  "the Office 365 sign-in could not be verified: "
                      + err.describe());
    }
    auto who = identity_of(redeemed.value);
    if (who.email.empty())
      return fail(r, 400, "no_email",
                  "the Office 365 account's sign-in name is not an e-mail "
                  "address");
    auto p = pages_.lock();
    if (browser && p != nullptr)
      return page_signed_in(*p, who, rec, r);
    if (rec.purpose == "install")
      install_signed_in(who, rec.browser, r);
    else
      signed_in(who, r, rec.invite_token);
  }

  /// R1: only an admin installs; a tenant that has not consented yet is
  /// sent to admin consent first. With the person's lookups fetched.
  void install_signed_in(const o365_identity& who, const std::string& browser,
                         const responder_ptr& r) {
    if (!who.is_admin) {
      // Audited where there is an organization to audit it in.
      tenant_id org;
      if (org_of_tenant(who.tenant, org))
        s_.ask<bool>(
            tenant_key(org),
            audit_note{"office365:" + who.email, "install.refused",
                       "not an Office 365 administrator"},
            [](bool) {}, [](const caf::error&) {});
      return fail(r, 403, "admin_required",
                  "only an Office 365 administrator can install the app for "
                  "an organization");
    }
    // Whether the tenant consented shows in whether the app gets in.
    graph::call_spec probe;
    probe.tenant = who.tenant;
    probe.path_or_url = "/users?$top=1&$select=id";
    auto self = shared_from_this();
    s_.o365.graph->start(
        std::move(probe),
        [self, who, browser, r](graph::result<graph::response> answer) {
          self->about(who, r, [self, who, browser, r, answer] {
            self->consent_probed(who, browser, answer.ok, answer.failure, r);
          });
        });
  }

  /// Whether the app got into the tenant. With the person's lookups
  /// fetched.
  void consent_probed(const o365_identity& who, const std::string& browser,
                      bool got_in, const graph::error& err,
                      const responder_ptr& r) {
    if (got_in)
      return finish_install(who, r);
    if (err.status >= 500 || err.status == 0 || err.status == 429)
      return r->reply(error_response(graph_failure(err)));
    signin_state_record consent;
    consent.purpose = "consent";
    consent.o365_tenant = who.tenant;
    consent.who = who;
    consent.expires_ms = now() + s_.o365.signin_lifetime.count();
    consent.browser = browser; // consent comes back to the same browser
    auto state = put_state(consent);
    if (state.empty())
      return fail(r, 503, "storage_failure", "could not continue the install");
    r->reply(redirect(s_.o365.graph->admin_consent_url(
        who.tenant, callback_url("/o365/consent-callback"), state)));
  }

  void consent_callback(const request& req, const responder_ptr& r) {
    with_state(req, r, &office365_flows::consent_state_taken);
  }

  void consent_state_taken(const request& req, const query_params& q,
                           const signin_state_record* taken,
                           const responder_ptr& r) {
    if (taken == nullptr || taken->purpose != "consent")
      return fail(r, 400, "invalid_state",
                  "the install is unknown, was already completed or has "
                  "expired; start again at /o365/install");
    auto& rec = *taken;
    if (!same_browser(req, rec, r))
      return;
    auto consent = find_param(q, "admin_consent");
    if (find_param(q, "error") != nullptr || consent == nullptr
        || ascii_lower(*consent) != "true") {
      auto d = find_param(q, "error_description");
      return fail(r, 403, "consent_refused",
                  "admin consent was not granted"
                      + (d ? ": " + *d : std::string{}));
    }
    auto tenant = find_param(q, "tenant");
    if (tenant == nullptr || *tenant != rec.o365_tenant)
      return fail(r, 400, "tenant_mismatch",
                  "consent came back for another tenant than the one signed "
                  "in");
    auto self = shared_from_this();
    about(rec.who, r,
          [self, who = rec.who, r] { self->finish_install(who, r); });
  }

  /// R2/R3: creates the organization with the admin as super
  /// administrator, or links the existing account with the admin's
  /// e-mail; installing again answers the same organization. An admin who
  /// associated their identity with a CRM account (R5) installs into that
  /// account's organization. `may_create` is false once a creation lost a
  /// race: then this answers whatever it finds, and never creates again,
  /// so an install ends after a bounded number of steps whatever is stored.
  /// With the person's lookups fetched (about()).
  void finish_install(const o365_identity& who, const responder_ptr& r,
                      bool may_create = true) {
    tenant_id org;
    user_id user;
    if (org_of_tenant(who.tenant, org)) {
      // Installed before: the admin comes into the account if they are
      // in it; anyone else is told to ask to join.
      tenant_id member_org;
      if (member_of(who, member_org, user) && member_org == org)
        return link_and_answer(who, org, user, "install", "installed", false,
                               r);
      if (user_by_email(who.email, member_org, user) && member_org == org)
        return link_and_answer(who, org, user, "install_by_email", "installed",
                               false, r);
      return fail(r, 409, "already_installed",
                  "the app is already installed for this Office 365 tenant "
                  "(organization "
                      + org.str()
                      + "); sign in with GET /o365/signin and request to "
                        "join");
    }
    // The tenant actor refuses both when the organization is linked to
    // another tenant (a sign-in never re-homes an organization).
    if (member_of(who, org, user))
      return link_and_answer(who, org, user, "install", "installed", false, r);
    if (user_by_email(who.email, org, user))
      return link_and_answer(who, org, user, "install_by_email", "installed",
                             false, r);
    if (!may_create)
      return fail(r, 409, "install_conflict",
                  "the organization could not be created, and no existing "
                  "account of this Office 365 administrator was found; "
                  "start again at /o365/install");
    create_installed_org(who, r, max_create_attempts);
  }

  /// Tries fresh organization ids at most `attempts_left` times, and only
  /// for a clash of a generated id: anything else cannot get better by
  /// trying again.
  void create_installed_org(const o365_identity& who, const responder_ptr& r,
                            int attempts_left) {
    tenant_id org{crypto::random_u64()};
    if (!org.valid())
      return retry_create(who, r, attempts_left);
    auto admin = mint_user(org);
    create_org cmd;
    cmd.who = service_caller();
    auto at = who.email.find('@');
    cmd.name = at == std::string::npos ? who.email : who.email.substr(at + 1);
    cmd.plan = edition::free;
    cmd.admin = admin.user;
    cmd.admin.email = who.email;
    cmd.admin.name = who.name;
    cmd.admin.role = profile::administrator;
    cmd.admin.manage_users = true;
    cmd.o365_tenant = who.tenant;
    cmd.o365_user = who.user;
    auto self = shared_from_this();
    s_.ask<org_created>(
        tenant_key(org), std::move(cmd),
        [r, token = admin.token](org_created& c) {
          json::writer w;
          w.begin_object().key("status").value("installed");
          w.key("created").value(true);
          w.key("organization");
          json::write_org(w, c.org);
          w.key("user").raw(impl::user_with_token(c.admin, token));
          w.end_object();
          r->reply(json_response(200, w.take()));
        },
        [self, who, r, attempts_left](const caf::error& err) {
          if (is_code(err, crm_errc::conflict, "id_collision"))
            return self->retry_create(who, r, attempts_left);
          // Two installs racing: the loser answers like a repeat install,
          // and does not create again.
          if (is_code(err, crm_errc::conflict, "email_taken")
              || is_code(err, crm_errc::conflict, "office365_link_conflict"))
            return self->about(who, r, [self, who, r] {
              self->finish_install(who, r, false);
            });
          fail(r, err);
        });
  }

  void retry_create(const o365_identity& who, const responder_ptr& r,
                    int attempts_left) {
    if (attempts_left <= 1)
      return fail(r, 503, "busy",
                  "could not allocate an organization id; retry");
    create_installed_org(who, r, attempts_left - 1);
  }

  /// Links the person to the user and answers with a fresh API token.
  void link_and_answer(const o365_identity& who, tenant_id org, user_id user,
                       const std::string& action, const std::string& status,
                       bool created, const responder_ptr& r) {
    link_then(
        who, org, user, action, r, [](auto next) { next(); }, status, created);
  }

  /// Links the person to the user (a fresh API token), runs `between`
  /// (which calls its argument to go on, or answers itself), then answers
  /// with the organization and the user with their token.
  template <class Between>
  void link_then(const o365_identity& who, tenant_id org, user_id user,
                 const std::string& action, const responder_ptr& r,
                 Between between, const std::string& status, bool created) {
    auto self = shared_from_this();
    link(who, org, user, action, r,
         [self, r, org, status, created, between](user_record& u,
                                                  const std::string& token) {
           between([self, r, org, token, status, created, u] {
             self->s_.ask<org_record>(
                 tenant_key(org), get_org{service_caller()}, r,
                 [r, u, token, status, created](org_record& o) {
                   json::writer w;
                   w.begin_object().key("status").value(status);
                   if (status == "installed")
                     w.key("created").value(created);
                   w.key("organization");
                   json::write_org(w, o);
                   w.key("user").raw(impl::user_with_token(u, token));
                   w.end_object();
                   r->reply(json_response(200, w.take()));
                 });
           });
         });
  }

  /// The CRM user the person is: linked ("signin"), or (P2) a CRM user
  /// whose address is this person's sign-in name, in the organization
  /// linked to their tenant ("signin_by_email"): the sign-in name is the
  /// userPrincipalName, in a domain the tenant verified (identity_email),
  /// never the unverified `email` claim. The tenant actor checks the link
  /// again and audits it.
  bool member(const o365_identity& who, tenant_id& org, user_id& user,
              std::string& action) override {
    if (member_of(who, org, user)) {
      action = "signin";
      return true;
    }
    tenant_id email_org;
    if (org_of_tenant(who.tenant, org)
        && user_by_email(who.email, email_org, user) && email_org == org) {
      action = "signin_by_email";
      return true;
    }
    return false;
  }

  /// R4: a CRM user gets their token; anyone else a session to accept an
  /// invite, request to join or associate an account.
  void signed_in(const o365_identity& who, const responder_ptr& r,
                 const std::string& invite_token) {
    tenant_id org;
    user_id user;
    std::string action;
    if (member(who, org, user, action))
      return link_and_answer(who, org, user, action, "member", false, r);
    auto session = put_session(who);
    if (session.empty())
      return fail(r, 503, "storage_failure", "could not start a session");
    auto accept_url = invite_token.empty()
                          ? std::string{}
                          : s_.o365.public_url + "/api/v1/invites/"
                                + invite_token + "/accept";
    auto answer = [r, session, who, accept_url](const org_record* o,
                                                const std::string& open_url) {
      json::writer w;
      w.begin_object().key("status").value("not_a_member");
      // Opened from an invitation e-mail: where to accept it (R8); opened
      // through the app: where to accept the open invitation, if any.
      // Absent when there is nothing to accept.
      auto url = accept_url.empty() ? open_url : accept_url;
      if (!url.empty())
        w.key("invite_accept_url").value(url);
      w.key("organization");
      if (o == nullptr) {
        w.null();
      } else {
        w.begin_object();
        w.key("id").value(o->id.str());
        w.key("name").value(o->name);
        w.end_object();
      }
      w.key("office365_session").value(session);
      w.key("office365_user");
      write_identity(w, who);
      w.end_object();
      r->reply(json_response(200, w.take()));
    };
    if (!org_of_tenant(who.tenant, org))
      return answer(nullptr, {});
    auto self = shared_from_this();
    s_.ask<org_record>(
        tenant_key(org), get_org{service_caller()},
        [self, answer, who, org](org_record& o) {
          self->s_.ask<invite_list>(
              tenant_key(org), list_my_invites{who},
              [self, answer, o](invite_list& mine) {
                // The newest open invitation (a new one supersedes the
                // older ones, so there is at most one in practice).
                answer(&o, mine.items.empty()
                               ? std::string{}
                               : self->accept_by_id_url(mine.items.back()));
              },
              [answer, o](const caf::error&) { answer(&o, {}); });
        },
        [answer](const caf::error&) { answer(nullptr, {}); });
  }

  /// Where the invitee accepts invitation `x` with their session, without
  /// the e-mail's link (its token is never stored): the invitation's id
  /// stands in for the token, and the session proves who the invitee is.
  std::string accept_by_id_url(const invite_record& x) const {
    return s_.o365.public_url + "/api/v1/invites/" + to_hex16(x.id) + "/accept";
  }

  /// GET /api/v1/invites/mine: the signed-in person's open invitations.
  void my_invites(const request& req, const responder_ptr& r) {
    auto self = shared_from_this();
    with_session(req, r, {},
                 [self, r](const request&, const o365_identity& who) {
                   self->my_invites_of(who, r);
                 });
  }

  void my_invites_of(const o365_identity& who, const responder_ptr& r) {
    auto reply = [r](const std::vector<invite_record>& items,
                     const office365_flows& f) {
      json::writer w;
      w.begin_object().key("items").begin_array();
      for (auto& x : items) {
        w.begin_object();
        w.key("invite");
        write_invite(w, x);
        w.key("accept_url").value(f.accept_by_id_url(x));
        w.end_object();
      }
      w.end_array().end_object();
      r->reply(json_response(200, w.take()));
    };
    tenant_id org;
    if (!org_of_tenant(who.tenant, org))
      return reply({}, *this);
    auto self = shared_from_this();
    s_.ask<invite_list>(
        tenant_key(org), list_my_invites{who}, r,
        [self, reply](invite_list& mine) { reply(mine.items, *self); });
  }

  // -- associate my account ---------------------------------------------------

  /// Checks an e-mail and password against a CRM account for `who`; calls
  /// next(user) or answers 401, or 429 while the account or the client
  /// backs off after wrong passwords (issue 11, item 6).
  template <class Next>
  void verify_credentials(const request& req, const o365_identity& who,
                          const json::credentials& c, const responder_ptr& r,
                          Next next) {
    if (!s_.admit_password(req, c.email, r))
      return;
    tenant_id org;
    user_id user;
    auto self = shared_from_this();
    auto client = s_.limits.client_of(req);
    auto caller = s_.hash_caller(req);
    auto refuse = [self, r, client, email = c.email,
                   actor = "office365:" + who.email](tenant_id in) {
      self->s_.password_failed(client, email, in, actor);
      fail(r, 401, "invalid_credentials",
           "the e-mail address or password is not right");
    };
    if (!user_by_email(c.email, org, user)) {
      // Same cost as a real check, so timing does not reveal accounts.
      s_.hash_then(caller, true, r, [refuse, pw = c.password] {
        crypto::hash_password(pw);
        refuse(tenant_id{});
      });
      return;
    }
    s_.ask<user_record>(
        tenant_key(org), get_user{service_caller(), user}, r,
        [self, r, caller, pw = c.password, refuse,
         next](user_record& u) mutable {
          self->s_.hash_then(
              caller, true, r, [self, u, pw, refuse, next]() mutable {
                if (u.password_hash.empty()
                    || !crypto::verify_password(pw, u.password_hash))
                  return refuse(u.org);
                self->s_.password_ok(u.email);
                next(u);
              });
        });
  }

  void associate(const request& req, const responder_ptr& r) {
    // The account's e-mail is looked up with the session.
    std::vector<std::string> more;
    json::credentials early;
    if (!json::decode_credentials(req.body, early))
      more.push_back(keys::email_lookup(early.email));
    auto self = shared_from_this();
    with_session(req, r, std::move(more),
                 [self, r](const request& req, const o365_identity& who) {
                   self->associate_as(req, who, r);
                 });
  }

  void associate_as(const request& req, const o365_identity& who,
                    const responder_ptr& r) {
    if (!s_.require_json(req, r))
      return;
    json::credentials c;
    if (auto err = json::decode_credentials(req.body, c))
      return fail(r, err);
    auto self = shared_from_this();
    verify_credentials(req, who, c, r, [self, who, r](user_record& u) {
      self->link_and_answer(who, u.org, u.id, "associate", "associated", false,
                            r);
    });
  }

  // -- the tenant's Office 365 users ------------------------------------------

  /// Calls next(org record, caller's user record or nullptr for the
  /// service admin) once the principal is known to manage users of `org`.
  template <class Next>
  void with_manager(const principal& p, tenant_id org, const responder_ptr& r,
                    const char* what, Next next) {
    auto self = shared_from_this();
    s_.ask<org_record>(
        tenant_key(org), get_org{p.who}, r,
        [self, p, org, r, what, next](org_record& o) mutable {
          if (p.who.service_admin)
            return next(o, std::shared_ptr<user_record>{});
          self->s_.ask<user_record>(
              tenant_key(org), crmsync::authenticate{p.who}, r,
              [r, o, what, next](user_record& u) mutable {
                if (!u.manage_users && !u.super_admin)
                  return fail(r, 403, "manage_users_required",
                              std::string{what}
                                  + " needs the Manage Users permission");
                next(o, std::make_shared<user_record>(u));
              });
        });
  }

  void office365_users(const request& req, const path_params& pp,
                       const responder_ptr& r) {
    principal p;
    query_params q;
    if (!s_.authenticate(req, r, p) || !s_.read_query(req, r, q)
        || !configured(r))
      return;
    uint32_t limit = 100;
    if (!s_.read_limit(q, r, limit))
      return;
    std::string cursor;
    if (auto c = find_param(q, "cursor"))
      cursor = *c;
    auto self = shared_from_this();
    s_.with_org(p, pp[0], r, [self, p, r, limit, cursor](tenant_id org) {
      self->with_manager(
          p, org, r, "listing Office 365 users",
          [self, r, limit, cursor](org_record& o,
                                   std::shared_ptr<user_record>) {
            if (o.o365_tenant.empty())
              return fail(r, 409, "office365_not_installed",
                          "the organization is not linked to Office 365; "
                          "install the app first");
            self->list_office365_users(o, limit, cursor, r);
          });
    });
  }

  /// A cursor is a nextLink of Graph's user list and nothing else: the app's
  /// token is never sent anywhere a client chose.
  static bool is_users_link(const std::string& cursor) {
    auto scheme = cursor.find("://");
    if (scheme == std::string::npos)
      return false;
    auto path = cursor.find('/', scheme + 3);
    auto query = cursor.find('?');
    if (path == std::string::npos || query == std::string::npos || query < path)
      return false;
    auto p = std::string_view{cursor}.substr(path, query - path);
    constexpr std::string_view tail = "/users";
    return p.size() >= tail.size() && p.substr(p.size() - tail.size()) == tail
           && p.find("..") == std::string_view::npos;
  }

  void list_office365_users(const org_record& o, uint32_t limit,
                            const std::string& cursor, const responder_ptr& r) {
    if (!cursor.empty() && !is_users_link(cursor))
      return fail(r, 400, "invalid_field", "'cursor' is not valid", "cursor");
    auto path = cursor.empty()
                    ? "/users?$select=id,displayName,userPrincipalName,mail&"
                      "$top="
                          + std::to_string(std::min<uint32_t>(limit, 999))
                    : cursor;
    // Read without a thread waiting; the members' links are looked up
    // across the cluster the same way.
    auto self = shared_from_this();
    s_.o365.graph->start_page(
        o.o365_tenant, path,
        [self, o, cursor, r](graph::result<graph::page> listed) {
          std::vector<std::string> links;
          if (listed.ok)
            for (auto& item : listed.value.items) {
              json::graph_user gu;
              if (json::decode_graph_user(item, gu))
                links.push_back(keys::o365_user_lookup(o.o365_tenant, gu.id));
            }
          self->with_lookups(r, std::move(links), [self, o, cursor, r, listed] {
            self->office365_users_listed(o, cursor, listed, r);
          });
        });
  }

  /// One page of the tenant's users, with their CRM membership (their
  /// links fetched).
  void office365_users_listed(const org_record& o, const std::string& cursor,
                              const graph::result<graph::page>& listed,
                              const responder_ptr& r) {
    auto& err = listed.failure;
    if (!listed.ok) {
      if (!cursor.empty()
          && (err.status == 400 || err.code == "invalid_url"
              || err.code == "insecure_url"))
        return fail(r, 400, "invalid_field", "'cursor' is not valid", "cursor");
      return r->reply(error_response(graph_failure(err)));
    }
    auto& items = listed.value.items;
    auto& next = listed.value.next_link;
    json::writer w;
    w.begin_object().key("items").begin_array();
    for (auto& item : items) {
      json::graph_user gu;
      if (!json::decode_graph_user(item, gu))
        continue;
      tenant_id member_org;
      user_id member;
      std::string v;
      bool is_member = lookup(keys::o365_user_lookup(o.o365_tenant, gu.id), v)
                       && split_tenant_user(v, member_org, member);
      w.begin_object();
      w.key("id").value(gu.id);
      w.key("display_name").value(gu.display_name);
      w.key("user_principal_name").value(gu.user_principal_name);
      w.key("mail").value_or_null(gu.mail);
      // Graph shows no mail address for a user without a mailbox.
      w.key("has_mailbox").value(!gu.mail.empty());
      w.key("crm_user").id_or_null(is_member ? member : user_id{});
      w.end_object();
    }
    w.end_array().key("next_cursor").value_or_null(next);
    w.end_object();
    r->reply(json_response(200, w.take()));
  }

  // -- invitations ------------------------------------------------------------

  void create_invites(const request& req, const path_params& pp,
                      const responder_ptr& r) {
    principal p;
    if (!s_.authenticate_json(req, r, p) || !configured(r))
      return;
    std::vector<std::string> ids;
    if (auto err = json::decode_invites_create(req.body, ids, max_invitees))
      return fail(r, err);
    auto self = shared_from_this();
    s_.with_org(p, pp[0], r, [self, p, r, ids](tenant_id org) {
      self->with_manager(
          p, org, r, "inviting users",
          [self, p, r, ids](org_record& o, std::shared_ptr<user_record>) {
            // Refusals that need no Graph call come first.
            if (o.plan != edition::paid)
              return fail(r, 403, "edition_required",
                          "inviting Office 365 users is available in paid "
                          "editions only");
            if (o.o365_tenant.empty())
              return fail(r, 409, "office365_not_installed",
                          "the organization is not linked to Office 365; "
                          "install the app first");
            self->look_up_invitees(p, o, ids, r);
          });
    });
  }

  /// Every invitee's lookup in the organization's tenant, all at once.
  struct invitee_lookups {
    std::mutex mtx;
    std::vector<graph::result<graph::response>> answers;
    size_t left = 0;
  };

  /// Looks every invitee up in the organization's tenant at once, without
  /// a thread waiting; the last answer goes on.
  void look_up_invitees(const principal& p, const org_record& o,
                        const std::vector<std::string>& ids,
                        const responder_ptr& r) {
    if (ids.empty())
      return invitees_looked_up(p, o, ids, {}, r);
    auto lookups = std::make_shared<invitee_lookups>();
    lookups->answers.resize(ids.size());
    lookups->left = ids.size();
    auto self = shared_from_this();
    for (size_t i = 0; i < ids.size(); ++i) {
      graph::call_spec get;
      get.tenant = o.o365_tenant;
      get.path_or_url = "/users/" + percent_encode(ids[i])
                        + "?$select=id,displayName,userPrincipalName,mail";
      s_.o365.graph->start(
          std::move(get), [self, p, o, ids, r, lookups,
                           i](graph::result<graph::response> answer) {
            {
              std::lock_guard<std::mutex> guard{lookups->mtx};
              lookups->answers[i] = std::move(answer);
              if (--lookups->left != 0)
                return;
            }
            self->invitees_looked_up(p, o, ids, lookups->answers, r);
          });
    }
  }

  /// Every invitee looked up (answers in `ids` order): asks the tenant to
  /// store the invites and queue their e-mails.
  void
  invitees_looked_up(const principal& p, const org_record& o,
                     const std::vector<std::string>& ids,
                     const std::vector<graph::result<graph::response>>& answers,
                     const responder_ptr& r) {
    invite_users cmd;
    cmd.who = p.who;
    cmd.public_url = s_.o365.public_url;
    cmd.lifetime_ms = s_.o365.invite_lifetime.count();
    for (size_t i = 0; i < ids.size(); ++i) {
      auto& id = ids[i];
      auto& res = answers[i].value;
      auto& err = answers[i].failure;
      if (!answers[i].ok) {
        if (err.status == 404 || err.status == 401 || err.status == 400)
          return fail(r, 400, "unknown_office365_user",
                      "'" + id
                          + "' is not a user of the organization's "
                            "Office 365 tenant",
                      "office365_user_ids");
        return r->reply(error_response(graph_failure(err)));
      }
      json::graph_user gu;
      if (!json::decode_graph_user(res.body, gu))
        return r->reply(error_response(
            api_error{502, "office365_error",
                      "Office 365 answered a user lookup with something "
                      "that is not a user",
                      ""}));
      invitee person;
      person.o365_user = gu.id;
      auto raw = gu.mail.empty() ? gu.user_principal_name : gu.mail;
      if (!json::normalize_email(raw, person.email))
        return fail(r, 400, "unknown_office365_user",
                    "'" + id + "' has no e-mail address to invite",
                    "office365_user_ids");
      person.name = gu.display_name.empty() ? person.email : gu.display_name;
      cmd.invitees.push_back(std::move(person));
    }
    s_.ask<invite_list>(tenant_key(o.id), std::move(cmd), r,
                        [r](invite_list& out) {
                          json::writer w;
                          w.begin_object().key("items").begin_array();
                          for (auto& x : out.items)
                            write_invite(w, x);
                          w.end_array().key("already_members").begin_array();
                          for (auto& x : out.already_members) {
                            w.begin_object();
                            w.key("office365_user_id").value(x.o365_user);
                            w.key("email").value(x.email);
                            w.end_object();
                          }
                          w.end_array().end_object();
                          r->reply(json_response(201, w.take()));
                        });
  }

  void list_org_invites(const request& req, const path_params& pp,
                        const responder_ptr& r) {
    principal p;
    if (!s_.authenticate(req, r, p))
      return;
    auto self = shared_from_this();
    s_.with_org(p, pp[0], r, [self, p, r](tenant_id org) {
      self->s_.ask<invite_list>(tenant_key(org), list_invites{p.who}, r,
                                [r](invite_list& out) {
                                  json::writer w;
                                  w.begin_object().key("items").begin_array();
                                  for (auto& x : out.items)
                                    write_invite(w, x);
                                  w.end_array().end_object();
                                  r->reply(json_response(200, w.take()));
                                });
    });
  }

  /// R8/R9: the invitee accepts, or goes to their existing account.
  void accept(const request& req, const path_params& pp,
              const responder_ptr& r) {
    auto self = shared_from_this();
    std::vector<std::string> more;
    if (!parse_hex16(pp[0]))
      more.push_back(keys::invite_token_lookup(crypto::sha256_hex(pp[0])));
    with_session(
        req, r, std::move(more),
        [self, r, link = pp[0]](const request& req, const o365_identity& who) {
          if (!self->s_.require_json(req, r))
            return;
          json::accept_body body;
          if (auto err = json::decode_invite_accept(req.body, body))
            return fail(r, err);
          self->accept_as(req, who, link, body, r);
        });
  }

  /// R8/R9 for `who`, whose session (a token, or a page's cookie) proved
  /// who they are; `link` is the e-mail link's token or the invitation's
  /// id.
  void accept_as(const request& req, const o365_identity& who,
                 const std::string& link, const json::accept_body& body,
                 const responder_ptr& r) override {
    // The e-mail's link carries the token; an invitee who signed in
    // through the app has the invitation's id (16 hex digits, a shape no
    // token has), looked up in their own tenant's organization.
    std::string token_hash;
    uint64_t invite_id = 0;
    tenant_id org;
    if (auto id = parse_hex16(link)) {
      invite_id = *id;
      if (!org_of_tenant(who.tenant, org))
        return fail(r, 404, "invite_not_found", "no invitation has this link");
    } else {
      token_hash = crypto::sha256_hex(link);
      std::string v;
      if (!lookup(keys::invite_token_lookup(token_hash), v) || v.size() != 16)
        return fail(r, 404, "invite_not_found", "no invitation has this link");
      org = tenant_id{keys::get_be64(v, 0)};
    }
    auto self = shared_from_this();
    if (!body.associate) {
      auto m = mint_user(org);
      accept_invite cmd;
      cmd.token_hash = token_hash;
      cmd.invite = invite_id;
      cmd.who = who;
      cmd.member = m.user;
      cmd.member.email = who.email;
      cmd.member.name = who.name;
      return s_.ask<invite_accepted>(
          tenant_key(org), std::move(cmd), r,
          [r, token = m.token](invite_accepted& out) {
            json::writer w;
            w.begin_object().key("status").value("accepted");
            w.key("invite");
            write_invite(w, out.invite);
            w.key("user").raw(impl::user_with_token(out.member, token));
            w.end_object();
            r->reply(json_response(201, w.take()));
          });
    }
    verify_credentials(
        req, who, body.account, r,
        [self, who, org, token_hash, invite_id, r](user_record& u) {
          if (u.org == org)
            return fail(r, 409, "already_member",
                        "that account already belongs to the inviting "
                        "organization; accept without 'associate'");
          // The link first: if it is refused, the invitation stays usable.
          auto mark_invite = [self, who, org, token_hash, invite_id, r,
                              uid = u.id](auto next) {
            accept_invite cmd;
            cmd.token_hash = token_hash;
            cmd.invite = invite_id;
            cmd.who = who;
            cmd.associated = true;
            cmd.associated_user = uid;
            self->s_.ask<invite_accepted>(
                tenant_key(org), std::move(cmd), r,
                [next](invite_accepted&) mutable { next(); });
          };
          self->link_then(who, u.org, u.id, "associate", r, mark_invite,
                          "associated", false);
        });
  }

  // -- join requests ----------------------------------------------------------

  void create_join_request(const request& req, const responder_ptr& r) {
    auto self = shared_from_this();
    with_session(req, r, {},
                 [self, r](const request& req, const o365_identity& who) {
                   self->create_join_request_as(req, who, r);
                 });
  }

  void create_join_request_as(const request& req, const o365_identity& who,
                              const responder_ptr& r) {
    if (!req.body.empty() && !s_.require_json(req, r))
      return;
    tenant_id org;
    user_id user;
    if (member_of(who, org, user))
      return fail(r, 409, "already_member",
                  "you are already a CRM user; sign in again to get your "
                  "token");
    if (!org_of_tenant(who.tenant, org))
      return fail(r, 404, "organization_not_found",
                  "nobody has installed the app for your Office 365 "
                  "organization yet; an administrator can install it at "
                  "/o365/install");
    s_.ask<join_request_record>(tenant_key(org),
                                request_join{who, s_.o365.public_url}, r,
                                [r](join_request_record& jr) {
                                  json::writer w;
                                  write_join_request(w, jr);
                                  r->reply(json_response(201, w.take()));
                                });
  }

  void my_join_request(const request& req, const responder_ptr& r) {
    auto self = shared_from_this();
    with_session(req, r, {},
                 [self, r](const request&, const o365_identity& who) {
                   self->my_join_request_of(who, r);
                 });
  }

  void my_join_request_of(const o365_identity& who, const responder_ptr& r) {
    tenant_id org;
    if (!org_of_tenant(who.tenant, org))
      return fail(r, 404, "not_found", "join request not found");
    s_.ask<join_request_record>(tenant_key(org), get_join_request{who}, r,
                                [r](join_request_record& jr) {
                                  json::writer w;
                                  write_join_request(w, jr);
                                  r->reply(json_response(200, w.take()));
                                });
  }

  void list_org_join_requests(const request& req, const path_params& pp,
                              const responder_ptr& r) {
    principal p;
    if (!s_.authenticate(req, r, p))
      return;
    auto self = shared_from_this();
    s_.with_org(p, pp[0], r, [self, p, r](tenant_id org) {
      self->s_.ask<join_request_list>(
          tenant_key(org), list_join_requests{p.who}, r,
          [r](join_request_list& out) {
            json::writer w;
            w.begin_object().key("items").begin_array();
            for (auto& x : out.items)
              write_join_request(w, x);
            w.end_array().end_object();
            r->reply(json_response(200, w.take()));
          });
    });
  }

  void approve(const request& req, const path_params& pp,
               const responder_ptr& r) {
    approve_then(req, pp, r, [r](join_approved& out) {
      json::writer w;
      w.begin_object().key("request");
      write_join_request(w, out.request);
      w.key("user");
      json::write_user(w, out.member);
      w.end_object();
      r->reply(json_response(200, w.take()));
    });
  }

  /// "Approve & Add" for the caller of `req`: errors are answered on `r`,
  /// the approval goes to `done`.
  template <class Done>
  void approve_then(const request& req, const path_params& pp,
                    const responder_ptr& r, Done done) {
    principal p;
    if (!s_.authenticate(req, r, p))
      return;
    auto id = parse_hex16(pp[1]);
    auto self = shared_from_this();
    s_.with_org(p, pp[0], r, [self, p, r, id, done](tenant_id org) {
      if (!id)
        return fail(r, 404, "not_found", "join request not found");
      self->approve_as(p.who, org, *id, r, done);
    });
  }

  void approve_as(const caller& who, tenant_id org, uint64_t request,
                  const responder_ptr& r,
                  std::function<void(join_approved&)> done) override {
    approve_join cmd;
    cmd.who = who;
    cmd.request = request;
    // The new user signs in with Office 365 to get a token; this one is
    // never shown.
    cmd.member = mint_user(org).user;
    s_.ask<join_approved>(tenant_key(org), std::move(cmd), r,
                          [done](join_approved& out) { done(out); });
  }

  // -- the join request page (the link of the approvers' e-mail)
  // ---------------

  /// POST /join-requests/{org}/{id}: the page's "Approve & Add". The token
  /// comes from the form's body (or an Authorization header); the answer is
  /// a page either way.
  void approve_with_token_form(const request& req, const path_params& pp,
                               const responder_ptr& r) override {
    auto browser = std::make_shared<html_errors>(r);
    request as_api = req;
    if (req.header("authorization").empty()) {
      query_params form;
      auto ct = ascii_lower(req.header("content-type"));
      if (ct.rfind("application/x-www-form-urlencoded", 0) != 0
          || !parse_query(req.body, form))
        return browser->reply(error_response(
            api_error{400, "invalid_form",
                      "send the page's form (the 'token' field)", "token"}));
      auto token = find_param(form, "token");
      if (token != nullptr && !token->empty())
        as_api.headers.emplace_back("authorization", "Bearer " + *token);
    }
    approve_then(as_api, pp, browser, [browser](join_approved& out) {
      browser->done(
          page(200, "Approved",
               "<p><b>" + pages::escape(out.member.name) + "</b> ("
                   + pages::escape(out.member.email)
                   + ") is a user of the CRM now. They sign in with Office 365 "
                     "to start.</p>"));
    });
  }

  // -- for the browser pages (pages_flows.cpp) -------------------------------

  void guarded(const responder_ptr& r,
               const std::function<void()>& fn) override {
    try {
      fn();
    } catch (const node_unreachable&) {
      unreachable(r);
    }
  }

  void link(const o365_identity& who, tenant_id org, user_id user,
            const std::string& action, const responder_ptr& r,
            std::function<void(user_record&, const std::string&)> done,
            bool page = false) override {
    auto token = make_user_token(org.value, user.value);
    link_office365 cmd;
    cmd.who = who;
    cmd.user = user;
    cmd.token_hash = crypto::sha256_hex(token);
    cmd.action = action;
    cmd.page = page;
    s_.ask<user_record>(tenant_key(org), std::move(cmd), r,
                        [done, token](user_record& u) { done(u, token); });
  }

  void install(const request& req, const o365_identity& who,
               const responder_ptr& r) override {
    // Admin consent comes back to this browser: its sign-in cookie binds
    // the consent's state (a new one when the sign-in's has expired).
    auto secret = browser_secret(req);
    auto with_cookie = std::make_shared<cookie_setter>(r, set_cookie(secret));
    auto self = shared_from_this();
    about(who, with_cookie, [self, who, with_cookie, secret] {
      self->install_signed_in(who, crypto::sha256_hex(secret), with_cookie);
    });
  }

  void associate_then_install(const request& req, const o365_identity& who,
                              const json::credentials& c,
                              const responder_ptr& r) override {
    auto self = shared_from_this();
    verify_credentials(req, who, c, r, [self, req, who, r](user_record& u) {
      // An install that would link the account's organization needs an
      // administrator's account (the tenant checks again): refused before
      // the identity is associated, so a refusal changes nothing.
      tenant_id installed;
      if (!crmsync::is_admin(&u)
          && !(self->org_of_tenant(who.tenant, installed)
               && installed == u.org))
        return fail(r, 403, "admin_required",
                    "only an administrator of the CRM organization can link "
                    "it to Office 365; associate an administrator's account");
      // The link's token is never shown: the install answers a fresh one.
      self->link(who, u.org, u.id, "associate", r,
                 [self, req, who, r](user_record&, const std::string&) {
                   self->install(req, who, r);
                 });
    });
  }

  // -- audit ------------------------------------------------------------------

  void audit(const request& req, const path_params& pp,
             const responder_ptr& r) {
    principal p;
    query_params q;
    if (!s_.authenticate(req, r, p) || !s_.read_query(req, r, q))
      return;
    list_audit cmd;
    cmd.who = p.who;
    if (!s_.read_limit(q, r, cmd.limit))
      return;
    auto self = shared_from_this();
    s_.with_org(p, pp[0], r, [self, cmd, r](tenant_id org) {
      self->s_.ask<audit_list>(tenant_key(org), cmd, r, [r](audit_list& out) {
        json::writer w;
        w.begin_object().key("items").begin_array();
        for (auto& a : out.items)
          write_audit_entry(w, a);
        w.end_array().end_object();
        r->reply(json_response(200, w.take()));
      });
    });
  }

  // -- calendar sync ----------------------------------------------------------

  /// R13: PUT …/calendar-sync {"enabled"}; the engine does the rest.
  void set_sync(const request& req, const path_params& pp,
                const responder_ptr& r) {
    principal p;
    if (!s_.authenticate_json(req, r, p))
      return;
    bool enabled = false;
    if (auto err = json::decode_calendar_sync(req.body, enabled))
      return fail(r, err);
    if (enabled && !configured(r))
      return;
    std::optional<user_id> uid;
    if (!s_.user_param(p, pp[1], r, uid))
      return;
    auto self = shared_from_this();
    s_.with_org(p, pp[0], r, [self, p, uid, enabled, r](tenant_id org) {
      if (!uid)
        return fail(r, 404, "not_found", "user not found");
      set_calendar_sync cmd;
      cmd.who = p.who;
      cmd.user = *uid;
      cmd.enabled = enabled;
      self->s_.ask<calendar_status>(tenant_key(org), cmd, r,
                                    [r](calendar_status& s) {
                                      json::writer w;
                                      json::write_calendar_status(w, s);
                                      r->reply(json_response(200, w.take()));
                                    });
    });
  }

  /// Graph's webhook POSTs: the validation handshake (echo the token as
  /// text/plain within 10 s), else notifications, acknowledged 202 only
  /// once durably in the inbox.
  void webhook(const request& req, const responder_ptr& r, bool lifecycle) {
    query_params q;
    if (!s_.read_query(req, r, q))
      return;
    if (auto token = find_param(q, "validationToken")) {
      // Graph's tokens are about a hundred characters: a longer one is not
      // Graph's, and this node echoes nobody's text at length.
      constexpr size_t max_validation_token = 512;
      if (token->size() > max_validation_token)
        return fail(r, 400, "invalid_field",
                    "'validationToken' is longer than "
                        + std::to_string(max_validation_token) + " characters",
                    "validationToken");
      response res;
      res.status = 200;
      res.content_type = "text/plain; charset=utf-8";
      res.body = *token;
      return r->reply(std::move(res));
    }
    if (s_.o365.sync == nullptr)
      return fail(r, 503, "office365_not_configured",
                  "this node does not sync calendars");
    auto* syncer = s_.o365.sync;
    syncer->ingest(req.body, lifecycle, [r, syncer](sync::ingest_result got) {
      switch (got) {
        case sync::ingest_result::stored:
          break;
        case sync::ingest_result::malformed:
          return fail(r, 400, "bad_notification",
                      "the body is not a Graph notification collection");
        case sync::ingest_result::too_many:
          return r->reply(
              too_many_notifications(syncer->max_notifications_per_post()));
        case sync::ingest_result::unavailable:
          return fail(r, 503, "unavailable",
                      "the notifications could not be stored; retry");
      }
      response res;
      res.status = 202;
      r->reply(std::move(res));
    });
  }

  // -- administration ---------------------------------------------------------

  /// crmsyncctl check ORG: the convergence checker. Storage is read on
  /// the I/O thread that took the request (local reads, no waiting on
  /// Graph or the cluster); Graph is read asynchronously, every user's
  /// pages at once (bounded), and the answer is sent from the last page's
  /// callback.
  void check(const request& req, const path_params& pp,
             const responder_ptr& r) {
    if (!s_.admin_auth(req, r) || !configured(r))
      return;
    auto org = tenant_id::parse(pp[0]);
    if (!org)
      return fail(r, 404, "not_found", "organization not found");
    std::string v;
    bool found = false;
    if (s_.db.get(column::orgs, keys::org(*org), v, found) || !found)
      return fail(r, 404, "not_found", "organization not found");
    auto now = this->now();
    constexpr int64_t day = 86'400'000;
    sync::check_org(s_.db, *s_.o365.graph, *org, now - 365 * day,
                    now + 730 * day, [r](std::vector<sync::user_check> users) {
                      r->reply(json_response(200, check_json(users)));
                    });
  }

  static std::string check_json(const std::vector<sync::user_check>& users) {
    json::writer w;
    uint64_t total = 0;
    w.begin_object().key("users").begin_array();
    for (auto& u : users) {
      total += u.differences.size();
      w.begin_object();
      w.key("user").value(u.user.str());
      w.key("state").value(u.state);
      w.key("crm_events").value(u.crm_events);
      w.key("office365_events").value(u.office365_events);
      w.key("pending").value(u.pending);
      w.key("error").value_or_null(u.error);
      w.key("differences").begin_array();
      for (auto& d : u.differences) {
        w.begin_object();
        w.key("kind").value(d.kind);
        w.key("crm_event").value(d.crm_event);
        w.key("office365_event").value(d.office365_event);
        w.key("detail").value(d.detail);
        w.end_object();
      }
      w.end_array().end_object();
      if (!u.error.empty())
        ++total;
    }
    w.end_array();
    w.key("differences").value(total);
    w.end_object();
    return w.take();
  }

  /// crmsyncctl conflicts ORG: the conflict log, newest first.
  void conflicts(const request& req, const path_params& pp,
                 const responder_ptr& r) {
    query_params q;
    uint32_t limit = 100;
    if (!s_.admin_auth(req, r) || !s_.read_query(req, r, q)
        || !s_.read_limit(q, r, limit))
      return;
    auto org = tenant_id::parse(pp[0]);
    if (!org)
      return fail(r, 404, "not_found", "organization not found");
    std::vector<sync_conflict> all;
    auto prefix = keys::org(*org);
    s_.db.scan(column::conflicts, prefix, keys::prefix_end(prefix),
               [&](std::string_view, std::string_view v) {
                 sync_conflict c;
                 if (codec::decode(v, c))
                   all.push_back(std::move(c));
                 return true;
               });
    json::writer w;
    w.begin_object().key("items").begin_array();
    size_t shown = 0;
    for (auto c = all.rbegin(); c != all.rend() && shown < limit;
         ++c, ++shown) {
      w.begin_object();
      w.key("at").value(format_rfc3339_ms(c->at_ms));
      w.key("user").value(c->user.str());
      w.key("event").value(c->event.str());
      w.key("office365_event").value(c->graph_id);
      w.key("policy").value(c->policy);
      w.key("winner").value(c->winner);
      w.key("kept").value(c->kept);
      w.key("lost").value(c->lost);
      w.end_object();
    }
    w.end_array().end_object();
    r->reply(json_response(200, w.take()));
  }

  /// crmsyncctl approve-deletes USER: lets a run held by the mass-delete
  /// guard go ahead once.
  void approve_deletes(const request& req, const path_params& pp,
                       const responder_ptr& r) {
    if (!s_.admin_auth(req, r))
      return;
    tenant_id org;
    user_id uid;
    caf::error err;
    if (!s_.lookup_user(pp[0], org, uid, err))
      return err ? fail(r, err) : fail(r, 404, "not_found", "user not found");
    storage::write_batch b;
    b.put(column::sync, keys::sync_approval_key(org, uid),
          std::to_string(now()));
    if (auto werr = s_.db.write(b))
      return fail(r, werr);
    if (s_.o365.sync != nullptr)
      s_.o365.sync->wanted(org, uid);
    s_.ask<calendar_status>(entity_key{entity_kind::calendar, org, uid},
                            status_request{}, r, [r](calendar_status& st) {
                              json::writer w;
                              json::write_calendar_status(w, st);
                              r->reply(json_response(202, w.take()));
                            });
  }

  /// crmsyncctl sync USER: one user's calendar sync status.
  void user_sync(const request& req, const path_params& pp,
                 const responder_ptr& r) {
    if (!s_.admin_auth(req, r))
      return;
    tenant_id org;
    user_id uid;
    caf::error err;
    if (!s_.lookup_user(pp[0], org, uid, err))
      return err ? fail(r, err) : fail(r, 404, "not_found", "user not found");
    s_.ask<calendar_status>(entity_key{entity_kind::calendar, org, uid},
                            status_request{}, r, [r](calendar_status& st) {
                              json::writer w;
                              json::write_calendar_status(w, st);
                              r->reply(json_response(200, w.take()));
                            });
  }

private:
  impl& s_;
  std::weak_ptr<page_flows> pages_;
};

void api::impl::install_office365_routes() {
  auto flows = std::make_shared<office365_flows>(*this);
  flows->set_pages(install_page_routes(*this, flows));
  auto on = [&](const char* method, const char* path, auto fn) {
    routes.add(
        method, path,
        [flows, fn](request& req, const path_params& pp, responder_ptr r) {
          try {
            fn(*flows, req, pp, r);
          } catch (const office365_flows::node_unreachable&) {
            office365_flows::unreachable(r);
          }
        });
  };
  on("GET", "/o365/install",
     [](office365_flows& f, request& req, const path_params&, responder_ptr r) {
       r = pages::for_browser(req, std::move(r));
       f.start_signin(req, "install", r);
     });
  on("GET", "/o365/signin",
     [](office365_flows& f, request& req, const path_params&, responder_ptr r) {
       r = pages::for_browser(req, std::move(r));
       f.start_signin(req, "signin", r);
     });
  on("GET", "/o365/signin-callback",
     [](office365_flows& f, request& req, const path_params&, responder_ptr r) {
       r = pages::for_browser(req, std::move(r));
       f.signin_callback(req, r);
     });
  on("GET", "/o365/consent-callback",
     [](office365_flows& f, request& req, const path_params&, responder_ptr r) {
       r = pages::for_browser(req, std::move(r));
       f.consent_callback(req, r);
     });
  // The link in an invitation e-mail: signs the person in, then answers
  // with their session and where to accept.
  on("GET", "/invite/{token}",
     [](office365_flows& f, request& req, const path_params& pp,
        responder_ptr r) {
       f.open_invite(req, pp[0], pages::for_browser(req, std::move(r)));
     });
  on("POST", "/o365/associate",
     [](office365_flows& f, request& req, const path_params&, responder_ptr r) {
       f.associate(req, r);
     });
  on("GET", "/api/v1/orgs/{org}/office365/users",
     [](office365_flows& f, request& req, const path_params& pp,
        responder_ptr r) { f.office365_users(req, pp, r); });
  on("POST", "/api/v1/orgs/{org}/invites",
     [](office365_flows& f, request& req, const path_params& pp,
        responder_ptr r) { f.create_invites(req, pp, r); });
  on("GET", "/api/v1/orgs/{org}/invites",
     [](office365_flows& f, request& req, const path_params& pp,
        responder_ptr r) { f.list_org_invites(req, pp, r); });
  on("POST", "/api/v1/invites/{token}/accept",
     [](office365_flows& f, request& req, const path_params& pp,
        responder_ptr r) { f.accept(req, pp, r); });
  on("POST", "/api/v1/join-requests",
     [](office365_flows& f, request& req, const path_params&, responder_ptr r) {
       f.create_join_request(req, r);
     });
  on("GET", "/api/v1/invites/mine",
     [](office365_flows& f, request& req, const path_params&, responder_ptr r) {
       f.my_invites(req, r);
     });
  on("GET", "/api/v1/join-requests/mine",
     [](office365_flows& f, request& req, const path_params&, responder_ptr r) {
       f.my_join_request(req, r);
     });
  on("GET", "/api/v1/orgs/{org}/join-requests",
     [](office365_flows& f, request& req, const path_params& pp,
        responder_ptr r) { f.list_org_join_requests(req, pp, r); });
  // The link of the approvers' e-mail: a page, and its form's POST.
  // The pages signs the approver in (pages_flows.cpp).
  auto pages = flows->pages();
  on("GET", "/join-requests/{org}/{id}",
     [pages](office365_flows&, request& req, const path_params& pp,
             responder_ptr r) { approval_page(*pages, req, pp, r); });
  on("POST", "/join-requests/{org}/{id}",
     [pages](office365_flows&, request& req, const path_params& pp,
             responder_ptr r) { approval_post(*pages, req, pp, r); });
  on("POST", "/api/v1/orgs/{org}/join-requests/{id}/approve",
     [](office365_flows& f, request& req, const path_params& pp,
        responder_ptr r) { f.approve(req, pp, r); });
  on("PUT", "/api/v1/orgs/{org}/users/{user}/calendar-sync",
     [](office365_flows& f, request& req, const path_params& pp,
        responder_ptr r) { f.set_sync(req, pp, r); });
  on("POST", "/webhooks/graph",
     [](office365_flows& f, request& req, const path_params&, responder_ptr r) {
       f.webhook(req, r, false);
     });
  on("POST", "/webhooks/graph/lifecycle",
     [](office365_flows& f, request& req, const path_params&, responder_ptr r) {
       f.webhook(req, r, true);
     });
  on("GET", "/admin/v1/orgs/{org}/check",
     [](office365_flows& f, request& req, const path_params& pp,
        responder_ptr r) { f.check(req, pp, r); });
  on("GET", "/admin/v1/orgs/{org}/conflicts",
     [](office365_flows& f, request& req, const path_params& pp,
        responder_ptr r) { f.conflicts(req, pp, r); });
  on("POST", "/admin/v1/users/{id}/sync/approve-deletes",
     [](office365_flows& f, request& req, const path_params& pp,
        responder_ptr r) { f.approve_deletes(req, pp, r); });
  on("GET", "/admin/v1/users/{id}/sync",
     [](office365_flows& f, request& req, const path_params& pp,
        responder_ptr r) { f.user_sync(req, pp, r); });
  on("GET", "/api/v1/orgs/{org}/audit",
     [](office365_flows& f, request& req, const path_params& pp,
        responder_ptr r) { f.audit(req, pp, r); });
}

} // namespace crmsync::http
