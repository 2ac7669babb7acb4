#include "api/pages_flows.hpp"

#include "api/api_impl.hpp"
#include "api/pages.hpp"
#include "common/clock.hpp"
#include "common/log.hpp"
#include "graph/client.hpp"
#include "storage/codec.hpp"
#include "storage/keys.hpp"

namespace crmsync::http {

namespace {

namespace keys = storage::keys;
namespace codec = storage::codec;
using pages::escape;
using pages::page;
using storage::column;

std::string para(const std::string& html) {
  return "<p>" + html + "</p>";
}

/// The terms a person accepts before the CRM makes or joins an account for
/// them (seed: "Aceite os termos e condições").
const std::string terms_html
    = "<h2>Terms and conditions</h2>"
      "<p>By continuing you agree that crmsync keeps your name, e-mail "
      "address and, once you turn calendar sync on, the events of the "
      "CRM calendar in your Office 365 mailbox, and that the administrators "
      "of the CRM organization manage your CRM account.</p>";

/// A form of the pages: a POST to `action` (a path under the public URL)
/// with the session's CSRF token, `fields` and one submit button.
std::string post_form(const std::string& action, const pages::session& s,
                      const std::string& fields, const std::string& button) {
  return "<form method=\"post\" action=\"" + escape(action)
         + "\"><input type=\"hidden\" name=\"csrf\" value=\"" + escape(s.csrf)
         + "\">" + fields + "<p><button type=\"submit\">" + escape(button)
         + "</button></p></form>";
}

/// The e-mail and password fields of "Associate my account".
const std::string credential_fields
    = "<p><label>CRM e-mail <input type=\"email\" name=\"email\" required "
      "autocomplete=\"username\"></label></p>"
      "<p><label>CRM password <input type=\"password\" name=\"password\" "
      "required autocomplete=\"current-password\"></label></p>";

/// A page's answer to a program or browser: the status, a page.
void reply_page(const responder_ptr& r, int status, const std::string& title,
                const std::string& body) {
  r->reply(page(status, title, body));
}

bool refused_for(const caf::error& err, const char* code) {
  return detail::is_code(err, crm_errc::forbidden, code);
}

} // namespace

class page_flows : public std::enable_shared_from_this<page_flows> {
public:
  page_flows(api::impl& s, std::shared_ptr<flow_hooks> f)
      : s_(s), f_(std::move(f)) {}

  // -- addresses
  // ---------------------------------------------------------------

  /// A path of this node as the browser reaches it (the public URL's path
  /// first): form actions and links.
  std::string local(const std::string& path) const {
    return pages::public_path(s_.o365.public_url) + path;
  }

  response see_other(const std::string& path) const {
    auto res
        = page(303, "Continue",
               "<p><a href=\"" + escape(local(path)) + "\">Continue</a></p>");
    res.headers.emplace_back("Location", s_.o365.public_url + path);
    return res;
  }

  int64_t now() const {
    return system_now_ms();
  }

  /// The identity platform's origin ("" when it has none this node can
  /// name): the install's forms lead there (admin consent).
  std::string login_origin() const {
    if (s_.o365.graph == nullptr)
      return {};
    auto url = s_.o365.graph->authorize_url("", "", "");
    auto scheme = url.find("://");
    if (scheme == std::string::npos)
      return {};
    auto end = url.find_first_of("/?#", scheme + 3);
    auto origin = url.substr(0, end);
    // A policy source: nothing but an origin's characters.
    if (origin.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQR"
                                 "STUVWXYZ0123456789.-:/[]")
        != std::string::npos)
      return {};
    return origin;
  }

  // -- sessions
  // ----------------------------------------------------------------

