#include "tests/support/api_client.hpp"

#include "tests/support/thread_guard.hpp"
#include <algorithm>
#include <cstdlib>

#include <atomic>
#include <stdexcept>
#include <thread>

#include "common/text.hpp"
#include "protocol/json.hpp"
#include "tests/support/answer_record.hpp"

namespace crmsync::e2e {

namespace {

// POSTs body to target; returns the answer, or throws naming `what` when
// it is not 201.
api_response post_created(api_client& api, std::string_view token,
                          std::string_view target, std::string_view body,
                          const char* what) {
  auto r = api.post(token, target, body);
  if (r.status != 201)
    throw std::runtime_error(std::string{what} + ": " + r.describe());
  return r;
}

// ,"password":… for a request body, or nothing without a password.
std::string password_member(std::string_view password) {
  if (password.empty())
    return {};
  return ",\"password\":" + json_str(password);
}

} // namespace

std::string json_str(std::string_view s) {
  std::string out;
  json::append_string(out, s);
  return out;
}

// -- api_client
// ---------------------------------------------------------------------------

// -- cookie_jar
// --------------------------------------------------------------------------

void cookie_jar::take(const http::header_list& headers) {
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto& [name, value] : headers) {
    if (ascii_lower(name) != "set-cookie")
      continue;
    std::string_view v = value;
    auto pair = v.substr(0, v.find(';'));
    auto eq = pair.find('=');
    if (eq == std::string_view::npos || eq == 0)
      continue;
    std::string key{pair.substr(0, eq)};
    auto lower = ascii_lower(v);
    if (lower.find("max-age=0") != std::string::npos)
      cookies_.erase(key);
    else
      cookies_[key] = std::string{pair.substr(eq + 1)};
  }
}

std::string cookie_jar::header() const {
  std::lock_guard<std::mutex> guard{mtx_};
  std::string out;
  for (auto& [name, value] : cookies_)
    out += (out.empty() ? "" : "; ") + name + "=" + value;
  return out;
}

std::string cookie_jar::get(std::string_view name) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = cookies_.find(name);
  return i == cookies_.end() ? std::string{} : i->second;
}

void cookie_jar::set(std::string_view name, std::string_view value) {
  std::lock_guard<std::mutex> guard{mtx_};
  cookies_[std::string{name}] = std::string{value};
}

void cookie_jar::clear() {
  std::lock_guard<std::mutex> guard{mtx_};
  cookies_.clear();
}

// -- api_client
// --------------------------------------------------------------------------

api_client::api_client(uint16_t port, std::chrono::milliseconds timeout)
    : port_(port), client_("127.0.0.1", port, timeout) {}

void api_client::add_cookies(http::header_list& headers) const {
  for (auto& [name, value] : headers)
    if (name == "Cookie")
      return;
  auto cookies = cookies_->header();
  if (!cookies.empty())
    headers.emplace_back("Cookie", std::move(cookies));
}

bool api_client::try_request(std::string_view method, std::string_view target,
                             std::string_view token, std::string_view body,
                             api_response& out, std::string& err) {
  http::header_list headers;
  if (!token.empty())
    headers.emplace_back("Authorization", "Bearer " + std::string{token});
  if (!body.empty())
    headers.emplace_back("Content-Type", "application/json");
  add_cookies(headers);
  http::client_response res;
  if (!client_.request(method, target, body, headers, res, err))
    return false;
  record_answer(port_, method, target, res);
  cookies_->take(res.headers);
  out = api_response{res.status, std::move(res.body), std::move(res.headers)};
  return true;
}

