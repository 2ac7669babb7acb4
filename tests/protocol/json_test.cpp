#include "protocol/json.hpp"

#include <catch2/catch.hpp>

using namespace crmsync;

namespace {

api_error err_of(const caf::error& e) {
  REQUIRE(e);
  return to_api_error(e);
}

} // namespace

TEST_CASE("strings are escaped and invalid UTF-8 replaced",
          "[protocol][json]") {
  std::string out;
  json::append_string(out, "a\"b\\c\n\x01 \xc3\xa9");
  CHECK(out == "\"a\\\"b\\\\c\\n\\u0001 \xc3\xa9\"");
  out.clear();
  json::append_string(out, "x\xff\xc3");
  CHECK(out == "\"x\xef\xbf\xbd\xef\xbf\xbd\"");
  out.clear();
  json::append_string(out, "\xed\xa0\x80"); // a UTF-16 surrogate
  CHECK(out == "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
}

TEST_CASE("the writer places commas", "[protocol][json]") {
  json::writer w;
  w.begin_object().key("a").value(int64_t{1}).key("b").begin_array();
  w.value("x").value(true).null().begin_object().end_object();
  w.end_array().key("c").raw("{\"d\":2}").end_object();
  CHECK(w.str() == "{\"a\":1,\"b\":[\"x\",true,null,{}],\"c\":{\"d\":2}}");
}

TEST_CASE("a valid event body decodes", "[protocol][json]") {
  event_record e;
  REQUIRE_FALSE(json::decode_event_create(
      R"({"title":"Demo","start":"2026-12-01T10:00:00Z","end":"2026-12-01T11:00:00+01:00",
        "location":"Room","description":"d","participants":["A@B.com",{"email":"c@d.org","name":"C"}]})",
      e));
  CHECK(e.title == "Demo");
  CHECK(e.start_ms == e.end_ms); // 11:00+01:00 is 10:00Z
  CHECK_FALSE(e.all_day);
  REQUIRE(e.participants.size() == 2);
  CHECK(e.participants[0].email == "a@b.com");
  CHECK(e.participants[1].name == "C");
}

TEST_CASE("all-day events take dates with an exclusive end",
          "[protocol][json]") {
  event_record e;
  REQUIRE_FALSE(json::decode_event_create(
      R"({"title":"Off","all_day":true,"start":"2026-12-24","end":"2026-12-27"})",
      e));
  CHECK(e.all_day);
  CHECK(e.end_ms - e.start_ms == 3 * 86'400'000);
  auto same_day = err_of(json::decode_event_create(
      R"({"title":"Off","all_day":true,"start":"2026-12-24","end":"2026-12-24"})",
      e));
  CHECK(same_day.field == "end");
  auto timed = err_of(json::decode_event_create(
      R"({"title":"Off","all_day":true,"start":"2026-12-24T00:00:00Z","end":"2026-12-25"})",
      e));
  CHECK(timed.field == "start");
}

