// http/async_client.hpp with Boost.Beast: each request is an `exchange`
// object that walks resolve → connect → (TLS handshake) → write → read as a
// chain of completion handlers on one of the client's io_contexts (one per
// I/O thread, see impl::iocs). Only one operation
// of a connection is pending at a time (the chain is sequential); each
// exchange has a strand, which the connection it opens keeps, so that a
// stream's timeout timer and its operation never run on two I/O threads at
// once. The exchange owns its callback: if its
// last handler is destroyed without completing (the io_context went away), its
// destructor reports "client stopped", so a callback is never lost.
//
// Each origin has at most `max_per_origin` connections open (a slot each,
// taken before connecting, given back when the connection is destroyed);
// a request that finds none free and none idle waits in its origin's queue
// until a slot or an answered connection comes free, or its deadline.
#include "http/async_client.hpp"
#include "common/thread_name.hpp"
#include "http/beast_client.hpp"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/err.h>

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

namespace crmsync::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using steady = std::chrono::steady_clock;
using beast_client::body_limit;
using beast_client::header_limit;
using beast_client::is_stale_connection_error;
using beast_client::to_beast;

namespace {

std::string host_header(const endpoint& e) {
  std::string h
      = e.host.find(':') != std::string::npos ? "[" + e.host + "]" : e.host;
  const uint16_t default_port = e.https ? 443 : 80;
  if (e.port != default_port)
    h += ":" + std::to_string(e.port);
  return h;
}

/// One open connection, plain or TLS. It holds one of its origin's
/// connection slots from the moment it is opened until it is destroyed.
struct connection {
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
  /// Gives the slot back; set when the connection is opened.
  std::function<void()> release;

  connection() = default;
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  ~connection() {
    // The socket is closed before the slot is counted free.
    if (plain || tls) {
      error_code ignored;
      lowest().socket().close(ignored);
    }
    if (release)
      release();
  }

  beast::tcp_stream& lowest() {
    return tls ? beast::get_lowest_layer(*tls) : *plain;
  }

  bool is_open() {
    return lowest().socket().is_open();
  }

  /// Open, and not closed by the server while it sat in the pool. A server
  /// closes a connection idle too long (graph-emulator after 60 s, Graph
  /// too): its end of stream (or a TLS close_notify) then waits to be
  /// read. A request written on such a connection is lost, and a POST is
  /// not sent again once written (retry_or_fail), so the pool drops it
  /// here instead, before anything is written on it. t16-admin: the
  /// Chromium pages test's 502 "end of stream" on a late sign-in.
  bool usable() {
    if (!is_open() || buffer.size() != 0)
      return false;
    char byte = 0;
    auto n = ::recv(lowest().socket().native_handle(), &byte, 1,
                    MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
};

/// A request waiting for a connection slot of its origin. Exactly one of
/// the pool (a slot or a connection came free) and the request's own
/// deadline claims it.
class waiter {
public:
  virtual ~waiter() = default;
  /// True for the one caller that ends the wait.
  bool claim() {
    return waiting_.exchange(false);
  }
  /// A slot is the waiter's now: it opens a connection.
  virtual void granted_slot() = 0;
  /// A pooled connection is the waiter's now.
  virtual void granted_connection(std::unique_ptr<connection> c) = 0;

protected:
  std::atomic<bool> waiting_{false};
};

} // namespace

std::string endpoint::key() const {
  const bool v6 = host.find(':') != std::string::npos;
  return std::string(https ? "https://" : "http://")
         + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port)
         + (server_name.empty() ? "" : "#" + server_name);
}

struct async_client::impl : std::enable_shared_from_this<impl> {
  async_client_options options;
  /// One io_context per I/O thread. A connection and every handler of the
  /// request on it stay on one thread, so an answer wakes that thread only;
  /// with several threads on one io_context, the thread that saw a socket
  /// ready handed the work to another (perf, steady-state benchmark: 12
  /// context switches per synced change in these threads, 3.6 with one).
  std::vector<std::unique_ptr<asio::io_context>> iocs;
  std::atomic<size_t> next_ioc{0};
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> work;
  asio::ssl::context ssl{asio::ssl::context::tls_client};
  std::vector<std::thread> threads;

