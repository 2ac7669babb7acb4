// The node's HTTP/1.1 listener, behind an interface free of Beast.
//
// Boost.Beast lives in server.cpp only. Each connection reads one request at
// a time (no pipelining, so answers cannot reorder), hands it to the
// handler with a responder, and writes whatever the responder is given,
// from any thread. The server counts requests in flight so that shutdown
// can stop accepting, let them finish, and only then stop the I/O threads.
//
// Slow or idle clients cannot hold the listener: a request's headers must
// arrive within `header_timeout` of its first byte (of the accept, for a
// connection's first request), connections per source address and
// connections in that header phase are capped (a connection over a cap is
// closed at once), and every answer says `X-Content-Type-Options: nosniff`
// with a restrictive Content-Security-Policy unless the handler set its own.
// A request refused before it was read whole (too large, malformed) is
// answered with "Connection: close", and the connection lingers: it drops
// what the client still sends, within bounds, so the answer arrives.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/address_set.hpp"

namespace crmsync::http {

using header_fields = std::vector<std::pair<std::string, std::string>>;

struct request {
  std::string method;    ///< upper-case, e.g. "GET"
  std::string target;    ///< as sent: path and query
  std::string path;      ///< percent-decoded path
  std::string query;     ///< raw query string without '?'
  header_fields headers; ///< names lower-cased
  std::string body;
  std::string remote;
  bool secure = false; ///< arrived over TLS
  /// Its id (server_config::request_ids): from a trusted proxy's
  /// X-Request-Id or new; the answer's X-Request-Id.
  std::string request_id;

  /// First header with this (lower-case) name, or "".
  std::string_view header(std::string_view lower_name) const;
};

/// What a streamed body's producer says after adding a part.
enum class stream_step {
  more,   ///< call again for the next part
  last,   ///< this part was the last one
  failed, ///< cut the body short: the connection closes without its end
};

struct response {
  int status = 200;
  std::string body;
  std::string content_type = "application/json; charset=utf-8";
  header_fields headers;
  /// When set, the body is this producer's output, sent chunked as it is
  /// made (`body` is ignored): each call appends the next part to its
  /// argument. It is called on the connection's I/O thread, one call at a
  /// time, each after the previous part was written, so a slow client
  /// holds back the producer instead of a large body piling up in memory.
  /// After `failed` the client sees a body without its final chunk.
  std::function<stream_step(std::string&)> stream;
};

/// Answers one request exactly once, from any thread. A responder dropped
/// without an answer sends 503, so a lost actor reply never hangs a client.
class responder {
public:
  virtual ~responder() = default;
  virtual void reply(response r) = 0;
};

using responder_ptr = std::shared_ptr<responder>;
using handler = std::function<void(request&&, responder_ptr)>;

struct server_config {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;
  size_t threads = 2;
  size_t max_body_bytes = 1u << 20;
  size_t max_connections = 10000;
  /// How long a keep-alive connection may wait for its next request, and
  /// how long a body may take.
  std::chrono::seconds idle_timeout{60};
  /// How long a request's headers may take to arrive.
  std::chrono::milliseconds header_timeout{10000};
  /// Connections from one remote address; 0: no cap.
  size_t max_connections_per_source = 0;
  /// Connections still reading a request's headers; 0: no cap.
  size_t max_header_connections = 0;
  /// A lingering close after a refusal of a request not read whole (413,
  /// 431, 400): what the client still sends is read and dropped until it
  /// closes, for at most this long and this many bytes. Closing with
  /// unread data would reset the connection, and a reset can destroy the
  /// answer before the client has read it.
  std::chrono::milliseconds linger_timeout{2000};
  size_t linger_bytes = 64u << 20;
  /// Every request gets an id (request::request_id), answered in
  /// X-Request-Id: the X-Request-Id header of a request from one of
  /// `trusted_proxies` when valid (common/request_id.hpp), else new.
  bool request_ids = false;
  address_set trusted_proxies;
  /// PEM files; when set, the listener speaks HTTPS (TLS 1.2+) only.
  std::string tls_cert_file;
  std::string tls_key_file;
};

/// What reading one request from a connection's bytes gives.
enum class parse_outcome {
  complete,          ///< the request is in `out`
  incomplete,        ///< the bytes end before the request does
  body_too_large,    ///< answered 413
  headers_too_large, ///< answered 431
  bad_request,       ///< answered 400: not HTTP/1.1, or a bad path escape
};

/// Reads one request from `bytes` exactly as a connection does (the same
/// parser limits and the same conversion into `request`), without a
/// socket: for tests and the fuzz target (fuzz/http_request_fuzz.cpp).
parse_outcome parse_request(std::string_view bytes, size_t max_body_bytes,
                            request& out);

struct server_stats {
  uint64_t requests = 0;
  uint64_t in_flight = 0;
  uint64_t connections = 0;
  /// Connections closed at accept: over a cap (total, per source, header
  /// phase).
  uint64_t refused = 0;
  /// Connections closed because their headers did not arrive in time.
  uint64_t header_timeouts = 0;
};

class server {
public:
  server(server_config cfg, handler h);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Binds and listens. False with `err` on failure.
  bool bind(std::string& err);

  /// Starts accepting and the I/O threads (after bind).
  void run();

  /// bind() then run().
  bool start(std::string& err);

  /// The bound port (useful with port 0).
  uint16_t port() const;

  /// Runs `fn` on one of the I/O threads (once run() started them; a job
  /// still queued at stop() is dropped unrun). t13-async.
  void post(std::function<void()> fn);

  /// Closes the listening socket; open connections keep being served.
  void stop_accepting();

  /// Waits until no request is in flight or `max` passed; true when idle.
  bool wait_idle(std::chrono::milliseconds max);

  /// Stops the I/O threads and closes every connection.
  void stop();

  server_stats stats() const;

  struct impl; // public so the connection code in server.cpp can name it

private:
  std::shared_ptr<impl> impl_;
};

} // namespace crmsync::http
