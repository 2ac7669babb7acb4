#include "http/server.hpp"
#include "common/thread_name.hpp"

#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "common/log.hpp"
#include "common/request_id.hpp"
#include "common/text.hpp"
#include "http/url.hpp"

namespace crmsync::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

std::string_view request::header(std::string_view lower_name) const {
  for (auto& [k, v] : headers)
    if (k == lower_name)
      return v;
  return {};
}

namespace {

constexpr uint32_t header_limit = 16 * 1024;

using request_parser = bhttp::request_parser<bhttp::string_body>;

/// The limits every request is read with.
void limit(request_parser& p, size_t max_body_bytes) {
  p.body_limit(max_body_bytes);
  p.header_limit(header_limit);
}

/// A read that failed (other than the connection ending).
parse_outcome failure(error_code ec) {
  if (ec == bhttp::error::body_limit)
    return parse_outcome::body_too_large;
  if (ec == bhttp::error::header_limit)
    return parse_outcome::headers_too_large;
  return parse_outcome::bad_request;
}

/// Moves a parsed message into `out` (all but `remote` and `secure`);
/// false when its path has a bad percent-escape.
bool to_request(bhttp::request<bhttp::string_body>& msg, request& out) {
  out.method
      = std::string{msg.method_string().data(), msg.method_string().size()};
  out.target = std::string{msg.target().data(), msg.target().size()};
  auto q = out.target.find('?');
  std::string raw_path = out.target.substr(0, q);
  if (q != std::string::npos)
    out.query = out.target.substr(q + 1);
  if (!percent_decode(raw_path, out.path, false))
    return false;
  for (auto& f : msg)
    out.headers.emplace_back(
        ascii_lower(
            std::string_view{f.name_string().data(), f.name_string().size()}),
        std::string{f.value()});
  out.body = std::move(msg.body());
  return true;
}

bool iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z')
      x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z')
      y = static_cast<char>(y - 'A' + 'a');
    if (x != y)
      return false;
  }
  return true;
}

/// A response's header fields in the order they are written; set() keeps
/// one field per name (case-insensitive), the last one set, written where
/// it was set last (Beast's fields::set, which the answers used to be made
/// with).
class field_list {
public:
  void set(std::string_view name, std::string_view value) {
    for (auto i = fields_.begin(); i != fields_.end(); ++i)
      if (iequal(i->first, name)) {
        fields_.erase(i);
        break;
      }
    fields_.emplace_back(name, value);
  }
  const std::vector<std::pair<std::string_view, std::string_view>>&
  all() const {
    return fields_;
  }

private:
  std::vector<std::pair<std::string_view, std::string_view>> fields_;
};

std::string error_body(std::string_view code, std::string_view message) {
  std::string out = "{\"error\":{\"code\":\"";
  out += code;
  out += "\",\"message\":\"";
  out += message;
  out += "\"}}";
  return out;
}

} // namespace

struct server::impl {
  server_config cfg;
  handler on_request;
  // Declared before iocs, so destroyed after them: sessions still alive at
  // stop() (a lingering close) end inside ~io_context and count
  // themselves out of these.
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> in_flight{0};
  std::atomic<uint64_t> connections{0};
  std::atomic<uint64_t> refused{0};
  std::atomic<uint64_t> header_timeouts{0};
  /// Connections between accept (or a request's first byte) and the end
  /// of that request's headers.
  std::atomic<uint64_t> in_header_phase{0};
  /// Open connections by remote address (with a per-source cap only).
  std::mutex sources_mtx;
  std::unordered_map<std::string, size_t> sources;
  std::atomic<bool> accepting{false};
  /// Set at shutdown: requests read from then on are answered with
  /// "Connection: close". A request read before keeps its connection:
  /// whatever it answers (a 200 from /readyz computed just before the
  /// drain), the next request on that connection is read during the drain
  /// and sees what the node says now (503 from /readyz) instead of finding
  /// the connection closed and the listener gone.
  std::atomic<bool> draining{false};
  std::mutex idle_mtx;
  std::condition_variable idle_cv;
  /// One io_context per I/O thread; each accepted connection lives on one
  /// of them, in turn, with every handler of its requests. Several threads
  /// on one io_context passed a ready socket's work from the thread that
  /// saw it to another (perf, steady-state benchmark: 13 context switches
  /// per synced change in these threads, 3.6 with one thread).
  std::vector<std::unique_ptr<asio::io_context>> iocs;
  std::atomic<size_t> next_ioc{0};
  tcp::acceptor acceptor;
  std::vector<std::thread> threads;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::optional<asio::ssl::context> tls; ///< set when serving HTTPS