  /// Stores a session for `s` (a fresh cookie, CSRF token and expiry),
  /// then sends the browser to `next` with the cookie. A CRM user's session
  /// is their organization's row: its tenant actor stores it on the
  /// shard's primary, which replicates it, so a failover keeps the browser
  /// signed in (t15-sessions). Anyone else's stays on this node, as the
  /// sign-in states do.
  void start_session(pages::session s, const std::string& next,
                     const responder_ptr& r) {
    using std::chrono::duration_cast;
    using std::chrono::seconds;
    auto cookie = crypto::random_token(32);
    s.csrf = crypto::random_token(24);
    s.expires_ms = now() + s_.o365.session_lifetime.count();
    auto key = keys::page_session(crypto::sha256_hex(cookie));
    auto set = pages::set_cookie(
        pages::session_cookie_name(s_.o365.public_url), s_.o365.public_url,
        cookie, duration_cast<seconds>(s_.o365.session_lifetime).count());
    auto self = shared_from_this();
    auto answer = [self, next, r, set] {
      auto res = self->see_other(next);
      res.headers.emplace_back("Set-Cookie", set);
      r->reply(std::move(res));
    };
    if (s.member())
      return s_.ask<bool>(
          api::impl::tenant_key(s.org),
          open_page_session{s.user, std::move(key), pages::encode(s)}, r,
          [answer](bool) { answer(); });
    storage::write_batch b;
    b.put(column::sessions, key, pages::encode(s));
    if (auto err = s_.db.write(b)) {
      log::error("pages: cannot store a session: " + s_.sys.render(err));
      return fail(r, 503, "storage_failure", "could not start a session");
    }
    answer();
  }

  /// Answers 400 when the request carries the session cookie twice (a
  /// planted one beside the real one: which one the browser sends first
  /// is not for this site to guess).
  bool planted_cookie(const request& req, const responder_ptr& r) {
    if (!pages::duplicate_session_cookie(req, s_.o365.public_url))
      return false;
    fail(r, 400, "duplicate_session_cookie",
         "this browser sent the session cookie more than once; clear this "
         "site's cookies and sign in again");
    return true;
  }

  /// Runs `run` once the request's page session and what the pages look
  /// up about its person were read from the other nodes without a thread
  /// waiting (fetched_scope); at once on a single node or without a
  /// cookie. t13-async.
  void prefetch(const request& req, const responder_ptr& r,
                std::function<void()> run) {
    auto cookie = pages::session_cookie_of(req, s_.o365.public_url);
    if (cookie.empty() || !s_.cluster.read_async)
      return run();
    auto key = keys::page_session(crypto::sha256_hex(cookie));
    auto self = shared_from_this();
    s_.read_global_async(
        column::sessions, {key}, false,
        [self, key, r, run](std::vector<cluster_hooks::read_answer> a) {
          auto reads = std::make_shared<fetched_reads>();
          if (!a.empty())
            reads->emplace(std::make_pair(column::sessions, key), a[0]);
          auto go = [reads, run] {
            fetched_scope scope{*reads};
            run();
          };
          pages::session s;
          if (a.empty() || a[0].outcome != cluster_hooks::read_outcome::found
              || !pages::decode(a[0].value, s))
            return go();
          self->f_->about(s.who, r, go);
        });
  }

  /// The live session of the request's cookie.
  bool read_session(const request& req, pages::session& out) {
    auto cookie = pages::session_cookie_of(req, s_.o365.public_url);
    if (cookie.empty())
      return false;
    std::string v;
    return s_.read_global(column::sessions,
                          keys::page_session(crypto::sha256_hex(cookie)), v)
               == cluster_hooks::read_outcome::found
           && pages::decode(v, out) && out.expires_ms > now();
  }

  /// A POST of a page's form: the session and the form, whose CSRF token
  /// must be the session's; answers 401 or 403 itself.
  bool read_form(const request& req, const responder_ptr& r, pages::session& s,
                 query_params& form) {
    if (!read_session(req, s)) {
      reply_page(r, 401, "Please sign in again",
                 para("Your session has ended or this browser has none. ")
                     + para("<a href=\"" + escape(local("/o365/signin"))
                            + "\">Sign in with Office 365</a>")
                     + para("(HTTP 401, <code>invalid_session</code>)"));
      return false;
    }
    auto ct = ascii_lower(req.header("content-type"));
    if (ct.rfind("application/x-www-form-urlencoded", 0) != 0
        || !parse_query(req.body, form) || !pages::csrf_ok(s, form)) {
      reply_page(r, 403, "This form cannot be used",
                 para("The form did not come from this site's page, or the "
                      "page is out of date. Open the page again and "
                      "retry.")
                     + para("(HTTP 403, <code>invalid_csrf_token</code>)"));
      return false;
    }
    return true;
  }

