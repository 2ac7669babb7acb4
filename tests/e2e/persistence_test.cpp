// End-to-end: data survives a graceful restart and a kill -9 under load.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "tests/support/api_client.hpp"
#include "tests/support/thread_guard.hpp"

using namespace crmsync::e2e;

namespace {

std::string id_of(const std::string& item_json) {
  simdjson::dom::parser p;
  simdjson::dom::element e = p.parse(item_json);
  return std::string{e["id"].get_string().value()};
}

} // namespace

TEST_CASE(
    "persistence: everything reads back identical after SIGTERM and restart",
    "[e2e][persistence]") {
  test_node node;
  auto* api = &node.api();
  auto org = create_org(*api, "Persist & Co", "Admin@Persist.example", "free",
                        "admin-password-1");
  auto ann = create_user(*api, org.admin_token, org.id, "ann@persist.example",
                         "Ann", "standard", false, "ann-password-1");
  auto ben = create_user(*api, org.admin_token, org.id, "ben@persist.example",
                         "Ben", "administrator", true);
  auto renamed = api->patch(org.admin_token, org_path(org.id),
                            R"({"name":"Persist & Co."})");
  REQUIRE(renamed.status == 200);
  REQUIRE(
      api->patch(admin_token, org_path(org.id), R"({"edition":"paid"})").status
      == 200);

  std::vector<std::string> event_ids;
  auto add = [&](const user_info& who, const std::string& body) {
    auto r = create_event(*api, org.id, who, body);
    event_ids.push_back(r.str("/id"));
    return r.str("/id");
  };
  add(ann, event_body("Caf\xc3\xa9 \xe2\x98\x95 \"quoted\"",
                      "2026-08-01T09:00:00Z", "2026-08-01T10:00:00.125Z",
                      ",\"location\":\"Room \\\\ "
                      "1\",\"description\":\"line1\\nline2\\ttab\","
                      "\"participants\":[\"x@y.example\",{\"email\":\"Z@Y."
                      "example\",\"name\":\"Zed\"}],"
                      "\"time_zone\":\"Europe/Paris\""));
  add(ann,
      event_body("All day", "2026-08-02", "2026-08-04", ",\"all_day\":true"));
  auto patched = add(ann, event_body("Patched", "2026-08-05T09:00:00Z",
                                     "2026-08-05T10:00:00Z"));
  REQUIRE(
      api->patch(
             ann.token, event_path(org.id, patched),
             R"({"title":"Patched twice","start":"2026-08-06T09:00:00Z","end":"2026-08-06T11:00:00Z"})")
          .status
      == 200);
  REQUIRE(api->patch(ann.token, event_path(org.id, patched),
                     R"({"location":"moved"})")
              .status
          == 200);
  auto deleted = add(ben, event_body("Deleted", "2026-08-07T09:00:00Z",
                                     "2026-08-07T10:00:00Z"));
  for (int i = 0; i < 30; ++i)
    add(ben, event_body("Ben " + std::to_string(i),
                        "2026-09-01T0" + std::to_string(i % 10) + ":00:00Z",
                        "2026-09-01T0" + std::to_string(i % 10) + ":30:00Z"));
  auto imported = api->post(
      org.admin_token, org_path(org.id) + "/events/import",
      "{\"owner\":" + json_str(ann.id) + ",\"events\":["
          + event_body("imp A", "2026-10-01T09:00:00Z", "2026-10-01T10:00:00Z")
          + ","
          + event_body("imp B", "2026-10-02T09:00:00Z", "2026-10-02T10:00:00Z")
          + "]}");
  REQUIRE(imported.status == 201);
  event_ids.push_back(imported.str("/ids/0"));
  event_ids.push_back(imported.str("/ids/1"));
  REQUIRE(api->post(org.admin_token, org_path(org.id) + "/events/mass-update",
                    "{\"ids\":[" + json_str(imported.str("/ids/1"))
                        + "],\"set\":{\"title\":\"imp B+\"}}")
              .status
          == 200);
  REQUIRE(api->del(ben.token, event_path(org.id, deleted)).status == 204);
  event_ids.erase(std::find(event_ids.begin(), event_ids.end(), deleted));
  auto other = create_org(*api, "Other", "admin@other.example");

  // Snapshot everything a client can read.
  auto snapshot = [&](api_client& c) {
    std::map<std::string, std::string> s;
    s["org"] = c.get(org.admin_token, org_path(org.id)).json();
    s["other"] = c.get(other.admin_token, org_path(other.id)).json();
    for (auto* u : {&ann, &ben}) {
      s["user " + u->id]
          = c.get(org.admin_token, user_path(org.id, u->id)).json();
      auto list
          = walk_pages(c, org.admin_token, user_events_path(org.id, u->id), 7);
      std::string joined;
      for (auto& item : list)
        joined += item + "\n";
      s["events of " + u->id] = joined;
    }
    s["user " + org.admin_id]
        = c.get(org.admin_token, user_path(org.id, org.admin_id)).json();
    std::string users;
    for (auto& item : walk_pages(c, org.admin_token, users_path(org.id), 2))
      users += item + "\n";
    s["users"] = users;
    for (auto& id : event_ids) {
      auto r = c.get(org.admin_token, event_path(org.id, id));
      s["event " + id]
          = std::to_string(r.status) + " " + (r.is_json() ? r.json() : r.body);
    }
    s["admin user lookup"]
        = c.get(admin_token, "/admin/v1/users/ANN@persist.example")
              .json("/user");
    return s;
  };
  auto before = snapshot(*api);
  REQUIRE(before.size() == 9 + event_ids.size());
  CHECK(event_ids.size() == 35);

  int rc = node.stop();
  CHECK(rc == 0);
  CHECK_FALSE(node.process().running());
  node.start();
  api = &node.api();

  auto after = snapshot(*api);
  REQUIRE(after.size() == before.size());
  for (auto& [key, value] : before) {
    INFO(key);
    CHECK(after[key] == value);
  }
  // The deleted event stays deleted.
  CHECK(api->get(ben.token, event_path(org.id, deleted)).status == 404);
  // Tokens still work and still are checked.
  CHECK(api->get(ann.token, org_path(org.id)).status == 200);
  CHECK(api->get(ben.token, user_events_path(org.id, ann.id)).status == 200);
  CHECK(api->get("crm_" + org.id + ann.id + std::string(43, 'Q'),
                 org_path(org.id))
            .status
        == 401);
  // Rights are still in force.
  CHECK(api->patch(ann.token, event_path(org.id, event_ids[4]),
                   R"({"title":"x"})")
            .status
        == 403);
  // E-mail addresses are still taken.
  auto dup = api->post(
      org.admin_token, users_path(org.id),
      R"({"email":"ANN@persist.example","name":"Ann 2","profile":"standard"})");
  CHECK(dup.status == 409);
  CHECK(dup.error_code() == "email_taken");
  // Versions continue where they were.
  auto p = api->patch(ann.token, event_path(org.id, patched),
                      R"({"title":"after restart","version":3})");
  CHECK(p.status == 200);
  CHECK(p.i64("/version") == 4);
  // New writes work and count on.
  create_event(
      *api, org.id, ann,
      event_body("new", "2026-08-09T09:00:00Z", "2026-08-09T10:00:00Z"));
  CHECK(api->get(ann.token, org_path(org.id)).i64("/events") == 36);
  CHECK(api->get(ann.token, org_path(org.id)).i64("/users") == 3);

  // A second clean restart right away also exits 0 and keeps the new data.
  CHECK(node.stop() == 0);
  node.start();
  CHECK(node.api().get(ann.token, org_path(org.id)).i64("/events") == 36);
  CHECK(node.api().get(ann.token, event_path(org.id, patched)).str("/title")
        == "after restart");
}

