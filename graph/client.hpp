// crmsyncd's client for Microsoft Graph v1.0 and the Microsoft identity
// platform (sign-in, admin consent, app-only tokens).
//
// Asynchronous: every call is started and returns at once; its result
// reaches a callback on one of the client's few I/O threads
// (`io_threads`), with no thread waiting in between, however many calls
// are in flight and however slow Graph answers. Callbacks must not block:
// an actor hands the result to itself as a message. Blocking wrappers of
// the same calls remain for code that has its own thread to spend (tests,
// command-line tools); they must never be called from a callback.
//
// One instance per node, so that everything that talks to one mailbox
// shares that mailbox's budget (at most `mailbox_concurrency` requests in
// flight and `mailbox_requests_per_window` per `mailbox_window`, Outlook's
// limits; calls over it queue in order, without a thread) and every
// tenant's app-only token is fetched once (concurrent calls share the
// fetch) and renewed before expiry.
//
// Transport: HTTPS with certificates verified (system store plus
// `ca_file`), plain HTTP only to loopback hosts; keep-alive connections
// pooled per host; one deadline per request (`io_timeout`). Retries: 429
// and 503 wait for Retry-After (per item inside $batch), other transient
// failures (502, 504, transport errors) back off exponentially with
// jitter; pauses are timers. After `max_attempts` the call fails with the
// last error. A 401 renews the tenant's token once and retries.
//
// Every request sends a new GUID as `client-request-id`, as Microsoft
// recommends; a call that fails is logged (warn) with it and Graph's
// `request-id` and `Date` answer headers, under the log context of the
// code that started it (its HTTP request id), and the error carries them.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/client.hpp"

namespace crmsync::graph {

struct config {
  /// Graph's base, version included; nextLinks are followed verbatim.
  std::string graph_base_url = "https://graph.microsoft.com/v1.0";
  /// The identity platform's base (token, authorize, adminconsent, keys).
  std::string login_base_url = "https://login.microsoftonline.com";
  std::string client_id;
  std::string client_secret;
  /// Extra CA (PEM) trusted for Graph and the identity platform.
  std::string ca_file;
  /// Deadline of one request (connect, TLS, send, answer), per attempt.
  std::chrono::milliseconds io_timeout{30000};
  /// Threads that carry every request and run every callback.
  size_t io_threads = 2;
  /// Idle keep-alive connections kept per host.
  size_t connections_per_host = 16;
  /// Connections open at once per host, idle ones included; more
  /// requests wait (within their deadline) for one to come free.
  size_t max_connections_per_host = 256;
  size_t mailbox_concurrency = 4;
  size_t mailbox_requests_per_window = 10000;
  std::chrono::seconds mailbox_window{600};
  /// Tries per call, the first included.
  int max_attempts = 6;
  std::chrono::milliseconds backoff_base{200};
  std::chrono::milliseconds backoff_max{30000};
  /// Longest Retry-After honoured; a longer one fails the call at once.
  std::chrono::seconds max_retry_after{120};
  /// A token is renewed when less than this is left of its lifetime.
  std::chrono::seconds token_renew_margin{300};
  /// Wall clock, UTC milliseconds (token expiry, id_token exp/nbf).
  std::function<int64_t()> now_ms;
};

/// Why a call failed, as Graph (or the identity platform) said it.
struct error {
  int status = 0;            ///< HTTP status; 0 = no answer (transport)
  std::string code;          ///< Graph error code, OAuth error, or "transport"
  std::string message;       ///< human sentence
  int64_t retry_after_s = 0; ///< the last Retry-After seen, if any
  int attempts = 0;          ///< tries made
  /// What Microsoft asks for when a call is reported to it (Graph's
  /// concepts/best-practices-concept.md, "Reliability and support"), of
  /// the last exchange: the client-request-id GUID sent with it, and
  /// Graph's request-id and Date answer headers ("" without an answer,
  /// and all "" for a call that never reached the wire).
  std::string client_request_id;
  std::string request_id;
  std::string date;