  /// The e-mail and password of "Associate my account"; answers 400.
  static bool read_credentials(const query_params& form, const responder_ptr& r,
                               json::credentials& c) {
    auto email = find_param(form, "email");
    auto password = find_param(form, "password");
    if (email == nullptr || password == nullptr || password->empty()
        || !json::normalize_email(*email, c.email)) {
      fail(r, 400, "invalid_field",
           "enter the e-mail address and password of your CRM account",
           "email");
      return false;
    }
    c.password = *password;
    return true;
  }

  // -- after an Office 365 sign-in ------------------------------------------

  /// Where a browser goes once signed in for `rec`.
  static std::string next_page(const signin_state_record& rec) {
    if (rec.purpose == "install")
      return "/o365/install/terms";
    if (rec.purpose == "page"
        && rec.invite_token.rfind("/join-requests/", 0) == 0)
      return rec.invite_token;
    if (rec.purpose == "page" && rec.invite_token == "/o365/join-request")
      return rec.invite_token;
    if (rec.purpose == "signin" && !rec.invite_token.empty())
      return "/invite/" + rec.invite_token;
    return "/o365/me";
  }

  void signed_in(const o365_identity& who, const signin_state_record& rec,
                 const responder_ptr& r) {
    pages::session s;
    s.who = who;
    auto next = next_page(rec);
    tenant_id org;
    user_id user;
    std::string action;
    // A CRM user's session acts as that user: a token is minted for it
    // (only its hash is kept, in the session and the user's page-session
    // tokens, bounded apart from programs' and revoked at sign-out). The
    // install links the account itself, after the terms.
    if (rec.purpose == "install" || !f_->member(who, org, user, action))
      return start_session(s, next, r);
    auto self = shared_from_this();
    f_->link(
        who, org, user, action, r,
        [self, s, org, next, r](user_record& u,
                                const std::string& token) mutable {
          s.org = org;
          s.user = u.id;
          s.token_hash = crypto::sha256_hex(token);
          self->start_session(s, next, r);
        },
        true);
  }

  /// The session of a GET page, or a sign-in that comes back to `path`.
  bool session_or_signin(const request& req, const responder_ptr& r,
                         const std::string& path, pages::session& s) {
    if (read_session(req, s))
      return true;
    f_->start_signin(req, "page", r, path);
    return false;
  }

  // -- install
  // -------------------------------------------------------------------

  void install_terms(const request& req, const responder_ptr& r) {
    // The forms' answers redirect to admin consent.
    auto origin = login_origin();
    pages::session s;
    if (!read_session(req, s))
      return r->reply(see_other("/o365/install"));
    if (!s.who.is_admin)
      return fail(r, 403, "admin_required",
                  "only an Office 365 administrator can install the app for "
                  "an organization");
    r->reply(page(
        200, "Install crmsync",
        para("You are signed in with Office 365 as <b>" + escape(s.who.name)
             + "</b> (" + escape(s.who.email) + ").")
            + terms_html
            + post_form(local("/o365/install/accept"), s, "",
                        "Accept and continue")
            + "<h2>Associate my account</h2>"
            + para("Your organization already uses the CRM? Enter your CRM "
                   "account; the install links your Office 365 organization "
                   "to it.")
            + post_form(local("/o365/install/associate"), s, credential_fields,
                        "Associate my account"),
        origin));
  }

  void install_accept(const request& req, const responder_ptr& r) {
    pages::session s;
    query_params form;
    if (!read_form(req, r, s, form))
      return;
    f_->install(req, s.who, r);
  }

  void install_associate(const request& req, const responder_ptr& r) {
    pages::session s;
    query_params form;
    json::credentials c;
    if (!read_form(req, r, s, form) || !read_credentials(form, r, c))
      return;
    if (!s.who.is_admin)
      return fail(r, 403, "admin_required",
                  "only an Office 365 administrator can install the app for "
                  "an organization");
    f_->associate_then_install(req, s.who, c, r);
  }

  // -- invitations ------------------------------------------------------------

