// crmsync-loadgen: load generator for the event write path of a node.
//
// Creates K organizations through the admin API, then runs N keep-alive
// connections (one thread and one http::client each) that create events for
// the organizations' admin users until the deadline. Every thread owns its
// own counters; the main thread merges them after join and prints the result.
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
  std::uint64_t created = 0;
  std::map<int, std::uint64_t> errors_by_status; // 0 = transport failure
  std::map<int, std::string> error_samples;      // first message per status
  std::uint64_t warmup_requests = 0;
  std::uint64_t warmup_errors = 0;
  steady::time_point last_finish{};
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

void run_connection(const run_plan& plan, const org_account& account,
                    std::atomic<std::uint64_t>& sequence, thread_stats& stats) {
  crmsync::http::client c(plan.host, plan.port);
  const std::string target = "/api/v1/orgs/" + path_segment(account.org_id)
                             + "/users/" + path_segment(account.user_id)
                             + "/events";
  const crmsync::http::header_list headers{
      {"Authorization", "Bearer " + account.token}};
  crmsync::http::client_response res;
  std::string err;
  for (;;) {
    const auto t0 = steady::now();
    if (t0 >= plan.deadline)
      break;
    const std::uint64_t n = sequence.fetch_add(1, std::memory_order_relaxed);
    const std::time_t start
        = plan.base_start + static_cast<std::time_t>(n) * 60;
    const std::string body
        = "{\"title\":\"bench event " + std::to_string(n) + "\",\"start\":\""
          + rfc3339_utc(start) + "\",\"end\":\"" + rfc3339_utc(start + 3600)
          + "\",\"location\":\"Room 1\",\"description\":\"load\"}";
    const bool ok = c.request("POST", target, body, headers, res, err);
    const auto t1 = steady::now();
    const bool created = ok && res.status == 201;
    const int status = ok ? res.status : 0;
    if (!created && stats.error_samples.count(status) == 0)
      stats.error_samples[status] = ok ? snippet(res.body) : err;
    if (t0 < plan.measure_start) {
      ++stats.warmup_requests;
      if (!created)
        ++stats.warmup_errors;
    } else {
      ++stats.requests;
      stats.last_finish = t1;
      // A refused connection fails in microseconds: keep it out of latency.
      if (ok)
        stats.latencies_ns.push_back(
            std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0)
                .count());
      if (created)
        ++stats.created;
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
  CLI::App app{"crmsync-loadgen: load generator for the event write path"};
  std::string node = "http://127.0.0.1:8080";
  std::string admin_token;
  int connections = 32;
  double duration_s = 10.0;
  int orgs = 4;
  double warmup_s = 1.0;
  bool json_out = false;
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
  app.add_option("--warmup", warmup_s, "Unmeasured seconds before the run")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--json", json_out, "Print the result as JSON");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  if (admin_token.empty()) {
    std::cerr << "crmsync-loadgen: no admin token (--admin-token or "
                 "CRMSYNC_ADMIN_TOKEN)\n";
    return 2;
  }
  run_plan plan;
  std::string err;
  if (!crmsync::http::parse_base_url(node, plan.host, plan.port, err)) {
    std::cerr << "crmsync-loadgen: " << err << "\n";
    return 2;
  }

  // Setup: one organization (with its admin user) per k.
  const std::string tag = random_tag();
  std::vector<org_account> accounts(static_cast<std::size_t>(orgs));
  {
    crmsync::http::client setup(plan.host, plan.port);
    for (int k = 0; k < orgs; ++k) {
      if (!create_org(setup, admin_token, tag, k,
                      accounts[static_cast<std::size_t>(k)], err)) {
        std::cerr << "crmsync-loadgen: setup failed for org " << k << ": "
                  << err << "\n";
        return 2;
      }
    }
  }

  // Load: warmup, then the measured window; every thread stops by itself.
  const auto to_steady = [](double s) {
    return std::chrono::duration_cast<steady::duration>(
        std::chrono::duration<double>(s));
  };
  plan.base_start = base_event_start();
  plan.measure_start = steady::now() + to_steady(warmup_s);
  plan.deadline = plan.measure_start + to_steady(duration_s);
  std::atomic<std::uint64_t> sequence{0};
  std::vector<thread_stats> stats(static_cast<std::size_t>(connections));
  std::vector<std::thread> threads;
  threads.reserve(stats.size());
  for (std::size_t i = 0; i < stats.size(); ++i) {
    const org_account& account = accounts[i % accounts.size()];
    threads.emplace_back(run_connection, std::cref(plan), std::cref(account),
                         std::ref(sequence), std::ref(stats[i]));
  }
  for (auto& t : threads)
    t.join();

  // Merge.
  std::vector<std::int64_t> latencies;
  std::uint64_t requests = 0, created = 0, warmup_requests = 0,
                warmup_errors = 0;
  std::map<int, std::uint64_t> errors_by_status;
  std::map<int, std::string> error_samples;
  steady::time_point last_finish = plan.deadline;
  for (auto& s : stats) {
    latencies.insert(latencies.end(), s.latencies_ns.begin(),
                     s.latencies_ns.end());
    requests += s.requests;
    created += s.created;
    warmup_requests += s.warmup_requests;
    warmup_errors += s.warmup_errors;
    for (const auto& [status, count] : s.errors_by_status)
      errors_by_status[status] += count;
    for (const auto& [status, message] : s.error_samples)
      error_samples.emplace(status, message);
    last_finish = std::max(last_finish, s.last_finish);
  }
  std::sort(latencies.begin(), latencies.end());
  std::uint64_t errors = 0;
  for (const auto& [status, count] : errors_by_status)
    errors += count;
  const std::uint64_t total_errors = errors + warmup_errors;
  // The window runs until the last request started before the deadline ends.
  const double elapsed_s
      = std::chrono::duration<double>(last_finish - plan.measure_start).count();
  const double rate
      = elapsed_s > 0 ? static_cast<double>(created) / elapsed_s : 0.0;
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
        << ",\"created\":" << created << ",\"errors\":" << errors
        << ",\"errors_by_status\":{";
    bool first = true;
    for (const auto& [status, count] : errors_by_status) {
      out << (first ? "" : ",") << "\"" << status_label(status)
          << "\":" << count;
      first = false;
    }
    out << "},\"events_per_s\":" << rate << ",\"latency_ms\":{\"p50\":" << p50
        << ",\"p90\":" << p90 << ",\"p99\":" << p99 << ",\"max\":" << max
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
    out << "node          " << node << " (" << connections << " connections, "
        << orgs << " orgs)\n"
        << "duration      " << elapsed_s << " s (after " << warmup_s
        << " s warmup: " << warmup_requests << " requests, " << warmup_errors
        << " errors)\n"
        << "requests      " << requests << "\n"
        << "created       " << created << "\n"
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
        << "events/s      " << rate << "\n"
        << "latency ms    p50 " << p50 << "  p90 " << p90 << "  p99 " << p99
        << "  max " << max << "\n";
    for (const auto& [status, message] : error_samples)
      out << "error " << status_label(status) << ": " << message << "\n";
  }
  std::cout << out.str();
  return total_errors > 0 ? 1 : 0;
}