  impl(server_config c, handler h)
      : cfg(std::move(c))
      , on_request(std::move(h))
      , iocs(make_contexts(cfg.threads))
      , acceptor(*iocs.front()) {}

  static std::vector<std::unique_ptr<asio::io_context>>
  make_contexts(size_t n) {
    std::vector<std::unique_ptr<asio::io_context>> out;
    for (size_t i = 0; i < std::max<size_t>(1, n); ++i)
      out.push_back(std::make_unique<asio::io_context>(1)); // one thread each
    return out;
  }

  /// The io_context of the next connection (or posted job), in turn.
  asio::io_context& pick() {
    return *iocs[next_ioc.fetch_add(1, std::memory_order_relaxed)
                 % iocs.size()];
  }

  void finished_one() {
    if (in_flight.fetch_sub(1) == 1) {
      std::lock_guard<std::mutex> guard{idle_mtx};
      idle_cv.notify_all();
    }
  }

  void do_accept();

  /// Whether a new connection may stay; on true with a per-source cap,
  /// `source` is counted until release_source(source).
  bool admit(tcp::socket& socket, std::string& source) {
    if (connections.load() >= cfg.max_connections)
      return false;
    if (cfg.max_header_connections > 0
        && in_header_phase.load() >= cfg.max_header_connections)
      return false;
    if (cfg.max_connections_per_source == 0)
      return true;
    error_code ec;
    auto ep = socket.remote_endpoint(ec);
    if (ec)
      return false;
    source = ep.address().to_string();
    std::lock_guard<std::mutex> guard{sources_mtx};
    auto& n = sources[source];
    if (n >= cfg.max_connections_per_source) {
      if (n == 0)
        sources.erase(source);
      return false;
    }
    ++n;
    return true;
  }

  void release_source(const std::string& source) {
    if (source.empty())
      return;
    std::lock_guard<std::mutex> guard{sources_mtx};
    auto i = sources.find(source);
    if (i != sources.end() && --i->second == 0)
      sources.erase(i);
  }
};

namespace {

using tls_stream = beast::ssl_stream<beast::tcp_stream>;

/// One connection, over plain TCP (beast::tcp_stream) or TLS (tls_stream).
template <class Stream>
class session : public std::enable_shared_from_this<session<Stream>> {
public:
  static constexpr bool is_tls = std::is_same_v<Stream, tls_stream>;

  /// `source`: the remote address counted by server::impl::admit, or "".
  template <class... Args>
  session(tcp::socket&& socket, server::impl* srv, std::string source,
          Args&&... args)
      : stream_(std::move(socket), std::forward<Args>(args)...)
      , srv_(srv)
      , source_(std::move(source)) {
    ++srv_->connections;
    // The first request's header phase starts at the accept: a client
    // that connects and says nothing is a slow client too.
    enter_header_phase();
  }

  ~session() {
    leave_header_phase();
    srv_->release_source(source_);
    --srv_->connections;
  }

  auto executor() {
    return stream_.get_executor();
  }

