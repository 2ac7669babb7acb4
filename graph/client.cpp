// Implements graph/client.hpp.
//
// Four pieces of shared state, each behind its own mutex so that waiting
// on one never holds up the others: the keep-alive connection pool (idle
// http::client objects per origin), the app-only tokens per tenant (one
// fetch at a time per tenant, others wait on a condition variable), the
// mailbox budgets (in-flight count and a sliding log of completion times
// per mailbox, callers wait on the mailbox's condition variable), and the
// identity platform's signing keys per tenant. No lock is held while a
// request is on the wire or while a caller sleeps before a retry.
#include "graph/client.hpp"

#include <simdjson.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>
#include <utility>

#include "common/metrics.hpp"
#include "graph/jwt_verify.hpp"
#include "graph/wire.hpp"
#include "http/url.hpp"
#include "protocol/json.hpp"

namespace crmsync::graph {

namespace {

using steady = std::chrono::steady_clock;

constexpr size_t max_batch_items = 20;
constexpr int64_t id_token_skew_s = 300;
constexpr std::string_view app_scope = "https://graph.microsoft.com/.default";
constexpr std::string_view sign_in_scope = "openid profile email";
constexpr std::string_view form_type = "application/x-www-form-urlencoded";
constexpr std::string_view json_type = "application/json";

std::string
form(std::initializer_list<std::pair<std::string_view, std::string_view>>
         fields) {
  std::string out;
  for (auto& [k, v] : fields) {
    if (!out.empty())
      out += '&';
    out += http::percent_encode(k) + "=" + http::percent_encode(v);
  }
  return out;
}

error local_error(std::string code, std::string message) {
  error e;
  e.code = std::move(code);
  e.message = std::move(message);
  return e;
}

bool is_success(int status) {
  return status >= 200 && status < 300;
}

std::string ascii_lower(std::string_view s) {
  std::string out{s};
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ascii_lower(a) == ascii_lower(b);
}

std::string trim_trailing_slashes(std::string s) {
  while (!s.empty() && s.back() == '/')
    s.pop_back();
  return s;
}

/// Graph's error (or OAuth's) from a non-2xx answer.
error answer_error(const http::client_response& res) {
  error e;
  e.status = res.status;
  if (!wire::parse_error_body(res.body, e.code, e.message)) {
    e.code = "http_" + std::to_string(res.status);
    e.message = res.body.empty() ? "no error body" : res.body.substr(0, 300);
  }
  return e;
}

simdjson::dom::parser& json_parser() {
  thread_local simdjson::dom::parser parser;
  return parser;
}

/// A base URL from the configuration, checked once.
struct base {
  wire::url url;
  std::string path; ///< url.target without trailing '/' ("" for the root)
  std::string text; ///< as configured, without trailing '/'
  error problem;    ///< code empty when usable

  base(const std::string& configured, const char* what) {
    text = trim_trailing_slashes(configured);
    std::string why;
    if (!wire::parse_url(text, url, why)) {
      problem = local_error("invalid_url", std::string{what} + ": " + why);
      return;
    }
    if (url.target.find('?') != std::string::npos) {
      problem = local_error("invalid_url",
                            std::string{what} + " must not carry a query");
      return;
    }
    if (!wire::transport_allowed(url, why))
      problem = local_error("insecure_url", std::string{what} + ": " + why);
    path = trim_trailing_slashes(url.target);
  }

  bool usable(error& err) const {
    if (problem.code.empty())
      return true;
    err = problem;
    return false;
  }

  /// This base's origin with `suffix` appended to its path.
  wire::url at(std::string_view suffix) const {
    wire::url u = url;
    u.target = path + std::string{suffix};
    return u;
  }
};

} // namespace

std::string error::describe() const {
  std::string out;
  if (status != 0)
    out += std::to_string(status) + " ";
  out += code.empty() ? std::string{"error"} : code;
  if (!message.empty())
    out += ": " + message;
  if (attempts > 0)
    out += " (after " + std::to_string(attempts)
           + (attempts == 1 ? " attempt)" : " attempts)");
  return out;
}

struct client::impl {
  config cfg;
  base graph;
  base login;