TEST_CASE("bad event bodies name the field", "[protocol][json]") {
  struct bad_case {
    const char* body;
    const char* field;
    const char* code;
  };
  bad_case cases[] = {
      {"", "", "malformed_json"},
      {"{", "", "malformed_json"},
      {"[1]", "", "malformed_json"},
      {R"({"start":"2026-12-01T10:00:00Z","end":"2026-12-01T11:00:00Z"})",
       "title", "missing_field"},
      {R"({"title":"  ","start":"2026-12-01T10:00:00Z","end":"2026-12-01T11:00:00Z"})",
       "title", "invalid_field"},
      {R"({"title":5,"start":"2026-12-01T10:00:00Z","end":"2026-12-01T11:00:00Z"})",
       "title", "invalid_field"},
      {R"({"title":"t","end":"2026-12-01T11:00:00Z"})", "start",
       "missing_field"},
      {R"({"title":"t","start":"tomorrow","end":"2026-12-01T11:00:00Z"})",
       "start", "invalid_field"},
      {R"({"title":"t","start":"2026-12-01T12:00:00Z","end":"2026-12-01T11:00:00Z"})",
       "end", "invalid_field"},
      {R"({"title":"t","start":"2026-12-01T10:00:00Z","end":"2026-12-01T11:00:00Z","colour":"red"})",
       "colour", "unknown_field"},
      {R"({"title":"t","start":"2026-12-01T10:00:00Z","end":"2026-12-01T11:00:00Z","all_day":"yes"})",
       "all_day", "invalid_field"},
      {R"({"title":"t","start":"2026-12-01T10:00:00Z","end":"2026-12-01T11:00:00Z","participants":["nobody"]})",
       "participants[0]", "invalid_field"},
      {R"({"title":"t","start":"2026-12-01T10:00:00Z","end":"2026-12-01T11:00:00Z","participants":[{"name":"x"}]})",
       "participants[0].email", "missing_field"},
  };
  for (auto& c : cases) {
    INFO(c.body);
    event_record e;
    auto err = err_of(json::decode_event_create(c.body, e));
    CHECK(err.status == 400);
    CHECK(err.field == c.field);
    CHECK(err.code == c.code);
  }
  event_record e;
  auto long_title = err_of(json::decode_event_create(
      "{\"title\":\"" + std::string(300, 'x')
          + R"(","start":"2026-12-01T10:00:00Z","end":"2026-12-01T11:00:00Z"})",
      e));
  CHECK(long_title.field == "title");
}

TEST_CASE("patches record which fields change", "[protocol][json]") {
  event_patch p;
  uint64_t version = 0;
  REQUIRE_FALSE(
      json::decode_event_patch(R"({"title":"New","version":3})", p, version));
  CHECK(p.has(event_patch::f_title));
  CHECK_FALSE(p.has(event_patch::f_start));
  CHECK(version == 3);
  event_patch empty;
  CHECK(err_of(json::decode_event_patch("{}", empty, version)).code
        == "empty_patch");
  event_patch v0;
  CHECK(err_of(json::decode_event_patch(R"({"title":"x","version":0})", v0,
                                        version))
            .field
        == "version");
  event_patch mismatch;
  CHECK(err_of(json::decode_event_patch(
                   R"({"all_day":true,"start":"2026-12-01T10:00:00Z"})",
                   mismatch, version))
            .field
        == "start");
}

TEST_CASE("imports and mass updates locate errors", "[protocol][json]") {
  user_id owner;
  std::vector<event_record> events;
  auto err = err_of(json::decode_import(
      R"({"owner":"00000000000000aa","events":[
        {"title":"a","start":"2026-12-01T10:00:00Z","end":"2026-12-01T11:00:00Z"},
        {"title":"b","start":"2026-12-01T10:00:00Z"}]})",
      owner, events, 10));
  CHECK(err.field == "events[1].end");
  events.clear();
  REQUIRE_FALSE(json::decode_import(
      R"({"owner":"00000000000000aa","events":[
        {"title":"a","start":"2026-12-01T10:00:00Z","end":"2026-12-01T11:00:00Z"}]})",
      owner, events, 10));
  CHECK(owner == user_id{0xaa});
  CHECK(events.size() == 1);
  events.clear();
  CHECK(err_of(json::decode_import(R"({"owner":"xyz","events":[]})", owner,
                                   events, 10))
            .field
        == "owner");
  std::vector<event_id> ids;
  event_patch p;
  CHECK(err_of(json::decode_mass_update(
                   R"({"ids":["00000000000000aa","bad"],"set":{"title":"x"}})",
                   ids, p, 10))
            .field
        == "ids[1]");
  ids.clear();
  CHECK(err_of(json::decode_mass_update(
                   R"({"ids":["00000000000000aa"],"set":{"version":2}})", ids,
                   p, 10))
            .field
        == "set.version");
}