  void invite(const request& req, const std::string& token,
              const responder_ptr& r) {
    pages::session s;
    query_params q;
    parse_query(req.query, q);
    auto again = find_param(q, "signin");
    if ((again != nullptr && *again == "again") || !read_session(req, s))
      return f_->start_signin(req, "signin", r, token);
    std::string where, v;
    auto hash = crypto::sha256_hex(token);
    auto found = s_.read_global(column::lookup, keys::invite_token_lookup(hash),
                                where);
    invite_record inv;
    if (found == cluster_hooks::read_outcome::found && where.size() == 16)
      found = s_.read_global(column::invites, where, v);
    if (found == cluster_hooks::read_outcome::unavailable)
      return fail(r, 503, "node_unavailable",
                  "a node of the cluster that may hold this is unreachable; "
                  "retry");
    if (found != cluster_hooks::read_outcome::found || !codec::decode(v, inv))
      return fail(r, 404, "invite_not_found", "no invitation has this link");
    auto org = tenant_id{keys::get_be64(where, 0)};
    auto self = shared_from_this();
    caller service;
    service.service_admin = true;
    s_.ask<org_record>(api::impl::tenant_key(org), get_org{service}, r,
                       [self, s, inv, token, r](org_record& o) {
                         self->invite_for(s, o, inv, token, r);
                       });
  }

  void invite_for(const pages::session& s, const org_record& o,
                  const invite_record& inv, const std::string& token,
                  const responder_ptr& r) {
    auto path = "/invite/" + token;
    auto who
        = para("You are signed in with Office 365 as <b>" + escape(s.who.name)
               + "</b> (" + escape(s.who.email) + ").");
    if (o.o365_tenant != s.who.tenant || inv.o365_user != s.who.user)
      return reply_page(
          r, 403, "This invitation is for someone else",
          who
              + para("This invitation was sent to another Office 365 "
                     "user. If it is yours, sign in as the person it was "
                     "sent to.")
              + para("<a href=\"" + escape(local(path + "?signin=again"))
                     + "\">Sign in as another person</a>")
              + para("(HTTP 403, <code>not_invitee</code>)"));
    switch (inv.status) {
      case invite_status::accepted:
      case invite_status::associated:
        return reply_page(
            r, 410, "This invitation was already used",
            who
                + para("You used this invitation already. Sign in with "
                       "Office 365 to get to your account.")
                + para("<a href=\"" + escape(local("/o365/signin"))
                       + "\">Sign in</a>")
                + para("(HTTP 410, <code>invite_used</code>)"));
      case invite_status::superseded:
        return reply_page(
            r, 410, "A newer invitation replaced this one",
            who
                + para("You were invited again; use the link in the newest "
                       "invitation e-mail.")
                + para("(HTTP 410, <code>invite_superseded</code>)"));
      default:
        break;
    }
    if (now() >= inv.expires_ms)
      return reply_page(r, 410, "This invitation has expired",
                        who
                            + para("It expired on "
                                   + escape(format_rfc3339(inv.expires_ms))
                                   + ". Ask an administrator of "
                                   + escape(o.name) + " to invite you again.")
                            + para("(HTTP 410, <code>invite_expired</code>)"));
    reply_page(
        r, 200, "You are invited to " + o.name,
        who
            + para("You are invited to join <b>" + escape(o.name)
                   + "</b>'s CRM.")
            + terms_html
            + post_form(local(path + "/join"), s, "",
                        "Accept the terms and join")
            + "<h2>Associate my account</h2>"
            + para("Already a CRM user elsewhere? Enter that account to use "
                   "it with your Office 365 account instead of joining.")
            + post_form(local(path + "/associate"), s, credential_fields,
                        "Associate my account"));
  }

  void invite_join(const request& req, const std::string& token,
                   const responder_ptr& r) {
    pages::session s;
    query_params form;
    if (!read_form(req, r, s, form))
      return;
    json::accept_body body;
    body.accept_terms = true;
    f_->accept_as(req, s.who, token, body, r);
  }

  void invite_associate(const request& req, const std::string& token,
                        const responder_ptr& r) {
    pages::session s;
    query_params form;
    json::accept_body body;
    if (!read_form(req, r, s, form) || !read_credentials(form, r, body.account))
      return;
    body.accept_terms = true;
    body.associate = true;
    f_->accept_as(req, s.who, token, body, r);
  }