  void run() {
    asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
      // One deadline from the accept to the first request's last header
      // line, the TLS handshake included.
      self->lowest().expires_after(self->srv_->cfg.header_timeout);
      if constexpr (is_tls) {
        self->stream_.async_handshake(asio::ssl::stream_base::server,
                                      [self](error_code ec) {
                                        if (!ec)
                                          self->do_read();
                                      });
      } else {
        self->do_read();
      }
    });
  }

  /// The fields of every answer, the handler's (a field it sets replaces
  /// one of these), and the request's id.
  field_list fields_of(const response& r) {
    field_list f;
    f.set("Server", "crmsyncd");
    if (!r.body.empty() || r.status != 204 || r.stream)
      f.set("Content-Type", r.content_type);
    // No answer is a page or a script unless its handler says so (the
    // admin page sets its own policy): echoed input cannot become one.
    f.set("X-Content-Type-Options", "nosniff");
    f.set("Content-Security-Policy",
          "default-src 'none'; frame-ancestors 'none'");
    for (auto& [k, v] : r.headers)
      f.set(k, v);
    if (!request_id_.empty())
      f.set("X-Request-Id", request_id_);
    return f;
  }

  template <class Body>
  void set_fields(bhttp::response<Body>& res, const response& r) {
    res.version(11);
    res.result(static_cast<unsigned>(r.status));
    auto fields = fields_of(r); // kept: all() refers into it
    for (auto& [k, v] : fields.all())
      res.set(beast::string_view{k.data(), k.size()},
              beast::string_view{v.data(), v.size()});
    res.keep_alive(keep_alive_);
  }

  /// Called on the session's strand with the handler's answer.
  void write(response r) {
    if (r.stream)
      return write_streamed(std::move(r));
    // The header and the body in one buffer and one write: Beast's
    // serializer cost a fifth of a small answer's instructions.
    auto out = std::make_shared<std::string>(serialize(r));
    lowest().expires_after(std::chrono::seconds(30));
    asio::async_write(
        stream_, asio::buffer(*out),
        [self = this->shared_from_this(), out](error_code ec, size_t) {
          self->on_write(ec, !self->keep_alive_);
        });
  }

  /// The whole answer as sent: what set_fields() gives a Beast response,
  /// then its Content-Length (no body for 1xx, 204 and 304).
  std::string serialize(const response& r) {
    const auto status = static_cast<unsigned>(r.status);
    const bool bodiless
        = (status >= 100 && status < 200) || status == 204 || status == 304;
    auto f = fields_of(r);
    if (!keep_alive_)
      f.set("Connection", "close");
    const std::string_view body = bodiless ? std::string_view{} : r.body;
    const auto length = std::to_string(body.size());
    f.set("Content-Length", length);
    const auto reason
        = bhttp::obsolete_reason(static_cast<bhttp::status>(status));
    std::string out;
    size_t size = 32 + reason.size() + body.size();
    for (auto& [k, v] : f.all())
      size += k.size() + v.size() + 4;
    out.reserve(size);
    out += "HTTP/1.1 ";
    out += std::to_string(status);
    out += ' ';
    out.append(reason.data(), reason.size());
    out += "\r\n";
    for (auto& [k, v] : f.all()) {
      out += k;
      out += ": ";
      out += v;
      out += "\r\n";
    }
    out += "\r\n";
    out += body;
    return out;
  }