  explicit impl(config c)
      : cfg(std::move(c))
      , graph(cfg.graph_base_url, "graph_base_url")
      , login(cfg.login_base_url, "login_base_url") {
    if (!cfg.now_ms)
      cfg.now_ms = [] {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
      };
    // Limits of zero would make every caller wait forever.
    cfg.mailbox_concurrency = std::max<size_t>(1, cfg.mailbox_concurrency);
    cfg.mailbox_requests_per_window
        = std::max<size_t>(1, cfg.mailbox_requests_per_window);
    cfg.max_attempts = std::max(1, cfg.max_attempts);
  }

  // -- statistics
  // ---------------------------------------------------------------

  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> retries{0};
  std::atomic<uint64_t> throttled{0};
  std::atomic<uint64_t> token_fetches{0};
  std::atomic<uint64_t> max_in_flight_per_mailbox{0};
  std::atomic<uint64_t> max_in_flight{0};

  static void raise_to(std::atomic<uint64_t>& high, uint64_t v) {
    auto seen = high.load();
    while (seen < v && !high.compare_exchange_weak(seen, v)) {
    }
  }

  // -- connection pool
  // ---------------------------------------------------------------

  std::mutex pool_mtx;
  std::map<std::string, std::vector<std::unique_ptr<http::client>>> idle;

  std::unique_ptr<http::client> checkout(const wire::origin& o) {
    {
      std::lock_guard<std::mutex> guard{pool_mtx};
      auto& list = idle[o.key()];
      if (!list.empty()) {
        auto c = std::move(list.back());
        list.pop_back();
        return c;
      }
    }
    http::tls_options tls;
    tls.enabled = o.https;
    tls.extra_ca_file = cfg.ca_file;
    return std::make_unique<http::client>(o.host, o.port, cfg.io_timeout,
                                          std::move(tls));
  }

  void checkin(const wire::origin& o, std::unique_ptr<http::client> c) {
    std::lock_guard<std::mutex> guard{pool_mtx};
    auto& list = idle[o.key()];
    if (list.size() < cfg.connections_per_host)
      list.push_back(std::move(c));
  }

  /// One exchange on a pooled connection; a connection that failed is
  /// dropped rather than returned. Every exchange is counted here (see
  /// common/metrics.hpp for what the Graph metrics mean).
  bool send_once(const wire::url& u, std::string_view method,
                 std::string_view body, const http::header_list& headers,
                 http::client_response& res, std::string& why) {
    auto started = steady::now();
    auto conn = checkout(u.where);
    bool answered = conn->request(method, u.target, body, headers, res, why);
    metrics::node().graph_request(
        answered ? res.status : 0,
        std::chrono::duration<double>(steady::now() - started).count());
    if (!answered)
      return false;
    if (res.status == 429)
      metrics::node().graph_throttled();
    checkin(u.where, std::move(conn));
    return true;
  }

  // -- mailbox budgets
  // ---------------------------------------------------------------

  struct budget {
    size_t in_flight = 0;
    size_t waiters = 0;
    /// Completion times of requests within the window, oldest first. A
    /// request is logged when its answer arrived: by then the service has
    /// certainly counted it, so our window never ends before Graph's.
    std::deque<steady::time_point> log;
    std::condition_variable cv;
  };

  std::mutex budget_mtx;
  std::unordered_map<std::string, std::unique_ptr<budget>> budgets;
  size_t mailbox_requests_in_flight = 0; ///< all mailboxes; budget_mtx
  uint64_t releases = 0;                 ///< budget_mtx

  /// Takes a request slot of the mailbox, waiting as long as its budget
  /// says; false when the client is shutting down.
  bool acquire(const std::string& key) {
    const auto window = steady::duration{cfg.mailbox_window};
    std::unique_lock<std::mutex> lock{budget_mtx};
    auto& slot = budgets[key];
    if (!slot)
      slot = std::make_unique<budget>();
    auto& b = *slot;
    ++b.waiters;
    for (;;) {
      if (stopping) {
        --b.waiters;
        return false;
      }
      auto now = steady::now();
      while (!b.log.empty() && b.log.front() + window <= now)
        b.log.pop_front();
      bool slot_free = b.in_flight < cfg.mailbox_concurrency;
      bool window_free
          = b.in_flight + b.log.size() < cfg.mailbox_requests_per_window;
      if (slot_free && window_free)
        break;
      if (slot_free && !b.log.empty())
        b.cv.wait_until(lock, b.log.front() + window);
      else
        b.cv.wait(lock);
    }
    --b.waiters;
    ++b.in_flight;
    ++mailbox_requests_in_flight;
    raise_to(max_in_flight_per_mailbox, b.in_flight);
    raise_to(max_in_flight, mailbox_requests_in_flight);
    return true;
  }

