// graph-emulator's JSON batching: POST /v1.0/$batch (GRAPH-FACTS §7).
//
// Items run through the same routes as single requests, with or without
// the /v1.0 prefix in their URL, and each answers with its own status,
// headers and body (a JSON body embedded as JSON). Up to 20 items with
// unique ids; an item whose dependency failed answers 424.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "tests/emulator/harness.hpp"

using namespace crmsync::emulator_test;

namespace {

/// One batch item; `rest` is spliced in after the url (starts with ",").
std::string item(std::string_view id, std::string_view method,
                 std::string_view url, std::string_view rest = {}) {
  return R"({"id":")" + std::string{id} + R"(","method":")"
         + std::string{method} + R"(","url":")" + std::string{url} + "\""
         + std::string{rest} + "}";
}

/// A JSON body with its Content-Type header, for item().
std::string with_body(std::string_view json) {
  return R"(,"headers":{"Content-Type":"application/json"},"body":)"
         + std::string{json};
}

std::string depends_on(std::string_view ids_json) {
  return R"(,"dependsOn":)" + std::string{ids_json};
}

std::string requests(const std::vector<std::string>& items) {
  std::string out = R"({"requests":[)";
  for (size_t i = 0; i < items.size(); ++i)
    out += (i > 0 ? "," : "") + items[i];
  return out + "]}";
}

class batching : public contoso {
public:
  api_response batch(const std::vector<std::string>& items) {
    return post("/v1.0/$batch", tok, requests(items));
  }

  /// The batch answer's /responses/N whose id is `id`; exactly one.
  static std::string response_of(const api_response& r, std::string_view id) {
    std::string found;
    for (size_t i = 0; i < r.size("/responses"); ++i) {
      auto p = "/responses/" + std::to_string(i);
      if (r.str(p + "/id") == id) {
        INFO("id " << id << " in " << r.body);
        REQUIRE(found.empty());
        found = p;
      }
    }
    INFO("id " << id << " in " << r.body);
    REQUIRE_FALSE(found.empty());
    return found;
  }
};

} // namespace

TEST_CASE_METHOD(batching,
                 "batch: items answer with their own status, headers and body",
                 "[emulator][batch]") {
  auto upn = std::string{"alex@contoso.example"};
  auto r
      = batch({item("1", "GET", "/users/" + std::string{admin_id}),
               item("2", "GET", "/v1.0/users/" + alex_id + "/calendars"),
               item("3", "get", "users/" + upn),
               item("4", "POST", "/users/" + std::string{admin_id} + "/events",
                    with_body(event_body("Batched"))),
               item("5", "GET", "/users/ghost@contoso.example"),
               item("6", "GET", "/users?$top=1")});
  E2E_REQUIRE_STATUS(r, 200);
  CHECK(r.keys("") == std::vector<std::string>{"responses"});
  REQUIRE(r.size("/responses") == 6);

  auto one = response_of(r, "1");
  CHECK(r.i64(one + "/status") == 200);
  CHECK(r.str(one + "/body/id") == admin_id);
  CHECK(r.str(one + "/body/displayName") == "Ada Admin");
  CHECK(r.str(one + "/headers/Content-Type")
        == "application/json; charset=utf-8");
  CHECK(is_guid(r.str(one + "/headers/request-id")));

  auto two = response_of(r, "2");
  CHECK(r.i64(two + "/status") == 200);
  REQUIRE(r.size(two + "/body/value") == 1);
  CHECK(r.boolean(two + "/body/value/0/isDefaultCalendar"));

  auto three = response_of(r, "3");
  CHECK(r.i64(three + "/status") == 200);
  CHECK(r.str(three + "/body/userPrincipalName") == upn);
  CHECK(r.str(three + "/body/id") == alex_id);

  auto four = response_of(r, "4");
  CHECK(r.i64(four + "/status") == 201);
  CHECK(r.str(four + "/body/subject") == "Batched");
  auto created = r.str(four + "/body/id");

  auto five = response_of(r, "5");
  CHECK(r.i64(five + "/status") == 404);
  CHECK(r.str(five + "/body/error/code") == "Request_ResourceNotFound");
  CHECK(r.str(five + "/body/error/innerError/request-id")
        == r.str(five + "/headers/request-id"));

  // Links inside items are absolute on the host the batch came to.
  auto six = response_of(r, "6");
  CHECK(r.i64(six + "/status") == 200);
  CHECK(r.size(six + "/body/value") == 1);
  CHECK(starts_with(r.str(six + "/body/@odata.nextLink"),
                    origin() + "/v1.0/users?"));

  // The item's write is real.
  auto got = get(event_path(admin_id, created), tok);
  E2E_REQUIRE_STATUS(got, 200);
  CHECK(got.str("/subject") == "Batched");

  // Item headers reach the route: If-Match guards PATCH and DELETE.
  auto etag = got.str("/@odata.etag");
  auto path = "/users/" + std::string{admin_id} + "/events/" + created;
  auto if_match = "\"W/\\\"" + got.str("/changeKey") + "\\\"\"";
  auto w = batch(
      {item("stale", "PATCH", path,
            R"(,"headers":{"Content-Type":"application/json",)"
            R"("If-Match":"W/\"old\""},"body":{"subject":"no"})"),
       item("fresh", "PATCH", path,
            R"(,"headers":{"Content-Type":"application/json","If-Match":)"
                + if_match + R"(},"body":{"subject":"yes"})"),
       item("gone", "DELETE", path)});
  E2E_REQUIRE_STATUS(w, 200);
  auto stale = response_of(w, "stale");
  CHECK(w.i64(stale + "/status") == 412);
  CHECK(w.str(stale + "/body/error/code") == "ErrorIrresolvableConflict");
  auto fresh = response_of(w, "fresh");
  CHECK(w.i64(fresh + "/status") == 200);
  CHECK(w.str(fresh + "/body/subject") == "yes");
  CHECK(w.str(fresh + "/body/@odata.etag") != etag);
  auto gone = response_of(w, "gone");
  CHECK(w.i64(gone + "/status") == 204);
  CHECK_FALSE(w.has(gone + "/body"));
  CHECK_FALSE(w.has(gone + "/headers/Content-Type"));
  check_error(get(event_path(admin_id, created), tok), 404,
              "ErrorItemNotFound");
}

