#include "tests/emulator/harness.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <mutex>
#include <stdexcept>
#include <tuple>

#include "common/crypto.hpp"
#include "common/time_format.hpp"
#include "emulator/service.hpp"
#include "http/server.hpp"
#include "http/url.hpp"

namespace crmsync::emulator_test {

using crmsync::format_rfc3339;
using crmsync::parse_rfc3339_ms;

int64_t start_ms() {
  static const int64_t ms = *parse_rfc3339_ms("2026-11-26T14:00:00Z");
  return ms;
}

bool is_guid(std::string_view s) {
  if (s.size() != 36)
    return false;
  for (size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    char c = s[i];
    if (dash != (c == '-'))
      return false;
    if (!dash && !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return false;
  }
  return true;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size()
         && s.substr(s.size() - suffix.size()) == suffix;
}

std::set<std::string> as_set(const std::vector<std::string>& v) {
  return {v.begin(), v.end()};
}

// -- answers ------------------------------------------------------------------

reply::reply(http::client_response r)
    : status(r.status)
    , body(std::move(r.body))
    , headers(std::move(r.headers))
    , parser_(std::make_shared<simdjson::dom::parser>()) {
  json_ = !body.empty() && parser_->parse(body).get(root_) == simdjson::SUCCESS;
}

reply reply::of_json(std::string body) {
  http::client_response r;
  r.status = 200;
  r.body = std::move(body);
  return reply{std::move(r)};
}

std::string reply::header(std::string_view name) const {
  for (auto& [k, v] : headers)
    if (k.size() == name.size()
        && std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
             return std::tolower(static_cast<unsigned char>(a))
                    == std::tolower(static_cast<unsigned char>(b));
           }))
      return v;
  return {};
}

bool reply::is_json() const {
  return json_;
}

bool reply::has(std::string_view pointer) const {
  simdjson::dom::element e;
  return json_ && root_.at_pointer(pointer).get(e) == simdjson::SUCCESS;
}

simdjson::dom::element reply::at(std::string_view pointer) const {
  if (!json_)
    fail("the body is not JSON");
  if (pointer.empty())
    return root_;
  simdjson::dom::element e;
  if (root_.at_pointer(pointer).get(e))
    fail("'" + std::string{pointer} + "' is missing");
  return e;
}

std::string reply::str(std::string_view pointer) const {
  std::string_view s;
  if (at(pointer).get_string().get(s))
    fail("'" + std::string{pointer} + "' is not a string");
  return std::string{s};
}

int64_t reply::i64(std::string_view pointer) const {
  int64_t v = 0;
  if (at(pointer).get_int64().get(v))
    fail("'" + std::string{pointer} + "' is not an integer");
  return v;
}

bool reply::boolean(std::string_view pointer) const {
  bool v = false;
  if (at(pointer).get_bool().get(v))
    fail("'" + std::string{pointer} + "' is not a boolean");
  return v;
}

bool reply::is_null(std::string_view pointer) const {
  return at(pointer).is_null();
}

size_t reply::size(std::string_view pointer) const {
  simdjson::dom::array a;
  if (at(pointer).get_array().get(a))
    fail("'" + std::string{pointer} + "' is not an array");
  return a.size();
}

std::vector<std::string> reply::keys(std::string_view pointer) const {
  simdjson::dom::object o;
  if (at(pointer).get_object().get(o))
    fail("'" + std::string{pointer} + "' is not an object");
  std::vector<std::string> out;
  for (auto kv : o)
    out.emplace_back(kv.key);
  return out;
}

std::string reply::json(std::string_view pointer) const {
  return simdjson::minify(at(pointer));
}

std::string reply::describe() const {
  return std::to_string(status) + " " + body;
}

void reply::fail(const std::string& what) const {
  throw std::runtime_error(what + " in the answer " + describe());
}

std::vector<std::string> ids_of(const std::vector<reply>& pages) {
  std::vector<std::string> out;
  for (auto& p : pages)
    for (size_t i = 0; i < p.size("/value"); ++i)
      out.push_back(p.str("/value/" + std::to_string(i) + "/id"));
  return out;
}