private:
  using producer = std::function<stream_step(std::string&)>;

  /// The header, then one chunk per part the producer makes, each written
  /// before the next is asked for, then the final chunk.
  void write_streamed(response r) {
    auto res = std::make_shared<bhttp::response<bhttp::empty_body>>();
    set_fields(*res, r);
    res->chunked(true);
    auto sr
        = std::make_shared<bhttp::response_serializer<bhttp::empty_body>>(*res);
    auto make = std::make_shared<producer>(std::move(r.stream));
    lowest().expires_after(std::chrono::seconds(30));
    bhttp::async_write_header(stream_, *sr,
                              [self = this->shared_from_this(), res, sr,
                               make](error_code ec, size_t) {
                                if (ec)
                                  return self->on_write(ec, true);
                                self->write_part(make);
                              });
  }

  void write_part(const std::shared_ptr<producer>& make) {
    auto part = std::make_shared<std::string>();
    auto step = stream_step::more;
    // An empty part would read as the final chunk: ask again.
    while (step == stream_step::more && part->empty()) {
      try {
        step = (*make)(*part);
      } catch (const std::exception& e) {
        log::error(std::string{"http: a streamed body threw: "} + e.what());
        step = stream_step::failed;
      }
    }
    if (step == stream_step::failed) {
      // No final chunk: the client knows the body is incomplete.
      keep_alive_ = false;
      return on_write(error_code{}, true);
    }
    auto after = [self = this->shared_from_this(), part, make,
                  step](error_code ec, size_t) {
      if (ec)
        return self->on_write(ec, true);
      if (step == stream_step::more)
        return self->write_part(make);
      self->lowest().expires_after(std::chrono::seconds(30));
      asio::async_write(self->stream_, bhttp::make_chunk_last(),
                        [self](error_code ec, size_t) {
                          self->on_write(ec, !self->keep_alive_);
                        });
    };
    lowest().expires_after(std::chrono::seconds(30));
    if (part->empty())
      return after(error_code{}, 0);
    asio::async_write(stream_, bhttp::make_chunk(asio::buffer(*part)),
                      std::move(after));
  }

  beast::tcp_stream& lowest() {
    return beast::get_lowest_layer(stream_);
  }

  /// The peer's "HOST:PORT" ("" if unknown), asked of the socket once per
  /// connection (a getpeername call per request was a tenth of a
  /// request's system calls).
  const std::string& remote() {
    if (!remote_known_) {
      remote_known_ = true;
      error_code ec;
      auto ep = lowest().socket().remote_endpoint(ec);
      if (!ec)
        remote_ = ep.address().to_string() + ":" + std::to_string(ep.port());
    }
    return remote_;
  }

  void enter_header_phase() {
    if (!in_header_phase_) {
      in_header_phase_ = true;
      ++srv_->in_header_phase;
    }
  }

  void leave_header_phase() {
    if (in_header_phase_) {
      in_header_phase_ = false;
      --srv_->in_header_phase;
    }
  }

  void do_read() {
    parser_.emplace();
    limit(*parser_, srv_->cfg.max_body_bytes);
    if (!first_request_ && buffer_.size() == 0) {
      // Keep-alive: waiting for the next request is idle time; its header
      // phase starts with its first byte.
      lowest().expires_after(srv_->cfg.idle_timeout);
      stream_.async_read_some(
          buffer_.prepare(4096),
          [self = this->shared_from_this()](error_code ec, size_t n) {
            self->buffer_.commit(n);
            if (ec)
              return self->on_read(ec);
            self->read_header();
          });
      return;
    }
    read_header();
  }

  void read_header() {
    enter_header_phase();
    if (!first_request_)
      lowest().expires_after(srv_->cfg.header_timeout);
    first_request_ = false;
    bhttp::async_read_header(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](error_code ec, size_t) {
          self->leave_header_phase();
          if (ec == beast::error::timeout)
            ++self->srv_->header_timeouts;
          if (ec || self->parser_->is_done())
            return self->on_read(ec);
          self->read_body();
        });
  }

  void read_body() {
    lowest().expires_after(srv_->cfg.idle_timeout);
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = this->shared_from_this()](error_code ec, size_t) {
                        self->on_read(ec);
                      });
  }

  void on_read(error_code ec);

  void reject(int status, std::string_view code, std::string_view message) {
    // The stream is out of sync after a parse error: answer, then close
    // (lingering: the rest of the request may still be on its way).
    keep_alive_ = false;
    linger_ = true;
    ++srv_->in_flight;
    response r;
    r.status = status;
    r.body = error_body(code, message);
    write(std::move(r));
  }

  void on_write(error_code ec, bool close) {
    srv_->finished_one();
    if (ec || close || !keep_alive_) {
      error_code ignored;
      lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
      if (!ec && linger_)
        linger();
      return;
    }
    do_read();
  }

  /// Reads and drops what the client still sends after a refusal, until it
  /// closes or the linger budget (time, bytes) is spent; the socket closes
  /// when the session ends. The answer is sent and our side shut down.
  void linger() {
    lowest().expires_after(srv_->cfg.linger_timeout);
    discard_.resize(16 * 1024);
    drain();
  }

  void drain() {
    lowest().async_read_some(
        asio::buffer(discard_),
        [self = this->shared_from_this()](error_code ec, size_t n) {
          self->lingered_ += n;
          if (ec || self->lingered_ >= self->srv_->cfg.linger_bytes)
            return;
          self->drain();
        });
  }

  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<request_parser> parser_;
  server::impl* srv_;
  std::string source_;
  bool keep_alive_ = true;
  /// The id of the request being served (X-Request-Id of its answer).
  std::string request_id_;
  bool linger_ = false;
  std::vector<char> discard_; ///< what a lingering close reads into
  size_t lingered_ = 0;
  bool first_request_ = true;
  bool in_header_phase_ = false;
  std::string remote_; ///< see remote()
  bool remote_known_ = false;
};

