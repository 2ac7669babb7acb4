// End-to-end: what Outlook users notice besides an event's content
// (issue 14, "Calendar fidelity"): sensitivity, free/busy (showAs), the
// reminder and categories cross both ways, every value of each; a private
// or confidential event is private in the CRM (its details for its owner
// and the administrators; others see busy time). Graph answers at an
// injected 100 ± 30 ms, as Microsoft does.
#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

#include "tests/e2e/sync_fixture.hpp"

using namespace crmsync::e2e;

namespace {

const std::vector<std::string> sensitivities{"normal", "personal", "private",
                                             "confidential"};
const std::vector<std::string> show_as_values{
    "free", "tentative", "busy", "oof", "workingElsewhere", "unknown"};

sync_options at_graph_latency() {
  sync_options opts;
  opts.graph_latency_ms = 100;
  opts.graph_jitter_ms = 30;
  return opts;
}

/// A CRM event body `hour` hours from now, for an hour, with `extra`.
std::string crm_body(const std::string& title, double hour,
                     const std::string& extra = {}) {
  return "{\"title\":" + json_str(title)
         + ",\"start\":" + json_str(hours_from_now(hour))
         + ",\"end\":" + json_str(hours_from_now(hour + 1)) + extra + "}";
}

/// A Graph event body `hour` hours from now (UTC), with `extra`.
std::string graph_body(const std::string& subject, double hour,
                       const std::string& extra = {}) {
  auto wall = [](double h) {
    auto t = hours_from_now(h);
    return t.substr(0, t.size() - 1); // no Z: a wall time in UTC
  };
  return "{\"subject\":" + json_str(subject)
         + ",\"start\":{\"dateTime\":" + json_str(wall(hour))
         + ",\"timeZone\":\"UTC\"},\"end\":{\"dateTime\":"
         + json_str(wall(hour + 1)) + ",\"timeZone\":\"UTC\"}" + extra + "}";
}

/// The Graph ids of the CRM calendar's events by subject.
std::map<std::string, std::string> outlook_ids(sync_env& env,
                                               const std::string& cal) {
  std::map<std::string, std::string> out;
  for (auto& e : env.o365_events(cal))
    out[e.subject] = e.id;
  return out;
}

/// The admin's CRM event titled `title` (as the admin reads it), once
/// there.
api_response crm_titled(sync_env& env, const std::string& title) {
  std::string id;
  REQUIRE(crmsync::test::eventually([&] {
    for (auto& e : env.crm_events())
      if (e.title == title)
        id = e.id;
    return !id.empty();
  }));
  return env.node().get(env.org().token, event_path(env.org().id, id));
}

std::vector<std::string> strings_at(const api_response& r,
                                    const std::string& at) {
  std::vector<std::string> out;
  for (size_t i = 0; i < r.size(at); ++i)
    out.push_back(r.str(at + "/" + std::to_string(i)));
  return out;
}

/// Polls the Outlook copy `graph_id` until `done` holds; REQUIREs it.
api_response
wait_outlook(sync_env& env, const std::string& graph_id,
             const std::string& what,
             const std::function<bool(const api_response&)>& done) {
  api_response last;
  bool ok = crmsync::test::eventually([&] {
    last = env.outlook_get(graph_id);
    return done(last);
  });
  INFO("waiting for Outlook: " << what << "\nit has " << last.body);
  REQUIRE(ok);
  return last;
}

/// Polls the CRM event `id` (read by the admin) until `done` holds.
api_response wait_crm(sync_env& env, const std::string& id,
                      const std::string& what,
                      const std::function<bool(const api_response&)>& done) {
  api_response last;
  bool ok = crmsync::test::eventually([&] {
    last = env.node().get(env.org().token, event_path(env.org().id, id));
    return done(last);
  });
  INFO("waiting for the CRM: " << what << "\nit has " << last.body);
  REQUIRE(ok);
  return last;
}

} // namespace