// -- request bodies and paths
// --------------------------------------------------

std::string
form(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string out;
  for (auto& [k, v] : fields) {
    if (!out.empty())
      out += '&';
    out += http::percent_encode(k) + "=" + http::percent_encode(v);
  }
  return out;
}

std::string client_credentials(std::string_view client_id,
                               std::string_view secret) {
  return form({{"client_id", std::string{client_id}},
               {"client_secret", std::string{secret}},
               {"scope", "https://graph.microsoft.com/.default"},
               {"grant_type", "client_credentials"}});
}

std::string user_path(std::string_view user) {
  return "/v1.0/users/" + http::percent_encode(user);
}

std::string calendars_path(std::string_view user) {
  return user_path(user) + "/calendars";
}

std::string calendar_path(std::string_view user, std::string_view cal) {
  return calendars_path(user) + "/" + std::string{cal};
}

std::string calendar_events_path(std::string_view user, std::string_view cal) {
  return calendar_path(user, cal) + "/events";
}

std::string events_path(std::string_view user) {
  return user_path(user) + "/events";
}

std::string event_path(std::string_view user, std::string_view ev) {
  return events_path(user) + "/" + std::string{ev};
}

std::string event_body(std::string_view subject, std::string_view start,
                       std::string_view end, std::string_view extra) {
  return R"({"subject":")" + std::string{subject} + R"(","start":{"dateTime":")"
         + std::string{start} + R"(","timeZone":"UTC"},"end":{"dateTime":")"
         + std::string{end} + R"(","timeZone":"UTC"})" + std::string{extra}
         + "}";
}

std::string expand_query(std::string_view prop_id) {
  return "$expand="
         + http::percent_encode("singleValueExtendedProperties($filter=id eq '"
                                + std::string{prop_id} + "')");
}

std::string filter_query(std::string_view prop_id, std::string_view value) {
  return "$filter="
         + http::percent_encode(
             "singleValueExtendedProperties/Any(ep: ep/id eq '"
             + std::string{prop_id} + "' and ep/value eq '" + std::string{value}
             + "')");
}

// -- the shared services
// --------------------------------------------------------

/// One service with its server and clock, alive until the process ends.
struct shared_service {
  explicit shared_service(const options& opts) {
    crmsync::emulator::service_config cfg;
    cfg.token_lifetime = opts.token_lifetime;
    cfg.mailbox_requests_per_window = opts.mailbox_requests_per_window;
    cfg.mailbox_window = opts.mailbox_window;
    cfg.change_log_floor = opts.change_log_floor;
    cfg.now_ms = [c = clock] {
      return c->load();
    };
    service = std::make_unique<crmsync::emulator::service>(std::move(cfg));
    http::server_config sc;
    sc.host = "127.0.0.1";
    sc.port = 0;
    sc.threads = 2;
    auto svc = service.get();
    server = std::make_unique<http::server>(
        sc, [svc](http::request&& req, http::responder_ptr r) {
          svc->handle(std::move(req), std::move(r));
        });
    std::string err;
    if (!server->start(err))
      throw std::runtime_error("cannot start the emulator: " + err);
  }

  ~shared_service() {
    // The service before the server: its delay line sends the answers it
    // still holds (latency injected) to responders of the server's
    // sessions, which must still exist then.
    server->stop();
    service.reset();
    server.reset();
  }

  shared_service(const shared_service&) = delete;
  shared_service& operator=(const shared_service&) = delete;

  std::shared_ptr<std::atomic<int64_t>> clock
      = std::make_shared<std::atomic<int64_t>>(start_ms());
  std::unique_ptr<crmsync::emulator::service> service;
  std::unique_ptr<http::server> server;
};