  // -- the signed-in person and join requests -------------------------------

  void me(const request& req, const responder_ptr& r) {
    pages::session s;
    if (!read_session(req, s))
      return f_->start_signin(req, "signin", r, {});
    tenant_id org;
    user_id user;
    std::string action;
    auto hello
        = para("You signed in with Office 365 as <b>" + escape(s.who.name)
               + "</b> (" + escape(s.who.email) + ").");
    caller service;
    service.service_admin = true;
    if (f_->member(s.who, org, user, action))
      return s_.ask<org_record>(
          api::impl::tenant_key(org), get_org{service}, r,
          [self = shared_from_this(), s, r, hello](org_record& o) {
            reply_page(r, 200, "You are signed in",
                       hello
                           + para("You are a user of <b>" + escape(o.name)
                                  + "</b>'s CRM.")
                           + post_form(self->local("/o365/signout"), s, "",
                                       "Sign out"));
          });
    if (!f_->org_of_tenant(s.who.tenant, org))
      return reply_page(
          r, 200, "Not a member yet",
          hello
              + para("You are not a user of the CRM yet, and nobody "
                     "installed the app for your Office 365 organization: "
                     "an administrator can install it at <a href=\""
                     + escape(local("/o365/install"))
                     + "\">/o365/install</a>."));
    auto self = shared_from_this();
    s_.ask<org_record>(api::impl::tenant_key(org), get_org{service}, r,
                       [self, s, org, hello, r](org_record& o) {
                         // Someone who opens the app instead of the invitation
                         // e-mail can accept here too.
                         self->s_.ask<invite_list>(
                             api::impl::tenant_key(org), list_my_invites{s.who},
                             [self, s, org, o, hello, r](invite_list& mine) {
                               self->not_a_member(s, org, o, hello, mine.items,
                                                  r);
                             },
                             [self, s, org, o, hello, r](const caf::error&) {
                               self->not_a_member(s, org, o, hello, {}, r);
                             });
                       });
  }

  /// The page of a signed-in person of an installed tenant who is no
  /// user: their open invitation, and their join request or the form to
  /// ask.
  void not_a_member(const pages::session& s, tenant_id org, const org_record& o,
                    const std::string& hello,
                    const std::vector<invite_record>& invites,
                    const responder_ptr& r) {
    std::string invited;
    if (!invites.empty())
      invited = "<h2>Your invitation</h2>"
                + para("You are invited to join <b>" + escape(o.name)
                       + "</b>'s CRM.")
                + terms_html
                + post_form(local("/o365/invites/" + to_hex16(invites.back().id)
                                  + "/join"),
                            s, "", "Accept the terms and join");
    auto self = shared_from_this();
    s_.ask<join_request_record>(
        api::impl::tenant_key(org), get_join_request{s.who},
        [self, o, hello, invited, r](join_request_record& jr) {
          reply_page(r, 200, "Not a member yet",
                     hello + invited + self->join_status_html(o, jr));
        },
        [self, s, o, hello, invited, r](const caf::error&) {
          reply_page(
              r, 200, "Not a member yet",
              hello
                  + para("You are not a user of the CRM yet. Your Office 365 "
                         "organization uses it as <b>"
                         + escape(o.name) + "</b>: "
                         + (invited.empty() ? "open your invitation e-mail, "
                                              "or ask to join."
                                            : "accept your invitation, or "
                                              "ask to join."))
                  + invited + "<h2>Ask to join</h2>"
                  + post_form(self->local("/o365/join-request"), s, "",
                              "Request to join"));
        });
  }

  /// POST /o365/invites/{id}/join: the invitation shown on /o365/me.
  void invite_join_by_id(const request& req, const std::string& id,
                         const responder_ptr& r) {
    pages::session s;
    query_params form;
    if (!read_form(req, r, s, form))
      return;
    auto invite = parse_hex16(id);
    if (!invite)
      return fail(r, 404, "invite_not_found", "no invitation has this link");
    json::accept_body body;
    body.accept_terms = true;
    f_->accept_as(req, s.who, to_hex16(*invite), body, r);
  }

