// The web admin page's files (web/) and the API's description
// (api/openapi/), compiled into the binary.
//
// cmake/embed_files.cmake turns every file of those folders into a byte array
// of a generated translation unit at build time, so a node serves its page with
// no file path at run time. Read-only data: safe from any thread.
#pragma once

#include <string_view>

namespace crmsync::http {

struct web_asset {
  std::string_view name; ///< file name within web/, e.g. "app.js"
  std::string_view content_type;
  std::string_view body;
};

/// The file named `name` (no directories), or nullptr.
const web_asset* find_web_asset(std::string_view name);

/// The same for api/openapi/: the OpenAPI document (openapi.json) and the
/// page that renders it (docs.html, docs.js, docs.css). t16-openapi.
const web_asset* find_api_doc_asset(std::string_view name);

} // namespace crmsync::http