TEST_CASE("sensitivity, showAs, the reminder and categories go from the CRM "
          "to Outlook, every value",
          "[sync][fidelity][fields]") {
  sync_env env{at_graph_latency()};
  double hour = 10;
  for (auto& s : sensitivities)
    env.create_event_json(crm_body("Sensitivity " + s, hour++,
                                   ",\"sensitivity\":" + json_str(s)));
  for (auto& v : show_as_values)
    env.create_event_json(
        crm_body("Show as " + v, hour++, ",\"show_as\":" + json_str(v)));
  auto reminded = env.create_event_json(
      crm_body("Reminded", hour++,
               R"(,"reminder_on":false,"reminder_minutes":45,)"
               R"("categories":["Red category","Kunde \u00e4"])"));
  env.create_event_json(crm_body("Defaults", hour++));
  env.enable_and_wait();
  auto cal = env.crm_calendar_id();
  env.wait_in_sync();

  auto ids = outlook_ids(env, cal);
  for (auto& s : sensitivities) {
    INFO(s);
    CHECK(env.outlook_get(ids.at("Sensitivity " + s)).str("/sensitivity") == s);
  }
  for (auto& v : show_as_values) {
    INFO(v);
    CHECK(env.outlook_get(ids.at("Show as " + v)).str("/showAs") == v);
  }
  auto r = env.outlook_get(ids.at("Reminded"));
  CHECK_FALSE(r.boolean("/isReminderOn"));
  CHECK(r.i64("/reminderMinutesBeforeStart") == 45);
  CHECK(strings_at(r, "/categories")
        == std::vector<std::string>{"Red category", "Kunde \xc3\xa4"});
  auto d = env.outlook_get(ids.at("Defaults"));
  CHECK(d.str("/sensitivity") == "normal");
  CHECK(d.str("/showAs") == "busy");
  CHECK(d.boolean("/isReminderOn"));
  CHECK(d.i64("/reminderMinutesBeforeStart") == 15);
  CHECK(d.size("/categories") == 0);

  // A change in the CRM goes out; what it does not name stays.
  E2E_REQUIRE_STATUS(
      env.patch_event(reminded, R"({"reminder_on":true,"reminder_minutes":0,)"
                                R"("categories":["Green"],)"
                                R"("sensitivity":"private"})"),
      200);
  auto out
      = wait_outlook(env, ids.at("Reminded"), "the reminder on at 0 minutes",
                     [](const api_response& g) {
                       return g.boolean("/isReminderOn")
                              && g.i64("/reminderMinutesBeforeStart") == 0;
                     });
  CHECK(strings_at(out, "/categories") == std::vector<std::string>{"Green"});
  CHECK(out.str("/sensitivity") == "private");
  CHECK(out.str("/showAs") == "busy");
  env.wait_converged();
}

TEST_CASE("sensitivity, showAs, the reminder and categories come from "
          "Outlook to the CRM, every value",
          "[sync][fidelity][fields]") {
  sync_env env{at_graph_latency()};
  env.create_event("Single", hours_from_now(5), hours_from_now(6));
  env.enable_and_wait();
  auto cal = env.crm_calendar_id();
  double hour = 10;
  for (auto& s : sensitivities)
    env.outlook_create_json(cal, graph_body("Sensitivity " + s, hour++,
                                            ",\"sensitivity\":" + json_str(s)));
  for (auto& v : show_as_values)
    env.outlook_create_json(
        cal, graph_body("Show as " + v, hour++, ",\"showAs\":" + json_str(v)));
  auto reminded = env.outlook_create_json(
      cal, graph_body("Reminded", hour++,
                      R"(,"isReminderOn":false,"reminderMinutesBeforeStart":)"
                      R"(1440,"categories":["Blue category","Kunde \u00e4"])"));
  env.wait_in_sync();

  for (auto& s : sensitivities) {
    INFO(s);
    CHECK(crm_titled(env, "Sensitivity " + s).str("/sensitivity") == s);
  }
  for (auto& v : show_as_values) {
    INFO(v);
    CHECK(crm_titled(env, "Show as " + v).str("/show_as") == v);
  }
  auto r = crm_titled(env, "Reminded");
  CHECK(r.str("/origin") == "office365");
  CHECK_FALSE(r.boolean("/reminder_on"));
  CHECK(r.i64("/reminder_minutes") == 1440);
  CHECK(strings_at(r, "/categories")
        == std::vector<std::string>{"Blue category", "Kunde \xc3\xa4"});
  auto single = crm_titled(env, "Single");
  CHECK(single.str("/sensitivity") == "normal");
  CHECK(single.str("/show_as") == "busy");
  CHECK(single.boolean("/reminder_on"));
  CHECK(single.i64("/reminder_minutes") == 15);

  // A change in Outlook comes in.
  env.outlook_patch(reminded,
                    R"({"isReminderOn":true,"reminderMinutesBeforeStart":5,)"
                    R"("categories":[],"showAs":"free",)"
                    R"("sensitivity":"confidential"})");
  auto after = wait_crm(env, r.str("/id"), "the reminder on at 5 minutes",
                        [](const api_response& e) {
                          return e.boolean("/reminder_on")
                                 && e.i64("/reminder_minutes") == 5;
                        });
  CHECK(after.size("/categories") == 0);
  CHECK(after.str("/show_as") == "free");
  CHECK(after.str("/sensitivity") == "confidential");
  env.wait_converged();
}

