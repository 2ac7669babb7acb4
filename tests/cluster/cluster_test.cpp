// A three-node crmsync cluster on loopback (real processes, CAF middleman
// between them, one graph-emulator): every request goes to a random node.
#include <catch2/catch.hpp>

#include <atomic>
#include <ctime>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

#include "tests/cluster/cluster_fixture.hpp"
#include "tests/e2e/office365_fixture.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/thread_guard.hpp"

using namespace crmsync::e2e;
using clock_type = std::chrono::steady_clock;
using crmsync::test::eventually;
/// Convergence across three nodes (connector, forwarding, sync rounds).
constexpr std::chrono::milliseconds cluster_wait = std::chrono::seconds(30);
constexpr std::chrono::milliseconds cluster_poll
    = std::chrono::milliseconds(100);

namespace {

std::string events_path(std::string_view org, std::string_view user) {
  return user_events_path(org, user);
}

/// "YYYY-MM-DDTHH:00:00" (UTC) `days` from now at `hour`: inside the
/// window calendar sync keeps, whenever the test runs.
std::string day_from_now(int days, int hour) {
  std::time_t t = std::time(nullptr) + static_cast<std::time_t>(days) * 86400;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:00:00", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, hour);
  return buf;
}

/// Start and end of an event, RFC 3339 UTC.
using times = std::pair<std::string, std::string>;
/// The events a test expects in both calendars: title -> times.
using timed_titles = std::map<std::string, times>;

/// CRM events are 10:00-11:00 UTC `day` days from now.
times crm_times(int day) {
  return {day_from_now(day, 10) + "Z", day_from_now(day, 11) + "Z"};
}

/// Outlook's events are 09:00-10:00 UTC `day` days from now.
times outlook_times(int day) {
  return {day_from_now(day, 9) + "Z", day_from_now(day, 10) + "Z"};
}

/// A CRM event body at `day`; its times go to `record` when given.
std::string event_body(const std::string& title, int day,
                       timed_titles* record = nullptr) {
  auto t = crm_times(day);
  if (record != nullptr)
    (*record)[title] = t;
  return R"({"title":)" + json_str(title) + R"(,"start":)" + json_str(t.first)
         + R"(,"end":)" + json_str(t.second) + "}";
}

/// A Graph event body for the "outlook" app at `day`; its times go to
/// `record` when given.
std::string outlook_body(const std::string& subject, int day,
                         timed_titles* record = nullptr) {
  auto t = outlook_times(day);
  if (record != nullptr)
    (*record)[subject] = t;
  auto utc = [](const std::string& rfc3339) {
    return R"({"dateTime":)" + json_str(rfc3339.substr(0, 19))
           + R"(,"timeZone":"UTC"})";
  };
  return R"({"subject":)" + json_str(subject) + R"(,"start":)" + utc(t.first)
         + R"(,"end":)" + utc(t.second) + "}";
}

/// Polls the admin's Office 365 calendar `calendar`, read back through
/// Graph (not through the product or its convergence checker), until it
/// holds each expected event exactly once at its times and nothing else;
/// REQUIREs it.
void require_in_office365(cluster_env& c, const std::string& calendar,
                          const timed_titles& expected) {
  std::string diff;
  bool ok = crmsync::test::eventually(
      [&] {
        diff.clear();
        std::map<std::string, std::vector<times>> seen;
        for (auto& e : c.o365_events("admin@contoso.com", calendar))
          seen[e.subject].emplace_back(e.start, e.end);
        for (auto& [title, t] : expected) {
          auto i = seen.find(title);
          if (i == seen.end())
            diff += "missing '" + title + "'\n";
          else if (i->second.size() != 1)
            diff += std::to_string(i->second.size()) + " of '" + title + "'\n";
          else if (i->second.front() != t)
            diff += "'" + title + "' at " + i->second.front().first + ".."
                    + i->second.front().second + ", expected " + t.first + ".."
                    + t.second + "\n";
        }
        for (auto& [title, all] : seen)
          if (expected.count(title) == 0)
            diff
                += std::to_string(all.size()) + " unexpected '" + title + "'\n";
        return diff.empty();
      },
      std::chrono::seconds(30), std::chrono::milliseconds(100));
  INFO("Office 365 differs from what was written:\n" << diff);
  REQUIRE(ok);
}

/// The token after "/invite/" in an e-mail's HTML.
std::string invite_token(const std::string& html) {
  auto at = html.find("/invite/");
  REQUIRE(at != std::string::npos);
  at += 8;
  auto end = at;
  while (end < html.size()
         && (std::isalnum(static_cast<unsigned char>(html[end]))
             || html[end] == '-' || html[end] == '_'))
    ++end;
  return html.substr(at, end - at);
}

/// Creates CRM events titled PREFIX+i for i in [from, to] through random
/// nodes (each must be acknowledged) and adds their titles to `acked`.
void add_events(cluster_env& c, const std::string& org, const std::string& user,
                const std::string& token, const std::string& prefix, int from,
                int to, std::multiset<std::string>& acked,
                timed_titles* record = nullptr) {
  for (int i = from; i <= to; ++i) {
    auto title = prefix + std::to_string(i);
    E2E_REQUIRE_STATUS(c.call("POST", events_path(org, user), token,
                              event_body(title, i, record)),
                       201);
    acked.insert(title);
  }
}

/// Titles of a user's CRM events, read through a random node.
std::multiset<std::string> crm_titles(cluster_env& c, const std::string& org,
                                      const std::string& user,
                                      const std::string& token) {
  auto r = c.call_retrying("GET", events_path(org, user) + "?limit=500", token);
  E2E_REQUIRE_STATUS(r, 200);
  std::multiset<std::string> out;
  for (size_t i = 0; i < r.size("/items"); ++i)
    out.insert(r.str("/items/" + std::to_string(i) + "/title"));
  return out;
}

struct installed {
  std::string org;
  std::string admin;
  std::string token;
};

/// Waits until the user's sync is active with a live subscription;
/// returns the Office 365 calendar's id.
std::string wait_active(cluster_env& c, const std::string& sync_path,
                        const std::string& token) {
  std::string calendar;
  api_response last;
  bool ok = eventually(
      [&] {
        last = c.call("GET", sync_path, token);
        if (last.status != 200 || last.str("/state") != "active"
            || last.is_null("/subscription_id"))
          return false;
        calendar = last.str("/office365_calendar_id");
        return true;
      },
      cluster_wait, cluster_poll);
  INFO(last.describe());
  REQUIRE(ok);
  return calendar;
}

installed install(cluster_env& c) {
  auto s = c.sign_in("/o365/install", "admin@contoso.com");
  E2E_REQUIRE_STATUS(s.answer, 200);
  REQUIRE(s.answer.str("/status") == "installed");
  return {s.answer.str("/organization/id"), s.answer.str("/user/id"), s.token};
}

std::string sync_path_of(const installed& org) {
  return org_path(org.org) + "/users/" + org.admin + "/calendar-sync";
}

/// Turns on the organization admin's calendar sync through a random node
/// and waits for it; returns the Office 365 calendar's id.
std::string enable_sync(cluster_env& c, const installed& org) {
  E2E_REQUIRE_STATUS(
      c.call("PUT", sync_path_of(org), org.token, R"({"enabled":true})"), 200);
  return wait_active(c, sync_path_of(org), org.token);
}

/// An organization made through the admin API by a random node.
installed create_org(cluster_env& c, const std::string& name) {
  auto r = c.call("POST", "/api/v1/orgs", admin_token,
                  R"({"name":)" + json_str(name)
                      + R"(,"edition":"paid","admin":{"email":)"
                      + json_str(name + "@example.org")
                      + R"(,"name":"Admin","password":"long enough pw"}})");
  E2E_REQUIRE_STATUS(r, 201);
  return {r.str("/org/id"), r.str("/admin/id"), r.str("/admin/token")};
}

} // namespace