namespace {

struct ack {
  std::string id;
  std::string json;
  int owner;
};

struct load_result {
  std::vector<ack> acked;
  int non_2xx = 0;
  std::vector<std::string> thread_errors;
  int acked_before_action = 0;
};

constexpr int n_writers = 8;

// Runs n_writers threads creating events as fast as they can (each with its
// own connection, for its own user; half as the org admin) until the node
// stops answering. `action` runs on the calling thread once writes are
// acknowledged, 0.3..1.5 s into the load.
template <class Action>
load_result write_load(uint16_t port, const org_info& org,
                       const std::vector<user_info>& users, Action action) {
  load_result out;
  out.thread_errors.resize(n_writers);
  std::mutex mtx;
  std::atomic<int> ack_count{0};
  std::atomic<int> non_2xx{0};
  // The writers end when the node is gone, or when told to (a failed
  // REQUIRE in `action` leaves the node up).
  std::atomic<bool> stop{false};
  crmsync::test::thread_guard threads([&] { stop = true; });
  for (int t = 0; t < n_writers; ++t) {
    threads.spawn([&, t] {
      api_client c{port, std::chrono::seconds(5)};
      const std::string& tok = t % 2 ? users[t].token : org.admin_token;
      const std::string target = user_events_path(org.id, users[t].id);
      for (int i = 0; !stop; ++i) {
        const std::string day = "2026-12-0" + std::to_string(1 + i % 9) + "T";
        const std::string hour
            = (i % 24 < 10 ? "0" : "") + std::to_string(i % 24);
        auto body = event_body(
            "t" + std::to_string(t) + "-" + std::to_string(i),
            day + hour + ":00:00Z", day + hour + ":30:00Z",
            ",\"description\":\"" + std::string(200 + i % 300, 'd') + "\"");
        api_response r;
        std::string err;
        if (!c.try_request("POST", target, tok, body, r, err)) {
          out.thread_errors[t] = err;
          return; // the node is gone
        }
        if (r.status != 201) {
          // Only a node that is going away may refuse (503 while stopping).
          if (r.status != 503)
            ++non_2xx;
          continue;
        }
        {
          std::lock_guard<std::mutex> g{mtx};
          out.acked.push_back({r.str("/id"), r.json(), t});
        }
        ++ack_count;
      }
    });
  }
  const auto deadline
      = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (ack_count == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  std::mt19937 rng{std::random_device{}()};
  auto act_at = std::chrono::steady_clock::now()
                + std::chrono::milliseconds(300 + rng() % 1200);
  while (std::chrono::steady_clock::now() < act_at)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  out.acked_before_action = ack_count.load();
  action();
  threads.join();
  out.non_2xx = non_2xx.load();
  return out;
}

// After a restart: every acknowledged event is listed by its owner with
// identical content and reads back the same one by one (every one when
// `get_all`, else each writer's last plus a sample); at most one
// unacknowledged write per writer exists; the org's counter matches.
void verify_acked(api_client& api, const org_info& org,
                  const std::vector<user_info>& users, const load_result& load,
                  bool get_all) {
  std::map<std::string, std::pair<int, std::string>>
      listed; // id -> owner, json
  size_t duplicates = 0;
  for (int t = 0; t < n_writers; ++t)
    for (auto& item : walk_pages(api, org.admin_token,
                                 user_events_path(org.id, users[t].id), 1000))
      duplicates
          += !listed.emplace(id_of(item), std::make_pair(t, item)).second;
  CHECK(duplicates == 0);

  size_t missing = 0, different = 0, wrong_owner = 0;
  std::vector<int> acked_per_writer(n_writers, 0),
      last_of_writer(n_writers, -1);
  for (size_t i = 0; i < load.acked.size(); ++i) {
    auto& a = load.acked[i];
    ++acked_per_writer[a.owner];
    last_of_writer[a.owner] = static_cast<int>(i);
    auto it = listed.find(a.id);
    if (it == listed.end())
      ++missing;
    else if (it->second.second != a.json)
      ++different;
    else if (it->second.first != a.owner)
      ++wrong_owner;
  }
  CHECK(missing == 0);
  CHECK(different == 0);
  CHECK(wrong_owner == 0);
  // Everything listed beyond the acknowledged: at most the one request in
  // flight per writer when the node went away.
  CHECK(listed.size() >= load.acked.size());
  CHECK(listed.size() - load.acked.size() <= static_cast<size_t>(n_writers));
  std::vector<int> listed_per_writer(n_writers, 0);
  for (auto& [id, v] : listed)
    ++listed_per_writer[v.first];
  for (int t = 0; t < n_writers; ++t) {
    CHECK(listed_per_writer[t] >= acked_per_writer[t]);
    CHECK(listed_per_writer[t] - acked_per_writer[t] <= 1);
  }

  // One by one.
  std::vector<size_t> sample;
  for (int t = 0; t < n_writers; ++t)
    if (last_of_writer[t] >= 0)
      sample.push_back(static_cast<size_t>(last_of_writer[t]));
  const size_t step
      = get_all ? 1 : std::max<size_t>(1, load.acked.size() / 400);
  for (size_t i = 0; i < load.acked.size(); i += step)
    sample.push_back(i);
  size_t get_failed = 0;
  for (auto i : sample) {
    auto r = api.get(org.admin_token, event_path(org.id, load.acked[i].id));
    if (r.status != 200 || r.json() != load.acked[i].json)
      ++get_failed;
  }
  CHECK(get_failed == 0);
  CHECK(api.get(org.admin_token, org_path(org.id)).u64("/events")
        == listed.size());
}

std::vector<user_info> make_writers(api_client& api, const org_info& org) {
  std::vector<user_info> users;
  for (int t = 0; t < n_writers; ++t)
    users.push_back(create_user(api, org.admin_token, org.id,
                                "w" + std::to_string(t) + "@crash.example",
                                "Writer " + std::to_string(t)));
  return users;
}

} // namespace

TEST_CASE("persistence: acknowledged events survive kill -9 under write load",
          "[e2e][persistence][crash]") {
  test_node node;
  auto org = create_org(node.api(), "Crash", "admin@crash.example");
  auto users = make_writers(node.api(), org);
  auto load = write_load(node.port(), org, users, [&] { node.kill9(); });
  INFO("acknowledged before kill: " << load.acked_before_action << ", total "
                                    << load.acked.size());
  CHECK(load.non_2xx == 0);
  for (auto& e : load.thread_errors)
    CHECK_FALSE(e.empty()); // every writer saw the node die
  REQUIRE(load.acked.size() >= 20);

  node.start();
  verify_acked(node.api(), org, users, load, true);
  // The node keeps working on the recovered data.
  auto more
      = node.api().post(users[0].token, user_events_path(org.id, users[0].id),
                        event_body("after crash", "2026-12-10T09:00:00Z",
                                   "2026-12-10T10:00:00Z"));
  CHECK(more.status == 201);
  CHECK(node.stop() == 0);
}

TEST_CASE(
    "persistence: SIGTERM under write load exits 0 promptly and loses nothing",
    "[e2e][persistence][shutdown]") {
  test_node node;
  auto org = create_org(node.api(), "Stop", "admin@crash.example");
  auto users = make_writers(node.api(), org);
  int rc = -100;
  std::chrono::steady_clock::duration took{};
  auto load = write_load(node.port(), org, users, [&] {
    auto t0 = std::chrono::steady_clock::now();
    rc = node.stop();
    took = std::chrono::steady_clock::now() - t0;
  });
  INFO("acknowledged before SIGTERM: "
       << load.acked_before_action << ", total " << load.acked.size()
       << "; stop took "
       << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
       << " ms");
  CHECK(rc == 0);
  // Busy keep-alive clients must not hold the node up for its whole grace
  // period (10 s by default).
  CHECK(took < std::chrono::seconds(5));
  CHECK(load.non_2xx == 0);
  REQUIRE(load.acked.size() >= 20);
  node.start();
  verify_acked(node.api(), org, users, load, false);
  CHECK(node.stop() == 0);
}
