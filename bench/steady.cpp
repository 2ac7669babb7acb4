// The steady-state calendar-sync benchmark (issue 5, target b); see
// steady.hpp and bench/run-steady.sh.
//
// Setup plays what people do: per Office 365 tenant, its administrator
// installs the CRM (sign-in and admin consent through graph-emulator's
// identity platform, redirects followed by hand); every other user signs
// in, asks to join, and the service admin approves; then calendar sync is
// turned on for everyone, and setup waits until every user is "active".
//
// The run sends changes on a fixed schedule (change k is due at
// start + k / rate, whatever happened to the ones before: open loop), each
// from one of --connections writer threads. Even changes go CRM -> Office
// 365 (REST writes of crmsyncd's API), odd ones Office 365 -> CRM (Graph
// writes of a second app, "a person in Outlook", at the emulator). Each
// carries a unique title. After the load, the other sides are read: a
// change's latency is the other side's creation or modification time
// (crmsyncd's created_at/modified_at, the emulator's createdDateTime/
// lastModifiedDateTime, both in milliseconds) minus the time the loadgen
// got the write's acknowledgement. Deletions are checked for arrival only.
#include "bench/steady.hpp"

#include "common/text.hpp"
#include "common/time_format.hpp"
#include "http/client.hpp"
#include "protocol/json.hpp"

#include <simdjson.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <dirent.h>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <unistd.h>
#include <vector>

namespace crmsync::bench {

namespace {

using steady = std::chrono::steady_clock;
using http::client_response;
using http::header_list;

int64_t wall_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double since_s(steady::time_point t0) {
  return std::chrono::duration<double>(steady::now() - t0).count();
}

std::string json_str(std::string_view s) {
  std::string out;
  json::append_string(out, s);
  return out;
}

/// Percent-encodes all but RFC 3986 unreserved characters.
std::string pct(std::string_view in) {
  static const char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char ch : in) {
    if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
      out += static_cast<char>(ch);
    } else {
      out += '%';
      out += hex[ch >> 4];
      out += hex[ch & 15];
    }
  }
  return out;
}

std::string snippet(const std::string& body) {
  return body.size() <= 300 ? body : body.substr(0, 300) + "...";
}

// -- JSON -----------------------------------------------------------------

/// A parsed answer; `str` reads a string at a JSON pointer ("" if absent).
class json_doc {
public:
  bool parse(const std::string& text) {
    buf_ = simdjson::padded_string(text);
    return !parser_.parse(buf_).get(root_);
  }
  std::string str(const char* pointer) const {
    std::string_view v;
    if (root_.at_pointer(pointer).get_string().get(v))
      return {};
    return std::string{v};
  }
  simdjson::dom::element root() const {
    return root_;
  }

private:
  simdjson::padded_string buf_;
  simdjson::dom::parser parser_;
  simdjson::dom::element root_;
};

std::string elem_str(simdjson::dom::element e, const char* key) {
  std::string_view v;
  if (e[key].get_string().get(v))
    return {};
  return std::string{v};
}

// -- HTTP -----------------------------------------------------------------

struct origin {
  std::string base; ///< "http://host:port"
  std::string host;
  uint16_t port = 0;
};

bool parse_origin(const std::string& url, origin& out, std::string& err) {
  out.base = url;
  while (!out.base.empty() && out.base.back() == '/')
    out.base.pop_back();
  return http::parse_base_url(out.base, out.host, out.port, err);
}

/// One thread's connections to the node and to the emulator.
struct conns {
  conns(const origin& node, const origin& emu)
      : node_origin(node)
      , emu_origin(emu)
      , node(node.host, node.port, std::chrono::seconds(30))
      , emu(emu.host, emu.port, std::chrono::seconds(30)) {}

  /// The client for an absolute URL of either, with the URL's target.
  http::client* route(const std::string& url, std::string& target) {
    for (auto* o : {&node_origin, &emu_origin})
      if (url.rfind(o->base + "/", 0) == 0) {
        target = url.substr(o->base.size());
        return o == &node_origin ? &node : &emu;
      }
    return nullptr;
  }

  origin node_origin, emu_origin;
  http::client node;
  http::client emu;
};

/// A request that must answer `expected`; otherwise `err` says what came.
bool call(http::client& c, const char* method, const std::string& target,
          const std::string& body, const header_list& headers, int expected,
          client_response& res, std::string& err) {
  if (!c.request(method, target, body, headers, res, err)) {
    err = std::string(method) + " " + target + ": " + err;
    return false;
  }
  if (res.status != expected) {
    err = std::string(method) + " " + target + " answered "
          + std::to_string(res.status) + ": " + snippet(res.body);
    return false;
  }
  return true;
}

/// Plays a browser through a sign-in from `url` (absolute) as `person`,
/// appending login_hint where the identity platform asks, until an answer
/// that is not a redirect; true if that answer is 200. Like a browser it
/// keeps the node's cookies for the sign-in (the callback must carry the
/// cookie its start set).
bool browse(conns& c, std::string url, const std::string& person,
            client_response& res, std::string& err) {
  std::map<std::string, std::string> cookies;
  for (int hop = 0; hop < 10; ++hop) {
    if (url.find("/oauth2/v2.0/authorize?") != std::string::npos
        || url.find("/adminconsent?") != std::string::npos)
      url += "&login_hint=" + pct(person);
    std::string target;
    auto* client = c.route(url, target);
    if (client == nullptr) {
      err = "sign-in redirected outside node and emulator: " + url;
      return false;
    }
    header_list headers;
    if (client == &c.node && !cookies.empty()) {
      std::string jar;
      for (auto& [name, value] : cookies)
        jar += (jar.empty() ? "" : "; ") + name + "=" + value;
      headers.emplace_back("Cookie", jar);
    }
    if (!client->request("GET", target, "", headers, res, err)) {
      err = "GET " + url + ": " + err;
      return false;
    }
    if (client == &c.node)
      for (auto& [name, value] : res.headers) {
        if (ascii_lower(name) != "set-cookie")
          continue;
        auto pair = value.substr(0, value.find(';'));
        auto eq = pair.find('=');
        if (eq != std::string::npos && eq > 0)
          cookies[pair.substr(0, eq)] = pair.substr(eq + 1);
      }
    if (res.status == 302 || res.status == 303) {
      url = res.header("Location");
      continue;
    }
    if (res.status != 200) {
      err = "sign-in of " + person + " ended with " + std::to_string(res.status)
            + ": " + snippet(res.body);
      return false;
    }
    return true;
  }
  err = "sign-in of " + person + ": too many redirects";
  return false;
}