TEST_CASE("cluster: every node sees the same membership and shard map",
          "[e2e][cluster]") {
  cluster_env c;
  std::string first_map;
  for (int i = 0; i < cluster_env::size; ++i) {
    auto view = c.node(i).get(admin_token, "/admin/v1/cluster");
    E2E_REQUIRE_STATUS(view, 200);
    CHECK(view.str("/node_id") == c.node_id(i));
    CHECK(view.u64("/shard_count") == 256);
    REQUIRE(view.size("/members") == 3);
    uint64_t shards = 0;
    for (size_t m = 0; m < 3; ++m) {
      auto base = "/members/" + std::to_string(m);
      CHECK(view.boolean(base + "/up"));
      CHECK(view.boolean(base + "/self") == (m == 0));
      shards += view.u64(base + "/shards");
    }
    CHECK(shards == 256);
    auto map = c.node(i).get(admin_token, "/admin/v1/shards");
    E2E_REQUIRE_STATUS(map, 200);
    REQUIRE(map.size("/shards") == 256);
    if (first_map.empty())
      first_map = map.body;
    CHECK(map.body == first_map);
    // The admin token is needed.
    CHECK(c.node(i).get("", "/admin/v1/cluster").status == 401);
    // Ready: it has tried every peer (and learnt their shard moves).
    CHECK(c.node(i).get("", "/readyz").status == 200);
  }

  // Organizations made through random nodes live on their owners; every
  // node lists all of them, page by page, each once, saying where.
  std::set<std::string> made;
  for (int n = 0; n < 7; ++n)
    made.insert(create_org(c, "listed" + std::to_string(n)).org);
  for (int i = 0; i < cluster_env::size; ++i) {
    std::set<std::string> listed;
    std::string cursor;
    for (int page = 0; page < 10; ++page) {
      auto r = c.node(i).get(
          admin_token,
          "/admin/v1/tenants?limit=3"
              + (cursor.empty() ? std::string{} : "&cursor=" + cursor));
      E2E_REQUIRE_STATUS(r, 200);
      REQUIRE(r.size("/items") <= 3);
      for (size_t k = 0; k < r.size("/items"); ++k) {
        auto base = "/items/" + std::to_string(k);
        auto id = r.str(base + "/id");
        CHECK(listed.insert(id).second);
        CHECK(r.str(base + "/node") == c.owner_of(id));
      }
      if (r.is_null("/next_cursor"))
        break;
      cursor = r.str("/next_cursor");
    }
    CHECK(listed == made);
    auto bad = c.node(i).get(admin_token, "/admin/v1/tenants?cursor=zz");
    CHECK(bad.status == 400);
  }
  // E-mail addresses are unique across the cluster, whichever node owns
  // the organization that has one.
  for (int i = 0; i < cluster_env::size; ++i) {
    auto dup = c.node(i).post(
        admin_token, "/api/v1/orgs",
        R"({"name":"again","edition":"free","admin":{"email":"listed3@example.org","name":"A"}})");
    E2E_REQUIRE_STATUS(dup, 409);
    CHECK(dup.error_code() == "email_taken");
    CHECK(dup.error_field() == "admin.email");
  }
  // A complete listing says so.
  auto whole = c.node(1).get(admin_token, "/admin/v1/tenants");
  E2E_REQUIRE_STATUS(whole, 200);
  CHECK_FALSE(whole.boolean("/incomplete"));
  CHECK(whole.size("/missing_nodes") == 0);
  // With a node away, every live node lists what the live nodes hold and
  // names the one that is missing, instead of failing.
  std::set<std::string> on_live;
  for (auto& id : made)
    if (c.owner_of(id) != c.node_id(2))
      on_live.insert(id);
  c.kill9(2);
  c.wait_connected();
  for (int i : {0, 1}) {
    auto partial = c.node(i).get(admin_token, "/admin/v1/tenants");
    E2E_REQUIRE_STATUS(partial, 200);
    CHECK(partial.boolean("/incomplete"));
    REQUIRE(partial.size("/missing_nodes") == 1);
    CHECK(partial.str("/missing_nodes/0") == c.node_id(2));
    std::set<std::string> listed;
    for (size_t k = 0; k < partial.size("/items"); ++k)
      listed.insert(partial.str("/items/" + std::to_string(k) + "/id"));
    CHECK(listed == on_live);
  }
}