TEST_CASE("organizations and users validate e-mail and enums",
          "[protocol][json]") {
  json::org_body org;
  REQUIRE_FALSE(json::decode_org_create(
      R"({"name":"Acme","edition":"paid","admin":{"email":" Boss@Acme.COM ","name":"B"}})",
      org));
  CHECK(org.admin_email == "boss@acme.com");
  CHECK(org.plan == edition::paid);
  CHECK(
      err_of(
          json::decode_org_create(
              R"({"name":"Acme","edition":"gold","admin":{"email":"a@b.c","name":"B"}})",
              org))
          .field
      == "edition");
  CHECK(
      err_of(
          json::decode_org_create(
              R"({"name":"Acme","edition":"free","admin":{"email":"a@b.c","name":"B","password":"short"}})",
              org))
          .field
      == "admin.password");
  json::user_body u;
  CHECK(err_of(json::decode_user_create(
                   R"({"email":"a@@b.c","name":"x","profile":"standard"})", u))
            .field
        == "email");
  CHECK(err_of(json::decode_user_create(
                   R"({"email":"a@b.c","name":"x","profile":"root"})", u))
            .field
        == "profile");
  // The permissions a new user may be given.
  json::user_body granted;
  REQUIRE_FALSE(json::decode_user_create(
      R"({"email":"a@b.c","name":"x","profile":"administrator",)"
      R"("view_all_events":true,"super_admin":true})",
      granted));
  CHECK(granted.view_all_events);
  CHECK(granted.super_admin);
  CHECK_FALSE(granted.manage_users);
  CHECK(err_of(json::decode_user_create(
                   R"({"email":"a@b.c","name":"x","profile":"standard",)"
                   R"("view_all_events":"yes"})",
                   u))
            .field
        == "view_all_events");
  CHECK(err_of(json::decode_user_create(
                   R"({"email":"a@b.c","name":"x","profile":"standard",)"
                   R"("super_admin":true})",
                   u))
            .field
        == "super_admin");
  std::string out;
  CHECK(json::normalize_email("A.B+tag@Example.ORG", out));
  CHECK(out == "a.b+tag@example.org");
  for (const char* bad : {"", "@x.y", "a@", "a@b", "a b@c.d", "a@b..c",
                          "a@.b.c", "a@b.c.", "<a@b.c>"})
    CHECK_FALSE(json::normalize_email(bad, out));
}

TEST_CASE("a repeated member is refused", "[protocol][json]") {
  std::vector<event_id> ids;
  event_patch p;
  auto e = err_of(json::decode_mass_update(
      R"({"ids":["00000000000000aa"],"ids":["00000000000000bb"],"set":{"title":"x"}})",
      ids, p, 1));
  CHECK(e.code == "duplicate_field");
  CHECK(e.field == "ids");
  event_record ev;
  CHECK(
      err_of(
          json::decode_event_create(
              R"({"title":"a","title":"b","start":"2026-12-01T10:00:00Z","end":"2026-12-01T11:00:00Z"})",
              ev))
          .code
      == "duplicate_field");
}

TEST_CASE("invitation bodies name Office 365 users", "[protocol][json]") {
  std::vector<std::string> ids;
  REQUIRE_FALSE(json::decode_invites_create(
      R"({"office365_user_ids":["a0000000-0000-4000-8000-000000000002","b1"]})",
      ids, 100));
  CHECK(ids
        == std::vector<std::string>{"a0000000-0000-4000-8000-000000000002",
                                    "b1"});
  auto refused = [](std::string_view body, const char* code) {
    std::vector<std::string> out;
    auto e = err_of(json::decode_invites_create(body, out, 3));
    CHECK(e.status == 400);
    CHECK(e.code == code);
    return e;
  };
  CHECK(refused("{}", "missing_field").field == "office365_user_ids");
  CHECK(refused(R"({"office365_user_ids":[]})", "invalid_field").field
        == "office365_user_ids");
  refused(R"({"office365_user_ids":["a","b","c","d"]})", "invalid_field");
  refused(R"({"office365_user_ids":["a","a"]})", "invalid_field");
  refused(R"({"office365_user_ids":["a/../b"]})", "invalid_field");
  refused(R"({"office365_user_ids":[7]})", "invalid_field");
  refused(R"({"office365_user_ids":"a"})", "invalid_field");
  refused(R"({"office365_user_ids":["a"],"x":1})", "unknown_field");
}