TEST_CASE_METHOD(batching, "batch: at most 20 items", "[emulator][batch]") {
  auto create = [&](int i) {
    return item(std::to_string(i), "POST",
                "/users/" + std::string{admin_id} + "/events",
                with_body(event_body("e" + std::to_string(i))));
  };
  std::vector<std::string> items;
  for (int i = 1; i <= 21; ++i)
    items.push_back(create(i));
  check_error(batch(items), 400, "BadRequest");
  CHECK(state().i64("/events") == 0);

  items.pop_back();
  auto r = batch(items);
  E2E_REQUIRE_STATUS(r, 200);
  REQUIRE(r.size("/responses") == 20);
  for (int i = 1; i <= 20; ++i)
    CHECK(r.i64(response_of(r, std::to_string(i)) + "/status") == 201);
  CHECK(state().i64("/events") == 20);
}

TEST_CASE_METHOD(batching, "batch: malformed batches are refused whole",
                 "[emulator][batch]") {
  const auto create
      = item("1", "POST", "/users/" + std::string{admin_id} + "/events",
             with_body(event_body("e")));
  SECTION("a repeated id") {
    auto again = item("1", "GET", "/users");
    check_error(batch({create, item("2", "GET", "/users"), again}), 400,
                "BadRequest");
  }
  SECTION("an item without url, method or id") {
    check_error(batch({create, R"({"id":"2","method":"GET"})"}), 400,
                "BadRequest");
    check_error(batch({create, R"({"id":"2","url":"/users"})"}), 400,
                "BadRequest");
    check_error(batch({create, R"({"method":"GET","url":"/users"})"}), 400,
                "BadRequest");
    check_error(batch({create, R"({"id":"","method":"GET","url":"/users"})"}),
                400, "BadRequest");
  }
  SECTION("no requests array") {
    check_error(post("/v1.0/$batch", tok, R"({"items":[]})"), 400,
                "BadRequest");
    check_error(post("/v1.0/$batch", tok, R"({"requests":{}})"), 400,
                "BadRequest");
    check_error(post("/v1.0/$batch", tok, R"({"requests":[)"), 400,
                "BadRequest");
    check_error(post("/v1.0/$batch", tok, ""), 400, "BadRequest");
  }
  // Nothing of a refused batch ran.
  CHECK(state().i64("/events") == 0);
}