TEST_CASE("cluster: install, invitation and calendar sync through random "
          "nodes",
          "[e2e][cluster]") {
  cluster_env c;
  INFO("random seed " << c.seed());
  auto org = install(c);
  E2E_REQUIRE_STATUS(
      c.call("PATCH", org_path(org.org), admin_token, R"({"edition":"paid"})"),
      200);
  // Requests for the organization are served by its owner, whichever node
  // takes them.
  auto owner = c.owner_of(org.org);
  for (int i = 0; i < cluster_env::size; ++i) {
    auto r = c.node(i).get(org.token, org_path(org.org));
    E2E_REQUIRE_STATUS(r, 200);
    CHECK(r.header("X-Crmsync-Node") == owner);
    // The export (streamed by the owner) arrives whole through any node.
    auto x
        = c.node(i).get(admin_token, "/admin/v1/orgs/" + org.org + "/export");
    E2E_REQUIRE_STATUS(x, 200);
    CHECK(x.header("X-Crmsync-Node") == owner);
    CHECK(x.body.find("admin@contoso.com") != std::string::npos);
    CHECK(x.body.find("{\"kind\":\"end\"") != std::string::npos);
  }
  // Installing again from another node finds the same organization (the
  // Office 365 tenant lookup is cluster-wide).
  auto again = install(c);
  CHECK(again.org == org.org);

  // R6-R8: Bob is invited, e-mailed, signs in on some node and accepts on
  // another.
  auto bob = c.o365_id("bob@contoso.com");
  auto sent = c.call("POST", org_path(org.org) + "/invites", org.token,
                     R"({"office365_user_ids":[)" + json_str(bob) + "]}");
  E2E_REQUIRE_STATUS(sent, 201);
  std::string html;
  REQUIRE(eventually(
      [&] {
        auto mail
            = c.emulator().get("", "/_emulator/mail?user=admin%40contoso.com");
        if (mail.status != 200 || mail.size("/value") == 0)
          return false;
        html = mail.str("/value/0/message/body/content");
        return true;
      },
      cluster_wait, cluster_poll));
  auto token = invite_token(html);
  auto signin = c.sign_in("/invite/" + token, "bob@contoso.com");
  E2E_REQUIRE_STATUS(signin.answer, 200);
  REQUIRE(signin.answer.str("/status") == "not_a_member");
  auto accepted = c.call("POST", "/api/v1/invites/" + token + "/accept",
                         signin.session, R"({"accept_terms":true})");
  E2E_REQUIRE_STATUS(accepted, 201);
  CHECK(accepted.str("/user/org_id") == org.org);
  auto bob_token = accepted.str("/user/token");
  // Signing in again, on any node, knows Bob now.
  auto member = c.sign_in("/o365/signin", "bob@contoso.com");
  E2E_REQUIRE_STATUS(member.answer, 200);
  CHECK(member.answer.str("/status") == "member");
  // Admin lookups by e-mail work from every node.
  for (int i = 0; i < cluster_env::size; ++i) {
    auto u = c.node(i).get(admin_token, "/admin/v1/users/bob@contoso.com");
    E2E_REQUIRE_STATUS(u, 200);
  }

  // R13-R18: the admin's calendar syncs both ways.
  std::multiset<std::string> expected;
  timed_titles written;
  add_events(c, org.org, org.admin, org.token, "crm ", 1, 6, expected,
             &written);
  auto calendar = enable_sync(c, org);
  add_events(c, org.org, org.admin, org.token, "crm ", 7, 9, expected,
             &written);
  auto admin_oid = c.o365_id("admin@contoso.com");
  for (int i = 1; i <= 3; ++i) {
    auto title = "outlook " + std::to_string(i);
    auto r = c.graph(
        "POST", "/users/" + admin_oid + "/calendars/" + calendar + "/events",
        outlook_body(title, 30 + i, &written));
    E2E_REQUIRE_STATUS(r, 201);
    expected.insert(title);
  }
  std::multiset<std::string> seen;
  CHECK(eventually(
      [&] {
        seen = crm_titles(c, org.org, org.admin, org.token);
        return seen == expected;
      },
      cluster_wait, cluster_poll));
  CHECK(seen == expected);
  // The convergence checker, asked of a random node, runs on the owner.
  api_response check;
  CHECK(eventually(
      [&] {
        check = c.call("GET", "/admin/v1/orgs/" + org.org + "/check",
                       admin_token);
        return check.status == 200 && check.u64("/differences") == 0;
      },
      cluster_wait, cluster_poll));
  INFO(check.describe());
  CHECK(check.u64("/differences") == 0);
  // What Office 365 holds, read through Graph: every event once, at the
  // times it was written with.
  require_in_office365(c, calendar, written);
  // Bob's token works through every node too.
  for (int i = 0; i < cluster_env::size; ++i)
    CHECK(c.node(i).get(bob_token, org_path(org.org)).status == 200);
  // t13-async: the Office 365 continuations above read what they needed
  // of the other nodes ahead, without a thread waiting on the cluster.
  for (int i = 0; i < cluster_env::size; ++i)
    CHECK(c.full_log(i).find("was not fetched ahead") == std::string::npos);
}