TEST_CASE("accepting an invitation needs the terms accepted",
          "[protocol][json]") {
  json::accept_body b;
  REQUIRE_FALSE(json::decode_invite_accept(R"({"accept_terms":true})", b));
  CHECK(b.accept_terms);
  CHECK_FALSE(b.associate);
  json::accept_body a;
  REQUIRE_FALSE(json::decode_invite_accept(
      R"({"accept_terms":true,"associate":{"email":" Me@Acme.Example ","password":"pw"}})",
      a));
  CHECK(a.associate);
  CHECK(a.account.email == "me@acme.example");
  CHECK(a.account.password == "pw");

  json::accept_body x;
  auto no = err_of(json::decode_invite_accept(R"({"accept_terms":false})", x));
  CHECK(no.code == "terms_not_accepted");
  CHECK(no.field == "accept_terms");
  CHECK(err_of(json::decode_invite_accept("{}", x)).field == "accept_terms");
  CHECK(err_of(json::decode_invite_accept(
                   R"({"accept_terms":true,"associate":{"email":"a@b.c"}})", x))
            .field
        == "associate.password");
  CHECK(
      err_of(
          json::decode_invite_accept(
              R"({"accept_terms":true,"associate":{"email":"nope","password":"p"}})",
              x))
          .field
      == "associate.email");
  json::credentials c;
  CHECK(err_of(json::decode_credentials(R"({"email":"a@b.c"})", c)).field
        == "password");
}

TEST_CASE("Graph user objects are read leniently", "[protocol][json]") {
  json::graph_user u;
  REQUIRE(json::decode_graph_user(
      R"({"@odata.context":"x","id":"oid-1","displayName":"Bob","userPrincipalName":"bob@c.example","mail":null,"jobTitle":"x"})",
      u));
  CHECK(u.id == "oid-1");
  CHECK(u.display_name == "Bob");
  CHECK(u.user_principal_name == "bob@c.example");
  CHECK(u.mail.empty());
  CHECK_FALSE(json::decode_graph_user(R"({"displayName":"no id"})", u));
  CHECK_FALSE(json::decode_graph_user("[1]", u));
  CHECK_FALSE(json::decode_graph_user("{", u));
}

TEST_CASE("a calendar status shows its state by name", "[protocol][json]") {
  calendar_status s;
  s.state = calendar_state::initial_sync;
  json::writer w;
  json::write_calendar_status(w, s);
  auto out = w.take();
  CHECK(out.find("\"state\":\"initial_sync\"") != std::string::npos);
}

TEST_CASE("a user PATCH says which fields change", "[json][lifecycle]") {
  user_patch p;
  REQUIRE_FALSE(json::decode_user_patch(
      R"({"name":"Carol","manage_users":false,"profile":"administrator"})", p));
  CHECK(p.set_name);
  CHECK(p.name == "Carol");
  CHECK(p.set_manage_users);
  CHECK_FALSE(p.manage_users);
  CHECK(p.set_role);
  CHECK(p.role == profile::administrator);
  CHECK_FALSE(p.set_view_all_events);
  CHECK_FALSE(p.set_super_admin);
  CHECK_FALSE(p.set_active);
  user_patch q;
  CHECK(err_of(json::decode_user_patch("{}", q)).code == "empty_patch");
  CHECK(err_of(json::decode_user_patch(R"({"profile":"root"})", q)).field
        == "profile");
  CHECK(err_of(json::decode_user_patch(R"({"super_admin":1})", q)).field
        == "super_admin");
  // Deactivation has its own route; an e-mail never changes.
  CHECK(err_of(json::decode_user_patch(R"({"active":false})", q)).code
        == "unknown_field");
  CHECK(err_of(json::decode_user_patch(R"({"email":"x@y.z"})", q)).code
        == "unknown_field");
}
