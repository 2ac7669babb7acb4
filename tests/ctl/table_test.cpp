// Unit tests for crmsyncctl's text helpers: table and key/value layout,
// URL encoding, human-readable numbers, the RFC 3339 check and the JSON
// renderers (fed with canned admin API bodies, no node involved).
#include "ctl/format.hpp"
#include "ctl/render.hpp"
#include "ctl/table.hpp"

#include <catch2/catch.hpp>

#include <simdjson.h>

#include <string>

using namespace crmsync::ctl;

namespace {

// Parses canned JSON; the element lives as long as `parser`.
simdjson::dom::element parse(simdjson::dom::parser& parser,
                             const std::string& json) {
  simdjson::dom::element doc;
  std::string err;
  REQUIRE(parse_json(parser, json, doc, err));
  return doc;
}

} // namespace

TEST_CASE("display_width counts code points", "[ctl][table]") {
  CHECK(display_width("") == 0);
  CHECK(display_width("tenant") == 6);
  CHECK(display_width("Z\xC3\xBCrich") == 6);            // Zürich
  CHECK(display_width("\xD0\x9C\xD0\xB8\xD1\x80") == 3); // Мир
  CHECK(display_width("\xE2\x80\xA6") == 1);             // …
  CHECK(display_width("\xF0\x9F\x93\x85 x") == 3);       // 📅 x
}

TEST_CASE("truncate cuts on code points and adds an ellipsis", "[ctl][table]") {
  CHECK(truncate("short", 10) == "short");
  CHECK(truncate("exactly", 7) == "exactly");
  CHECK(truncate("too long title", 8) == "too lon\xE2\x80\xA6");
  CHECK(display_width(truncate("too long title", 8)) == 8);
  // Multi-byte characters are never split.
  CHECK(truncate("\xC3\xBC\xC3\xBC\xC3\xBC\xC3\xBC", 3)
        == "\xC3\xBC\xC3\xBC\xE2\x80\xA6");
  CHECK(truncate("abc", 1) == "\xE2\x80\xA6");
  CHECK(truncate("abc", 0).empty());
  CHECK(truncate("", 0).empty());
}

TEST_CASE("sanitize replaces control characters", "[ctl][table]") {
  CHECK(sanitize("a\nb\tc") == "a b c");
  CHECK(sanitize("\x1B[31mred") == " [31mred");
  CHECK(sanitize("del\x7F") == "del ");
  CHECK(sanitize("c1\xC2\x9B"
                 "x")
        == "c1 x");
  // Ordinary non-ASCII text passes through.
  CHECK(sanitize("Z\xC3\xBCrich \xC2\xA0") == "Z\xC3\xBCrich \xC2\xA0");
}

TEST_CASE("table aligns columns and right-aligns numbers", "[ctl][table]") {
  table t(
      {{"KIND", align::left}, {"LIVE", align::right}, {"NAME", align::left}});
  t.add_row({"tenant", "1", "Acme"});
  t.add_row({"calendar", "12345", "Z\xC3\xBCrich AG"});
  CHECK(t.rows() == 2);
  CHECK(t.render()
        == "KIND       LIVE  NAME\n"
           "tenant        1  Acme\n"
           "calendar  12345  Z\xC3\xBCrich AG\n");
}

TEST_CASE("table truncates, sanitizes and fills missing cells",
          "[ctl][table]") {
  table t({{"ID", align::left},
           {"TITLE", align::left, 6},
           {"ORIGIN", align::left}});
  t.add_row({"e1", "Quarterly review", "crm"});
  t.add_row({"e2", "a\nb"});
  CHECK(t.render()
        == "ID  TITLE   ORIGIN\n"
           "e1  Quart\xE2\x80\xA6  crm\n"
           "e2  a b\n");
}

TEST_CASE("empty table renders only its header", "[ctl][table]") {
  table t({{"ID", align::left}, {"USERS", align::right}});
  CHECK(t.empty());
  CHECK(t.render() == "ID  USERS\n");
}

TEST_CASE("kv_block pads keys across sections", "[ctl][table]") {
  kv_block flat;
  flat.add("node id", "n1");
  flat.add("ready", "yes");
  flat.add("empty", "");
  CHECK(flat.render()
        == "node id  n1\n"
           "ready    yes\n"
           "empty\n");

  kv_block kv;
  kv.section("User");
  kv.add("id", "u1");
  kv.section("Mailbox");
  kv.add("office365 linked", "no");
  CHECK(kv.render()
        == "User\n"
           "  id                u1\n"
           "Mailbox\n"
           "  office365 linked  no\n");
}