  std::string join_status_html(const org_record& o,
                               const join_request_record& jr) const {
    std::string out
        = para("Your request to join <b>" + escape(o.name) + "</b> is <b>"
               + escape(to_string(jr.status)) + "</b> (asked "
               + escape(format_rfc3339(jr.created_ms)) + ").");
    if (jr.status == join_status::pending)
      out += para(o.plan == edition::paid
                      ? "The users who manage users were e-mailed; you get an "
                        "e-mail once you are in."
                      : "The users who manage users were e-mailed. Approving "
                        "join requests is available in paid editions: your "
                        "organization uses the free edition.");
    else if (jr.status == join_status::approved)
      out += para("You are a user of the CRM now: <a href=\""
                  + escape(local("/o365/signin")) + "\">sign in</a>.");
    return out;
  }

  void request_join_post(const request& req, const responder_ptr& r) {
    pages::session s;
    query_params form;
    if (!read_form(req, r, s, form))
      return;
    tenant_id org;
    user_id user;
    std::string action;
    if (f_->member(s.who, org, user, action))
      return fail(r, 409, "already_member",
                  "you are already a CRM user; sign in again");
    if (!f_->org_of_tenant(s.who.tenant, org))
      return fail(r, 404, "organization_not_found",
                  "nobody has installed the app for your Office 365 "
                  "organization yet");
    auto self = shared_from_this();
    s_.ask<join_request_record>(
        api::impl::tenant_key(org), request_join{s.who, s_.o365.public_url}, r,
        [self, r](join_request_record&) {
          r->reply(self->see_other("/o365/join-request"));
        });
  }

  void join_status(const request& req, const responder_ptr& r) {
    pages::session s;
    if (!session_or_signin(req, r, "/o365/join-request", s))
      return;
    tenant_id org;
    if (!f_->org_of_tenant(s.who.tenant, org))
      return fail(r, 404, "not_found", "join request not found");
    caller service;
    service.service_admin = true;
    auto self = shared_from_this();
    s_.ask<org_record>(
        api::impl::tenant_key(org), get_org{service}, r,
        [self, s, org, r](org_record& o) {
          self->s_.ask<join_request_record>(
              api::impl::tenant_key(org), get_join_request{s.who}, r,
              [self, o, r](join_request_record& jr) {
                reply_page(r, 200, "Your request to join " + o.name,
                           self->join_status_html(o, jr));
              });
        });
  }

  /// POST /o365/signout: the session ends here and in the browser.
  void sign_out(const request& req, const responder_ptr& r) {
    pages::session s;
    query_params form;
    if (!read_form(req, r, s, form))
      return;
    // Taken (read and deleted) on whichever node of the cluster answers for
    // it (a CRM user's: its shard's primary, which also deletes it below,
    // acknowledged by the followers before the answer).
    auto key = keys::page_session(
        crypto::sha256_hex(pages::session_cookie_of(req, s_.o365.public_url)));
    std::string gone;
    if (s_.read_global(column::sessions, key, gone, true)
        == cluster_hooks::read_outcome::unavailable)
      return fail(r, 503, "node_unavailable",
                  "a node of the cluster that may hold this is unreachable; "
                  "retry");
    auto res
        = page(200, "Signed out",
               para("You signed out. <a href=\"" + escape(local("/o365/signin"))
                    + "\">Sign in again</a>"));
    res.headers.emplace_back(
        "Set-Cookie",
        pages::set_cookie(pages::session_cookie_name(s_.o365.public_url),
                          s_.o365.public_url, "", 0));
    if (!s.member())
      return r->reply(std::move(res));
    // The session's token ends with it.
    s_.ask<bool>(api::impl::tenant_key(s.org),
                 revoke_page_token{s.user, s.token_hash, key}, r,
                 [r, res](bool) mutable { r->reply(std::move(res)); });
  }

  // -- the approvers' page ----------------------------------------------------

