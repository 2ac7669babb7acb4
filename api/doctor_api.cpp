// POST /admin/v1/doctor (issue 16, t16-m365): the checks of
// `crmsyncctl doctor` that need the app's credentials, which only the node
// holds (service admin only; the secret never leaves the node):
//
//   token_endpoint  the identity platform answers and gives the app an
//                   app-only token with the configured client id and
//                   secret (one try, the cache neither read nor filled);
//   tenant_consent  that token's tenant has consented: Graph answers
//                   GET /users?$top=1&$select=id with it (the same probe
//                   the install makes; it needs User.Read.All).
//
// Body {"tenant":"ID-OR-DOMAIN"}; without a tenant both checks are
// "skip". Each check has a status (pass, warn, fail, skip), a message
// that quotes what Microsoft answered (its error code, the AADSTS number,
// the ids to quote to Microsoft) and a hint saying what to do. The answer
// also names the node's public URL, so that crmsyncctl can check from
// outside that Graph's validation handshake reaches the node.
#include "api/api_impl.hpp"

#include "graph/client.hpp"

namespace crmsync::http {

namespace {

struct doctor_check {
  std::string name;
  std::string status; ///< pass, warn, fail, skip
  std::string message;
  std::string hint;
};

/// What the two checks found; answered once both are known.
struct doctor_report {
  std::string node;
  std::string public_url;
  std::string tenant;
  bool configured = false;
  doctor_check token{"token_endpoint", "skip", "", ""};
  doctor_check consent{"tenant_consent", "skip", "", ""};

