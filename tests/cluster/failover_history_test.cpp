// kill -9 of a shard's primary under mixed load, judged by the history
// checker (tests/cluster/history.hpp), with real processes: a one-member
// etcd, three crmsyncd nodes with replicated shards (ADR 0008) and a
// graph-emulator answering with injected latency. An organization
// installed from Office 365 has its administrator's calendar sync on;
// while two REST clients create, move and delete events through random
// nodes, an "Outlook" client does the same in the Office 365 calendar
// (Graph's notifications reach random nodes through the front) and a
// reader lists the events through random nodes, the shard's primary is
// killed. Every operation goes into the history with its outcome; once
// the cluster converged, the CRM's events and the Office 365 calendar are
// read as the final states, and the checker must find no lost
// acknowledged write, no duplicate and no stale read. Then the killed
// node returns: it holds nothing the new primary does not. t15-jepsen.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <ctime>
#include <filesystem>
#include <iterator>
#include <random>
#include <set>
#include <thread>

#include <signal.h>

#include "tests/cluster/cluster_fixture.hpp"
#include "tests/cluster/history.hpp"
#include "tests/support/ctl_runner.hpp"
#include "tests/support/etcd_process.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/thread_guard.hpp"

using namespace crmsync::e2e;
using crmsync::test::eventually;
namespace hist = crmsync::test::history;

namespace {

using hist::outcome;
constexpr std::chrono::milliseconds settle = std::chrono::seconds(90);

/// The nodes' flags: a 2 s lease (failover after it and a poll), and `more`.
/// The default scheduler threads (one per core): a replicated write waits
/// for its follower without holding one (ADR 0008), so the node does not
/// need more under this load.
std::vector<std::string> node_flags(std::vector<std::string> more = {}) {
  // The mass-delete guard is not what these tests are about, and their
  // load trips it by design: it deletes a third of what it creates, and
  // the guard adds deletions up over 10 minutes against the events synced
  // when its window began, so a slow failover's backlog crossed half of
  // them ("would delete 18 of 31 synced events", seen in a CI run here
  // and in 4 of 94 factor-3 runs) and the user's sync stopped, held for an
  // administrator. A minimum no run reaches keeps it out of the way; the
  // guard has tests of its own (sync_guard_test, the calendar actor's).
  std::vector<std::string> flags{"--etcd-lease-ttl",      "2",
                                 "--reconcile-interval",  "5",
                                 "--mass-delete-minimum", "1000000"};
  flags.insert(flags.end(), more.begin(), more.end());
  return flags;
}

/// The organization under load: installed from Office 365 by its admin,
/// whose calendar sync is on.
struct synced_org {
  std::string org;
  std::string admin;
  std::string token;
  std::string calendar; ///< the admin's Office 365 calendar
  std::string oid;      ///< the admin's Office 365 user id
  uint64_t shard = 0;
};

synced_org install_synced(cluster_env& c) {
  auto s = c.sign_in("/o365/install", "admin@contoso.com");
  E2E_REQUIRE_STATUS(s.answer, 200);
  synced_org o;
  o.org = s.answer.str("/organization/id");
  o.admin = s.answer.str("/user/id");
  o.token = s.token;
  o.oid = c.o365_id("admin@contoso.com");
  auto sync = org_path(o.org) + "/users/" + o.admin + "/calendar-sync";
  E2E_REQUIRE_STATUS(
      c.call_retrying("PUT", sync, o.token, R"({"enabled":true})"), 200);
  api_response last;
  REQUIRE(eventually(
      [&] {
        last = c.call("GET", sync, o.token);
        return last.status == 200 && last.str("/state") == "active"
               && !last.is_null("/subscription_id");
      },
      std::chrono::seconds(60), std::chrono::milliseconds(100)));
  o.calendar = last.str("/office365_calendar_id");
  auto placed
      = c.call_retrying("GET", "/admin/v1/tenants/" + o.org, admin_token);
  E2E_REQUIRE_STATUS(placed, 200);
  o.shard = placed.u64("/shard");
  return o;
}

/// Event times: write n of a client is at day 1 + n % 40 from the test's
/// start, at hour 6 + n / 40 % 12 (UTC): distinct for each of the first
/// 480 writes, and inside the window calendar sync keeps.
class slots {
public:
  slots() {
    base_ = std::time(nullptr) / 86400 * 86400;
  }
  std::pair<std::string, std::string> at(int n) const {
    auto start = base_ + (1 + n % 40) * 86400 + (6 + n / 40 % 12) * 3600;
    return {format(start), format(start + 3600)};
  }

private:
  static std::string format(std::time_t t) {
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    return buf;
  }
  std::time_t base_;
};

std::string crm_times(const std::pair<std::string, std::string>& t) {
  return R"("start":)" + json_str(t.first + "Z") + R"(,"end":)"
         + json_str(t.second + "Z");
}

std::string graph_times(const std::pair<std::string, std::string>& t) {
  return R"("start":{"dateTime":)" + json_str(t.first)
         + R"(,"timeZone":"UTC"},"end":{"dateTime":)" + json_str(t.second)
         + R"(,"timeZone":"UTC"})";
}

/// "YYYY-MM-DDTHH:MM:SS" of an RFC 3339 time: the value the history keeps.
std::string value_of(const std::string& rfc3339) {
  return rfc3339.substr(0, 19);
}

/// Title -> start of every event a CRM listing answer holds.
std::multimap<std::string, std::string> listed(const api_response& r) {
  std::multimap<std::string, std::string> out;
  for (size_t i = 0; i < r.size("/items"); ++i) {
    auto item = "/items/" + std::to_string(i);
    out.emplace(r.str(item + "/title"), value_of(r.str(item + "/start")));
  }
  return out;
}

/// Subject -> start of every event in the Office 365 calendar.
std::multimap<std::string, std::string> mailbox(cluster_env& c,
                                                const synced_org& o) {
  std::multimap<std::string, std::string> out;
  for (auto& e : c.o365_events("admin@contoso.com", o.calendar))
    out.emplace(e.subject, value_of(e.start));
  return out;
}

/// The nodes a client may send to: every node but a killed one.
struct targets {
  std::atomic<int> down{-1};
  uint16_t ports[cluster_env::size] = {};