/// Runs fn(i, conns) for i in [0, n) on `threads` threads; the first error
/// stops every thread and is returned.
std::string
parallel_for(int n, int threads, const origin& node, const origin& emu,
             const std::function<bool(int, conns&, std::string&)>& fn) {
  std::atomic<int> next{0};
  std::atomic<bool> failed{false};
  std::mutex mtx;
  std::string first_error;
  std::vector<std::thread> pool;
  for (int t = 0; t < std::max(1, std::min(threads, n)); ++t)
    pool.emplace_back([&] {
      conns c(node, emu);
      for (;;) {
        int i = next.fetch_add(1);
        if (i >= n || failed)
          return;
        std::string err;
        if (!fn(i, c, err)) {
          std::lock_guard<std::mutex> g(mtx);
          if (!failed.exchange(true))
            first_error = err.empty() ? "failed" : err;
          return;
        }
      }
    });
  for (auto& t : pool)
    t.join();
  return first_error;
}

// -- state file -------------------------------------------------------------

/// One synced user as the run needs it.
struct synced_user {
  std::string org, user, oid, tenant, calendar;
};

bool write_state(const std::string& path, const std::vector<synced_user>& us) {
  std::ofstream out(path);
  for (auto& u : us)
    out << "user " << u.org << ' ' << u.user << ' ' << u.oid << ' ' << u.tenant
        << ' ' << u.calendar << '\n';
  return static_cast<bool>(out);
}

bool read_state(const std::string& path, std::vector<synced_user>& us,
                std::string& err) {
  std::ifstream in(path);
  if (!in) {
    err = "cannot read the state file " + path;
    return false;
  }
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    std::istringstream fields(line);
    std::string kind;
    synced_user u;
    if (!(fields >> kind >> u.org >> u.user >> u.oid >> u.tenant >> u.calendar)
        || kind != "user") {
      err = path + ":" + std::to_string(n) + ": not a user line";
      return false;
    }
    us.push_back(u);
  }
  if (us.empty()) {
    err = path + ": no users";
    return false;
  }
  return true;
}

// -- setup ------------------------------------------------------------------

struct tenant_seed {
  std::string domain;
  std::vector<std::string> upns; ///< [0] is the administrator
  std::vector<std::string> oids;
  std::string org;
  std::string admin_user;
};

std::string random_hex(int n) {
  std::random_device rd;
  std::mt19937_64 gen((static_cast<uint64_t>(rd()) << 32) ^ rd());
  std::string s;
  static const char hex[] = "0123456789abcdef";
  for (int i = 0; i < n; ++i)
    s += hex[gen() % 16];
  return s;
}

} // namespace