TEST_CASE("the convergence checker sees sensitivity, showAs, the reminder "
          "and categories differ",
          "[sync][fidelity][fields][check]") {
  sync_env env{at_graph_latency()};
  env.create_event_json(crm_body("Checked", 10));
  env.enable_and_wait();
  auto cal = env.crm_calendar_id();
  env.wait_converged();
  auto graph_id = outlook_ids(env, cal).at("Checked");
  // Notifications lost: a change of each field in Outlook stays unseen by
  // the CRM, and the checker reports it.
  env.set_faults(R"({"drop_notifications":1})");
  for (auto change :
       {R"({"sensitivity":"private"})", R"({"showAs":"free"})",
        R"({"isReminderOn":false})", R"({"reminderMinutesBeforeStart":30})",
        R"({"categories":["Red category"]})"}) {
    INFO(change);
    auto before = env.outlook_get(graph_id);
    env.outlook_patch(graph_id, change);
    auto report = env.check();
    CHECK(report.differences == 1);
    CHECK(report.answer.json().find("sensitivity, show as, reminder or "
                                    "categories differ")
          != std::string::npos);
    // Put back as it was: no difference again.
    env.outlook_patch(
        graph_id, "{\"sensitivity\":" + json_str(before.str("/sensitivity"))
                      + ",\"showAs\":" + json_str(before.str("/showAs"))
                      + ",\"isReminderOn\":true,"
                        "\"reminderMinutesBeforeStart\":15,\"categories\":[]}");
    CHECK(env.check().differences == 0);
  }
  env.set_faults(R"({"drop_notifications":0})");
  env.wait_converged();
}

TEST_CASE("a private event is private in the CRM: details for its owner and "
          "the administrators, busy time for the others",
          "[sync][fidelity][fields][private]") {
  sync_env env{at_graph_latency()};
  auto& api = env.node();
  auto org = env.org();
  auto add_user = [&](const std::string& email, const std::string& profile,
                      bool view_all) {
    auto created = api.post(
        org.token, users_path(org.id),
        "{\"email\":" + json_str(email) + ",\"name\":\"Someone\",\"profile\":"
            + json_str(profile) + ",\"manage_users\":false"
            + (view_all ? ",\"view_all_events\":true" : "") + "}");
    E2E_REQUIRE_STATUS(created, 201);
    return std::make_pair(created.str("/id"), created.str("/token"));
  };
  auto [second_admin_id, second_admin]
      = add_user("ann@contoso.com", "administrator", false);
  auto [viewer_id, viewer] = add_user("vic@contoso.com", "standard", true);
  auto [other_id, other] = add_user("olga@contoso.com", "standard", false);
  (void)second_admin_id;
  env.enable_and_wait();
  auto cal = env.crm_calendar_id();
  const std::string details
      = R"(,"body":{"contentType":"text","content":"raise for Bob"},)"
        R"("location":{"displayName":"Room 4"},"categories":["HR"])";
  env.outlook_create_json(
      cal,
      graph_body("Salary talk", 20, R"(,"sensitivity":"private")" + details));
  env.outlook_create_json(
      cal, graph_body("Board memo", 22,
                      R"(,"sensitivity":"confidential")" + details));
  env.outlook_create_json(
      cal, graph_body("Lunch", 24, R"(,"sensitivity":"personal")" + details));
  env.wait_in_sync();

  auto owner_view = [&](const std::string& title) {
    return crm_titled(env, title);
  };
  for (auto title : {"Salary talk", "Board memo", "Lunch"}) {
    INFO(title);
    auto mine = owner_view(title);
    CHECK(mine.str("/description") == "raise for Bob");
    CHECK(mine.str("/location") == "Room 4");
    auto id = mine.str("/id");
    // An administrator sees everything.
    auto by_admin = api.get(second_admin, event_path(org.id, id));
    E2E_REQUIRE_STATUS(by_admin, 200);
    CHECK(by_admin.str("/title") == title);
    CHECK(by_admin.str("/description") == "raise for Bob");
    // One who may view all events sees busy time for a private or
    // confidential event, everything of a personal one.
    auto by_viewer = api.get(viewer, event_path(org.id, id));
    E2E_REQUIRE_STATUS(by_viewer, 200);
    bool hidden = std::string{title} != "Lunch";
    CHECK(by_viewer.str("/title") == (hidden ? "" : title));
    CHECK(by_viewer.str("/description") == (hidden ? "" : "raise for Bob"));
    CHECK(by_viewer.str("/location") == (hidden ? "" : "Room 4"));
    CHECK(by_viewer.size("/categories") == (hidden ? 0u : 1u));
    CHECK(by_viewer.str("/start") == mine.str("/start"));
    CHECK(by_viewer.str("/end") == mine.str("/end"));
    CHECK(by_viewer.str("/show_as") == "busy");
    CHECK(by_viewer.str("/sensitivity") == mine.str("/sensitivity"));
    // Anyone else may not read it at all.
    CHECK(api.get(other, event_path(org.id, id)).status == 403);
  }
  // The listing hides the same details.
  auto listed
      = api.get(viewer, user_events_path(org.id, org.admin_id) + "?limit=100");
  E2E_REQUIRE_STATUS(listed, 200);
  int hidden = 0;
  for (size_t i = 0; i < listed.size("/items"); ++i) {
    auto at = "/items/" + std::to_string(i);
    auto s = listed.str(at + "/sensitivity");
    if (s == "private" || s == "confidential") {
      ++hidden;
      CHECK(listed.str(at + "/title").empty());
      CHECK(listed.str(at + "/description").empty());
      CHECK(listed.str(at + "/location").empty());
    } else {
      CHECK_FALSE(listed.str(at + "/title").empty());
    }
  }
  CHECK(hidden == 2);
  auto by_admin = api.get(second_admin, user_events_path(org.id, org.admin_id)
                                            + "?limit=100");
  for (size_t i = 0; i < by_admin.size("/items"); ++i)
    CHECK_FALSE(by_admin.str("/items/" + std::to_string(i) + "/title").empty());

  // A standard user's own private event: theirs to read (and the
  // administrators'), busy time for the viewer.
  auto own = api.post(other, user_events_path(org.id, other_id),
                      crm_body("Doctor", 30,
                               R"(,"sensitivity":"private",)"
                               R"("location":"Clinic")"));
  E2E_REQUIRE_STATUS(own, 201);
  auto own_path = event_path(org.id, own.str("/id"));
  CHECK(api.get(other, own_path).str("/location") == "Clinic");
  CHECK(api.get(second_admin, own_path).str("/location") == "Clinic");
  auto seen = api.get(viewer, own_path);
  E2E_REQUIRE_STATUS(seen, 200);
  CHECK(seen.str("/title").empty());
  CHECK(seen.str("/location").empty());
  env.wait_converged();
}

