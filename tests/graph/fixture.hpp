// The fixture of graph_tests: an in-process graph-emulator service behind
// an http::server on 127.0.0.1 port 0 (and, on request, a second HTTPS
// listener with a throwaway CA made with the openssl CLI), seeded with a
// tenant, three users and an app, plus a client configuration pointing at it.
//
// The emulator's clock is the test's: real time since the fixture started
// plus whatever the test advanced it by, so windows and Retry-After behave
// as on the real service while token lifetimes can be skipped over. The
// graph::config handed out reads the same clock. One fixture per test case,
// used from the test's threads; the service itself is thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "graph/client.hpp"
#include "http/client.hpp"

namespace crmsync::graph_test {

struct emulator_options {
  std::chrono::seconds token_lifetime{3600};
  size_t mailbox_requests_per_window = 10000;
  std::chrono::seconds mailbox_window{600};
  /// Also serve HTTPS (certificate for localhost and 127.0.0.1).
  bool tls = false;
};

/// Real elapsed time plus manual advances, in UTC milliseconds.
class test_clock {
public:
  test_clock();
  int64_t now() const;
  void advance(std::chrono::milliseconds d);

private:
  int64_t start_ms_;
  std::chrono::steady_clock::time_point started_;
  std::atomic<int64_t> offset_ms_{0};
};

class emulator {
public:
  explicit emulator(emulator_options opts = {});
  ~emulator();
  emulator(const emulator&) = delete;
  emulator& operator=(const emulator&) = delete;

  /// "http://127.0.0.1:PORT".
  std::string origin() const;
  /// "https://localhost:PORT" (with opts.tls).
  std::string tls_origin() const;
  /// The throwaway CA that signed the HTTPS certificate (with opts.tls).
  std::string ca_file() const;

  /// The emulator's (and default clients') clock.
  int64_t now() const;
  void advance(std::chrono::milliseconds d);
  std::function<int64_t()> clock() const;

  /// A plain request to the emulator (control API, sign-in pages).
  http::client_response send(std::string_view method, std::string_view target,
                             std::string_view body = {});
  /// POST /_emulator/faults; throws unless accepted.
  void faults(std::string_view json);

  /// A tenant with `n` users user0..user{n-1}@{domain}; returns its id.
  /// The app is consented by it too.
  std::string seed_tenant_with_users(std::string_view domain, size_t n);

  /// Graph and login on origin(), the seeded app's credentials, this
  /// clock, and short backoffs so that failing tests stay quick.
  graph::config config() const;

  static constexpr const char* client_id = "crm-app";
  static constexpr const char* client_secret = "s3cret-for-tests";
  static constexpr const char* contoso = "contoso.example";
  static constexpr const char* contoso_id
      = "6c1f0a58-2d1e-4f52-9c71-3f3f2c7d9a10";
  static constexpr const char* admin_id
      = "0b9e2f4a-7c53-4c2e-8f0d-5a9c1e6b2d01";
  std::string alex_id;
  std::string bob_id;

private:
  void seed_app();

  struct state;
  std::unique_ptr<state> state_;
  std::string consented_; ///< JSON array of the app's tenants
};

/// Runs a sign-in at the emulator for this login hint with
/// client::authorize_url; returns the code from the redirect.
std::string sign_in(emulator& e, graph::client& c, std::string_view login_hint,
                    std::string_view redirect_uri, std::string_view nonce);

} // namespace crmsync::graph_test