TEST_CASE("cluster: a node killed with SIGKILL makes only its organizations "
          "wait, and loses nothing acknowledged",
          "[e2e][cluster]") {
  cluster_env c;
  INFO("random seed " << c.seed());
  // Organizations until every node owns at least one.
  std::map<std::string, installed> by_owner;
  for (int n = 0; n < 40 && by_owner.size() < 3; ++n) {
    auto o = create_org(c, "org" + std::to_string(n));
    by_owner.emplace(c.owner_of(o.org), o);
  }
  REQUIRE(by_owner.size() == 3);
  // Writes through random nodes; each acknowledged one is remembered.
  std::map<std::string, std::multiset<std::string>> acked;
  int seq = 0;
  auto write_round = [&](bool tolerate_503) {
    for (auto& [owner, o] : by_owner) {
      auto title = "event " + std::to_string(++seq);
      auto r = c.call("POST", events_path(o.org, o.admin), o.token,
                      event_body(title, 1 + seq % 28));
      if (r.status == 201)
        acked[o.org].insert(title);
      else if (tolerate_503) {
        INFO("owner " << owner << ": " << r.body);
        CHECK(owner == c.node_id(1));
        E2E_REQUIRE_STATUS(r, 503);
        CHECK(r.header("Retry-After") == "1");
        CHECK(r.error_code() == "node_unavailable");
      } else {
        E2E_REQUIRE_STATUS(r, 201);
      }
    }
  };
  for (int i = 0; i < 5; ++i)
    write_round(false);

  const int victim = 1; // n2
  auto& lost = by_owner.at(c.node_id(victim));
  c.kill9(victim);
  c.wait_connected(); // the others notice (heartbeats)
  for (int i = 0; i < 5; ++i)
    write_round(true);
  // The victim's organization: 503 with Retry-After from every other node,
  // never a wrong answer; the others are served as before.
  for (int i = 0; i < cluster_env::size; ++i) {
    if (!c.running(i))
      continue;
    auto r = c.node(i).get(lost.token, org_path(lost.org));
    E2E_REQUIRE_STATUS(r, 503);
    CHECK(r.header("Retry-After") == "1");
    for (auto& [owner, o] : by_owner)
      if (owner != c.node_id(victim))
        CHECK(c.node(i).get(o.token, org_path(o.org)).status == 200);
  }

  c.start(victim);
  c.wait_connected();
  for (int i = 0; i < 5; ++i)
    write_round(false);
  // Every acknowledged write is there, once, read through every node.
  for (auto& [owner, o] : by_owner) {
    auto titles = crm_titles(c, o.org, o.admin, o.token);
    CHECK(titles == acked[o.org]);
    for (int i = 0; i < cluster_env::size; ++i)
      CHECK(c.node(i).get(o.token, org_path(o.org)).status == 200);
  }
}

