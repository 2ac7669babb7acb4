// The OpenAPI document (api/openapi/openapi.json, as embedded in the
// binary) against the router that serves the API: every route documented,
// every documented operation served, the same methods; and every error
// answer it describes has the one JSON error shape (or, for the browser
// pages, is an HTML page). t16-openapi.
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <catch2/catch.hpp>
#include <simdjson.h>

#include <set>
#include <string>
#include <utility>

#include "api/api.hpp"
#include "api/web_assets.hpp"
#include "common/fair_pool.hpp"
#include "storage/db.hpp"
#include "tests/support/temp_dir.hpp"

using namespace crmsync;

namespace {

using operation = std::pair<std::string, std::string>; // method, path

std::string upper(std::string_view s) {
  std::string out{s};
  for (auto& c : out)
    if (c >= 'a' && c <= 'z')
      c = static_cast<char>(c - 'a' + 'A');
  return out;
}

/// The document as the node serves it.
simdjson::dom::element embedded_document(simdjson::dom::parser& parser) {
  auto asset = http::find_api_doc_asset("openapi.json");
  REQUIRE(asset != nullptr);
  simdjson::dom::element doc;
  auto err = parser.parse(asset->body.data(), asset->body.size()).get(doc);
  INFO("api/openapi/openapi.json does not parse: "
       << simdjson::error_message(err));
  REQUIRE(!err);
  return doc;
}

std::set<operation> documented(simdjson::dom::element doc) {
  static const std::set<std::string_view> methods{
      "get", "put", "post", "delete", "patch", "head", "options", "trace"};
  std::set<operation> out;
  simdjson::dom::object paths;
  REQUIRE(!doc["paths"].get(paths));
  for (auto [path, item] : paths) {
    simdjson::dom::object ops;
    REQUIRE(!item.get(ops));
    for (auto [key, op] : ops)
      if (methods.count(key) != 0)
        out.emplace(upper(key), std::string{path});
  }
  return out;
}

/// The routes of a real api object: the tables its constructor fills.
std::set<operation> served() {
  test::temp_dir dir;
  storage::db_options opts;
  opts.path = dir.path() + "/db";
  auto db = storage::db::open(opts);
  REQUIRE(db);
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  fair_pool hashing{1, "openapi-test"};
  http::api api{sys,     caf::actor{},       **db,
                hashing, http::api_config{}, http::node_info{}};
  std::set<operation> out;
  for (auto& e : api.route_table()) {
    INFO(e.method << " " << e.pattern << " is registered twice");
    CHECK(out.emplace(e.method, e.pattern).second);
  }
  return out;
}

std::string listing(const std::set<operation>& ops) {
  std::string s;
  for (auto& [m, p] : ops)
    s += "  " + m + " " + p + "\n";
  return s;
}

} // namespace

TEST_CASE("the OpenAPI document describes exactly the routes the node serves",
          "[openapi]") {
  simdjson::dom::parser parser;
  auto doc = embedded_document(parser);
  std::string_view version;
  REQUIRE(!doc["openapi"].get(version));
  CHECK(version == "3.1.0");
  auto in_doc = documented(doc);
  auto in_router = served();
  REQUIRE(in_router.size() > 50); // the api's tables, not an empty router
  std::set<operation> undocumented, not_served;
  for (auto& op : in_router)
    if (in_doc.count(op) == 0)
      undocumented.insert(op);
  for (auto& op : in_doc)
    if (in_router.count(op) == 0)
      not_served.insert(op);
  {
    INFO("routes the router serves that api/openapi/openapi.json does not "
         "describe:\n"
         << listing(undocumented));
    CHECK(undocumented.empty());
  }
  {
    INFO("operations api/openapi/openapi.json describes that no route "
         "serves:\n"
         << listing(not_served));
    CHECK(not_served.empty());
  }
}

TEST_CASE("every error the document describes is the JSON error shape or a "
          "page",
          "[openapi]") {
  simdjson::dom::parser parser;
  auto doc = embedded_document(parser);
  const std::string error_ref = "#/components/schemas/Error";
  simdjson::dom::object paths;
  REQUIRE(!doc["paths"].get(paths));
  size_t errors_seen = 0;
  for (auto [path, item] : paths) {
    simdjson::dom::object ops;
    REQUIRE(!item.get(ops));
    for (auto [method, op] : ops) {
      if (method == "parameters")
        continue;
      simdjson::dom::object responses;
      INFO(upper(method) << " " << path);
      REQUIRE(!op["responses"].get(responses));
      for (auto [status, response] : responses) {
        if (status.empty() || (status[0] != '4' && status[0] != '5'))
          continue;
        std::string_view ref;
        if (!response["$ref"].get(ref)) {
          constexpr std::string_view prefix = "#/components/responses/";
          REQUIRE(ref.substr(0, prefix.size()) == prefix);
          REQUIRE(
              !doc["components"]["responses"][ref.substr(prefix.size())].get(
                  response));
        }
        // A JSON error is the Error shape; a browser page's error is HTML.
        INFO("status " << status);
        simdjson::dom::object content;
        REQUIRE(!response["content"].get(content));
        simdjson::dom::element json_media;
        if (!content["application/json"].get(json_media)) {
          std::string_view schema_ref;
          CHECK(!json_media["schema"]["$ref"].get(schema_ref));
          CHECK(schema_ref == error_ref);
        } else {
          simdjson::dom::element html_media;
          CHECK(!content["text/html"].get(html_media));
        }
        ++errors_seen;
      }
    }
  }
  CHECK(errors_seen > 100);
}
