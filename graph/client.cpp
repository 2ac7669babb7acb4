// Implements graph/client.hpp on http::async_client.
//
// A call is an `operation` object that walks token -> mailbox slot ->
// send -> answer, and on a retryable failure a timer -> token -> ...,
// each step a callback of the one before; the operation holds its own
// state, so no thread keeps it. Shared state, each behind its own mutex
// (never held while a callback runs): the app-only tokens per tenant (one
// fetch per tenant at a time; calls that need the token meanwhile queue
// on it), the mailbox budgets (in-flight count, a sliding log of
// completion times and a FIFO of calls waiting for a slot, per mailbox),
// the retry pauses (so that shutdown can end them), and the identity
// platform's signing keys per tenant.
#include "graph/client.hpp"

#include <simdjson.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <unordered_map>
#include <utility>

#include "common/crypto.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "common/small_fifo.hpp"
#include "graph/jwt_verify.hpp"
#include "graph/wire.hpp"
#include "http/async_client.hpp"
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

namespace {

template <class T>
result<T> failed(error e) {
  result<T> r;
  r.failure = std::move(e);
  return r;
}

template <class T>
result<T> succeeded(T v) {
  result<T> r;
  r.ok = true;
  r.value = std::move(v);
  return r;
}

error stopped_error() {
  return local_error("shutting_down", "the node is shutting down");
}

/// Runs `start(callback)` and waits for the callback's result: the
/// blocking wrappers. Never from an I/O thread (it would wait for itself).
template <class T, class Start>
result<T> wait_for(Start&& start) {
  std::promise<result<T>> promise;
  auto future = promise.get_future();
  start([&promise](result<T> r) { promise.set_value(std::move(r)); });
  return future.get();
}

} // namespace