  /// Guards the pools: idle connections, open counts and waiters. No
  /// connection is destroyed while it is held (a destroyed connection
  /// gives its slot back, which takes the mutex).
  std::mutex pool_mutex;
  std::map<std::string, std::vector<std::unique_ptr<connection>>> idle;
  std::map<std::string, size_t> open_per_origin;
  std::map<std::string, std::deque<std::shared_ptr<waiter>>> waiters;

  /// Set when shutdown begins: a callback run while the client stops that
  /// sends again is answered at once instead of reaching a dying context.
  std::atomic<bool> stopping{false};
  std::atomic<uint64_t> requests{0}, answered{0}, failed{0}, timeouts{0},
      connections{0}, reused{0}, in_flight{0}, max_in_flight{0}, open{0},
      waiting{0}, waited{0};

  explicit impl(async_client_options o) : options(std::move(o)) {
    ssl.set_verify_mode(asio::ssl::verify_peer);
    ssl.set_default_verify_paths();
    if (!options.extra_ca_file.empty()) {
      error_code ec;
      ssl.load_verify_file(options.extra_ca_file, ec);
      if (ec)
        throw std::runtime_error("cannot load the CA file '"
                                 + options.extra_ca_file
                                 + "': " + ec.message());
    }
    const size_t n = std::max<size_t>(1, options.io_threads);
    for (size_t i = 0; i < n; ++i) {
      // Concurrency hint 1: run by exactly one thread (handlers it posts
      // to itself skip the shared queue's lock).
      iocs.push_back(std::make_unique<asio::io_context>(1));
      work.push_back(asio::make_work_guard(*iocs.back()));
    }
    for (auto& c : iocs)
      threads.emplace_back([ctx = c.get()] {
        name_this_thread("http-client");
        ctx->run();
      });
  }

  /// Where every name is resolved: Asio resolves on a thread of its own
  /// per io_context that resolves, so all resolve on the first (one such
  /// thread, as with a single io_context); the answers go to the
  /// exchange's strand.
  asio::io_context::executor_type resolver_executor() {
    return iocs.front()->get_executor();
  }

  /// The io_context of a new request, in turn.
  asio::io_context& pick() {
    return *iocs[next_ioc.fetch_add(1, std::memory_order_relaxed)
                 % iocs.size()];
  }

  /// Stops the I/O threads and completes what is still in flight; the
  /// exchanges hold this object, so it cannot wait for their release.
  void shutdown() {
    if (iocs.empty())
      return;
    stopping = true;
    work.clear();
    for (auto& c : iocs)
      c->stop();
    for (auto& t : threads)
      t.join();
    // Destroyed outside the lock: each gives its slot back.
    decltype(idle) idle_left;
    decltype(waiters) waiting_left;
    {
      std::lock_guard<std::mutex> lock(pool_mutex);
      idle_left.swap(idle);
      waiting_left.swap(waiters);
    }
    idle_left.clear();
    waiting_left.clear();
    // Destroys the handlers still queued: their exchanges report
    // "client stopped" while the counters above are still alive.
    iocs.clear();
  }

  ~impl() {
    shutdown();
  }

  std::unique_ptr<connection> take_idle(const std::string& key) {
    std::vector<std::unique_ptr<connection>> closed; // freed unlocked
    std::lock_guard<std::mutex> lock(pool_mutex);
    auto it = idle.find(key);
    while (it != idle.end() && !it->second.empty()) {
      auto c = std::move(it->second.back());
      it->second.pop_back();
      if (c->usable())
        return c;
      closed.push_back(std::move(c));
    }
    return nullptr;
  }