int steady_setup(const steady_config& cfg) {
  origin node, emu;
  std::string err;
  if (!parse_origin(cfg.node, node, err)
      || !parse_origin(cfg.emulator, emu, err)) {
    std::cerr << "crmsync-loadgen: " << err << "\n";
    return 2;
  }
  if (cfg.users < 1 || cfg.state_file.empty() || cfg.admin_token.empty()) {
    std::cerr << "crmsync-loadgen: --steady-setup needs --users >= 1, a state "
                 "file and the admin token\n";
    return 2;
  }
  const int tenants = cfg.tenants > 0 ? std::min(cfg.tenants, cfg.users)
                                      : std::max(1, (cfg.users + 99) / 100);
  const std::string tag = random_hex(6);
  const header_list admin{{"Authorization", "Bearer " + cfg.admin_token},
                          {"Content-Type", "application/json"}};
  auto t0 = steady::now();

  // 1. The tenants and their people, in the emulator's directory.
  std::vector<tenant_seed> seeds(static_cast<size_t>(tenants));
  conns main_conns(node, emu);
  client_response res;
  for (int t = 0; t < tenants; ++t) {
    auto& s = seeds[static_cast<size_t>(t)];
    s.domain = "steady-" + tag + "-" + std::to_string(t) + ".example";
    int count = cfg.users / tenants + (t < cfg.users % tenants ? 1 : 0);
    std::string body = "{\"domain\":" + json_str(s.domain) + ",\"users\":[";
    for (int i = 0; i < count; ++i) {
      std::string upn
          = (i == 0 ? std::string("admin") : "u" + std::to_string(i)) + "@"
            + s.domain;
      s.upns.push_back(upn);
      body += std::string(i ? "," : "")
              + "{\"userPrincipalName\":" + json_str(upn) + ",\"displayName\":"
              + json_str("Person " + std::to_string(i) + " of " + s.domain)
              + ",\"mail\":" + json_str(upn)
              + (i == 0 ? ",\"isAdmin\":true}" : "}");
    }
    body += "]}";
    if (!call(main_conns.emu, "POST", "/_emulator/tenants", body,
              {{"Content-Type", "application/json"}}, 201, res, err)) {
      std::cerr << "crmsync-loadgen: " << err << "\n";
      return 2;
    }
    json_doc d;
    simdjson::dom::array arr;
    if (!d.parse(res.body) || d.root()["users"].get_array().get(arr)) {
      std::cerr << "crmsync-loadgen: bad tenant answer " << snippet(res.body)
                << "\n";
      return 2;
    }
    for (auto u : arr)
      s.oids.push_back(elem_str(u, "id"));
  }
  // The second app, "a person in Outlook", consented everywhere.
  std::string apps = "{\"client_id\":" + json_str(cfg.outlook_client_id)
                     + ",\"client_secret\":" + json_str(cfg.outlook_secret)
                     + ",\"tenants\":[";
  for (int t = 0; t < tenants; ++t)
    apps += (t ? "," : "") + json_str(seeds[static_cast<size_t>(t)].domain);
  apps += "]}";
  if (!call(main_conns.emu, "POST", "/_emulator/apps", apps,
            {{"Content-Type", "application/json"}}, 201, res, err)) {
    std::cerr << "crmsync-loadgen: " << err << "\n";
    return 2;
  }
  std::printf("setup: %d users in %d tenants seeded in the emulator (%.1f s)\n",
              cfg.users, tenants, since_s(t0));
  std::fflush(stdout);

  // 2. Each administrator installs the CRM (sign-in, then admin consent).
  auto t1 = steady::now();
  err = parallel_for(
      tenants, cfg.threads, node, emu, [&](int t, conns& c, std::string& e) {
        auto& s = seeds[static_cast<size_t>(t)];
        client_response r;
        if (!browse(c, node.base + "/o365/install", s.upns[0], r, e))
          return false;
        json_doc d;
        if (!d.parse(r.body)) {
          e = "install answer: " + snippet(r.body);
          return false;
        }
        s.org = d.str("/organization/id");
        s.admin_user = d.str("/user/id");
        if (s.org.empty() || s.admin_user.empty()) {
          e = "install answer: " + snippet(r.body);
          return false;
        }
        // Approving join requests is a paid-edition feature: the
        // benchmark's organizations are paying customers (billing's call).
        return call(c.node, "PATCH", "/api/v1/orgs/" + s.org,
                    R"({"edition":"paid"})", admin, 200, r, e);
      });
  if (!err.empty()) {
    std::cerr << "crmsync-loadgen: install: " << err << "\n";
    return 2;
  }
  std::printf("setup: %d installs, paid edition (%.1f s)\n", tenants,
              since_s(t1));
  std::fflush(stdout);

  // 3. Everyone else signs in, asks to join, and is approved.
  struct member {
    size_t tenant;
    size_t index;
    std::string user;
  };
  std::vector<member> members;
  for (size_t t = 0; t < seeds.size(); ++t)
    for (size_t i = 0; i < seeds[t].upns.size(); ++i)
      members.push_back(member{t, i, i == 0 ? seeds[t].admin_user : ""});
  auto t2 = steady::now();
  err = parallel_for(
      static_cast<int>(members.size()), cfg.threads, node, emu,
      [&](int k, conns& c, std::string& e) {
        auto& m = members[static_cast<size_t>(k)];
        if (m.index == 0)
          return true;
        auto& s = seeds[m.tenant];
        client_response r;
        if (!browse(c, node.base + "/o365/signin", s.upns[m.index], r, e))
          return false;
        json_doc d;
        if (!d.parse(r.body) || d.str("/office365_session").empty()) {
          e = "sign-in answer: " + snippet(r.body);
          return false;
        }
        header_list session{
            {"Authorization", "Bearer " + d.str("/office365_session")},
            {"Content-Type", "application/json"}};
        if (!call(c.node, "POST", "/api/v1/join-requests", "{}", session, 201,
                  r, e))
          return false;
        json_doc j;
        if (!j.parse(r.body) || j.str("/id").empty()) {
          e = "join request answer: " + snippet(r.body);
          return false;
        }
        if (!call(c.node, "POST",
                  "/api/v1/orgs/" + s.org + "/join-requests/" + j.str("/id")
                      + "/approve",
                  "{}", admin, 200, r, e))
          return false;
        json_doc a;
        if (!a.parse(r.body) || (m.user = a.str("/user/id")).empty()) {
          e = "approval answer: " + snippet(r.body);
          return false;
        }
        return true;
      });
  if (!err.empty()) {
    std::cerr << "crmsync-loadgen: joining: " << err << "\n";
    return 2;
  }
  std::printf("setup: %zu users signed in, asked to join, approved (%.1f s)\n",
              members.size() - seeds.size(), since_s(t2));
  std::fflush(stdout);

  // 4. Calendar sync on for everyone; then wait for "active".
  std::vector<synced_user> synced(members.size());
  if (!cfg.enable_sync) {
    for (size_t k = 0; k < members.size(); ++k) {
      auto& m = members[k];
      auto& s = seeds[m.tenant];
      synced[k] = synced_user{s.org, m.user, s.oids[m.index], s.domain, "-"};
    }
    if (!write_state(cfg.state_file, synced)) {
      std::cerr << "crmsync-loadgen: cannot write " << cfg.state_file << "\n";
      return 2;
    }
    std::printf("setup: done in %.1f s, calendar sync off; state in %s\n",
                since_s(t0), cfg.state_file.c_str());
    std::fflush(stdout);
    return 0;
  }
  // In waves of cfg.enable_wave users (all at once when 0): each wave is
  // turned on, then waited for until every user in it is active.
  const size_t wave = cfg.enable_wave > 0 ? static_cast<size_t>(cfg.enable_wave)
                                          : std::max<size_t>(members.size(), 1);
  auto t4 = steady::now();
  const auto give_up = steady::now() + std::chrono::minutes(30);
  for (size_t from = 0; from < members.size(); from += wave) {
    const size_t n = std::min(wave, members.size() - from);
    err = parallel_for(
        static_cast<int>(n), cfg.threads, node, emu,
        [&](int k, conns& c, std::string& e) {
          auto i = from + static_cast<size_t>(k);
          auto& m = members[i];
          auto& s = seeds[m.tenant];
          client_response r;
          synced[i] = synced_user{s.org, m.user, s.oids[m.index], s.domain, ""};
          return call(c.node, "PUT",
                      "/api/v1/orgs/" + s.org + "/users/" + m.user
                          + "/calendar-sync",
                      "{\"enabled\":true}", admin, 200, r, e);
        });
    if (!err.empty()) {
      std::cerr << "crmsync-loadgen: enabling sync: " << err << "\n";
      return 2;
    }
    if (from == 0) {
      std::printf("setup: calendar sync turning on in waves of %zu users\n",
                  wave);
      std::fflush(stdout);
    }
    err = parallel_for(
        static_cast<int>(n), cfg.threads, node, emu,
        [&](int k, conns& c, std::string& e) {
          auto& u = synced[from + static_cast<size_t>(k)];
          client_response r;
          for (;;) {
            if (!call(c.node, "GET",
                      "/api/v1/orgs/" + u.org + "/users/" + u.user
                          + "/calendar-sync",
                      "", admin, 200, r, e))
              return false;
            json_doc d;
            if (!d.parse(r.body)) {
              e = "sync status: " + snippet(r.body);
              return false;
            }
            auto state = d.str("/state");
            if (state == "active" && !d.str("/office365_calendar_id").empty()) {
              u.calendar = d.str("/office365_calendar_id");
              return true;
            }
            if (state == "error" || steady::now() > give_up) {
              e = "sync of " + u.user
                  + " did not become active: " + snippet(r.body);
              return false;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
          }
        });
    if (!err.empty()) {
      std::cerr << "crmsync-loadgen: waiting for sync: " << err << "\n";
      return 2;
    }
    if (n < members.size()) {
      std::printf("setup: %zu of %zu users active (%.1f s)\n", from + n,
                  members.size(), since_s(t4));
      std::fflush(stdout);
    }
  }
  std::printf("setup: all %zu users active (%.1f s after the first PUT)\n",
              synced.size(), since_s(t4));
  if (!write_state(cfg.state_file, synced)) {
    std::cerr << "crmsync-loadgen: cannot write " << cfg.state_file << "\n";
    return 2;
  }
  std::printf("setup: done in %.1f s; state in %s\n", since_s(t0),
              cfg.state_file.c_str());
  std::fflush(stdout);
  return 0;
}

namespace {

// -- the run ----------------------------------------------------------------

enum direction { to_office365 = 0, to_crm = 1 };
const char* const direction_name[] = {"CRM -> Office 365", "Office 365 -> CRM"};

/// One event the run created, on the side it was written.
struct tracked {
  std::string id;    ///< the CRM event id or the Graph item id
  std::string title; ///< what it is called now
  int64_t created_ack_us = 0;
  int64_t updated_ack_us = 0; ///< 0: never updated
  bool busy = false;          ///< a write of it is in flight
  bool deleted = false;
  bool uncertain = false; ///< a write's outcome is unknown: not verified
};

struct user_slot {
  synced_user u;
  std::mutex mtx;
  std::vector<tracked> events[2]; ///< per direction
};

enum op_kind { op_create = 0, op_update = 1, op_delete = 2 };
const char* const op_name[] = {"create", "update", "delete"};

struct writer_stats {
  std::vector<int64_t> lag_us;            ///< sent after its due time
  std::vector<int64_t> ack_us[2];         ///< write round trip, per direction
  uint64_t ops[2][3] = {};                ///< acknowledged
  std::map<std::string, uint64_t> errors; ///< "direction op status" -> n
  std::map<std::string, std::string> samples;
};

struct verify_result {
  std::vector<int64_t> latency_us[2][2]; ///< [direction][create/update]
  /// (ack time, latency) of every sample, both directions: the timeline.
  std::vector<std::pair<int64_t, int64_t>> timeline;
  uint64_t missing[2][3] = {}; ///< [direction][op]
  uint64_t duplicates[2] = {};
  uint64_t unexpected[2] = {}; ///< run titles matching no live event
  uint64_t early[2] = {};      ///< applied before the ack arrived
  uint64_t uncertain[2] = {};
  uint64_t not_arrived() const {
    uint64_t n = 0;
    for (auto& d : missing)
      for (auto m : d)
        n += m;
    return n + unexpected[0] + unexpected[1];
  }
};

double pct_ms(const std::vector<int64_t>& sorted, double q) {
  if (sorted.empty())
    return 0;
  auto rank = static_cast<size_t>(std::ceil(q * sorted.size()));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return static_cast<double>(sorted[rank - 1]) / 1000.0;
}

std::string summary(std::vector<int64_t> v) {
  std::sort(v.begin(), v.end());
  char buf[200];
  std::snprintf(buf, sizeof buf,
                "p50 %.1f  p90 %.1f  p99 %.1f  max %.1f ms (%zu samples)",
                pct_ms(v, 0.5), pct_ms(v, 0.9), pct_ms(v, 0.99),
                v.empty() ? 0.0 : static_cast<double>(v.back()) / 1000.0,
                v.size());
  return buf;
}

std::string summary_json(std::vector<int64_t> v) {
  std::sort(v.begin(), v.end());
  char buf[200];
  std::snprintf(buf, sizeof buf,
                "{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"max\":%.1f,"
                "\"samples\":%zu}",
                pct_ms(v, 0.5), pct_ms(v, 0.9), pct_ms(v, 0.99),
                v.empty() ? 0.0 : static_cast<double>(v.back()) / 1000.0,
                v.size());
  return buf;
}

/// What the other side holds of this run's events: title -> (created,
/// modified) in ms, for titles of one direction.
using holdings = std::multimap<std::string, std::pair<int64_t, int64_t>>;

bool read_time(const std::string& text, int64_t& ms) {
  auto v = parse_rfc3339_ms(text);
  if (!v)
    return false;
  ms = *v;
  return true;
}

/// Adds the items of one listing page whose `name_key` starts with
/// `prefix` to `out`, with their creation and modification times.
bool take_page(const client_response& r, json_doc& d, const char* items_key,
               const char* name_key, const char* created_key,
               const char* modified_key, const std::string& prefix,
               const char* what, holdings& out, std::string& err) {
  simdjson::dom::array items;
  if (!d.parse(r.body) || d.root()[items_key].get_array().get(items)) {
    err = std::string{what} + ": " + snippet(r.body);
    return false;
  }
  for (auto e : items) {
    auto name = elem_str(e, name_key);
    if (name.rfind(prefix, 0) != 0)
      continue;
    int64_t created = 0, modified = 0;
    if (!read_time(elem_str(e, created_key), created)
        || !read_time(elem_str(e, modified_key), modified)) {
      err = std::string{what} + ": bad times in " + snippet(r.body);
      return false;
    }
    out.emplace(name, std::make_pair(created, modified));
  }
  return true;
}

/// The user's CRM events whose title starts with `prefix`.
bool crm_holdings(conns& c, const header_list& admin, const synced_user& u,
                  const std::string& prefix, holdings& out, std::string& err) {
  std::string cursor;
  for (;;) {
    std::string target
        = "/api/v1/orgs/" + u.org + "/users/" + u.user + "/events?limit=1000";
    if (!cursor.empty())
      target += "&cursor=" + pct(cursor);
    client_response r;
    if (!call(c.node, "GET", target, "", admin, 200, r, err))
      return false;
    json_doc d;
    if (!take_page(r, d, "items", "title", "created_at", "modified_at", prefix,
                   "event list", out, err))
      return false;
    cursor = d.str("/next_cursor");
    if (cursor.empty())
      return true;
  }
}

/// The user's Office 365 events (CRM calendar) whose subject starts with
/// `prefix`, read by the Outlook app.
bool office365_holdings(conns& c, const header_list& auth, const synced_user& u,
                        const std::string& prefix, holdings& out,
                        std::string& err) {
  std::string target = "/v1.0/users/" + u.oid + "/calendars/" + u.calendar
                       + "/events?$top=1000";
  for (;;) {
    client_response r;
    if (!call(c.emu, "GET", target, "", auth, 200, r, err))
      return false;
    json_doc d;
    if (!take_page(r, d, "value", "subject", "createdDateTime",
                   "lastModifiedDateTime", prefix, "Graph event list", out,
                   err))
      return false;
    auto next = d.str("/@odata.nextLink");
    if (next.empty())
      return true;
    if (c.route(next, target) == nullptr) {
      err = "nextLink outside the emulator: " + next;
      return false;
    }
  }
}

/// Compares what one user's events should be with what the other side
/// holds.
void compare(const std::vector<tracked>& events, const holdings& held,
             direction dir, verify_result& out) {
  std::map<std::string, const tracked*> live;
  for (auto& e : events) {
    if (e.uncertain) {
      ++out.uncertain[dir];
      continue;
    }
    if (!e.deleted)
      live[e.title] = &e;
    auto n = held.count(e.title);
    if (e.deleted) {
      if (n > 0)
        ++out.missing[dir][op_delete];
      continue;
    }
    if (n == 0) {
      ++out.missing[dir][e.updated_ack_us ? op_update : op_create];
      continue;
    }
    if (n > 1)
      out.duplicates[dir] += n - 1;
    auto times = held.find(e.title)->second;
    auto lat = [&](int64_t at_ms, int64_t ack_us) {
      // The other side's times are whole milliseconds: within one of the
      // ack is "at the ack"; more than that before it is counted.
      int64_t l = at_ms * 1000 - ack_us;
      if (l < -1000)
        ++out.early[dir];
      return std::max<int64_t>(l, 0);
    };
    out.latency_us[dir][0].push_back(lat(times.first, e.created_ack_us));
    out.timeline.emplace_back(e.created_ack_us, out.latency_us[dir][0].back());
    if (e.updated_ack_us) {
      out.latency_us[dir][1].push_back(lat(times.second, e.updated_ack_us));
      out.timeline.emplace_back(e.updated_ack_us,
                                out.latency_us[dir][1].back());
    }
  }
  // Titles no event of the run has now: neither a deletion that did not
  // arrive nor the title before an update that did not (both counted
  // above) -- a change that came back, or one nobody made.
  for (auto& [title, times] : held)
    if (live.count(title) == 0) {
      bool known = false;
      for (auto& e : events)
        known = known || (e.deleted && e.title == title)
                || e.title.rfind(title + " u", 0) == 0;
      if (!known)
        ++out.unexpected[dir];
    }
}

/// A process's CPU time (user + system, /proc/PID/stat) in seconds; -1
/// when it cannot be read.
double process_cpu_s(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line))
    return -1;
  // The command name (field 2) may hold spaces: count from its ")".
  const auto paren = line.rfind(')');
  if (paren == std::string::npos)
    return -1;
  std::istringstream in(line.substr(paren + 1));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14)
      utime = std::stoull(field);
    if (i == 15)
      stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime)
         / static_cast<double>(sysconf(_SC_CLK_TCK));
}