struct client::impl {
  config cfg;
  base graph;
  base login;
  /// Why no request can be sent (the CA file did not load); empty code
  /// when the transport is usable.
  error transport_problem;
  std::unique_ptr<http::async_client> transport;

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
    // Limits of zero would make every call wait forever.
    cfg.mailbox_concurrency = std::max<size_t>(1, cfg.mailbox_concurrency);
    cfg.mailbox_requests_per_window
        = std::max<size_t>(1, cfg.mailbox_requests_per_window);
    cfg.max_attempts = std::max(1, cfg.max_attempts);
    http::async_client_options opts;
    opts.io_threads = std::max<size_t>(1, cfg.io_threads);
    opts.idle_per_origin = cfg.connections_per_host;
    opts.max_per_origin = std::max<size_t>(1, cfg.max_connections_per_host);
    opts.extra_ca_file = cfg.ca_file;
    try {
      transport = std::make_unique<http::async_client>(opts);
    } catch (const std::exception& e) {
      // Every call says why, as the request would have.
      transport_problem = local_error("transport", e.what());
      opts.extra_ca_file.clear();
      transport = std::make_unique<http::async_client>(opts);
    }
  }

  /// Ends the waits, then the transport: requests in flight complete (and
  /// their callbacks run) while everything they touch is still here.
  ~impl() {
    shutdown();
    transport->stop();
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

  std::atomic<bool> stopping{false};

  // -- mailbox budgets
  // ---------------------------------------------------------------

  /// Called with true when a slot is taken, false when the client stops.
  using grant = std::function<void(bool)>;

  struct budget {
    size_t in_flight = 0;
    /// Completion times of requests within the window, oldest first. A
    /// request is logged when its answer arrived: by then the service has
    /// certainly counted it, so our window never ends before Graph's.
    /// (small_fifo: a budget is kept for every mailbox used within the
    /// window, i.e. for every synced user, so an empty one must cost
    /// nothing and a short one little.)
    small_fifo<steady::time_point> log;
    small_fifo<grant> waiting; ///< in arrival order
    bool timer_armed = false;  ///< a wake-up for the window is pending
  };

  /// What a change of a budget unblocked, to be run once the lock is gone.
  struct budget_work {
    std::vector<grant> granted;
    std::optional<std::chrono::milliseconds> wake_in;
  };

  std::mutex budget_mtx;
  std::unordered_map<std::string, budget> budgets; ///< references stable
  size_t mailbox_requests_in_flight = 0;           ///< all mailboxes
  uint64_t releases = 0;

  /// With budget_mtx held: hands free slots to the waiting calls in order;
  /// when the window is what holds them, asks for a wake-up as its oldest
  /// request leaves it.
  void pump(budget& b, budget_work& work) {
    const auto window = steady::duration{cfg.mailbox_window};
    auto now = steady::now();
    while (!b.log.empty() && b.log.front() + window <= now)
      b.log.pop_front();
    while (!b.waiting.empty() && b.in_flight < cfg.mailbox_concurrency
           && b.in_flight + b.log.size() < cfg.mailbox_requests_per_window) {
      ++b.in_flight;
      ++mailbox_requests_in_flight;
      raise_to(max_in_flight_per_mailbox, b.in_flight);
      raise_to(max_in_flight, mailbox_requests_in_flight);
      work.granted.push_back(std::move(b.waiting.front()));
      b.waiting.pop_front();
    }
    if (!b.waiting.empty() && b.in_flight < cfg.mailbox_concurrency
        && !b.log.empty() && !b.timer_armed) {
      b.timer_armed = true;
      work.wake_in = std::chrono::ceil<std::chrono::milliseconds>(
          b.log.front() + window - now);
    }
  }

  /// Without the lock: runs what pump() decided.
  void carry_out(const std::string& key, budget_work& work) {
    for (auto& g : work.granted)
      g(true);
    if (work.wake_in)
      transport->after(*work.wake_in, [this, key](bool) { window_moved(key); });
  }

  void window_moved(const std::string& key) {
    budget_work work;
    {
      std::lock_guard<std::mutex> guard{budget_mtx};
      auto i = budgets.find(key);
      if (i == budgets.end())
        return;
      i->second.timer_armed = false;
      if (stopping)
        return; // shutdown() ended the waits
      pump(i->second, work);
    }
    carry_out(key, work);
  }

  /// Takes one of the mailbox's request slots, now or when the budget
  /// allows (in arrival order); `g(false)` when the client is stopping.
  void acquire(const std::string& key, grant g) {
    if (key.empty()) {
      g(!stopping);
      return;
    }
    budget_work work;
    {
      std::unique_lock<std::mutex> lock{budget_mtx};
      if (stopping) {
        lock.unlock();
        g(false);
        return;
      }
      auto& b = budgets[key];
      b.waiting.push_back(std::move(g));
      pump(b, work);
    }
    carry_out(key, work);
  }

  void release(const std::string& key) {
    if (key.empty())
      return;
    budget_work work;
    {
      std::lock_guard<std::mutex> guard{budget_mtx};
      auto& b = budgets[key];
      --b.in_flight;
      --mailbox_requests_in_flight;
      b.log.push_back(steady::now());
      if (!stopping)
        pump(b, work);
      // Forget mailboxes nobody used for a whole window, now and then.
      if (++releases % 1024 == 0) {
        const auto window = steady::duration{cfg.mailbox_window};
        auto now = steady::now();
        for (auto i = budgets.begin(); i != budgets.end();) {
          auto& x = i->second;
          bool quiet = x.in_flight == 0 && x.waiting.empty() && !x.timer_armed
                       && (x.log.empty() || x.log.back() + window <= now);
          i = quiet ? budgets.erase(i) : std::next(i);
        }
      }
    }
    carry_out(key, work);
  }

  // -- pauses before retries
  // ---------------------------------------------------------------

  std::mutex pause_mtx;
  uint64_t last_pause = 0;
  /// Pending pauses by number: shutdown() ends them all at once.
  std::map<uint64_t, std::function<void(bool)>> pauses;

  /// `then(true)` after `d`; `then(false)` when the client stops first.
  void pause(std::chrono::milliseconds d, std::function<void(bool)> then) {
    uint64_t id = 0;
    {
      std::unique_lock<std::mutex> lock{pause_mtx};
      if (stopping) {
        lock.unlock();
        then(false);
        return;
      }
      id = ++last_pause;
      pauses.emplace(id, std::move(then));
    }
    transport->after(d, [this, id](bool fired) {
      std::function<void(bool)> f;
      {
        std::lock_guard<std::mutex> guard{pause_mtx};
        auto i = pauses.find(id);
        if (i == pauses.end())
          return; // ended by shutdown()
        f = std::move(i->second);
        pauses.erase(i);
      }
      f(fired && !stopping);
    });
  }

  void shutdown() {
    stopping = true;
    std::vector<grant> waiting;
    {
      std::lock_guard<std::mutex> guard{budget_mtx};
      for (auto& [key, b] : budgets)
        for (auto& g : b.waiting.take_all())
          waiting.push_back(std::move(g));
    }
    std::map<uint64_t, std::function<void(bool)>> paused;
    {
      std::lock_guard<std::mutex> guard{pause_mtx};
      paused.swap(pauses);
    }
    for (auto& g : waiting)
      g(false);
    for (auto& [id, f] : paused)
      f(false);
  }

  // -- one call, with retries
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
    std::string method;
    wire::url url;
    std::string body;
    std::string content_type;
    bool with_token = false; ///< sends the tenant's app-only token
    std::string tenant;
    std::string mailbox;     ///< counts against its budget
    http::header_list extra; ///< the caller's headers
    /// False for requests that must not be repeated once they may have
    /// reached the service (redeeming a single-use code).
    bool retry_transport = true;
  };

  /// A call in progress: what the steps share.
  struct operation {
    outgoing req;
    callback<response> done;
    std::string mailbox_key; ///< lower-case mailbox ("" for none)
    std::string token;
    bool renewed = false;
    int attempts = 0;
    int64_t retry_after = 0;
    /// The client-request-id of the latest exchange.
    std::string client_request_id;
    /// The log context of the code that started the call: its failure is
    /// logged under it, from an I/O thread.
    log::context ctx = log::current();
  };
  using op_ptr = std::shared_ptr<operation>;

  /// Sends with the retry policy of client.hpp; a 2xx answer is ok.
  void perform(outgoing req, callback<response> done) {
    if (!transport_problem.code.empty()) {
      done(failed<response>(transport_problem));
      return;
    }
    std::string why;
    if (!wire::transport_allowed(req.url, why)) {
      done(failed<response>(local_error("insecure_url", why)));
      return;
    }
    auto op = std::make_shared<operation>();
    op->mailbox_key = ascii_lower(req.mailbox);
    op->req = std::move(req);
    op->done = std::move(done);
    attempt(op);
  }

  /// The line an operator quotes to Microsoft: what failed, and its ids.
  /// Answers a caller expects and handles (a resource already gone, a
  /// stale change key) are info; the rest warn.
  static void log_failure(const operation& op, const error& e) {
    log::scope in{op.ctx};
    bool expected = e.status == 404 || e.status == 410 || e.status == 412;
    log::write(expected ? log::level::info : log::level::warn,
               "graph: " + op.req.method + " " + op.req.url.where.host
                   + op.req.url.target.substr(0, op.req.url.target.find('?'))
                   + " failed: " + e.describe() + " client-request-id="
                   + e.client_request_id + " request-id="
                   + (e.request_id.empty() ? "-" : e.request_id)
                   + " date=" + (e.date.empty() ? "-" : e.date));
  }

  static void finish(const op_ptr& op, result<response> r) {
    auto done = std::move(op->done);
    op->done = nullptr;
    done(std::move(r));
  }

  /// One try: the token (if the call needs one), then a mailbox slot.
  void attempt(op_ptr op) {
    if (!op->req.with_token) {
      send(std::move(op));
      return;
    }
    auto tenant = op->req.tenant;
    app_token(tenant, [this, op](result<std::string> t) {
      if (!t.ok) {
        t.failure.attempts = std::max(t.failure.attempts, op->attempts);
        finish(op, failed<response>(std::move(t.failure)));
        return;
      }
      op->token = std::move(t.value);
      send(op);
    });
  }

  void send(op_ptr op) {
    ++op->attempts;
    auto key = op->mailbox_key;
    acquire(key, [this, op](bool held) {
      if (!held) {
        finish(op, failed<response>(stopped_error()));
        return;
      }
      auto& req = op->req;
      http::outgoing_request r;
      r.to.https = req.url.where.https;
      r.to.host = req.url.where.host;
      r.to.port = req.url.where.port;
      r.method = req.method;
      r.target = req.url.target;
      r.body = req.body;
      r.timeout = cfg.io_timeout;
      r.headers.emplace_back("Accept", "application/json");
      // A new GUID per request (Graph's best practices): Microsoft finds
      // a reported exchange by it.
      op->client_request_id = crypto::random_guid();
      r.headers.emplace_back("client-request-id", op->client_request_id);
      if (!op->token.empty())
        r.headers.emplace_back("Authorization", "Bearer " + op->token);
      if (!req.body.empty() && !req.content_type.empty())
        r.headers.emplace_back("Content-Type", req.content_type);
      for (auto& [name, value] : req.extra)
        if (!iequals(name, "authorization") && !iequals(name, "content-type"))
          r.headers.emplace_back(name, value);
      auto started = steady::now();
      transport->send(
          std::move(r), [this, op, started](http::request_outcome out) {
            release(op->mailbox_key);
            // Every exchange is counted here (see common/metrics.hpp).
            metrics::node().graph_request(
                out.answered ? out.response.status : 0,
                std::chrono::duration<double>(steady::now() - started).count());
            if (out.answered && out.response.status == 429)
              metrics::node().graph_throttled();
            ++requests;
            answered(op, std::move(out));
          });
    });
  }

  void answered(const op_ptr& op, http::request_outcome out) {
    auto& req = op->req;
    if (out.answered && is_success(out.response.status)) {
      response res;
      res.status = out.response.status;
      res.body = std::move(out.response.body);
      res.headers = std::move(out.response.headers);
      finish(op, succeeded(std::move(res)));
      return;
    }
    error last = out.answered ? answer_error(out.response)
                              : local_error("transport", out.error);
    bool again = false;
    std::chrono::milliseconds wait{0};
    const int status = out.answered ? out.response.status : 0;
    if (!out.answered) {
      again = req.retry_transport;
      wait = backoff(op->attempts);
    } else if (status == 401 && req.with_token && !op->renewed) {
      // The token may have been revoked or expired early: once per call.
      forget_token_if(req.tenant, op->token);
      op->renewed = true;
      again = true;
    } else if (status == 429 || status == 503) {
      if (status == 429)
        ++throttled;
      if (auto ra
          = wire::parse_retry_after(out.response.header("Retry-After"))) {
        op->retry_after = *ra;
        again = *ra <= cfg.max_retry_after.count();
        wait = std::chrono::seconds{*ra};
        if (!again)
          last.message += " (Retry-After " + std::to_string(*ra)
                          + " s is beyond the longest wait honoured, "
                          + std::to_string(cfg.max_retry_after.count()) + " s)";
      } else {
        again = true;
        wait = backoff(op->attempts);
      }
    } else if (status == 502 || status == 504) {
      again = true;
      wait = backoff(op->attempts);
    }
    last.retry_after_s = op->retry_after;
    last.attempts = op->attempts;
    last.client_request_id = op->client_request_id;
    if (out.answered) {
      last.request_id = std::string{out.response.header("request-id")};
      last.date = std::string{out.response.header("Date")};
    }
    if (!again || op->attempts >= cfg.max_attempts) {
      log_failure(*op, last);
      finish(op, failed<response>(std::move(last)));
      return;
    }
    ++retries;
    if (wait.count() <= 0) {
      attempt(op);
      return;
    }
    pause(wait, [this, op](bool go_on) {
      if (!go_on) {
        finish(op, failed<response>(stopped_error()));
        return;
      }
      attempt(op);
    });
  }

  // -- app-only tokens
  // ---------------------------------------------------------------

  struct token_slot {
    std::string value;
    int64_t renew_at_ms = 0;
    bool fetching = false;
    /// The tenant was forgotten while a fetch was under way: its token
    /// goes to the calls waiting for it, and is not kept.
    bool forgotten = false;
    /// Calls that need the token being fetched.
    std::vector<callback<std::string>> waiting;
  };

  std::mutex token_mtx;
  std::map<std::string, token_slot> tokens; ///< nodes are stable

  /// The tenant's token, fetched if there is none or it is due for
  /// renewal; concurrent calls share one fetch (and its failure).
  void app_token(const std::string& tenant, callback<std::string> done) {
    {
      std::unique_lock<std::mutex> lock{token_mtx};
      auto& slot = tokens[tenant];
      if (!slot.value.empty() && cfg.now_ms() < slot.renew_at_ms) {
        auto value = slot.value;
        lock.unlock();
        done(succeeded(std::move(value)));
        return;
      }
      slot.waiting.push_back(std::move(done));
      if (slot.fetching)
        return;
      slot.fetching = true;
    }
    fetch_token(tenant, [this, tenant](
                            result<std::pair<std::string, int64_t>> fetched) {
      std::vector<callback<std::string>> waiting;
      {
        std::lock_guard<std::mutex> guard{token_mtx};
        auto& slot = tokens[tenant];
        slot.fetching = false;
        if (fetched.ok && !slot.forgotten) {
          slot.value = fetched.value.first;
          slot.renew_at_ms = fetched.value.second;
        } else {
          slot.value.clear();
        }
        waiting.swap(slot.waiting);
        if (slot.forgotten)
          tokens.erase(tenant);
      }
      for (auto& w : waiting)
        w(fetched.ok ? succeeded(fetched.value.first)
                     : failed<std::string>(fetched.failure));
    });
  }

  /// A fresh token and when to renew it (wall clock, ms). `retry_transport`
  /// false: one try when the endpoint cannot be reached (a check).
  void fetch_token(const std::string& tenant,
                   callback<std::pair<std::string, int64_t>> done,
                   bool retry_transport = true) {
    using fetched = std::pair<std::string, int64_t>;
    error err;
    if (!login.usable(err)) {
      done(failed<fetched>(std::move(err)));
      return;
    }
    ++token_fetches;
    outgoing req;
    req.method = "POST";
    req.url
        = login.at("/" + http::percent_encode(tenant) + "/oauth2/v2.0/token");
    req.body = form({{"client_id", cfg.client_id},
                     {"client_secret", cfg.client_secret},
                     {"scope", app_scope},
                     {"grant_type", "client_credentials"}});
    req.content_type = std::string{form_type};
    req.retry_transport = retry_transport;
    perform(std::move(req), [this, done](result<response> r) {
      if (!r.ok) {
        done(failed<fetched>(std::move(r.failure)));
        return;
      }
      simdjson::dom::element root;
      std::string_view value;
      int64_t lifetime = 0;
      if (json_parser().parse(r.value.body).get(root)
          || root["access_token"].get_string().get(value) || value.empty()
          || root["expires_in"].get_int64().get(lifetime) || lifetime <= 0) {
        auto e = local_error("invalid_response",
                             "the token endpoint's answer has no access_token "
                             "and expires_in");
        e.status = r.value.status;
        done(failed<fetched>(std::move(e)));
        return;
      }
      // Renew `token_renew_margin` before expiry, but never use less than
      // half of a token's life (short-lived tokens would never be reused).
      auto lifetime_ms = lifetime * 1000;
      auto margin_ms = std::min<int64_t>(
          std::chrono::duration_cast<std::chrono::milliseconds>(
              cfg.token_renew_margin)
              .count(),
          lifetime_ms / 2);
      done(succeeded(
          fetched{std::string{value}, cfg.now_ms() + lifetime_ms - margin_ms}));
    });
  }

  void forget_token_if(const std::string& tenant, const std::string& token) {
    std::lock_guard<std::mutex> guard{token_mtx};
    auto i = tokens.find(tenant);
    if (i != tokens.end() && i->second.value == token)
      i->second.value.clear();
  }

  void forget_tenant(const std::string& tenant) {
    std::lock_guard<std::mutex> guard{token_mtx};
    auto i = tokens.find(tenant);
    if (i == tokens.end())
      return;
    if (!i->second.fetching)
      return static_cast<void>(tokens.erase(i));
    i->second.value.clear();
    i->second.forgotten = true;
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

  outgoing graph_request(const std::string& tenant, std::string mailbox,
                         std::string method, wire::url u, std::string body,
                         http::header_list extra = {}) {
    outgoing req;
    req.method = std::move(method);
    req.url = std::move(u);
    req.body = std::move(body);
    req.content_type = std::string{json_type};
    req.with_token = true;
    req.tenant = tenant;
    req.mailbox = std::move(mailbox);
    req.extra = std::move(extra);
    return req;
  }

  void call(call_spec c, callback<response> done) {
    wire::url u;
    error err;
    if (!graph_url(c.path_or_url, u, err)) {
      done(failed<response>(std::move(err)));
      return;
    }
    perform(graph_request(c.tenant, std::move(c.mailbox), std::move(c.method),
                          std::move(u), std::move(c.body),
                          std::move(c.headers)),
            std::move(done));
  }

  void list_page(const std::string& tenant, const std::string& path_or_url,
                 callback<page> done) {
    wire::url u;
    error err;
    if (!graph_url(path_or_url, u, err)) {
      done(failed<page>(std::move(err)));
      return;
    }
    // Listing a mailbox's contents counts against that mailbox's budget.
    auto mailbox = wire::mailbox_of(u.target, graph.path);
    perform(graph_request(tenant, std::move(mailbox), "GET", std::move(u), ""),
            [shown = path_or_url, done](result<response> r) {
              if (!r.ok) {
                done(failed<page>(std::move(r.failure)));
                return;
              }
              simdjson::dom::element root;
              simdjson::dom::array values;
              if (json_parser().parse(r.value.body).get(root)
                  || root["value"].get_array().get(values)) {
                auto e = local_error("invalid_response",
                                     "the answer to '" + shown
                                         + "' is not a collection (no value "
                                           "array)");
                e.status = r.value.status;
                done(failed<page>(std::move(e)));
                return;
              }
              page p;
              for (simdjson::dom::element v : values)
                p.items.push_back(simdjson::minify(v));
              std::string_view link;
              if (!root["@odata.nextLink"].get_string().get(link))
                p.next_link = std::string{link};
              done(succeeded(std::move(p)));
            });
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

  /// A $batch in progress.
  struct batch_op {
    std::string tenant;
    std::string mailbox;
    wire::url url;
    std::vector<batch_request> requests;
    std::vector<batch_response> answers;
    std::vector<size_t> pending; ///< indexes still to be answered
    int round = 0;
    callback<std::vector<batch_response>> done;
  };

  void batch(const std::string& tenant, const std::string& mailbox,
             std::vector<batch_request> requests,
             callback<std::vector<batch_response>> done) {
    using answers = std::vector<batch_response>;
    error err;
    if (!valid_batch(requests, err)) {
      done(failed<answers>(std::move(err)));
      return;
    }
    if (requests.empty()) {
      done(succeeded(answers{}));
      return;
    }
    auto b = std::make_shared<batch_op>();
    if (!graph_url("/$batch", b->url, err)) {
      done(failed<answers>(std::move(err)));
      return;
    }
    b->tenant = tenant;
    b->mailbox = mailbox;
    b->answers.resize(requests.size());
    b->pending.resize(requests.size());
    for (size_t i = 0; i < b->pending.size(); ++i)
      b->pending[i] = i;
    b->requests = std::move(requests);
    b->done = std::move(done);
    batch_round(b);
  }

  /// Sends the batch's pending requests; items answered 429/503 go again
  /// after their Retry-After, the others keep their answers.
  void batch_round(std::shared_ptr<batch_op> b) {
    using answers = std::vector<batch_response>;
    ++b->round;
    auto req = graph_request(b->tenant, b->mailbox, "POST", b->url,
                             batch_body(b->requests, b->pending));
    perform(std::move(req), [this, b](result<response> r) {
      auto fail = [&](error e) {
        auto done = std::move(b->done);
        done(failed<answers>(std::move(e)));
      };
      if (!r.ok)
        return fail(std::move(r.failure));
      std::vector<wire::batch_item> items;
      if (!wire::parse_batch_answer(r.value.body, items)) {
        auto e = local_error("invalid_response",
                             "the $batch answer has no responses array");
        e.status = r.value.status;
        return fail(std::move(e));
      }
      auto& requests = b->requests;
      auto& pending = b->pending;
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
        auto& a = b->answers[*match];
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
          auto e = local_error("invalid_response",
                               "the $batch answer lacks request '"
                                   + requests[i].id + "'");
          e.status = r.value.status;
          return fail(std::move(e));
        }
      if (again.empty() || b->round >= cfg.max_attempts) {
        auto done = std::move(b->done);
        done(succeeded(std::move(b->answers)));
        return;
      }
      ++retries;
      std::sort(again.begin(), again.end());
      pending = std::move(again);
      auto wait = wait_s >= 0 ? std::chrono::milliseconds{wait_s * 1000}
                              : backoff(b->round);
      pause(wait, [this, b](bool go_on) {
        if (!go_on) {
          auto done = std::move(b->done);
          done(failed<answers>(stopped_error()));
          return;
        }
        batch_round(b);
      });
    });
  }

  // -- sign-in
  // ---------------------------------------------------------------

  std::mutex keys_mtx;
  /// Signing keys by tenant id, then key id.
  std::map<std::string, std::map<std::string, jwt::rsa_jwk>> keys;

  bool cached_key(const std::string& tid, const std::string& kid,
                  jwt::rsa_jwk& out) {
    std::lock_guard<std::mutex> guard{keys_mtx};
    auto t = keys.find(tid);
    if (t == keys.end())
      return false;
    auto k = t->second.find(kid);
    if (k == t->second.end())
      return false;
    out = k->second;
    return true;
  }

  /// The key `kid` of the tenant: cached, else fetched (once per call, so
  /// rotated keys are picked up).
  void signing_key(const std::string& tid, const std::string& kid,
                   callback<jwt::rsa_jwk> done) {
    jwt::rsa_jwk key;
    if (cached_key(tid, kid, key)) {
      done(succeeded(std::move(key)));
      return;
    }
    outgoing req;
    req.method = "GET";
    req.url
        = login.at("/" + http::percent_encode(tid) + "/discovery/v2.0/keys");
    perform(std::move(req), [this, tid, kid, done](result<response> r) {
      if (!r.ok) {
        done(failed<jwt::rsa_jwk>(std::move(r.failure)));
        return;
      }
      std::map<std::string, jwt::rsa_jwk> found;
      std::string why;
      if (!jwt::parse_jwks(r.value.body, found, why)) {
        auto e = local_error("invalid_response", "signing keys: " + why);
        e.status = r.value.status;
        done(failed<jwt::rsa_jwk>(std::move(e)));
        return;
      }
      {
        std::lock_guard<std::mutex> guard{keys_mtx};
        keys[tid] = std::move(found);
      }
      jwt::rsa_jwk key;
      if (cached_key(tid, kid, key)) {
        done(succeeded(std::move(key)));
        return;
      }
      done(failed<jwt::rsa_jwk>(local_error(
          "invalid_id_token", "the id_token is signed with a key ('" + kid
                                  + "') the tenant does not publish")));
    });
  }

  void verify_id_token(std::string id_token, std::string nonce,
                       callback<identity> done) {
    auto token = std::make_shared<jwt::decoded>();
    std::string tid, why;
    if (!jwt::decode(id_token, *token, why)
        || !jwt::tenant_of(*token, tid, why)) {
      done(failed<identity>(local_error("invalid_id_token", why)));
      return;
    }
    auto kid = token->kid;
    signing_key(
        tid, kid, [this, token, tid, nonce, done](result<jwt::rsa_jwk> key) {
          if (!key.ok) {
            done(failed<identity>(std::move(key.failure)));
            return;
          }
          std::string why;
          identity who;
          jwt::expectations want;
          want.issuer = login.text + "/" + tid + "/v2.0";
          want.audience = cfg.client_id;
          want.nonce = nonce;
          want.now_s = cfg.now_ms() / 1000;
          want.skew_s = id_token_skew_s;
          if (!jwt::verify_rs256(*token, key.value, why)
              || !jwt::check_claims(*token, want, who, why)) {
            done(failed<identity>(local_error("invalid_id_token", why)));
            return;
          }
          done(succeeded(std::move(who)));
        });
  }

  void redeem_code(const std::string& code, const std::string& redirect_uri,
                   std::string nonce, callback<identity> done) {
    error err;
    if (!login.usable(err)) {
      done(failed<identity>(std::move(err)));
      return;
    }
    outgoing req;
    req.method = "POST";
    req.url = login.at("/organizations/oauth2/v2.0/token");
    req.body = form({{"client_id", cfg.client_id},
                     {"client_secret", cfg.client_secret},
                     {"code", code},
                     {"redirect_uri", redirect_uri},
                     {"grant_type", "authorization_code"},
                     {"scope", sign_in_scope}});
    req.content_type = std::string{form_type};
    req.retry_transport = false; // a code is single-use
    perform(std::move(req), [this, nonce, done](result<response> r) {
      if (!r.ok) {
        done(failed<identity>(std::move(r.failure)));
        return;
      }
      simdjson::dom::element root;
      std::string_view id_token;
      if (json_parser().parse(r.value.body).get(root)
          || root["id_token"].get_string().get(id_token)) {
        auto e = local_error("invalid_response",
                             "the token endpoint's answer has no id_token");
        e.status = r.value.status;
        done(failed<identity>(std::move(e)));
        return;
      }
      // Copied: the parser's buffers are reused while verifying.
      verify_id_token(std::string{id_token}, nonce, done);
    });
  }
};

