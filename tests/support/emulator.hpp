// Test support: the one graph-emulator fixture of the suite.
//
// test::emulator runs graph-emulator either inside the test process (its
// emulator::service behind an http::server on 127.0.0.1 port 0, with a
// clock the test controls and, on request, an HTTPS listener with a
// throwaway CA) or as the real binary in a child process (child_process:
// port 0, its log in a file). Either way it owns one keep-alive client to
// the plain listener and answers with api_response.
//
// One test thread drives one emulator; an in-process service itself is
// thread-safe. A child must be started from a thread that outlives it (see
// child_process.hpp).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/client.hpp"
#include "tests/support/api_response.hpp"

namespace crmsync::e2e {
class child_process;
} // namespace crmsync::e2e

namespace crmsync::test {

/// Where every in-process clock starts: 2026-11-26T14:00:00Z.
int64_t start_ms();

/// application/x-www-form-urlencoded from name/value pairs.
std::string
form(const std::vector<std::pair<std::string, std::string>>& fields);

/// The form of a client-credentials token request for Graph.
std::string client_credentials(std::string_view client_id,
                               std::string_view secret);

/// An in-process emulator's clock, in UTC milliseconds.
class test_clock {
public:
  enum class mode {
    /// Stands at start_ms() until advanced: every test sees one instant.
    manual,
    /// start_ms() plus real time since the last reset: windows and
    /// Retry-After behave as on the real service.
    running,
  };

  explicit test_clock(mode m = mode::running);
  int64_t now() const;
  void advance(std::chrono::milliseconds d);
  /// Back to start_ms(), with nothing advanced.
  void reset();

private:
  const mode mode_;
  std::atomic<int64_t> started_steady_ms_{0};
  std::atomic<int64_t> offset_ms_{0};
};

enum class emulator_mode { in_process, child_process };

/// How to run an emulator. The service settings hold in both modes (a child
/// gets them as flags); the rest names the mode it belongs to.
struct emulator_options {
  emulator_mode mode = emulator_mode::in_process;

  std::chrono::seconds token_lifetime{3600};
  size_t mailbox_requests_per_window = 10000;
  std::chrono::seconds mailbox_window{600};
  /// HTTP I/O threads.
  size_t threads = 2;

  // -- in process only -------------------------------------------------------
  test_clock::mode clock = test_clock::mode::running;
  size_t change_log_floor = 4096;
  /// Also serve HTTPS (a certificate for localhost and 127.0.0.1).
  bool tls = false;
  /// Keep one service per configuration for the whole process and reset
  /// it (POST /_emulator/reset, clock to start_ms()) for each fixture:
  /// making a service's RSA signing key costs up to a second. Two fixtures
  /// of one configuration must not be alive at once.
  bool shared = false;

  // -- child process only ----------------------------------------------------
  std::string log_file; ///< stderr goes here; required
  /// Appended as given (--mailbox-limit, ...).
  std::vector<std::string> extra_args;
  std::chrono::milliseconds start_timeout{10000};
};

/// One graph-emulator and a client of it.
class emulator {
public:
  /// Not running until start().
  emulator();
  explicit emulator(const emulator_options& opts);
  ~emulator();
  emulator(const emulator&) = delete;
  emulator& operator=(const emulator&) = delete;

  /// Starts it; throws std::runtime_error when it cannot (a child's log
  /// tail included) and std::logic_error for options of the other mode.
  void start(const emulator_options& opts);
  /// A child: SIGTERM, waits up to `timeout`, SIGKILL after it; returns the
  /// exit code, 128 + signal, or -1 when it had to be killed (or was not
  /// running). In process: stops an own service, returns 0.
  int stop(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// True from start() until stop() (a child: until it is reaped).
  bool running();

  /// The plain-HTTP listener's port (0 before start).
  uint16_t port() const;
  /// "http://127.0.0.1:PORT", as absolute links show it.
  std::string origin() const;
  /// "https://localhost:PORT" and the CA that signed its certificate
  /// (in process, with tls).
  std::string tls_origin() const;
  std::string ca_file() const;
  /// Everything a child has written to stderr so far ("" in process).
  std::string log_tail(size_t max_bytes = 4000) const;

  // -- the clock (in process) -------------------------------------------------

  int64_t now() const;
  void advance(std::chrono::milliseconds d);
  /// now() as a function, for clients that take an injected clock.
  std::function<int64_t()> clock() const;

  // -- requests ---------------------------------------------------------------

  /// One request without credentials; throws on transport failure.
  e2e::api_response send(std::string_view method, std::string_view target,
                         std::string_view body = {},
                         const http::header_list& headers = {});
  /// One Graph request with a bearer token ("" sends none).
  e2e::api_response graph(std::string_view method, std::string_view target,
                          std::string_view token, std::string_view body = {},
                          http::header_list headers = {});
  e2e::api_response get(std::string_view target, std::string_view token);
  e2e::api_response post(std::string_view target, std::string_view token,
                         std::string_view body);
  e2e::api_response patch(std::string_view target, std::string_view token,
                          std::string_view body,
                          std::string_view if_match = {});
  e2e::api_response del(std::string_view target, std::string_view token,
                        std::string_view if_match = {});

  /// POST /{tenant}/oauth2/v2.0/token with a form body.
  e2e::api_response request_token(std::string_view tenant,
                                  std::string_view form_body);
  /// A client-credentials access token; REQUIREs that it is issued.
  std::string token(std::string_view tenant, std::string_view client_id,
                    std::string_view secret);

  // -- the control API (/_emulator) -------------------------------------------

  /// POST /_emulator/tenants; REQUIREs 201.
  e2e::api_response seed_tenant(std::string_view body);
  /// POST /_emulator/apps consented by `tenants_json`; REQUIREs 201.
  void seed_app(std::string_view client_id, std::string_view secret,
                std::string_view tenants_json);
  /// GET /_emulator/state; REQUIREs 200.
  e2e::api_response state();
  /// POST /_emulator/faults; throws unless accepted.
  void faults(std::string_view json);

  // -- links ------------------------------------------------------------------

  /// Follows @odata.nextLink verbatim from `first` until it is absent,
  /// REQUIRing that every link is absolute on origin(); returns the pages.
  std::vector<e2e::api_response>
  walk(std::string_view first, std::string_view token, size_t max_pages = 100);
  /// The relative target of an absolute link on origin(); REQUIREs one.
  std::string target_of(std::string_view link) const;

private:
  struct in_process;

  void require_started() const;

  std::shared_ptr<in_process> in_process_; ///< shared ones live in a pool
  std::unique_ptr<e2e::child_process> child_;
  std::unique_ptr<http::client> client_;
};

} // namespace crmsync::test