  // -- shutting down
  // -------------------------------------------------------------

  std::atomic<bool> stopping{false};
  std::mutex pause_mtx;
  std::condition_variable pause_cv;

  /// Waits `d` (a retry's pause); false, at once, when shutting down.
  bool pause(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> lock{pause_mtx};
    return !pause_cv.wait_for(lock, d, [this] { return stopping.load(); });
  }

  void shutdown() {
    stopping = true;
    {
      std::lock_guard<std::mutex> guard{budget_mtx};
      for (auto& [key, b] : budgets)
        b->cv.notify_all();
    }
    std::lock_guard<std::mutex> guard{pause_mtx};
    pause_cv.notify_all();
  }

  static error stopped_error() {
    error e;
    e.code = "shutting_down";
    e.message = "the node is shutting down";
    return e;
  }

  void release(const std::string& key) {
    std::lock_guard<std::mutex> guard{budget_mtx};
    auto& b = *budgets[key];
    --b.in_flight;
    --mailbox_requests_in_flight;
    auto now = steady::now();
    b.log.push_back(now);
    b.cv.notify_all();
    // Forget mailboxes nobody used for a whole window, now and then.
    if (++releases % 1024 != 0)
      return;
    const auto window = steady::duration{cfg.mailbox_window};
    for (auto i = budgets.begin(); i != budgets.end();) {
      auto& x = *i->second;
      bool quiet = x.in_flight == 0 && x.waiters == 0
                   && (x.log.empty() || x.log.back() + window <= now);
      i = quiet ? budgets.erase(i) : std::next(i);
    }
  }

  /// Holds one of a mailbox's request slots for its lifetime.
  class mailbox_pass {
  public:
    mailbox_pass(impl& owner, const std::string& mailbox)
        : owner_(owner), key_(ascii_lower(mailbox)) {
      held_ = key_.empty() || owner_.acquire(key_);
    }
    ~mailbox_pass() {
      if (!key_.empty() && held_)
        owner_.release(key_);
    }
    /// False when no slot was taken (the client is shutting down).
    bool held() const {
      return held_;
    }
    mailbox_pass(const mailbox_pass&) = delete;
    mailbox_pass& operator=(const mailbox_pass&) = delete;

  private:
    impl& owner_;
    std::string key_;
    bool held_ = false;
  };

  // -- retries
  // ---------------------------------------------------------------

  /// Full jitter: uniform in [0, min(max, base * 2^(attempt-1))].
  std::chrono::milliseconds backoff(int attempt) const {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    auto cap = cfg.backoff_base.count();
    for (int i = 1; i < attempt && cap < cfg.backoff_max.count(); ++i)
      cap *= 2;
    cap = std::min<int64_t>(cap, cfg.backoff_max.count());
    if (cap <= 0)
      return std::chrono::milliseconds{0};
    return std::chrono::milliseconds{
        std::uniform_int_distribution<int64_t>{0, cap}(rng)};
  }

  struct outgoing {
    std::string_view method;
    wire::url url;
    std::string_view body;
    std::string_view content_type;
    const std::string* tenant = nullptr;      ///< sends its app-only token
    std::string mailbox;                      ///< counts against its budget
    const http::header_list* extra = nullptr; ///< the caller's headers
    /// False for requests that must not be repeated once they may have
    /// reached the service (redeeming a single-use code).
    bool retry_transport = true;
  };

