// The emulator test harness, shared by every file of emulator_tests.
//
// A fixture (`emulator`) talks through http::client to an
// emulator::service behind an http::server on 127.0.0.1 port 0, inside the
// test process, whose clock the test controls. Generating the service's
// RSA signing key costs up to a second, so one service per configuration
// is kept for the whole process and every fixture starts from
// POST /_emulator/reset and a clock set back to start_ms(): each test case
// (and each SECTION run) sees an empty emulator at the same instant.
//
// `reply` wraps an answer with JSON-pointer accessors that throw, showing
// the whole answer, so a failing test says what it got. `contoso` seeds a
// tenant, an app consented by it and a token. Wire formats follow
// shared/ref/GRAPH-FACTS.md.
#pragma once

#include <catch2/catch.hpp>
#include <simdjson.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/client.hpp"

namespace crmsync::emulator_test {

namespace http = crmsync::http;

inline constexpr int64_t second_ms = 1000;
inline constexpr int64_t minute_ms = 60 * second_ms;
inline constexpr int64_t hour_ms = 60 * minute_ms;

/// Where every test's clock starts: 2026-11-26T14:00:00Z.
int64_t start_ms();

/// A lower-case GUID in the 8-4-4-4-12 layout.
bool is_guid(std::string_view s);

bool starts_with(std::string_view s, std::string_view prefix);

bool ends_with(std::string_view s, std::string_view suffix);

std::set<std::string> as_set(const std::vector<std::string>& v);

// -- answers ------------------------------------------------------------------

/// One HTTP answer, its body parsed when it is JSON. Accessors take RFC 6901
/// pointers and throw, showing the whole answer, when a value is missing or
/// of another type.
class reply {
public:
  explicit reply(http::client_response r);

  /// A JSON text that did not come as an answer (a notification body).
  static reply of_json(std::string body);

  int status = 0;
  std::string body;
  http::header_list headers;

  /// The first header with this name (case-insensitive), or "".
  std::string header(std::string_view name) const;

  bool is_json() const;
  bool has(std::string_view pointer) const;
  simdjson::dom::element at(std::string_view pointer) const;
  std::string str(std::string_view pointer) const;
  int64_t i64(std::string_view pointer) const;
  bool boolean(std::string_view pointer) const;
  bool is_null(std::string_view pointer) const;
  size_t size(std::string_view pointer) const;
  /// The member names of the object at pointer, in order.
  std::vector<std::string> keys(std::string_view pointer) const;
  /// The minified JSON of the value at pointer.
  std::string json(std::string_view pointer = "") const;
  std::string describe() const;

private:
  [[noreturn]] void fail(const std::string& what) const;

  std::shared_ptr<simdjson::dom::parser> parser_;
  simdjson::dom::element root_;
  bool json_ = false;
};

/// REQUIRE a status, showing the answer only when it fails.
#define REQUIRE_STATUS(answer, expected)                                       \
  do {                                                                         \
    const auto& required_answer_ = (answer);                                   \
    INFO(required_answer_.describe());                                         \
    REQUIRE(required_answer_.status == (expected));                            \
  } while (false)

/// The ids of every element of /value on every page, in order.
std::vector<std::string> ids_of(const std::vector<reply>& pages);

// -- request bodies and paths
// --------------------------------------------------

/// application/x-www-form-urlencoded from name/value pairs.
std::string
form(const std::vector<std::pair<std::string, std::string>>& fields);

std::string client_credentials(std::string_view client_id,
                               std::string_view secret);

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

/// The service_config fields tests vary; the defaults are the service's.
struct options {
  std::chrono::seconds token_lifetime{3600};
  size_t mailbox_requests_per_window = 10000;
  std::chrono::seconds mailbox_window{600};
  size_t change_log_floor = 4096;
};

struct shared_service;

/// An empty service with these options, its clock at start_ms(), and a
/// client connected to it.
class emulator {
public:
  emulator();
  explicit emulator(const options& opts);
  ~emulator();
  emulator(const emulator&) = delete;
  emulator& operator=(const emulator&) = delete;

  int64_t now() const;
  void advance(int64_t ms);
  uint16_t port() const;
  /// The scheme and host the client uses, as absolute URLs must show it.
  std::string origin() const;

  /// One request without credentials.
  reply send(std::string_view method, std::string_view target,
             std::string_view body = {}, const http::header_list& headers = {});

  /// One Graph request with a bearer token ("" sends none).
  reply graph(std::string_view method, std::string_view target,
              std::string_view token, std::string_view body = {},
              http::header_list headers = {});

  reply get(std::string_view target, std::string_view token);
  reply post(std::string_view target, std::string_view token,
             std::string_view body);
  reply patch(std::string_view target, std::string_view token,
              std::string_view body, std::string_view if_match = {});
  reply del(std::string_view target, std::string_view token,
            std::string_view if_match = {});

  reply request_token(std::string_view tenant, std::string_view form_body);

  /// A client-credentials access token; fails the test unless issued.
  std::string token(std::string_view tenant, std::string_view client_id,
                    std::string_view secret);

  reply seed_tenant(std::string_view body);
  void seed_app(std::string_view client_id, std::string_view secret,
                std::string_view tenants_json);
  reply state();

  /// Graph's error shape (GRAPH-FACTS §11): status, error.code, a message,
  /// innerError.request-id (also the request-id header) and innerError.date
  /// (the emulator's clock, whole seconds).
  void check_error(const reply& r, int status, std::string_view code);

  /// The identity platform's OAuth error shape with its AADSTS code.
  void check_oauth_error(const reply& r, int status, std::string_view error,
                         int aadsts);

  /// Follows @odata.nextLink verbatim from `first` until it is absent,
  /// checking that every link is absolute on origin(); returns the pages.
  std::vector<reply> walk(std::string_view first, std::string_view token,
                          size_t max_pages = 100);

  /// The relative target of an absolute link on origin(); fails otherwise.
  std::string target_of(std::string_view link) const;

private:
  shared_service* shared_;
  std::unique_ptr<http::client> client_;
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
  explicit contoso(const options& opts);

  /// Creates an event; fails the test unless 201.
  reply create_event(std::string_view target, std::string_view body);

  /// Creates a secondary calendar for the admin; returns its id.
  std::string create_calendar(std::string_view name);

  std::string default_calendar_id(std::string_view user);

  std::string alex_id;
  std::string room_id;
  std::string tok;
};

} // namespace crmsync::emulator_test