namespace {

shared_service& service_for(const options& opts) {
  // OpenSSL registers its exit-time cleanup when first used; doing that
  // before the pool exists makes the cleanup run after the pool's
  // destructor, which still frees the services' keys.
  static const bool libraries_ready
      = crypto::init() && OPENSSL_init_crypto(0, nullptr) == 1;
  if (!libraries_ready)
    throw std::runtime_error("libsodium or OpenSSL failed to start");
  using key = std::tuple<int64_t, size_t, int64_t, size_t>;
  static std::mutex mtx;
  static std::map<key, std::unique_ptr<shared_service>> pool;
  std::lock_guard<std::mutex> guard{mtx};
  auto& slot
      = pool[key{opts.token_lifetime.count(), opts.mailbox_requests_per_window,
                 opts.mailbox_window.count(), opts.change_log_floor}];
  if (!slot)
    slot = std::make_unique<shared_service>(opts);
  return *slot;
}

} // namespace

// -- the fixture
// ---------------------------------------------------------------

emulator::emulator() : emulator(options{}) {}

emulator::emulator(const options& opts) : shared_(&service_for(opts)) {
  shared_->clock->store(start_ms());
  client_ = std::make_unique<http::client>("127.0.0.1", port());
  auto r = send("POST", "/_emulator/reset");
  if (r.status != 204)
    throw std::runtime_error("cannot reset the emulator: " + r.describe());
}

emulator::~emulator() = default;

int64_t emulator::now() const {
  return shared_->clock->load();
}

void emulator::advance(int64_t ms) {
  shared_->clock->fetch_add(ms);
}

uint16_t emulator::port() const {
  return shared_->server->port();
}

std::string emulator::origin() const {
  return "http://127.0.0.1:" + std::to_string(port());
}

reply emulator::send(std::string_view method, std::string_view target,
                     std::string_view body, const http::header_list& headers) {
  http::client_response out;
  std::string err;
  if (!client_->request(method, target, body, headers, out, err))
    throw std::runtime_error(std::string{method} + " " + std::string{target}
                             + ": " + err);
  return reply{std::move(out)};
}

reply emulator::graph(std::string_view method, std::string_view target,
                      std::string_view token, std::string_view body,
                      http::header_list headers) {
  if (!token.empty())
    headers.emplace_back("Authorization", "Bearer " + std::string{token});
  return send(method, target, body, headers);
}

reply emulator::get(std::string_view target, std::string_view token) {
  return graph("GET", target, token);
}

reply emulator::post(std::string_view target, std::string_view token,
                     std::string_view body) {
  return graph("POST", target, token, body);
}

reply emulator::patch(std::string_view target, std::string_view token,
                      std::string_view body, std::string_view if_match) {
  http::header_list h;
  if (!if_match.empty())
    h.emplace_back("If-Match", std::string{if_match});
  return graph("PATCH", target, token, body, h);
}

reply emulator::del(std::string_view target, std::string_view token,
                    std::string_view if_match) {
  http::header_list h;
  if (!if_match.empty())
    h.emplace_back("If-Match", std::string{if_match});
  return graph("DELETE", target, token, {}, h);
}

reply emulator::request_token(std::string_view tenant,
                              std::string_view form_body) {
  return send("POST", "/" + std::string{tenant} + "/oauth2/v2.0/token",
              form_body,
              {{"Content-Type", "application/x-www-form-urlencoded"}});
}

std::string emulator::token(std::string_view tenant, std::string_view client_id,
                            std::string_view secret) {
  auto r = request_token(tenant, client_credentials(client_id, secret));
  REQUIRE_STATUS(r, 200);
  return r.str("/access_token");
}

reply emulator::seed_tenant(std::string_view body) {
  auto r = send("POST", "/_emulator/tenants", body);
  REQUIRE_STATUS(r, 201);
  return r;
}

void emulator::seed_app(std::string_view client_id, std::string_view secret,
                        std::string_view tenants_json) {
  auto r = send("POST", "/_emulator/apps",
                R"({"client_id":")" + std::string{client_id}
                    + R"(","client_secret":")" + std::string{secret}
                    + R"(","tenants":)" + std::string{tenants_json} + "}");
  REQUIRE_STATUS(r, 201);
}