TEST_CASE_METHOD(batching, "batch: dependsOn", "[emulator][batch]") {
  const std::string events = "/users/" + std::string{admin_id} + "/events";
  SECTION("a failed dependency fails its dependants with 424") {
    auto r
        = batch({item("1", "GET", "/users/ghost@contoso.example"),
                 item("2", "POST", events,
                      with_body(event_body("never")) + depends_on(R"(["1"])")),
                 item("3", "GET", events, depends_on(R"(["2"])")),
                 item("4", "GET", events)});
    E2E_REQUIRE_STATUS(r, 200);
    CHECK(r.i64(response_of(r, "1") + "/status") == 404);
    for (std::string id : {"2", "3"}) {
      INFO("item " << id);
      auto p = response_of(r, id);
      CHECK(r.i64(p + "/status") == 424);
      CHECK(r.str(p + "/body/error/code") == "FailedDependency");
    }
    auto independent = response_of(r, "4");
    CHECK(r.i64(independent + "/status") == 200);
    CHECK(r.size(independent + "/body/value") == 0);
    CHECK(state().i64("/events") == 0);
  }
  SECTION("a successful dependency runs first") {
    auto r
        = batch({item("create", "POST", events, with_body(event_body("first"))),
                 item("list", "GET", events, depends_on(R"(["create"])"))});
    E2E_REQUIRE_STATUS(r, 200);
    auto created = response_of(r, "create");
    REQUIRE(r.i64(created + "/status") == 201);
    auto list = response_of(r, "list");
    CHECK(r.i64(list + "/status") == 200);
    REQUIRE(r.size(list + "/body/value") == 1);
    CHECK(r.str(list + "/body/value/0/id") == r.str(created + "/body/id"));
  }
  SECTION("a dependency on several items") {
    auto r = batch({item("a", "POST", events, with_body(event_body("a"))),
                    item("b", "GET", "/users/nobody@contoso.example"),
                    item("c", "GET", events, depends_on(R"(["a","b"])")),
                    item("d", "GET", events, depends_on(R"(["a"])"))});
    E2E_REQUIRE_STATUS(r, 200);
    CHECK(r.i64(response_of(r, "c") + "/status") == 424);
    CHECK(r.i64(response_of(r, "d") + "/status") == 200);
  }
}

TEST_CASE_METHOD(batching, "batch: ids differing only in case are duplicates",
                 "[emulator][batch]") {
  // BUG: Graph treats batch ids case-insensitively ("must be unique …,
  // case-insensitive", json-batching); the emulator runs "a" and "A" both.
  const std::string events = "/users/" + std::string{admin_id} + "/events";
  check_error(batch({item("a", "POST", events, with_body(event_body("1"))),
                     item("A", "POST", events, with_body(event_body("2")))}),
              400, "BadRequest");
  CHECK(state().i64("/events") == 0);
}

TEST_CASE_METHOD(batching, "batch: the batch itself needs a token",
                 "[emulator][batch][auth]") {
  // BUG: POST /v1.0/$batch skips the authentication every other /v1.0
  // request gets first: without a token it answers 200 (items 401) or,
  // for a malformed body, 400 instead of 401.
  auto body = requests({item("1", "GET", "/users")});
  check_error(send("POST", "/v1.0/$batch", body), 401,
              "InvalidAuthenticationToken");
  check_error(send("POST", "/v1.0/$batch", "{not json"), 401,
              "InvalidAuthenticationToken");
}

TEST_CASE_METHOD(batching,
                 "batch: injected latency delays the batch, not items",
                 "[emulator][batch][faults]") {
  // Items are answered into the batch's own answer; a latency that held
  // each item back would leave them unanswered (once a 500 per item).
  E2E_REQUIRE_STATUS(send("POST", "/_emulator/faults", R"({"latency_ms":30})"),
                     200);
  auto r = batch(
      {item("1", "GET", "/users/" + std::string{admin_id}),
       item("2", "POST", "/users/" + std::string{admin_id} + "/events",
            with_body(event_body("in a slow batch"))),
       item("3", "GET", "/users/" + std::string{admin_id} + "/calendars")});
  E2E_REQUIRE_STATUS(r, 200);
  CHECK(r.i64(response_of(r, "1") + "/status") == 200);
  CHECK(r.i64(response_of(r, "2") + "/status") == 201);
  CHECK(r.i64(response_of(r, "3") + "/status") == 200);
}
