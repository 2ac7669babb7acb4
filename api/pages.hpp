// Server-rendered pages for a person with a browser (issue 14): the
// Office 365 flows answer programs with JSON and browsers with pages, from
// one piece of code. A flow writes its JSON answer as always; a request
// whose Accept header prefers text/html gets that answer rendered as a
// page by pages::for_browser. Pages load nothing (no script, no style, no
// CDN: the policy allows none of it) and every value is HTML-escaped.
#pragma once

#include <string>
#include <string_view>

#include "http/server.hpp"

namespace crmsync::http::pages {

/// Whether an Accept header prefers text/html over application/json (a
/// browser). No header, "*/*" alone or a JSON preference: false, so
/// programs keep their JSON answers.
bool prefers_html(std::string_view accept);

/// `in` with & < > " ' escaped.
std::string escape(std::string_view in);

/// A page: `title` is escaped here, `body_html` by the caller. No-store,
/// a strict Content-Security-Policy, no referrer. Its forms post to this
/// node, and to `form_origin` too when given (an origin a form's answer
/// redirects to: browsers hold form-action through redirects).
response page(int status, const std::string& title,
              const std::string& body_html,
              const std::string& form_origin = {});

/// The page for a JSON answer of the Office 365 flows: redirects pass
/// unchanged (the browser follows them), errors show their message and
/// code, answers of sign-in and install say what happened and what next.
response render(response json_answer);

/// A responder that renders every answer as a page (render()): for the
/// routes that only browsers use.
responder_ptr as_pages(responder_ptr inner);

/// `inner` when the request is not a browser's, else a responder that
/// renders the flows' answers as pages (render()).
responder_ptr for_browser(const request& req, responder_ptr inner);

} // namespace crmsync::http::pages
