#include "tests/emulator/harness.hpp"

#include "common/time_format.hpp"
#include "http/url.hpp"

namespace crmsync::emulator_test {

using crmsync::format_rfc3339;

bool is_guid(std::string_view s) {
  if (s.size() != 36)
    return false;
  for (size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    char c = s[i];
    if (dash != (c == '-'))
      return false;
    if (!dash && !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return false;
  }
  return true;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size()
         && s.substr(s.size() - suffix.size()) == suffix;
}

std::set<std::string> as_set(const std::vector<std::string>& v) {
  return {v.begin(), v.end()};
}

std::vector<std::string> ids_of(const std::vector<api_response>& pages) {
  std::vector<std::string> out;
  for (auto& p : pages)
    for (size_t i = 0; i < p.size("/value"); ++i)
      out.push_back(p.str("/value/" + std::to_string(i) + "/id"));
  return out;
}

// -- request bodies and paths
// --------------------------------------------------

std::string user_path(std::string_view user) {
  return "/v1.0/users/" + http::percent_encode(user);
}

std::string calendars_path(std::string_view user) {
  return user_path(user) + "/calendars";
}

std::string calendar_path(std::string_view user, std::string_view cal) {
  return calendars_path(user) + "/" + std::string{cal};
}

std::string calendar_events_path(std::string_view user, std::string_view cal) {
  return calendar_path(user, cal) + "/events";
}

std::string events_path(std::string_view user) {
  return user_path(user) + "/events";
}

std::string event_path(std::string_view user, std::string_view ev) {
  return events_path(user) + "/" + std::string{ev};
}

std::string event_body(std::string_view subject, std::string_view start,
                       std::string_view end, std::string_view extra) {
  return R"({"subject":")" + std::string{subject} + R"(","start":{"dateTime":")"
         + std::string{start} + R"(","timeZone":"UTC"},"end":{"dateTime":")"
         + std::string{end} + R"(","timeZone":"UTC"})" + std::string{extra}
         + "}";
}

std::string expand_query(std::string_view prop_id) {
  return "$expand="
         + http::percent_encode("singleValueExtendedProperties($filter=id eq '"
                                + std::string{prop_id} + "')");
}

std::string filter_query(std::string_view prop_id, std::string_view value) {
  return "$filter="
         + http::percent_encode(
             "singleValueExtendedProperties/Any(ep: ep/id eq '"
             + std::string{prop_id} + "' and ep/value eq '" + std::string{value}
             + "')");
}

// -- the fixture
// ---------------------------------------------------------------

emulator::emulator() : emulator(emulator_options{}) {}

emulator::emulator(emulator_options opts) {
  opts.mode = test::emulator_mode::in_process;
  opts.clock = test::test_clock::mode::manual;
  opts.shared = true;
  start(opts);
}

void emulator::check_error(const api_response& r, int status,
                           std::string_view code) {
  INFO(r.describe());
  REQUIRE(r.status == status);
  REQUIRE(r.is_json());
  CHECK(r.str("/error/code") == code);
  CHECK_FALSE(r.str("/error/message").empty());
  auto request_id = r.str("/error/innerError/request-id");
  CHECK(is_guid(request_id));
  CHECK(r.header("request-id") == request_id);
  CHECK(r.str("/error/innerError/date")
        == format_rfc3339(now() - now() % 1000));
}

void emulator::check_oauth_error(const api_response& r, int status,
                                 std::string_view error, int aadsts) {
  INFO(r.describe());
  REQUIRE(r.status == status);
  REQUIRE(r.is_json());
  CHECK(r.str("/error") == error);
  CHECK(starts_with(r.str("/error_description"),
                    "AADSTS" + std::to_string(aadsts) + ": "));
  REQUIRE(r.size("/error_codes") == 1);
  CHECK(r.i64("/error_codes/0") == aadsts);
  CHECK(r.str("/timestamp") == format_rfc3339(now() - now() % 1000));
  CHECK(is_guid(r.str("/trace_id")));
  CHECK(is_guid(r.str("/correlation_id")));
  CHECK_FALSE(r.has("/access_token"));
}

// -- Contoso
// --------------------------------------------------------------------

contoso::contoso() : contoso(emulator_options{}) {}

contoso::contoso(const emulator_options& opts) : emulator(opts) {
  auto t = seed_tenant(
      std::string{R"({"id":")"} + contoso_id
      + R"(","domain":"contoso.example","users":[)"
        R"({"id":")"
      + admin_id
      + R"(","userPrincipalName":"Admin@contoso.example",)"
        R"("displayName":"Ada Admin","mail":"admin@contoso.example",)"
        R"("isAdmin":true},)"
        R"({"userPrincipalName":"alex@contoso.example",)"
        R"("displayName":"Alex Wilber"},)"
        R"({"userPrincipalName":"room@contoso.example",)"
        R"("displayName":"Room 1","hasMailbox":false}]})");
  alex_id = t.str("/users/1/id");
  room_id = t.str("/users/2/id");
  seed_app(crm_client, crm_secret, R"(["contoso.example"])");
  tok = token("contoso.example", crm_client, crm_secret);
}

api_response contoso::create_event(std::string_view target,
                                   std::string_view body) {
  auto r = post(target, tok, body);
  E2E_REQUIRE_STATUS(r, 201);
  return r;
}

std::string contoso::create_calendar(std::string_view name) {
  auto r = post(calendars_path(admin_id), tok,
                R"({"name":")" + std::string{name} + R"("})");
  E2E_REQUIRE_STATUS(r, 201);
  return r.str("/id");
}

std::string contoso::default_calendar_id(std::string_view user) {
  auto r = get(calendars_path(user), tok);
  E2E_REQUIRE_STATUS(r, 200);
  for (size_t i = 0; i < r.size("/value"); ++i) {
    auto p = "/value/" + std::to_string(i);
    if (r.boolean(p + "/isDefaultCalendar"))
      return r.str(p + "/id");
  }
  FAIL("no default calendar in " << r.body);
  return {};
}

} // namespace crmsync::emulator_test