template <class Stream>
class session_responder : public responder {
public:
  explicit session_responder(std::shared_ptr<session<Stream>> s)
      : s_(std::move(s)) {}

  ~session_responder() override {
    if (!answered_.exchange(true)) {
      response r;
      r.status = 503;
      r.body = error_body("unavailable",
                          "the request was dropped before it was answered; "
                          "retry");
      post(std::move(r));
    }
  }

  void reply(response r) override {
    if (answered_.exchange(true))
      return;
    post(std::move(r));
  }

private:
  void post(response r) {
    auto s = s_;
    // beast::tcp_stream's executor is the connection's strand.
    asio::post(s->executor(),
               [s, r = std::move(r)]() mutable { s->write(std::move(r)); });
  }

  std::shared_ptr<session<Stream>> s_;
  std::atomic<bool> answered_{false};
};

template <class Stream>
void session<Stream>::on_read(error_code ec) {
  request_id_.clear();
  if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout
      || ec == asio::error::operation_aborted
      || ec == asio::error::connection_reset || ec == asio::error::eof) {
    error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
    return;
  }
  if (ec) {
    switch (failure(ec)) {
      case parse_outcome::body_too_large:
        reject(413, "payload_too_large",
               "the request body is larger than "
                   + std::to_string(srv_->cfg.max_body_bytes) + " bytes");
        return;
      case parse_outcome::headers_too_large:
        reject(431, "headers_too_large", "the request headers are too large");
        return;
      default:
        reject(400, "bad_request", "the request is not valid HTTP/1.1");
        return;
    }
  }
  auto& msg = parser_->get();
  keep_alive_ = msg.keep_alive() && !srv_->draining;
  request req;
  if (!to_request(msg, req)) {
    reject(400, "bad_request", "the request path has a bad percent-escape");
    return;
  }
  req.remote = remote();
  if (srv_->cfg.request_ids) {
    req.request_id = choose_request_id(req.header("x-request-id"), req.remote,
                                       srv_->cfg.trusted_proxies);
    request_id_ = req.request_id;
  }
  ++srv_->requests;
  ++srv_->in_flight;
  // No read is pending while the handler works: no idle timer either.
  lowest().expires_never();
  req.secure = is_tls;
  auto r
      = std::make_shared<session_responder<Stream>>(this->shared_from_this());
  try {
    srv_->on_request(std::move(req), r);
  } catch (const std::exception& e) {
    log::error(std::string{"http: handler threw: "} + e.what());
    response err;
    err.status = 500;
    err.body = error_body("internal", "internal error");
    r->reply(std::move(err));
  }
}

} // namespace

void server::impl::do_accept() {
  acceptor.async_accept(pick(), [this](error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == asio::error::operation_aborted || !accepting)
        return;
      // Out of descriptors or similar: back off instead of spinning.
      log::warn("http: accept failed: " + ec.message());
      auto timer = std::make_shared<asio::steady_timer>(
          acceptor.get_executor(), std::chrono::milliseconds(100));
      timer->async_wait([this, timer](error_code) {
        if (accepting)
          do_accept();
      });
      return;
    }
    std::string source;
    if (!admit(socket, source)) {
      ++refused;
      error_code ignored;
      socket.close(ignored);
    } else if (tls) {
      std::make_shared<session<tls_stream>>(std::move(socket), this,
                                            std::move(source), *tls)
          ->run();
    } else {
      std::make_shared<session<beast::tcp_stream>>(std::move(socket), this,
                                                   std::move(source))
          ->run();
    }
    if (accepting)
      do_accept();
  });
}

