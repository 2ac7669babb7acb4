// End-to-end: every error path answers precisely and changes nothing.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>

#include "tests/support/api_client.hpp"

using namespace crmsync::e2e;

namespace {

// A known org/user/event whose stored state must survive every bad request.
struct baseline {
  api_client& api;
  org_info org;
  user_info user;
  std::string event_id;
  std::string org_json, user_json, event_json, users_json, events_json;

  explicit baseline(api_client& a) : api(a) {
    org = create_org(api, "Acme", "admin@acme.example");
    user = create_user(api, org.admin_token, org.id, "sam@acme.example", "Sam");
    auto e = create_event(api, org.id, user,
                          event_body("Baseline", "2026-06-01T09:00:00Z",
                                     "2026-06-01T10:00:00Z",
                                     ",\"location\":\"HQ\""));
    event_id = e.str("/id");
    snapshot(org_json, user_json, event_json, users_json, events_json);
  }

  void snapshot(std::string& o, std::string& u, std::string& e, std::string& us,
                std::string& es) {
    auto ro = api.get(org.admin_token, org_path(org.id));
    auto ru = api.get(org.admin_token, user_path(org.id, user.id));
    auto re = api.get(org.admin_token, event_path(org.id, event_id));
    auto rus = api.get(org.admin_token, users_path(org.id));
    auto res = api.get(org.admin_token, user_events_path(org.id, user.id));
    REQUIRE(ro.status == 200);
    REQUIRE(ru.status == 200);
    REQUIRE(re.status == 200);
    REQUIRE(rus.status == 200);
    REQUIRE(res.status == 200);
    o = ro.json();
    u = ru.json();
    e = re.json();
    us = rus.json();
    es = res.json();
  }

  // Re-reads everything and compares with the first snapshot.
  void check_unchanged() {
    std::string o, u, e, us, es;
    snapshot(o, u, e, us, es);
    CHECK(o == org_json);
    CHECK(u == user_json);
    CHECK(e == event_json);
    CHECK(us == users_json);
    CHECK(es == events_json);
  }

  std::string ev() const {
    return event_path(org.id, event_id);
  }
  std::string evs() const {
    return user_events_path(org.id, user.id);
  }
};

} // namespace