api_response api_client::request(std::string_view method,
                                 std::string_view target,
                                 std::string_view token, std::string_view body,
                                 std::string_view content_type,
                                 const http::header_list& extra) {
  http::header_list headers;
  if (!token.empty())
    headers.emplace_back("Authorization", "Bearer " + std::string{token});
  if (!content_type.empty() && !body.empty())
    headers.emplace_back("Content-Type", std::string{content_type});
  for (auto& h : extra)
    headers.push_back(h);
  add_cookies(headers);
  http::client_response res;
  std::string err;
  if (!client_.request(method, target, body, headers, res, err))
    throw std::runtime_error(std::string{method} + " " + std::string{target}
                             + ": " + err);
  record_answer(port_, method, target, res);
  cookies_->take(res.headers);
  return api_response{res.status, std::move(res.body), std::move(res.headers)};
}

api_response api_client::get(std::string_view token, std::string_view target) {
  return request("GET", target, token);
}

api_response api_client::post(std::string_view token, std::string_view target,
                              std::string_view body) {
  return request("POST", target, token, body);
}

api_response api_client::patch(std::string_view token, std::string_view target,
                               std::string_view body) {
  return request("PATCH", target, token, body);
}

api_response api_client::put(std::string_view token, std::string_view target,
                             std::string_view body) {
  return request("PUT", target, token, body);
}

api_response api_client::del(std::string_view token, std::string_view target) {
  return request("DELETE", target, token);
}

// -- fixtures
// ----------------------------------------------------------------------------

std::string org_path(std::string_view org) {
  return "/api/v1/orgs/" + std::string{org};
}

std::string users_path(std::string_view org) {
  return org_path(org) + "/users";
}

std::string user_path(std::string_view org, std::string_view user) {
  return users_path(org) + "/" + std::string{user};
}

std::string user_events_path(std::string_view org, std::string_view user) {
  return user_path(org, user) + "/events";
}

std::string event_path(std::string_view org, std::string_view event) {
  return org_path(org) + "/events/" + std::string{event};
}

org_info create_org(api_client& api, std::string_view name,
                    std::string_view admin_email, std::string_view edition,
                    std::string_view password) {
  auto r = post_created(
      api, admin_token, "/api/v1/orgs",
      "{\"name\":" + json_str(name) + ",\"edition\":" + json_str(edition)
          + ",\"admin\":{\"email\":" + json_str(admin_email)
          + ",\"name\":" + json_str("Admin of " + std::string{name})
          + password_member(password) + "}}",
      "create_org");
  org_info o;
  o.id = r.str("/org/id");
  o.admin_id = r.str("/admin/id");
  o.admin_token = r.str("/admin/token");
  o.admin_email = r.str("/admin/email");
  o.created = std::move(r);
  return o;
}

user_info create_user(api_client& api, std::string_view token,
                      std::string_view org, std::string_view email,
                      std::string_view name, std::string_view profile,
                      bool manage_users, std::string_view password) {
  auto r = post_created(
      api, token, users_path(org),
      "{\"email\":" + json_str(email) + ",\"name\":" + json_str(name)
          + ",\"profile\":" + json_str(profile) + ",\"manage_users\":"
          + (manage_users ? "true" : "false") + password_member(password) + "}",
      "create_user");
  user_info u;
  u.id = r.str("/id");
  u.token = r.str("/token");
  u.email = r.str("/email");
  u.created = std::move(r);
  return u;
}

std::string event_body(std::string_view title, std::string_view start,
                       std::string_view end, std::string_view extra) {
  return "{\"title\":" + json_str(title) + ",\"start\":" + json_str(start)
         + ",\"end\":" + json_str(end) + std::string{extra} + "}";
}

api_response create_event(api_client& api, std::string_view token,
                          std::string_view org, std::string_view owner,
                          std::string_view body) {
  return post_created(api, token, user_events_path(org, owner), body,
                      "create_event");
}

api_response create_event(api_client& api, std::string_view org,
                          const user_info& owner, std::string_view body) {
  return create_event(api, owner.token, org, owner.id, body);
}

api_response create_event(api_client& api, const org_info& org,
                          std::string_view body) {
  return create_event(api, org.admin_token, org.id, org.admin_id, body);
}

