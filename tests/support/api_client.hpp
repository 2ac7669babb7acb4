// End-to-end test support: calling a running crmsyncd over HTTP.
//
// api_client wraps crmsync::http::client (one keep-alive connection) with
// bearer tokens and a cookie jar; every answer is an api_response
// (api_response.hpp) with its JSON parsed.
// One api_client belongs to one thread at a time.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/client.hpp"
#include "tests/support/api_response.hpp"
#include "tests/support/node_process.hpp"
#include "tests/support/temp_dir.hpp"

namespace crmsync::e2e {

/// The service admin token every test node is started with.
inline constexpr const char* admin_token = "e2e-service-admin-token-0123456789";

/// A JSON string literal (quoted and escaped) for building request bodies.
std::string json_str(std::string_view s);

/// A browser's cookies for one site (names to values): Set-Cookie answers
/// fill it, and every request sends it back as one Cookie header. Paths,
/// expiry and attributes are not modelled: one site, one short test.
/// Several clients may share one jar (nodes behind one public origin, a
/// node restarted); safe to use from several threads.
class cookie_jar {
public:
  /// Stores the cookies of every Set-Cookie header (Max-Age=0 removes).
  void take(const http::header_list& headers);
  /// "name=value; name=value", or "" when empty.
  std::string header() const;
  /// One cookie's value ("" when absent).
  std::string get(std::string_view name) const;
  void set(std::string_view name, std::string_view value);
  void clear();

private:
  mutable std::mutex mtx_;
  std::map<std::string, std::string, std::less<>> cookies_;
};

/// Blocking HTTP calls to one node, carrying cookies like a browser.
class api_client {
public:
  explicit api_client(uint16_t port, std::chrono::milliseconds timeout
                                     = std::chrono::seconds(15));

  /// Sends one request; throws std::runtime_error on transport failure.
  /// An empty token sends no Authorization header. An empty content_type
  /// with a body sends the client's default (application/json).
  api_response request(std::string_view method, std::string_view target,
                       std::string_view token, std::string_view body = {},
                       std::string_view content_type = "application/json",
                       const http::header_list& extra = {});

  /// Like request() but reports transport failure as false (no throw).
  bool try_request(std::string_view method, std::string_view target,
                   std::string_view token, std::string_view body,
                   api_response& out, std::string& err);

  api_response get(std::string_view token, std::string_view target);
  api_response post(std::string_view token, std::string_view target,
                    std::string_view body);
  api_response patch(std::string_view token, std::string_view target,
                     std::string_view body);
  api_response put(std::string_view token, std::string_view target,
                   std::string_view body);
  api_response del(std::string_view token, std::string_view target);

  uint16_t port() const {
    return port_;
  }

  /// The cookies this client sends and keeps (its own unless shared).
  cookie_jar& cookies() {
    return *cookies_;
  }
  const std::shared_ptr<cookie_jar>& cookie_jar_ptr() const {
    return cookies_;
  }
  void share_cookies(std::shared_ptr<cookie_jar> jar) {
    cookies_ = std::move(jar);
  }

private:
  /// Adds the Cookie header unless `headers` has one already.
  void add_cookies(http::header_list& headers) const;