TEST_CASE("errors: bad bodies are 400 with the field named", "[e2e][errors]") {
  test_node node;
  auto& api = node.api();
  baseline base{api};
  const auto& tok = base.org.admin_token;

  struct bad_case {
    std::string target;
    std::string method;
    std::string body;
    std::string code;
    std::string field; // "" = no field expected
  };
  const std::string orgs = "/api/v1/orgs";
  const std::string users = users_path(base.org.id);
  const std::string imp = org_path(base.org.id) + "/events/import";
  const std::string mass = org_path(base.org.id) + "/events/mass-update";
  const std::string owner = json_str(base.user.id);
  const std::string ev_ok
      = event_body("T", "2026-06-02T09:00:00Z", "2026-06-02T10:00:00Z");
  const std::string eid = json_str(base.event_id);
  auto ev_with = [](const std::string& fields) {
    return "{" + fields + "}";
  };
  const std::string se
      = R"("start":"2026-06-02T09:00:00Z","end":"2026-06-02T10:00:00Z")";

  std::vector<bad_case> cases{
      // malformed JSON / not an object
      {base.evs(), "POST", R"({"title":)", "malformed_json", ""},
      {base.evs(), "POST", R"({"title":"x",})", "malformed_json", ""},
      {base.evs(), "POST", "not json at all", "malformed_json", ""},
      {base.evs(), "POST", R"([1,2,3])", "malformed_json", ""},
      {base.evs(), "POST", R"("just a string")", "malformed_json", ""},
      {base.evs(), "POST", "42", "malformed_json", ""},
      {base.evs(), "POST", "null", "malformed_json", ""},
      {base.ev(), "PATCH", "[]", "malformed_json", ""},
      {orgs, "POST", "{", "malformed_json", ""},
      {users, "POST", "true", "malformed_json", ""},
      {mass, "POST", R"({"ids":[)", "malformed_json", ""},
      // unknown fields
      {base.evs(), "POST",
       ev_with(R"("title":"x",)" + se + R"(,"colour":"red")"), "unknown_field",
       "colour"},
      {base.evs(), "POST",
       ev_with(R"("title":"x",)" + se
               + R"(,"participants":[{"email":"a@b.example","phone":"1"}])"),
       "unknown_field", "participants[0].phone"},
      {base.ev(), "PATCH", R"({"owner":"0000000000000001"})", "unknown_field",
       "owner"},
      {base.ev(), "PATCH", R"({"id":"0000000000000001"})", "unknown_field",
       "id"},
      {base.ev(), "PATCH", R"({"origin":"imported"})", "unknown_field",
       "origin"},
      {orgs, "POST",
       R"({"name":"X","edition":"free","admin":{"email":"x@x.example","name":"X","role":"god"}})",
       "unknown_field", "admin.role"},
      {orgs, "POST",
       R"({"name":"X","edition":"free","plan":"paid","admin":{"email":"x@x.example","name":"X"}})",
       "unknown_field", "plan"},
      {users, "POST",
       R"({"email":"x@acme.example","name":"X","profile":"standard","token":"crm_x"})",
       "unknown_field", "token"},
      // super_admin is a field now (only a super administrator may set
      // it), but only with the administrator profile.
      {users, "POST",
       R"({"email":"x@acme.example","name":"X","profile":"standard","super_admin":true})",
       "invalid_field", "super_admin"},
      {org_path(base.org.id), "PATCH", R"({"name":"X","users":5})",
       "unknown_field", "users"},
      {imp, "POST",
       "{\"owner\":" + owner + ",\"events\":[" + ev_ok + "," + ev_ok + ","
           + ev_with(R"("title":"x",)" + se + R"(,"bogus":1)") + "]}",
       "unknown_field", "events[2].bogus"},
      {imp, "POST",
       "{\"owner\":" + owner + ",\"events\":[" + ev_ok + "],\"extra\":1}",
       "unknown_field", "extra"},
      {mass, "POST", "{\"ids\":[" + eid + "],\"set\":{\"version\":1}}",
       "unknown_field", "set.version"},
      {mass, "POST", "{\"ids\":[" + eid + "],\"set\":{\"owner\":\"x\"}}",
       "unknown_field", "set.owner"},
      // missing required fields
      {base.evs(), "POST", ev_with(se), "missing_field", "title"},
      {base.evs(), "POST", R"({"title":"x","end":"2026-06-02T10:00:00Z"})",
       "missing_field", "start"},
      {base.evs(), "POST", R"({"title":"x","start":"2026-06-02T10:00:00Z"})",
       "missing_field", "end"},
      {base.evs(), "POST", "{}", "missing_field", "title"},
      {base.evs(), "POST",
       ev_with(R"("title":"x",)" + se
               + R"(,"participants":[{"name":"No Mail"}])"),
       "missing_field", "participants[0].email"},
      {orgs, "POST",
       R"({"edition":"free","admin":{"email":"x@x.example","name":"X"}})",
       "missing_field", "name"},
      {orgs, "POST",
       R"({"name":"X","admin":{"email":"x@x.example","name":"X"}})",
       "missing_field", "edition"},
      {orgs, "POST", R"({"name":"X","edition":"free"})", "missing_field",
       "admin"},
      {orgs, "POST", R"({"name":"X","edition":"free","admin":{"name":"X"}})",
       "missing_field", "admin.email"},
      {orgs, "POST",
       R"({"name":"X","edition":"free","admin":{"email":"x@x.example"}})",
       "missing_field", "admin.name"},
      {users, "POST", R"({"name":"X","profile":"standard"})", "missing_field",
       "email"},
      {users, "POST", R"({"email":"x@acme.example","profile":"standard"})",
       "missing_field", "name"},
      {users, "POST", R"({"email":"x@acme.example","name":"X"})",
       "missing_field", "profile"},
      {imp, "POST", "{\"events\":[" + ev_ok + "]}", "missing_field", "owner"},
      {imp, "POST", "{\"owner\":" + owner + "}", "missing_field", "events"},
      {imp, "POST",
       "{\"owner\":" + owner + ",\"events\":[" + ev_with(se) + "]}",
       "missing_field", "events[0].title"},
      {mass, "POST", R"({"set":{"title":"x"}})", "missing_field", "ids"},
      {mass, "POST", "{\"ids\":[" + eid + "]}", "missing_field", "set"},
      // empty patches
      {base.ev(), "PATCH", "{}", "empty_patch", ""},
      {base.ev(), "PATCH", R"({"version":1})", "empty_patch", ""},
      {org_path(base.org.id), "PATCH", "{}", "empty_patch", ""},
      {mass, "POST", "{\"ids\":[" + eid + "],\"set\":{}}", "empty_patch",
       "set"},
      // wrong types and values
      {base.evs(), "POST", ev_with(R"("title":5,)" + se), "invalid_field",
       "title"},
      {base.evs(), "POST", ev_with(R"("title":"   ",)" + se), "invalid_field",
       "title"},
      {base.evs(), "POST",
       ev_with(R"("title":"x",)" + se + R"(,"all_day":"yes")"), "invalid_field",
       "all_day"},
      {base.evs(), "POST",
       ev_with(R"("title":"x",)" + se + R"(,"location":["a"])"),
       "invalid_field", "location"},
      {base.evs(), "POST",
       ev_with(R"("title":"x",)" + se + R"(,"description":{})"),
       "invalid_field", "description"},
      {base.evs(), "POST",
       ev_with(R"("title":"x",)" + se + R"(,"participants":"a@b.example")"),
       "invalid_field", "participants"},
      {base.evs(), "POST",
       ev_with(R"("title":"x",)" + se + R"(,"participants":["not-an-email"])"),
       "invalid_field", "participants[0]"},
      {base.evs(), "POST",
       ev_with(R"("title":"x",)" + se + R"(,"participants":["a@b.example",7])"),
       "invalid_field", "participants[1]"},
      {base.evs(), "POST",
       ev_with(R"("title":")" + std::string(256, 'x') + "\"," + se),
       "invalid_field", "title"},
      {base.evs(), "POST",
       ev_with(
           R"("title":"x","start":1780000000,"end":"2026-06-02T10:00:00Z")"),
       "invalid_field", "start"},
      {base.ev(), "PATCH", R"({"title":"x","version":"1"})", "invalid_field",
       "version"},
      {base.ev(), "PATCH", R"({"title":"x","version":0})", "invalid_field",
       "version"},
      {base.ev(), "PATCH", R"({"title":"x","version":-1})", "invalid_field",
       "version"},
      {base.ev(), "PATCH", R"({"title":"x","version":1.5})", "invalid_field",
       "version"},
      {base.ev(), "PATCH", R"({"title":null})", "invalid_field", "title"},
      {base.ev(), "PATCH", R"({"all_day":true,"start":"2026-06-01T09:00:00Z"})",
       "invalid_field", "start"},
      {base.ev(), "PATCH", R"({"all_day":true})", "invalid_field", "start"},
      {orgs, "POST",
       R"({"name":"X","edition":"gold","admin":{"email":"x@x.example","name":"X"}})",
       "invalid_field", "edition"},
      {orgs, "POST", R"({"name":"X","edition":"free","admin":"x@x.example"})",
       "invalid_field", "admin"},
      {orgs, "POST",
       R"({"name":"X","edition":"free","admin":{"email":"nope","name":"X"}})",
       "invalid_field", "admin.email"},
      {orgs, "POST",
       R"({"name":"X","edition":"free","admin":{"email":"x@x.example","name":"X","password":"short"}})",
       "invalid_field", "admin.password"},
      {org_path(base.org.id), "PATCH", R"({"edition":"platinum"})",
       "invalid_field", "edition"},
      {org_path(base.org.id), "PATCH", R"({"name":""})", "invalid_field",
       "name"},
      {users, "POST",
       R"({"email":"x@acme.example","name":"X","profile":"boss"})",
       "invalid_field", "profile"},
      {users, "POST",
       R"({"email":"x@acme.example","name":"X","profile":"standard","manage_users":"true"})",
       "invalid_field", "manage_users"},
      {users, "POST",
       R"({"email":"x@@acme.example","name":"X","profile":"standard"})",
       "invalid_field", "email"},
      {users, "POST", R"({"email":"x@acme","name":"X","profile":"standard"})",
       "invalid_field", "email"},
      {users, "POST",
       R"({"email":"x@acme.example","name":"X","profile":"standard","password":"1234567"})",
       "invalid_field", "password"},
      {imp, "POST", "{\"owner\":" + owner + ",\"events\":[]}", "invalid_field",
       "events"},
      {imp, "POST", "{\"owner\":" + owner + ",\"events\":{}}", "invalid_field",
       "events"},
      {imp, "POST", "{\"owner\":" + owner + ",\"events\":[" + ev_ok + ",3]}",
       "invalid_field", "events[1]"},
      {imp, "POST", "{\"owner\":\"nobody\",\"events\":[" + ev_ok + "]}",
       "invalid_field", "owner"},
      {imp, "POST", "{\"owner\":12,\"events\":[" + ev_ok + "]}",
       "invalid_field", "owner"},
      {mass, "POST", R"({"ids":[],"set":{"title":"x"}})", "invalid_field",
       "ids"},
      {mass, "POST", "{\"ids\":[" + eid + ",\"zz\"],\"set\":{\"title\":\"x\"}}",
       "invalid_field", "ids[1]"},
      {mass, "POST", "{\"ids\":[" + eid + ",5],\"set\":{\"title\":\"x\"}}",
       "invalid_field", "ids[1]"},
      {mass, "POST", "{\"ids\":" + eid + ",\"set\":{\"title\":\"x\"}}",
       "invalid_field", "ids"},
      {mass, "POST", "{\"ids\":[" + eid + "],\"set\":[]}", "invalid_field",
       "set"},
      {mass, "POST", "{\"ids\":[" + eid + "],\"set\":{\"start\":\"tomorrow\"}}",
       "invalid_field", "set.start"},
      // bad RFC 3339
      {base.evs(), "POST",
       event_body("x", "2026-13-01T09:00:00Z", "2026-06-02T10:00:00Z"),
       "invalid_field", "start"},
      {base.evs(), "POST",
       event_body("x", "2026-02-30T09:00:00Z", "2026-06-02T10:00:00Z"),
       "invalid_field", "start"},
      {base.evs(), "POST",
       event_body("x", "2026-06-02T24:00:00Z", "2026-06-02T10:00:00Z"),
       "invalid_field", "start"},
      {base.evs(), "POST",
       event_body("x", "2026-06-02T09:60:00Z", "2026-06-02T10:00:00Z"),
       "invalid_field", "start"},
      {base.evs(), "POST",
       event_body("x", "2026-06-02T09:00:60Z", "2026-06-02T10:00:00Z"),
       "invalid_field", "start"},
      {base.evs(), "POST",
       event_body("x", "2026-06-02 09:00:00Z", "2026-06-02T10:00:00Z"),
       "invalid_field", "start"},
      {base.evs(), "POST",
       event_body("x", "2026-06-02T09:00:00", "2026-06-02T10:00:00Z"),
       "invalid_field", "start"},
      {base.evs(), "POST",
       event_body("x", "2026-06-02T09:00:00+0200", "2026-06-02T10:00:00Z"),
       "invalid_field", "start"},
      {base.evs(), "POST",
       event_body("x", "2026-06-02T09:00:00.Z", "2026-06-02T10:00:00Z"),
       "invalid_field", "start"},
      {base.evs(), "POST",
       event_body("x", "2026-06-02T09:00:00Zjunk", "2026-06-02T10:00:00Z"),
       "invalid_field", "start"},
      {base.evs(), "POST", event_body("x", "yesterday", "2026-06-02T10:00:00Z"),
       "invalid_field", "start"},
      {base.evs(), "POST", event_body("x", "", "2026-06-02T10:00:00Z"),
       "invalid_field", "start"},
      {base.evs(), "POST",
       event_body("x", "2026-06-02T09:00:00Z", "2026-06-02T10:00Z"),
       "invalid_field", "end"},
      {base.ev(), "PATCH", R"({"start":"2026-06-01T09:00:00 Z"})",
       "invalid_field", "start"},
      // end before start
      {base.evs(), "POST",
       event_body("x", "2026-06-02T10:00:00Z", "2026-06-02T09:59:59Z"),
       "invalid_field", "end"},
      {base.evs(), "POST",
       event_body("x", "2026-06-03", "2026-06-02", ",\"all_day\":true"),
       "invalid_field", "end"},
      {base.ev(), "PATCH", R"({"start":"2026-06-01T10:00:01Z"})",
       "invalid_field", "end"},
      {base.ev(), "PATCH",
       R"({"start":"2026-06-01T11:00:00Z","end":"2026-06-01T10:30:00Z"})",
       "invalid_field", "end"},
  };
  for (auto& c : cases) {
    INFO(c.method << " " << c.target << " " << c.body.substr(0, 300));
    // Creating organizations is for the service admin only.
    auto r = api.request(c.method, c.target,
                         c.target == orgs ? admin_token : tok, c.body);
    INFO(r.describe());
    CHECK(r.status == 400);
    CHECK(r.error_code() == c.code);
    CHECK(r.error_field() == c.field);
    CHECK(r.has("/error/message"));
    CHECK(r.header("Content-Type").rfind("application/json", 0) == 0);
    base.check_unchanged();
  }

  // Size limits inside the JSON (the bodies themselves are well under 1 MiB).
  auto long_desc
      = api.post(tok, base.evs(),
                 event_body("x", "2026-06-02T09:00:00Z", "2026-06-02T10:00:00Z",
                            ",\"description\":"
                                + json_str(std::string(32 * 1024 + 1, 'd'))));
  CHECK(long_desc.status == 400);
  CHECK(long_desc.error_field() == "description");
  auto max_desc = api.post(
      tok, base.evs(),
      event_body("x", "2026-06-02T09:00:00Z", "2026-06-02T10:00:00Z",
                 ",\"description\":" + json_str(std::string(32 * 1024, 'd'))));
  CHECK(max_desc.status == 201);
  REQUIRE(api.del(tok, event_path(base.org.id, max_desc.str("/id"))).status
          == 204);
  std::string people = "[";
  for (int i = 0; i < 501; ++i)
    people += (i ? ",\"p" : "\"p") + std::to_string(i) + "@x.example\"";
  people += "]";
  auto too_many_people
      = api.post(tok, base.evs(),
                 event_body("x", "2026-06-02T09:00:00Z", "2026-06-02T10:00:00Z",
                            ",\"participants\":" + people));
  CHECK(too_many_people.status == 400);
  CHECK(too_many_people.error_field() == "participants");
  std::string many_events;
  for (int i = 0; i < 5001; ++i)
    many_events
        += (i ? "," : "")
           + event_body("i", "2026-06-02T09:00:00Z", "2026-06-02T10:00:00Z");
  auto big_import = api.post(tok, org_path(base.org.id) + "/events/import",
                             "{\"owner\":" + json_str(base.user.id)
                                 + ",\"events\":[" + many_events + "]}");
  CHECK(big_import.status == 400);
  CHECK(big_import.error_field() == "events");
  std::string many_ids;
  for (int i = 0; i < 1001; ++i) {
    char id[17];
    std::snprintf(id, sizeof(id), "%016x", i + 1);
    many_ids += std::string(i ? "," : "") + "\"" + id + "\"";
  }
  auto big_mass
      = api.post(tok, org_path(base.org.id) + "/events/mass-update",
                 "{\"ids\":[" + many_ids + "],\"set\":{\"title\":\"x\"}}");
  CHECK(big_mass.status == 400);
  CHECK(big_mass.error_field() == "ids");
  base.check_unchanged();

  // An empty body with a JSON content type.
  auto empty = api.request("POST", base.evs(), tok, "", "",
                           {{"Content-Type", "application/json"}});
  CHECK(empty.status == 400);
  CHECK(empty.error_code() == "malformed_json");
  base.check_unchanged();
}