reply emulator::state() {
  auto r = send("GET", "/_emulator/state");
  REQUIRE_STATUS(r, 200);
  return r;
}

void emulator::check_error(const reply& r, int status, std::string_view code) {
  INFO(r.describe());
  REQUIRE(r.status == status);
  REQUIRE(r.is_json());
  CHECK(r.str("/error/code") == code);
  CHECK_FALSE(r.str("/error/message").empty());
  auto request_id = r.str("/error/innerError/request-id");
  CHECK(is_guid(request_id));
  CHECK(r.header("request-id") == request_id);
  CHECK(r.str("/error/innerError/date")
        == format_rfc3339(now() - now() % 1000));
}

void emulator::check_oauth_error(const reply& r, int status,
                                 std::string_view error, int aadsts) {
  INFO(r.describe());
  REQUIRE(r.status == status);
  REQUIRE(r.is_json());
  CHECK(r.str("/error") == error);
  CHECK(starts_with(r.str("/error_description"),
                    "AADSTS" + std::to_string(aadsts) + ": "));
  REQUIRE(r.size("/error_codes") == 1);
  CHECK(r.i64("/error_codes/0") == aadsts);
  CHECK(r.str("/timestamp") == format_rfc3339(now() - now() % 1000));
  CHECK(is_guid(r.str("/trace_id")));
  CHECK(is_guid(r.str("/correlation_id")));
  CHECK_FALSE(r.has("/access_token"));
}

std::vector<reply> emulator::walk(std::string_view first,
                                  std::string_view token, size_t max_pages) {
  std::vector<reply> pages;
  std::string target{first};
  for (;;) {
    auto page = get(target, token);
    REQUIRE_STATUS(page, 200);
    pages.push_back(page);
    if (!page.has("/@odata.nextLink"))
      return pages;
    REQUIRE(pages.size() < max_pages);
    target = target_of(page.str("/@odata.nextLink"));
  }
}

std::string emulator::target_of(std::string_view link) const {
  INFO("link " << link);
  REQUIRE(starts_with(link, origin() + "/"));
  return std::string{link.substr(origin().size())};
}

// -- Contoso
// --------------------------------------------------------------------

contoso::contoso() : contoso(options{}) {}

contoso::contoso(const options& opts) : emulator(opts) {
  auto t = seed_tenant(
      std::string{R"({"id":")"} + contoso_id
      + R"(","domain":"contoso.example","users":[)"
        R"({"id":")"
      + admin_id
      + R"(","userPrincipalName":"Admin@contoso.example",)"
        R"("displayName":"Ada Admin","mail":"admin@contoso.example",)"
        R"("isAdmin":true},)"
        R"({"userPrincipalName":"alex@contoso.example",)"
        R"("displayName":"Alex Wilber"},)"
        R"({"userPrincipalName":"room@contoso.example",)"
        R"("displayName":"Room 1","hasMailbox":false}]})");
  alex_id = t.str("/users/1/id");
  room_id = t.str("/users/2/id");
  seed_app(crm_client, crm_secret, R"(["contoso.example"])");
  tok = token("contoso.example", crm_client, crm_secret);
}

reply contoso::create_event(std::string_view target, std::string_view body) {
  auto r = post(target, tok, body);
  REQUIRE_STATUS(r, 201);
  return r;
}

std::string contoso::create_calendar(std::string_view name) {
  auto r = post(calendars_path(admin_id), tok,
                R"({"name":")" + std::string{name} + R"("})");
  REQUIRE_STATUS(r, 201);
  return r.str("/id");
}

std::string contoso::default_calendar_id(std::string_view user) {
  auto r = get(calendars_path(user), tok);
  REQUIRE_STATUS(r, 200);
  for (size_t i = 0; i < r.size("/value"); ++i) {
    auto p = "/value/" + std::to_string(i);
    if (r.boolean(p + "/isDefaultCalendar"))
      return r.str(p + "/id");
  }
  FAIL("no default calendar in " << r.body);
  return {};
}

} // namespace crmsync::emulator_test