/// A process's voluntary context switches (a thread waited: for a
/// message, a timer, the network) summed over its threads
/// (/proc/PID/task/*/status); -1 when they cannot be read. Involuntary
/// ones (preempted by other processes) depend on the machine, not the
/// node.
long long process_switches(int pid) {
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  long long total = -1;
  if (DIR* d = opendir(tasks.c_str())) {
    total = 0;
    while (auto* e = readdir(d)) {
      if (e->d_name[0] == '.')
        continue;
      std::ifstream f(tasks + "/" + e->d_name + "/status");
      std::string line;
      while (std::getline(f, line))
        if (line.rfind("voluntary_ctxt_switches:", 0) == 0)
          total += std::atoll(line.substr(line.find(':') + 1).c_str());
    }
    closedir(d);
  }
  return total;
}

/// Measures the node's CPU time per change: its idle rate before the load,
/// then the time from the load's start until the node is back at (about)
/// that rate after it, before the other sides are read (the reads cost
/// the node CPU too).
class node_cpu_meter {
public:
  explicit node_cpu_meter(int pid) : pid_(pid) {}

  /// Before the load: IDLE_S seconds of the node's idle rate.
  void before_load() {
    if (pid_ <= 0)
      return;
    const double c0 = process_cpu_s(pid_);
    const auto t0 = steady::now();
    std::this_thread::sleep_for(std::chrono::seconds(3));
    start_cpu_ = process_cpu_s(pid_);
    start_switches_ = process_switches(pid_);
    idle_rate_ = (start_cpu_ - c0) / since_s(t0);
    start_ = steady::now();
  }