  int pick(std::mt19937& rng) const {
    for (;;) {
      int i = static_cast<int>(rng() % cluster_env::size);
      if (i != down.load())
        return i;
    }
  }
};

/// The mixed load and what it saw.
struct load {
  cluster_env& c;
  const synced_org& o;
  hist::recorder& rec;
  targets& to;
  slots times;
  std::atomic<bool> stop{false};
  /// REST operations answered ok, and the first one after the kill.
  std::atomic<int> rest_ok{0};
  std::atomic<bool> killed{false};
  std::atomic<int> ok_after_kill{0};
  std::mutex mtx;
  hist::clock_type::time_point kill_time{};
  hist::clock_type::time_point back_time{};
  /// Answers no client should get (not 2xx, not 503, not a lost
  /// connection), with what was asked.
  std::vector<std::string> unexpected;
  /// Why outcomes were unknown: 503's error code, or "no answer".
  std::map<std::string, int> unknowns;

  std::string unknown_causes() {
    std::lock_guard<std::mutex> guard{mtx};
    std::string out;
    for (auto& [why, n] : unknowns)
      out += " " + why + " x" + std::to_string(n);
    return out;
  }

  load(cluster_env& env, const synced_org& org, hist::recorder& r, targets& t)
      : c(env), o(org), rec(r), to(t) {}

  void served() {
    ++rest_ok;
    if (killed && ok_after_kill++ == 0) {
      std::lock_guard<std::mutex> guard{mtx};
      back_time = hist::clock_type::now();
    }
  }

  /// An answer's outcome: 2xx ok; 503 or no answer unknown (the write may
  /// be stored: a replication timeout, a primary that died after its
  /// commit); anything else failed, and unexpected.
  outcome judge(bool sent, const api_response& r, const std::string& what) {
    if (!sent || r.status == 503) {
      std::lock_guard<std::mutex> guard{mtx};
      unknowns[sent ? r.error_code() : std::string{"no answer"}]++;
      return outcome::unknown;
    }
    if (r.status >= 200 && r.status < 300)
      return outcome::ok;
    std::lock_guard<std::mutex> guard{mtx};
    unexpected.push_back(what + ": " + r.describe());
    return outcome::failed;
  }