client::client(config cfg) : impl_(std::make_unique<impl>(std::move(cfg))) {}

client::~client() = default;

void client::start(call_spec call, callback<response> done) {
  impl_->call(std::move(call), std::move(done));
}

void client::start_page(std::string tenant, std::string path_or_url,
                        callback<page> done) {
  impl_->list_page(tenant, path_or_url, std::move(done));
}

void client::start_batch(std::string tenant, std::string mailbox,
                         std::vector<batch_request> requests,
                         callback<std::vector<batch_response>> done) {
  impl_->batch(tenant, mailbox, std::move(requests), std::move(done));
}

void client::start_redeem(std::string code, std::string redirect_uri,
                          std::string expected_nonce, callback<identity> done) {
  impl_->redeem_code(code, redirect_uri, std::move(expected_nonce),
                     std::move(done));
}

namespace {

/// A result's value into `out`, or its failure into `err`.
template <class T>
bool unpack(result<T>&& r, T& out, error& err) {
  if (!r.ok) {
    err = std::move(r.failure);
    return false;
  }
  out = std::move(r.value);
  return true;
}

} // namespace

bool client::call(const std::string& tenant, const std::string& mailbox,
                  std::string_view method, std::string_view path_or_url,
                  std::string_view body, response& out, error& err) {
  return call(tenant, mailbox, method, path_or_url, body, {}, out, err);
}