  /// After the last write's answer: waits (at most 60 s) until a second
  /// costs the node no more than twice its idle rate (at least 20 ms).
  void after_load() {
    if (pid_ <= 0)
      return;
    load_cpu_ = process_cpu_s(pid_) - start_cpu_;
    const auto load_end = steady::now();
    double last = process_cpu_s(pid_);
    for (;;) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      const double now = process_cpu_s(pid_);
      const bool quiet = now - last <= std::max(2 * idle_rate_, 0.02);
      last = now;
      if (quiet || since_s(load_end) > 60)
        break;
    }
    end_cpu_ = last;
    switches_ = process_switches(pid_) - start_switches_;
    window_s_ = since_s(start_);
    settle_s_ = since_s(load_end);
  }

  /// Prints the figures for `changes` acknowledged changes of `what`.
  void print(uint64_t changes, const char* what) const {
    if (pid_ <= 0 || changes == 0)
      return;
    const double total = end_cpu_ - start_cpu_;
    std::printf("node CPU      %.2f s during the load, %.2f s in the %.1f s "
                "after it; idle rate before %.3f s/s; %s: %.3f ms per change "
                "(%llu acknowledged), %.3f ms net of idle\n",
                load_cpu_, total - load_cpu_, settle_s_, idle_rate_, what,
                total * 1000 / static_cast<double>(changes),
                static_cast<unsigned long long>(changes),
                (total - idle_rate_ * window_s_) * 1000
                    / static_cast<double>(changes));
    std::printf("node switches %.1f voluntary context switches per change "
                "(all its threads, load and settling)\n",
                static_cast<double>(switches_) / static_cast<double>(changes));
  }

  double ms_per_change(uint64_t changes) const {
    return pid_ <= 0 || changes == 0
               ? -1
               : (end_cpu_ - start_cpu_) * 1000 / static_cast<double>(changes);
  }