TEST_CASE("url_encode keeps only unreserved characters", "[ctl][format]") {
  CHECK(url_encode("0123456789abcdef") == "0123456789abcdef");
  CHECK(url_encode("ann@example.com") == "ann%40example.com");
  CHECK(url_encode("a/b c+d") == "a%2Fb%20c%2Bd");
  CHECK(url_encode("2026-11-26T13:00:00Z") == "2026-11-26T13%3A00%3A00Z");
  CHECK(url_encode("A-Z_a.z~") == "A-Z_a.z~");
  CHECK(url_encode("\xC3\xBC") == "%C3%BC");
  CHECK(url_encode("").empty());
}

TEST_CASE("with_query skips empty values and encodes the rest",
          "[ctl][format]") {
  CHECK(with_query("/t", {}) == "/t");
  CHECK(with_query("/t", {{"limit", ""}, {"cursor", ""}}) == "/t");
  CHECK(with_query("/t", {{"limit", "5"}, {"cursor", "a=b&c"}})
        == "/t?limit=5&cursor=a%3Db%26c");
  CHECK(with_query("/t", {{"from", ""}, {"to", "x y"}}) == "/t?to=x%20y");
}

TEST_CASE("format_bytes uses binary units", "[ctl][format]") {
  CHECK(format_bytes(0) == "0 B");
  CHECK(format_bytes(1023) == "1023 B");
  CHECK(format_bytes(1024) == "1.0 KiB");
  CHECK(format_bytes(1536) == "1.5 KiB");
  CHECK(format_bytes(1048575) == "1.0 MiB");
  CHECK(format_bytes(5ull << 30) == "5.0 GiB");
}

TEST_CASE("durations read naturally", "[ctl][format]") {
  CHECK(format_duration_s(0) == "0s");
  CHECK(format_duration_s(59) == "59s");
  CHECK(format_duration_s(60) == "1m 00s");
  CHECK(format_duration_s(3661) == "1h 01m 01s");
  CHECK(format_duration_s(90061) == "1d 01h 01m");

  CHECK(format_millis(0) == "0ms");
  CHECK(format_millis(999) == "999ms");
  CHECK(format_millis(1000) == "1.0s");
  CHECK(format_millis(1299) == "1.2s");
  CHECK(format_millis(59999) == "59.9s");
  CHECK(format_millis(60000) == "1m 00s");
  CHECK(format_millis(300000) == "5m 00s");
}

TEST_CASE("is_rfc3339 accepts RFC 3339 date-times only", "[ctl][format]") {
  CHECK(is_rfc3339("2026-11-26T13:00:00Z"));
  CHECK(is_rfc3339("2026-11-26t13:00:00z"));
  CHECK(is_rfc3339("2026-11-26T13:00:00.123Z"));
  CHECK(is_rfc3339("2026-11-26T13:00:00+01:00"));
  CHECK(is_rfc3339("2026-12-31T23:59:60-05:30"));

  CHECK_FALSE(is_rfc3339(""));
  CHECK_FALSE(is_rfc3339("2026-11-26"));
  CHECK_FALSE(is_rfc3339("2026-11-26 13:00:00Z"));
  CHECK_FALSE(is_rfc3339("2026-11-26T13:00:00"));
  CHECK_FALSE(is_rfc3339("2026-13-26T13:00:00Z"));
  CHECK_FALSE(is_rfc3339("2026-11-26T24:00:00Z"));
  CHECK_FALSE(is_rfc3339("2026-11-26T13:00:00.Z"));
  CHECK_FALSE(is_rfc3339("2026-11-26T13:00:00+0100"));
  CHECK_FALSE(is_rfc3339("2026-11-26T13:00:00Zjunk"));
  CHECK_FALSE(is_rfc3339("yesterday"));
}

TEST_CASE("json_text shows values for humans", "[ctl][render]") {
  simdjson::dom::parser parser;
  auto doc = parse(parser, R"({"s":"x","i":-3,"u":42,"d":1.5,"t":true,)"
                           R"("f":false,"n":null,"a":[1,"b"],"o":{"k":1}})");
  CHECK(json_text(doc["s"]) == "x");
  CHECK(json_text(doc["i"]) == "-3");
  CHECK(json_text(doc["u"]) == "42");
  CHECK(json_text(doc["d"]) == "1.5");
  CHECK(json_text(doc["t"]) == "yes");
  CHECK(json_text(doc["f"]) == "no");
  CHECK(json_text(doc["n"]) == "-");
  CHECK(json_text(doc["missing"]) == "-");
  CHECK(json_text(doc["a"]) == R"([1,"b"])");
  CHECK(json_text(doc["o"]) == R"({"k":1})");
}

TEST_CASE("parse_json rejects invalid bodies", "[ctl][render]") {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::string err;
  CHECK_FALSE(parse_json(parser, "<html>oops</html>", doc, err));
  CHECK_FALSE(err.empty());
  err.clear();
  CHECK_FALSE(parse_json(parser, "", doc, err));
  CHECK_FALSE(err.empty());
}