  /// "429 ApplicationThrottled: message (after 6 attempts)".
  std::string describe() const;
};

struct response {
  int status = 0;
  std::string body;
  http::header_list headers;
};

/// The verified claims of an id_token.
struct identity {
  std::string tenant_id; ///< tid
  std::string object_id; ///< oid
  std::string preferred_username;
  std::string email; ///< "" when the token has none
  std::string name;
  bool is_global_admin = false; ///< wids holds the Global Administrator role
};

/// One request of a $batch.
struct batch_request {
  std::string id;
  std::string method;
  std::string url;  ///< relative to the version, e.g. "/users/{id}/events"
  std::string body; ///< JSON or ""
};

struct batch_response {
  std::string id;
  int status = 0;
  std::string body; ///< minified JSON of the item's body, or ""
};

/// Counters for /metrics and tests.
struct client_stats {
  uint64_t requests = 0; ///< HTTP requests sent (retries included)
  uint64_t retries = 0;
  uint64_t throttled = 0; ///< 429 answers (items of batches included)
  uint64_t token_fetches = 0;
  uint64_t max_in_flight_per_mailbox = 0; ///< highest seen for any mailbox
  /// Highest number of mailbox requests in flight at once, all mailboxes
  /// together (shows that different mailboxes proceed in parallel).
  uint64_t max_in_flight = 0;
  /// Mailboxes whose request budget the client keeps (a request within
  /// the window, or one waiting): what it holds in memory per mailbox.
  uint64_t mailbox_budgets = 0;
};

/// What became of a call started asynchronously: `ok` and the value, or
/// why not.
template <class T>
struct result {
  bool ok = false;
  T value{};
  error failure;
};

/// One page of a collection.
struct page {
  std::vector<std::string> items; ///< raw JSON objects
  std::string next_link;          ///< "" on the last page
};

/// One Graph call: `path_or_url` is relative to graph_base_url
/// ("/users?$top=5") or absolute (a nextLink); `mailbox` is the Office 365
/// user id whose budget it counts against ("" for calls that touch no
/// mailbox); `body` is JSON ("" for none); `headers` are extra request
/// headers (If-Match, Prefer, ...), Authorization and Content-Type being
/// the client's own.
struct call_spec {
  std::string tenant;
  std::string mailbox;
  std::string method = "GET";
  std::string path_or_url;
  std::string body;
  http::header_list headers;
};

template <class T>
using callback = std::function<void(result<T>)>;

class client {
public:
  explicit client(config cfg);
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  // -- asynchronous calls: each callback runs exactly once -------------------

  /// One Graph call with the tenant's app-only token; a 2xx answer is ok.
  void start(call_spec call, callback<response> done);

  /// One page of a collection (see list_page).
  void start_page(std::string tenant, std::string path_or_url,
                  callback<page> done);

  /// A $batch against one mailbox (see batch).
  void start_batch(std::string tenant, std::string mailbox,
                   std::vector<batch_request> requests,
                   callback<std::vector<batch_response>> done);

  /// Redeems a sign-in code (see redeem_code).
  void start_redeem(std::string code, std::string redirect_uri,
                    std::string expected_nonce, callback<identity> done);

  // -- the same, blocking the calling thread until the result -------------

  /// One Graph call with the tenant's app-only token. `path_or_url` is
  /// relative to graph_base_url ("/users?$top=5") or absolute (a nextLink).
  /// `mailbox` is the Office 365 user id whose budget the call counts
  /// against ("" for calls that touch no mailbox). `body` is JSON ("" for
  /// none). Answers 2xx: true. Anything else after retries: false, `err`.
  bool call(const std::string& tenant, const std::string& mailbox,
            std::string_view method, std::string_view path_or_url,
            std::string_view body, response& out, error& err);

  /// call() with extra request headers (If-Match, Prefer,
  /// ConsistencyLevel, ...); Authorization and Content-Type are the
  /// client's own.
  bool call(const std::string& tenant, const std::string& mailbox,
            std::string_view method, std::string_view path_or_url,
            std::string_view body, const http::header_list& headers,
            response& out, error& err);

  /// Every element of `value` across all pages (raw JSON objects),
  /// following @odata.nextLink verbatim.
  bool list_all(const std::string& tenant, std::string_view path,
                std::vector<std::string>& items, error& err);

  /// One page: its elements and the nextLink ("" on the last page).
  bool list_page(const std::string& tenant, std::string_view path_or_url,
                 std::vector<std::string>& items, std::string& next_link,
                 error& err);

  /// Up to 20 requests against one mailbox in one $batch; items answered
  /// 429/503 are sent again after their Retry-After. `out` has one answer
  /// per request, in request order.
  bool batch(const std::string& tenant, const std::string& mailbox,
             const std::vector<batch_request>& requests,
             std::vector<batch_response>& out, error& err);

  /// The sign-in URL (authorization-code flow, scope openid profile email)
  /// at /organizations/.
  std::string authorize_url(std::string_view redirect_uri,
                            std::string_view state,
                            std::string_view nonce) const;

  /// The admin-consent URL for one tenant.
  std::string admin_consent_url(std::string_view tenant,
                                std::string_view redirect_uri,
                                std::string_view state) const;

  /// Redeems an authorization code and verifies the id_token: RS256
  /// signature against the tenant's published keys, issuer
  /// ({login}/{tid}/v2.0), audience (client_id), exp/nbf, and nonce.
  bool redeem_code(std::string_view code, std::string_view redirect_uri,
                   std::string_view expected_nonce, identity& out, error& err);

  /// Asks the identity platform for a new app-only token of `tenant` now,
  /// with the configured credentials, once (no retry when it cannot be
  /// reached), neither reading nor filling the cache: whether the
  /// credentials work today (crmsyncctl doctor). The value is the token.
  void start_token_check(std::string tenant, callback<std::string> done);

  /// Forgets the tenant's cached token (the next call fetches one).
  void forget_token(const std::string& tenant);

  /// Ends every wait (mailbox budget, retry pause) at once: calls waiting
  /// and later ones fail with code "shutting_down"; requests on the wire
  /// end with their answer or deadline. For node shutdown.
  void shutdown();

  client_stats stats() const;

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

} // namespace crmsync::graph