  /// The approver's session for organization `org`, or a sign-in; answers
  /// itself when the person signed in is no user of `org`.
  bool approver(const request& req, const responder_ptr& r, tenant_id org,
                const std::string& path, pages::session& s) {
    query_params q;
    parse_query(req.query, q);
    auto again = find_param(q, "signin");
    if (again != nullptr && *again == "again") {
      f_->start_signin(req, "page", r, path);
      return false;
    }
    if (!session_or_signin(req, r, path, s))
      return false;
    if (s.member() && s.org == org)
      return true;
    tenant_id member_org;
    user_id user;
    std::string action;
    // Signed in before they were a user (the install): once more, as the
    // user they are now.
    if (!s.member() && f_->member(s.who, member_org, user, action)
        && member_org == org) {
      f_->start_signin(req, "page", r, path);
      return false;
    }
    reply_page(r, 403, "Not a user of this organization",
               para("You are signed in with Office 365 as <b>"
                    + escape(s.who.name) + "</b> (" + escape(s.who.email)
                    + "), who is not a user of the organization this join "
                      "request is for.")
                   + para("<a href=\"" + escape(local(path + "?signin=again"))
                          + "\">Sign in as another person</a>")
                   + para("(HTTP 403, <code>not_a_member</code>)"));
    return false;
  }

  static caller caller_of(const pages::session& s) {
    caller c;
    c.user = s.user;
    c.token_hash = s.token_hash;
    return c;
  }

  void approval(const request& req, const path_params& pp,
                const responder_ptr& r) {
    auto org = tenant_id::parse(pp[0]);
    auto id = parse_hex16(pp[1]);
    if (!org || !id)
      return reply_page(r, 404, "Join request not found",
                        para("This is not a join request link of this "
                             "service; open the link from the e-mail as it "
                             "is."));
    auto path = "/join-requests/" + org->str() + "/" + to_hex16(*id);
    pages::session s;
    if (!approver(req, r, *org, path, s))
      return;
    auto self = shared_from_this();
    auto c = caller_of(s);
    s_.ask<org_record>(
        api::impl::tenant_key(*org), get_org{c}, r,
        [self, s, c, org = *org, id = *id, path, r](org_record& o) {
          self->s_.ask<join_request_list>(
              api::impl::tenant_key(org), list_join_requests{c},
              [self, s, o, id, path, r](join_request_list& all) {
                self->approval_for(s, o, all, id, path, r);
              },
              [s, r](const caf::error& err) {
                if (!refused_for(err, "manage_users_required"))
                  return fail(r, err);
                reply_page(
                    r, 403, "Only user managers approve",
                    para("You are signed in as <b>" + escape(s.who.name)
                         + "</b>, who does not have the Manage Users "
                           "permission. Ask an administrator of the CRM to "
                           "approve the request, or to give you that "
                           "permission.")
                        + para(
                            "(HTTP 403, <code>manage_users_required</code>)"));
              });
        });
  }

  void approval_for(const pages::session& s, const org_record& o,
                    const join_request_list& all, uint64_t id,
                    const std::string& path, const responder_ptr& r) const {
    auto it = std::find_if(
        all.items.begin(), all.items.end(),
        [id](const join_request_record& x) { return x.id == id; });
    if (it == all.items.end())
      return reply_page(
          r, 404, "Join request not found",
          para("No join request of " + escape(o.name) + " has this link."));
    auto& jr = *it;
    std::string body
        = para("<b>" + escape(jr.name) + "</b> (" + escape(jr.email)
               + ") asks to join <b>" + escape(o.name) + "</b>'s CRM (asked "
               + escape(format_rfc3339(jr.created_ms)) + ").")
          + para("Status: <b>" + escape(to_string(jr.status)) + "</b>");
    if (jr.status == join_status::approved)
      body += para("This request was approved already.");
    else if (o.plan != edition::paid)
      body += para("Approving join requests is available in paid editions "
                   "only; this organization uses the free edition. An "
                   "administrator can change the edition, then approve "
                   "here.");
    else
      body += post_form(local(path), s, "", "Approve & Add");
    reply_page(r, 200, "Join request", body);
  }