  /// Sends with the retry policy of client.hpp; 2xx fills `out`.
  bool perform(const outgoing& req, response& out, error& err) {
    std::string why;
    if (!wire::transport_allowed(req.url, why)) {
      err = local_error("insecure_url", why);
      return false;
    }
    std::string token;
    bool renewed = false;
    int attempts = 0;
    int64_t retry_after = 0;
    for (;;) {
      if (req.tenant != nullptr && !app_token(*req.tenant, token, err)) {
        err.attempts = std::max(err.attempts, attempts);
        return false;
      }
      http::header_list headers;
      headers.emplace_back("Accept", "application/json");
      if (!token.empty())
        headers.emplace_back("Authorization", "Bearer " + token);
      if (!req.body.empty() && !req.content_type.empty())
        headers.emplace_back("Content-Type", std::string{req.content_type});
      if (req.extra != nullptr)
        for (auto& [name, value] : *req.extra)
          if (!iequals(name, "authorization") && !iequals(name, "content-type"))
            headers.emplace_back(name, value);
      http::client_response res;
      bool answered = false;
      ++attempts;
      {
        mailbox_pass pass{*this, req.mailbox};
        if (!pass.held()) {
          err = stopped_error();
          return false;
        }
        answered = send_once(req.url, req.method, req.body, headers, res, why);
      }
      ++requests;
      if (answered && is_success(res.status)) {
        out.status = res.status;
        out.body = std::move(res.body);
        out.headers = std::move(res.headers);
        return true;
      }
      error last = answered ? answer_error(res) : local_error("transport", why);
      bool again = false;
      std::chrono::milliseconds wait{0};
      if (!answered) {
        again = req.retry_transport;
        wait = backoff(attempts);
      } else if (res.status == 401 && req.tenant != nullptr && !renewed) {
        // The token may have been revoked or expired early: once per call.
        forget_token_if(*req.tenant, token);
        renewed = true;
        again = true;
      } else if (res.status == 429 || res.status == 503) {
        if (res.status == 429)
          ++throttled;
        if (auto ra = wire::parse_retry_after(res.header("Retry-After"))) {
          retry_after = *ra;
          again = *ra <= cfg.max_retry_after.count();
          wait = std::chrono::seconds{*ra};
          if (!again)
            last.message += " (Retry-After " + std::to_string(*ra)
                            + " s is beyond the longest wait honoured, "
                            + std::to_string(cfg.max_retry_after.count())
                            + " s)";
        } else {
          again = true;
          wait = backoff(attempts);
        }
      } else if (res.status == 502 || res.status == 504) {
        again = true;
        wait = backoff(attempts);
      }
      last.retry_after_s = retry_after;
      last.attempts = attempts;
      if (!again || attempts >= cfg.max_attempts) {
        err = std::move(last);
        return false;
      }
      ++retries;
      if (wait.count() > 0 && !pause(wait)) {
        err = stopped_error();
        return false;
      }
    }
  }

  // -- app-only tokens
  // ---------------------------------------------------------------

  struct token_slot {
    std::string value;
    int64_t renew_at_ms = 0;
    bool fetching = false;
    uint64_t generation = 0; ///< fetches finished
    bool last_failed = false;
    error last_error;
  };

  std::mutex token_mtx;
  std::condition_variable token_cv;
  std::map<std::string, token_slot> tokens; ///< nodes are stable

  /// The tenant's token, fetched if there is none or it is due for
  /// renewal; concurrent callers share one fetch.
  bool app_token(const std::string& tenant, std::string& token, error& err) {
    std::unique_lock<std::mutex> lock{token_mtx};
    auto& slot = tokens[tenant];
    for (;;) {
      if (!slot.value.empty() && cfg.now_ms() < slot.renew_at_ms) {
        token = slot.value;
        return true;
      }
      if (!slot.fetching)
        break;
      auto seen = slot.generation;
      token_cv.wait(lock, [&] { return slot.generation != seen; });
      if (slot.last_failed) {
        err = slot.last_error;
        return false;
      }
    }
    slot.fetching = true;
    lock.unlock();
    std::string value;
    int64_t renew_at = 0;
    error failure;
    bool ok = fetch_token(tenant, value, renew_at, failure);
    lock.lock();
    slot.fetching = false;
    ++slot.generation;
    slot.last_failed = !ok;
    if (ok) {
      slot.value = value;
      slot.renew_at_ms = renew_at;
      token = std::move(value);
    } else {
      slot.value.clear();
      slot.last_error = failure;
      err = std::move(failure);
    }
    token_cv.notify_all();
    return ok;
  }