private:
  int pid_;
  double idle_rate_ = 0, start_cpu_ = 0, load_cpu_ = 0, end_cpu_ = 0;
  double window_s_ = 0, settle_s_ = 0;
  long long start_switches_ = 0, switches_ = 0;
  steady::time_point start_;
};

} // namespace

int steady_run(const steady_config& cfg) {
  origin node, emu;
  std::string err;
  if (!parse_origin(cfg.node, node, err)
      || !parse_origin(cfg.emulator, emu, err)) {
    std::cerr << "crmsync-loadgen: " << err << "\n";
    return 2;
  }
  std::vector<synced_user> loaded;
  if (!read_state(cfg.state_file, loaded, err)) {
    std::cerr << "crmsync-loadgen: " << err << "\n";
    return 2;
  }
  std::vector<std::unique_ptr<user_slot>> users;
  for (auto& u : loaded) {
    users.push_back(std::make_unique<user_slot>());
    users.back()->u = u;
  }
  const header_list admin{{"Authorization", "Bearer " + cfg.admin_token},
                          {"Content-Type", "application/json"}};

  // The Outlook app's token per tenant.
  std::map<std::string, header_list> graph_auth;
  {
    conns c(node, emu);
    for (auto& u : loaded) {
      if (graph_auth.count(u.tenant))
        continue;
      client_response r;
      std::string form
          = "grant_type=client_credentials&client_id="
            + pct(cfg.outlook_client_id)
            + "&client_secret=" + pct(cfg.outlook_secret)
            + "&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default";
      if (!call(c.emu, "POST", "/" + u.tenant + "/oauth2/v2.0/token", form,
                {{"Content-Type", "application/x-www-form-urlencoded"}}, 200, r,
                err)) {
        std::cerr << "crmsync-loadgen: Outlook app token: " << err << "\n";
        return 2;
      }
      json_doc d;
      if (!d.parse(r.body) || d.str("/access_token").empty()) {
        std::cerr << "crmsync-loadgen: token answer " << snippet(r.body)
                  << "\n";
        return 2;
      }
      graph_auth[u.tenant]
          = {{"Authorization", "Bearer " + d.str("/access_token")},
             {"Content-Type", "application/json"}};
    }
  }

  node_cpu_meter cpu(cfg.node_pid);
  cpu.before_load();
  const std::string tag = random_hex(6);
  const std::string prefix[2]
      = {"steady " + tag + " c", "steady " + tag + " o"};
  const auto total
      = static_cast<uint64_t>(std::llround(cfg.rate * cfg.duration_s));
  const int64_t period_ns = static_cast<int64_t>(1e9 / cfg.rate);
  // Events start a day from now, a minute apart: inside the sync window.
  const int64_t first_start_ms = (wall_us() / 1000 / 3600000 + 24) * 3600000;
  const auto start = steady::now() + std::chrono::milliseconds(200);
  std::atomic<uint64_t> next{0};
  std::vector<writer_stats> stats(static_cast<size_t>(cfg.connections));
  std::vector<std::thread> writers;
  for (int w = 0; w < cfg.connections; ++w)
    writers.emplace_back([&, w] {
      auto& st = stats[static_cast<size_t>(w)];
      conns c(node, emu);
      std::mt19937_64 rng(0x5eed0000u + static_cast<uint64_t>(w));
      std::uniform_real_distribution<double> unit(0.0, 1.0);
      for (;;) {
        const uint64_t k = next.fetch_add(1);
        if (k >= total)
          return;
        const auto due
            = start
              + std::chrono::nanoseconds(period_ns * static_cast<int64_t>(k));
        std::this_thread::sleep_until(due);
        st.lag_us.push_back(
            std::chrono::duration_cast<std::chrono::microseconds>(steady::now()
                                                                  - due)
                .count());
        const auto dir = static_cast<direction>(
            cfg.only_direction >= 0 ? cfg.only_direction : k % 2);
        auto& slot = *users[rng() % users.size()];
        // Pick what to do under the user's lock.
        const double roll = unit(rng);
        op_kind op = op_create;
        size_t idx = 0;
        {
          std::lock_guard<std::mutex> g(slot.mtx);
          auto& evs = slot.events[dir];
          std::vector<size_t> candidates;
          if (roll < cfg.update_share + cfg.delete_share) {
            const bool del = roll >= cfg.update_share;
            for (size_t i = 0; i < evs.size(); ++i)
              if (!evs[i].busy && !evs[i].deleted && !evs[i].uncertain
                  && (del || evs[i].updated_ack_us == 0))
                candidates.push_back(i);
            if (!candidates.empty()) {
              op = del ? op_delete : op_update;
              idx = candidates[rng() % candidates.size()];
              evs[idx].busy = true;
            }
          }
        }
        const synced_user& u = slot.u;
        std::string title = prefix[dir] + std::to_string(k);
        std::string target, body, method;
        int expected = 200;
        std::string id;
        if (op != op_create) {
          std::lock_guard<std::mutex> g(slot.mtx);
          id = slot.events[dir][idx].id;
          title = slot.events[dir][idx].title + " u" + std::to_string(k);
        }
        if (dir == to_office365) {
          if (op == op_create) {
            const int64_t s
                = first_start_ms + static_cast<int64_t>(k % 100000) * 60000;
            method = "POST";
            target = "/api/v1/orgs/" + u.org + "/users/" + u.user + "/events";
            body = "{\"title\":" + json_str(title) + ",\"start\":\""
                   + format_rfc3339(s) + "\",\"end\":\""
                   + format_rfc3339(s + 1800000)
                   + "\",\"location\":\"Room 1\",\"description\":\"steady\"}";
            expected = 201;
          } else if (op == op_update) {
            method = "PATCH";
            target = "/api/v1/orgs/" + u.org + "/events/" + id;
            body
                = "{\"title\":" + json_str(title) + ",\"location\":\"Room 2\"}";
          } else {
            method = "DELETE";
            target = "/api/v1/orgs/" + u.org + "/events/" + id;
            expected = 204;
          }
        } else {
          if (op == op_create) {
            const int64_t s
                = first_start_ms + static_cast<int64_t>(k % 100000) * 60000;
            auto dt = [](int64_t ms) {
              return format_rfc3339_ms(ms).substr(0, 23);
            };
            method = "POST";
            target = "/v1.0/users/" + u.oid + "/calendars/" + u.calendar
                     + "/events";
            body = "{\"subject\":" + json_str(title)
                   + ",\"start\":{\"dateTime\":\"" + dt(s)
                   + "\",\"timeZone\":\"UTC\"},\"end\":{\"dateTime\":\""
                   + dt(s + 1800000)
                   + "\",\"timeZone\":\"UTC\"},\"location\":{\"displayName\":"
                     "\"Room 1\"}}";
            expected = 201;
          } else if (op == op_update) {
            method = "PATCH";
            target = "/v1.0/users/" + u.oid + "/events/" + id;
            body = "{\"subject\":" + json_str(title)
                   + ",\"location\":{\"displayName\":\"Room 2\"}}";
          } else {
            method = "DELETE";
            target = "/v1.0/users/" + u.oid + "/events/" + id;
            expected = 204;
          }
        }
        auto& client = dir == to_office365 ? c.node : c.emu;
        const auto& headers
            = dir == to_office365 ? admin : graph_auth.at(u.tenant);
        client_response r;
        std::string e;
        const auto sent = steady::now();
        const bool transport
            = client.request(method, target, body, headers, r, e);
        const int64_t ack = wall_us();
        const bool ok
            = transport
              && (r.status == expected || (op == op_delete && r.status == 200));
        if (transport)
          st.ack_us[dir].push_back(
              std::chrono::duration_cast<std::chrono::microseconds>(
                  steady::now() - sent)
                  .count());
        std::string created_id;
        if (ok && op == op_create) {
          json_doc d;
          if (d.parse(r.body))
            created_id = d.str("/id");
        }
        {
          std::lock_guard<std::mutex> g(slot.mtx);
          auto& evs = slot.events[dir];
          if (ok) {
            ++st.ops[dir][op];
            if (op == op_create) {
              tracked t;
              t.id = created_id;
              t.title = title;
              t.created_ack_us = ack;
              t.uncertain = created_id.empty();
              evs.push_back(t);
            } else {
              auto& t = evs[idx];
              t.busy = false;
              if (op == op_update) {
                t.title = title;
                t.updated_ack_us = ack;
              } else {
                t.deleted = true;
              }
            }
          } else {
            // A write with no answer may or may not have happened.
            if (op != op_create) {
              evs[idx].busy = false;
              evs[idx].uncertain = evs[idx].uncertain || !transport;
            }
            std::string key
                = std::string(dir == to_office365 ? "CRM " : "Graph ")
                  + op_name[op] + " "
                  + (transport ? std::to_string(r.status) : "transport");
            ++st.errors[key];
            if (!st.samples.count(key))
              st.samples[key] = transport ? snippet(r.body) : e;
          }
        }
      }
    });
  for (auto& t : writers)
    t.join();
  const double load_s = since_s(start);
  const auto load_end = steady::now();
  cpu.after_load();

  writer_stats all;
  for (auto& s : stats) {
    all.lag_us.insert(all.lag_us.end(), s.lag_us.begin(), s.lag_us.end());
    for (int d = 0; d < 2; ++d) {
      all.ack_us[d].insert(all.ack_us[d].end(), s.ack_us[d].begin(),
                           s.ack_us[d].end());
      for (int o = 0; o < 3; ++o)
        all.ops[d][o] += s.ops[d][o];
    }
    for (auto& [k, v] : s.errors)
      all.errors[k] += v;
    for (auto& [k, v] : s.samples)
      all.samples.emplace(k, v);
  }
  uint64_t errors = 0, acked = 0;
  for (auto& [k, v] : all.errors)
    errors += v;
  for (auto& d : all.ops)
    for (auto n : d)
      acked += n;
  std::printf("load: %llu changes scheduled at %.0f/s over %.1f s; %llu "
              "acknowledged, %llu errors (%.1f s wall)\n",
              static_cast<unsigned long long>(total), cfg.rate, cfg.duration_s,
              static_cast<unsigned long long>(acked),
              static_cast<unsigned long long>(errors), load_s);
  std::fflush(stdout);

  // Read the other sides until they hold everything (or the drain ends).
  verify_result result;
  int passes = 0;
  double drained_after = -1;
  for (;;) {
    ++passes;
    std::vector<verify_result> parts(users.size());
    err = parallel_for(
        static_cast<int>(users.size()), cfg.threads, node, emu,
        [&](int i, conns& c, std::string& e) {
          auto& slot = *users[static_cast<size_t>(i)];
          auto& part = parts[static_cast<size_t>(i)];
          holdings in_o365, in_crm;
          if (!office365_holdings(c, graph_auth.at(slot.u.tenant), slot.u,
                                  prefix[to_office365], in_o365, e)
              || !crm_holdings(c, admin, slot.u, prefix[to_crm], in_crm, e))
            return false;
          compare(slot.events[to_office365], in_o365, to_office365, part);
          compare(slot.events[to_crm], in_crm, to_crm, part);
          return true;
        });
    if (!err.empty()) {
      std::cerr << "crmsync-loadgen: reading the other sides: " << err << "\n";
      return 2;
    }
    result = verify_result{};
    for (auto& p : parts)
      result.timeline.insert(result.timeline.end(), p.timeline.begin(),
                             p.timeline.end());
    for (auto& p : parts)
      for (int d = 0; d < 2; ++d) {
        for (int o = 0; o < 2; ++o)
          result.latency_us[d][o].insert(result.latency_us[d][o].end(),
                                         p.latency_us[d][o].begin(),
                                         p.latency_us[d][o].end());
        for (int o = 0; o < 3; ++o)
          result.missing[d][o] += p.missing[d][o];
        result.duplicates[d] += p.duplicates[d];
        result.unexpected[d] += p.unexpected[d];
        result.early[d] += p.early[d];
        result.uncertain[d] += p.uncertain[d];
      }
    const double waited = since_s(load_end);
    if (result.not_arrived() == 0) {
      drained_after = waited;
      break;
    }
    std::printf("drain: %.1f s after the load, %llu changes not on the other "
                "side yet\n",
                waited, static_cast<unsigned long long>(result.not_arrived()));
    std::fflush(stdout);
    if (waited > cfg.drain_s)
      break;
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }

  // The report.
  std::printf("\nsteady state: %zu synced users, %.0f changes/s for %.0f s, "
              "%d writer connections\n",
              users.size(), cfg.rate, cfg.duration_s, cfg.connections);
  std::printf("sent          %llu acknowledged (%.1f/s), %llu errors\n",
              static_cast<unsigned long long>(acked),
              static_cast<double>(acked) / load_s,
              static_cast<unsigned long long>(errors));
  for (auto& [k, v] : all.errors)
    std::printf("  error %s: %llu (%s)\n", k.c_str(),
                static_cast<unsigned long long>(v), all.samples[k].c_str());
  std::printf("send lag      %s\n", summary(all.lag_us).c_str());
  cpu.print(acked, cfg.only_direction < 0 ? "both directions"
                                          : direction_name[cfg.only_direction]);
  for (int d = 0; d < 2; ++d) {
    std::printf("\n%s\n", direction_name[d]);
    std::printf("  written     %llu creates, %llu updates, %llu deletes; "
                "write ack %s\n",
                static_cast<unsigned long long>(all.ops[d][op_create]),
                static_cast<unsigned long long>(all.ops[d][op_update]),
                static_cast<unsigned long long>(all.ops[d][op_delete]),
                summary(all.ack_us[d]).c_str());
    std::vector<int64_t> both = result.latency_us[d][0];
    both.insert(both.end(), result.latency_us[d][1].begin(),
                result.latency_us[d][1].end());
    std::printf("  latency     %s\n", summary(both).c_str());
    std::printf("    creates   %s\n", summary(result.latency_us[d][0]).c_str());
    std::printf("    updates   %s\n", summary(result.latency_us[d][1]).c_str());
    std::printf("  not arrived %llu creates, %llu updates, %llu deletes; "
                "%llu duplicates, %llu unexpected, %llu applied before the "
                "ack (by over 1 ms), %llu unverifiable (no answer)\n",
                static_cast<unsigned long long>(result.missing[d][op_create]),
                static_cast<unsigned long long>(result.missing[d][op_update]),
                static_cast<unsigned long long>(result.missing[d][op_delete]),
                static_cast<unsigned long long>(result.duplicates[d]),
                static_cast<unsigned long long>(result.unexpected[d]),
                static_cast<unsigned long long>(result.early[d]),
                static_cast<unsigned long long>(result.uncertain[d]));
  }
  // Latency over the run, by when the write was acknowledged.
  if (!result.timeline.empty()) {
    std::sort(result.timeline.begin(), result.timeline.end());
    const int64_t first = result.timeline.front().first;
    const int64_t window_us = std::max<int64_t>(
        1000000, static_cast<int64_t>(cfg.duration_s * 1e6 / 12));
    std::printf("\nover time (both directions, by ack time)\n");
    size_t i = 0;
    while (i < result.timeline.size()) {
      const int64_t from = (result.timeline[i].first - first) / window_us;
      std::vector<int64_t> w;
      while (i < result.timeline.size()
             && (result.timeline[i].first - first) / window_us == from)
        w.push_back(result.timeline[i++].second);
      std::printf("  %5.0f-%-5.0f s %s\n",
                  static_cast<double>(from * window_us) / 1e6,
                  static_cast<double>((from + 1) * window_us) / 1e6,
                  summary(w).c_str());
    }
  }
  if (drained_after >= 0)
    std::printf("\ndrained       every change on the other side %.1f s after "
                "the load ended (%d reads)\n",
                drained_after, passes);
  else
    std::printf("\nNOT DRAINED   %llu changes missing %.0f s after the load\n",
                static_cast<unsigned long long>(result.not_arrived()),
                cfg.drain_s);
  if (cfg.json) {
    std::ostringstream j;
    j << "{\"users\":" << users.size() << ",\"rate\":" << cfg.rate
      << ",\"duration_s\":" << cfg.duration_s << ",\"acknowledged\":" << acked
      << ",\"errors\":" << errors
      << ",\"send_lag_ms\":" << summary_json(all.lag_us);
    for (int d = 0; d < 2; ++d) {
      std::vector<int64_t> both = result.latency_us[d][0];
      both.insert(both.end(), result.latency_us[d][1].begin(),
                  result.latency_us[d][1].end());
      j << (d == 0 ? ",\"to_office365\":" : ",\"to_crm\":")
        << "{\"latency_ms\":" << summary_json(both) << ",\"not_arrived\":"
        << result.missing[d][0] + result.missing[d][1] + result.missing[d][2]
               + result.unexpected[d]
        << ",\"duplicates\":" << result.duplicates[d] << "}";
    }
    j << ",\"drained_after_s\":" << drained_after
      << ",\"node_cpu_ms_per_change\":" << cpu.ms_per_change(acked) << "}";
    std::printf("%s\n", j.str().c_str());
  }
  std::fflush(stdout);
  return drained_after >= 0 && result.duplicates[0] + result.duplicates[1] == 0
             ? 0
             : 1;
}

} // namespace crmsync::bench