  /// The first request of `key` still waiting, now claimed; null if none.
  /// Called with the mutex held.
  std::shared_ptr<waiter> next_waiter(const std::string& key) {
    auto it = waiters.find(key);
    if (it == waiters.end())
      return nullptr;
    auto& queue = it->second;
    while (!queue.empty()) {
      auto w = std::move(queue.front());
      queue.pop_front();
      if (w->claim()) {
        --waiting;
        return w;
      }
    }
    waiters.erase(it);
    return nullptr;
  }

  /// Takes a slot of `key` for a new connection, or queues `w` to be
  /// granted one (or a pooled connection) when one comes free.
  bool acquire_or_wait(const std::string& key, std::shared_ptr<waiter> w) {
    std::lock_guard<std::mutex> lock(pool_mutex);
    auto& n = open_per_origin[key];
    if (options.max_per_origin == 0 || n < options.max_per_origin) {
      ++n;
      ++open;
      return true;
    }
    ++waiting;
    ++waited;
    waiters[key].push_back(std::move(w));
    return false;
  }

  /// A connection of `key` closed (or a slot was never used): the first
  /// waiter gets the slot.
  void release(const std::string& key) {
    std::shared_ptr<waiter> next;
    {
      std::lock_guard<std::mutex> lock(pool_mutex);
      --open;
      auto it = open_per_origin.find(key);
      if (it != open_per_origin.end() && it->second > 0)
        --it->second;
      if (!stopping)
        next = next_waiter(key);
      if (next) {
        ++open_per_origin[key];
        ++open;
      } else if (it != open_per_origin.end() && it->second == 0) {
        open_per_origin.erase(it);
      }
    }
    if (next)
      next->granted_slot();
  }

  /// An answered request's connection: to the first waiter, else to the
  /// idle pool, else closed.
  void give_back(const std::string& key, std::unique_ptr<connection> c) {
    std::shared_ptr<waiter> next;
    {
      std::lock_guard<std::mutex> lock(pool_mutex);
      if (!stopping)
        next = next_waiter(key);
      if (!next) {
        auto& list = idle[key];
        if (list.size() < options.idle_per_origin && !stopping)
          list.push_back(std::move(c));
      }
    }
    if (next)
      next->granted_connection(std::move(c));
    // else a connection not pooled closes here, outside the lock
  }

  void started() {
    ++requests;
    const auto now = ++in_flight;
    auto seen = max_in_flight.load();
    while (now > seen && !max_in_flight.compare_exchange_weak(seen, now)) {
    }
  }

  void finished(const request_outcome& o) {
    --in_flight;
    if (o.answered)
      ++answered;
    else
      ++failed;
    if (o.timed_out)
      ++timeouts;
  }
};

namespace {

/// One request's walk through the steps; kept alive by its handlers.
class exchange : public waiter, public std::enable_shared_from_this<exchange> {
public:
  exchange(std::shared_ptr<async_client::impl> owner, outgoing_request r,
           request_callback done)
      : owner_(std::move(owner))
      , req_(std::move(r))
      , done_(std::move(done))
      , deadline_(steady::now() + req_.timeout)
      , strand_(asio::make_strand(owner_->pick()))
      , resolver_(owner_->resolver_executor())
      , resolve_timer_(strand_) {
    owner_->started();
    message_.method_string(to_beast(req_.method));
    message_.target(to_beast(req_.target));
    message_.version(11);
    message_.set(bhttp::field::host, host_header(req_.to));
    for (const auto& [name, value] : req_.headers)
      message_.set(to_beast(name), to_beast(value));
    if (!req_.body.empty() || req_.method == "POST" || req_.method == "PUT"
        || req_.method == "PATCH") {
      message_.body() = req_.body;
      message_.prepare_payload();
    }
    message_.keep_alive(true);
  }

  ~exchange() override {
    if (done_)
      complete_failure("client stopped before " + req_.to.key() + " answered",
                       false);
    if (holds_slot_)
      owner_->release(req_.to.key());
  }