  bool fetch_token(const std::string& tenant, std::string& token,
                   int64_t& renew_at_ms, error& err) {
    if (!login.usable(err))
      return false;
    ++token_fetches;
    auto body = form({{"client_id", cfg.client_id},
                      {"client_secret", cfg.client_secret},
                      {"scope", app_scope},
                      {"grant_type", "client_credentials"}});
    outgoing req;
    req.method = "POST";
    req.url
        = login.at("/" + http::percent_encode(tenant) + "/oauth2/v2.0/token");
    req.body = body;
    req.content_type = form_type;
    response res;
    if (!perform(req, res, err))
      return false;
    simdjson::dom::element root;
    std::string_view value;
    int64_t lifetime = 0;
    if (json_parser().parse(res.body).get(root)
        || root["access_token"].get_string().get(value) || value.empty()
        || root["expires_in"].get_int64().get(lifetime) || lifetime <= 0) {
      err = local_error("invalid_response",
                        "the token endpoint's answer has no access_token "
                        "and expires_in");
      err.status = res.status;
      return false;
    }
    // Renew `token_renew_margin` before expiry, but never use less than
    // half of a token's life (short-lived tokens would never be reused).
    auto lifetime_ms = lifetime * 1000;
    auto margin_ms = std::min<int64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(
            cfg.token_renew_margin)
            .count(),
        lifetime_ms / 2);
    renew_at_ms = cfg.now_ms() + lifetime_ms - margin_ms;
    token = std::string{value};
    return true;
  }

  void forget_token_if(const std::string& tenant, const std::string& token) {
    std::lock_guard<std::mutex> guard{token_mtx};
    auto i = tokens.find(tenant);
    if (i != tokens.end() && (token.empty() || i->second.value == token))
      i->second.value.clear();
  }

  // -- Graph calls
  // ---------------------------------------------------------------