TEST_CASE("cluster: a Graph notification that reaches another node is "
          "acknowledged by the owner",
          "[e2e][cluster]") {
  cluster_env c({"--max-notifications-per-post", "5"});
  auto org = install(c);
  auto calendar = enable_sync(c, org);
  auto subs = c.emulator().get("", "/_emulator/subscriptions");
  E2E_REQUIRE_STATUS(subs, 200);
  REQUIRE(subs.size("/value") == 1);
  auto sub_id = subs.str("/value/0/id");
  auto client_state = subs.str("/value/0/clientState");
  auto url = subs.str("/value/0/notificationUrl");
  auto resource = subs.str("/value/0/resource");
  // Graph repeats the organization in the URL it was given.
  REQUIRE(url.find("?org=" + org.org) != std::string::npos);

  // Graph's own notifications are lost: only the one posted by hand to a
  // node that does not own the organization tells the owner.
  c.set_faults(R"({"drop_notifications":1.0})");
  auto admin_oid = c.o365_id("admin@contoso.com");
  auto created = c.graph(
      "POST", "/users/" + admin_oid + "/calendars/" + calendar + "/events",
      outlook_body("from outlook", 40));
  E2E_REQUIRE_STATUS(created, 201);
  auto owner = c.owner_of(org.org);
  int other = (c.index_of(owner) + 1) % cluster_env::size;
  auto target = split_url(url).target;
  auto notification = R"({"value":[{"subscriptionId":)" + json_str(sub_id)
                      + R"(,"clientState":)" + json_str(client_state)
                      + R"(,"changeType":"created","resource":)"
                      + json_str(resource + "/" + created.str("/id"))
                      + R"(,"tenantId":)" + json_str(c.tenant()) + "}]}";
  auto acked = c.node(other).post("", target, notification);
  E2E_REQUIRE_STATUS(acked, 202);
  CHECK(acked.header("X-Crmsync-Node") == owner);
  CHECK(eventually(
      [&] {
        auto titles = crm_titles(c, org.org, org.admin, org.token);
        return titles.count("from outlook") == 1;
      },
      cluster_wait, cluster_poll));

  // A notification URL without the organization (a subscription made
  // before URLs carried it): the node finds the subscription's owner
  // across the cluster; an unknown subscription in the same batch is
  // refused where it landed, and the batch is acknowledged.
  auto second = c.graph(
      "POST", "/users/" + admin_oid + "/calendars/" + calendar + "/events",
      outlook_body("second from outlook", 41));
  E2E_REQUIRE_STATUS(second, 201);
  auto item = [&](const std::string& sub, const std::string& state,
                  const std::string& id) {
    return R"({"subscriptionId":)" + json_str(sub) + R"(,"clientState":)"
           + json_str(state) + R"(,"changeType":"created","resource":)"
           + json_str(resource + "/" + id) + R"(,"tenantId":)"
           + json_str(c.tenant()) + "}";
  };
  auto mixed = c.node(other).post(
      "", "/webhooks/graph",
      R"({"value":[)" + item(sub_id, client_state, second.str("/id")) + ","
          + item("00000000-0000-0000-0000-000000000000", "x", "y") + "]}");
  E2E_REQUIRE_STATUS(mixed, 202);
  CHECK(eventually(
      [&] {
        auto titles = crm_titles(c, org.org, org.admin, org.token);
        return titles.count("second from outlook") == 1;
      },
      cluster_wait, cluster_poll));

  // More notifications than one POST may carry: refused whole, by the
  // owner when the URL names the organization, and by the node that took
  // it, before any lookup, when it does not.
  auto many = [&](int n, bool known) {
    std::string body = R"({"value":[)";
    for (int i = 0; i < n; ++i)
      body += (i ? "," : "")
              + (known ? item(sub_id, client_state, second.str("/id"))
                       : item("10000000-0000-0000-0000-00000000000"
                                  + std::to_string(i),
                              "x", "y"));
    return body + "]}";
  };
  auto routed_over = c.node(other).post("", target, many(6, true));
  E2E_REQUIRE_STATUS(routed_over, 413);
  CHECK(routed_over.str("/error/code") == "too_many_notifications");
  auto unrouted_over = c.node(other).post("", "/webhooks/graph", many(6, true));
  E2E_REQUIRE_STATUS(unrouted_over, 413);
  CHECK(unrouted_over.str("/error/code") == "too_many_notifications");
  // At the limit, subscriptions no node holds are asked of the others
  // and refused where the POST landed.
  auto unknown = c.node(other).post("", "/webhooks/graph", many(5, false));
  E2E_REQUIRE_STATUS(unknown, 202);
  CHECK(unknown.header("X-Crmsync-Node") == c.node_id(other));

  // With the owner down, Graph is told to come back later.
  c.kill9(c.index_of(owner));
  c.wait_connected();
  auto later = c.node(other).post("", target, notification);
  E2E_REQUIRE_STATUS(later, 503);
  CHECK(later.header("Retry-After") == "1");
  auto unrouted = c.node(other).post("", "/webhooks/graph", notification);
  E2E_REQUIRE_STATUS(unrouted, 503);
  CHECK(unrouted.header("Retry-After") == "1");
}