parse_outcome parse_request(std::string_view bytes, size_t max_body_bytes,
                            request& out) {
  request_parser p;
  limit(p, max_body_bytes);
  p.eager(true); // the body too, as async_read does
  while (!p.is_done()) {
    if (bytes.empty())
      return parse_outcome::incomplete;
    error_code ec;
    auto used = p.put(asio::buffer(bytes.data(), bytes.size()), ec);
    if (ec == bhttp::error::need_more)
      return parse_outcome::incomplete;
    if (ec)
      return failure(ec);
    if (used == 0)
      return parse_outcome::incomplete;
    bytes.remove_prefix(used);
  }
  out = request{};
  return to_request(p.get(), out) ? parse_outcome::complete
                                  : parse_outcome::bad_request;
}

server::server(server_config cfg, handler h)
    : impl_(std::make_shared<impl>(std::move(cfg), std::move(h))) {}

server::~server() {
  stop();
}

bool server::start(std::string& err) {
  if (!bind(err))
    return false;
  run();
  return true;
}

bool server::bind(std::string& err) {
  error_code ec;
  if (!impl_->cfg.tls_cert_file.empty() || !impl_->cfg.tls_key_file.empty()) {
    auto& ctx = impl_->tls.emplace(asio::ssl::context::tls_server);
    ctx.set_options(
        asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2
        | asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1
        | asio::ssl::context::no_tlsv1_1);
    ctx.use_certificate_chain_file(impl_->cfg.tls_cert_file, ec);
    if (!ec)
      ctx.use_private_key_file(impl_->cfg.tls_key_file, asio::ssl::context::pem,
                               ec);
    if (ec) {
      err = "cannot load TLS certificate '" + impl_->cfg.tls_cert_file
            + "' / key '" + impl_->cfg.tls_key_file + "': " + ec.message();
      return false;
    }
  }
  auto addr = asio::ip::make_address(impl_->cfg.host, ec);
  if (ec) {
    err = "bad listen address '" + impl_->cfg.host + "': " + ec.message();
    return false;
  }
  tcp::endpoint ep{addr, impl_->cfg.port};
  auto& a = impl_->acceptor;
  a.open(ep.protocol(), ec);
  if (!ec)
    a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec)
    a.bind(ep, ec);
  if (!ec)
    a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    err = "cannot listen on " + impl_->cfg.host + ":"
          + std::to_string(impl_->cfg.port) + ": " + ec.message();
    return false;
  }
  return true;
}

void server::run() {
  impl_->accepting = true;
  for (auto& c : impl_->iocs)
    impl_->work.push_back(asio::make_work_guard(*c));
  impl_->do_accept();
  for (auto& c : impl_->iocs)
    impl_->threads.emplace_back([ctx = c.get()] {
      name_this_thread("http-server");
      ctx->run();
    });
}

uint16_t server::port() const {
  error_code ec;
  auto ep = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

void server::post(std::function<void()> fn) {
  asio::post(impl_->pick(), std::move(fn));
}

void server::stop_accepting() {
  if (!impl_->accepting.exchange(false))
    return;
  impl_->draining = true;
  // Shared, not on this stack: the close may run after the wait gave up.
  struct closed_flag {
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
  };
  auto flag = std::make_shared<closed_flag>();
  asio::post(impl_->acceptor.get_executor(), [p = impl_.get(), flag] {
    error_code ignored;
    p->acceptor.close(ignored);
    std::lock_guard<std::mutex> guard{flag->m};
    flag->done = true;
    flag->cv.notify_all();
  });
  std::unique_lock<std::mutex> lock{flag->m};
  flag->cv.wait_for(lock, std::chrono::seconds(5), [&] { return flag->done; });
}

bool server::wait_idle(std::chrono::milliseconds max) {
  std::unique_lock<std::mutex> lock{impl_->idle_mtx};
  return impl_->idle_cv.wait_for(lock, max,
                                 [&] { return impl_->in_flight == 0; });
}

void server::stop() {
  if (impl_->threads.empty())
    return;
  impl_->accepting = false;
  impl_->work.clear();
  for (auto& c : impl_->iocs)
    c->stop();
  for (auto& t : impl_->threads)
    t.join();
  impl_->threads.clear();
}

server_stats server::stats() const {
  server_stats s;
  s.requests = impl_->requests;
  s.in_flight = impl_->in_flight;
  s.connections = impl_->connections;
  s.refused = impl_->refused;
  s.header_timeouts = impl_->header_timeouts;
  return s;
}

} // namespace crmsync::http
