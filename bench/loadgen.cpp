// crmsync-loadgen: load generator for a node's event write path and its
// webhook ingress.
//
// Events (default): creates K organizations through the admin API, then runs
// N keep-alive connections (one thread and one http::client each) that
// create events for the organizations' admin users until the deadline.
//
// Webhooks (--webhooks URL): the N connections POST Graph change-notification
// collections (one notification each, GRAPH-FACTS §5.3) for one subscription
// to the node's notification URL, as Graph would, and count 202 answers.
//
// Steady state (--steady-setup STATE, then --steady-run STATE): brings
// Office 365 users into calendar sync and measures change-to-other-side
// latency under a paced two-way load (bench/steady.hpp).
//
// Every thread owns its own counters; the main thread merges them after join
// and prints the result.
#include "bench/steady.hpp"
#include "http/client.hpp"
#include "protocol/json.hpp"

#include <CLI/CLI.hpp>
#include <simdjson.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using steady = std::chrono::steady_clock;

struct org_account {
  std::string org_id;
  std::string user_id;
  std::string token;
};

// What one connection thread saw.
struct thread_stats {
  std::vector<std::int64_t> latencies_ns; // measured requests with an answer
  std::uint64_t requests = 0;             // measured requests
  std::uint64_t done = 0;                 // answered with the expected status
  std::map<int, std::uint64_t> errors_by_status; // 0 = transport failure
  std::map<int, std::string> error_samples;      // first message per status
  std::uint64_t warmup_requests = 0;
  std::uint64_t warmup_errors = 0;
  steady::time_point last_finish{};
  // --by-node: latencies of done requests by the node that served them
  // (the X-Crmsync-Node answer header of a cluster).
  std::map<std::string, std::vector<std::int64_t>> by_node_ns;
};

std::string random_tag() {
  std::random_device rd;
  std::mt19937_64 gen((static_cast<std::uint64_t>(rd()) << 32) ^ rd());
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx",
                static_cast<unsigned long long>(gen()));
  return std::string(buf, 10);
}