TEST_CASE("cluster: a shard moves to another node while requests keep "
          "coming",
          "[e2e][cluster]") {
  cluster_env c;
  INFO("random seed " << c.seed());
  auto org = install(c);
  std::multiset<std::string> acked;
  timed_titles written;
  add_events(c, org.org, org.admin, org.token, "before ", 1, 5, acked,
             &written);
  auto calendar = enable_sync(c, org);

  auto placed = c.call("GET", "/admin/v1/tenants/" + org.org, admin_token);
  E2E_REQUIRE_STATUS(placed, 200);
  auto shard = placed.u64("/shard");
  auto from = placed.str("/node");
  auto to = c.node_id((c.index_of(from) + 1) % cluster_env::size);
  auto move_path = "/admin/v1/shards/" + std::to_string(shard) + "/move";

  // Bad moves are refused and change nothing.
  CHECK(c.call("POST", move_path, org.token, R"({"to":"n1"})").status == 403);
  auto unknown = c.call("POST", move_path, admin_token, R"({"to":"n9"})");
  E2E_REQUIRE_STATUS(unknown, 400);
  auto nobody = c.call("POST", move_path, admin_token, R"({})");
  E2E_REQUIRE_STATUS(nobody, 400);
  CHECK(nobody.error_field() == "to");
  CHECK(
      c.call("POST", "/admin/v1/shards/999/move", admin_token, R"({"to":"n1"})")
          .status
      == 404);
  CHECK(c.owner_of(org.org) == from);

  // The move runs from one client while this thread keeps writing through
  // random nodes (retrying the 503s the move may cause).
  api_response moved;
  std::atomic<bool> done{false};
  // Joined however the test ends: a failed REQUIRE below waits for the
  // move's answer (bounded by the client's timeout) instead of aborting.
  crmsync::test::thread_guard mover;
  mover.spawn([&] {
    api_client mc(c.http_port(c.index_of(to)), std::chrono::seconds(150));
    moved = mc.post(admin_token, move_path, R"({"to":)" + json_str(to) + "}");
    done = true;
  });
  int n = 0;
  while (!done || n < 3) {
    auto title = "during " + std::to_string(++n);
    auto r = c.call_retrying("POST", events_path(org.org, org.admin), org.token,
                             event_body(title, 10 + n % 20, &written));
    E2E_REQUIRE_STATUS(r, 201);
    acked.insert(title);
  }
  mover.join();
  E2E_REQUIRE_STATUS(moved, 200);
  CHECK(moved.str("/from") == from);
  CHECK(moved.str("/to") == to);
  CHECK(moved.u64("/tenants") == 1);

  // Every node routes the organization to its new owner, and the old one
  // kept nothing of it.
  for (int i = 0; i < cluster_env::size; ++i) {
    auto r = c.node(i).get(org.token, org_path(org.org));
    E2E_REQUIRE_STATUS(r, 200);
    CHECK(r.header("X-Crmsync-Node") == to);
    auto map = c.node(i).get(admin_token, "/admin/v1/shards");
    E2E_REQUIRE_STATUS(map, 200);
    auto base = "/shards/" + std::to_string(shard);
    CHECK(map.str(base + "/node") == to);
    CHECK(map.boolean(base + "/moved"));
  }
  // (X-Crmsync-Scope: node asks a node for its own organizations only.)
  auto old_list
      = c.node(c.index_of(from))
            .request("GET", "/admin/v1/tenants", admin_token, "",
                     "application/json", {{"X-Crmsync-Scope", "node"}});
  E2E_REQUIRE_STATUS(old_list, 200);
  CHECK(old_list.body.find(org.org) == std::string::npos);

  // Nothing acknowledged was lost or doubled; sync goes on from the new
  // owner in both directions.
  CHECK(crm_titles(c, org.org, org.admin, org.token) == acked);
  auto admin_oid = c.o365_id("admin@contoso.com");
  E2E_REQUIRE_STATUS(
      c.graph("POST",
              "/users/" + admin_oid + "/calendars/" + calendar + "/events",
              outlook_body("after the move", 45, &written)),
      201);
  acked.insert("after the move");
  CHECK(eventually(
      [&] { return crm_titles(c, org.org, org.admin, org.token) == acked; },
      cluster_wait, cluster_poll));
  api_response check;
  CHECK(eventually(
      [&] {
        check = c.call("GET", "/admin/v1/orgs/" + org.org + "/check",
                       admin_token);
        return check.status == 200 && check.u64("/differences") == 0
               && check.u64("/users/0/office365_events") == acked.size();
      },
      cluster_wait, cluster_poll));
  INFO(check.describe());
  CHECK(check.u64("/differences") == 0);
  require_in_office365(c, calendar, written);

  // The old owner remembers the move across a restart.
  c.kill9(c.index_of(from));
  c.start(c.index_of(from));
  c.wait_connected();
  auto via_old = c.node(c.index_of(from)).get(org.token, org_path(org.org));
  E2E_REQUIRE_STATUS(via_old, 200);
  CHECK(via_old.header("X-Crmsync-Node") == to);
}