  /// Where the exchange's own steps run; start() is posted here.
  asio::strand<asio::io_context::executor_type>& strand() {
    return strand_;
  }

  /// Without an idle connection (send() took none): opens one, or waits.
  void start() {
    open_new();
  }

  /// On `c`'s thread: the request goes out on the pooled connection.
  void use_pooled(std::unique_ptr<connection> c) {
    conn_ = std::move(c);
    reused_ = true;
    ++owner_->reused;
    auto self = shared_from_this();
    asio::dispatch(conn_->lowest().get_executor(), [self] { self->write(); });
  }

  void granted_slot() override {
    auto self = shared_from_this();
    asio::post(strand_, [self] {
      self->holds_slot_ = true;
      self->resolve(); // re-arming the timer ends the wait's
    });
  }

  void granted_connection(std::unique_ptr<connection> c) override {
    auto self = shared_from_this();
    auto held = std::make_shared<std::unique_ptr<connection>>(std::move(c));
    asio::post(strand_, [self, held] {
      self->resolve_timer_.cancel();
      self->use_pooled(std::move(*held));
    });
  }

private:
  std::shared_ptr<async_client::impl> owner_;
  outgoing_request req_;
  request_callback done_;
  steady::time_point deadline_;
  /// Resolving, its deadline, and a connection this exchange opens run here.
  asio::strand<asio::io_context::executor_type> strand_;
  tcp::resolver resolver_;
  asio::steady_timer resolve_timer_;
  std::unique_ptr<connection> conn_;
  /// A slot of the origin was taken for this exchange and not yet handed
  /// to the connection it opens.
  bool holds_slot_ = false;
  bool reused_ = false;
  bhttp::request<bhttp::string_body> message_;
  std::optional<bhttp::response_parser<bhttp::string_body>> parser_;

  std::chrono::milliseconds left() const {
    auto d = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline_ - steady::now());
    return std::max(d, std::chrono::milliseconds(1));
  }

  bool expired() const {
    return steady::now() >= deadline_;
  }

  /// A fresh connection, once the origin has a slot for it.
  void open_new() {
    waiting_ = true; // before the queue can see it
    if (owner_->acquire_or_wait(req_.to.key(), shared_from_this())) {
      waiting_ = false;
      holds_slot_ = true;
      resolve();
      return;
    }
    auto self = shared_from_this();
    resolve_timer_.expires_at(deadline_);
    resolve_timer_.async_wait([self](const error_code& ec) {
      if (ec == asio::error::operation_aborted || !self->claim())
        return;
      --self->owner_->waiting;
      self->complete_failure(
          "waiting for a free connection to " + self->req_.to.key()
              + " timed out after " + std::to_string(self->req_.timeout.count())
              + " ms (" + std::to_string(self->owner_->options.max_per_origin)
              + " open)",
          true);
    });
  }

  /// A name lookup cannot be interrupted (Asio runs getaddrinfo on one
  /// thread of its own), so the deadline is a timer racing it: whichever
  /// ends first completes the exchange, and the other finds it done.
  void resolve() {
    auto self = shared_from_this();
    resolve_timer_.expires_at(deadline_);
    resolve_timer_.async_wait([self](const error_code& ec) {
      if (ec == asio::error::operation_aborted || !self->done_)
        return;
      self->resolver_.cancel();
      self->fail("resolving", beast::error::timeout);
    });
    resolver_.async_resolve(
        req_.to.host, std::to_string(req_.to.port),
        asio::bind_executor(strand_, [self](const error_code& ec,
                                            tcp::resolver::results_type found) {
          self->resolve_timer_.cancel();
          if (!self->done_)
            return; // the deadline came first
          if (ec)
            return self->fail("resolving", ec);
          self->connect(found);
        }));
  }