TEST_CASE("errors: query parameters, auth, routes, methods, media type",
          "[e2e][errors]") {
  test_node node;
  auto& api = node.api();
  baseline base{api};
  const auto& tok = base.org.admin_token;

  // limit
  for (const char* bad :
       {"0", "1001", "x", "", "-1", "10x", "1e2", "99999999999999999999"}) {
    for (auto& path : {base.evs(), users_path(base.org.id)}) {
      INFO(path << " limit=" << bad);
      auto r = api.get(tok, path + "?limit=" + bad);
      CHECK(r.status == 400);
      CHECK(r.error_code() == "invalid_field");
      CHECK(r.error_field() == "limit");
    }
  }
  CHECK(api.get(tok, base.evs() + "?limit=1").size("/items") == 1);
  CHECK(api.get(tok, base.evs() + "?limit=1000").status == 200);
  // cursor
  for (const char* bad : {"zzz", "0123456789abcdef0123456789abcdeg",
                          "0123456789abcdef0123456789abcde", "-1"}) {
    INFO("cursor=" << bad);
    auto r = api.get(tok, base.evs() + "?cursor=" + bad);
    CHECK(r.status == 400);
    CHECK(r.error_field() == "cursor");
  }
  for (const char* bad : {"zzz", "0000000000000000", "0123456789abcdef0"}) {
    INFO("users cursor=" << bad);
    auto r = api.get(tok, users_path(base.org.id) + "?cursor=" + bad);
    CHECK(r.status == 400);
    CHECK(r.error_code() == "invalid_field");
    CHECK(r.error_field() == "cursor");
  }
  // from / to
  auto bad_from = api.get(tok, base.evs() + "?from=tomorrow");
  CHECK(bad_from.status == 400);
  CHECK(bad_from.error_field() == "from");
  auto bad_to = api.get(tok, base.evs() + "?to=2026-06-01T25:00:00Z");
  CHECK(bad_to.status == 400);
  CHECK(bad_to.error_field() == "to");
  auto reversed = api.get(tok, base.evs() + "?from=2026-06-02&to=2026-06-01");
  CHECK(reversed.status == 400);
  CHECK(reversed.error_field() == "to");
  auto bad_escape = api.get(tok, base.evs() + "?from=%zz");
  CHECK(bad_escape.status == 400);
  // version on DELETE
  for (const char* bad : {"abc", "0", "-1", "", "1.0"}) {
    INFO("version=" << bad);
    auto r = api.del(tok, base.ev() + "?version=" + bad);
    CHECK(r.status == 400);
    CHECK(r.error_field() == "version");
    base.check_unchanged();
  }
  auto del_stale = api.del(tok, base.ev() + "?version=2");
  CHECK(del_stale.status == 409);
  CHECK(del_stale.error_code() == "stale_version");
  auto patch_stale = api.patch(tok, base.ev(), R"({"title":"x","version":5})");
  CHECK(patch_stale.status == 409);
  CHECK(patch_stale.error_code() == "stale_version");
  base.check_unchanged();

  // 401 without or with a wrong token, on reads and writes.
  struct call {
    const char* method;
    std::string target;
    std::string body;
  };
  std::vector<call> calls{
      {"GET", org_path(base.org.id), ""},
      {"PATCH", org_path(base.org.id), R"({"name":"X"})"},
      {"POST", "/api/v1/orgs",
       R"({"name":"X","edition":"free","admin":{"email":"z@z.example","name":"Z"}})"},
      {"POST", users_path(base.org.id),
       R"({"email":"z@acme.example","name":"Z","profile":"standard"})"},
      {"GET", users_path(base.org.id), ""},
      {"GET", base.evs(), ""},
      {"POST", base.evs(),
       event_body("x", "2026-06-02T09:00:00Z", "2026-06-02T10:00:00Z")},
      {"GET", base.ev(), ""},
      {"PATCH", base.ev(), R"({"title":"x"})"},
      {"DELETE", base.ev(), ""},
      {"GET", "/admin/v1/status", ""},
  };
  for (auto& c : calls) {
    INFO(c.method << " " << c.target);
    auto none = api.request(c.method, c.target, "", c.body);
    CHECK(none.status == 401);
    CHECK(none.error_code() == "missing_token");
    auto wrong = api.request(c.method, c.target, "wrong-token", c.body);
    CHECK(wrong.status == 401);
    CHECK(wrong.error_code() == "unauthorized");
    auto wrong_admin = api.request(c.method, c.target,
                                   std::string{admin_token} + "x", c.body);
    CHECK(wrong_admin.status == 401);
    base.check_unchanged();
  }

  // 403: a standard user renaming the org; a user creating an org.
  auto rename
      = api.patch(base.user.token, org_path(base.org.id), R"({"name":"Mine"})");
  CHECK(rename.status == 403);
  CHECK(rename.error_code() == "forbidden");
  auto add_user = api.post(
      base.user.token, users_path(base.org.id),
      R"({"email":"z@acme.example","name":"Z","profile":"standard"})");
  CHECK(add_user.status == 403);
  auto admin_route = api.get(base.user.token, "/admin/v1/status");
  CHECK(admin_route.status == 403);
  CHECK(admin_route.error_code() == "forbidden");
  base.check_unchanged();

  // 404 unknown routes (no token needed to learn that).
  for (const char* path :
       {"/", "/api", "/api/v1", "/api/v1/nope", "/api/v2/orgs",
        "/api/v1/orgs/x/y/z/w/v", "/healthz/extra", "/admin/v1/nope"}) {
    INFO(path);
    auto r = api.get(tok, path);
    CHECK(r.status == 404);
    CHECK(r.error_code() == "not_found");
  }
  CHECK(api.get("", "/api/v1/nope").status == 404);

  // 405 with Allow.
  auto m1 = api.request("PUT", org_path(base.org.id), tok, R"({"name":"X"})");
  CHECK(m1.status == 405);
  CHECK(m1.error_code() == "method_not_allowed");
  CHECK(m1.header("Allow") == "GET, PATCH");
  auto m2 = api.request("DELETE", "/api/v1/orgs", tok);
  CHECK(m2.status == 405);
  CHECK(m2.header("Allow") == "POST");
  auto m3 = api.request("POST", "/healthz", tok, "{}");
  CHECK(m3.status == 405);
  CHECK(m3.header("Allow") == "GET");
  auto m4 = api.request("POST", base.ev(), tok, "{}");
  CHECK(m4.status == 405);
  CHECK(m4.header("Allow") == "GET, PATCH, DELETE");
  auto m5 = api.request("DELETE", users_path(base.org.id), tok);
  CHECK(m5.status == 405);
  CHECK(m5.header("Allow") == "POST, GET");
  // ".../events/import" is also ".../events/{event}": every method of both.
  auto m6
      = api.request("PUT", org_path(base.org.id) + "/events/import", tok, "{}");
  CHECK(m6.status == 405);
  CHECK(m6.header("Allow") == "GET, PATCH, DELETE, POST");
  auto m7 = api.request("GET", org_path(base.org.id) + "/events/import", tok);
  CHECK(m7.status == 404);
  base.check_unchanged();

  // 415: wrong content types on every body-taking route.
  struct write_route {
    std::string method, target, token;
  };
  std::vector<write_route> writes{
      {"POST", "/api/v1/orgs", admin_token},
      {"PATCH", org_path(base.org.id), tok},
      {"POST", users_path(base.org.id), tok},
      {"POST", base.evs(), tok},
      {"PATCH", base.ev(), tok},
      {"POST", org_path(base.org.id) + "/events/import", tok},
      {"POST", org_path(base.org.id) + "/events/mass-update", tok},
  };
  for (auto& w : writes) {
    for (const char* ct : {"text/plain", "application/jsonx",
                           "application/x-www-form-urlencoded", "text/json"}) {
      INFO(w.method << " " << w.target << " as " << ct);
      auto r = api.request(w.method, w.target, w.token, R"({"title":"x"})", ct);
      CHECK(r.status == 415);
      CHECK(r.error_code() == "unsupported_media_type");
      base.check_unchanged();
    }
  }

  // JSON with parameters or in upper case is fine.
  auto charset = api.request("PATCH", base.ev(), tok, R"({"location":"HQ2"})",
                             "application/json; charset=utf-8");
  CHECK(charset.status == 200);
  auto upper = api.request("PATCH", base.ev(), tok, R"({"location":"HQ"})",
                           "Application/JSON");
  CHECK(upper.status == 200);
  CHECK(upper.i64("/version") == 3);
  CHECK(upper.str("/location") == "HQ");
}