  /// A Graph URL: relative to graph_base_url, or absolute on its origin.
  bool graph_url(std::string_view path_or_url, wire::url& out, error& err) {
    if (!graph.usable(err))
      return false;
    for (char c : path_or_url)
      if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
        err = local_error("invalid_url",
                          "'" + std::string{path_or_url}
                              + "' contains spaces or control characters");
        return false;
      }
    if (wire::is_absolute(path_or_url)) {
      std::string why;
      if (!wire::parse_url(path_or_url, out, why)) {
        err = local_error("invalid_url", why);
        return false;
      }
      if (!(out.where == graph.url.where)) {
        err = local_error("invalid_url",
                          "'" + std::string{path_or_url}
                              + "' is not on graph_base_url's scheme and "
                                "host; links are followed only there");
        return false;
      }
      return true;
    }
    if (path_or_url.empty()) {
      err = local_error("invalid_url", "empty Graph path");
      return false;
    }
    auto scheme_end = path_or_url.find("://");
    if (scheme_end != std::string_view::npos
        && scheme_end < path_or_url.find_first_of("/?")) {
      err = local_error("invalid_url",
                        "'" + std::string{path_or_url}
                            + "': only http and https URLs are followed");
      return false;
    }
    out = graph.at((path_or_url.front() == '/' ? "" : "/")
                   + std::string{path_or_url});
    return true;
  }

  bool graph_call(const std::string& tenant, std::string mailbox,
                  std::string_view method, const wire::url& u,
                  std::string_view body, response& out, error& err,
                  const http::header_list* extra = nullptr) {
    outgoing req;
    req.method = method;
    req.extra = extra;
    req.url = u;
    req.body = body;
    req.content_type = json_type;
    req.tenant = &tenant;
    req.mailbox = std::move(mailbox);
    return perform(req, out, err);
  }

  // -- batches
  // ---------------------------------------------------------------

  /// Checks a batch before anything is sent.
  static bool valid_batch(const std::vector<batch_request>& requests,
                          error& err) {
    if (requests.size() > max_batch_items) {
      err = local_error("invalid_request",
                        "a $batch holds at most 20 requests, not "
                            + std::to_string(requests.size()));
      return false;
    }
    std::vector<std::string> ids;
    for (auto& r : requests) {
      if (r.id.empty() || r.method.empty() || r.url.empty()) {
        err = local_error("invalid_request",
                          "each $batch request needs an id, a method and a "
                          "url");
        return false;
      }
      auto id = ascii_lower(r.id);
      if (std::find(ids.begin(), ids.end(), id) != ids.end()) {
        err = local_error("invalid_request",
                          "$batch request ids must be unique: '" + r.id + "'");
        return false;
      }
      ids.push_back(id);
      if (wire::is_absolute(r.url)) {
        err = local_error("invalid_request",
                          "$batch urls are relative to the version: '" + r.url
                              + "'");
        return false;
      }
      simdjson::dom::element ignored;
      if (!r.body.empty() && json_parser().parse(r.body).get(ignored)) {
        err = local_error("invalid_request", "the body of $batch request '"
                                                 + r.id + "' is not JSON");
        return false;
      }
    }
    return true;
  }

  static std::string batch_body(const std::vector<batch_request>& requests,
                                const std::vector<size_t>& which) {
    std::string out = "{\"requests\":[";
    bool first = true;
    for (auto i : which) {
      auto& r = requests[i];
      if (!first)
        out += ',';
      first = false;
      out += "{\"id\":";
      json::append_string(out, r.id);
      out += ",\"method\":";
      json::append_string(out, r.method);
      out += ",\"url\":";
      json::append_string(out, r.url);
      if (!r.body.empty()) {
        out += ",\"body\":";
        out += r.body;
        out += ",\"headers\":{\"Content-Type\":\"application/json\"}";
      }
      out += '}';
    }
    out += "]}";
    return out;
  }

  bool batch(const std::string& tenant, const std::string& mailbox,
             const std::vector<batch_request>& requests,
             std::vector<batch_response>& out, error& err) {
    out.clear();
    if (!valid_batch(requests, err))
      return false;
    if (requests.empty())
      return true;
    wire::url u;
    if (!graph_url("/$batch", u, err))
      return false;
    std::vector<batch_response> answers(requests.size());
    std::vector<size_t> pending(requests.size());
    for (size_t i = 0; i < pending.size(); ++i)
      pending[i] = i;
    for (int round = 1;; ++round) {
      response res;
      if (!graph_call(tenant, mailbox, "POST", u, batch_body(requests, pending),
                      res, err))
        return false;
      std::vector<wire::batch_item> items;
      if (!wire::parse_batch_answer(res.body, items)) {
        err = local_error("invalid_response",
                          "the $batch answer has no responses array");
        err.status = res.status;
        return false;
      }
      std::vector<bool> answered(requests.size(), false);
      std::vector<size_t> again;
      int64_t wait_s = -1; // -1: no item said how long
      for (auto& item : items) {
        auto match
            = std::find_if(pending.begin(), pending.end(), [&](size_t i) {
                return iequals(requests[i].id, item.id);
              });
        if (match == pending.end())
          continue;
        auto& a = answers[*match];
        a.id = requests[*match].id;
        a.status = static_cast<int>(item.status);
        a.body = std::move(item.body);
        answered[*match] = true;
        if (item.status == 429) {
          ++throttled;
          metrics::node().graph_throttled();
        }
        if (item.status != 429 && item.status != 503)
          continue;
        auto& ra = item.retry_after;
        if (ra && *ra > cfg.max_retry_after.count())
          continue; // keeps its 429/503: too long to wait
        again.push_back(*match);
        if (ra)
          wait_s = std::max(wait_s, *ra);
      }
      for (auto i : pending)
        if (!answered[i]) {
          err = local_error("invalid_response",
                            "the $batch answer lacks request '" + requests[i].id
                                + "'");
          err.status = res.status;
          return false;
        }
      if (again.empty() || round >= cfg.max_attempts)
        break;
      ++retries;
      if (!pause(wait_s >= 0 ? std::chrono::milliseconds{wait_s * 1000}
                             : backoff(round))) {
        err = stopped_error();
        return false;
      }
      std::sort(again.begin(), again.end());
      pending = std::move(again);
    }
    out = std::move(answers);
    return true;
  }

  // -- sign-in
  // ---------------------------------------------------------------

  std::mutex keys_mtx;
  /// Signing keys by tenant id, then key id.
  std::map<std::string, std::map<std::string, jwt::rsa_jwk>> keys;

  bool fetch_keys(const std::string& tid, error& err) {
    outgoing req;
    req.method = "GET";
    req.url
        = login.at("/" + http::percent_encode(tid) + "/discovery/v2.0/keys");
    response res;
    if (!perform(req, res, err))
      return false;
    std::map<std::string, jwt::rsa_jwk> found;
    std::string why;
    if (!jwt::parse_jwks(res.body, found, why)) {
      err = local_error("invalid_response", "signing keys: " + why);
      err.status = res.status;
      return false;
    }
    std::lock_guard<std::mutex> guard{keys_mtx};
    keys[tid] = std::move(found);
    return true;
  }

  bool cached_key(const std::string& tid, const std::string& kid,
                  jwt::rsa_jwk& out, bool& tenant_known) {
    std::lock_guard<std::mutex> guard{keys_mtx};
    auto t = keys.find(tid);
    tenant_known = t != keys.end();
    if (!tenant_known)
      return false;
    auto k = t->second.find(kid);
    if (k == t->second.end())
      return false;
    out = k->second;
    return true;
  }

  /// The key `kid` of the tenant: cached, else fetched (once per call, so
  /// rotated keys are picked up).
  bool signing_key(const std::string& tid, const std::string& kid,
                   jwt::rsa_jwk& out, error& err) {
    bool tenant_known = false;
    if (cached_key(tid, kid, out, tenant_known))
      return true;
    if (!fetch_keys(tid, err))
      return false;
    if (cached_key(tid, kid, out, tenant_known))
      return true;
    err = local_error("invalid_id_token",
                      "the id_token is signed with a key ('" + kid
                          + "') the tenant does not publish");
    return false;
  }

  bool verify_id_token(std::string_view id_token, std::string_view nonce,
                       identity& out, error& err) {
    auto refuse = [&](const std::string& why) {
      err = local_error("invalid_id_token", why);
      return false;
    };
    jwt::decoded token;
    std::string tid, why;
    if (!jwt::decode(id_token, token, why) || !jwt::tenant_of(token, tid, why))
      return refuse(why);
    jwt::rsa_jwk key;
    if (!signing_key(tid, token.kid, key, err))
      return false;
    if (!jwt::verify_rs256(token, key, why))
      return refuse(why);
    jwt::expectations want;
    want.issuer = login.text + "/" + tid + "/v2.0";
    want.audience = cfg.client_id;
    want.nonce = std::string{nonce};
    want.now_s = cfg.now_ms() / 1000;
    want.skew_s = id_token_skew_s;
    if (!jwt::check_claims(token, want, out, why))
      return refuse(why);
    return true;
  }

  bool redeem_code(std::string_view code, std::string_view redirect_uri,
                   std::string_view nonce, identity& out, error& err) {
    if (!login.usable(err))
      return false;
    auto body = form({{"client_id", cfg.client_id},
                      {"client_secret", cfg.client_secret},
                      {"code", code},
                      {"redirect_uri", redirect_uri},
                      {"grant_type", "authorization_code"},
                      {"scope", sign_in_scope}});
    outgoing req;
    req.method = "POST";
    req.url = login.at("/organizations/oauth2/v2.0/token");
    req.body = body;
    req.content_type = form_type;
    req.retry_transport = false; // a code is single-use
    response res;
    if (!perform(req, res, err))
      return false;
    simdjson::dom::element root;
    std::string_view id_token;
    if (json_parser().parse(res.body).get(root)
        || root["id_token"].get_string().get(id_token)) {
      err = local_error("invalid_response",
                        "the token endpoint's answer has no id_token");
      err.status = res.status;
      return false;
    }
    // Copied: the parser's buffers are reused while verifying.
    return verify_id_token(std::string{id_token}, nonce, out, err);
  }
};