TEST_CASE("parse_api_error reads the error envelope", "[ctl][render]") {
  auto e = parse_api_error(
      R"({"error":{"code":"bad_cursor","message":"cursor is stale",)"
      R"("field":"cursor"}})");
  CHECK(e.code == "bad_cursor");
  CHECK(e.message == "cursor is stale");
  CHECK(e.field == "cursor");

  auto partial = parse_api_error(R"({"error":{"message":"no such user"}})");
  CHECK(partial.code.empty());
  CHECK(partial.message == "no such user");

  auto text = parse_api_error("Bad Gateway\r\nmore lines");
  CHECK(text.code.empty());
  CHECK(text.message == "Bad Gateway");

  CHECK(parse_api_error("").message.empty());
}

TEST_CASE("render_status shows key/value lines and an actor table",
          "[ctl][render]") {
  simdjson::dom::parser parser;
  auto doc = parse(parser, R"({
    "node_id":"n1","version":"0.1.0","started_at":"2026-11-26T13:00:00Z",
    "uptime_s":3725,"listen":"127.0.0.1:8080","data_dir":"/var/lib/crmsync",
    "ready":true,
    "storage":{"estimate_keys":123,"live_sst_bytes":2048,
               "memtable_bytes":789},
    "http":{"requests":10,"in_flight":1},
    "actors":{"tenant":{"live":1,"activations":3,"passivations":2},
              "mailbox":{"live":0,"activations":0,"passivations":0},
              "calendar":{"live":12,"activations":130,"passivations":118}}})");
  CHECK(render_status(doc)
        == "node id         n1\n"
           "version         0.1.0\n"
           "started at      2026-11-26T13:00:00Z\n"
           "uptime          1h 02m 05s\n"
           "listen          127.0.0.1:8080\n"
           "data dir        /var/lib/crmsync\n"
           "ready           yes\n"
           "storage keys    ~123\n"
           "live sst        2.0 KiB\n"
           "memtable        789 B\n"
           "http requests   10\n"
           "http in flight  1\n"
           "\n"
           "KIND      LIVE  ACTIVATIONS  PASSIVATIONS\n"
           "tenant       1            3             2\n"
           "mailbox      0            0             0\n"
           "calendar    12          130           118\n");
}

TEST_CASE("render_status tolerates missing fields", "[ctl][render]") {
  simdjson::dom::parser parser;
  auto doc = parse(parser, R"({"node_id":"n2"})");
  std::string out = render_status(doc);
  CHECK(out.rfind("node id         n2\n", 0) == 0);
  CHECK(out.find("uptime          -\n") != std::string::npos);
  CHECK(out.find("KIND") == std::string::npos);
}

TEST_CASE("render_actors lists kinds and live actors", "[ctl][render]") {
  simdjson::dom::parser parser;
  auto doc = parse(parser, R"({"idle_timeout_ms":300000,
    "kinds":[{"kind":"tenant","live":1,"activations":3,"passivations":2}],
    "items":[{"kind":"tenant","id":"00112233aabbccdd","idle_ms":1234,
              "messages":17}]})");
  CHECK(render_actors(doc)
        == "idle timeout  5m 00s\n"
           "\n"
           "KIND    LIVE  ACTIVATIONS  PASSIVATIONS\n"
           "tenant     1            3             2\n"
           "\n"
           "KIND    ID                IDLE  MESSAGES\n"
           "tenant  00112233aabbccdd  1.2s        17\n");

  auto idle = parse(parser, R"({"idle_timeout_ms":500,"kinds":[],
                                "items":[]})");
  CHECK(render_actors(idle)
        == "idle timeout  500ms\n"
           "\n"
           "KIND  LIVE  ACTIVATIONS  PASSIVATIONS\n"
           "\n"
           "no live actors\n");
}

TEST_CASE("render_tenant and render_user", "[ctl][render]") {
  simdjson::dom::parser parser;
  auto tenant = parse(parser, R"({"org":{"id":"t1","name":"Acme",
    "edition":"paid","created_at":"2026-01-01T00:00:00Z",
    "modified_at":"2026-02-01T00:00:00Z","super_admin_id":"u1"},
    "users":3,"events":42,"active":false})");
  CHECK(render_tenant(tenant)
        == "id           t1\n"
           "name         Acme\n"
           "edition      paid\n"
           "created at   2026-01-01T00:00:00Z\n"
           "modified at  2026-02-01T00:00:00Z\n"
           "super admin  u1\n"
           "users        3\n"
           "events       42\n"
           "active       no (actor passivated)\n");

  auto user = parse(parser, R"({"user":{"id":"u1","org_id":"t1",
    "email":"ann@example.com","name":"Ann","profile":"admin",
    "manage_users":true,"view_all_events":true,"super_admin":false,
    "created_at":"c","modified_at":"m"},
    "org":{"id":"t1","name":"Acme","edition":"free"},
    "mailbox":{"active":false,"office365_linked":true},
    "calendar":{"active":true,"state":"syncing"}})");
  CHECK(render_user(user)
        == "User\n"
           "  id                u1\n"
           "  email             ann@example.com\n"
           "  name              Ann\n"
           "  profile           admin\n"
           "  manage users      yes\n"
           "  view all events   yes\n"
           "  super admin       no\n"
           "  created at        c\n"
           "  modified at       m\n"
           "Organization\n"
           "  id                t1\n"
           "  name              Acme\n"
           "  edition           free\n"
           "Mailbox\n"
           "  active            no\n"
           "  office365 linked  yes\n"
           "Calendar\n"
           "  active            yes\n"
           "  state             syncing\n");
}