// Percent-encodes everything but RFC 3986 unreserved characters.
std::string path_segment(const std::string& s) {
  static const char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// s as a quoted JSON string literal.
std::string json_quoted(std::string_view s) {
  std::string out;
  crmsync::json::append_string(out, s);
  return out;
}

std::string rfc3339_utc(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::time_t base_event_start() {
  std::tm tm{};
  tm.tm_year = 2027 - 1900;
  tm.tm_mon = 0;
  tm.tm_mday = 5;
  tm.tm_hour = 10;
  return timegm(&tm);
}

std::string snippet(const std::string& body) {
  constexpr std::size_t max = 300;
  return body.size() <= max ? body : body.substr(0, max) + "...";
}

bool get_string(simdjson::dom::element root, const char* obj, const char* key,
                std::string& out, std::string& err) {
  std::string_view value;
  auto error = root[obj][key].get_string().get(value);
  if (error) {
    err = std::string("field ") + obj + "." + key + ": "
          + simdjson::error_message(error);
    return false;
  }
  out.assign(value);
  return true;
}

bool create_org(crmsync::http::client& c, const std::string& admin_token,
                const std::string& tag, int k, org_account& out,
                std::string& err) {
  const std::string name = "loadgen-" + tag + "-" + std::to_string(k);
  const std::string body = "{\"name\":" + json_quoted(name)
                           + ",\"edition\":\"paid\",\"admin\":{\"email\":"
                           + json_quoted(name + "@example.com")
                           + ",\"name\":\"Load Gen\"}}";
  crmsync::http::client_response res;
  if (!c.request("POST", "/api/v1/orgs", body,
                 {{"Authorization", "Bearer " + admin_token}}, res, err))
    return false;
  if (res.status != 201) {
    err = "POST /api/v1/orgs answered " + std::to_string(res.status) + ": "
          + snippet(res.body);
    return false;
  }
  simdjson::padded_string json(res.body);
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto error = parser.parse(json).get(root)) {
    err = std::string("POST /api/v1/orgs: bad JSON: ")
          + simdjson::error_message(error);
    return false;
  }
  std::string field_err;
  if (!get_string(root, "org", "id", out.org_id, field_err)
      || !get_string(root, "admin", "id", out.user_id, field_err)
      || !get_string(root, "admin", "token", out.token, field_err)) {
    err = "POST /api/v1/orgs: " + field_err + " in " + snippet(res.body);
    return false;
  }
  return true;
}

struct run_plan {
  std::string host;
  uint16_t port = 0;
  steady::time_point measure_start;
  steady::time_point deadline;
  std::time_t base_start = 0;
};

// One kind of POST a connection repeats until the deadline.
struct workload {
  std::string target;
  crmsync::http::header_list headers;
  int expected_status = 201; // the answer that counts as done
  bool by_node = false;      // group latencies by X-Crmsync-Node
  std::function<std::string(std::uint64_t)> body; // of the n-th request
};

workload event_writes(const run_plan& plan, const org_account& account) {
  workload w;
  w.target = "/api/v1/orgs/" + path_segment(account.org_id) + "/users/"
             + path_segment(account.user_id) + "/events";
  w.headers = {{"Authorization", "Bearer " + account.token}};
  w.expected_status = 201;
  w.body = [base = plan.base_start](std::uint64_t n) {
    const std::time_t start = base + static_cast<std::time_t>(n) * 60;
    return "{\"title\":\"bench event " + std::to_string(n) + "\",\"start\":\""
           + rfc3339_utc(start) + "\",\"end\":\"" + rfc3339_utc(start + 3600)
           + "\",\"location\":\"Room 1\",\"description\":\"load\"}";
  };
  return w;
}

// What a webhook run posts as: one subscription of the node.
struct webhook_source {
  std::string target; // path (and query) of the notification URL
  std::string subscription_id;
  bool has_client_state = false;
  std::string client_state;
  std::string tenant_id;
  std::string resource; // the subscription's, e.g. /users/{id}/events
  std::string expiration;
};

// The user segment of a subscription resource (/users/{user}/...), or "".
std::string resource_user(const std::string& resource) {
  std::vector<std::string> segs;
  std::string seg;
  std::istringstream in(resource);
  while (std::getline(in, seg, '/'))
    if (!seg.empty())
      segs.push_back(seg);
  if (segs.size() >= 2 && (segs[0] == "users" || segs[0] == "Users"))
    return segs[1];
  return {};
}

workload webhook_notifications(const webhook_source& src,
                               const std::string& tag) {
  workload w;
  w.target = src.target;
  w.headers = {{"Content-Type", "application/json; charset=utf-8"}};
  w.expected_status = 202;
  // Everything but the changed item's id is the same in every POST.
  std::string head
      = "{\"value\":[{\"subscriptionId\":" + json_quoted(src.subscription_id)
        + ",\"subscriptionExpirationDateTime\":" + json_quoted(src.expiration);
  if (src.has_client_state)
    head += ",\"clientState\":" + json_quoted(src.client_state);
  head += ",\"changeType\":\"updated\",\"tenantId\":"
          + json_quoted(src.tenant_id) + ",\"resource\":";
  const std::string user = resource_user(src.resource);
  const std::string item_prefix
      = user.empty() ? src.resource + "/" : "Users/" + user + "/Events/";
  w.body = [head, item_prefix, tag](std::uint64_t n) {
    char id[48];
    std::snprintf(id, sizeof id, "AAMkAG%s%016llx", tag.c_str(),
                  static_cast<unsigned long long>(n));
    const std::string item = json_quoted(item_prefix + id);
    return head + item
           + ",\"resourceData\":{\"@odata.type\":\"#Microsoft.Graph.Event\","
             "\"@odata.id\":"
           + item + ",\"@odata.etag\":\"W/\\\"DwAAABYAAA" + id
           + "\\\"\",\"id\":\"" + id + "\"}}]}";
  };
  return w;
}

void run_connection(const run_plan& plan, const workload& work,
                    std::atomic<std::uint64_t>& sequence, thread_stats& stats) {
  crmsync::http::client c(plan.host, plan.port);
  crmsync::http::client_response res;
  std::string err;
  for (;;) {
    const auto t0 = steady::now();
    if (t0 >= plan.deadline)
      break;
    const std::uint64_t n = sequence.fetch_add(1, std::memory_order_relaxed);
    const std::string body = work.body(n);
    const bool ok
        = c.request("POST", work.target, body, work.headers, res, err);
    const auto t1 = steady::now();
    const bool done = ok && res.status == work.expected_status;
    const int status = ok ? res.status : 0;
    if (!done && stats.error_samples.count(status) == 0)
      stats.error_samples[status] = ok ? snippet(res.body) : err;
    if (t0 < plan.measure_start) {
      ++stats.warmup_requests;
      if (!done)
        ++stats.warmup_errors;
    } else {
      ++stats.requests;
      stats.last_finish = t1;
      // A refused connection fails in microseconds: keep it out of latency.
      if (ok) {
        const auto ns
            = std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0)
                  .count();
        stats.latencies_ns.push_back(ns);
        if (work.by_node && done)
          stats.by_node_ns[res.header("X-Crmsync-Node")].push_back(ns);
      }
      if (done)
        ++stats.done;
      else
        ++stats.errors_by_status[status];
    }
    // Do not spin on a node that is down.
    if (!ok)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// Nearest-rank percentile over sorted samples, in milliseconds.
double percentile_ms(const std::vector<std::int64_t>& sorted, double q) {
  if (sorted.empty())
    return 0.0;
  auto rank = static_cast<std::size_t>(
      std::ceil(q * static_cast<double>(sorted.size())));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return static_cast<double>(sorted[rank - 1]) / 1e6;
}

std::string status_label(int status) {
  return status == 0 ? "transport" : std::to_string(status);
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"crmsync-loadgen: load generator for the event write path "
               "and the webhook ingress"};
  std::string node = "http://127.0.0.1:8080";
  std::string admin_token;
  int connections = 32;
  double duration_s = 10.0;
  int orgs = 4;
  double warmup_s = 1.0;
  bool json_out = false;
  bool by_node = false;
  std::string webhook_url;
  webhook_source hook;
  app.add_option("--node", node, "Base URL of the node")->capture_default_str();
  app.add_option("--admin-token", admin_token, "Token of the node's admin API")
      ->envname("CRMSYNC_ADMIN_TOKEN");
  app.add_option("--connections", connections,
                 "Concurrent keep-alive connections")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  app.add_option("--duration", duration_s, "Measured seconds")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--orgs", orgs,
                 "Organizations the connections are spread over")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  app.add_flag("--by-node", by_node,
               "Report rate and latency by the cluster node that served each "
               "request (X-Crmsync-Node): the owner or a forward");
  app.add_option("--warmup", warmup_s, "Unmeasured seconds before the run")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--json", json_out, "Print the result as JSON");
  auto* webhooks
      = app.add_option("--webhooks", webhook_url,
                       "Post Graph change notifications to this notification "
                       "URL (http://host:port/path) instead of creating events")
            ->group("Webhooks");
  app.add_option("--subscription", hook.subscription_id,
                 "subscriptionId of the notifications")
      ->group("Webhooks")
      ->needs(webhooks);
  auto* client_state
      = app.add_option("--client-state", hook.client_state,
                       "clientState of the notifications (left out if not "
                       "given)")
            ->group("Webhooks")
            ->needs(webhooks);
  app.add_option("--tenant-id", hook.tenant_id, "tenantId of the notifications")
      ->group("Webhooks")
      ->needs(webhooks);
  app.add_option("--resource", hook.resource,
                 "The subscription's resource (/users/{id}/...); the "
                 "notifications name events of its user")
      ->group("Webhooks")
      ->needs(webhooks);
  app.add_option("--expiration", hook.expiration,
                 "subscriptionExpirationDateTime of the notifications "
                 "(default: 3 days from now)")
      ->group("Webhooks")
      ->needs(webhooks);
  crmsync::bench::steady_config steady;
  std::string steady_setup, steady_run;
  double steady_rate = steady.rate;
  bool no_sync = false;
  auto* setup_opt
      = app.add_option("--steady-setup", steady_setup,
                       "Bring --users Office 365 users into calendar sync "
                       "and write their ids to this state file")
            ->group("Steady state");
  app.add_option("--steady-run", steady_run,
                 "Run the paced two-way change load on the "
                 "users of this state file")
      ->group("Steady state")
      ->excludes(setup_opt);
  app.add_option("--emulator", steady.emulator,
                 "Base URL of graph-emulator (steady state)")
      ->group("Steady state");
  app.add_option("--users", steady.users, "Users to bring into sync")
      ->group("Steady state")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  app.add_flag("--steady-no-sync", no_sync,
               "Setup only: leave calendar sync off (state file calendar "
               "\"-\")")
      ->group("Steady state")
      ->needs(setup_opt);
  app.add_option("--enable-wave", steady.enable_wave,
                 "Setup: turn sync on for this many users, wait until they "
                 "are active, then the next ones (0: all at once)")
      ->group("Steady state")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000000));
  app.add_option("--tenants", steady.tenants,
                 "Office 365 tenants the users are spread over (0: one per "
                 "100 users)")
      ->group("Steady state")
      ->capture_default_str()
      ->check(CLI::Range(0, 100000));
  app.add_option("--threads", steady.threads,
                 "Threads of the setup and of reading the other sides")
      ->group("Steady state")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  app.add_option("--rate", steady_rate,
                 "Changes per second, both directions together")
      ->group("Steady state")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 1e6));
  app.add_option("--drain", steady.drain_s,
                 "Most seconds to wait for the other sides after the load")
      ->group("Steady state")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--update-share", steady.update_share,
                 "Share of changes that update an event (if one is there)")
      ->group("Steady state")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--delete-share", steady.delete_share,
                 "Share of changes that delete an event (if one is there)")
      ->group("Steady state")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  std::string steady_direction = "both";
  app.add_option("--direction", steady_direction,
                 "Run: both (alternating), to-office365 (CRM writes only) or "
                 "to-crm (Office 365 writes only)")
      ->group("Steady state")
      ->capture_default_str()
      ->check(CLI::IsMember({"both", "to-office365", "to-crm"}));
  app.add_option("--node-pid", steady.node_pid,
                 "Run: crmsyncd's process id, to print its CPU time per "
                 "change (/proc/PID/stat)")
      ->group("Steady state")
      ->check(CLI::PositiveNumber);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (!steady_setup.empty() || !steady_run.empty()) {
    if (steady.emulator.empty() || admin_token.empty()) {
      std::cerr << "crmsync-loadgen: steady state needs --emulator and the "
                   "admin token\n";
      return 2;
    }
    if (steady.update_share + steady.delete_share > 1.0) {
      std::cerr << "crmsync-loadgen: --update-share + --delete-share must not "
                   "exceed 1\n";
      return 2;
    }
    steady.node = node;
    steady.admin_token = admin_token;
    steady.rate = steady_rate;
    steady.enable_sync = !no_sync;
    steady.duration_s = duration_s;
    steady.connections = connections;
    steady.json = json_out;
    steady.only_direction = steady_direction == "to-office365" ? 0
                            : steady_direction == "to-crm"     ? 1
                                                               : -1;
    if (!steady_setup.empty()) {
      steady.state_file = steady_setup;
      return crmsync::bench::steady_setup(steady);
    }
    steady.state_file = steady_run;
    return crmsync::bench::steady_run(steady);
  }

  const bool webhook_mode = !webhook_url.empty();
  run_plan plan;
  plan.base_start = base_event_start();
  std::string err;
  const std::string tag = random_tag();
  // Each connection i repeats works[i % works.size()].
  std::vector<workload> works;
  if (webhook_mode) {
    if (hook.subscription_id.empty()) {
      std::cerr << "crmsync-loadgen: --webhooks needs --subscription\n";
      return 2;
    }
    // The notification URL's path is the target; parse_base_url takes the
    // origin only.
    const auto scheme_end = webhook_url.find("://");
    const auto path_start = scheme_end == std::string::npos
                                ? std::string::npos
                                : webhook_url.find('/', scheme_end + 3);
    hook.target = path_start == std::string::npos
                      ? "/"
                      : webhook_url.substr(path_start);
    if (!crmsync::http::parse_base_url(webhook_url.substr(0, path_start),
                                       plan.host, plan.port, err)) {
      std::cerr << "crmsync-loadgen: --webhooks: " << err << "\n";
      return 2;
    }
    hook.has_client_state = client_state->count() > 0;
    if (hook.expiration.empty())
      hook.expiration = rfc3339_utc(std::time(nullptr) + 3 * 24 * 3600);
    node = webhook_url;
    orgs = 0;
    works.push_back(webhook_notifications(hook, tag));
  } else {
    if (admin_token.empty()) {
      std::cerr << "crmsync-loadgen: no admin token (--admin-token or "
                   "CRMSYNC_ADMIN_TOKEN)\n";
      return 2;
    }
    if (!crmsync::http::parse_base_url(node, plan.host, plan.port, err)) {
      std::cerr << "crmsync-loadgen: " << err << "\n";
      return 2;
    }
    // Setup: one organization (with its admin user) per k.
    crmsync::http::client setup(plan.host, plan.port);
    for (int k = 0; k < orgs; ++k) {
      org_account account;
      if (!create_org(setup, admin_token, tag, k, account, err)) {
        std::cerr << "crmsync-loadgen: setup failed for org " << k << ": "
                  << err << "\n";
        return 2;
      }
      works.push_back(event_writes(plan, account));
      works.back().by_node = by_node;
    }
  }
  const char* done_name = webhook_mode ? "acknowledged" : "created";
  const char* rate_name = webhook_mode ? "notifications" : "events";

  // Load: warmup, then the measured window; every thread stops by itself.
  const auto to_steady = [](double s) {
    return std::chrono::duration_cast<steady::duration>(
        std::chrono::duration<double>(s));
  };
  plan.measure_start = steady::now() + to_steady(warmup_s);
  plan.deadline = plan.measure_start + to_steady(duration_s);
  std::atomic<std::uint64_t> sequence{0};
  std::vector<thread_stats> stats(static_cast<std::size_t>(connections));
  std::vector<std::thread> threads;
  threads.reserve(stats.size());
  for (std::size_t i = 0; i < stats.size(); ++i) {
    threads.emplace_back(run_connection, std::cref(plan),
                         std::cref(works[i % works.size()]), std::ref(sequence),
                         std::ref(stats[i]));
  }
  for (auto& t : threads)
    t.join();

  // Merge.
  std::vector<std::int64_t> latencies;
  std::uint64_t requests = 0, done = 0, warmup_requests = 0, warmup_errors = 0;
  std::map<int, std::uint64_t> errors_by_status;
  std::map<int, std::string> error_samples;
  steady::time_point last_finish = plan.deadline;
  for (auto& s : stats) {
    latencies.insert(latencies.end(), s.latencies_ns.begin(),
                     s.latencies_ns.end());
    requests += s.requests;
    done += s.done;
    warmup_requests += s.warmup_requests;
    warmup_errors += s.warmup_errors;
    for (const auto& [status, count] : s.errors_by_status)
      errors_by_status[status] += count;
    for (const auto& [status, message] : s.error_samples)
      error_samples.emplace(status, message);
    last_finish = std::max(last_finish, s.last_finish);
  }
  std::sort(latencies.begin(), latencies.end());
  std::map<std::string, std::vector<std::int64_t>> by_node_ns;
  for (auto& s : stats)
    for (auto& [served_by, ns] : s.by_node_ns)
      by_node_ns[served_by].insert(by_node_ns[served_by].end(), ns.begin(),
                                   ns.end());
  for (auto& [served_by, ns] : by_node_ns)
    std::sort(ns.begin(), ns.end());
  std::uint64_t errors = 0;
  for (const auto& [status, count] : errors_by_status)
    errors += count;
  const std::uint64_t total_errors = errors + warmup_errors;
  // The window runs until the last request started before the deadline ends.
  const double elapsed_s
      = std::chrono::duration<double>(last_finish - plan.measure_start).count();
  const double rate
      = elapsed_s > 0 ? static_cast<double>(done) / elapsed_s : 0.0;
  const double p50 = percentile_ms(latencies, 0.50);
  const double p90 = percentile_ms(latencies, 0.90);
  const double p99 = percentile_ms(latencies, 0.99);
  const double max
      = latencies.empty() ? 0.0 : static_cast<double>(latencies.back()) / 1e6;

  std::ostringstream out;
  out.setf(std::ios::fixed);
  if (json_out) {
    out.precision(3);
    out << "{\"node\":" << json_quoted(node)
        << ",\"connections\":" << connections << ",\"orgs\":" << orgs
        << ",\"duration_s\":" << elapsed_s << ",\"requests\":" << requests
        << ",\"" << done_name << "\":" << done << ",\"errors\":" << errors
        << ",\"errors_by_status\":{";
    bool first = true;
    for (const auto& [status, count] : errors_by_status) {
      out << (first ? "" : ",") << "\"" << status_label(status)
          << "\":" << count;
      first = false;
    }
    out << "},\"" << rate_name << "_per_s\":" << rate
        << ",\"latency_ms\":{\"p50\":" << p50 << ",\"p90\":" << p90
        << ",\"p99\":" << p99 << ",\"max\":" << max
        << "},\"warmup\":{\"requests\":" << warmup_requests
        << ",\"errors\":" << warmup_errors << "},\"error_samples\":{";
    first = true;
    for (const auto& [status, message] : error_samples) {
      out << (first ? "" : ",") << "\"" << status_label(status)
          << "\":" << json_quoted(message);
      first = false;
    }
    out << "}}\n";
  } else {
    out.precision(2);
    // Names in a column of 14, or followed by one space when longer.
    const auto label = [](std::string name) {
      name.resize(std::max<std::size_t>(14, name.size() + 1), ' ');
      return name;
    };
    out << "node          " << node << " (" << connections << " connections";
    if (!webhook_mode)
      out << ", " << orgs << " orgs";
    out << ")\n"
        << "duration      " << elapsed_s << " s (after " << warmup_s
        << " s warmup: " << warmup_requests << " requests, " << warmup_errors
        << " errors)\n"
        << "requests      " << requests << "\n"
        << label(done_name) << done << "\n"
        << "errors        " << errors;
    if (!errors_by_status.empty()) {
      out << " (";
      bool first = true;
      for (const auto& [status, count] : errors_by_status) {
        out << (first ? "" : ", ") << status_label(status) << ": " << count;
        first = false;
      }
      out << ")";
    }
    out << "\n"
        << label(std::string(rate_name) + "/s") << rate << "\n"
        << "latency ms    p50 " << p50 << "  p90 " << p90 << "  p99 " << p99
        << "  max " << max << "\n";
    for (const auto& [served_by, ns] : by_node_ns)
      out << "served by " << (served_by.empty() ? "?" : served_by) << "  "
          << ns.size() << " done, "
          << (elapsed_s > 0 ? static_cast<double>(ns.size()) / elapsed_s : 0)
          << "/s, latency ms p50 " << percentile_ms(ns, 0.50) << "  p99 "
          << percentile_ms(ns, 0.99) << "  max "
          << static_cast<double>(ns.back()) / 1e6 << "\n";
    for (const auto& [status, message] : error_samples)
      out << "error " << status_label(status) << ": " << message << "\n";
  }
  std::cout << out.str();
  return total_errors > 0 ? 1 : 0;
}
