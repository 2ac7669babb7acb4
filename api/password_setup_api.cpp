// The e-mailed link of a user made without a password ("New User" for
// someone without Office 365): /password-setup/{token}. A program POSTs
// {"password"} as JSON; a browser opening the link gets a page with the
// form (the password twice), posts it, and ends signed in (a sign-in
// token, shown once, that ends after --session-ttl). The link's token is
// the proof, single use until it expires (--password-setup-lifetime); it
// is also what keeps the form from being posted by another site, which
// cannot know it.
#include "api/api_impl.hpp"

#include "api/pages.hpp"
#include "api/sessions.hpp"
#include "common/text.hpp"
#include "http/url.hpp"
#include "protocol/json.hpp"

namespace crmsync::http {

namespace {

using pages::escape;

std::string para(const std::string& html) {
  return "<p>" + html + "</p>";
}

/// Who the link is for (their name and address), as a page's line.
std::string who_line(const user_record& u) {
  return para("This link sets the password of <b>" + escape(u.name) + "</b> ("
              + escape(u.email) + ").");
}

/// The form: the new password twice; `error` (text) above it.
response form_page(int status, const std::string& action,
                   const std::string& intro_html, const std::string& error,
                   const std::string& code) {
  std::string body = intro_html;
  if (!error.empty())
    body += "<p role=\"alert\"><b>" + escape(error) + "</b> (HTTP "
            + std::to_string(status) + ", <code>" + escape(code)
            + "</code>)</p>";
  body += "<form method=\"post\" action=\"" + escape(action)
          + "\"><p><label>New password (at least 8 characters) <input "
            "type=\"password\" name=\"password\" required minlength=\"8\" "
            "maxlength=\"1024\" autocomplete=\"new-password\"></label></p>"
            "<p><label>The same password again <input type=\"password\" "
            "name=\"confirm\" required minlength=\"8\" maxlength=\"1024\" "
            "autocomplete=\"new-password\"></label></p>"
            "<p><button type=\"submit\">Set my password</button></p></form>";
  return pages::page(status, "Choose your password", body);
}

/// The page once the password is set: who, and the sign-in token.
response done_page(const user_record& u, const std::string& token) {
  return pages::page(
      200, "Your password is set",
      para("You are <b>" + escape(u.name) + "</b> (" + escape(u.email)
           + "), a user of the CRM, and you are signed in.")
          + para("Your CRM API token (shown once; keep it like a "
                 "password): <code>"
                 + escape(token)
                 + "</code>. Programs send it as <code>Authorization: "
                   "Bearer …</code>; it ends after the service's sign-in "
                   "lifetime.")
          + para("To sign in later with Office 365, sign in there and "
                 "choose <b>Associate my account</b> with this e-mail "
                 "address and your new password."));
}

bool form_body(const request& req) {
  return ascii_lower(req.header("content-type"))
             .rfind("application/x-www-form-urlencoded", 0)
         == 0;
}

} // namespace

void api::impl::install_password_setup_routes() {
  auto self = this; // routes live as long as the impl that owns them
  auto action = [self](const std::string& token) {
    return pages::public_path(self->o365.public_url) + "/password-setup/"
           + token;
  };
  auto not_found = [](const responder_ptr& r) {
    fail(r, 404, "setup_not_found",
         "this password link is not valid or was already used");
  };
  routes.add("GET", "/password-setup/{token}",
             [self, action, not_found](request& req, const path_params& pp,
                                       responder_ptr r) {
               if (!pages::prefers_html(req.header("accept"))) {
                 json::writer w;
                 w.begin_object().key("how").value(
                     "POST this address with {\"password\":\"…\"} (at least "
                     "8 characters) to set your password");
                 w.end_object();
                 return r->reply(json_response(200, w.take()));
               }
               // A browser: the form, once the link is known to still work.
               auto pr = pages::as_pages(std::move(r));
               uint64_t org = 0, user = 0;
               if (!parse_setup_token(pp[0], org, user))
                 return not_found(pr);
               set_password cmd;
               cmd.user = user_id{user};
               cmd.token_hash = crypto::sha256_hex(pp[0]);
               cmd.check_only = true;
               self->ask<user_record>(
                   tenant_key(tenant_id{org}), cmd, pr,
                   [pr, target = action(pp[0])](user_record& u) {
                     pr->reply(form_page(200, target, who_line(u), "", ""));
                   });
             });
  routes.add(
      "POST", "/password-setup/{token}",
      [self, action, not_found](request& req, const path_params& pp,
                                responder_ptr r) {
        bool browser = form_body(req);
        if (!browser && !self->require_json(req, r))
          return;
        if (browser)
          r = pages::as_pages(std::move(r));
        uint64_t org = 0, user = 0;
        if (!parse_setup_token(pp[0], org, user))
          return not_found(r);
        std::string password;
        if (browser) {
          query_params form;
          const std::string* pw = nullptr;
          const std::string* again = nullptr;
          if (parse_query(req.body, form)) {
            pw = find_param(form, "password");
            again = find_param(form, "confirm");
          }
          if (pw == nullptr || again == nullptr || *pw != *again)
            return r->reply(form_page(400, action(pp[0]), "",
                                      "The two passwords are not the same; "
                                      "enter the new password twice.",
                                      "password_mismatch"));
          // The rule of the JSON body, from the one decoder.
          std::string body = "{\"password\":";
          json::append_string(body, *pw);
          body += '}';
          if (auto err = json::decode_new_password(body, password)) {
            auto e = to_api_error(err);
            return r->reply(
                form_page(400, action(pp[0]), "", e.message, e.code));
          }
        } else if (auto err = json::decode_new_password(req.body, password)) {
          return fail(r, err);
        }
        // Signed in once it is set: a sign-in token, shown once.
        auto token = make_user_token(org, user);
        auto cmd = std::make_shared<set_password>();
        cmd->user = user_id{user};
        cmd->token_hash = crypto::sha256_hex(pp[0]);
        cmd->signin_token_hash = crypto::sha256_hex(token);
        self->hash_then(
            self->hash_caller(req), true, r,
            [self, cmd, org, r, browser, token, pw = std::move(password)] {
              cmd->password_hash = crypto::hash_password(pw);
              self->ask<user_record>(
                  tenant_key(tenant_id{org}), *cmd, r,
                  [r, browser, token](user_record& u) {
                    if (browser)
                      return r->reply(done_page(u, token));
                    r->reply(json_response(
                        200, api::impl::user_with_token(u, token)));
                  });
            });
      });
}

} // namespace crmsync::http
