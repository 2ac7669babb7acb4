// The fixture of graph_tests: the suite's emulator (tests/support/
// emulator.hpp) in process on its own service, seeded with a tenant, three
// users and an app, plus a client configuration pointing at it.
//
// The emulator's clock runs: real time since the fixture started plus
// whatever the test advanced it by, so windows and Retry-After behave as on
// the real service while token lifetimes can be skipped over. The
// graph::config handed out reads the same clock. One fixture per test case,
// used from the test's threads; the service itself is thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "graph/client.hpp"
#include "tests/support/emulator.hpp"

namespace crmsync::graph_test {

/// Contoso (admin, Alex and Bob) and the app, consented by Contoso.
class emulator : public test::emulator {
public:
  /// In process on a running clock whatever `opts` says; `opts` chooses
  /// the service settings and TLS.
  explicit emulator(test::emulator_options opts = {});

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
  /// Registers the app again, consented by every tenant seeded so far.
  void register_app();

  std::string consented_; ///< JSON array of the app's tenants
};

/// Runs a sign-in at the emulator for this login hint with
/// client::authorize_url; returns the code from the redirect.
std::string sign_in(emulator& e, graph::client& c, std::string_view login_hint,
                    std::string_view redirect_uri, std::string_view nonce);

} // namespace crmsync::graph_test