race_outcome send_at_once(uint16_t port,
                          const std::vector<race_request>& requests,
                          std::shared_ptr<cookie_jar> cookies) {
  const size_t n = requests.size();
  race_outcome out;
  out.results.resize(n);
  out.errors.resize(n);
  std::atomic<size_t> ready{0};
  std::atomic<bool> go{false};
  crmsync::test::thread_guard threads;
  for (size_t i = 0; i < n; ++i) {
    threads.spawn([&, i] {
      api_client c{port};
      if (cookies)
        c.share_cookies(cookies);
      // Connect before the start line so that the requests really race.
      api_response warm;
      c.try_request("GET", "/healthz", "", "", warm, out.errors[i]);
      ++ready;
      while (!go)
        std::this_thread::yield();
      const auto& r = requests[i];
      c.try_request(r.method, r.target, r.token, r.body, out.results[i],
                    out.errors[i]);
    });
  }
  while (ready < n)
    std::this_thread::yield();
  go = true;
  threads.join();
  return out;
}

std::vector<std::string> walk_pages(api_client& api, std::string_view token,
                                    std::string_view target, int limit,
                                    int max_pages, int* pages_out) {
  std::vector<std::string> out;
  std::string base{target};
  base += base.find('?') == std::string::npos ? '?' : '&';
  base += "limit=" + std::to_string(limit);
  std::string cursor;
  int pages = 0;
  for (;;) {
    if (++pages > max_pages)
      throw std::runtime_error("walk_pages: more than "
                               + std::to_string(max_pages) + " pages at "
                               + std::string{target});
    auto url = base;
    if (!cursor.empty())
      url += "&cursor=" + cursor;
    auto r = api.get(token, url);
    if (r.status != 200)
      throw std::runtime_error("walk_pages: GET " + url + ": " + r.describe());
    simdjson::dom::array items;
    if (r.at("/items").get_array().get(items))
      throw std::runtime_error("walk_pages: no items array: " + r.describe());
    if (items.size() > static_cast<size_t>(limit))
      throw std::runtime_error("walk_pages: page larger than limit: "
                               + r.describe());
    for (auto item : items)
      out.push_back(minified(item));
    if (r.is_null("/next_cursor"))
      break;
    cursor = r.str("/next_cursor");
    if (cursor.empty())
      throw std::runtime_error("walk_pages: empty next_cursor: "
                               + r.describe());
  }
  if (pages_out != nullptr)
    *pages_out = pages;
  return out;
}

// -- test_node
// ---------------------------------------------------------------------------

test_node::test_node(std::vector<std::string> extra_args)
    : data_dir_(dir_.path() + "/data"), extra_args_(std::move(extra_args)) {
  start();
}

test_node::~test_node() {
  api_.reset();
  if (proc_.running())
    proc_.stop(std::chrono::seconds(10));
}

void test_node::start() {
  api_.reset();
  node_options o;
  o.data_dir = data_dir_;
  o.admin_token = admin_token;
  o.log_file = dir_.path() + "/node.log";
  o.extra_args = extra_args_;
  // Quiet unless the test asks for a level of its own, or the person
  // running it does (CRMSYNC_TEST_LOG_LEVEL=info, to see every request in
  // a failing test's node log).
  if (std::find(extra_args_.begin(), extra_args_.end(), "--log-level")
      == extra_args_.end()) {
    const char* level = std::getenv("CRMSYNC_TEST_LOG_LEVEL");
    o.extra_args.emplace_back("--log-level");
    o.extra_args.emplace_back(level != nullptr ? level : "warn");
  }
  proc_.start(o);
  api_ = std::make_unique<api_client>(proc_.port());
  api_->share_cookies(cookies_);
}

int test_node::stop() {
  api_.reset();
  return proc_.stop();
}

void test_node::kill9() {
  api_.reset();
  proc_.kill9();
}

} // namespace crmsync::e2e
