// graph-emulator: the identity platform (token endpoint, sign-in with its
// pick-a-person page, admin consent, keys, OpenID configuration) and the
// tenant lookups and bearer-token check every Graph route uses.

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

/// Entra ID's role template id of the Global Administrator role, carried
/// in the `wids` claim of an administrator's tokens.
constexpr const char* global_admin_role
    = "62e90394-69f5-4237-9190-012177145e10";

constexpr int64_t code_lifetime_ms = 10 * 60 * 1000;

/// Appends query parameters to a redirect URI that may already have some.
std::string
with_params(const std::string& uri,
            const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out = uri;
  char sep = uri.find('?') == std::string::npos ? '?' : '&';
  for (auto& [k, v] : params) {
    out += sep;
    out += http::percent_encode(k) + "=" + http::percent_encode(v);
    sep = '&';
  }
  return out;
}

response redirect(const std::string& location) {
  response r;
  r.status = 302;
  r.content_type = "text/html; charset=utf-8";
  r.headers.emplace_back("Location", location);
  r.body = "<html><body>Redirecting.</body></html>";
  return r;
}

} // namespace

tenant* service::impl::find_tenant(std::string_view id_or_domain) {
  auto i = dir.tenants.find(std::string{id_or_domain});
  if (i != dir.tenants.end())
    return &i->second;
  auto d = dir.tenant_by_domain.find(ascii_lower(id_or_domain));
  if (d == dir.tenant_by_domain.end())
    return nullptr;
  i = dir.tenants.find(d->second);
  return i != dir.tenants.end() ? &i->second : nullptr;
}

/// A user by userPrincipalName (case-insensitive), in any tenant.
user* service::impl::find_user_by_upn(std::string_view upn) {
  auto i = dir.user_by_upn.find(ascii_lower(upn));
  if (i == dir.user_by_upn.end())
    return nullptr;
  auto u = dir.users.find(i->second);
  return u != dir.users.end() ? &u->second : nullptr;
}

/// The person signing in: `login_hint` is their UPN; the tenant in the
/// path (id or domain) must be theirs unless it is common/organizations.
user* service::impl::find_sign_in_user(const std::string& tenant_key,
                                       const std::string& login_hint) {
  user* found = find_user_by_upn(login_hint);
  if (found == nullptr)
    return nullptr;
  if (tenant_key == "common" || tenant_key == "organizations")
    return found;
  auto t = find_tenant(tenant_key);
  return t != nullptr && t->id == found->tenant_id ? found : nullptr;
}

/// What a browser gets from the sign-in and admin consent endpoints when
/// no login_hint names the person: a page to pick a person of the tenant
/// (administrators only for `admins_only`), whose buttons come back to
/// the same endpoint with every parameter and the chosen login_hint.
/// Programs name the person and never see it. Call with mtx held.
response service::impl::pick_person_page(const std::string& tenant_key,
                                         const http::query_params& q,
                                         const std::string& path,
                                         bool admins_only) {
  bool any_tenant = tenant_key == "common" || tenant_key == "organizations";
  auto t = any_tenant ? nullptr : find_tenant(tenant_key);
  std::vector<const user*> people;
  for (auto& [id, u] : dir.users)
    if ((any_tenant || (t != nullptr && u.tenant_id == t->id))
        && (!admins_only || u.is_admin))
      people.push_back(&u);
  std::sort(people.begin(), people.end(), [](const user* a, const user* b) {
    return a->user_principal_name < b->user_principal_name;
  });
  std::string body
      = "<form method=\"get\" action=\"" + html_escape(path) + "\">";
  for (auto& [k, v] : q)
    if (k != "login_hint")
      body += "<input type=\"hidden\" name=\"" + html_escape(k) + "\" value=\""
              + html_escape(v) + "\">";
  for (auto* u : people)
    body += "<p><button type=\"submit\" name=\"login_hint\" value=\""
            + html_escape(u->user_principal_name) + "\">"
            + html_escape(u->display_name) + " ("
            + html_escape(u->user_principal_name) + ")</button></p>";
  if (people.empty())
    body += admins_only ? "<p>This tenant has no administrator.</p>"
                        : "<p>This tenant has nobody to sign in as.</p>";
  body += "</form>";
  response r;
  r.content_type = "text/html; charset=utf-8";
  r.body = std::string{"<!doctype html><html lang=\"en\"><head><meta "
                       "charset=\"utf-8\"><title>graph-emulator: "}
           + (admins_only ? "grant admin consent" : "sign in")
           + "</title></head><body><h1>"
           + (admins_only ? "Grant admin consent as" : "Sign in as") + "</h1>"
           + body + "</body></html>";
  r.headers.emplace_back("Cache-Control", "no-store");
  // A browser holds a form's submission to form-action through every
  // redirect it answers with, and the endpoint redirects to the client's
  // redirect_uri: its origin is allowed too (only when it is a plain
  // http(s) origin, so nothing from the query can widen the policy).
  std::string form_action = "'self'";
  if (auto* ru = http::find_param(q, "redirect_uri"))
    if (auto origin = plain_origin(*ru); !origin.empty())
      form_action += " " + origin;
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'none'; form-action " + form_action
                             + "; frame-ancestors 'none'");
  return r;
}

