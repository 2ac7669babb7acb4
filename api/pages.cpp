#include "api/pages.hpp"

#include <simdjson.h>

#include "common/text.hpp"

namespace crmsync::http::pages {

namespace {

/// The q-value of one media range's parameters ("; q=0.5"), 1 when absent.
double q_value(std::string_view params) {
  while (!params.empty()) {
    auto semi = params.find(';');
    auto p = params.substr(0, semi);
    auto b = p.find_first_not_of(' ');
    if (b != std::string_view::npos) {
      p = p.substr(b);
      if (p.size() > 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
        try {
          return std::stod(std::string{p.substr(2)});
        } catch (...) {
          return 0;
        }
      }
    }
    if (semi == std::string_view::npos)
      break;
    params.remove_prefix(semi + 1);
  }
  return 1;
}

std::string trim(std::string_view s) {
  auto b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos)
    return {};
  auto e = s.find_last_not_of(" \t");
  return std::string{s.substr(b, e - b + 1)};
}

std::string_view str(simdjson::dom::element e, const char* key) {
  std::string_view v;
  if (e[key].get_string().get(v))
    return {};
  return v;
}

std::string paragraph(const std::string& html) {
  return "<p>" + html + "</p>";
}

/// The organization and user parts of an answer, as a page's lines.
std::string org_and_user(simdjson::dom::element doc) {
  std::string out;
  simdjson::dom::element org, user;
  if (!doc["organization"].get(org) && org.is_object())
    out += paragraph("Organization: <b>" + escape(str(org, "name"))
                     + "</b> (<code>" + escape(str(org, "id")) + "</code>)");
  if (!doc["user"].get(user) && user.is_object()) {
    out += paragraph("You are <b>" + escape(str(user, "name")) + "</b> ("
                     + escape(str(user, "email")) + ").");
    auto token = str(user, "token");
    if (!token.empty())
      out += paragraph("Your CRM API token (shown once; keep it like a "
                       "password): <code>"
                       + escape(token) + "</code>");
  }
  return out;
}

response error_page(const response& r) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc, err;
  std::string_view code, message = "the request failed";
  if (!parser.parse(r.body).get(doc) && !doc["error"].get(err)) {
    code = str(err, "code");
    if (!str(err, "message").empty())
      message = str(err, "message");
  }
  std::string title = "Something went wrong";
  if (code == "invite_expired")
    title = "This invitation has expired";
  else if (code == "invite_used")
    title = "This invitation was already used";
  else if (code == "invite_superseded")
    title = "A newer invitation replaced this one";
  else if (code == "not_invitee")
    title = "This invitation is for someone else";
  else if (code == "edition_required")
    title = "Available in paid editions";
  else if (code == "setup_expired")
    title = "This password link has expired";
  else if (code == "setup_not_found")
    title = "This password link does not work";
  else if (r.status == 403 || r.status == 401)
    title = "Not allowed";
  else if (r.status == 404 || r.status == 410)
    title = "Not found";
  return page(r.status, title,
              paragraph(escape(message)) + "<p>(HTTP "
                  + std::to_string(r.status) + ", <code>" + escape(code)
                  + "</code>)</p>");
}

class browser_responder : public responder {
public:
  explicit browser_responder(responder_ptr inner) : inner_(std::move(inner)) {}
  void reply(response r) override {
    inner_->reply(render(std::move(r)));
  }

private:
  responder_ptr inner_;
};

} // namespace

bool prefers_html(std::string_view accept) {
  double html = -1, json = -1, any = -1;
  while (!accept.empty()) {
    auto comma = accept.find(',');
    auto range = accept.substr(0, comma);
    auto semi = range.find(';');
    auto type = ascii_lower(trim(range.substr(0, semi)));
    auto q = semi == std::string_view::npos ? 1.0
                                            : q_value(range.substr(semi + 1));
    if (type == "text/html" || type == "application/xhtml+xml")
      html = std::max(html, q);
    else if (type == "application/json")
      json = std::max(json, q);
    else if (type == "*/*")
      any = std::max(any, q);
    if (comma == std::string_view::npos)
      break;
    accept.remove_prefix(comma + 1);
  }
  // Only an explicit text/html, ahead of JSON and of "*/*", wins.
  return html > 0 && html > json && html >= any;
}

std::string escape(std::string_view in) {
  return html_escape(in);
}

response page(int status, const std::string& title,
              const std::string& body_html, const std::string& form_origin) {
  response res;
  res.status = status;
  res.content_type = "text/html; charset=utf-8";
  res.body = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
             "<title>"
             + escape(title) + " - crmsync</title></head><body><h1>"
             + escape(title) + "</h1>" + body_html + "</body></html>";
  res.headers.emplace_back("Cache-Control", "no-store");
  auto form_action
      = "form-action 'self'"
        + (form_origin.empty() ? std::string{} : " " + form_origin);
  res.headers.emplace_back("Content-Security-Policy",
                           "default-src 'none'; " + form_action
                               + "; frame-ancestors 'none'");
  res.headers.emplace_back("Referrer-Policy", "no-referrer");
  res.headers.emplace_back("X-Content-Type-Options", "nosniff");
  return res;
}

response render(response r) {
  if (r.status >= 300 && r.status < 400)
    return r;
  if (r.content_type.rfind("text/html", 0) == 0)
    return r;
  if (r.status >= 400)
    return error_page(r);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(r.body).get(doc) || !doc.is_object())
    return page(r.status, "Done", paragraph("The request succeeded."));
  auto status = str(doc, "status");
  auto facts = org_and_user(doc);
  if (status == "installed") {
    bool created = false;
    if (doc["created"].get(created))
      created = false;
    return page(200, "crmsync is installed",
                paragraph(created ? "A new CRM organization was created for "
                                    "your Office 365 organization, with you "
                                    "as its super administrator."
                                  : "Your Office 365 organization is linked "
                                    "to your existing CRM organization.")
                    + facts
                    + paragraph("Next: invite the people of your Office 365 "
                                "organization from the CRM, and turn on "
                                "calendar sync for each user."));
  }
  if (status == "member" || status == "associated" || status == "accepted")
    return page(r.status, "You are signed in",
                paragraph(status == "associated"
                              ? "Your Office 365 account is now associated "
                                "with your CRM account."
                          : status == "accepted"
                              ? "You joined the organization."
                              : "Your Office 365 account is a user of "
                                "the CRM.")
                    + facts);
  if (status == "not_a_member") {
    simdjson::dom::element org;
    std::string body
        = paragraph("You signed in with Office 365 as <b>"
                    + escape(str(doc["office365_user"], "email"))
                    + "</b>, but you are not a user of the CRM yet.");
    if (!doc["organization"].get(org) && org.is_object())
      body += paragraph("Your Office 365 organization uses the CRM as <b>"
                        + escape(str(org, "name"))
                        + "</b>: ask to join, or accept your invitation.");
    else
      body += paragraph("Nobody installed the app for your Office 365 "
                        "organization yet; an administrator can install it "
                        "at <code>/o365/install</code>.");
    return page(200, "Not a member yet", body);
  }
  return page(r.status, "Done", paragraph("The request succeeded.") + facts);
}

responder_ptr as_pages(responder_ptr inner) {
  return std::make_shared<browser_responder>(std::move(inner));
}

responder_ptr for_browser(const request& req, responder_ptr inner) {
  if (!prefers_html(req.header("accept")))
    return inner;
  return as_pages(std::move(inner));
}

} // namespace crmsync::http::pages
