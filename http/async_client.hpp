// An asynchronous HTTP/1.1 client: requests are started from any thread and
// answered by a callback, with no thread waiting in between.
//
// A small fixed set of I/O threads (`io_threads`) carries every request of
// the process, however many are in flight: a request waiting for a slow
// server costs a few kilobytes, not a thread. Connections are kept alive
// and pooled per origin (scheme, host, port); a pooled connection the
// server closed while idle is replaced once, transparently. HTTPS verifies
// the server's certificate (the system store plus `extra_ca_file`) and that
// it names the host. Every request has one deadline that covers resolving,
// connecting, the TLS handshake, sending and reading the whole answer.
//
// This is transport only: what to retry, when, and with which token is the
// caller's decision (Graph's Retry-After, backoff with jitter), made
// without blocking either, e.g. as an actor's delayed message.
//
// Beast stays inside async_client.cpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "http/client.hpp"

namespace crmsync::http {

/// Where a request goes: one connection pool per distinct value.
struct endpoint {
  bool https = false;
  std::string host; ///< name or address; IPv6 literals without brackets
  uint16_t port = 0;
  /// The name the server's certificate must carry, sent as SNI; "" means
  /// `host`. Lets a test or a proxy setup connect to one address while
  /// verifying another name.
  std::string server_name;

  /// "https://host:port" (plus "#name" with a server name), the pool's key.
  std::string key() const;
};

struct outgoing_request {
  endpoint to;
  std::string method = "GET";
  std::string target = "/"; ///< path and query
  header_list headers;      ///< Host is the client's own
  std::string body;
  /// The whole exchange, connection included.
  std::chrono::milliseconds timeout{30000};
};

/// What became of one request: an answer, or why there is none.
struct request_outcome {
  bool answered = false;    ///< false: `error` says why
  client_response response; ///< when answered (any status)
  std::string error;        ///< a sentence naming the endpoint and the step
  bool timed_out = false;   ///< the deadline passed before the answer
  /// Whether the answer came over a connection used before.
  bool reused_connection = false;
};

/// Called exactly once per request, on one of the client's I/O threads
/// (or on the thread that destroys the client, with "client stopped").
/// It must not block: hand the outcome on (e.g. send it to an actor).
using request_callback = std::function<void(request_outcome)>;

struct async_client_options {
  size_t io_threads = 2;
  /// Idle keep-alive connections kept per origin; more are closed.
  size_t idle_per_origin = 64;
  /// Connections open at once per origin, idle ones included (0: no cap).
  /// A request that finds them all busy waits, within its deadline, for
  /// the first one to come free or close: a burst of requests to one host
  /// costs queue entries, not sockets (file descriptors run out long
  /// before memory does).
  size_t max_per_origin = 256;
  /// PEM file of extra trusted CAs for HTTPS; "" = the system store only.
  std::string extra_ca_file;
};

struct async_client_stats {
  uint64_t requests = 0;    ///< started
  uint64_t answered = 0;    ///< completed with an HTTP answer
  uint64_t failed = 0;      ///< completed without one (timeouts included)
  uint64_t timeouts = 0;    ///< of those, deadlines that passed
  uint64_t connections = 0; ///< opened (TCP connects)
  uint64_t reused = 0;      ///< requests sent on a pooled connection
  uint64_t in_flight = 0;   ///< started and not yet completed
  uint64_t max_in_flight = 0;
  uint64_t open = 0;    ///< connections open now, all origins
  uint64_t waiting = 0; ///< requests waiting for a connection now
  uint64_t waited = 0;  ///< requests that had to wait, in all
};

class async_client {
public:
  /// Starts the I/O threads. Throws std::runtime_error when
  /// `extra_ca_file` cannot be loaded.
  explicit async_client(async_client_options options = {});
  /// Stops the I/O threads; requests still in flight complete with
  /// "client stopped" on the destroying thread.
  ~async_client();
  async_client(const async_client&) = delete;
  async_client& operator=(const async_client&) = delete;

  /// Starts one request and returns at once; `done` gets the outcome. Once
  /// the client is stopping (a callback run by the destructor sends again),
  /// `done` is called at once with "client stopped".
  void send(outgoing_request request, request_callback done);

  /// Calls `fn(true)` on an I/O thread once `delay` has passed: a pause
  /// before a retry costs a timer, not a thread. If the client stops first,
  /// `fn(false)` runs on the stopping thread (at once when it is already
  /// stopping). Like a request's callback, `fn` must not block.
  void after(std::chrono::milliseconds delay, std::function<void(bool)> fn);

  /// Stops the I/O threads now, as the destructor does: requests in flight
  /// and pending timers complete (failed, not fired) before it returns, and
  /// later calls are answered at once. For an owner whose callbacks touch
  /// state it must keep alive until every callback has run.
  void stop();

  async_client_stats stats() const;

  struct impl; // public so the exchange code in async_client.cpp can name it

private:
  std::shared_ptr<impl> impl_;
};

} // namespace crmsync::http