TEST_CASE("list tables collect rows page by page", "[ctl][render]") {
  simdjson::dom::parser parser;
  table tenants = tenants_table();
  auto page = parse(parser, R"({"items":[{"id":"t1","name":"Acme",
    "edition":"paid","users":3,"created_at":"2026-01-01T00:00:00Z"}],
    "next_cursor":"c1"})");
  add_tenant_rows(page["items"].get_array().value_unsafe(), tenants, {});
  page = parse(parser, R"({"items":[{"id":"t22","name":"Beta",
    "edition":"free","users":120,"created_at":"2026-03-01T00:00:00Z"}],
    "next_cursor":null})");
  add_tenant_rows(page["items"].get_array().value_unsafe(), tenants, {});
  CHECK(tenants.render()
        == "ID   NAME  EDITION  USERS  CREATED\n"
           "t1   Acme  paid         3  2026-01-01T00:00:00Z\n"
           "t22  Beta  free       120  2026-03-01T00:00:00Z\n");

  table events = events_table();
  auto ev = parse(parser, R"({"items":[{"id":"e1","owner":"u1",
    "title":"Quarterly business review with the whole sales team",
    "start":"2026-11-26T13:00:00Z","end":"2026-11-26T14:00:00Z",
    "all_day":false,"location":"","origin":"office365","version":7,
    "created_at":"c","modified_at":"m"}],"next_cursor":null})");
  add_event_rows(ev["items"].get_array().value_unsafe(), events, {});
  std::string out = events.render();
  CHECK(out.rfind("ID  START                 END                   TITLE", 0)
        == 0);
  CHECK(out.find("Quarterly business review with the whol\xE2\x80\xA6"
                 "  office365        7\n")
        != std::string::npos);
}

TEST_CASE("tables name users by e-mail, --wide shows e-mail and id",
          "[ctl][render]") {
  simdjson::dom::parser parser;
  people who;
  who.email_of = {{"u1", "ada@contoso.example"}, {"u2", "bob@contoso.example"}};
  auto page = parse(parser, R"({"items":[
    {"at":"2026-01-01T00:00:00Z","actor":"u1","action":"invite.created",
     "detail":"d"},
    {"at":"2026-01-02T00:00:00Z","actor":"service_admin","action":"x",
     "detail":""}],"next_cursor":null})");
  table audit = audit_table();
  add_audit_rows(page["items"].get_array().value_unsafe(), audit, who);
  auto out = audit.render();
  CHECK(out.find("ada@contoso.example") != std::string::npos);
  CHECK(out.find(" u1 ") == std::string::npos);
  CHECK(out.find("service_admin") != std::string::npos); // unknown: as sent

  auto invites = parse(parser, R"({"items":[{"id":"i1",
    "email":"carol@contoso.example","status":"accepted","invited_by":"u1",
    "user":"u2","expires":"e"}],"next_cursor":null})");
  table inv = invites_table();
  add_invite_rows(invites["items"].get_array().value_unsafe(), inv, who);
  out = inv.render();
  CHECK(out.find("ada@contoso.example") != std::string::npos);
  CHECK(out.find("bob@contoso.example") != std::string::npos);
  CHECK(out.find("u2") == std::string::npos);

  who.wide = true;
  table wide = invites_table();
  add_invite_rows(invites["items"].get_array().value_unsafe(), wide, who);
  out = wide.render();
  CHECK(out.find("ada@contoso.example (u1)") != std::string::npos);
  CHECK(out.find("bob@contoso.example (u2)") != std::string::npos);

  auto joins = parse(parser, R"({"items":[{"id":"j1",
    "email":"dan@contoso.example","status":"approved","approved_by":"u1",
    "user":null,"created":"c"}],"next_cursor":null})");
  table jr = join_requests_table();
  who.wide = false;
  add_join_request_rows(joins["items"].get_array().value_unsafe(), jr, who);
  CHECK(jr.render().find("ada@contoso.example") != std::string::npos);
}