/// The origin of an http(s) URL as split_url reads it, when its host has
/// only letters, digits, '.', '-' and ':' (IPv6); "" for anything else.
std::string service::impl::plain_origin(const std::string& url) {
  bool secure = false;
  std::string host, target;
  uint16_t port = 0;
  if (!split_url(url, secure, host, port, target) || host.empty())
    return {};
  for (char c : host)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-'
          || c == ':'))
      return {};
  std::string origin = secure ? "https://" : "http://";
  origin += host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port != (secure ? 443 : 80))
    origin += ":" + std::to_string(port);
  return origin;
}

void service::impl::issue_access_token(const std::string& client_id,
                                       const std::string& tenant_id,
                                       std::string& token, int64_t& lifetime) {
  token = "eyJ0eXAiOiJKV1Qi." + crypto::random_token(48);
  lifetime = cfg.token_lifetime.count();
  dir.tokens[token]
      = access_token{client_id, tenant_id, now() + lifetime * 1000};
}

/// The authorization_code grant: access token plus a signed id_token.
void service::impl::redeem_code(const request& req,
                                const std::string& tenant_key,
                                const http::query_params& form,
                                const responder_ptr& r) {
  auto param = [&](const char* n) {
    auto v = http::find_param(form, n);
    return v == nullptr ? std::string{} : *v;
  };
  std::lock_guard<std::mutex> guard{mtx};
  ++dir.code_redemptions;
  auto a = dir.apps.find(param("client_id"));
  if (a == dir.apps.end())
    return r->reply(oauth_error(400, "unauthorized_client", 700016,
                                "Application with identifier '"
                                    + param("client_id") + "' was not found.",
                                now()));
  if (!crypto::equal_secret(param("client_secret"), a->second.client_secret))
    return r->reply(oauth_error(401, "invalid_client", 7000215,
                                "Invalid client secret provided.", now()));
  auto c = dir.codes.find(param("code"));
  if (c == dir.codes.end() || c->second.expires_ms <= now()
      || c->second.client_id != a->first)
    return r->reply(oauth_error(400, "invalid_grant", 70008,
                                "The provided authorization code or "
                                "refresh token has expired due to "
                                "inactivity, or was already redeemed.",
                                now()));
  auto code = c->second;
  dir.codes.erase(c); // single use
  if (code.redirect_uri != param("redirect_uri"))
    return r->reply(oauth_error(400, "invalid_grant", 50148,
                                "The redirect_uri does not match the one "
                                "of the authorization request.",
                                now()));
  auto found = dir.users.find(code.user_id);
  if (found == dir.users.end()) // the person left since signing in
    return r->reply(oauth_error(400, "invalid_grant", 50034,
                                "The user account does not exist in this "
                                "directory.",
                                now()));
  auto& u = found->second;
  if (tenant_key != "common" && tenant_key != "organizations") {
    auto t = find_tenant(tenant_key);
    if (t == nullptr || t->id != u.tenant_id)
      return r->reply(oauth_error(
          400, "invalid_grant", 50020,
          "The user is not in tenant '" + tenant_key + "'.", now()));
  }
  std::string token;
  int64_t lifetime = 0;
  issue_access_token(a->first, u.tenant_id, token, lifetime);
  auto iat = now() / 1000;
  json::writer claims;
  claims.begin_object();
  claims.key("aud").value(a->first);
  claims.key("iss").value(base_url(req) + "/" + u.tenant_id + "/v2.0");
  claims.key("iat").value(iat);
  claims.key("nbf").value(iat);
  claims.key("exp").value(iat + lifetime);
  claims.key("name").value(u.display_name);
  claims.key("oid").value(u.id);
  claims.key("preferred_username").value(u.user_principal_name);
  claims.key("email").value(u.mail.empty() ? u.user_principal_name : u.mail);
  claims.key("sub").value(crypto::sha256_hex(u.id + a->first).substr(0, 43));
  claims.key("tid").value(u.tenant_id);
  claims.key("ver").value("2.0");
  if (!code.nonce.empty())
    claims.key("nonce").value(code.nonce);
  if (u.is_admin)
    claims.key("wids").begin_array().value(global_admin_role).end_array();
  claims.end_object();
  json::writer w;
  w.begin_object().key("token_type").value("Bearer");
  w.key("scope").value("openid profile email");
  w.key("expires_in").value(lifetime);
  w.key("ext_expires_in").value(lifetime);
  w.key("access_token").value(token);
  w.key("id_token").value(signer.sign(claims.str()));
  w.end_object();
  r->reply(json_response(200, w.take()));
}