  void connect(const tcp::resolver::results_type& found) {
    conn_ = std::make_unique<connection>();
    // Each connection on a strand of its own: a stream's timeout timer
    // and its read or write may otherwise complete on two I/O threads at
    // once (Beast's tcp_stream is not thread-safe).
    if (req_.to.https)
      conn_->tls.emplace(strand_, owner_->ssl);
    else
      conn_->plain.emplace(strand_);
    // The slot goes with the connection: it is free once this closes.
    holds_slot_ = false;
    conn_->release = [owner = owner_.get(), key = req_.to.key()] {
      owner->release(key);
    };
    ++owner_->connections;
    conn_->lowest().expires_after(left());
    auto self = shared_from_this();
    conn_->lowest().async_connect(
        found, [self](const error_code& ec, const tcp::endpoint&) {
          if (ec)
            return self->fail("connecting to", ec);
          if (self->req_.to.https)
            self->handshake();
          else
            self->write();
        });
  }

  void handshake() {
    auto& tls = *conn_->tls;
    // SNI, and the certificate must name the host.
    const std::string& name
        = req_.to.server_name.empty() ? req_.to.host : req_.to.server_name;
    // SNI carries names only, never an address (RFC 6066, 3).
    error_code not_an_address;
    asio::ip::make_address(name, not_an_address);
    if (not_an_address
        && !SSL_set_tlsext_host_name(tls.native_handle(), name.c_str()))
      return fail("setting the TLS server name for",
                  error_code(static_cast<int>(::ERR_get_error()),
                             asio::error::get_ssl_category()));
    tls.set_verify_callback(asio::ssl::host_name_verification(name));
    conn_->lowest().expires_after(left());
    auto self = shared_from_this();
    tls.async_handshake(asio::ssl::stream_base::client,
                        [self](const error_code& ec) {
                          if (ec)
                            return self->fail("TLS handshake with", ec);
                          self->write();
                        });
  }

  template <class F>
  void on_stream(F&& f) {
    if (conn_->tls)
      f(*conn_->tls);
    else
      f(*conn_->plain);
  }

  void write() {
    conn_->lowest().expires_after(left());
    auto self = shared_from_this();
    on_stream([&](auto& stream) {
      bhttp::async_write(
          stream, message_, [self](const error_code& ec, std::size_t) {
            if (ec)
              return self->retry_or_fail("sending to", ec, false);
            self->read();
          });
    });
  }

  void read() {
    parser_.emplace();
    parser_->header_limit(header_limit);
    parser_->body_limit(body_limit);
    // A HEAD answer's Content-Length describes a body that never comes.
    if (message_.method() == bhttp::verb::head)
      parser_->skip(true);
    conn_->lowest().expires_after(left());
    auto self = shared_from_this();
    on_stream([&](auto& stream) {
      bhttp::async_read(stream, conn_->buffer, *parser_,
                        [self](const error_code& ec, std::size_t) {
                          if (ec)
                            return self->retry_or_fail("reading from", ec,
                                                       true);
                          self->answered();
                        });
    });
  }

  /// A pooled connection that turns out closed gets one fresh try, as
  /// long as nothing of the answer has arrived, and, once the request was
  /// written whole, only when sending it again cannot do it twice.
  void retry_or_fail(const char* step, const error_code& ec, bool sent) {
    const auto m = message_.method();
    const bool idempotent = m == bhttp::verb::get || m == bhttp::verb::head
                            || m == bhttp::verb::put
                            || m == bhttp::verb::delete_
                            || m == bhttp::verb::options;
    if (reused_ && is_stale_connection_error(ec)
        && (!parser_ || !parser_->got_some()) && (!sent || idempotent)
        && !expired()) {
      reused_ = false;
      conn_.reset(); // its slot goes back (maybe to a waiter)
      parser_.reset();
      // Back on the exchange's strand, where a grant would run.
      auto self = shared_from_this();
      asio::post(strand_, [self] { self->open_new(); });
      return;
    }
    fail(step, ec);
  }