  uint16_t port_;
  http::client client_;
  std::shared_ptr<cookie_jar> cookies_ = std::make_shared<cookie_jar>();
};

// -- fixtures
// --------------------------------------------------------------------------

struct org_info {
  std::string id;
  std::string admin_id;
  std::string admin_token;
  std::string admin_email;
  api_response created; ///< the 201 answer
};

struct user_info {
  std::string id;
  std::string token;
  std::string email;
  api_response created; ///< the 201 answer (includes the token)
};

/// POST /api/v1/orgs with the service admin token; throws unless 201.
org_info create_org(api_client& api, std::string_view name,
                    std::string_view admin_email,
                    std::string_view edition = "free",
                    std::string_view password = {});

/// POST /api/v1/orgs/{org}/users; throws unless 201.
user_info create_user(api_client& api, std::string_view token,
                      std::string_view org, std::string_view email,
                      std::string_view name,
                      std::string_view profile = "standard",
                      bool manage_users = false,
                      std::string_view password = {});

/// {"title":…,"start":…,"end":…} plus `extra` fields (e.g.
/// ",\"all_day\":true").
std::string event_body(std::string_view title, std::string_view start,
                       std::string_view end, std::string_view extra = {});

/// POST an event for `owner`; throws unless 201; returns the answer.
api_response create_event(api_client& api, std::string_view token,
                          std::string_view org, std::string_view owner,
                          std::string_view body);

/// The same, posted by `owner` with their own token.
api_response create_event(api_client& api, std::string_view org,
                          const user_info& owner, std::string_view body);

/// The same, posted by the organization's admin for themself.
api_response create_event(api_client& api, const org_info& org,
                          std::string_view body);

/// One request of a race (see send_at_once).
struct race_request {
  std::string method;
  std::string target;
  std::string token;
  std::string body;
};

/// What each request of a race got, by index: the answer (status 0 when
/// none came) and the transport error ("" when there was none).
struct race_outcome {
  std::vector<api_response> results;
  std::vector<std::string> errors;
};

/// Sends all requests at the same moment, each on its own connection to
/// `port` from its own thread: every connection is opened first (GET
/// /healthz), so that only the requests themselves race. With `cookies`,
/// every connection is that browser's (it sends and keeps them).
race_outcome send_at_once(uint16_t port,
                          const std::vector<race_request>& requests,
                          std::shared_ptr<cookie_jar> cookies = nullptr);

/// Paths.
std::string org_path(std::string_view org);
std::string users_path(std::string_view org);
std::string user_path(std::string_view org, std::string_view user);
std::string user_events_path(std::string_view org, std::string_view user);
std::string event_path(std::string_view org, std::string_view event);

/// Reads every page of a listing (items + next_cursor) at `target` (which
/// may already carry a query; `limit` is appended). Returns each item's
/// minified JSON in order. Throws on a non-200 page or when the walk takes
/// more than `max_pages` pages.
std::vector<std::string> walk_pages(api_client& api, std::string_view token,
                                    std::string_view target, int limit,
                                    int max_pages = 10000,
                                    int* pages_out = nullptr);

/// A node in a fresh temporary directory, with a client. Restartable on
/// the same data directory.
class test_node {
public:
  explicit test_node(std::vector<std::string> extra_args = {});
  ~test_node();

  /// Starts (again) on the same data directory; replaces the client.
  void start();
  /// SIGTERM and wait; returns the exit status (see node_process::stop).
  int stop();
  void kill9();

  api_client& api() {
    return *api_;
  }
  /// The cookies of the browser talking to this node; they survive
  /// restarts, as a browser's would.
  const std::shared_ptr<cookie_jar>& cookies() const {
    return cookies_;
  }
  node_process& process() {
    return proc_;
  }
  uint16_t port() const {
    return proc_.port();
  }
  const std::string& data_dir() const {
    return data_dir_;
  }
  std::string log_tail() const {
    return proc_.log_tail();
  }
  std::vector<std::string>& extra_args() {
    return extra_args_;
  }

private:
  test::temp_dir dir_;
  std::string data_dir_;
  std::vector<std::string> extra_args_;
  node_process proc_;
  std::shared_ptr<cookie_jar> cookies_ = std::make_shared<cookie_jar>();
  std::unique_ptr<api_client> api_;
};

/// A fresh node with one organization, "Acme" (admin@acme.example): how
/// most tests start, as a fixture for TEST_CASE_METHOD. `api` is the node's
/// client; it is replaced when the node restarts.
struct acme_fixture {
  test_node node;
  api_client& api = node.api();
  org_info org = create_org(api, "Acme", "admin@acme.example");
};

} // namespace crmsync::e2e