TEST_CASE("errors: 413 for a body over --max-body-bytes", "[e2e][errors]") {
  test_node node{{"--max-body-bytes", "4096"}};
  auto& api = node.api();
  baseline base{api};
  const auto& tok = base.org.admin_token;

  // 10 KiB description: over the limit.
  auto big
      = event_body("Big", "2026-06-02T09:00:00Z", "2026-06-02T10:00:00Z",
                   ",\"description\":" + json_str(std::string(10 * 1024, 'd')));
  auto r = api.post(tok, base.evs(), big);
  CHECK(r.status == 413);
  CHECK(r.error_code() == "payload_too_large");
  // Also on a PATCH and with the service admin token.
  api_client fresh{node.port()};
  auto r2 = fresh.patch(
      tok, base.ev(),
      "{\"description\":" + json_str(std::string(10 * 1024, 'p')) + "}");
  CHECK(r2.status == 413);
  api_client fresh2{node.port()};
  auto r3 = fresh2.post(admin_token, "/api/v1/orgs",
                        std::string(10 * 1024, ' ') + "{}");
  CHECK(r3.status == 413);
  // Just under the limit is accepted.
  api_client ok_client{node.port()};
  auto small
      = event_body("Small", "2026-06-02T09:00:00Z", "2026-06-02T10:00:00Z",
                   ",\"description\":" + json_str(std::string(3 * 1024, 's')));
  auto ok = ok_client.post(tok, base.evs(), small);
  CHECK(ok.status == 201);
  auto still = ok_client.get(tok, base.ev());
  CHECK(still.status == 200);
  CHECK(still.json() == base.event_json);
  CHECK(ok_client.get(tok, org_path(base.org.id)).i64("/events") == 2);
  CHECK(ok_client.get(tok, user_path(base.org.id, base.user.id)).json()
        == base.user_json);
}
