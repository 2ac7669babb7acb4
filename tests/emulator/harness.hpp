// The emulator test harness, shared by every file of emulator_tests.
//
// Every test talks to graph-emulator's service over real sockets through
// the suite's one emulator fixture (tests/support/emulator.hpp), run in
// process on a clock the test controls. Generating the service's RSA
// signing key costs up to a second, so one service per configuration is
// kept for the whole process and every fixture starts from
// POST /_emulator/reset and a clock set back to start_ms(): each test case
// (and each SECTION run) sees an empty emulator at the same instant.
//
// Answers are api_response (tests/support/api_response.hpp). `contoso`
// seeds a tenant, an app consented by it and a token. Wire formats follow
// shared/ref/GRAPH-FACTS.md.
#pragma once

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/api_response.hpp"
#include "tests/support/emulator.hpp"

namespace crmsync::emulator_test {

namespace http = crmsync::http;

using e2e::api_response;
using test::client_credentials;
using test::emulator_options;
using test::form;
using test::start_ms;
// advance() takes a duration: advance(10min - 1ms).
using namespace std::chrono_literals;

inline constexpr int64_t second_ms = 1000;
inline constexpr int64_t minute_ms = 60 * second_ms;
inline constexpr int64_t hour_ms = 60 * minute_ms;

/// A lower-case GUID in the 8-4-4-4-12 layout.
bool is_guid(std::string_view s);

bool starts_with(std::string_view s, std::string_view prefix);

bool ends_with(std::string_view s, std::string_view suffix);

std::set<std::string> as_set(const std::vector<std::string>& v);

/// The ids of every element of /value on every page, in order.
std::vector<std::string> ids_of(const std::vector<api_response>& pages);

// -- request bodies and paths
// --------------------------------------------------

std::string user_path(std::string_view user);
std::string calendars_path(std::string_view user);
std::string calendar_path(std::string_view user, std::string_view cal);
std::string calendar_events_path(std::string_view user, std::string_view cal);
std::string events_path(std::string_view user);
std::string event_path(std::string_view user, std::string_view ev);

/// A Graph event body in UTC; `extra` is spliced in after `end` (it starts
/// with a comma).
std::string event_body(std::string_view subject,
                       std::string_view start = "2026-12-01T10:00:00",
                       std::string_view end = "2026-12-01T11:00:00",
                       std::string_view extra = {});

/// The id crmsync tags its events with (a named string MAPI property).
inline const std::string crm_prop
    = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name crmsyncId";
inline const std::string other_prop
    = "String {00020329-0000-0000-c000-000000000046} Name origin";

std::string expand_query(std::string_view prop_id);
std::string filter_query(std::string_view prop_id, std::string_view value);

// -- the emulator under test ------------------------------------------------

/// An empty in-process emulator as every emulator test starts from: the
/// shared service of these options (test::emulator_options::shared), reset,
/// its clock standing at start_ms() until advanced, and a client of it.
class emulator : public test::emulator {
public:
  emulator();
  explicit emulator(emulator_options opts);

  /// Graph's error shape (GRAPH-FACTS §11): status, error.code, a message,
  /// innerError.request-id (also the request-id header) and innerError.date
  /// (the emulator's clock, whole seconds).
  void check_error(const api_response& r, int status, std::string_view code);

  /// The identity platform's OAuth error shape with its AADSTS code.
  void check_oauth_error(const api_response& r, int status,
                         std::string_view error, int aadsts);
};

inline constexpr const char* contoso_id
    = "6f1c2a34-5b6d-4e7f-8a9b-0c1d2e3f4a5b";
inline constexpr const char* admin_id = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
inline constexpr const char* crm_client = "crm-client-id";
inline constexpr const char* crm_secret = "crm-secret-value";

/// Contoso (given id, domain contoso.example) with an admin who has a mail
/// address, Alex (generated id, no mail) and a room without a mailbox; the
/// CRM app, consented by Contoso, and a token of it for Contoso.
class contoso : public emulator {
public:
  contoso();
  explicit contoso(const emulator_options& opts);

  /// Creates an event; fails the test unless 201.
  api_response create_event(std::string_view target, std::string_view body);

  /// Creates a secondary calendar for the admin; returns its id.
  std::string create_calendar(std::string_view name);

  std::string default_calendar_id(std::string_view user);

  std::string alex_id;
  std::string room_id;
  std::string tok;
};

} // namespace crmsync::emulator_test
