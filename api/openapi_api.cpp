// The API's description, public like /healthz (t16-openapi): the OpenAPI
// 3.1 document api/openapi/openapi.json at GET /api/v1/openapi.json, and
// /api/docs, a page that renders it (docs.html, docs.js, docs.css). All are
// embedded at build time (web_assets.hpp); none holds a secret or anything
// of this node's configuration, so no token is asked for.
#include "api/api.hpp"
#include "api/api_impl.hpp"

#include "api/web_assets.hpp"

namespace crmsync::http {

void api::impl::install_openapi_routes() {
  routes.add("GET", "/api/v1/openapi.json",
             [](request&, const path_params&, responder_ptr r) {
               serve_file(find_api_doc_asset("openapi.json"),
                          "the OpenAPI document is missing from this build", r);
             });
  // "/api/docs" and "/api/docs/" are one path to the router; the page's
  // relative links need the slash.
  routes.add("GET", "/api/docs",
             [](request& req, const path_params&, responder_ptr r) {
               if (!slash_redirect(req, "/api/docs/", r))
                 serve_file(find_api_doc_asset("docs.html"),
                            "the API documentation page is missing", r);
             });
  routes.add("GET", "/api/docs/{file}",
             [](request&, const path_params& pp, responder_ptr r) {
               serve_file(find_api_doc_asset(pp[0]),
                          "no such file of the API documentation: " + pp[0], r);
             });
}

} // namespace crmsync::http