TEST_CASE("cluster: calendar sync converges through a SIGKILL of the owner "
          "and a shard move",
          "[e2e][cluster]") {
  cluster_env c({"--reconcile-interval", "3"});
  INFO("random seed " << c.seed());
  auto org = install(c);
  auto calendar = enable_sync(c, org);
  auto admin_oid = c.o365_id("admin@contoso.com");
  std::multiset<std::string> expected;
  timed_titles written;
  int seq = 0;
  auto crm_write = [&] {
    auto title = "crm " + std::to_string(++seq);
    auto r = c.call_retrying("POST", events_path(org.org, org.admin), org.token,
                             event_body(title, 1 + seq % 50, &written));
    E2E_REQUIRE_STATUS(r, 201);
    expected.insert(title);
  };
  auto outlook_write = [&] {
    auto title = "outlook " + std::to_string(++seq);
    E2E_REQUIRE_STATUS(
        c.graph("POST",
                "/users/" + admin_oid + "/calendars/" + calendar + "/events",
                outlook_body(title, 1 + seq % 50, &written)),
        201);
    expected.insert(title);
  };
  for (int i = 0; i < 4; ++i) {
    crm_write();
    outlook_write();
  }

  // The owner dies mid-run: its organization waits (503), Outlook goes on
  // (Graph's notifications to the front are retried or reach a node that
  // cannot forward them), and after the restart everything converges.
  auto owner = c.index_of(c.owner_of(org.org));
  c.kill9(owner);
  c.wait_connected();
  auto waiting = c.call("POST", events_path(org.org, org.admin), org.token,
                        event_body("refused", 3));
  E2E_REQUIRE_STATUS(waiting, 503);
  for (int i = 0; i < 3; ++i)
    outlook_write();
  c.start(owner);
  c.wait_connected();
  for (int i = 0; i < 3; ++i) {
    crm_write();
    outlook_write();
  }

  // A shard move mid-run.
  auto placed = c.call("GET", "/admin/v1/tenants/" + org.org, admin_token);
  E2E_REQUIRE_STATUS(placed, 200);
  auto to = c.node_id((owner + 1) % cluster_env::size);
  api_response moved;
  std::atomic<bool> done{false};
  // Joined however the test ends: a failed REQUIRE below waits for the
  // move's answer (bounded by the client's timeout) instead of aborting.
  crmsync::test::thread_guard mover;
  mover.spawn([&] {
    api_client mc(c.http_port((owner + 2) % cluster_env::size),
                  std::chrono::seconds(150));
    moved = mc.post(admin_token,
                    "/admin/v1/shards/" + std::to_string(placed.u64("/shard"))
                        + "/move",
                    R"({"to":)" + json_str(to) + "}");
    done = true;
  });
  while (!done) {
    crm_write();
    outlook_write();
  }
  mover.join();
  E2E_REQUIRE_STATUS(moved, 200);
  for (int i = 0; i < 3; ++i) {
    crm_write();
    outlook_write();
  }

  std::multiset<std::string> seen;
  CHECK(eventually(
      [&] {
        seen = crm_titles(c, org.org, org.admin, org.token);
        return seen == expected;
      },
      std::chrono::seconds(60)));
  CHECK(seen == expected);
  api_response check;
  CHECK(eventually(
      [&] {
        check = c.call("GET", "/admin/v1/orgs/" + org.org + "/check",
                       admin_token);
        return check.status == 200 && check.u64("/differences") == 0
               && check.u64("/users/0/office365_events") == expected.size()
               && check.u64("/users/0/pending") == 0;
      },
      cluster_wait, cluster_poll));
  INFO(check.describe());
  CHECK(check.u64("/differences") == 0);
  CHECK(check.u64("/users/0/office365_events") == expected.size());
  require_in_office365(c, calendar, written);
}

namespace {

/// Runs crmsyncctl against a node with `script` on stdin (the console's
/// non-terminal mode when `args` names no command); returns its output and
/// sets `code` to its exit status.
std::string crmsyncctl(cluster_env& c, int node, const std::string& args,
                       const std::string& script, int& code) {
  auto dir = std::string{"/tmp/crmsyncctl-"} + std::to_string(::getpid());
  auto in = dir + ".in";
  if (FILE* f = std::fopen(in.c_str(), "w")) {
    std::fputs(script.c_str(), f);
    std::fclose(f);
  }
  auto cmd = std::string{CRMSYNCCTL_PATH}
             + " --node http://127.0.0.1:" + std::to_string(c.http_port(node))
             + " --token " + admin_token + " " + args + " <" + in + " 2>&1";
  auto out = run_command(cmd, code);
  std::remove(in.c_str());
  return out;
}

} // namespace