bool client::call(const std::string& tenant, const std::string& mailbox,
                  std::string_view method, std::string_view path_or_url,
                  std::string_view body, const http::header_list& headers,
                  response& out, error& err) {
  call_spec c;
  c.tenant = tenant;
  c.mailbox = mailbox;
  c.method = std::string{method};
  c.path_or_url = std::string{path_or_url};
  c.body = std::string{body};
  c.headers = headers;
  return unpack(wait_for<response>([&](callback<response> done) {
                  start(std::move(c), std::move(done));
                }),
                out, err);
}

bool client::list_page(const std::string& tenant, std::string_view path_or_url,
                       std::vector<std::string>& items, std::string& next_link,
                       error& err) {
  // Copied first: `path_or_url` may be `next_link` itself.
  std::string where{path_or_url};
  items.clear();
  next_link.clear();
  page p;
  if (!unpack(wait_for<page>([&](callback<page> done) {
                start_page(tenant, where, std::move(done));
              }),
              p, err))
    return false;
  items = std::move(p.items);
  next_link = std::move(p.next_link);
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
  out.clear();
  return unpack(wait_for<std::vector<batch_response>>(
                    [&](callback<std::vector<batch_response>> done) {
                      start_batch(tenant, mailbox, requests, std::move(done));
                    }),
                out, err);
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
  return unpack(wait_for<identity>([&](callback<identity> done) {
                  start_redeem(std::string{code}, std::string{redirect_uri},
                               std::string{expected_nonce}, std::move(done));
                }),
                out, err);
}

void client::shutdown() {
  impl_->shutdown();
}

void client::start_token_check(std::string tenant, callback<std::string> done) {
  impl_->fetch_token(
      tenant,
      [done = std::move(done)](result<std::pair<std::string, int64_t>> r) {
        if (!r.ok)
          return done(failed<std::string>(std::move(r.failure)));
        done(succeeded(std::move(r.value.first)));
      },
      false);
}

void client::forget_token(const std::string& tenant) {
  // The tenant's place in the cache goes too (a disconnected or deleted
  // organization's tenant); a fetch under way still answers its waiting
  // calls, but its token is not kept.
  impl_->forget_tenant(tenant);
}

client_stats client::stats() const {
  client_stats s;
  s.requests = impl_->requests.load();
  s.retries = impl_->retries.load();
  s.throttled = impl_->throttled.load();
  s.token_fetches = impl_->token_fetches.load();
  s.max_in_flight_per_mailbox = impl_->max_in_flight_per_mailbox.load();
  s.max_in_flight = impl_->max_in_flight.load();
  {
    std::lock_guard<std::mutex> guard{impl_->budget_mtx};
    s.mailbox_budgets = impl_->budgets.size();
  }
  return s;
}

} // namespace crmsync::graph