  void answered() {
    auto msg = parser_->release();
    request_outcome out;
    out.answered = true;
    out.reused_connection = reused_;
    out.response.status = static_cast<int>(msg.result_int());
    for (const auto& field : msg)
      out.response.headers.emplace_back(std::string(field.name_string()),
                                        std::string(field.value()));
    out.response.body = std::move(msg.body());
    if (msg.keep_alive() && conn_->buffer.size() == 0) {
      conn_->lowest().expires_never();
      owner_->give_back(req_.to.key(), std::move(conn_));
    }
    finish(std::move(out));
  }

  void fail(const char* step, const error_code& ec) {
    const bool timed_out = ec == beast::error::timeout || expired();
    std::string why
        = std::string(step) + " " + req_.to.key() + " "
          + (timed_out ? "timed out after "
                             + std::to_string(req_.timeout.count()) + " ms"
                       : "failed: " + ec.message());
    complete_failure(std::move(why), timed_out);
  }

  void complete_failure(std::string why, bool timed_out) {
    request_outcome out;
    out.error = std::move(why);
    out.timed_out = timed_out;
    finish(std::move(out));
  }

  /// Completes the exchange once: the deadline's timer and a lookup that
  /// ended just in time can both get here.
  void finish(request_outcome out) {
    if (!done_)
      return;
    auto done = std::move(done_);
    done_ = nullptr;
    owner_->finished(out);
    done(std::move(out));
  }
};

} // namespace

async_client::async_client(async_client_options options)
    : impl_(std::make_shared<impl>(std::move(options))) {}

async_client::~async_client() {
  impl_->shutdown();
}

void async_client::stop() {
  impl_->shutdown();
}

namespace {

/// A pending after(): its callback runs once, from the timer's handler or,
/// when that handler is destroyed unrun (the context went away), from here.
struct delayed_call {
  asio::steady_timer timer;
  std::function<void(bool)> fn;

  delayed_call(asio::io_context& ioc, std::function<void(bool)> f)
      : timer(ioc), fn(std::move(f)) {}

  void finish(bool fired) {
    auto f = std::move(fn);
    fn = nullptr;
    if (f)
      f(fired);
  }

  ~delayed_call() {
    finish(false);
  }
};

} // namespace

void async_client::after(std::chrono::milliseconds delay,
                         std::function<void(bool)> fn) {
  if (impl_->stopping) {
    fn(false);
    return;
  }
  auto call = std::make_shared<delayed_call>(impl_->pick(), std::move(fn));
  call->timer.expires_after(delay);
  auto owner = impl_;
  call->timer.async_wait([call, owner](const error_code& ec) {
    call->finish(!ec && !owner->stopping);
  });
}

void async_client::send(outgoing_request request, request_callback done) {
  if (impl_->stopping) {
    request_outcome out;
    out.error = "client stopped before " + request.to.key() + " was sent";
    done(std::move(out));
    return;
  }
  auto key = request.to.key();
  auto x
      = std::make_shared<exchange>(impl_, std::move(request), std::move(done));
  // Every step runs on an I/O thread, so the caller never runs one itself.
  // An idle connection is taken here, and the request goes straight to the
  // thread that connection lives on (where its timer's handlers run), so
  // no other I/O thread is woken only to hand it over.
  if (auto c = impl_->take_idle(key)) {
    auto on = c->lowest().get_executor();
    auto held = std::make_shared<std::unique_ptr<connection>>(std::move(c));
    asio::post(on, [x, held] { x->use_pooled(std::move(*held)); });
    return;
  }
  asio::post(x->strand(), [x] { x->start(); });
}

async_client_stats async_client::stats() const {
  async_client_stats s;
  s.requests = impl_->requests;
  s.answered = impl_->answered;
  s.failed = impl_->failed;
  s.timeouts = impl_->timeouts;
  s.connections = impl_->connections;
  s.reused = impl_->reused;
  s.in_flight = impl_->in_flight;
  s.max_in_flight = impl_->max_in_flight;
  s.open = impl_->open;
  s.waiting = impl_->waiting;
  s.waited = impl_->waited;
  return s;
}

} // namespace crmsync::http