client::client(config cfg) : impl_(std::make_unique<impl>(std::move(cfg))) {}

client::~client() = default;

bool client::call(const std::string& tenant, const std::string& mailbox,
                  std::string_view method, std::string_view path_or_url,
                  std::string_view body, response& out, error& err) {
  wire::url u;
  if (!impl_->graph_url(path_or_url, u, err))
    return false;
  return impl_->graph_call(tenant, mailbox, method, u, body, out, err);
}

bool client::call(const std::string& tenant, const std::string& mailbox,
                  std::string_view method, std::string_view path_or_url,
                  std::string_view body, const http::header_list& headers,
                  response& out, error& err) {
  wire::url u;
  if (!impl_->graph_url(path_or_url, u, err))
    return false;
  return impl_->graph_call(tenant, mailbox, method, u, body, out, err,
                           &headers);
}

bool client::list_page(const std::string& tenant, std::string_view path_or_url,
                       std::vector<std::string>& items, std::string& next_link,
                       error& err) {
  // Resolved first: `path_or_url` may be `next_link` itself.
  wire::url u;
  bool resolved = impl_->graph_url(path_or_url, u, err);
  std::string shown{path_or_url};
  items.clear();
  next_link.clear();
  if (!resolved)
    return false;
  // Listing a mailbox's contents counts against that mailbox's budget.
  auto mailbox = wire::mailbox_of(u.target, impl_->graph.path);
  response res;
  if (!impl_->graph_call(tenant, mailbox, "GET", u, {}, res, err))
    return false;
  simdjson::dom::element root;
  simdjson::dom::array values;
  if (json_parser().parse(res.body).get(root)
      || root["value"].get_array().get(values)) {
    err = local_error("invalid_response",
                      "the answer to '" + shown
                          + "' is not a collection (no value array)");
    err.status = res.status;
    return false;
  }
  for (simdjson::dom::element v : values)
    items.push_back(simdjson::minify(v));
  std::string_view link;
  if (!root["@odata.nextLink"].get_string().get(link))
    next_link = std::string{link};
  return true;
}