  /// A REST client: creates events, moves them and deletes them, through
  /// random nodes; keys "crm P-N".
  void rest_writer(int process) {
    std::mt19937 rng(c.seed() + process);
    std::vector<std::unique_ptr<api_client>> clients;
    for (auto port : to.ports)
      clients.push_back(
          std::make_unique<api_client>(port, std::chrono::seconds(20)));
    std::map<std::string, std::string> live; // key -> event id
    int n = 0;
    int created = 0;
    while (!stop) {
      auto node = to.pick(rng);
      auto& client = *clients[node];
      auto via = " via " + c.node_id(node);
      api_response r;
      std::string err;
      auto roll = rng() % 6;
      if (live.empty() || roll < 3) {
        auto key = "crm " + std::to_string(process) + "-"
                   + std::to_string(++created);
        auto t = times.at(++n);
        auto id = rec.invoke_write(process, "create" + via, key, t.first);
        bool sent = client.try_request(
            "POST", user_events_path(o.org, o.admin), o.token,
            R"({"title":)" + json_str(key) + "," + crm_times(t) + "}", r, err);
        auto result = judge(sent, r, "create " + key + via);
        rec.complete(id, result);
        if (result == outcome::ok) {
          live[key] = r.str("/id");
          served();
        }
      } else {
        auto it = std::next(live.begin(), rng() % live.size());
        auto key = it->first;
        auto path = org_path(o.org) + "/events/" + it->second;
        bool remove = roll == 5;
        auto t = times.at(++n);
        auto id
            = remove
                  ? rec.invoke_write(process, "delete" + via, key, std::nullopt)
                  : rec.invoke_write(process, "update" + via, key, t.first);
        bool sent
            = remove ? client.try_request("DELETE", path, o.token, "", r, err)
                     : client.try_request("PATCH", path, o.token,
                                          "{" + crm_times(t) + "}", r, err);
        auto result
            = judge(sent, r, (remove ? "delete " : "update ") + key + via);
        rec.complete(id, result);
        if (result == outcome::ok)
          served();
        // A key whose last write is unknown is left alone: its state is
        // not known any more.
        if (remove || result != outcome::ok)
          live.erase(key);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  /// People in Outlook: the same in the Office 365 calendar through
  /// Graph; keys "outlook N". Its writes reach the CRM through the sync,
  /// so they are eventual.
  void outlook_writer(int process) {
    std::mt19937 rng(c.seed() + process);
    std::map<std::string, std::string> live; // key -> Graph event id
    int n = 0;
    int created = 0;
    auto events = "/users/" + o.oid + "/calendars/" + o.calendar + "/events";
    while (!stop) {
      auto roll = rng() % 6;
      api_response r;
      bool sent = true;
      if (live.empty() || roll < 3) {
        auto key = "outlook " + std::to_string(++created);
        auto t = times.at(++n);
        auto id
            = rec.invoke_write(process, "outlook create", key, t.first, true);
        try {
          r = c.graph("POST", events,
                      R"({"subject":)" + json_str(key) + "," + graph_times(t)
                          + "}");
        } catch (const std::exception&) {
          sent = false;
        }
        auto result = judge(sent, r, "outlook create " + key);
        rec.complete(id, result);
        if (result == outcome::ok)
          live[key] = r.str("/id");
      } else {
        auto it = std::next(live.begin(), rng() % live.size());
        auto key = it->first;
        auto path = "/users/" + o.oid + "/events/" + it->second;
        bool remove = roll == 5;
        auto t = times.at(++n);
        auto id = remove ? rec.invoke_write(process, "outlook delete", key,
                                            std::nullopt, true)
                         : rec.invoke_write(process, "outlook update", key,
                                            t.first, true);
        try {
          r = remove ? c.graph("DELETE", path)
                     : c.graph("PATCH", path, "{" + graph_times(t) + "}");
        } catch (const std::exception&) {
          sent = false;
        }
        auto result = judge(sent, r, "outlook change " + key);
        rec.complete(id, result);
        if (remove || result != outcome::ok)
          live.erase(key);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
  }

  /// Lists the admin's events through random nodes, or through node
  /// `only` alone.
  void reader(int process, int only = -1) {
    std::mt19937 rng(c.seed() + process);
    std::vector<std::unique_ptr<api_client>> clients;
    for (auto port : to.ports)
      clients.push_back(
          std::make_unique<api_client>(port, std::chrono::seconds(20)));
    while (!stop) {
      if (only >= 0 && to.down == only) {
        // Held back while the node is away, to ask it the moment it is
        // back (a request sent meanwhile began before what it must see).
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        continue;
      }
      auto node = only >= 0 ? only : to.pick(rng);
      api_response r;
      std::string err;
      auto id = rec.invoke_read(process, "read via " + c.node_id(node));
      bool sent = clients[node]->try_request(
          "GET", user_events_path(o.org, o.admin) + "?limit=500", o.token, "",
          r, err);
      if (sent && r.status == 200) {
        rec.complete_read(id, outcome::ok, listed(r));
        served();
      } else {
        rec.complete_read(id, judge(sent, r, "read"), {});
      }
      std::this_thread::sleep_for(
          std::chrono::milliseconds(only >= 0 ? 10 : 50));
    }
  }
};

/// The title -> start entries of `a` that `b` lacks, for a report.
std::string only_in(const std::multimap<std::string, std::string>& a,
                    const std::multimap<std::string, std::string>& b) {
  // Sorted by title and start (a multimap keeps a title's starts in the
  // order they were put).
  std::vector<std::pair<std::string, std::string>> x(a.begin(), a.end());
  std::vector<std::pair<std::string, std::string>> y(b.begin(), b.end());
  std::sort(x.begin(), x.end());
  std::sort(y.begin(), y.end());
  std::vector<std::pair<std::string, std::string>> out;
  std::set_difference(x.begin(), x.end(), y.begin(), y.end(),
                      std::back_inserter(out));
  std::string s;
  for (auto& [title, start] : out)
    s += " '" + title + "' at " + start;
  return s.empty() ? " none" : s;
}

/// The CRM's events and the Office 365 calendar agree, the convergence
/// checker finds no difference and nothing is pending. Both are then
/// recorded as converged reads.
void converge(cluster_env& c, const synced_org& o, hist::recorder& rec,
              int via) {
  api_response check;
  std::multimap<std::string, std::string> crm;
  std::multimap<std::string, std::string> o365;
  bool same = eventually(
      [&] {
        auto r = c.node(via).get(o.token, user_events_path(o.org, o.admin)
                                              + "?limit=500");
        if (r.status != 200)
          return false;
        crm = listed(r);
        o365 = mailbox(c, o);
        if (crm != o365)
          return false;
        check = c.node(via).get(admin_token,
                                "/admin/v1/orgs/" + o.org + "/check");
        return check.status == 200 && check.u64("/differences") == 0
               && check.u64("/users/0/pending") == 0;
      },
      settle, std::chrono::milliseconds(250));
  // What to look at when they never agreed: the checker (it lists active
  // users only) and the user's sync state (held by the mass-delete guard,
  // an error).
  api_response sync_state;
  if (!same) {
    check = c.node(via).get(admin_token, "/admin/v1/orgs/" + o.org + "/check");
    sync_state = c.node(via).get(o.token, org_path(o.org) + "/users/" + o.admin
                                              + "/calendar-sync");
  }
  INFO("only in the CRM:" << only_in(crm, o365)
                          << "\nonly in Office 365:" << only_in(o365, crm)
                          << "\ncheck: " << check.describe()
                          << "\nsync: " << sync_state.describe());
  CHECK(same);
  auto id
      = rec.invoke_read(100, "final CRM listing via " + c.node_id(via), true);
  auto r = c.node(via).get(o.token,
                           user_events_path(o.org, o.admin) + "?limit=500");
  E2E_REQUIRE_STATUS(r, 200);
  rec.complete_read(id, outcome::ok, listed(r));
  id = rec.invoke_read(101, "final Office 365 calendar", true);
  rec.complete_read(id, outcome::ok, mailbox(c, o));
}

/// The load's unexpected answers, one a line, when a check fails.
#define CHECK_NOTHING_UNEXPECTED(l)                                            \
  do {                                                                         \
    std::string all_;                                                          \
    for (auto& u_ : (l).unexpected)                                            \
      all_ += u_ + "\n";                                                       \
    INFO("unexpected answers:\n" << all_);                                     \
    CHECK((l).unexpected.empty());                                             \
  } while (false)

void require_clean_history(const hist::recorder& rec) {
  auto found = hist::check(rec.operations());
  INFO(hist::describe(found));
  REQUIRE(found.empty());
}

/// Shard `shard` as node `i` sees it: its role, epoch and sequence.
struct shard_state {
  std::string owner;
  std::string role;
  int64_t epoch = -1;
  uint64_t sequence = 0;
  std::vector<std::string> followers;
};

shard_state shard_on(cluster_env& c, int i, uint64_t shard) {
  auto r = c.node(i).get(admin_token, "/admin/v1/shards");
  E2E_REQUIRE_STATUS(r, 200);
  auto base = "/shards/" + std::to_string(shard);
  shard_state s{r.str(base + "/node"),
                r.str(base + "/role"),
                r.i64(base + "/epoch"),
                r.u64(base + "/sequence"),
                {}};
  for (size_t k = 0; k < r.size(base + "/followers"); ++k)
    s.followers.push_back(r.str(base + "/followers/" + std::to_string(k)));
  return s;
}

/// Judges node `alone`'s copy of the organization the hard way: the other
/// nodes die, it takes the shard by itself, and its listing (recorded as
/// a converged read named `what`) must pass the history with every
/// operation so far. Office 365 is not read: the node's sync may run
/// alone now; the CRM state is what is judged.
void check_copy_alone(cluster_env& c, const synced_org& o, hist::recorder& rec,
                      int alone, const std::string& what) {
  for (int i = 0; i < cluster_env::size; ++i)
    if (i != alone)
      c.kill9(i);
  api_response r;
  bool serves = eventually(
      [&] {
        r = c.node(alone).get(o.token,
                              user_events_path(o.org, o.admin) + "?limit=500");
        return r.status == 200;
      },
      settle, std::chrono::milliseconds(200));
  INFO(r.describe());
  REQUIRE(serves);
  CHECK(r.header("X-Crmsync-Node") == c.node_id(alone));
  auto id = rec.invoke_read(103, what, true);
  rec.complete_read(id, outcome::ok, listed(r));
  auto found = hist::check(rec.operations());
  INFO(hist::describe(found));
  CHECK(found.empty());
}

/// Runs the mixed load on a cluster of `c`, kills the shard's primary
/// once enough was acknowledged, keeps the load on until the shard served
/// again, then lets everything converge and checks the history. Returns
/// the killed node's index.
int kill_primary_under_load(cluster_env& c, const synced_org& o,
                            hist::recorder& rec) {
  c.set_faults(R"({"latency_ms":30,"jitter_ms":20})");
  targets to;
  for (int i = 0; i < cluster_env::size; ++i)
    to.ports[i] = c.http_port(i);
  load l(c, o, rec, to);
  {
    crmsync::test::thread_guard clients([&] { l.stop = true; });
    clients.spawn([&] { l.rest_writer(1); });
    clients.spawn([&] { l.rest_writer(2); });
    clients.spawn([&] { l.outlook_writer(3); });
    clients.spawn([&] { l.reader(4); });
    if (!eventually([&] { return l.rest_ok.load() >= 40; },
                    std::chrono::seconds(60))) {
      l.stop = true;
      clients.join();
      CHECK_NOTHING_UNEXPECTED(l);
      for (int i = 0; i < cluster_env::size; ++i) {
        UNSCOPED_INFO(c.node_id(i) << "'s log:\n" << c.proc_log(i));
        if (FILE* f = std::fopen(("/tmp/t15j_" + c.node_id(i)).c_str(), "w")) {
          auto all = c.full_log(i);
          std::fwrite(all.data(), 1, all.size(), f);
          std::fclose(f);
        }
      }
      FAIL("the load got " << l.rest_ok.load() << " answers; writes ok "
                           << rec.writes(outcome::ok) << ", unknown "
                           << rec.writes(outcome::unknown) << " ("
                           << l.unknown_causes() << "), failed "
                           << rec.writes(outcome::failed));
    }
    auto primary = c.index_of(c.owner_of(o.org));
    // The worst moment: the followers are behind. They are paused for a
    // moment (far less than the lease: a follower whose lease lapsed
    // would be replaced and rebuilt, and a shard whose only follower is
    // being rebuilt has no primary after the kill, ADR 0008) under the
    // load, and the primary dies
    // before they caught up; what it wrote meanwhile must not have been
    // acknowledged (it is with --replication-ack 0, and lost).
    std::vector<pid_t> followers;
    for (auto& f : shard_on(c, primary, o.shard).followers)
      followers.push_back(c.pid(c.index_of(f)));
    REQUIRE(!followers.empty());
    for (auto p : followers)
      REQUIRE(::kill(p, SIGSTOP) == 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    {
      std::lock_guard<std::mutex> guard{l.mtx};
      to.down = primary;
      l.kill_time = hist::clock_type::now();
      l.killed = true;
    }
    c.kill9(primary);
    for (auto p : followers)
      REQUIRE(::kill(p, SIGCONT) == 0);
    // Served again: REST operations through the other nodes succeed.
    bool back
        = eventually([&] { return l.ok_after_kill.load() >= 30; }, settle);
    l.stop = true;
    clients.join();
    INFO(l.ok_after_kill.load()
         << " answered after the kill; unknown:" << l.unknown_causes());
    for (int i = 0; i < cluster_env::size; ++i)
      if (!back && c.running(i))
        UNSCOPED_INFO(c.node_id(i) << "'s log:\n" << c.proc_log(i));
    REQUIRE(back);
    auto outage = std::chrono::duration_cast<std::chrono::milliseconds>(
        l.back_time - l.kill_time);
    WARN("failover under mixed load: first REST operation answered "
         << outage.count() << " ms after SIGKILL of " << c.node_id(primary)
         << "; writes ok " << rec.writes(outcome::ok) << ", unknown "
         << rec.writes(outcome::unknown) << " (" << l.unknown_causes()
         << "), failed " << rec.writes(outcome::failed));
    CHECK_NOTHING_UNEXPECTED(l);
    c.set_faults(R"({"latency_ms":0,"jitter_ms":0})");
    converge(c, o, rec, (primary + 1) % cluster_env::size);
    require_clean_history(rec);
    // crmsyncctl's check agrees.
    auto ctl = run_ctl(
        {"--node",
         "http://127.0.0.1:"
             + std::to_string(c.http_port((primary + 2) % cluster_env::size)),
         "--token", admin_token, "check", o.org});
    INFO(ctl.out << ctl.err);
    CHECK(ctl.rc == 0);
    return primary;
  }
}

} // namespace

TEST_CASE("cluster (failover history): kill -9 of a primary under mixed "
          "load loses no acknowledged write, duplicates nothing, and the "
          "returning node serves nothing of its own",
          "[e2e][cluster][etcd][replication][history]") {
  crmsync::test::temp_dir dir;
  etcd_process store{dir.path() + "/etcd"};
  cluster_env c(node_flags(), store.url());
  INFO("random seed " << c.seed());
  auto o = install_synced(c);
  hist::recorder rec;
  auto killed = kill_primary_under_load(c, o, rec);
  auto now_primary = c.index_of(c.owner_of(o.org));
  REQUIRE(now_primary != killed);

  // The old primary returns. With three nodes and factor 2 the new
  // primary already has a follower: the old one keeps no role in the
  // shard, dropped its copy (with any unacknowledged tail: it holds no
  // sequence of the shard), and serves the organization through the new
  // primary.
  c.start(killed);
  c.wait_ready();
  CHECK(eventually(
      [&] {
        auto s = shard_on(c, killed, o.shard);
        return s.owner == c.node_id(now_primary) && s.role == "none"
               && s.sequence == 0;
      },
      settle));
  auto id = rec.invoke_read(102, "listing via the returned node", true);
  auto r = c.node(killed).get(o.token,
                              user_events_path(o.org, o.admin) + "?limit=500");
  E2E_REQUIRE_STATUS(r, 200);
  CHECK(r.header("X-Crmsync-Node") == c.node_id(now_primary));
  rec.complete_read(id, outcome::ok, listed(r));
  require_clean_history(rec);
}

TEST_CASE("cluster (failover history): with factor 3 the killed primary "
          "returns as a follower, without its unacknowledged tail, and its "
          "copy alone holds every acknowledged write",
          "[e2e][cluster][etcd][replication][history]") {
  crmsync::test::temp_dir dir;
  etcd_process store{dir.path() + "/etcd"};
  cluster_env c(node_flags({"--replication-factor", "3"}), store.url());
  INFO("random seed " << c.seed());
  auto o = install_synced(c);
  hist::recorder rec;
  auto killed = kill_primary_under_load(c, o, rec);
  auto now_primary = c.index_of(c.owner_of(o.org));
  REQUIRE(now_primary != killed);

  c.start(killed);
  c.wait_ready();
  // A follower again, rebuilt at the new epoch: what it holds is the new
  // primary's history up to the same sequence.
  // The primary is whichever node the map names now (read each time: the
  // shard may be handed on while the node returns); one reading of it
  // alone could not tell a lagging copy from a primary that moved.
  shard_state mine;
  shard_state theirs;
  int primary_now = now_primary;
  bool follows = eventually(
      [&] {
        primary_now = c.index_of(c.owner_of(o.org));
        mine = shard_on(c, killed, o.shard);
        theirs = shard_on(c, primary_now, o.shard);
        return primary_now != killed && mine.role == "follower"
               && theirs.role == "primary" && mine.epoch == theirs.epoch
               && mine.sequence == theirs.sequence;
      },
      settle, std::chrono::milliseconds(200));
  INFO("returned: " << mine.role << " epoch " << mine.epoch << " sequence "
                    << mine.sequence << "; n" << primary_now + 1
                    << " (primary after the kill: n" << now_primary + 1
                    << "): " << theirs.role << " epoch " << theirs.epoch
                    << " sequence " << theirs.sequence);
  REQUIRE(follows);

  // Its copy is checked the hard way.
  check_copy_alone(c, o, rec, killed,
                   "listing of the returned node's own copy");
}

TEST_CASE("cluster (failover history): a primary paused past its lease "
          "serves no stale read and loses nothing when it resumes",
          "[e2e][cluster][etcd][replication][history]") {
  crmsync::test::temp_dir dir;
  etcd_process store{dir.path() + "/etcd"};
  cluster_env c(node_flags({"--replication-timeout", "1500"}), store.url());
  INFO("random seed " << c.seed());
  auto made = c.call_retrying("POST", "/api/v1/orgs", admin_token,
                              org_body("paused", "paused@example.org"));
  E2E_REQUIRE_STATUS(made, 201);
  synced_org o;
  o.org = made.str("/org/id");
  o.admin = made.str("/admin/id");
  o.token = made.str("/admin/token");
  auto placed
      = c.call_retrying("GET", "/admin/v1/tenants/" + o.org, admin_token);
  E2E_REQUIRE_STATUS(placed, 200);
  o.shard = placed.u64("/shard");
  auto primary = c.index_of(placed.str("/node"));
  auto other = (primary + 1) % cluster_env::size;

  hist::recorder rec;
  targets to;
  for (int i = 0; i < cluster_env::size; ++i)
    to.ports[i] = c.http_port(i);
  load l(c, o, rec, to);
  crmsync::test::thread_guard clients([&] {
    l.stop = true;
    ::kill(c.pid(primary), SIGCONT);
  });
  clients.spawn([&] { l.rest_writer(1); });
  clients.spawn([&] { l.rest_writer(2); });
  clients.spawn([&] { l.reader(3); });
  // Readers that ask the primary alone: once resumed, it must not
  // answer from what it held before it was deposed.
  for (int k = 4; k < 7; ++k)
    clients.spawn([&, k] { l.reader(k, primary); });
  REQUIRE(eventually([&] { return l.rest_ok.load() >= 30; },
                     std::chrono::seconds(60)));
  // The writers keep to the other nodes while it is paused (a request
  // to it would wait for the resume); the dedicated reader does not.
  to.down = primary;
  REQUIRE(::kill(c.pid(primary), SIGSTOP) == 0);
  auto paused = hist::clock_type::now();
  // Deposed: another node owns the shard, and acknowledges writes.
  CHECK(eventually(
      [&] { return shard_on(c, other, o.shard).owner != c.node_id(primary); },
      settle, std::chrono::milliseconds(100)));
  auto acked_before = rec.writes(outcome::ok);
  CHECK(eventually([&] { return rec.writes(outcome::ok) >= acked_before + 10; },
                   std::chrono::seconds(60)));
  REQUIRE(::kill(c.pid(primary), SIGCONT) == 0);
  auto resumed = hist::clock_type::now();
  to.down = -1;
  auto reads_before = rec.operations().size();
  // The load goes on for a while after the resume.
  CHECK(eventually([&] { return rec.operations().size() >= reads_before + 60; },
                   std::chrono::seconds(60)));
  l.stop = true;
  clients.join();
  WARN("paused " << std::chrono::duration_cast<std::chrono::milliseconds>(
                        resumed - paused)
                        .count()
                 << " ms; writes ok " << rec.writes(outcome::ok) << ", unknown "
                 << rec.writes(outcome::unknown) << ", failed "
                 << rec.writes(outcome::failed));
  CHECK_NOTHING_UNEXPECTED(l);
  c.wait_ready();
  auto id
      = rec.invoke_read(100, "final listing via " + c.node_id(primary), true);
  auto r = c.node(primary).get(o.token,
                               user_events_path(o.org, o.admin) + "?limit=500");
  E2E_REQUIRE_STATUS(r, 200);
  rec.complete_read(id, outcome::ok, listed(r));
  require_clean_history(rec);
}

TEST_CASE("cluster (failover history): a primary whose data directory is "
          "deleted while it is down returns as a follower of every shard, "
          "rebuilt from the others, and its copy alone holds every "
          "acknowledged write",
          "[e2e][cluster][etcd][replication][history]") {
  crmsync::test::temp_dir dir;
  etcd_process store{dir.path() + "/etcd"};
  cluster_env c(node_flags({"--replication-factor", "3"}), store.url());
  INFO("random seed " << c.seed());
  auto o = install_synced(c);
  c.set_faults(R"({"latency_ms":30,"jitter_ms":20})");
  hist::recorder rec;
  targets to;
  for (int i = 0; i < cluster_env::size; ++i)
    to.ports[i] = c.http_port(i);
  load l(c, o, rec, to);
  auto wiped = c.index_of(c.owner_of(o.org));
  {
    crmsync::test::thread_guard clients([&] { l.stop = true; });
    clients.spawn([&] { l.rest_writer(1); });
    clients.spawn([&] { l.rest_writer(2); });
    clients.spawn([&] { l.reader(4); });
    REQUIRE(eventually([&] { return l.rest_ok.load() >= 30; },
                       std::chrono::seconds(60)));
    {
      std::lock_guard<std::mutex> guard{l.mtx};
      to.down = wiped;
      l.kill_time = hist::clock_type::now();
      l.killed = true;
    }
    c.kill9(wiped);
    std::error_code ec;
    std::filesystem::remove_all(c.data_dir(wiped), ec);
    REQUIRE_FALSE(ec);
    REQUIRE_FALSE(std::filesystem::exists(c.data_dir(wiped)));
    // The others serve the shard and take writes while it is away.
    REQUIRE(eventually([&] { return l.ok_after_kill.load() >= 20; }, settle));
    c.start(wiped);
    c.wait_ready();
    // More writes while it is rebuilt (through the two others: the
    // clients' connections to its old port are gone).
    auto before = l.rest_ok.load();
    CHECK(eventually([&] { return l.rest_ok.load() >= before + 30; },
                     std::chrono::seconds(60)));
    l.stop = true;
    clients.join();
    CHECK_NOTHING_UNEXPECTED(l);
  }
  auto now_primary = c.index_of(c.owner_of(o.org));
  REQUIRE(now_primary != wiped);

  // Every shard: it holds a copy (factor 3 on three nodes), at the
  // primary's epoch and sequence; the loaded one as a follower.
  std::string differs;
  bool rebuilt = eventually(
      [&] {
        differs.clear();
        auto mine = c.node(wiped).get(admin_token, "/admin/v1/shards");
        if (mine.status != 200)
          return false;
        for (size_t k = 0; k < mine.size("/shards"); ++k) {
          auto base = "/shards/" + std::to_string(k);
          auto owner = mine.str(base + "/node");
          auto role = mine.str(base + "/role");
          auto id = std::to_string(k);
          if (role != "follower" && role != "primary") {
            differs += " shard " + id + " role " + role;
            continue;
          }
          auto theirs = shard_on(c, c.index_of(owner), k);
          if (theirs.epoch != mine.i64(base + "/epoch")
              || theirs.sequence != mine.u64(base + "/sequence"))
            differs += " shard " + id + " at "
                       + std::to_string(mine.u64(base + "/sequence")) + " of "
                       + std::to_string(theirs.sequence);
        }
        auto s = shard_on(c, wiped, o.shard);
        if (s.role != "follower")
          differs += " loaded shard role " + s.role;
        return differs.empty();
      },
      settle, std::chrono::milliseconds(250));
  INFO("not rebuilt:" << differs);
  REQUIRE(rebuilt);
  CHECK(shard_on(c, wiped, o.shard).sequence > 0);

  check_copy_alone(c, o, rec, wiped, "listing of the rebuilt node's copy");
  CHECK(rec.writes(outcome::ok) >= 20);
}