TEST_CASE("cluster: crmsyncctl shows the cluster and moves a shard from any "
          "node",
          "[e2e][cluster]") {
  cluster_env c;
  auto o = create_org(c, "console");
  auto placed = c.call("GET", "/admin/v1/tenants/" + o.org, admin_token);
  E2E_REQUIRE_STATUS(placed, 200);
  auto shard = std::to_string(placed.u64("/shard"));
  auto from = placed.str("/node");
  auto to = c.node_id((c.index_of(from) + 1) % cluster_env::size);
  // A live actor's summary is asked of its owner, whichever node is asked.
  for (int i = 0; i < cluster_env::size; ++i) {
    c.node(i).get(o.token, org_path(o.org)); // keeps the tenant actor live
    auto a = c.node(i).get(admin_token, "/admin/v1/actors/tenant/" + o.org);
    E2E_REQUIRE_STATUS(a, 200);
    CHECK(a.header("X-Crmsync-Node") == from);
  }
  int code = -1;
  auto members = crmsyncctl(c, 0, "cluster", "", code);
  INFO(members);
  CHECK(code == 0);
  for (auto id : {"n1", "n2", "n3"})
    CHECK(members.find(id) != std::string::npos);
  size_t up = 0;
  for (auto at = members.find(" yes "); at != std::string::npos;
       at = members.find(" yes ", at + 1))
    ++up;
  CHECK(up == 3); // every member up
  auto map = crmsyncctl(c, 1, "shards", "", code);
  INFO(map);
  CHECK(code == 0);
  CHECK(map.find(from) != std::string::npos);
  // The console (commands on stdin) moves it through a node that is
  // neither the source nor the target.
  int other = 3 - c.index_of(from) - c.index_of(to);
  auto console = crmsyncctl(
      c, other, "", "move-shard " + shard + " " + to + "\ntenants\n", code);
  INFO(console);
  CHECK(code == 0);
  CHECK(console.find(o.org) != std::string::npos);
  CHECK(c.owner_of(o.org) == to);
  auto again = crmsyncctl(c, other, "move-shard 9999 " + to, "", code);
  INFO(again);
  CHECK(code != 0);
}

TEST_CASE("cluster: crmsyncd refuses cluster settings that cannot work",
          "[e2e][cluster]") {
  struct bad_case {
    std::string args;
    std::string says;
  };
  std::vector<bad_case> cases{
      {"--peers n2=127.0.0.1:7002", "--peers needs --cluster-listen"},
      {"--cluster-listen 127.0.0.1:7001", "without --peers"},
      {"--cluster-listen 127.0.0.1:0 --peers n2=127.0.0.1:7002", "fixed port"},
      {"--node-id n1 --cluster-listen 127.0.0.1:7001 --peers "
       "n1=127.0.0.1:7002",
       "names this node"},
      {"--cluster-listen 127.0.0.1:7001 --peers n2=127.0.0.1",
       "expected ID=HOST:PORT"},
      {"--cluster-listen 127.0.0.1:7001 --peers n2=h:1,n2=h:2", "twice"},
      {"--shards 0", "--shards"},
  };
  for (auto& bad : cases) {
    auto cmd = std::string{CRMSYNCD_PATH}
               + " --data-dir /tmp/crmsync-never-created-"
               + std::to_string(::getpid()) + " " + bad.args + " 2>&1";
    int code = -1;
    auto out = run_command(cmd, code);
    INFO(bad.args << " -> " << out);
    CHECK(code == 2);
    CHECK(out.find(bad.says) != std::string::npos);
  }
}

TEST_CASE("cluster: a forwarded request keeps its id in the owner's log",
          "[e2e][cluster][request_ids]") {
  // Nobody is a trusted proxy: the client's X-Request-Id is replaced by
  // the receiving node, which forwards the new id with the request.
  cluster_env c{{"--log-format", "json"}};
  INFO("random seed " << c.seed());
  auto o = create_org(c, "traced");
  auto owner = c.index_of(c.owner_of(o.org));
  int receiver = (owner + 1) % cluster_env::size;
  auto r = c.node(receiver).request("GET", org_path(o.org), o.token, {},
                                    "application/json",
                                    {{"X-Request-Id", "chosen-by-client"}});
  E2E_REQUIRE_STATUS(r, 200);
  CHECK(r.header("X-Crmsync-Node") == c.node_id(owner));
  auto id = r.header("X-Request-Id");
  REQUIRE(!id.empty());
  CHECK(id != "chosen-by-client");
  // One id in both nodes' JSON lines: the receiver's forwarding line, the
  // owner's access line.
  auto has = [&](int node, const std::string& prefix) {
    std::istringstream lines{c.full_log(node)};
    for (std::string line; std::getline(lines, line);)
      if (line.find("\"request_id\":\"" + id + "\"") != std::string::npos
          && line.find("\"message\":\"" + prefix) != std::string::npos
          && line.find("\"node\":\"" + c.node_id(node) + "\"")
                 != std::string::npos)
        return true;
    return false;
  };
  CHECK(has(receiver, "cluster: forwarded a GET request to node "
                          + c.node_id(owner) + ": 200"));
  CHECK(has(owner, "http: GET /api/v1/orgs/{org} 200 "));
}