bool client::list_all(const std::string& tenant, std::string_view path,
                      std::vector<std::string>& items, error& err) {
  items.clear();
  std::vector<std::string> seen;
  std::string next{path};
  for (;;) {
    std::vector<std::string> page;
    std::string link;
    if (!list_page(tenant, next, page, link, err)) {
      items.clear();
      return false;
    }
    std::move(page.begin(), page.end(), std::back_inserter(items));
    if (link.empty())
      return true;
    if (std::find(seen.begin(), seen.end(), link) != seen.end()) {
      items.clear();
      err = local_error("invalid_response",
                        "@odata.nextLink '" + link + "' came back again");
      return false;
    }
    seen.push_back(link);
    next = std::move(link);
  }
}

bool client::batch(const std::string& tenant, const std::string& mailbox,
                   const std::vector<batch_request>& requests,
                   std::vector<batch_response>& out, error& err) {
  return impl_->batch(tenant, mailbox, requests, out, err);
}

std::string client::authorize_url(std::string_view redirect_uri,
                                  std::string_view state,
                                  std::string_view nonce) const {
  return impl_->login.text + "/organizations/oauth2/v2.0/authorize?client_id="
         + http::percent_encode(impl_->cfg.client_id)
         + "&response_type=code&redirect_uri="
         + http::percent_encode(redirect_uri)
         + "&response_mode=query&scope=openid%20profile%20email&state="
         + http::percent_encode(state)
         + "&nonce=" + http::percent_encode(nonce);
}

std::string client::admin_consent_url(std::string_view tenant,
                                      std::string_view redirect_uri,
                                      std::string_view state) const {
  return impl_->login.text + "/" + http::percent_encode(tenant)
         + "/adminconsent?client_id="
         + http::percent_encode(impl_->cfg.client_id)
         + "&state=" + http::percent_encode(state)
         + "&redirect_uri=" + http::percent_encode(redirect_uri);
}

bool client::redeem_code(std::string_view code, std::string_view redirect_uri,
                         std::string_view expected_nonce, identity& out,
                         error& err) {
  return impl_->redeem_code(code, redirect_uri, expected_nonce, out, err);
}

void client::shutdown() {
  impl_->shutdown();
}

void client::forget_token(const std::string& tenant) {
  impl_->forget_token_if(tenant, {});
}

client_stats client::stats() const {
  client_stats s;
  s.requests = impl_->requests.load();
  s.retries = impl_->retries.load();
  s.throttled = impl_->throttled.load();
  s.token_fetches = impl_->token_fetches.load();
  s.max_in_flight_per_mailbox = impl_->max_in_flight_per_mailbox.load();
  s.max_in_flight = impl_->max_in_flight.load();
  return s;
}

} // namespace crmsync::graph