TEST_CASE_METHOD(acme_fixture,
                 "bad sensitivity, show_as, reminder or categories are "
                 "refused with 400 and change nothing",
                 "[e2e][events][fields]") {
  auto created = create_event(
      api, org,
      event_body("Kept", "2026-12-01T10:00:00Z", "2026-12-01T11:00:00Z",
                 R"(,"sensitivity":"private","show_as":"oof",)"
                 R"("reminder_on":false,"reminder_minutes":30,)"
                 R"("categories":["Red"])"));
  auto id = created.str("/id");
  struct bad_case {
    const char* body;
    const char* field;
  };
  for (auto c : {
           bad_case{R"({"sensitivity":"secret"})", "sensitivity"},
           bad_case{R"({"sensitivity":""})", "sensitivity"},
           bad_case{R"({"sensitivity":1})", "sensitivity"},
           bad_case{R"({"show_as":"away"})", "show_as"},
           bad_case{R"({"show_as":"Busy"})", "show_as"},
           bad_case{R"({"reminder_on":"yes"})", "reminder_on"},
           bad_case{R"({"reminder_minutes":-1})", "reminder_minutes"},
           bad_case{R"({"reminder_minutes":40321})", "reminder_minutes"},
           bad_case{R"({"reminder_minutes":"15"})", "reminder_minutes"},
           bad_case{R"({"reminder_minutes":1.5})", "reminder_minutes"},
           bad_case{R"({"categories":"Red"})", "categories"},
           bad_case{R"({"categories":["Red",""]})", "categories[1]"},
           bad_case{R"({"categories":["Red","Red"]})", "categories[1]"},
           bad_case{R"({"categories":[7]})", "categories[0]"},
       }) {
    INFO(c.body);
    auto r = api.patch(org.admin_token, event_path(org.id, id), c.body);
    CHECK(r.status == 400);
    CHECK(r.error_code() == "invalid_field");
    CHECK(r.error_field() == c.field);
    // A create with the same value is refused too.
    std::string fields{c.body};
    auto create = api.post(
        org.admin_token, user_events_path(org.id, org.admin_id),
        event_body("Never", "2026-12-02T10:00:00Z", "2026-12-02T11:00:00Z",
                   "," + fields.substr(1, fields.size() - 2)));
    CHECK(create.status == 400);
    CHECK(create.error_field() == c.field);
  }
  auto now = api.get(org.admin_token, event_path(org.id, id));
  E2E_REQUIRE_STATUS(now, 200);
  CHECK(now.i64("/version") == created.i64("/version"));
  CHECK(now.str("/sensitivity") == "private");
  CHECK(now.str("/show_as") == "oof");
  CHECK_FALSE(now.boolean("/reminder_on"));
  CHECK(now.i64("/reminder_minutes") == 30);
  CHECK(now.size("/categories") == 1);
  auto all = api.get(org.admin_token,
                     user_events_path(org.id, org.admin_id) + "?limit=100");
  CHECK(all.size("/items") == 1);
  CHECK(node.stop() == 0);
}