/// Checks the bearer token; on failure fills `err` with Graph's 401.
const access_token* service::impl::check_token(const request& req,
                                               response& err) {
  auto h = req.header("authorization");
  if (h.size() < 8 || ascii_lower(h.substr(0, 7)) != "bearer ") {
    err = graph_error(req, 401, "InvalidAuthenticationToken",
                      "Access token is empty.", now());
    return nullptr;
  }
  auto i = dir.tokens.find(std::string{h.substr(7)});
  if (i == dir.tokens.end()) {
    err = graph_error(req, 401, "InvalidAuthenticationToken",
                      "IDX14100: JWT is not well formed.", now());
    return nullptr;
  }
  if (i->second.expires_ms <= now()) {
    err = graph_error(req, 401, "InvalidAuthenticationToken",
                      "Lifetime validation failed, the token is expired.",
                      now());
    return nullptr;
  }
  return &i->second;
}

// -- routes

void service::impl::install_identity_routes() {
  auto self = this;

  // ---- identity platform
  // ---------------------------------------------------------------

  routes.add(
      "POST", "/{tenant}/oauth2/v2.0/token",
      [self](request& req, const http::path_params& pp, responder_ptr r) {
        http::query_params form;
        if (!http::parse_query(req.body, form))
          return r->reply(oauth_error(400, "invalid_request", 900144,
                                      "The request body must be "
                                      "application/x-www-form-urlencoded.",
                                      self->now()));
        auto param = [&](const char* n) {
          auto v = http::find_param(form, n);
          return v == nullptr ? std::string{} : *v;
        };
        auto grant = param("grant_type");
        if (grant == "authorization_code")
          return self->redeem_code(req, pp[0], form, r);
        if (grant != "client_credentials")
          return r->reply(oauth_error(
              400, "unsupported_grant_type", 70003,
              "The app requested an unsupported grant type '" + grant + "'.",
              self->now()));
        std::lock_guard<std::mutex> guard{self->mtx};
        auto t = self->find_tenant(pp[0]);
        if (t == nullptr)
          return r->reply(oauth_error(400, "invalid_request", 90002,
                                      "Tenant '" + pp[0] + "' not found.",
                                      self->now()));
        auto a = self->dir.apps.find(param("client_id"));
        if (a == self->dir.apps.end())
          return r->reply(oauth_error(
              400, "unauthorized_client", 700016,
              "Application with identifier '" + param("client_id")
                  + "' was not found in the directory '" + t->domain + "'.",
              self->now()));
        if (!crypto::equal_secret(param("client_secret"),
                                  a->second.client_secret))
          return r->reply(oauth_error(401, "invalid_client", 7000215,
                                      "Invalid client secret provided.",
                                      self->now()));
        if (a->second.consented_tenants.count(t->id) == 0)
          return r->reply(oauth_error(
              400, "unauthorized_client", 700016,
              "Application with identifier '" + param("client_id")
                  + "' was not found in the directory '" + t->domain + "'.",
              self->now()));
        std::string token;
        int64_t lifetime = 0;
        self->issue_access_token(a->first, t->id, token, lifetime);
        ++self->dir.app_tokens_issued[t->id];
        json::writer w;
        w.begin_object().key("token_type").value("Bearer");
        w.key("expires_in").value(static_cast<int64_t>(lifetime));
        w.key("ext_expires_in").value(static_cast<int64_t>(lifetime));
        w.key("access_token").value(token);
        w.end_object();
        r->reply(json_response(200, w.take()));
      });

  // Sign-in (authorization-code flow). login_hint names the person, and the
  // answer is at once a redirect with a code; without it, a browser picks
  // the person on a page (pick_person_page).
  routes.add(
      "GET", "/{tenant}/oauth2/v2.0/authorize",
      [self](request& req, const http::path_params& pp, responder_ptr r) {
        http::query_params q;
        if (!http::parse_query(req.query, q))
          return r->reply(oauth_error(400, "invalid_request", 900144,
                                      "Invalid query string.", self->now()));
        auto param = [&](const char* n) {
          auto v = http::find_param(q, n);
          return v == nullptr ? std::string{} : *v;
        };
        auto redirect_uri = param("redirect_uri");
        auto state = param("state");
        std::lock_guard<std::mutex> guard{self->mtx};
        auto a = self->dir.apps.find(param("client_id"));
        if (a == self->dir.apps.end())
          return r->reply(oauth_error(400, "unauthorized_client", 700016,
                                      "Application with identifier '"
                                          + param("client_id")
                                          + "' was not found.",
                                      self->now()));
        if (redirect_uri.empty())
          return r->reply(oauth_error(400, "invalid_request", 900144,
                                      "The request must contain the "
                                      "parameter 'redirect_uri'.",
                                      self->now()));
        auto fail_to = [&](const char* error, int code, std::string text) {
          r->reply(redirect(with_params(
              redirect_uri, {{"error", error},
                             {"error_description",
                              "AADSTS" + std::to_string(code) + ": " + text},
                             {"state", state}})));
        };
        if (param("response_type") != "code")
          return fail_to("unsupported_response_type", 700054,
                         "response_type must be 'code'.");
        if (http::find_param(q, "login_hint") == nullptr)
          return r->reply(self->pick_person_page(pp[0], q, req.path, false));
        auto u = self->find_sign_in_user(pp[0], param("login_hint"));
        if (u == nullptr)
          return fail_to("invalid_request", 50034,
                         "The user account '" + param("login_hint")
                             + "' does not exist in this directory.");
        auto code = crypto::random_token(48);
        self->dir.codes[code]
            = auth_code{a->first, redirect_uri, u->id, param("nonce"),
                        self->now() + code_lifetime_ms};
        r->reply(redirect(
            with_params(redirect_uri, {{"code", code},
                                       {"state", state},
                                       {"session_state", new_guid()}})));
      });

  // Admin consent: only an administrator of the tenant can grant it.
  routes.add(
      "GET", "/{tenant}/adminconsent",
      [self](request& req, const http::path_params& pp, responder_ptr r) {
        http::query_params q;
        http::parse_query(req.query, q);
        auto param = [&](const char* n) {
          auto v = http::find_param(q, n);
          return v == nullptr ? std::string{} : *v;
        };
        auto redirect_uri = param("redirect_uri");
        auto state = param("state");
        std::lock_guard<std::mutex> guard{self->mtx};
        auto a = self->dir.apps.find(param("client_id"));
        if (a == self->dir.apps.end() || redirect_uri.empty())
          return r->reply(oauth_error(
              400, "unauthorized_client", 700016,
              "Application with identifier '" + param("client_id")
                  + "' was not found, or no redirect_uri was given.",
              self->now()));
        if (http::find_param(q, "login_hint") == nullptr)
          return r->reply(self->pick_person_page(pp[0], q, req.path, true));
        auto u = self->find_sign_in_user(pp[0], param("login_hint"));
        if (u == nullptr || !u->is_admin)
          return r->reply(redirect(with_params(
              redirect_uri,
              {{"error", "access_denied"},
               {"error_description",
                "AADSTS90094: An administrator of the organization must "
                "grant permissions to this app."},
               {"state", state}})));
        a->second.consented_tenants.insert(u->tenant_id);
        r->reply(redirect(with_params(redirect_uri, {{"admin_consent", "True"},
                                                     {"tenant", u->tenant_id},
                                                     {"state", state}})));
      });

  routes.add("GET", "/{tenant}/discovery/v2.0/keys",
             [self](request&, const http::path_params&, responder_ptr r) {
               r->reply(json_response(200, self->signer.jwks()));
             });

  routes.add(
      "GET", "/{tenant}/v2.0/.well-known/openid-configuration",
      [self](request& req, const http::path_params& pp, responder_ptr r) {
        auto base = base_url(req);
        std::string t = pp[0];
        {
          std::lock_guard<std::mutex> guard{self->mtx};
          if (auto found = self->find_tenant(t))
            t = found->id;
        }
        bool multi = t == "common" || t == "organizations";
        json::writer w;
        w.begin_object();
        w.key("issuer").value(
            base + "/" + (multi ? std::string{"{tenantid}"} : t) + "/v2.0");
        w.key("authorization_endpoint")
            .value(base + "/" + pp[0] + "/oauth2/v2.0/authorize");
        w.key("token_endpoint")
            .value(base + "/" + pp[0] + "/oauth2/v2.0/token");
        w.key("jwks_uri").value(base + "/" + pp[0] + "/discovery/v2.0/keys");
        w.key("response_types_supported")
            .begin_array()
            .value("code")
            .end_array();
        w.key("id_token_signing_alg_values_supported")
            .begin_array()
            .value("RS256")
            .end_array();
        w.end_object();
        r->reply(json_response(200, w.take()));
      });
}

} // namespace crmsync::emulator