  void approval_post(const request& req, const path_params& pp,
                     const responder_ptr& r) {
    // A form with an API token (and no session) is the page of before.
    if (pages::session_cookie_of(req, s_.o365.public_url).empty())
      return f_->approve_with_token_form(req, pp, r);
    pages::session s;
    query_params form;
    if (!read_form(req, r, s, form))
      return;
    auto org = tenant_id::parse(pp[0]);
    auto id = parse_hex16(pp[1]);
    if (!org || !id)
      return fail(r, 404, "not_found", "join request not found");
    if (!s.member() || s.org != *org)
      return fail(r, 403, "not_a_member",
                  "you are not signed in as a user of this organization");
    f_->approve_as(caller_of(s), *org, *id, r, [r](join_approved& out) {
      reply_page(r, 200, "Approved",
                 para("<b>" + escape(out.member.name) + "</b> ("
                      + escape(out.member.email)
                      + ") is a user of the CRM now. They were told by "
                        "e-mail, and sign in with Office 365 to start."));
    });
  }

private:
  api::impl& s_;
  std::shared_ptr<flow_hooks> f_;
};

std::shared_ptr<page_flows> install_page_routes(api::impl& s,
                                                std::shared_ptr<flow_hooks> f) {
  auto pf = std::make_shared<page_flows>(s, f);
  auto on = [&](const char* method, const char* path, auto fn) {
    s.routes.add(
        method, path,
        [pf, f, fn](request& req, const path_params& pp, responder_ptr r) {
          r = pages::as_pages(std::move(r));
          if (pf->planted_cookie(req, r))
            return;
          auto held = std::make_shared<request>(std::move(req));
          auto args = std::make_shared<path_params>(pp);
          pf->prefetch(*held, r, [pf, f, fn, held, args, r] {
            f->guarded(r, [&] { fn(*pf, *held, *args, r); });
          });
        });
  };
  on("GET", "/o365/install/terms",
     [](page_flows& p, request& req, const path_params&,
        const responder_ptr& r) { p.install_terms(req, r); });
  on("POST", "/o365/install/accept",
     [](page_flows& p, request& req, const path_params&,
        const responder_ptr& r) { p.install_accept(req, r); });
  on("POST", "/o365/install/associate",
     [](page_flows& p, request& req, const path_params&,
        const responder_ptr& r) { p.install_associate(req, r); });
  on("POST", "/invite/{token}/join",
     [](page_flows& p, request& req, const path_params& pp,
        const responder_ptr& r) { p.invite_join(req, pp[0], r); });
  on("POST", "/invite/{token}/associate",
     [](page_flows& p, request& req, const path_params& pp,
        const responder_ptr& r) { p.invite_associate(req, pp[0], r); });
  on("GET", "/o365/me",
     [](page_flows& p, request& req, const path_params&,
        const responder_ptr& r) { p.me(req, r); });
  on("GET", "/o365/join-request",
     [](page_flows& p, request& req, const path_params&,
        const responder_ptr& r) { p.join_status(req, r); });
  on("POST", "/o365/join-request",
     [](page_flows& p, request& req, const path_params&,
        const responder_ptr& r) { p.request_join_post(req, r); });
  on("POST", "/o365/invites/{id}/join",
     [](page_flows& p, request& req, const path_params& pp,
        const responder_ptr& r) { p.invite_join_by_id(req, pp[0], r); });
  on("POST", "/o365/signout",
     [](page_flows& p, request& req, const path_params&,
        const responder_ptr& r) { p.sign_out(req, r); });
  return pf;
}

void page_signed_in(page_flows& p, const o365_identity& who,
                    const signin_state_record& rec, const responder_ptr& r) {
  p.signed_in(who, rec, pages::as_pages(r));
}

void invite_page(page_flows& p, const request& req, const std::string& token,
                 const responder_ptr& r) {
  auto pr = pages::as_pages(r);
  if (!p.planted_cookie(req, pr))
    p.invite(req, token, pr);
}

void approval_page(page_flows& p, const request& req, const path_params& pp,
                   const responder_ptr& r) {
  auto pr = pages::as_pages(r);
  if (!p.planted_cookie(req, pr))
    p.approval(req, pp, pr);
}

void approval_post(page_flows& p, const request& req, const path_params& pp,
                   const responder_ptr& r) {
  p.approval_post(req, pp, pages::as_pages(r));
}

} // namespace crmsync::http