  response render() const {
    json::writer w;
    w.begin_object();
    w.key("node").value(node);
    w.key("public_url").value(public_url);
    w.key("office365_configured").value(configured);
    w.key("tenant").value_or_null(tenant);
    w.key("checks").begin_array();
    for (const auto* c : {&token, &consent}) {
      w.begin_object();
      w.key("name").value(c->name);
      w.key("status").value(c->status);
      w.key("message").value(c->message);
      w.key("hint").value(c->hint);
      w.end_object();
    }
    w.end_array();
    w.end_object();
    return detail::json_response(200, w.take());
  }
};

bool mentions(const graph::error& e, std::string_view aadsts) {
  return e.message.find(aadsts) != std::string::npos;
}

/// Graph's ids of a failed call, for a message an operator quotes.
std::string ids_of(const graph::error& e) {
  if (e.client_request_id.empty())
    return {};
  return " (client-request-id " + e.client_request_id
         + (e.request_id.empty() ? "" : ", request-id " + e.request_id)
         + (e.date.empty() ? "" : ", date " + e.date) + ")";
}

} // namespace

void api::impl::install_doctor_routes() {
  auto self = this; // routes live as long as the impl that owns them
  routes.add("POST", "/admin/v1/doctor",
             [self](request& req, const path_params&, responder_ptr r) {
               if (!self->admin_auth(req, r) || !self->require_json(req, r))
                 return;
               std::string tenant;
               if (auto err = json::decode_doctor(req.body, tenant))
                 return fail(r, err);
               self->run_doctor(tenant, std::move(r));
             });
}

void api::impl::run_doctor(const std::string& tenant, responder_ptr r) {
  auto report = std::make_shared<doctor_report>();
  report->node = info.node_id;
  report->public_url = o365.public_url;
  report->tenant = tenant;
  report->configured = o365.graph != nullptr;
  if (o365.graph == nullptr) {
    for (auto* c : {&report->token, &report->consent}) {
      c->status = "fail";
      c->message = "Office 365 is not configured on this node: it was "
                   "started without --client-id and --client-secret";
      c->hint = "register the app in Microsoft Entra and start crmsyncd "
                "with --client-id and --client-secret "
                "(docs/MICROSOFT365.md)";
    }
    return r->reply(report->render());
  }
  if (tenant.empty()) {
    const std::string hint
        = "give the tenant to check: crmsyncctl doctor --tenant "
          "ID-OR-DOMAIN (your own tenant, where the app is registered, or "
          "a customer's)";
    report->token.message = "not checked: no tenant given (a token is "
                            "always asked for one tenant)";
    report->token.hint = hint;
    report->consent.message = "not checked: no tenant given";
    report->consent.hint = hint;
    return r->reply(report->render());
  }
  auto* client = o365.graph;
  const std::string install_url = o365.public_url + "/o365/install";
  const std::string consent_url = client->admin_consent_url(
      tenant, o365.public_url + "/o365/consent-callback", "doctor");
  const std::string consent_hint
      = "an administrator of " + tenant + " installs the app at " + install_url
        + " (sign-in, then admin consent), or grants consent directly at "
        + consent_url;
  client->start_token_check(tenant, [report, r, client, tenant, consent_hint](
                                        graph::result<std::string> got) {
    auto& tok = report->token;
    auto& con = report->consent;
    if (!got.ok) {
      const auto& e = got.failure;
      const std::string said
          = e.code + (e.message.empty() ? "" : ": " + e.message);
      if (e.status == 0) {
        tok.status = "fail";
        tok.message = "cannot reach the identity platform's token endpoint: "
                      + e.message;
        tok.hint = "check --login-base-url (https://login.microsoftonline."
                   "com), that the node may open HTTPS connections to it "
                   "(firewall, outbound proxy) and --graph-ca-file when a "
                   "proxy re-signs TLS";
        con.message = "not checked: no app-only token";
      } else if (e.code == "invalid_client") {
        tok.status = "fail";
        tok.message = "the identity platform refused the app's "
                      "credentials (HTTP "
                      + std::to_string(e.status) + " " + said + ")";
        tok.hint = mentions(e, "AADSTS7000222")
                       ? "the client secret has expired: add a new one in "
                         "Microsoft Entra (App registrations, the app, "
                         "Certificates & secrets) and restart crmsyncd with "
                         "it in --client-secret"
                       : "the client secret is wrong or was replaced: copy "
                         "the secret's Value (not its ID) from Microsoft "
                         "Entra (App registrations, the app, Certificates & "
                         "secrets) into --client-secret and restart "
                         "crmsyncd";
        con.message = "not checked: no app-only token";
      } else if (e.code == "unauthorized_client"
                 || mentions(e, "AADSTS700016")) {
        tok.status = "warn";
        tok.message = "the token endpoint answered, but does not know the "
                      "app in "
                      + tenant + " (HTTP " + std::to_string(e.status) + " "
                      + said + "): the secret could not be checked there";
        tok.hint = "check --client-id (the app's Application (client) ID); "
                   "if it is right, the tenant has not consented (below)";
        con.status = "fail";
        con.message = "the app has no consent in " + tenant
                      + " (or --client-id is wrong): the identity platform "
                        "gives it no token there";
        con.hint = consent_hint;
        return r->reply(report->render());
      } else if (mentions(e, "AADSTS90002")) {
        tok.status = "warn";
        tok.message = "the token endpoint answered, but does not know the "
                      "tenant "
                      + tenant + " (" + said + ")";
        tok.hint = "check the tenant given";
        con.status = "fail";
        con.message = "no such tenant: " + tenant;
        con.hint = "give the tenant's id (a GUID) or one of its verified "
                   "domains, such as contoso.onmicrosoft.com";
        return r->reply(report->render());
      } else {
        tok.status = "fail";
        tok.message = "the token endpoint gave no token: " + e.describe();
        tok.hint = "check --login-base-url and the answer above";
        con.message = "not checked: no app-only token";
      }
      con.status = "skip";
      return r->reply(report->render());
    }
    tok.status = "pass";
    tok.message = "the identity platform gave the app an app-only token "
                  "for "
                  + tenant + " with its client id and secret";
    graph::call_spec probe;
    probe.tenant = tenant;
    probe.path_or_url = "/users?$top=1&$select=id";
    client->start(std::move(probe), [report, r, tenant, consent_hint](
                                        graph::result<graph::response> answer) {
      auto& con = report->consent;
      if (answer.ok) {
        con.status = "pass";
        con.message = "Graph answers the app in " + tenant
                      + ": GET /users with an app-only token works "
                        "(consent given, User.Read.All granted)";
        return r->reply(report->render());
      }
      const auto& e = answer.failure;
      con.status = "fail";
      if (e.status == 401 || e.status == 403) {
        con.message = "Graph refuses the app in " + tenant + ": " + e.describe()
                      + ids_of(e);
        con.hint = "the app is missing an application permission "
                   "(User.Read.All, Calendars.ReadWrite, Mail.Send) or "
                   "its consent is out of date: add them, then "
                   + consent_hint;
      } else {
        con.message = "Graph did not answer the probe (GET /users) in " + tenant
                      + ": " + e.describe() + ids_of(e);
        con.hint = "check --graph-base-url and that the node may reach "
                   "Graph over HTTPS; quote the ids above to Microsoft "
                   "if it persists";
      }
      r->reply(report->render());
    });
  });
}

} // namespace crmsync::http
